//! The wgpu backend: runs an [`Ops`](crate::ops::Ops) list on frames on the GPU, bit for bit
//! equal to the CPU reference in [`crate::ops::cpu`].
//!
//! - `context`: adapter choice, device creation, wgpu errors as [`Error::Gpu`](crate::Error).
//! - `kernels`: WGSL from `shaders/*.wgsl` plus a generated chain function; the pipelines
//!   (one fused point pass, one reduction per sepia-norm, the mode pass) and the band plan for
//!   frames larger than one storage binding.
//! - `modes`: Pillow's `image_mode` on the GPU: which route each frame takes, the packed output
//!   layouts, the HSV and LAB tables, the [`ModeImage`](crate::mode::ModeImage) read back.
//! - `ring`: frames in flight, with reused upload/readback buffers (which callers may also
//!   write and read in place).
//! - `copy`: host-side frame copies split across threads.
//! - `map`: a buffer mapping's state and a wait for its callback that holds when several
//!   threads poll one device.
//!
//! Pixels cross as storage buffers of packed u32 (one RGBA8 pixel each, R in the low byte): the
//! buffer is byte-identical to the frame's `rgba`, so upload and readback are plain copies. A
//! point-wise mode is the fused pass's last step and comes back in its `tobytes()` layout (1, 3
//! or 4 bytes a pixel); Floyd–Steinberg and RGBA → P come back as RGBA and finish on the CPU.

pub mod context;
pub(crate) mod copy;
pub(crate) mod kernels;
pub(crate) mod map;
pub(crate) mod modes;
pub mod ring;
pub mod yuv;

pub use context::{AdapterSummary, GpuContext};
pub use ring::{GpuBackend, Upload};

#[cfg(test)]
mod tests;

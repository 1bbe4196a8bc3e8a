//! The wgpu backend: runs an [`Ops`](crate::ops::Ops) list on frames on the GPU, bit for bit
//! equal to the CPU reference in [`crate::ops::cpu`].
//!
//! - `context`: adapter choice, device creation, wgpu errors as [`Error::Gpu`](crate::Error).
//! - `kernels`: WGSL from `shaders/*.wgsl` plus a generated chain function; the pipelines
//!   (one fused point pass, one reduction per sepia-norm) and the band plan for frames larger
//!   than one storage binding.
//! - `ring`: frames in flight, with reused upload/readback buffers.
//!
//! Pixels cross as storage buffers of packed u32 (one RGBA8 pixel each, R in the low byte): the
//! buffer is byte-identical to the frame's `rgba`, so upload and readback are plain copies.

pub mod context;
pub(crate) mod kernels;
pub mod ring;

pub use context::{AdapterSummary, GpuContext};
pub use ring::GpuBackend;

#[cfg(test)]
mod tests;

//! Which backend processes frames (GPU or CPU reference), chosen once per pipeline, behind one
//! schedule/collect interface so the pipeline's GPU thread does not care which it got.

use std::collections::VecDeque;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::frame::{FinishedFrame, Frame, FrameMeta};
use crate::gpu::{GpuBackend, GpuContext};
use crate::ops::{Ops, fast};

/// `--device`: where the ops run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceChoice {
    /// A hardware GPU adapter if there is one, else the CPU (which also beats a software
    /// adapter such as lavapipe: `--device gpu` still uses one).
    #[default]
    Auto,
    /// A GPU adapter, or an error.
    Gpu,
    /// The CPU reference backend.
    Cpu,
}

impl FromStr for DeviceChoice {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "auto" => Ok(DeviceChoice::Auto),
            "gpu" => Ok(DeviceChoice::Gpu),
            "cpu" => Ok(DeviceChoice::Cpu),
            other => Err(Error::Usage(format!(
                "device (--device): unknown device '{other}' (expected auto, gpu or cpu)"
            ))),
        }
    }
}

impl fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DeviceChoice::Auto => "auto",
            DeviceChoice::Gpu => "gpu",
            DeviceChoice::Cpu => "cpu",
        })
    }
}

/// The backend a pipeline ended up with, for statistics and messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendKind {
    /// A GPU adapter, by name.
    Gpu(String),
    /// The CPU reference backend.
    Cpu,
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BackendKind::Gpu(name) => write!(f, "GPU ({name})"),
            BackendKind::Cpu => f.write_str("CPU"),
        }
    }
}

/// Opens the backend for `choice`. With `Auto` and no adapter, or only a software one, returns
/// the CPU backend and the reason no GPU was used, so that the caller can say so in one line.
/// (Measured with `shutter bench` on a 2-core machine: mirror + sepia at 1080p takes 1.7 ms on
/// the CPU fast path and 25–35 ms through lavapipe.)
///
/// # Errors
/// [`Error::NoAdapter`] for `Gpu` without an adapter; [`Error::Gpu`] when the device fails.
pub fn open(choice: DeviceChoice) -> Result<(Option<Arc<GpuContext>>, Option<Error>)> {
    // Once `Auto` has found only a software adapter, later runs of the process take the CPU
    // without opening it again (tens of milliseconds a run).
    static SOFTWARE_ONLY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    match choice {
        DeviceChoice::Cpu => Ok((None, None)),
        DeviceChoice::Gpu => GpuContext::new().map(|ctx| (Some(ctx), None)),
        DeviceChoice::Auto => {
            if let Some(adapter) = SOFTWARE_ONLY.get() {
                return Ok((None, Some(Error::SoftwareAdapter(adapter.clone()))));
            }
            match GpuContext::new() {
                Ok(ctx) if ctx.is_software() => {
                    let adapter = SOFTWARE_ONLY.get_or_init(|| ctx.describe());
                    Ok((None, Some(Error::SoftwareAdapter(adapter.clone()))))
                }
                Ok(ctx) => Ok((Some(ctx), None)),
                Err(err) => Ok((None, Some(err))),
            }
        }
    }
}

/// Frames in flight on one backend: `schedule` starts a frame, `collect` hands finished frames
/// back in scheduling order.
pub struct Processor(Inner);

/// The backend of a [`Processor`].
enum Inner {
    /// The GPU ring (boxed: it is several times the CPU variant's size); `ops` is kept to
    /// convert on the CPU any frame the GPU returns without the requested mode.
    Gpu {
        /// The GPU ring: the frames in flight there.
        gpu: Box<GpuBackend>,
        /// The ops the ring was built for.
        ops: Ops,
    },
    /// The CPU fast path: each frame is processed when it is scheduled and waits in `done`
    /// until it is collected.
    Cpu {
        /// The ops applied to each frame.
        ops: Ops,
        /// Frames processed and not yet collected, oldest first.
        done: VecDeque<Frame>,
    },
}

impl std::fmt::Debug for Processor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ops = match &self.0 {
            Inner::Gpu { ops, .. } | Inner::Cpu { ops, .. } => ops,
        };
        f.debug_struct("Processor")
            .field("backend", &if self.is_gpu() { "gpu" } else { "cpu" })
            .field("ops", ops)
            .field("capacity", &self.capacity())
            .field("pending", &self.pending())
            .finish()
    }
}

impl Processor {
    /// A processor for `ops` on `gpu` (or the CPU when `None`) with `in_flight` frames at once
    /// (0 counts as 1). The CPU processes each frame as it is scheduled: its
    /// [`capacity`](Processor::capacity) is 1 whatever `in_flight` says.
    ///
    /// # Errors
    /// - [`Error::Usage`] when `in_flight` is over [`MAX_IN_FLIGHT`](crate::pipeline::MAX_IN_FLIGHT),
    ///   on either backend.
    /// - [`Error::Gpu`] when the kernels cannot be built.
    pub fn new(gpu: Option<Arc<GpuContext>>, ops: &Ops, in_flight: usize) -> Result<Self> {
        crate::pipeline::check_in_flight("in_flight", in_flight.max(1))?;
        Ok(Processor(match gpu {
            Some(ctx) => Inner::Gpu {
                gpu: Box::new(GpuBackend::new(ctx, ops, in_flight.max(1))?),
                ops: ops.clone(),
            },
            None => Inner::Cpu {
                ops: ops.clone(),
                done: VecDeque::new(),
            },
        }))
    }

    /// The GPU ring, when this processor runs on the GPU: for its own settings
    /// ([`GpuBackend::set_upload`]) and its `schedule_with` family.
    pub fn gpu(&mut self) -> Option<&mut GpuBackend> {
        match &mut self.0 {
            Inner::Gpu { gpu, .. } => Some(gpu),
            Inner::Cpu { .. } => None,
        }
    }

    /// True when this processor runs on the GPU (false: the CPU fast path).
    pub fn is_gpu(&self) -> bool {
        matches!(self.0, Inner::Gpu { .. })
    }

    /// Puts up to `frames` consecutive frames in one GPU submission (no effect on the CPU).
    pub fn set_batch(&mut self, frames: usize) {
        if let Inner::Gpu { gpu, .. } = &mut self.0 {
            gpu.set_batch(frames);
        }
    }

    /// Frames that may be scheduled before one must be collected.
    pub fn capacity(&self) -> usize {
        match &self.0 {
            Inner::Gpu { gpu, .. } => gpu.capacity(),
            Inner::Cpu { .. } => 1,
        }
    }

    /// Frames scheduled and not yet collected.
    pub fn pending(&self) -> usize {
        match &self.0 {
            Inner::Gpu { gpu, .. } => gpu.pending(),
            Inner::Cpu { done, .. } => done.len(),
        }
    }

    /// Starts processing `frame`. Call only while `pending() < capacity()`.
    ///
    /// # Errors
    /// [`Error::Usage`] when `frame.rgba` does not hold `width × height × 4` bytes (on both
    /// backends); [`Error::Gpu`] when the submission fails.
    pub fn schedule(&mut self, mut frame: Frame) -> Result<()> {
        match &mut self.0 {
            Inner::Gpu { gpu, .. } => gpu.schedule(frame),
            Inner::Cpu { ops, done } => {
                crate::frame::check_len(&frame)?;
                crate::mode::source::settle(&mut frame, ops)?;
                // The fast path: the reference's bytes, on every core (`tests/fast_cpu.rs`),
                // converted to the mode in the same pass where the mode is point-wise.
                match ops.mode {
                    Some(mode) => {
                        let image =
                            crate::mode::cpu::apply_and_convert(ops, mode, ops.dither, &mut frame);
                        frame.image = Some(image);
                    }
                    None => fast::apply(ops, frame.width, frame.height, &mut frame.rgba),
                }
                done.push_back(frame);
                Ok(())
            }
        }
    }

    /// Starts processing a `width × height` frame whose RGBA8 pixels `fill` writes: on the GPU
    /// straight into the ring's mapped upload buffer ([`GpuBackend::schedule_with`]), on the CPU
    /// into a new buffer. `fill` must write every byte. Call only while
    /// `pending() < capacity()`.
    ///
    /// ```
    /// use shutter::backend::Processor;
    /// use shutter::{Filter, FrameMeta, Ops};
    ///
    /// // `Some(GpuContext::new()?)` for the GPU; the CPU here, so that the example runs anywhere.
    /// let mut processor = Processor::new(None, &Ops::new(false, vec![Filter::Invert]), 1)?;
    /// processor.schedule_with(2, 1, false, FrameMeta::still(0, 0), |mut pixels| {
    ///     pixels.copy_from_slice(&[10, 20, 30, 255, 40, 50, 60, 255]);
    /// })?;
    /// let first = processor.collect_with(true, |out| out.bytes[..4].to_vec())?;
    /// assert_eq!(first, Some(vec![245, 235, 225, 255]));
    /// # Ok::<(), shutter::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`Processor::schedule`].
    pub fn schedule_with(
        &mut self,
        width: u32,
        height: u32,
        has_alpha: bool,
        meta: FrameMeta,
        fill: impl FnOnce(wgpu::WriteOnly<'_, [u8]>),
    ) -> Result<()> {
        match &mut self.0 {
            Inner::Gpu { gpu, .. } => gpu.schedule_with(width, height, has_alpha, meta, fill),
            Inner::Cpu { .. } => {
                let mut rgba = crate::frame::zeroed_pixels(width, height, 4, meta.seq)?;
                fill((&mut rgba[..]).into());
                self.schedule(Frame::new(width, height, rgba, has_alpha, meta))
            }
        }
    }

    /// Starts processing a `width × height` frame of RGB8 pixels (`width × height × 3` bytes,
    /// row-major): on the GPU they go up at 3 bytes a pixel ([`GpuBackend::schedule_rgb`]), on
    /// the CPU they are widened to RGBA first. The result is that of [`Processor::schedule`]
    /// for the same pixels with alpha 255 and `has_alpha` false. Call only while
    /// `pending() < capacity()`.
    ///
    /// ```
    /// use shutter::backend::Processor;
    /// use shutter::{Filter, FrameMeta, Ops};
    ///
    /// // `Some(GpuContext::new()?)` for the GPU; the CPU here, so that the example runs anywhere.
    /// let mut processor = Processor::new(None, &Ops::new(true, vec![Filter::Invert]), 1)?;
    /// processor.schedule_rgb(2, 1, &[10, 20, 30, 40, 50, 60], FrameMeta::still(0, 0))?;
    /// let out = processor.collect_with(true, |out| out.bytes.to_vec())?;
    /// assert_eq!(out, Some(vec![215, 205, 195, 255, 245, 235, 225, 255]));
    /// // Three bytes a pixel, or a usage error naming the frame.
    /// let err = processor.schedule_rgb(2, 1, &[0; 8], FrameMeta::still(1, 0)).unwrap_err();
    /// assert!(err.to_string().contains("frame 1"), "{err}");
    /// # Ok::<(), shutter::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Usage`] when `rgb` does not hold `width × height × 3` bytes; otherwise as
    /// [`Processor::schedule`].
    pub fn schedule_rgb(
        &mut self,
        width: u32,
        height: u32,
        rgb: &[u8],
        meta: FrameMeta,
    ) -> Result<()> {
        match &mut self.0 {
            Inner::Gpu { gpu, .. } => gpu.schedule_rgb(width, height, rgb, meta),
            Inner::Cpu { .. } => {
                crate::frame::check_rgb_len(width, height, rgb.len(), meta.seq)?;
                let rgba = crate::source::widen::rgb(rgb);
                self.schedule(Frame::new(width, height, rgba, false, meta))
            }
        }
    }

    /// As [`Processor::schedule_rgb`], with the RGB8 pixels written by `fill`: on the GPU
    /// straight into the ring's mapped upload buffer ([`GpuBackend::schedule_rgb_with`]), on
    /// the CPU into a new buffer that is then widened. `fill` must write every byte.
    ///
    /// # Errors
    /// As [`Processor::schedule`].
    pub fn schedule_rgb_with(
        &mut self,
        width: u32,
        height: u32,
        meta: FrameMeta,
        fill: impl FnOnce(wgpu::WriteOnly<'_, [u8]>),
    ) -> Result<()> {
        match &mut self.0 {
            Inner::Gpu { gpu, .. } => gpu.schedule_rgb_with(width, height, meta, fill),
            Inner::Cpu { .. } => {
                let mut rgb = crate::frame::zeroed_pixels(width, height, 3, meta.seq)?;
                fill((&mut rgb[..]).into());
                let rgba = crate::source::widen::rgb(&rgb);
                self.schedule(Frame::new(width, height, rgba, false, meta))
            }
        }
    }

    /// The oldest finished frame's output lent to `read` (see [`FinishedFrame`]), and `read`'s
    /// result: on the GPU from the mapped readback without a copy
    /// ([`GpuBackend::collect_with`]), on the CPU from the frame's buffers. `Ok(None)` as
    /// [`Processor::collect`].
    ///
    /// # Errors
    /// As [`Processor::collect`].
    pub fn collect_with<R>(
        &mut self,
        wait: bool,
        read: impl FnOnce(FinishedFrame<'_>) -> R,
    ) -> Result<Option<R>> {
        match &mut self.0 {
            Inner::Gpu { gpu, .. } => gpu.collect_with(wait, read),
            Inner::Cpu { done, .. } => Ok(done.pop_front().map(|frame| frame.lend(read))),
        }
    }

    /// The oldest scheduled frame once it is finished; with `wait`, blocks until it is.
    /// `Ok(None)` when nothing is pending, or (without `wait`) the oldest is not done yet.
    ///
    /// # Errors
    /// [`Error::Gpu`] when the readback fails.
    pub fn collect(&mut self, wait: bool) -> Result<Option<Frame>> {
        match &mut self.0 {
            Inner::Gpu { gpu, ops } => {
                let mut frame = gpu.collect(wait)?;
                if let (Some(mode), Some(f)) = (ops.mode, frame.as_mut())
                    && f.image.is_none()
                {
                    f.image = Some(crate::mode::cpu::convert_frame(mode, ops.dither, f));
                }
                Ok(frame)
            }
            Inner::Cpu { done, .. } => Ok(done.pop_front()),
        }
    }

    /// Processes one frame start to finish (for callers with one frame, and tests).
    ///
    /// # Errors
    /// As [`Processor::schedule`] and [`Processor::collect`]; [`Error::Usage`] when frames are in
    /// flight.
    pub fn process(&mut self, frame: Frame) -> Result<Frame> {
        if self.pending() != 0 {
            return Err(Error::Usage(
                "process() needs an idle processor: collect the frames in flight first".into(),
            ));
        }
        self.schedule(frame)?;
        self.collect(true)?
            .ok_or_else(|| Error::Gpu("the scheduled frame never came back".into()))
    }
}

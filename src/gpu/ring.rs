//! Frames in flight: a ring of slots with reused upload, output, readback and uniform buffers;
//! `schedule` uploads and submits one frame, `collect` maps the oldest one back (into the
//! frame's own pixel buffer, or its mode's packed bytes into `Frame::image`) without blocking
//! unless asked to. `schedule_with` and `collect_with` do the same with no host copy: the caller
//! writes the pixels into the mapped upload buffer and reads the mapped readback in place.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::frame::{FinishedFrame, Frame, FrameMeta};
use crate::mode::{Dither, ImageMode};
use crate::ops::Ops;

use super::context::GpuContext;
use super::copy::par_copy;
use super::kernels::{
    self, Band, BandBuffers, BandLimits, InputLayout, Kernels, PARAMS_SIZE, QUAD,
};
use super::map::{MapSignal, MapState, SETTLE_LIMIT};
use super::modes::{self, PackedMode, Route};

/// Where mode `1` with Floyd–Steinberg dithers unless [`GpuBackend::set_dither_on_gpu`] says
/// otherwise: on the CPU after the GPU pass, 2–3× faster than the GPU wavefronts on lavapipe
/// (the `mirror+sepia + mode 1 dithered` group of `benches/ops.rs`), the
/// only adapter measured; lavapipe is a CPU rasteriser, so a real GPU may well differ.
const DITHER_ON_GPU_BY_DEFAULT: bool = false;

/// How a frame's pixels reach the GPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Upload {
    /// Copied into the slot's own upload buffer, which stays mapped while the slot is free,
    /// then copied on the GPU's queue into the input buffer. No allocation per frame. Large
    /// frames are copied by several threads on hosts with 4 or more hardware threads
    /// (`SHUTTER_COPY_THREADS` overrides the count).
    #[default]
    Staging,
    /// `queue.write_buffer`: wgpu copies the pixels into a staging buffer it allocates for
    /// the call. Kept to compare against (`shutter bench`).
    WriteBuffer,
}

/// A caller's writer of a frame's pixels into an upload buffer ([`GpuBackend::schedule_with`]).
type Fill<'a> = &'a mut dyn FnMut(wgpu::WriteOnly<'_, [u8]>);

/// What `schedule_frame` uploads.
enum Source<'a> {
    /// The frame's own RGBA buffer.
    Own,
    /// A caller's buffer in the frame's input layout.
    Borrowed(&'a [u8]),
    /// Written by the caller into the upload buffer.
    Fill(Fill<'a>),
}

/// Where the pixels of a frame being scheduled come from.
enum Pixels<'a> {
    /// A buffer of the caller's (the frame's own RGBA, or RGB), copied up.
    Copy(&'a [u8]),
    /// Written by the caller straight into the upload buffer.
    Fill(Fill<'a>),
}

/// One frame's worth of GPU buffers, reused from frame to frame and grown only when a frame is
/// larger than any before it. The same buffers serve RGBA and packed output (a packed mode needs
/// at most 4 bytes a pixel, rounded up to whole 4-pixel quads).
#[derive(Default)]
struct Slot {
    /// Bytes `input`, `output` and `readback` hold.
    capacity: u64,
    /// Whether `input` is a storage buffer and `output` exists (every frame with kernels; an
    /// identity op list on RGBA frames needs neither).
    kernel_buffers: bool,
    input: Option<wgpu::Buffer>,
    output: Option<wgpu::Buffer>,
    readback: Option<wgpu::Buffer>,
    /// The upload buffer of [`Upload::Staging`] (MAP_WRITE | COPY_SRC, `capacity` bytes):
    /// mapped while the slot is free, unmapped from its copy until the GPU has read it.
    staging: Option<wgpu::Buffer>,
    /// Map state of `staging` (`Mapped`: mapped and writable).
    staging_mapped: Arc<MapSignal>,
    /// The last submission that used this slot's buffers.
    submission: Option<wgpu::SubmissionIndex>,
    /// Each band's params, at multiples of the uniform offset alignment, and its bytes.
    params: Option<wgpu::Buffer>,
    params_capacity: u64,
    maxes: Option<wgpu::Buffer>,
    /// The wavefront dithering kernel's error rows (with that kernel only) and their bytes.
    errors: Option<wgpu::Buffer>,
    errors_capacity: u64,
    /// Bind groups of the bands of the last frame size seen.
    bands: Option<BoundBands>,
    /// The last ops pass recorded for this slot (for [`GpuBackend::replay_pass`]).
    last_pass: Option<Pass>,
}

/// What one frame's ops pass was: its route, whether the output was packed, and which kernels
/// (by input layout) ran it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pass {
    route: Route,
    packed: bool,
    input: InputLayout,
}

/// The bands of one frame size, output and input layout with their bind groups, rebuilt only
/// when one of those or the buffers change.
struct BoundBands {
    size: (u32, u32),
    packed: bool,
    input: InputLayout,
    groups: Vec<(Band, wgpu::BindGroup)>,
}

/// A submitted frame: which slot holds it and whether its readback is mapped yet.
struct Job {
    /// The frame's sequence number, for messages.
    seq: u64,
    slot: usize,
    /// Bytes copied to the readback buffer and mapped (a multiple of 4).
    bytes: u64,
    /// The packed mode when the readback holds one, else RGBA pixels.
    packed: Option<PackedMode>,
    /// Whether the pixels went up through the slot's staging buffer (re-mapped once submitted).
    staged: bool,
    /// `None` while the frame's commands wait in a batch (see [`GpuBackend::set_batch`]).
    submission: Option<wgpu::SubmissionIndex>,
    mapped: Arc<MapSignal>,
}

/// Where a scheduled frame stands.
enum State {
    /// On the GPU (or its readback being mapped).
    Gpu(Job),
    /// Its pixels are final (copied back, or a frame without pixels); the slot is free again.
    Done,
    /// It failed after scheduling; `collect` reports the error in its turn.
    Failed(Error),
}

struct Scheduled {
    frame: Frame,
    state: State,
    route: Route,
}

/// Frames in flight on the GPU: `schedule` uploads and submits, `collect` returns finished
/// frames in the order they were scheduled.
pub struct GpuBackend {
    ctx: Arc<GpuContext>,
    /// The op list, kept to compile `rgb_kernels` when the first RGB frame comes.
    ops: Ops,
    /// The kernels reading RGBA frames; `None` for the identity op list: frames are copied
    /// through the GPU unchanged.
    kernels: Option<Kernels>,
    /// The kernels reading 3-byte RGB frames ([`GpuBackend::schedule_rgb`]), compiled for the
    /// first one (boxed: most rings never see one, and it keeps `GpuBackend` small).
    rgb_kernels: Option<Box<Kernels>>,
    /// Sepia-norms in the chain (slots in each `maxes` buffer).
    norms: usize,
    /// The mode frames are converted to (`ops.mode`) and its dither.
    mode: Option<ImageMode>,
    dither: Dither,
    /// Whether `1` with Floyd–Steinberg runs in GPU wavefronts (else on the CPU after the GPU).
    dither_on_gpu: bool,
    limits: BandLimits,
    max_buffer: u64,
    slots: Vec<Slot>,
    free: Vec<usize>,
    queue: VecDeque<Scheduled>,
    allocations: u64,
    /// Frames whose commands go to the GPU in one submission.
    batch: usize,
    /// Command buffers encoded and not yet submitted (at most `batch - 1` between calls).
    deferred: Vec<wgpu::CommandBuffer>,
    upload: Upload,
}

impl Drop for GpuBackend {
    /// Drops the ring's kernels and buffers, then submits nothing: wgpu frees dropped
    /// resources at the device's next submission (a poll alone does not), so a ring that
    /// never submitted (a run whose inputs all failed) would otherwise leave its compiled
    /// pipelines (about 1 MB each on lavapipe) until another user of the shared context
    /// submits work.
    fn drop(&mut self) {
        self.deferred.clear();
        self.queue.clear();
        self.slots.clear();
        self.kernels = None;
        self.rgb_kernels = None;
        self.ctx.queue.submit(std::iter::empty());
        let _ = self.ctx.device.poll(wgpu::PollType::Poll);
    }
}

impl std::fmt::Debug for GpuBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuBackend")
            .field("ctx", &self.ctx)
            .field("capacity", &self.slots.len())
            .field("pending", &self.queue.len())
            .finish_non_exhaustive()
    }
}

impl GpuBackend {
    /// A backend running `ops` on `ctx` with up to `in_flight` frames on the GPU at once (at
    /// least 1). Compiles the kernels now; buffers are allocated by the first frames.
    ///
    /// # Errors
    /// [`Error::Gpu`] when the kernels fail to compile or validate; [`Error::Usage`] when
    /// `in_flight` is over [`MAX_IN_FLIGHT`](crate::pipeline::MAX_IN_FLIGHT).
    pub fn new(ctx: Arc<GpuContext>, ops: &Ops, in_flight: usize) -> Result<Self> {
        Self::with_limits(ctx, ops, in_flight, None)
    }

    /// As [`GpuBackend::new`], with the storage binding size capped at `max_binding` bytes (the
    /// unit tests use a small cap to exercise the banding of frames over the limit).
    pub(crate) fn with_limits(
        ctx: Arc<GpuContext>,
        ops: &Ops,
        in_flight: usize,
        max_binding: Option<u64>,
    ) -> Result<Self> {
        crate::pipeline::check_in_flight("in_flight", in_flight.max(1))?;
        let kernels = Kernels::new(&ctx, ops, InputLayout::Rgba)?;
        let mut limits = BandLimits::of(&ctx.device);
        if let Some(cap) = max_binding {
            limits.max_binding = limits.max_binding.min(cap);
        }
        let max_buffer = ctx.device.limits().max_buffer_size;
        let n = in_flight.max(1);
        Ok(GpuBackend {
            ctx,
            ops: ops.clone(),
            kernels,
            rgb_kernels: None,
            norms: kernels::sepia_norms(ops),
            mode: ops.mode,
            dither: ops.dither,
            dither_on_gpu: DITHER_ON_GPU_BY_DEFAULT,
            limits,
            max_buffer,
            slots: (0..n).map(|_| Slot::default()).collect(),
            free: (0..n).rev().collect(),
            queue: VecDeque::with_capacity(n),
            allocations: 0,
            batch: 1,
            deferred: Vec::new(),
            upload: Upload::default(),
        })
    }

    /// Puts the commands of up to `frames` consecutive frames in one GPU submission (Gradio's
    /// `max_batch_size`); fewer go together when `collect` is called first. Default 1.
    pub fn set_batch(&mut self, frames: usize) {
        self.batch = frames.max(1);
    }

    /// Chooses how pixels reach the GPU (default [`Upload::Staging`]); both give the same
    /// results. For measuring one against the other.
    pub fn set_upload(&mut self, upload: Upload) {
        self.upload = upload;
    }

    /// Runs the ops of the last frame processed again on the data still on the GPU (no upload,
    /// no readback), waits, and returns how long that took: the GPU pass alone, for
    /// `shutter bench`. `Ok(None)` when no frame has run through the ops yet or frames are in
    /// flight.
    ///
    /// # Errors
    /// [`Error::Gpu`] when the submission fails.
    #[doc(hidden)]
    pub fn replay_pass(&mut self) -> Result<Option<std::time::Duration>> {
        if !self.queue.is_empty() {
            return Ok(None);
        }
        let Some(s) = self.slots.iter().find(|s| s.last_pass.is_some()) else {
            return Ok(None);
        };
        let (Some(pass), Some(bound), Some(maxes)) =
            (s.last_pass, s.bands.as_ref(), s.maxes.as_ref())
        else {
            return Ok(None);
        };
        let Some(kernels) = self.kernels_for(pass.input) else {
            return Ok(None);
        };
        let ctx = &self.ctx;
        ctx.scoped("replaying the ops pass", || {
            let start = std::time::Instant::now();
            let mut encoder = ctx
                .device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                    label: Some("shutter replay"),
                });
            encode_pass(
                &mut encoder,
                kernels,
                &bound.groups,
                self.norms,
                maxes,
                pass.route,
                pass.packed,
            );
            let index = ctx.queue.submit([encoder.finish()]);
            ctx.device
                .poll(wgpu::PollType::Wait {
                    submission_index: Some(index),
                    timeout: None,
                })
                .map_err(|err| Error::Gpu(format!("waiting for the GPU: {err}")))?;
            Ok(Some(start.elapsed()))
        })
    }

    /// Submits the batched command buffers in one `queue.submit` and starts mapping each
    /// frame's readback. Failures are kept in the frames' entries for `collect`.
    fn flush(&mut self) {
        if self.deferred.is_empty() {
            return;
        }
        let buffers: Vec<_> = self.deferred.drain(..).collect();
        let ctx = Arc::clone(&self.ctx);
        let submission = ctx.scoped("batch", || Ok(ctx.queue.submit(buffers)));
        for entry in self.queue.iter_mut() {
            let State::Gpu(job) = &mut entry.state else {
                continue;
            };
            if job.submission.is_some() {
                continue;
            }
            match &submission {
                Ok(index) => {
                    job.submission = Some(index.clone());
                    let slot = &mut self.slots[job.slot];
                    slot.submission = Some(index.clone());
                    if let (true, Some(staging)) = (job.staged, &slot.staging) {
                        // Mapped again once the GPU has copied out of it: ready for the
                        // slot's next frame.
                        slot.staging_mapped
                            .map(staging.slice(..), wgpu::MapMode::Write);
                    }
                    let readback = slot
                        .readback
                        .as_ref()
                        .expect("a submitted slot has a readback buffer");
                    job.mapped
                        .map(readback.slice(..job.bytes), wgpu::MapMode::Read);
                }
                Err(err) => {
                    let job = take_job(&mut entry.state);
                    self.slots[job.slot] = Slot::default();
                    self.free.push(job.slot);
                    entry.state = State::Failed(Error::Gpu(err.to_string()));
                }
            }
        }
    }

    /// Chooses where mode `1` with Floyd–Steinberg dithers: in GPU wavefronts (`true`; frames
    /// whose width is a multiple of 4 and that fit one storage binding, the others still on the
    /// CPU) or on the CPU after the GPU pass (`false`, the default: faster on lavapipe, see
    /// `DITHER_ON_GPU_BY_DEFAULT`). Both give Pillow's bytes. No effect on other modes.
    pub fn set_dither_on_gpu(&mut self, on: bool) {
        self.dither_on_gpu = on;
    }

    /// Frames that may be on the GPU at once (the number of slots in the ring).
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Frames scheduled and not yet collected.
    pub fn pending(&self) -> usize {
        self.queue.len()
    }

    /// How many times this backend has allocated a slot's buffers: once per slot for the first
    /// frame, then only when a frame is larger than any that slot held before.
    pub fn buffer_allocations(&self) -> u64 {
        self.allocations
    }

    /// Uploads `frame` and submits its work. When every slot is busy, first waits for the
    /// oldest frame on the GPU and copies it back (it stays queued for [`GpuBackend::collect`]),
    /// so callers should collect once `pending() == capacity()`.
    ///
    /// With a mode, point-wise conversions run on the GPU and only the mode's bytes come back;
    /// `1`/`P` with Floyd–Steinberg and `P` from an RGBA source come back as RGBA and are
    /// converted on the CPU when collected (`1` in GPU wavefronts instead after
    /// [`GpuBackend::set_dither_on_gpu`]).
    ///
    /// # Errors
    /// [`Error::Usage`] when the pixel buffer does not hold `width × height × 4` bytes;
    /// [`Error::Gpu`] when the frame exceeds the adapter's limits or wgpu reports an error.
    pub fn schedule(&mut self, frame: Frame) -> Result<()> {
        crate::frame::check_len(&frame)?;
        self.schedule_frame(frame, InputLayout::Rgba, Source::Own)
    }

    /// As [`GpuBackend::schedule`], with no host copy on the way up: `fill` writes the frame's
    /// RGBA8 pixels (`width × height × 4` bytes, row-major, straight alpha) straight into the
    /// slot's mapped upload buffer. Use it where the pixels are produced anyway (a generator,
    /// a conversion such as RGB → RGBA, a capture callback): that write is then the only one.
    ///
    /// `fill` gets a write-only view of exactly the frame's bytes and must write every one of
    /// them; bytes it skips are unspecified (with the staging upload, what the slot last held).
    /// It is not called for a frame with no pixels, nor when scheduling fails before the upload
    /// (too large, wgpu error). With [`Upload::WriteBuffer`] the view is wgpu's own staging
    /// memory instead. Collect the result with [`GpuBackend::collect_with`] to read it without
    /// a copy, or with [`GpuBackend::collect`] to get it in a new buffer. If `fill` panics, the
    /// frame is not scheduled and its slot is given back before the panic goes on.
    ///
    /// # Errors
    /// As [`GpuBackend::schedule`].
    pub fn schedule_with(
        &mut self,
        width: u32,
        height: u32,
        has_alpha: bool,
        meta: FrameMeta,
        fill: impl FnOnce(wgpu::WriteOnly<'_, [u8]>),
    ) -> Result<()> {
        let frame = Frame::unfilled(width, height, has_alpha, meta);
        self.schedule_filled(frame, InputLayout::Rgba, fill)
    }

    /// Schedules `frame` (no pixels of its own) with `fill` writing them in `input`'s layout.
    fn schedule_filled(
        &mut self,
        frame: Frame,
        input: InputLayout,
        fill: impl FnOnce(wgpu::WriteOnly<'_, [u8]>),
    ) -> Result<()> {
        let mut fill = Some(fill);
        let mut once = |dst: wgpu::WriteOnly<'_, [u8]>| {
            if let Some(fill) = fill.take() {
                fill(dst);
            }
        };
        self.schedule_frame(frame, input, Source::Fill(&mut once))
    }

    /// As [`GpuBackend::schedule`] for a frame of RGB8 pixels (`width × height × 3` bytes,
    /// row-major, as JPEG decoders and most cameras give them): they go up as they are, a
    /// quarter fewer bytes than RGBA and no widening on the host, and the kernels read them
    /// 3 bytes a pixel. The result is what `schedule` gives for the same pixels with alpha 255
    /// and `has_alpha` false (an RGB source): RGBA pixels, or the mode's bytes
    /// (`tests/gpu_modes.rs` checks every mode). `rgb` is copied into the slot's upload buffer
    /// and may be reused as soon as this returns.
    ///
    /// The first RGB frame compiles a second set of kernels (one more shader module).
    ///
    /// # Errors
    /// [`Error::Usage`] when `rgb` does not hold `width × height × 3` bytes; otherwise as
    /// [`GpuBackend::schedule`]. A frame over the storage binding limit is split into bands
    /// whose offsets must be aligned for 3-byte rows too: an odd width then needs bands of
    /// 256 rows (with the usual 256-byte alignment), which at 128 MiB bindings fails only past
    /// about 170,000 pixels across.
    pub fn schedule_rgb(
        &mut self,
        width: u32,
        height: u32,
        rgb: &[u8],
        meta: FrameMeta,
    ) -> Result<()> {
        crate::frame::check_rgb_len(width, height, rgb.len(), meta.seq)?;
        let frame = Frame::unfilled(width, height, false, meta);
        self.schedule_frame(frame, InputLayout::Rgb, Source::Borrowed(rgb))
    }

    /// As [`GpuBackend::schedule_rgb`], with no host copy on the way up: `fill` writes the
    /// frame's RGB8 pixels (`width × height × 3` bytes) straight into the slot's mapped upload
    /// buffer, under the same terms as [`GpuBackend::schedule_with`]'s `fill`.
    ///
    /// # Errors
    /// As [`GpuBackend::schedule`].
    pub fn schedule_rgb_with(
        &mut self,
        width: u32,
        height: u32,
        meta: FrameMeta,
        fill: impl FnOnce(wgpu::WriteOnly<'_, [u8]>),
    ) -> Result<()> {
        let frame = Frame::unfilled(width, height, false, meta);
        self.schedule_filled(frame, InputLayout::Rgb, fill)
    }

    /// The kernels that read `input`.
    fn kernels_for(&self, input: InputLayout) -> Option<&Kernels> {
        match input {
            InputLayout::Rgba => self.kernels.as_ref(),
            InputLayout::Rgb => self.rgb_kernels.as_deref(),
        }
    }

    /// Schedules `frame` in `input`'s layout, its pixels from `source`.
    fn schedule_frame(
        &mut self,
        mut frame: Frame,
        input: InputLayout,
        source: Source<'_>,
    ) -> Result<()> {
        self.ctx.take_error()?;
        crate::mode::source::settle(&mut frame, &self.ops)?;
        if input == InputLayout::Rgb && self.rgb_kernels.is_none() {
            self.rgb_kernels = Kernels::new(&self.ctx, &self.ops, InputLayout::Rgb)?.map(Box::new);
        }
        let seq = frame.meta.seq;
        let bytes = u64::from(frame.width) * u64::from(frame.height) * 4;
        let mut route = Route::of(self.mode, self.dither, frame.has_alpha, frame.pixels());
        let own_mode = self
            .mode
            .is_some_and(|mode| frame.source.converts_itself(mode));
        if own_mode {
            // Pillow converts this source from its own mode: the pass runs the ops alone.
            route = Route::RgbaThenCpu;
        }
        if bytes == 0 {
            self.queue.push_back(Scheduled {
                frame,
                state: State::Done,
                route,
            });
            return Ok(());
        }
        if bytes > self.max_buffer {
            return Err(Error::Gpu(format!(
                "frame {seq}: {}×{} is {bytes} bytes; the adapter's buffers hold at most {}",
                frame.width, frame.height, self.max_buffer
            )));
        }
        let in_bpp = input.bytes_per_pixel();
        let plan = |bpp| {
            kernels::plan_bands(frame.width, frame.height, self.limits, in_bpp, bpp)
                .map_err(|err| Error::Gpu(format!("frame {seq}: {err}")))
        };
        let frame_kernels = self.kernels_for(input);
        let mut packed = match (route, frame_kernels) {
            (Route::Packed, Some(kernels)) => kernels.packed.as_ref().map(|p| p.mode),
            _ => None,
        };
        if route == Route::Packed && packed.is_none() {
            // Not reached (a point-wise mode always has its kernel); the CPU is the safe answer.
            route = Route::RgbaThenCpu;
        }
        let mut bands = Vec::new();
        let wavefront = frame_kernels.is_some_and(|k| k.dither.is_some());
        if route == Route::RgbaThenCpu
            && !own_mode
            && self.dither_on_gpu
            && wavefront
            && frame.width.is_multiple_of(4)
            && self.mode == Some(ImageMode::One)
        {
            // One band only: the waves cross every row of the frame.
            let bilevel = PackedMode::layout(ImageMode::One);
            let one_band = plan(Some(bilevel.bytes_per_pixel))?;
            if one_band.len() == 1 {
                (route, packed, bands) = (Route::GpuDither, Some(bilevel), one_band);
            }
        }
        if bands.is_empty() && frame_kernels.is_some() {
            bands = plan(packed.map(|p| p.bytes_per_pixel))?;
        }
        while self.free.is_empty() {
            if !self.queue.iter().any(|s| matches!(s.state, State::Gpu(_))) {
                // Not reached: every taken slot holds a frame on the GPU. An error, not a hang.
                return Err(Error::Gpu(format!(
                    "frame {seq}: every slot of the ring is taken and none is on the GPU"
                )));
            }
            self.finish_oldest_on_gpu();
        }
        let slot = self.free.pop().expect("the loop above frees a slot");
        let ctx = Arc::clone(&self.ctx);
        let pixels = match source {
            Source::Own => Pixels::Copy(&frame.rgba),
            Source::Borrowed(bytes) => Pixels::Copy(bytes),
            Source::Fill(fill) => Pixels::Fill(fill),
        };
        let submitted = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            ctx.scoped(&format!("frame {seq}"), || {
                self.submit(slot, &frame, input, pixels, route, packed, &bands)
            })
        }));
        let submitted = submitted.unwrap_or_else(|panic| {
            // A panic in the caller's `fill`: give the slot back afresh (its upload buffer is
            // left mapped and half-written), then let the panic go on.
            self.slots[slot] = Slot::default();
            self.free.push(slot);
            std::panic::resume_unwind(panic)
        });
        match submitted {
            Ok(job) => {
                self.queue.push_back(Scheduled {
                    frame,
                    state: State::Gpu(job),
                    route,
                });
                if self.deferred.len() >= self.batch {
                    self.flush();
                }
                Ok(())
            }
            Err(err) => {
                // The slot's buffers may be left mapped or half-written: start it afresh.
                self.slots[slot] = Slot::default();
                self.free.push(slot);
                Err(err)
            }
        }
    }

    /// The oldest scheduled frame once it is finished, with its own pixel buffer and metadata,
    /// and with a mode set, `Frame::image` equal to what the CPU processor gives.
    /// `wait = false` returns `Ok(None)` when it is still on the GPU; `wait = true` blocks until
    /// it is done. `Ok(None)` too when nothing is pending.
    ///
    /// # Errors
    /// [`Error::Gpu`] naming the frame when its work or its readback failed; the frame is
    /// dropped and the next call goes on with the next one.
    pub fn collect(&mut self, wait: bool) -> Result<Option<Frame>> {
        self.flush();
        let (mode, dither) = (self.mode, self.dither);
        let Some(front) = self.queue.front_mut() else {
            return Ok(None);
        };
        if let State::Gpu(job) = &front.state {
            match wait_job(&self.ctx, job, wait) {
                Ok(false) => return Ok(None),
                Ok(true) => {
                    let job = take_job(&mut front.state);
                    let then_cpu = then_cpu(mode, dither, front.route);
                    front.state =
                        match copy_back(&self.slots[job.slot], &job, &mut front.frame, then_cpu) {
                            Ok(()) => State::Done,
                            Err(err) => State::Failed(err),
                        };
                    self.free.push(job.slot);
                }
                Err(err) => {
                    let job = take_job(&mut front.state);
                    self.slots[job.slot] = Slot::default();
                    self.free.push(job.slot);
                    front.state = State::Failed(err);
                }
            }
        }
        let done = self
            .queue
            .pop_front()
            .expect("the front entry was looked at above");
        match done.state {
            State::Done => {
                let mut frame = done.frame;
                if let (Some((mode, dither)), None) =
                    (then_cpu(mode, dither, done.route), &frame.image)
                {
                    // A frame of no pixels, never on the GPU.
                    frame.image = Some(crate::mode::cpu::convert_frame(mode, dither, &frame));
                }
                Ok(Some(frame))
            }
            State::Failed(err) => Err(err),
            State::Gpu(_) => unreachable!("a frame still on the GPU is never popped"),
        }
    }

    /// As [`GpuBackend::collect`], with no host copy on the way down: `read` sees the oldest
    /// finished frame's output where the GPU left it, in the mapped readback, and its result is
    /// returned. The bytes are RGBA8, or with a mode its pixels in
    /// [`ModeImage::as_bytes`](crate::mode::ModeImage::as_bytes)'s layout: exactly what
    /// [`collect`](GpuBackend::collect) would put in the frame (`tests/gpu_modes.rs` checks it).
    ///
    /// Frames whose mode finishes on the CPU (Floyd–Steinberg dithering, `P` from an RGBA
    /// source) and frames already copied back (when `schedule` had to wait for a slot) are lent
    /// from the frame's own buffers instead. The frame itself is dropped after `read`.
    ///
    /// # Errors
    /// As [`GpuBackend::collect`].
    pub fn collect_with<R>(
        &mut self,
        wait: bool,
        read: impl FnOnce(FinishedFrame<'_>) -> R,
    ) -> Result<Option<R>> {
        self.flush();
        let mode = self.mode;
        let in_place = match self.queue.front() {
            None => return Ok(None),
            Some(front) => match &front.state {
                State::Gpu(job) => job.packed.is_some() || mode.is_none(),
                _ => false,
            },
        };
        if !in_place {
            let Some(mut frame) = self.collect(wait)? else {
                return Ok(None);
            };
            if let (Some(mode), None) = (mode, &frame.image) {
                // A frame without pixels: its (empty) image in the mode all the same.
                frame.image = Some(crate::mode::cpu::convert_frame(mode, self.dither, &frame));
            }
            return Ok(Some(frame.lend(read)));
        }
        let front = self.queue.front_mut().expect("looked at above");
        let State::Gpu(job) = &front.state else {
            unreachable!("in_place implies a frame on the GPU")
        };
        match wait_job(&self.ctx, job, wait) {
            Ok(false) => Ok(None),
            Ok(true) => {
                let job = take_job(&mut front.state);
                let done = self.queue.pop_front().expect("the front entry");
                // Free before `read` runs: `read_mapped` unmaps the readback on every path,
                // a panic in `read` included, so the ring stays whole if the caller catches it.
                self.free.push(job.slot);
                let result = read_mapped(&self.slots[job.slot], &job, &done.frame, read);
                if result.is_err() {
                    self.slots[job.slot] = Slot::default();
                }
                result.map(Some)
            }
            Err(err) => {
                let job = take_job(&mut front.state);
                self.queue.pop_front();
                self.slots[job.slot] = Slot::default();
                self.free.push(job.slot);
                Err(err)
            }
        }
    }

    /// Waits for the oldest frame still on the GPU and copies it back, freeing its slot; a
    /// failure is kept in the frame's entry for `collect` to report in order.
    fn finish_oldest_on_gpu(&mut self) {
        self.flush();
        let (mode, dither) = (self.mode, self.dither);
        let Some(entry) = self
            .queue
            .iter_mut()
            .find(|s| matches!(s.state, State::Gpu(_)))
        else {
            // The flush failed: every frame it held is marked failed and its slot is free.
            return;
        };
        let job = take_job(&mut entry.state);
        let then_cpu = then_cpu(mode, dither, entry.route);
        let result = wait_job(&self.ctx, &job, true)
            .and_then(|_| copy_back(&self.slots[job.slot], &job, &mut entry.frame, then_cpu));
        match result {
            Ok(()) => entry.state = State::Done,
            Err(err) => {
                self.slots[job.slot] = Slot::default();
                entry.state = State::Failed(err);
            }
        }
        self.free.push(job.slot);
    }

    /// Makes `slot`'s buffers hold `bytes` (allocating only when they are smaller), with the
    /// kernels' storage buffers and `params_bytes` of band params when the frame has `kernels`.
    fn ensure_capacity(&mut self, slot: usize, bytes: u64, kernels: bool, params_bytes: u64) {
        let device = &self.ctx.device;
        let s = &mut self.slots[slot];
        if kernels && (s.params.is_none() || s.params_capacity < params_bytes) {
            let size = params_bytes.max(PARAMS_SIZE);
            s.params = Some(device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("shutter params"),
                size,
                usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            }));
            s.params_capacity = size;
            s.bands = None;
        }
        if kernels && s.maxes.is_none() {
            s.maxes = Some(device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("shutter sepia-norm maxima"),
                size: 4 * self.norms.max(1) as u64,
                usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            }));
        }
        if s.capacity >= bytes && (s.kernel_buffers || !kernels) {
            return;
        }
        // Keep what the slot had: RGBA and RGB frames may take turns in it.
        let kernels = kernels || s.kernel_buffers;
        let bytes = bytes.max(s.capacity);
        let buffer = |label, usage| {
            device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: bytes,
                usage,
                mapped_at_creation: false,
            })
        };
        let (input_usage, output) = if kernels {
            let output = buffer(
                "shutter output",
                wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
            );
            // COPY_SRC too: a slot that once held an RGB frame keeps these buffers, and an
            // identity RGBA frame after it is copied straight from `input` (`write_buffer`).
            (
                wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
                Some(output),
            )
        } else {
            (wgpu::BufferUsages::COPY_SRC, None)
        };
        s.input = Some(buffer(
            "shutter input",
            input_usage | wgpu::BufferUsages::COPY_DST,
        ));
        s.output = output;
        s.readback = Some(buffer(
            "shutter readback",
            wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        ));
        s.staging = Some(device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("shutter upload"),
            size: bytes,
            usage: wgpu::BufferUsages::MAP_WRITE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: true,
        }));
        s.staging_mapped = MapSignal::new(MapState::Mapped);
        s.capacity = bytes;
        s.kernel_buffers = kernels;
        s.bands = None;
        self.allocations += 1;
    }

    /// Makes `slot`'s dithering error rows hold `width` pixels, with the dithering kernel (every
    /// bind group then binds them, whatever the frame's route). Returns true when it allocated.
    fn ensure_errors(&mut self, slot: usize, width: u32) -> bool {
        if !kernels::dithers_bilevel(&self.ops) {
            return false;
        }
        let bytes = (kernels::DITHER_ROWS * u64::from(width) * 4).max(16);
        let s = &mut self.slots[slot];
        if s.errors.is_some() && s.errors_capacity >= bytes {
            return false;
        }
        s.errors = Some(self.ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("shutter dithering errors"),
            size: bytes,
            usage: wgpu::BufferUsages::STORAGE,
            mapped_at_creation: false,
        }));
        s.errors_capacity = bytes;
        true
    }

    /// Uploads, encodes and submits one frame in `slot` (its pixels in `input`'s layout), then
    /// starts mapping its readback: RGBA pixels, or with `packed` the mode's bytes (rounded up
    /// to a whole word).
    #[allow(clippy::too_many_arguments)]
    fn submit(
        &mut self,
        slot: usize,
        frame: &Frame,
        input: InputLayout,
        pixels: Pixels<'_>,
        route: Route,
        packed: Option<PackedMode>,
        bands: &[Band],
    ) -> Result<Job> {
        let rgba_bytes = frame.pixels() as u64 * 4;
        let in_bytes = frame.pixels() as u64 * u64::from(input.bytes_per_pixel());
        // Buffer copies and writes go in whole words; the last word's spare bytes go unread.
        let upload_bytes = in_bytes.div_ceil(4) * 4;
        let bytes = match packed {
            Some(p) => p.image_bytes(frame.pixels() as u64).div_ceil(4) * 4,
            None => rgba_bytes,
        };
        let has_kernels = self.kernels_for(input).is_some();
        // With kernels, room for a packed output's last quad (4 pixels × up to 4 bytes).
        let capacity = if has_kernels {
            (frame.pixels() as u64).div_ceil(QUAD) * QUAD * 4
        } else {
            rgba_bytes
        };
        let params_stride = self.limits.uniform_alignment.max(PARAMS_SIZE);
        let params_bytes = params_stride * bands.len().max(1) as u64;
        self.ensure_capacity(slot, capacity, has_kernels, params_bytes);
        if self.ensure_errors(slot, frame.width) {
            self.slots[slot].bands = None;
        }
        let frame_kernels = match input {
            InputLayout::Rgba => self.kernels.as_ref(),
            InputLayout::Rgb => self.rgb_kernels.as_deref(),
        };
        let device = &self.ctx.device;
        let queue = &self.ctx.queue;
        let s = &mut self.slots[slot];
        let input_buffer = s.input.as_ref().expect("ensure_capacity made the input");
        let readback = s
            .readback
            .as_ref()
            .expect("ensure_capacity made the readback");
        let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
            label: Some("shutter frame"),
        });
        let staged = self.upload == Upload::Staging;
        if staged {
            let staging = s
                .staging
                .as_ref()
                .expect("ensure_capacity made the upload buffer");
            wait_mapped(
                &self.ctx,
                &s.staging_mapped,
                s.submission.as_ref(),
                frame.meta.seq,
            )?;
            {
                let mut view = staging
                    .slice(..upload_bytes)
                    .get_mapped_range_mut()
                    .map_err(|err| Error::Gpu(format!("frame {}: {err}", frame.meta.seq)))?;
                match pixels {
                    Pixels::Copy(src) => par_copy(view.slice(..in_bytes as usize), src),
                    Pixels::Fill(fill) => fill(view.slice(..in_bytes as usize)),
                }
            }
            staging.unmap();
            s.staging_mapped.set(MapState::Pending);
            if has_kernels {
                encoder.copy_buffer_to_buffer(staging, 0, input_buffer, 0, upload_bytes);
            }
        } else {
            match pixels {
                Pixels::Copy(src) if in_bytes == upload_bytes => {
                    queue.write_buffer(input_buffer, 0, src)
                }
                pixels => {
                    let size = wgpu::BufferSize::new(upload_bytes)
                        .expect("frames without pixels are never submitted");
                    let mut view =
                        queue
                            .write_buffer_with(input_buffer, 0, size)
                            .ok_or_else(|| {
                                Error::Gpu(format!(
                                    "frame {}: wgpu gave no staging memory for the upload",
                                    frame.meta.seq
                                ))
                            })?;
                    match pixels {
                        Pixels::Copy(src) => par_copy(view.slice(..in_bytes as usize), src),
                        Pixels::Fill(fill) => fill(view.slice(..in_bytes as usize)),
                    }
                }
            }
        }

        match frame_kernels {
            Some(kernels) => {
                let output = s.output.as_ref().expect("kernels imply an output buffer");
                let params = s.params.as_ref().expect("kernels imply a params buffer");
                let maxes = s.maxes.as_ref().expect("kernels imply a maxes buffer");
                let params_bytes = kernels::band_params(
                    bands,
                    frame.width,
                    frame.has_alpha,
                    self.limits.uniform_alignment,
                );
                queue.write_buffer(params, 0, &params_bytes);
                let size = (frame.width, frame.height);
                let is_packed = packed.is_some();
                if s.bands.as_ref().is_none_or(|bound| {
                    bound.size != size || bound.packed != is_packed || bound.input != input
                }) {
                    let buffers = BandBuffers {
                        src: input_buffer,
                        dst: output,
                        params,
                        maxes,
                        errors: s.errors.as_ref(),
                    };
                    let groups = bands
                        .iter()
                        .zip((0..).map(|k| k * params_stride))
                        .map(|(band, at)| (*band, kernels.bind_group(device, &buffers, band, at)))
                        .collect();
                    s.bands = Some(BoundBands {
                        size,
                        packed: is_packed,
                        input,
                        groups,
                    });
                }
                let groups = &s
                    .bands
                    .as_ref()
                    .expect("bind groups were just built")
                    .groups;
                encode_pass(
                    &mut encoder,
                    kernels,
                    groups,
                    self.norms,
                    maxes,
                    route,
                    is_packed,
                );
                s.last_pass = Some(Pass {
                    route,
                    packed: is_packed,
                    input,
                });
                encoder.copy_buffer_to_buffer(output, 0, readback, 0, bytes);
            }
            // The identity: straight from the upload buffer back, one GPU copy.
            None => {
                let source = match (staged, s.staging.as_ref()) {
                    (true, Some(staging)) => staging,
                    _ => input_buffer,
                };
                encoder.copy_buffer_to_buffer(source, 0, readback, 0, bytes);
            }
        }
        // Submitted (and its readback mapped) by `flush`, alone or with the rest of a batch.
        self.deferred.push(encoder.finish());
        Ok(Job {
            seq: frame.meta.seq,
            slot,
            bytes,
            packed,
            staged,
            submission: None,
            mapped: MapSignal::new(MapState::Pending),
        })
    }
}

/// Records the ops of one frame: the sepia-norm reductions, then the point pass (RGBA or a
/// packed mode) or the dithering wavefronts, over every band's bind group.
fn encode_pass(
    encoder: &mut wgpu::CommandEncoder,
    kernels: &Kernels,
    groups: &[(Band, wgpu::BindGroup)],
    norms: usize,
    maxes: &wgpu::Buffer,
    route: Route,
    is_packed: bool,
) {
    if norms > 0 {
        encoder.clear_buffer(maxes, 0, None);
    }
    let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
        label: Some("shutter ops"),
        timestamp_writes: None,
    });
    // Each reduction sees the maxima of the ones before it; the last pass (RGBA, packed mode or
    // dithering) sees them all.
    for pipeline in &kernels.reductions {
        pass.set_pipeline(pipeline);
        for (band, group) in groups {
            pass.set_bind_group(0, group, &[]);
            pass.dispatch_workgroups(band.groups.0, band.groups.1, 1);
        }
    }
    let dither = kernels
        .dither
        .as_ref()
        .filter(|_| route == Route::GpuDither);
    let mode_pass = kernels.packed.as_ref().filter(|_| is_packed);
    if let (Some(dither), Some((_, group))) = (dither, groups.first()) {
        // One workgroup walks every wave of the one band (dither.wgsl).
        pass.set_pipeline(dither);
        pass.set_bind_group(0, group, &[]);
        pass.dispatch_workgroups(1, 1, 1);
    } else if let Some(mode_pass) = mode_pass {
        pass.set_pipeline(&mode_pass.pipeline);
        for (band, group) in groups {
            pass.set_bind_group(0, group, &[]);
            let (x, y) = band.mode_groups;
            pass.dispatch_workgroups(x, y, 1);
        }
    } else {
        pass.set_pipeline(&kernels.point);
        for (band, group) in groups {
            pass.set_bind_group(0, group, &[]);
            pass.dispatch_workgroups(band.groups.0, band.groups.1, 1);
        }
    }
}

/// Takes the job out of a `State::Gpu`, leaving `Done` in its place.
fn take_job(state: &mut State) -> Job {
    match std::mem::replace(state, State::Done) {
        State::Gpu(job) => job,
        _ => unreachable!("take_job is only called on frames on the GPU"),
    }
}

/// True once `job`'s readback is mapped. Polls the device without blocking, or (with `block`)
/// waits for the job's submission and then for the mapping's callback, which another thread
/// polling the same device may be the one to run (see [`super::map`]).
fn wait_job(ctx: &GpuContext, job: &Job, block: bool) -> Result<bool> {
    if job.mapped.state() == MapState::Pending {
        let poll = if block {
            wgpu::PollType::Wait {
                submission_index: job.submission.clone(),
                timeout: None,
            }
        } else {
            wgpu::PollType::Poll
        };
        ctx.device
            .poll(poll)
            .map_err(|err| Error::Gpu(format!("frame {}: waiting for the GPU: {err}", job.seq)))?;
    }
    let state = if block {
        job.mapped.settle(SETTLE_LIMIT)
    } else {
        job.mapped.state()
    };
    match state {
        MapState::Mapped => Ok(true),
        MapState::Pending if !block => Ok(false),
        MapState::Pending => {
            ctx.take_error()?;
            Err(Error::Gpu(format!(
                "frame {}: the GPU finished but its readback never mapped",
                job.seq
            )))
        }
        MapState::Failed => {
            ctx.take_error()?;
            Err(Error::Gpu(format!(
                "frame {}: mapping its readback failed (device lost or validation error)",
                job.seq
            )))
        }
    }
}

/// Waits until a slot's upload buffer is mapped again after its last frame (normally at once:
/// the slot is free only once that frame's readback was mapped, after the same submission).
fn wait_mapped(
    ctx: &GpuContext,
    signal: &MapSignal,
    submission: Option<&wgpu::SubmissionIndex>,
    seq: u64,
) -> Result<()> {
    if signal.state() == MapState::Pending {
        ctx.device
            .poll(wgpu::PollType::Wait {
                submission_index: submission.cloned(),
                timeout: None,
            })
            .map_err(|err| Error::Gpu(format!("frame {seq}: waiting for the GPU: {err}")))?;
    }
    if signal.settle(SETTLE_LIMIT) == MapState::Mapped {
        return Ok(());
    }
    ctx.take_error()?;
    Err(Error::Gpu(format!(
        "frame {seq}: the upload buffer could not be mapped again"
    )))
}

/// The mode and dithering that the CPU applies to a frame of `route` after the GPU's pass,
/// if any, in a ring converting to `mode`.
fn then_cpu(mode: Option<ImageMode>, dither: Dither, route: Route) -> Option<(ImageMode, Dither)> {
    mode.filter(|_| route == Route::RgbaThenCpu)
        .map(|mode| (mode, dither))
}

/// Copies a mapped readback out and unmaps it: a packed mode's bytes into a new
/// `Frame::image` sized exactly; RGBA without a mode into the frame's own pixel buffer (whole
/// rows: the whole frame), the ops' result; RGBA that `then_cpu`'s mode converts on the CPU
/// into a buffer of its own, converted from there, so that the frame's pixels stay as
/// captured, as in every other route.
fn copy_back(
    slot: &Slot,
    job: &Job,
    frame: &mut Frame,
    then_cpu: Option<(ImageMode, Dither)>,
) -> Result<()> {
    let mapped = MappedView::of(slot, job, frame.meta.seq)?;
    let view = mapped.bytes();
    match (&job.packed, then_cpu) {
        (Some(packed), _) => {
            let image = modes::image_from_bytes(packed, frame.width, frame.height, view);
            frame.image = Some(image);
        }
        (None, Some((mode, dither))) => {
            let mut filtered = vec![0; frame.pixels() * 4];
            par_copy((&mut filtered[..]).into(), view);
            drop(mapped);
            let image = crate::mode::cpu::with_pixels(frame, filtered, |frame| {
                crate::mode::cpu::convert_frame(mode, dither, frame)
            });
            frame.image = Some(image);
        }
        (None, None) => {
            // A frame scheduled with `schedule_with` has no buffer of its own yet.
            frame.rgba.resize(frame.pixels() * 4, 0);
            par_copy((&mut frame.rgba[..]).into(), view)
        }
    }
    Ok(())
}

/// A job's mapped readback, unmapped when dropped (unwinding included).
struct MappedView<'a> {
    buffer: &'a wgpu::Buffer,
    /// `Some` until dropped: the view must go before the buffer is unmapped.
    view: Option<wgpu::BufferView>,
}

impl<'a> MappedView<'a> {
    /// The first `job.bytes` of `slot`'s readback, which `job`'s mapping made readable.
    fn of(slot: &'a Slot, job: &Job, seq: u64) -> Result<Self> {
        let buffer = slot
            .readback
            .as_ref()
            .expect("a submitted slot has a readback buffer");
        let view = buffer
            .slice(..job.bytes)
            .get_mapped_range()
            .map_err(|err| Error::Gpu(format!("frame {seq}: {err}")))?;
        Ok(MappedView {
            buffer,
            view: Some(view),
        })
    }

    fn bytes(&self) -> &[u8] {
        self.view.as_ref().expect("set until dropped")
    }
}

impl Drop for MappedView<'_> {
    fn drop(&mut self) {
        self.view = None;
        self.buffer.unmap();
    }
}

/// Lends a mapped readback to `read` as the frame's output (RGBA, or the packed mode's exact
/// bytes), then unmaps it (also when `read` panics).
fn read_mapped<R>(
    slot: &Slot,
    job: &Job,
    frame: &Frame,
    read: impl FnOnce(FinishedFrame<'_>) -> R,
) -> Result<R> {
    let mapped = MappedView::of(slot, job, frame.meta.seq)?;
    let pixels = frame.pixels() as u64;
    let (mode, len) = match &job.packed {
        Some(packed) => (Some(packed.mode), packed.image_bytes(pixels)),
        None => (None, pixels * 4),
    };
    let palette = (mode == Some(ImageMode::P)).then(modes::gpu_palette);
    Ok(read(FinishedFrame {
        meta: &frame.meta,
        width: frame.width,
        height: frame.height,
        mode,
        bytes: &mapped.bytes()[..len as usize],
        palette,
    }))
}

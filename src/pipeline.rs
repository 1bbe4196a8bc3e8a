//! The pipeline: a capture thread, a GPU thread and a sink (encoder pool or callback), joined
//! by bounded channels so decoding, GPU work and encoding of different frames overlap.
//!
//! ```text
//!  capture thread            gpu thread                         sink thread ──▶ encoder pool
//!  decode inputs ──Msg──▶  schedule / collect on the  ──Msg──▶  group frames per input,
//!  (bounded: in_flight)    Processor (GPU ring or CPU)           name outputs, or call back
//! ```
//! A bad input fails alone: its error travels down the same channels, in order, the frame
//! files it had written are removed, and the others are still written. A GPU or callback
//! error stops the whole run.
//!
//! Live sources (webcams, patterns, user grabbers) run through the same stages; each link
//! applies the [`FramePolicy`] (block, latest wins, or drop the new frame), and at most one
//! frame per `stream_every` goes on from the capture, the first captured at or after each
//! tick: the others are neither decoded nor processed. Every frame is accounted for:
//! captured = processed + dropped before the GPU + dropped by the interval, and
//! processed = delivered + dropped before the sink + dropped after a stop + failed (frames
//! of an input that failed, or whose own file did).

use std::collections::{HashMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, bounded};

use crate::backend::{self, BackendKind, DeviceChoice, Processor};
use crate::budget::Budget;
use crate::error::{BoxError, Error, Result};
use crate::frame::{Frame, FrameMeta};
use crate::mode::{Dither, ImageMode};
use crate::ops::{Filter, Ops};
use crate::sink::encode::{self, Format};
use crate::sink::sequence::{Encoders, SequenceWriter};
use crate::source::live::{Clock, FrameGrabber, RawFormat, SystemClock};
use crate::source::{self, DecodeLimits, Input, Source};
use crate::stream::{Counters, Drops, FramePolicy, Latency, LatencyHistogram, Link, Sent};

/// Where encoded files go.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// A directory (created if missing): `<stem>.<ext>` per input, or `<stem>_<00000>.<ext>` per
    /// frame when a multi-frame input meets a format that holds one frame.
    Dir(PathBuf),
    /// One file, for a run with exactly one input. An extension that names a format must
    /// agree with the run's format. A multi-frame input in a format that holds one frame is
    /// written beside it, one file per frame: `result.png` → `result_00000.png`, ….
    File(PathBuf),
}

impl Output {
    /// The directory or file named.
    pub fn path(&self) -> &Path {
        match self {
            Output::Dir(path) | Output::File(path) => path,
        }
    }
}

/// Something that happened during a run, for progress displays.
#[derive(Debug)]
pub enum Event<'a> {
    /// The run found this many inputs (after directories were expanded), before any frame:
    /// `names[i]` is the name of input `i`, the [`FrameMeta::input`] of its frames (inputs
    /// that could not be listed, which have no frames, are counted but not named).
    Started {
        /// Inputs of the run, those that could not be listed included.
        inputs: usize,
        /// The names of the inputs that could be listed, by input index.
        names: &'a [String],
    },
    /// [`DeviceChoice::Auto`] (`--device auto`) runs on the CPU, for this reason: no adapter
    /// was found, only a software one (faster on the CPU), or the run was given none
    /// ([`gpu_context(None)`](PipelineBuilder::gpu_context)).
    CpuFallback {
        /// Why no GPU was used: [`Error::NoAdapter`], [`Error::SoftwareAdapter`], or the
        /// [`Error::Gpu`] that opening the adapter gave.
        reason: &'a Error,
    },
    /// An input finished: all its outputs were written (or delivered), or it failed.
    InputDone {
        /// The input's name, as in `Started`'s `names`; for an input that could not be
        /// listed (a missing file, an empty directory), the path its error names.
        name: &'a str,
        /// Why the input failed; `None` when all its outputs were written or delivered.
        error: Option<&'a Error>,
    },
}

/// A frame callback, as the sink calls it.
type FrameFn<'f> = dyn FnMut(&Frame) -> std::result::Result<(), BoxError> + 'f;
type FrameCallback = Box<dyn FnMut(&Frame) -> std::result::Result<(), BoxError> + Send>;
type EventCallback = Arc<dyn Fn(Event<'_>) + Send + Sync>;

/// Builds a [`Pipeline`]. Every setting has the CLI's default.
pub struct PipelineBuilder {
    sources: Vec<Source>,
    ops: Ops,
    device: DeviceChoice,
    in_flight: usize,
    in_flight_bytes: u64,
    limits: DecodeLimits,
    output: Option<(Output, Format)>,
    on_frame: Option<FrameCallback>,
    on_event: Option<EventCallback>,
    encoder_threads: usize,
    decode_threads: usize,
    policy: Option<FramePolicy>,
    stream_every: Option<Duration>,
    time_limit: Option<Duration>,
    limit_grace: Duration,
    idle_timeout: Option<Duration>,
    max_frames: Option<u64>,
    batch: usize,
    clock: Option<Arc<dyn Clock>>,
    stop: Option<Arc<AtomicBool>>,
    abort: Option<Arc<AtomicBool>>,
    /// [`gpu_context`](PipelineBuilder::gpu_context) when called: the context, or `None`
    /// for none (the run opens no GPU then).
    context: Option<Option<Arc<crate::gpu::GpuContext>>>,
    icc_profiles: bool,
}

/// A configured run: sources in, ops, sinks out. See [`Pipeline::builder`].
///
/// ```
/// use shutter::{DeviceChoice, Filter, FrameArrayView, ImageMode, Pipeline, Source};
///
/// # let dir = std::env::temp_dir().join(format!("shutter-doc-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir).unwrap();
/// # let path = dir.join("in.png");
/// # image::RgbImage::from_fn(8, 4, |x, y| image::Rgb([x as u8 * 30, y as u8 * 60, 200]))
/// #     .save(&path).unwrap();
/// let mut widths = Vec::new();
/// let stats = Pipeline::builder()
///     .source(Source::Path(path))
///     .mirror(true)
///     .filter(Filter::Sepia)
///     .device(DeviceChoice::Cpu)
///     .mode(ImageMode::L)
///     .on_frame(move |frame| {
///         // What Gradio's numpy users get from np.asarray(im.convert("L")): (H, W) u8.
///         // Borrowed from the frame; `frame.array()` would copy it.
///         let FrameArrayView::U8(gray) = frame.array_view() else {
///             return Err("not u8".into());
///         };
///         assert_eq!(gray.shape(), &[4, 8]);
///         widths.push(gray.shape()[1]);
///         Ok(())
///     })
///     .build()?
///     .run()?;
/// assert_eq!(stats.frames, 1);
/// assert!(stats.failures.is_empty());
/// # Ok::<(), shutter::Error>(())
/// ```
pub struct Pipeline {
    builder: PipelineBuilder,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Pipeline").field(&self.builder).finish()
    }
}

impl std::fmt::Debug for PipelineBuilder {
    /// The settings; the callbacks, clock, flags and GPU context by whether they are set.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PipelineBuilder")
            .field("sources", &self.sources)
            .field("ops", &self.ops)
            .field("device", &self.device)
            .field("in_flight", &self.in_flight)
            .field("in_flight_bytes", &self.in_flight_bytes)
            .field("limits", &self.limits)
            .field("output", &self.output)
            .field("on_frame", &self.on_frame.is_some())
            .field("on_event", &self.on_event.is_some())
            .field("encoder_threads", &self.encoder_threads)
            .field("decode_threads", &self.decode_threads)
            .field("policy", &self.policy)
            .field("stream_every", &self.stream_every)
            .field("time_limit", &self.time_limit)
            .field("limit_grace", &self.limit_grace)
            .field("max_frames", &self.max_frames)
            .field("batch", &self.batch)
            .field("clock", &self.clock.is_some())
            .field("stop", &self.stop.is_some())
            .field("abort", &self.abort.is_some())
            .field(
                "gpu_context",
                &self.context.as_ref().map(|ctx| ctx.is_some()),
            )
            .field("icc_profiles", &self.icc_profiles)
            .finish()
    }
}

/// What a run did.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    /// Inputs found (after directory expansion), failed ones included.
    pub inputs: usize,
    /// Frames that went through the ops.
    pub frames: u64,
    /// Frames the sources produced.
    pub captured: u64,
    /// Frames handed to the callback, or written to a file (a file input that fails takes
    /// its frames back; a stream's one GIF, WebP or npy that fails counts the frames fed to
    /// it in [`Drops::after_stop`], as the stop its failure makes).
    pub delivered: u64,
    /// Frames dropped by the frame policy or `stream_every`, by where.
    pub drops: Drops,
    /// Frames processed that reached no output because their input failed (an animation cut
    /// short part-way, a file that could not be written: its frames are taken back from
    /// [`delivered`](Self::delivered)), or because their own frame file did (a live
    /// stream's, which goes on), when no callback took them.
    pub failed_frames: u64,
    /// Capture-to-sink latency of the delivered frames.
    pub latency: Option<Latency>,
    /// Files written.
    pub written: Vec<PathBuf>,
    /// One error per failed input, each naming its file ([`Error::input`]; a live source's
    /// own error, such as a closure's [`Error::User`], names the source in its message
    /// only): first the inputs that could not be listed (a missing file, an empty
    /// directory), then the others in the order they failed, which frames in flight can make
    /// other than the inputs' order.
    pub failures: Vec<Error>,
    /// Inputs not written because the run stopped first (the stop flag, `time_limit` or
    /// `max_frames`): never started, or decoded but not yet being encoded when the stop
    /// came (see [`Drops::after_stop`]); 0 for a live source.
    pub not_reached: usize,
    /// File inputs with transparency (a frame with an alpha below 255) converted to a mode
    /// without alpha, such as `RGB`, which drops it as Pillow's `convert` does: Gradio's
    /// default `image_mode` drops it without a word, and the CLI says so.
    pub alpha_dropped: usize,
    /// Wall time of the run.
    pub elapsed: Duration,
    /// The backend that processed the frames.
    pub backend: Option<BackendKind>,
    /// The most bytes the frames of files took at once between decoding and encoding (see
    /// [`PipelineBuilder::in_flight_bytes`]); 0 for a live source.
    pub in_flight_peak_bytes: u64,
    /// The live source sent nothing for the [`idle_timeout`](PipelineBuilder::idle_timeout),
    /// which ended the run.
    pub source_idle: bool,
}

impl Stats {
    /// Frames processed per second over the whole run ([`frames`](Self::frames)). On a live
    /// source that drops frames (`stream_every`, [`FramePolicy::Latest`]) this is what the
    /// pipeline kept up with; [`delivered_fps`](Self::delivered_fps) is what reached the
    /// sinks.
    pub fn fps(&self) -> f64 {
        self.per_second(self.frames)
    }

    /// Frames delivered per second over the whole run ([`delivered`](Self::delivered)): to
    /// the callback or the encoders, after every drop.
    pub fn delivered_fps(&self) -> f64 {
        self.per_second(self.delivered)
    }

    fn per_second(&self, frames: u64) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            frames as f64 / secs
        } else {
            0.0
        }
    }
}

impl Default for PipelineBuilder {
    fn default() -> Self {
        PipelineBuilder {
            sources: Vec::new(),
            ops: Ops::default(),
            device: DeviceChoice::Auto,
            in_flight: 3,
            in_flight_bytes: DEFAULT_IN_FLIGHT_BYTES,
            limits: DecodeLimits::default(),
            output: None,
            on_frame: None,
            on_event: None,
            encoder_threads: default_threads(),
            decode_threads: default_threads(),
            policy: None,
            stream_every: None,
            time_limit: None,
            limit_grace: LIMIT_GRACE,
            idle_timeout: None,
            max_frames: None,
            batch: 1,
            clock: None,
            stop: None,
            abort: None,
            context: None,
            icc_profiles: true,
        }
    }
}

impl Pipeline {
    /// A builder with the defaults: no sources, no ops, `--device auto`, 3 frames in flight.
    pub fn builder() -> PipelineBuilder {
        PipelineBuilder::default()
    }
}

impl PipelineBuilder {
    /// Adds a source: a file, a directory, stdin, bytes, or a live one (a camera, the
    /// pattern, a grabber such as [`FuncGrabber`](crate::source::live::FuncGrabber)), which
    /// must be the only source ([`build`](PipelineBuilder::build) refuses it with others).
    /// A [`PathBuf`] or `&Path` is a [`Source::Path`].
    pub fn source(mut self, source: impl Into<Source>) -> Self {
        self.sources.push(source.into());
        self
    }

    /// Adds several sources (paths, or [`Source`]s).
    pub fn sources<S: Into<Source>>(mut self, sources: impl IntoIterator<Item = S>) -> Self {
        self.sources.extend(sources.into_iter().map(Into::into));
        self
    }

    /// Mirrors frames horizontally (before any filter).
    pub fn mirror(mut self, on: bool) -> Self {
        self.ops.mirror = on;
        self
    }

    /// Appends a filter; filters run in the order they are added.
    pub fn filter(mut self, filter: Filter) -> Self {
        self.ops.filters.push(filter);
        self
    }

    /// Appends several filters.
    pub fn filters(mut self, filters: impl IntoIterator<Item = Filter>) -> Self {
        self.ops.filters.extend(filters);
        self
    }

    /// Runs on `ctx`, a GPU context opened once ([`GpuContext::new`]) and shared by runs,
    /// instead of opening one for [`device`](PipelineBuilder::device) at every run (tens of
    /// milliseconds, more on a real GPU): for a server that builds a pipeline per request.
    /// `None` (no GPU found at start-up: `GpuContext::new().ok()`) opens none: the run does
    /// not look for an adapter again.
    ///
    /// `device` still decides whether it is used, as it decides for a context the run opens:
    /// [`DeviceChoice::Auto`] (the default) runs on the CPU when `ctx` is a software adapter
    /// such as lavapipe, or `None`, with [`Event::CpuFallback`]; [`DeviceChoice::Cpu`] never
    /// uses it; [`DeviceChoice::Gpu`] always does, and with `None` the run fails with
    /// [`Error::NoAdapter`].
    ///
    /// [`GpuContext::new`]: crate::gpu::GpuContext::new
    pub fn gpu_context(mut self, ctx: impl Into<Option<Arc<crate::gpu::GpuContext>>>) -> Self {
        self.context = Some(ctx.into());
        self
    }

    /// Where the ops run (default [`DeviceChoice::Auto`]).
    pub fn device(mut self, device: DeviceChoice) -> Self {
        self.device = device;
        self
    }

    /// Frames on the GPU at once (default 3).
    pub fn in_flight(mut self, frames: usize) -> Self {
        self.in_flight = frames;
        self
    }

    /// The most bytes that frames of files take between their decoding and the end of their
    /// encoding or callback (default [`DEFAULT_IN_FLIGHT_BYTES`]): a frame counts its RGBA
    /// pixels and its converted image (4 bytes a pixel, plus the mode's), from the start of
    /// its decoding when it is decoded ahead ([`PipelineBuilder::decode_threads`]). The next
    /// frame waits while the frames in flight take more, and files are decoded ahead only
    /// while there is room for them and for the frame whose turn it is (their sizes read from
    /// their headers). However large, one frame always goes through, alone. Stages hold
    /// frames by count (`in_flight` on the GPU, two a thread at the encoders), so this bounds
    /// a run only when frames are huge: a GIF's canvas can be 65,535 pixels a side, 17 GB a
    /// frame. [`Stats::in_flight_peak_bytes`] says what a run held at most.
    pub fn in_flight_bytes(mut self, bytes: u64) -> Self {
        self.in_flight_bytes = bytes;
        self
    }

    /// Converts every frame to Pillow's `image_mode` as the last step (default `RGB`, as
    /// Gradio); callbacks get the matching array from [`Frame::array`].
    pub fn mode(mut self, mode: ImageMode) -> Self {
        self.ops.mode = Some(mode);
        self
    }

    /// Dithering for modes `1` and `P` (default Floyd–Steinberg, as Pillow); [`build`]
    /// refuses another one for any other mode, which nothing dithers.
    ///
    /// [`build`]: PipelineBuilder::build
    pub fn dither(mut self, dither: Dither) -> Self {
        self.ops.dither = dither;
        self
    }

    /// Decoding limits against decompression bombs.
    pub fn limits(mut self, limits: DecodeLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Whether frames carry their file's ICC colour profile (default on):
    /// [`FrameMeta::icc_profile`], and the PNG, JPEG, TIFF and WebP files written from them,
    /// where the profile describes the output's colours (see [`crate::sink::encode`]). Off,
    /// outputs have no profile, as Gradio's WebP files have none.
    pub fn icc_profiles(mut self, on: bool) -> Self {
        self.icc_profiles = on;
        self
    }

    /// Encodes every output in `format` and writes it to `output`.
    pub fn output(mut self, output: Output, format: Format) -> Self {
        self.output = Some((output, format));
        self
    }

    /// Threads that encode and write files (default: the machine's cores, at most 8).
    pub fn encoder_threads(mut self, threads: usize) -> Self {
        self.encoder_threads = threads.max(1);
        self
    }

    /// Threads that decode files (default: the machine's cores, at most 8). They decode the
    /// next inputs' first frames (a still image's only one) while the frames before them are
    /// sent on, as many inputs ahead as there are threads and within
    /// [`PipelineBuilder::in_flight_bytes`]; the inputs still go on in order, so outputs and
    /// failures are the same whatever the number.
    pub fn decode_threads(mut self, threads: usize) -> Self {
        self.decode_threads = threads.max(1);
        self
    }

    /// Calls `f` with every processed frame, in input order, on the thread that called
    /// [`Pipeline::run`]; the result is [`Frame::array`] (`frame.rgba` is the frame as
    /// captured). Returning an error stops the run, and [`Pipeline::run`] returns it as
    /// [`Error::User`], whose message names the frame, then gives the error's
    /// (`on_frame (shots/a.png, frame 0): client gone`), and whose [`Error::user_error`] is the
    /// error itself: a GIF, WebP or npy of a stream being written is then not written. The error is
    /// a [`BoxError`], so `?` takes any error type in the same closure (an `io::Error`, a
    /// [`shutter::Error`](Error)) and `Err("why".into())` gives a message; `Ok(())` needs no
    /// annotation. To end a
    /// stream from the callback and keep that file, set the [`stop_flag`] instead. A panic in
    /// `f` unwinds out of [`Pipeline::run`]; the pipeline's own threads, and its source, stop
    /// by themselves.
    ///
    /// [`stop_flag`]: PipelineBuilder::stop_flag
    pub fn on_frame(
        mut self,
        f: impl FnMut(&Frame) -> std::result::Result<(), BoxError> + Send + 'static,
    ) -> Self {
        self.on_frame = Some(Box::new(f));
        self
    }

    /// Calls `f` with progress events (from several threads).
    pub fn on_event(mut self, f: impl Fn(Event<'_>) + Send + Sync + 'static) -> Self {
        self.on_event = Some(Arc::new(f));
        self
    }

    /// What a busy stage does with a new frame (default: `Lossless` for files, unpaced
    /// patterns and closures; `Latest` for webcams, paced patterns and closures, and any live
    /// source with [`stream_every`](Self::stream_every)).
    pub fn policy(mut self, policy: FramePolicy) -> Self {
        self.policy = Some(policy);
        self
    }

    /// Delivers at most one frame per `interval`: the first captured at or after each tick
    /// (Gradio's `stream_every`; a webcam's default is 0.5 s). Other frames are dropped as
    /// they are captured, before they are decoded or processed, and counted in
    /// [`Drops::by_interval`]. Live sources only: [`build`](PipelineBuilder::build) refuses it
    /// on files, which are all delivered.
    pub fn stream_every(mut self, interval: Duration) -> Self {
        self.stream_every = Some(interval);
        self
    }

    /// Stops capturing after this long on the pipeline clock (Gradio's `time_limit`): no frame
    /// captured later is taken, nor waited for when a paced source says it is due later
    /// ([`FrameGrabber::next_due`]). Frames already captured (up to the in-flight count at each
    /// stage) still finish, and files are complete; on a batch of files the inputs not started
    /// are counted in [`Stats::not_reached`]. A source that sends nothing more (blocked in a
    /// read of an open stdin, a stalled camera, a closure that waits) is given up on once
    /// nothing has come for the [`limit_grace`](Self::limit_grace) (0.5 s) past the limit, as
    /// the [`abort_flag`](Self::abort_flag) gives it up: the run ends on time with what it
    /// got.
    /// Once the source has ended (or the limit ended its capture), the frames still being
    /// processed are waited for, however long they take.
    pub fn time_limit(mut self, limit: Duration) -> Self {
        self.time_limit = Some(limit);
        self
    }

    /// How long past the [`time_limit`](Self::time_limit) a source that sends nothing more is
    /// waited for before the run gives it up ([`LIMIT_GRACE`] unless set), and how long the
    /// stages are waited for after a callback's error before it is returned.
    pub fn limit_grace(mut self, grace: Duration) -> Self {
        self.limit_grace = grace;
        self
    }

    /// Ends a live stream whose source has sent nothing for this long (Gradio closes a stream
    /// idle for 30 s): a stalled camera, a closure waiting for frames that do not come. The
    /// wait is counted on the pipeline clock while the source is in its call, from when a
    /// paced source's frame is due ([`FrameGrabber::next_due`]), and only while nothing comes
    /// out of the stages either: a source kept waiting by the stages behind it (the lossless
    /// policy, or a closure waiting for a callback's answer) is not idle, nor is one whose
    /// earlier frames are still being processed. The run then ends as the
    /// [`abort_flag`](Self::abort_flag) ends it: what was delivered is kept (a stream's GIF,
    /// WebP or npy is written with the frames it has), the source is left in its call, and
    /// [`Stats::source_idle`] is set (not after a stop: the run ends as stopped). Live sources
    /// only; none by default (the CLI's is 30 s for a webcam).
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = Some(timeout);
        self
    }

    /// Stops capturing after `frames` frames.
    pub fn max_frames(mut self, frames: u64) -> Self {
        self.max_frames = Some(frames);
        self
    }

    /// Puts up to `frames` waiting frames in one GPU submission (Gradio's `max_batch_size`);
    /// the ring grows to hold them. 1 to [`MAX_IN_FLIGHT`].
    pub fn batch(mut self, frames: usize) -> Self {
        self.batch = frames;
        self
    }

    /// The clock live sources pace on and timestamps come from (default:
    /// [`SystemClock::shared`], the clock grabbers stamp on by default; tests use a manual one).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// A flag that ends the run cleanly when set (the CLI sets it on Ctrl-C): no new frame or
    /// file is taken, the frames in flight finish and every file written is complete. The
    /// capture sees the flag between frames, so a source blocked in its call (a stalled camera,
    /// a closure waiting for frames that do not come) keeps the run waiting for that call to
    /// return; to give up on it, set the [`abort_flag`](Self::abort_flag) too (as a second
    /// Ctrl-C does), or give the run a [`time_limit`](Self::time_limit), which gives up on such
    /// a source 0.5 s after the limit.
    pub fn stop_flag(mut self, stop: Arc<AtomicBool>) -> Self {
        self.stop = Some(stop);
        self
    }

    /// A flag that ends the run now when set (the CLI sets it on a second Ctrl-C), for a
    /// source that sends nothing more: the sink stops waiting for frames, writes each
    /// sequence with the frames it has (a GIF, WebP or npy of a stream), lets the encoding under
    /// way finish, and [`run`](Pipeline::run) returns without waiting for the capture, whose
    /// thread ends once its source returns. The frame counts are those at the abort: frames
    /// still on their way to the sink are not counted as dropped.
    pub fn abort_flag(mut self, abort: Arc<AtomicBool>) -> Self {
        self.abort = Some(abort);
        self
    }

    /// Checks the settings, as the CLI checks its flags.
    ///
    /// # Errors
    /// [`Error::Usage`] when:
    /// - there is no source, [`Source::Stdin`] is given twice, or a live source (a webcam,
    ///   a pattern, a grabber) is given with other sources;
    /// - `in_flight` or `batch` is out of range, or a dithering other than the default is
    ///   given for a mode other than `1` and `P`;
    /// - a pattern's size or rate is out of range, its frames are past the decode limits or
    ///   larger than the output format holds ([`Format::max_side`]);
    /// - files are given a [`policy`](Self::policy) other than `Lossless`, or a
    ///   [`stream_every`](Self::stream_every) (files are all delivered), or `stream_every` is
    ///   zero;
    /// - the output format is built by hand with settings [`Format::check`] refuses, or cannot
    ///   hold the mode (naming the formats that can);
    /// - the output is `-`, an existing directory given as [`Output::File`], a file named for
    ///   a format shutter does not write (`.apng`, `.svg`, …), or a file named for another
    ///   format than the one given.
    pub fn build(mut self) -> Result<Pipeline> {
        let mode = *self.ops.mode.get_or_insert(ImageMode::Rgb);
        if self.ops.dither != Dither::default() {
            mode.dither_for(Some(self.ops.dither))?;
        }
        if let Some((output, format)) = &self.output {
            format.check()?;
            format.check_mode(mode)?;
            check_output(output)?;
            // A file named for one format and written in another would mislead every reader.
            if let Output::File(file) = output
                && let Some(Ok(named)) = Format::from_path(file, None, false)
                && named.extension() != format.extension()
            {
                return Err(Error::Usage(format!(
                    "output {}: the name says {}, the format is {}; give a matching file name",
                    file.display(),
                    named.extension(),
                    format.extension()
                )));
            }
        }
        if self.sources.is_empty() {
            return Err(Error::Usage("no input given".into()));
        }
        for source in &self.sources {
            if let Source::Pattern { width, height, fps } = source {
                // Known before any frame: usage errors, as for a file's size they are not.
                crate::source::pattern::check_pattern("pattern", *width, *height, *fps)?;
                self.limits
                    .check(
                        &format!("pattern:{width}x{height}"),
                        u64::from(*width),
                        u64::from(*height),
                    )
                    .map_err(|e| Error::Usage(format!("{e} (--max-pixels)")))?;
                if let Some((_, format)) = &self.output
                    && let Some(max) = format.max_side()
                    && (*width > max || *height > max)
                {
                    return Err(Error::Usage(format!(
                        "pattern:{width}x{height}: a {} side is at most {max} pixels; give a \
                         smaller pattern or another format (--format)",
                        format.extension()
                    )));
                }
            }
        }
        check_in_flight("in_flight (--in-flight)", self.in_flight)?;
        check_in_flight("batch (--batch)", self.batch)?;
        if self
            .sources
            .iter()
            .filter(|s| matches!(s, Source::Stdin))
            .count()
            > 1
        {
            return Err(Error::Usage(
                "'-' (standard input) can be given only once".into(),
            ));
        }
        let live = self.sources.iter().filter(|s| s.is_live()).count();
        if live > 0 && self.sources.len() > 1 {
            return Err(Error::Usage(
                "a live source (webcam, pattern, grabber) runs alone: give it as the only source"
                    .into(),
            ));
        }
        if live == 0 && self.policy.is_some_and(|p| p != FramePolicy::Lossless) {
            return Err(Error::Usage(
                "policy (--policy): files are processed losslessly; latest and drop-new apply to live \
                 sources"
                    .into(),
            ));
        }
        if live == 0 && self.stream_every.is_some() {
            // Files are captured as fast as they decode: an interval would keep one file of a
            // batch and drop the rest without failing them.
            return Err(Error::Usage(
                "stream_every (--stream-every): applies to live sources (webcam, pattern, \
                 grabber); files are all delivered"
                    .into(),
            ));
        }
        if live == 0 && self.idle_timeout.is_some() {
            return Err(Error::Usage(
                "idle_timeout (--idle-timeout): applies to live sources (webcam, pattern, \
                 grabber)"
                    .into(),
            ));
        }
        if self.idle_timeout.is_some_and(|d| d.is_zero()) {
            return Err(Error::Usage(
                "idle_timeout (--idle-timeout): must be more than 0 seconds".into(),
            ));
        }
        if self.stream_every.is_some_and(|d| d.is_zero()) {
            return Err(Error::Usage(
                "stream_every (--stream-every): must be more than 0 seconds".into(),
            ));
        }
        Ok(Pipeline { builder: self })
    }
}

/// What travels between the stages.
// A frame's fields are a few hundred bytes beside its megabytes of pixels: boxing it would
// add an allocation per frame to save a copy of them per send.
#[allow(clippy::large_enum_variant)]
enum Msg {
    Frame(Frame),
    /// Input `input` failed; frames of it already sent must be discarded.
    Failed {
        input: usize,
        error: Error,
    },
    /// Input `input` (a live stream) has ended.
    End {
        input: usize,
    },
}

/// Where frames come from in this run.
enum Capture {
    Files {
        inputs: Vec<Input>,
        bounds: crate::ahead::Bounds,
        /// What the frames keep of their files.
        keep: Keep,
    },
    Live {
        live: LiveCapture,
        /// Stamp frames with the pipeline clock on arrival (cameras keep their own clock).
        restamp: bool,
    },
}

/// A live source as its capture thread takes it.
struct LiveCapture {
    grabber: Box<dyn FrameGrabber>,
    /// How errors name the source (`pattern:640x480`, `webcam:0`).
    name: String,
    /// `--max-pixels` and the rest, for each frame.
    limits: DecodeLimits,
}

/// When capture stops early (and, for files, when the sink stops taking frames).
#[derive(Clone)]
struct StopRules {
    max_frames: Option<u64>,
    time_limit: Option<Duration>,
    /// The caller's stop flag.
    stop: Option<Arc<AtomicBool>>,
    /// Set by the run itself once the sink has stopped (a callback's error, say): the capture
    /// stops at its next frame, and the stages behind it drain and end.
    halt: Arc<AtomicBool>,
    start: Duration,
}

/// Sets its flag when dropped.
struct SetOnDrop(Arc<AtomicBool>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

impl StopRules {
    fn stopped(&self) -> bool {
        self.halt.load(Ordering::Relaxed)
            || self
                .stop
                .as_ref()
                .is_some_and(|s| s.load(Ordering::Relaxed))
    }

    fn reached(&self, captured: u64, now: Duration) -> bool {
        self.stopped() || self.max_frames.is_some_and(|n| captured >= n) || self.past_limit(now)
    }

    fn past_limit(&self, t: Duration) -> bool {
        self.time_limit
            .is_some_and(|limit| t.saturating_sub(self.start) >= limit)
    }
}

impl Pipeline {
    /// Runs every input through the ops to the sinks and waits for the last file.
    ///
    /// Bad inputs do not stop the run: they are listed in [`Stats::failures`].
    ///
    /// # Errors
    /// [`Error::Usage`] when nothing receives the frames (no output, no `on_frame` callback).
    /// A problem with the run as a whole: the output directory cannot be created,
    /// [`Output::File`] with several inputs, no GPU for [`DeviceChoice::Gpu`], a GPU failure, a
    /// callback's error. After a callback's error the capture stops at its next frame; one
    /// blocked in its source (a closure that waits, a stalled camera) is not waited for past
    /// the [`limit_grace`](PipelineBuilder::limit_grace) (0.5 s): the error is returned then,
    /// and the capture ends on its own when its source returns, as after the
    /// [`abort_flag`](PipelineBuilder::abort_flag).
    ///
    /// # Panics
    /// A panic in the [`on_frame`](PipelineBuilder::on_frame) callback, or in the function of
    /// a [`FuncGrabber`](crate::source::live::FuncGrabber) source, goes on in the caller with
    /// its own payload; except a source's panic after the run has given up on it (the abort
    /// flag, a time limit's grace, a callback's error), when `run` has already returned.
    pub fn run(mut self) -> Result<Stats> {
        let mut on_frame = self.builder.on_frame.take();
        let callback = on_frame.as_deref_mut().map(|f| f as &mut FrameFn<'_>);
        self.run_inner(callback)
    }

    /// [`run`](Pipeline::run), calling `f` as an [`on_frame`](PipelineBuilder::on_frame)
    /// callback would be called: with every processed frame, in input order, on this thread.
    /// `f` may borrow from the caller and need not be `Send`, so it can fill a local `Vec`
    /// or drive a UI object that stays on its thread.
    ///
    /// ```
    /// use shutter::{DeviceChoice, Pipeline, Source};
    ///
    /// # let dir = std::env::temp_dir().join(format!("shutter-run-with-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir).unwrap();
    /// # let path = dir.join("in.png");
    /// # image::RgbImage::from_fn(8, 4, |x, y| image::Rgb([x as u8 * 30, y as u8 * 60, 200]))
    /// #     .save(&path).unwrap();
    /// let mut sizes = Vec::new(); // borrowed by the callback, read after the run
    /// Pipeline::builder()
    ///     .source(Source::Path(path))
    ///     .device(DeviceChoice::Cpu)
    ///     .build()?
    ///     .run_with(|frame| {
    ///         sizes.push((frame.width, frame.height));
    ///         Ok(())
    ///     })?;
    /// assert_eq!(sizes, [(8, 4)]);
    /// # Ok::<(), shutter::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`run`](Pipeline::run); [`Error::Usage`] when the builder has an `on_frame`
    /// callback too.
    ///
    /// # Panics
    /// As [`run`](Pipeline::run).
    pub fn run_with(
        self,
        mut f: impl FnMut(&Frame) -> std::result::Result<(), BoxError>,
    ) -> Result<Stats> {
        if self.builder.on_frame.is_some() {
            return Err(Error::Usage(
                "run_with takes the place of on_frame: give the callback once".into(),
            ));
        }
        let mut callback = |frame: &Frame| f(frame);
        self.run_inner(Some(&mut callback))
    }

    /// The run, with `on_frame` the callback of [`run`](Pipeline::run) or
    /// [`run_with`](Pipeline::run_with).
    fn run_inner(self, on_frame: Option<&mut FrameFn>) -> Result<Stats> {
        let started = Instant::now();
        if self.builder.output.is_none() && on_frame.is_none() {
            return Err(Error::Usage(
                "nothing receives the frames: give an output or an on_frame callback".into(),
            ));
        }
        let PipelineBuilder {
            sources,
            ops,
            device,
            in_flight,
            in_flight_bytes,
            limits,
            output,
            on_event,
            encoder_threads,
            decode_threads,
            policy,
            stream_every,
            time_limit,
            limit_grace,
            idle_timeout,
            max_frames,
            batch,
            clock,
            stop,
            abort,
            context,
            icc_profiles,
            on_frame: _,
        } = self.builder;
        let emit = |event: Event<'_>| {
            if let Some(f) = &on_event {
                f(event);
            }
        };
        // The shared clock: a grabber built before the run stamps its frames on it too.
        let clock: Arc<dyn Clock> = clock.unwrap_or_else(SystemClock::shared);

        let none_given = || Error::NoAdapter("the run was given no GPU context".into());
        let (gpu, fallback) = match (context, device) {
            (Some(_), DeviceChoice::Cpu) => (None, None),
            (Some(Some(ctx)), DeviceChoice::Auto) if ctx.is_software() => {
                (None, Some(Error::SoftwareAdapter(ctx.describe())))
            }
            (Some(Some(ctx)), _) => (Some(ctx), None),
            (Some(None), DeviceChoice::Auto) => (None, Some(none_given())),
            (Some(None), DeviceChoice::Gpu) => return Err(none_given()),
            (None, device) => backend::open(device)?,
        };
        if let Some(reason) = &fallback {
            emit(Event::CpuFallback { reason });
        }
        let backend_kind = match &gpu {
            Some(ctx) => BackendKind::Gpu(ctx.info.name.clone()),
            None => BackendKind::Cpu,
        };

        let mut failures = Vec::new();
        let live = sources.first().is_some_and(Source::is_live);
        // Each input file's real path, for the sink to refuse an output that would overwrite
        // another input (`run dir -o dir/`, where `anim_00000.png` is also an input).
        let mut input_files = HashMap::new();
        let (capture, names, stems, file_names, default_policy) = match sources.first() {
            Some(live) if live.is_live() => {
                let (grabber, name, stem, policy) = live.open_live(clock.clone())?;
                let restamp = matches!(live, Source::Webcam { .. });
                let capture = Capture::Live {
                    live: LiveCapture {
                        grabber,
                        name: name.clone(),
                        limits,
                    },
                    restamp,
                };
                (
                    capture,
                    vec![name],
                    vec![OsString::from(stem)],
                    vec![None],
                    policy,
                )
            }
            _ => {
                let mut inputs = Vec::new();
                for item in source::expand(&sources) {
                    match item {
                        Ok(input) => inputs.push(input),
                        Err(error) => failures.push(error),
                    }
                }
                for (index, input) in inputs.iter().enumerate() {
                    if let source::InputKind::File(path) = &input.kind
                        && let Ok(real) = std::fs::canonicalize(path)
                    {
                        input_files.entry(real).or_insert_with(Vec::new).push(index);
                    }
                }
                let names = inputs.iter().map(|i| i.name.clone()).collect();
                let stems = inputs.iter().map(Input::stem_os).collect();
                let file_names = inputs.iter().map(Input::file_name_os).collect();
                (
                    Capture::Files {
                        inputs,
                        bounds: crate::ahead::Bounds {
                            limits,
                            max_side: output
                                .as_ref()
                                .and_then(|(_, f)| Some((f.max_side()?, f.extension()))),
                        },
                        keep: Keep {
                            alpha: ops
                                .mode
                                .is_none_or(|m| matches!(m, ImageMode::Rgba | ImageMode::P)),
                            icc_profiles,
                            filtered: !ops.filters.is_empty(),
                            keys: ops.mode.filter(|&mode| {
                                ops.filters.is_empty()
                                    && output.as_ref().is_some_and(|(_, f)| f.keeps_key(mode))
                            }),
                        },
                    },
                    names,
                    stems,
                    file_names,
                    FramePolicy::Lossless,
                )
            }
        };
        // A stream delivered at most once an interval wants each delivered frame fresh:
        // under `Lossless` an unpaced closure's frames wait behind a slow callback, and age.
        let default_policy = if stream_every.is_some() {
            FramePolicy::Latest
        } else {
            default_policy
        };
        let policy = policy.unwrap_or(default_policy);
        let input_count = names.len() + failures.len();
        emit(Event::Started {
            inputs: input_count,
            names: &names,
        });
        for error in &failures {
            emit(Event::InputDone {
                name: &error.input().unwrap_or_default(),
                error: Some(error),
            });
        }

        let namer = match &output {
            Some((out, format)) => Some(OutputNamer::prepare(out, *format, &stems, &file_names)?),
            None => None,
        };
        // Dropped on every way out of this function, once the sink has written what it does.
        let _tidy = RemoveIfEmpty(namer.as_ref().map_or_else(Vec::new, |n| n.created.clone()));
        let mut processor = Processor::new(gpu.clone(), &ops, in_flight.max(batch))?;
        processor.set_batch(batch);

        let counters = Arc::new(Counters::default());
        let budget = Budget::new(in_flight_bytes);
        let capture_budget = Charge {
            budget: budget.clone(),
            bytes_per_pixel: 4 + ops
                .mode
                .map_or(0, |mode| (mode.bands() * mode.dtype().size()) as u64),
        };
        let (capture_tx, capture_rx) = bounded::<Msg>(in_flight);
        let (gpu_tx, gpu_rx) = bounded::<Msg>(in_flight);
        let to_gpu = Link::new(capture_tx, capture_rx.clone(), policy);
        let capture_drain = capture_rx.clone();
        let to_sink = Link::new(gpu_tx, gpu_rx.clone(), policy);
        let halt = Arc::new(AtomicBool::new(false));
        // Set on every way out of this function, a panic in the callback included: the
        // threads are not joined then, and an endless source must not run on without a reader.
        let halt_on_exit = SetOnDrop(halt.clone());
        let rules = StopRules {
            max_frames,
            time_limit,
            stop,
            halt: halt.clone(),
            start: clock.now(),
        };
        let sink_rules = rules.clone();

        let capture_counters = counters.clone();
        let capture_clock = clock.clone();
        // Set once the capture has returned (its source ended, or a stop rule ended it):
        // from then on the frames still in the stages are only waited for.
        let capture_ended = Arc::new(AtomicBool::new(false));
        let ended_on_exit = SetOnDrop(capture_ended.clone());
        // Weak: a capture blocked in its source (a stalled camera, a closure that never
        // returns) outlives an aborted run, and must not keep the context alive with it.
        let capture_gpu = gpu.as_ref().map(Arc::downgrade);
        let source_wait = Arc::new(SourceWait::default());
        let capture_wait = source_wait.clone();
        let capture = thread::Builder::new()
            .name("shutter-capture".into())
            .spawn(move || {
                let _ended_on_exit = ended_on_exit;
                match capture {
                    Capture::Files {
                        inputs,
                        bounds,
                        keep,
                    } => {
                        let stopped = || rules.stopped();
                        crate::ahead::decode_ahead(
                            &inputs,
                            &bounds,
                            &capture_budget.budget,
                            capture_budget.bytes_per_pixel,
                            decode_threads,
                            &stopped,
                            |decoder| {
                                capture_files(
                                    &inputs,
                                    decoder,
                                    keep,
                                    &capture_budget,
                                    &rules,
                                    &*capture_clock,
                                    &to_gpu,
                                    &capture_counters,
                                )
                            },
                        )
                    }
                    Capture::Live { live, restamp } => {
                        capture_live(
                            live,
                            &*capture_clock,
                            restamp,
                            capture_gpu,
                            stream_every,
                            &capture_wait,
                            &rules,
                            &to_gpu,
                            &capture_counters,
                        );
                        0
                    }
                }
            })
            .map_err(|e| Error::Gpu(format!("cannot start the capture thread: {e}")))?;
        let gpu_counters = counters.clone();
        let gpu_halt = halt.clone();
        let gpu_thread = thread::Builder::new()
            .name("shutter-gpu".into())
            .spawn(move || {
                let newest = policy == FramePolicy::Latest && batch == 1;
                gpu_loop(
                    &mut processor,
                    (batch, newest),
                    (&capture_rx, &gpu_halt),
                    &to_sink,
                    &gpu_counters,
                )
            })
            .map_err(|e| Error::Gpu(format!("cannot start the GPU thread: {e}")))?;

        let newest_first = policy == FramePolicy::Latest && on_frame.is_some() && namer.is_none();
        let sink = Sink {
            names: &names,
            namer,
            // Reborrowed for the sink's own lifetime, shorter than the caller's.
            on_frame: on_frame.map(|f| f as &mut FrameFn<'_>),
            emit: &emit,
            encoder_threads,
            input_files,
            clock: &*clock,
            counters: &counters,
            all_or_nothing: !live,
            rules: sink_rules,
            grace: limit_grace,
            capture_ended,
            abort,
            idle: idle_timeout.map(|timeout| (timeout, source_wait)),
            finished: std::cell::RefCell::new(HashSet::new()),
            failed: HashSet::new(),
            cut: HashSet::new(),
            skipped_sequences: HashSet::new(),
            frame_files: HashMap::new(),
            delivered_by_input: HashMap::new(),
            newest_first,
        };
        let sink_result = sink.run(&gpu_rx);
        // The statistics, once the sink's part is known (`not_reached`: by the capture).
        let stats = |sunk: SinkResult, mut failures: Vec<Error>, not_reached: usize| {
            failures.extend(sunk.failures);
            let get = |c: &std::sync::atomic::AtomicU64| Counters::get(c);
            Stats {
                inputs: input_count,
                frames: get(&counters.processed),
                captured: get(&counters.captured),
                delivered: get(&counters.delivered),
                failed_frames: get(&counters.failed),
                drops: Drops {
                    before_gpu: get(&counters.dropped_before_gpu),
                    before_sink: get(&counters.dropped_before_sink),
                    by_interval: get(&counters.dropped_by_interval),
                    after_stop: get(&counters.dropped_after_stop),
                },
                latency: sunk.latency.summary(),
                written: sunk.written,
                failures,
                not_reached: not_reached + sunk.not_reached,
                alpha_dropped: get(&counters.alpha_dropped) as usize,
                elapsed: started.elapsed(),
                backend: Some(backend_kind.clone()),
                in_flight_peak_bytes: budget.peak(),
                source_idle: sunk.idle,
            }
        };
        if let Ok(sunk) = &sink_result
            && sunk.aborted
        {
            // The capture may be blocked in its source: neither it nor the GPU thread is
            // waited for. They end on their own (the halt flag, a closed channel). Inputs the
            // sink never finished were not reached.
            drop(halt_on_exit);
            let sunk = sink_result?;
            let unfinished = names.len().saturating_sub(sunk.finished + sunk.not_reached);
            return Ok(stats(sunk, failures, unfinished));
        }
        // If the sink stopped early (a callback's error), the stages before it must too: the
        // capture stops at its next frame, and what is still in flight is drained here until
        // the GPU thread has ended, so that none of its sends waits for a reader that left;
        // likewise for the capture after a GPU error (the GPU thread no longer reads). A
        // capture blocked in its source (a closure that waits, a stalled camera) is not
        // waited for past `LIMIT_GRACE`: it is left to end on its own, as an aborted run
        // leaves it, and the error is returned now.
        drop(halt_on_exit);
        // `None`: a grace past what an `Instant` holds (`Duration::MAX`), no deadline.
        let deadline = Instant::now().checked_add(limit_grace);
        let gpu_joined = drain_until(&gpu_rx, deadline).then(|| gpu_thread.join());
        let capture_joined = drain_until(&capture_drain, deadline).then(|| capture.join());
        // A panic on either thread (a grabber's closure, say) goes on in the caller, with its
        // own message, as a panic in `on_frame` does.
        let gpu_result =
            gpu_joined.map(|joined| joined.unwrap_or_else(|p| std::panic::resume_unwind(p)));
        let not_reached =
            capture_joined.map(|joined| joined.unwrap_or_else(|p| std::panic::resume_unwind(p)));
        if let Some(result) = gpu_result {
            result?;
        }
        let sunk = sink_result?;
        // A capture left running: the inputs the sink never finished were not reached.
        let not_reached = not_reached
            .unwrap_or_else(|| names.len().saturating_sub(sunk.finished + sunk.not_reached));
        Ok(stats(sunk, failures, not_reached))
    }
}

/// Refuses an output no run can write: `-` (standard output, which shutter does not write), an
/// existing directory named as one file, a file named for a format shutter does not write.
fn check_output(output: &Output) -> Result<()> {
    let path = match output {
        Output::File(path) | Output::Dir(path) => path,
    };
    if path.as_os_str() == "-" {
        return Err(Error::Usage(
            "output -: shutter does not write to standard output; give a file or directory".into(),
        ));
    }
    if let Output::File(file) = output {
        if file.is_dir() {
            return Err(Error::Usage(format!(
                "output {}: is a directory; give Output::Dir to write into it",
                file.display()
            )));
        }
        if let Some(ext) = file.extension().and_then(|e| e.to_str())
            && encode::UNWRITTEN_EXTENSIONS.contains(&ext.to_ascii_lowercase().as_str())
        {
            return Err(Error::Usage(format!(
                "output {}: shutter does not write {ext} files; it writes webp, png, jpeg, gif, \
                 bmp, tiff and npy",
                file.display()
            )));
        }
    }
    Ok(())
}

/// Takes what `rx` still holds until its senders are gone (true) or `deadline` passes
/// (false); with no deadline, until its senders are gone.
fn drain_until(rx: &Receiver<Msg>, deadline: Option<Instant>) -> bool {
    let Some(deadline) = deadline else {
        rx.iter().for_each(drop);
        return true;
    };
    loop {
        match rx.recv_deadline(deadline) {
            Ok(_) => {}
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => return true,
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => return false,
        }
    }
}

/// How long past its time limit a run waits for a capture that sends nothing more (one
/// blocked reading an open stdin or still decoding a huge file, a stalled camera, a closure
/// that waits) before it ends without it; each frame still coming through the stages
/// restarts the wait.
pub const LIMIT_GRACE: Duration = Duration::from_millis(500);

/// Frames queued for a sequence's writer (a GIF, WebP or npy being written frame by frame). When
/// the writer is slower than the source, the sink waits for it, and a live source's frames
/// are dropped before the sink (`--policy`), rather than piling up in memory.
///
/// The queue holds as many frames as the writer quantises at once (the encoder threads), at
/// least this many.
const SEQUENCE_QUEUE: usize = 2;

/// The most frames a pipeline keeps in flight, or batches into one submission: each one holds
/// a frame's buffers on the GPU (and a channel slot), so far more than this only costs memory.
pub const MAX_IN_FLIGHT: usize = 64;

/// The default of [`PipelineBuilder::in_flight_bytes`]: 1 GiB, over a hundred 1080p frames
/// (far more than the stages hold) and two 8K ones converted to mode `F`, so it slows no run
/// of ordinary frames; a huge animated canvas goes through a frame or two at a time.
pub const DEFAULT_IN_FLIGHT_BYTES: u64 = 1 << 30;

/// `Ok` when `n` (the value of `flag`) is within 1 ..= [`MAX_IN_FLIGHT`].
///
/// # Errors
/// [`Error::Usage`] naming `flag` otherwise.
pub fn check_in_flight(flag: &str, n: usize) -> Result<()> {
    if (1..=MAX_IN_FLIGHT).contains(&n) {
        Ok(())
    } else {
        Err(Error::Usage(format!(
            "{flag}: {n} is out of range (1 to {MAX_IN_FLIGHT})"
        )))
    }
}

/// Sends a frame over `link`, counting it as dropped (at `counter`) when the policy drops it.
/// Returns false when the next stage is gone.
fn send_frame(link: &Link<Msg>, frame: Frame, dropped: &std::sync::atomic::AtomicU64) -> bool {
    match link.send(Msg::Frame(frame)) {
        Ok(Sent::Queued { evicted: None }) => true,
        Ok(Sent::Queued { evicted: Some(_) }) | Ok(Sent::Refused(_)) => {
            Counters::add(dropped, 1);
            true
        }
        Err(_) => false,
    }
}

/// What the frames of files keep through the pipeline.
#[derive(Debug, Clone, Copy)]
struct Keep {
    /// The mode keeps transparency: P keeps a transparent palette entry, RGBA its alpha, no
    /// mode the RGBA. Inputs whose transparency is dropped are counted.
    alpha: bool,
    /// Frames carry their file's ICC profile (where it describes their pixels).
    icc_profiles: bool,
    /// Filters run, on RGB pixels.
    filtered: bool,
    /// The mode, when the output keeps a transparency colour in it (no filter runs, and the
    /// format writes one: [`Format::keeps_key`]). A file with one loses no transparency.
    keys: Option<ImageMode>,
}

/// What each frame of a file takes from the run's [`Budget`].
struct Charge {
    budget: Arc<Budget>,
    /// RGBA, and the converted image's bytes when the run has a mode.
    bytes_per_pixel: u64,
}

/// Takes every input in order from `decoder` (which decodes ahead), sending its frames
/// (marking the last) or its failure. Returns how many inputs it never started (a stop rule
/// fired, or the pipeline stopped).
#[allow(clippy::too_many_arguments)]
fn capture_files(
    inputs: &[Input],
    decoder: &mut crate::ahead::Decoder<'_, '_>,
    keep: Keep,
    charge: &Charge,
    rules: &StopRules,
    clock: &dyn Clock,
    link: &Link<Msg>,
    counters: &Counters,
) -> usize {
    let mut seq = 0u64;
    for (index, input) in inputs.iter().enumerate() {
        let name: Arc<str> = Arc::from(input.name.as_str());
        let after = inputs.len() - index - 1;
        if rules.reached(seq, clock.now()) {
            return after + 1;
        }
        let (mut frames, mut ahead) = match decoder.take(index) {
            Ok(decoded) => (decoded.frames, decoded.ahead),
            // Ctrl-C in a terminal ends the program feeding standard input too: the data
            // cut short then is the interruption's doing, not a broken file.
            Err(_) if rules.stopped() => return after + 1,
            Err(error) => {
                if link
                    .send_blocking(Msg::Failed {
                        input: index,
                        error,
                    })
                    .is_err()
                {
                    return after;
                }
                continue;
            }
        };
        let mut frame_index = 0;
        let mut alpha_seen = false;
        loop {
            // A stop in the middle of an animation ends it with the frames sent so far.
            if frame_index > 0 && (rules.stopped() || rules.past_limit(clock.now())) {
                let _ = link.send_blocking(Msg::End { input: index });
                return after;
            }
            let Some(decoded) = frames.next() else {
                break;
            };
            let d = match decoded {
                Ok(d) => d,
                Err(error) => {
                    let _ = link.send_blocking(Msg::Failed {
                        input: index,
                        error,
                    });
                    break;
                }
            };
            let stop_after = rules.max_frames.is_some_and(|n| seq + 1 >= n);
            let more = frames.peek().is_some();
            let meta = FrameMeta {
                seq,
                input: index,
                name: name.clone(),
                index: frame_index,
                last: stop_after || !more,
                sequence: frame_index > 0 || more,
                delay: d.delay,
                plays: d.plays,
                captured: Instant::now(),
                timestamp: clock.now(),
                icc_profile: d.icc_profile.filter(|icc| {
                    keep.icc_profiles && crate::icc::describes(icc, &d.source, keep.filtered)
                }),
            };
            seq += 1;
            frame_index += 1;
            Counters::add(&counters.captured, 1);
            if !keep.alpha
                && keep
                    .keys
                    .is_none_or(|mode| d.source.transparency_key(mode).is_none())
                && d.has_alpha
                && !alpha_seen
                && d.rgba.chunks_exact(4).any(|px| px[3] < 255)
            {
                alpha_seen = true;
                Counters::add(&counters.alpha_dropped, 1);
            }
            let mut frame = Frame::new(d.width, d.height, d.rgba, d.has_alpha, meta);
            frame.source = d.source;
            // Waits while the frames ahead take the budget; a stop while waiting ends the
            // input as a stop between frames does, or leaves it unreached at its first frame.
            let bytes = charge.bytes_per_pixel * frame.pixels() as u64;
            let Some(held) = charge
                .budget
                .acquire(bytes, ahead.take(), || rules.stopped())
            else {
                if frame.meta.index == 0 {
                    return after + 1;
                }
                let _ = link.send_blocking(Msg::End { input: index });
                return after;
            };
            frame.held = Some(held);
            if !send_frame(link, frame, &counters.dropped_before_gpu) {
                return after;
            }
            if stop_after {
                return after;
            }
        }
    }
    0
}

/// Grabs frames from a live source until it ends or a stop rule fires, then sends `End`.
///
/// The time limit is on `clock`, the run's: a paced source that a lossless reader slows down
/// stamps its frames on its own schedule, which then falls behind the clock. With `restamp`
/// (a camera) frames are stamped with `clock` on arrival.
///
/// With `stream_every`, only the first frame captured at or after each tick (from the run's
/// start) goes on; the others are counted as captured and dropped by the interval here, before
/// they are decoded or processed.
#[allow(clippy::too_many_arguments)]
fn capture_live(
    mut live: LiveCapture,
    clock: &dyn Clock,
    restamp: bool,
    mut gpu: Option<std::sync::Weak<crate::gpu::GpuContext>>,
    stream_every: Option<Duration>,
    wait: &SourceWait,
    rules: &StopRules,
    link: &Link<Msg>,
    counters: &Counters,
) {
    // Raw YUYV/NV12 camera frames are converted in a WGSL pass when a GPU is in use, compiled
    // at the first such frame: a closure's or a pattern's frames never need it. Until then the
    // capture holds the context weakly (the run holds it).
    let mut yuv = None;
    let name: Arc<str> = Arc::from(live.name.as_str());
    let mut seq = 0u64;
    let mut next_tick = rules.start;
    loop {
        if rules.stopped()
            || rules.max_frames.is_some_and(|n| seq >= n)
            || rules.past_limit(clock.now())
        {
            break;
        }
        // A paced source's next frame due after the time limit is not waited for.
        let due = live.grabber.next_due();
        if due.is_some_and(|due| rules.past_limit(due)) {
            break;
        }
        wait.start(due.map_or(clock.now(), |due| due.max(clock.now())));
        let next = live.grabber.next_frame();
        wait.end();
        let raw = match next {
            // A stop (Ctrl-C, a callback's error) while the source was waiting: the frame that
            // came after it is not taken.
            Ok(Some(_)) if rules.stopped() => break,
            Ok(Some(raw)) => raw,
            Ok(None) => break,
            Err(error) => {
                let _ = link.send_blocking(Msg::Failed { input: 0, error });
                return;
            }
        };
        let timestamp = if restamp { clock.now() } else { raw.timestamp };
        if rules.past_limit(timestamp) || rules.past_limit(clock.now()) {
            break;
        }
        if let Some(interval) = stream_every {
            if timestamp < next_tick {
                Counters::add(&counters.captured, 1);
                Counters::add(&counters.dropped_by_interval, 1);
                seq += 1;
                if rules.max_frames.is_some_and(|n| seq >= n) {
                    break;
                }
                continue;
            }
            next_tick = tick_after(timestamp.saturating_sub(rules.start), interval)
                .and_then(|after| rules.start.checked_add(after))
                .unwrap_or(Duration::MAX);
        }
        if matches!(raw.format, RawFormat::Yuyv | RawFormat::Nv12)
            && let Some(ctx) = gpu.take().and_then(|ctx| ctx.upgrade())
        {
            yuv = crate::gpu::yuv::YuvConverter::new(ctx).ok();
        }
        let decoded = match crate::source::live::to_rgba_within(raw, yuv.as_mut(), &live.limits) {
            Ok(d) => d,
            Err(error) => {
                let error = error.naming(&live.name);
                let _ = link.send_blocking(Msg::Failed { input: 0, error });
                return;
            }
        };
        Counters::add(&counters.captured, 1);
        let meta = FrameMeta {
            seq,
            input: 0,
            name: name.clone(),
            index: seq as usize,
            last: false,
            sequence: true,
            delay: None,
            plays: None,
            captured: Instant::now(),
            timestamp,
            icc_profile: None,
        };
        seq += 1;
        let mut frame = Frame::from(decoded);
        frame.meta = meta;
        if !send_frame(link, frame, &counters.dropped_before_gpu) {
            return;
        }
        if rules.max_frames.is_some_and(|n| seq >= n) {
            break;
        }
    }
    let _ = link.send_blocking(Msg::End { input: 0 });
}

/// When the live capture went into its source's call for the next frame (from when that frame
/// was due, for a paced source), on the pipeline clock, in nanoseconds; [`Self::NONE`] while
/// it is not in one. The sink reads it for the [`idle_timeout`](PipelineBuilder::idle_timeout).
#[derive(Debug)]
struct SourceWait(AtomicU64);

impl Default for SourceWait {
    fn default() -> Self {
        SourceWait(AtomicU64::new(Self::NONE))
    }
}

impl SourceWait {
    const NONE: u64 = u64::MAX;

    fn start(&self, from: Duration) {
        let nanos = u64::try_from(from.as_nanos()).unwrap_or(Self::NONE - 1);
        self.0.store(nanos, Ordering::SeqCst);
    }

    fn end(&self) {
        self.0.store(Self::NONE, Ordering::SeqCst);
    }

    /// How long the source has been in its call at `now`; `None` when it is not in one.
    fn waited(&self, now: Duration) -> Option<Duration> {
        let since = self.0.load(Ordering::SeqCst);
        (since != Self::NONE).then(|| now.saturating_sub(Duration::from_nanos(since)))
    }
}

/// The first tick (a whole number of `interval`s) after `elapsed`; `None` past what a
/// `Duration` holds (an interval such as `Duration::MAX` has one tick, at the start). Counted
/// in whole nanoseconds: in floating point, 0.21 s / 0.035 s is 5.999…, which put the next
/// tick at the frame's own time and let the frame after it through in the same interval.
fn tick_after(elapsed: Duration, interval: Duration) -> Option<Duration> {
    let interval = interval.as_nanos().max(1);
    let after = (elapsed.as_nanos() / interval + 1).checked_mul(interval)?;
    let secs = u64::try_from(after / 1_000_000_000).ok()?;
    Some(Duration::new(secs, (after % 1_000_000_000) as u32))
}

/// Keeps up to `capacity` frames on the processor (scheduling up to `batch` back to back),
/// passing finished ones on in order. With `newest` (`Latest`, frames one at a time), a frame
/// taken while a newer one of its input waits behind it is dropped before the GPU for that
/// one ([`superseded`]): a GPU slower than the source starts on the newest frame, not on the
/// oldest of those the channel holds.
///
/// Idle, it ends once `halt` is set: a run that gave up on a source blocked in its call
/// (`abort_flag`, a time limit's grace, a callback's error) has returned, and the capture
/// thread waits on that source alone, not with this thread and its ring (its GPU buffers, a
/// share of the context) besides.
fn gpu_loop(
    processor: &mut Processor,
    (batch, newest): (usize, bool),
    (rx, halt): (&Receiver<Msg>, &AtomicBool),
    link: &Link<Msg>,
    counters: &Counters,
) -> Result<()> {
    let pass_on = |frame: Frame| {
        Counters::add(&counters.processed, 1);
        send_frame(link, frame, &counters.dropped_before_sink)
    };
    // A message taken from `rx` to look past a frame, to be handled next.
    let mut ahead: Option<Msg> = None;
    let mut upstream_open = true;
    loop {
        // Hand on whatever is finished without waiting.
        while let Some(done) = processor.collect(false)? {
            if !pass_on(done) {
                return Ok(());
            }
        }
        let full = processor.pending() >= processor.capacity();
        if !upstream_open || full {
            if processor.pending() == 0 {
                return Ok(());
            }
            if let Some(done) = processor.collect(true)?
                && !pass_on(done)
            {
                return Ok(());
            }
            continue;
        }
        // Room on the ring: wait for input only when nothing is in flight.
        let next = if let Some(msg) = ahead.take() {
            Some(msg)
        } else if processor.pending() == 0 {
            recv_unless_halted(rx, halt)
        } else {
            match rx.try_recv() {
                Ok(msg) => Some(msg),
                Err(crossbeam_channel::TryRecvError::Empty) => {
                    if let Some(done) = processor.collect(true)?
                        && !pass_on(done)
                    {
                        return Ok(());
                    }
                    continue;
                }
                Err(crossbeam_channel::TryRecvError::Disconnected) => None,
            }
        };
        match next {
            Some(Msg::Frame(mut frame)) => {
                while newest && superseded(&frame, rx, &mut ahead) {
                    Counters::add(&counters.dropped_before_gpu, 1);
                    match ahead.take() {
                        Some(Msg::Frame(newer)) => frame = newer,
                        other => ahead = other,
                    }
                }
                processor.schedule(frame)?;
                // A batch: more frames already waiting go onto the ring before any wait.
                for _ in 1..batch {
                    if processor.pending() >= processor.capacity() {
                        break;
                    }
                    match rx.try_recv() {
                        Ok(Msg::Frame(frame)) => processor.schedule(frame)?,
                        Ok(other) => {
                            if !drain_then_send(processor, other, &pass_on, link)? {
                                return Ok(());
                            }
                            break;
                        }
                        Err(_) => break,
                    }
                }
            }
            Some(other) => {
                if !drain_then_send(processor, other, &pass_on, link)? {
                    return Ok(());
                }
            }
            None => upstream_open = false,
        }
    }
}

/// How often an idle stage looks at the run's halt flag while it waits for a message.
const HALT_POLL: Duration = Duration::from_millis(50);

/// The next message from `rx`, or `None` once it is closed or `halt` is set while it waits.
fn recv_unless_halted(rx: &Receiver<Msg>, halt: &AtomicBool) -> Option<Msg> {
    loop {
        match rx.recv_timeout(HALT_POLL) {
            Ok(msg) => return Some(msg),
            Err(crossbeam_channel::RecvTimeoutError::Timeout) if !halt.load(Ordering::SeqCst) => {}
            Err(_) => return None,
        }
    }
}

/// Passes on every frame in flight, then `msg` (a failure or end of stream), so that it
/// reaches the sink after the frames captured before it. False when the sink is gone.
fn drain_then_send(
    processor: &mut Processor,
    msg: Msg,
    pass_on: &dyn Fn(Frame) -> bool,
    link: &Link<Msg>,
) -> Result<bool> {
    while let Some(done) = processor.collect(true)? {
        if !pass_on(done) {
            return Ok(false);
        }
    }
    Ok(link.send_blocking(msg).is_ok())
}

/// Decides the file name of every output, and checks the output side before work starts.
struct OutputNamer {
    output: Output,
    format: Format,
    /// Inputs whose stem is shared with another input use their whole file name instead.
    /// As the file system has them: two names that differ only in bytes that are not UTF-8
    /// stay two names.
    stems: Vec<OsString>,
    /// The directories this run created for its outputs, the deepest first.
    created: Vec<PathBuf>,
}

/// [`encode::AtomicFile::create`] for an output file, creating its directory again when it has
/// gone: another run into the same new directory, which created it, removes it when it ends
/// with nothing written ([`RemoveIfEmpty`]), under a run that is still to write there.
fn create_output(path: &Path) -> Result<encode::AtomicFile> {
    let mut tries = 0;
    loop {
        match encode::AtomicFile::create(path) {
            Err(Error::Io { source, .. })
                if tries < 3 && source.kind() == std::io::ErrorKind::NotFound =>
            {
                tries += 1;
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(|err| Error::io(dir, err))?;
                }
            }
            other => return other,
        }
    }
}

/// [`encode::write_atomic`] through [`create_output`].
fn write_output(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut file = create_output(path)?;
    std::io::Write::write_all(file.file(), bytes).map_err(|err| Error::io(path, err))?;
    file.commit()
}

/// Removes the output directories a run created, deepest first, when they are still empty
/// at its end (every input failed, or none was reached): a failed run leaves nothing.
struct RemoveIfEmpty(Vec<PathBuf>);

impl Drop for RemoveIfEmpty {
    fn drop(&mut self) {
        for dir in &self.0 {
            // Not empty (or gone): kept, as are the directories above it.
            if std::fs::remove_dir(dir).is_err() {
                return;
            }
        }
    }
}

impl OutputNamer {
    /// Checks the output side and names each input's outputs; `stems` and `file_names` (a
    /// file's whole name, for when its stem is shared) per input.
    fn prepare(
        output: &Output,
        format: Format,
        stems: &[OsString],
        file_names: &[Option<OsString>],
    ) -> Result<Self> {
        let dir = match output {
            Output::Dir(dir) => dir.clone(),
            Output::File(file) => {
                if stems.len() > 1 {
                    return Err(Error::Usage(format!(
                        "output {} (--out): a file takes one input, {} were given; use a directory",
                        file.display(),
                        stems.len()
                    )));
                }
                file.parent()
                    .filter(|p| !p.as_os_str().is_empty())
                    .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
            }
        };
        // `out/` or `out/sub` where `out` is a file: a usage error naming it, not the
        // EEXIST or ENOTDIR that creating the directory would give (a trailing `/` makes
        // `exists()` false for a file, so the nearest existing ancestor is what is checked).
        let plain: PathBuf = dir.components().collect();
        if let Some(file) = plain
            .ancestors()
            .find(|p| p.exists())
            .filter(|p| !p.is_dir())
        {
            return Err(Error::Usage(format!(
                "output {} (--out): {} is a file, not a directory",
                output.path().display(),
                file.display()
            )));
        }
        let created = plain
            .ancestors()
            .take_while(|p| !p.as_os_str().is_empty() && !p.exists())
            .map(Path::to_path_buf)
            .collect();
        std::fs::create_dir_all(&dir).map_err(|e| {
            let reason = format!("cannot create the output directory: {e}");
            Error::io(&dir, std::io::Error::new(e.kind(), reason))
        })?;
        if !dir.is_dir() {
            return Err(Error::io(
                &dir,
                std::io::Error::new(std::io::ErrorKind::NotADirectory, "not a directory"),
            ));
        }
        let mut seen = HashMap::<&[u8], usize>::new();
        for stem in stems {
            *seen.entry(stem.as_encoded_bytes()).or_default() += 1;
        }
        // A stem that another input's frames would be named by (`anim_00001` next to a
        // multi-frame `anim`) counts as a repeat too: which inputs have several frames is only
        // known once they are decoded.
        let frame_name_of_another = |stem: &OsStr| {
            let stem = stem.as_encoded_bytes();
            stem.iter().rposition(|&b| b == b'_').is_some_and(|at| {
                let k = &stem[at + 1..];
                k.len() >= 5 && k.iter().all(u8::is_ascii_digit) && seen.contains_key(&stem[..at])
            })
        };
        let mut used = HashSet::new();
        let stems = file_names
            .iter()
            .zip(stems)
            .map(|(file_name, stem)| {
                // Standard input has no file name: it keeps its stem and is numbered below.
                let mut stem = match file_name {
                    Some(file_name)
                        if seen[stem.as_encoded_bytes()] > 1 || frame_name_of_another(stem) =>
                    {
                        file_name.clone()
                    }
                    _ => stem.clone(),
                };
                // Two inputs with the same file name in different directories.
                let base = stem.clone();
                let mut k = 1;
                while !used.insert(stem.clone()) {
                    stem = base.clone();
                    stem.push(format!("_{k}"));
                    k += 1;
                }
                stem
            })
            .collect();
        Ok(OutputNamer {
            output: output.clone(),
            format,
            stems,
            created,
        })
    }

    /// The path for input `input`'s frame `frame` (`None`: the whole input in one file).
    fn path(&self, input: usize, frame: Option<usize>) -> PathBuf {
        let ext = self.format.extension();
        match (&self.output, frame) {
            (Output::File(file), None) => file.clone(),
            (Output::File(file), Some(k)) => {
                let mut name = file
                    .file_stem()
                    .map_or_else(|| OsString::from("frame"), OsStr::to_os_string);
                name.push(format!("_{k:05}."));
                name.push(file.extension().unwrap_or(OsStr::new(ext)));
                file.with_file_name(name)
            }
            (Output::Dir(dir), k) => {
                let mut name = self.stems[input].clone();
                if let Some(k) = k {
                    name.push(format!("_{k:05}"));
                }
                name.push(".");
                name.push(ext);
                dir.join(name)
            }
        }
    }
}

/// Records that `job` writes its path, or says which input of this run already does, or is
/// read from that path (`input_files`: an input may be replaced by its own output, in place,
/// never by another input's).
fn claim(
    claimed: &mut HashMap<PathBuf, usize>,
    input_files: &HashMap<PathBuf, Vec<usize>>,
    job: &Job,
    names: &[String],
) -> Result<()> {
    let format = || {
        job.path
            .extension()
            .map_or_else(String::new, |e| e.to_string_lossy().into_owned())
    };
    if let Ok(real) = std::fs::canonicalize(&job.path)
        && input_files
            .get(&real)
            .is_some_and(|inputs| !inputs.contains(&job.input))
    {
        return Err(Error::Encode {
            output: job.path.display().to_string(),
            format: format(),
            reason: format!(
                "it is another input of this run, which {}'s output would overwrite; {} is not \
                 written",
                names[job.input], names[job.input]
            ),
        });
    }
    match claimed.entry(job.path.clone()) {
        std::collections::hash_map::Entry::Vacant(slot) => {
            slot.insert(job.input);
            Ok(())
        }
        std::collections::hash_map::Entry::Occupied(first) => Err(Error::Encode {
            output: job.path.display().to_string(),
            format: format(),
            reason: format!(
                "{} already wrote this file in this run; {} is not written",
                names[*first.get()],
                names[job.input]
            ),
        }),
    }
}

/// An encode-and-write task for the pool.
struct Job {
    input: usize,
    path: PathBuf,
    frames: Vec<Frame>,
    /// Each frame's capture-to-sink latency, recorded once the file is written.
    latencies: Vec<Duration>,
    /// True when this job writes the input's last output.
    closes_input: bool,
    /// True when this job writes one frame of an input written as one file per frame.
    one_of_many: bool,
    /// A sequence written as one file (a GIF, WebP or npy of an animation or a stream): its frames
    /// come here one by one (none are in `frames`), and are encoded as they come.
    feed: Option<Receiver<Feed>>,
}

/// What the sink sends a sequence's job ([`Job::feed`]).
enum Feed {
    /// The next frame, with its capture-to-sink latency.
    Frame(Box<Frame>, Duration),
    /// The sequence is complete (or cut by a stop): write the file. A feed that ends without
    /// one (the input failed, the run broke off) leaves no file.
    Close,
}

impl Job {
    /// The job writing input `input`'s frames, which come through `feed`, into one file.
    fn sequence(input: usize, path: PathBuf, feed: Receiver<Feed>) -> Job {
        Job {
            input,
            path,
            frames: Vec::new(),
            latencies: Vec::new(),
            closes_input: true,
            one_of_many: false,
            feed: Some(feed),
        }
    }
}

struct JobDone {
    input: usize,
    path: PathBuf,
    result: Result<()>,
    closes_input: bool,
    one_of_many: bool,
    /// Not started, as the run had stopped: how many frames it had.
    skipped: Option<u64>,
    /// The job's frames' latencies, for a job that wrote its file.
    latencies: Vec<Duration>,
    /// A sequence whose feed ended without [`Feed::Close`]: nothing was written, and the
    /// input's failure (if any) is reported by the sink.
    cancelled: bool,
}

impl JobDone {
    /// The report of `job`, done with `result`.
    fn of(job: Job, result: Result<()>) -> JobDone {
        JobDone {
            input: job.input,
            path: job.path,
            result,
            closes_input: job.closes_input,
            one_of_many: job.one_of_many,
            skipped: None,
            latencies: job.latencies,
            cancelled: false,
        }
    }
}

/// Writes the sequence `job` whose frames come through `feed`, each encoded as it comes (up to
/// `parallel` GIF frames quantised or WebP frames encoded at once, on threads of their own,
/// while the next frames are taken), into its file (through a temp file, renamed at
/// [`Feed::Close`]). Frames are written in order, each as soon as it and those before it are
/// encoded. Every frame fed is written, after a stop or an abort too: they were delivered, and
/// the queue holds few (the sink stops feeding and closes the sequence).
fn write_sequence(
    format: &Format,
    mut job: Job,
    feed: &Receiver<Feed>,
    parallel: usize,
) -> JobDone {
    let encode_error = |error: Error| Error::Encode {
        output: job.path.display().to_string(),
        format: format.extension().to_string(),
        reason: error.into_reason(),
    };
    let mut file = match create_output(&job.path) {
        Ok(file) => file,
        Err(error) => return JobDone::of(job, Err(error)),
    };
    let mut writer = match SequenceWriter::new(*format, std::io::BufWriter::new(file.file())) {
        Ok(writer) => writer,
        Err(reason) => {
            let error = encode_error(reason);
            return JobDone::of(job, Err(error));
        }
    };
    let fed = encode_fed(
        format,
        &mut writer,
        feed,
        parallel.max(1),
        &mut job.latencies,
    );
    let closed = match fed {
        Ok(closed) => closed,
        Err(reason) => {
            let error = Error::Encode {
                output: job.path.display().to_string(),
                format: format.extension().to_string(),
                reason,
            };
            return JobDone::of(job, Err(error));
        }
    };
    if !closed {
        return JobDone {
            cancelled: true,
            ..JobDone::of(job, Ok(()))
        };
    }
    let result = writer
        .finish()
        .map_err(encode_error)
        .and_then(|out| {
            out.into_inner()
                .map(drop)
                .map_err(|e| Error::io(&job.path, e.into_error()))
        })
        .and_then(|()| file.commit());
    JobDone::of(job, result)
}

/// The default number of encoder or decode threads: the machine's cores, at most 8.
pub(crate) fn default_threads() -> usize {
    thread::available_parallelism().map_or(2, |n| n.get().min(8))
}

/// A frame fed to a sequence's writer, with its capture-to-sink latency.
struct Fed {
    frame: Box<Frame>,
    latency: Duration,
}

impl std::borrow::Borrow<Frame> for Fed {
    fn borrow(&self) -> &Frame {
        &self.frame
    }
}

/// Takes the frames `feed` brings into `writer`, encoding up to `parallel` at once on threads
/// of their own ([`Encoders`]), and writes each, in order, as soon as it and those before it
/// are encoded, each frame's latency going to `latencies`. `true` at [`Feed::Close`], once
/// every frame is written; `false` when the feed ends without it (the frames not all written).
/// The error: the reason the first frame that failed was refused or not written (a frame
/// refused waits for the frames before it, which may fail first).
fn encode_fed<W: std::io::Write + std::io::Seek>(
    format: &Format,
    writer: &mut SequenceWriter<W>,
    feed: &Receiver<Feed>,
    parallel: usize,
    latencies: &mut Vec<Duration>,
) -> std::result::Result<bool, String> {
    thread::scope(|scope| {
        let mut encoders = Encoders::<Fed>::start(scope, *format, parallel);
        let mut closed = false;
        // A frame refused: no more are taken, and its reason is the error once the frames
        // before it are written.
        let mut refused = None;
        loop {
            while let Some((taken, encoded)) = encoders.ready() {
                let fed = writer.put(taken, encoded).map_err(Error::into_reason)?;
                latencies.push(fed.latency);
            }
            if encoders.is_empty() {
                if let Some(reason) = refused {
                    return Err(reason);
                }
                if closed {
                    return Ok(true);
                }
            }
            let room = !closed && refused.is_none() && encoders.has_room();
            let never = crossbeam_channel::never();
            crossbeam_channel::select! {
                recv(if room { feed } else { &never }) -> message => match message {
                    Ok(Feed::Frame(mut frame, latency)) => {
                        let image = frame.image.take();
                        match writer.take(Fed { frame, latency }, image) {
                            Ok(taken) => encoders.encode(taken)?,
                            Err(error) => refused = Some(error.into_reason()),
                        }
                    }
                    Ok(Feed::Close) => closed = true,
                    Err(_) => return Ok(false),
                },
                recv(encoders.finished()) -> done => encoders.arrived(done)?,
            }
        }
    })
}

/// Whether `frame` is dropped for a newer frame of its input already waiting on `rx` (under
/// `Latest`: the GPU stage starting on the newest frame, [`gpu_loop`], and a callback taking
/// the newest frame, [`Sink::newest_first`]). The message looked at, if any,
/// goes to `ahead`, to be taken next. An input's last frame is never dropped.
fn superseded(frame: &Frame, rx: &Receiver<Msg>, ahead: &mut Option<Msg>) -> bool {
    if frame.meta.last {
        return false;
    }
    let Ok(next) = rx.try_recv() else {
        return false;
    };
    let newer = matches!(&next, Msg::Frame(f) if f.meta.input == frame.meta.input);
    *ahead = Some(next);
    newer
}

struct SinkResult {
    written: Vec<PathBuf>,
    failures: Vec<Error>,
    latency: LatencyHistogram,
    /// Inputs whose frames came after a stop (Ctrl-C, the time limit) before any of them was
    /// delivered.
    not_reached: usize,
    /// Inputs done (written, failed or not reached), for a run that was aborted.
    finished: usize,
    /// The abort flag, the time limit's grace or the idle timeout ended the run.
    aborted: bool,
    /// The live source sent nothing for the idle timeout, which ended the run.
    idle: bool,
}

/// The last stage: groups frames per input and sends them to the encoder pool and/or the
/// callback, in input order.
struct Sink<'a, F: Fn(Event<'_>)> {
    names: &'a [String],
    namer: Option<OutputNamer>,
    on_frame: Option<&'a mut FrameFn<'a>>,
    emit: &'a F,
    encoder_threads: usize,
    /// Each input file's canonical path, and the inputs read from it (two through a link).
    input_files: HashMap<PathBuf, Vec<usize>>,
    clock: &'a dyn Clock,
    counters: &'a Counters,
    /// Inputs are files, each complete or failed: a failed one's frame files are removed, so
    /// that a file cut short never passes for a shorter animation. A live stream, which has
    /// no "complete", keeps every frame it wrote.
    all_or_nothing: bool,
    /// The run's stop rules: once one fires, a file's frames still coming are not delivered
    /// (those being encoded finish), as the capture takes no new input.
    rules: StopRules,
    /// How long past the time limit a capture that sends nothing more is waited for.
    grace: Duration,
    /// Set once the capture has returned: past the time limit, the frames still in the
    /// stages are waited for, however long they take; only a capture still running (blocked
    /// in its source) is given up on after [`LIMIT_GRACE`].
    capture_ended: Arc<AtomicBool>,
    /// Ends the run now (see [`PipelineBuilder::abort_flag`]).
    abort: Option<Arc<AtomicBool>>,
    /// The idle timeout, and where the capture says how long its source has been in a call.
    idle: Option<(Duration, Arc<SourceWait>)>,
    /// Inputs reported done (written or failed).
    finished: std::cell::RefCell<HashSet<usize>>,
    /// Inputs that failed: their frames still coming are dropped.
    failed: HashSet<usize>,
    /// File inputs cut by a stop rule: their frames still coming are dropped.
    cut: HashSet<usize>,
    /// Inputs written one file per frame with a frame's job skipped by a stop rule.
    skipped_sequences: HashSet<usize>,
    /// The frame files written so far of each input written one file per frame and not yet
    /// complete (with `all_or_nothing` only).
    frame_files: HashMap<usize, Vec<PathBuf>>,
    /// Frames of each input counted as delivered with no callback: a file input that fails, or
    /// a stream whose one file fails, takes them back, as its frames reached no file.
    delivered_by_input: HashMap<usize, u64>,
    /// The callback, the only sink, takes the newest frame waiting (`Latest`): the older ones
    /// waiting with it are dropped, so a slow callback gets frames as fresh as the source's,
    /// not a queue's worth behind.
    newest_first: bool,
}

impl<F: Fn(Event<'_>)> Sink<'_, F> {
    fn run(mut self, rx: &Receiver<Msg>) -> Result<SinkResult> {
        let threads = if self.namer.is_some() {
            self.encoder_threads
        } else {
            0
        };
        let (job_tx, job_rx) = bounded::<Job>(threads.max(1) * 2);
        let (done_tx, done_rx) = crossbeam_channel::unbounded::<JobDone>();
        let mut result = SinkResult {
            written: Vec::new(),
            failures: Vec::new(),
            latency: LatencyHistogram::default(),
            not_reached: 0,
            finished: 0,
            aborted: false,
            idle: false,
        };
        let format = self.namer.as_ref().map(|n| n.format);
        let clock = self.clock;
        let outcome = thread::scope(|scope| -> Result<()> {
            for _ in 0..threads {
                let job_rx = job_rx.clone();
                let done_tx = done_tx.clone();
                let format = format.unwrap_or_default();
                // A file's job not started when a stop rule fires is not started at all.
                let rules = self.all_or_nothing.then(|| self.rules.clone());
                scope.spawn(move || {
                    for mut job in job_rx {
                        if let Some(feed) = job.feed.take() {
                            let done = write_sequence(&format, job, &feed, threads);
                            drop(feed);
                            if done_tx.send(done).is_err() {
                                return;
                            }
                            continue;
                        }
                        // A file's job not started when a stop rule fires is not started.
                        if rules
                            .as_ref()
                            .is_some_and(|r| r.stopped() || r.past_limit(clock.now()))
                        {
                            let done = JobDone {
                                skipped: Some(job.frames.len() as u64),
                                ..JobDone::of(job, Ok(()))
                            };
                            if done_tx.send(done).is_err() {
                                return;
                            }
                            continue;
                        }
                        let result = encode::encode_frames(&format, &job.frames, &|| false)
                            .map_err(|reason| Error::Encode {
                                output: job.path.display().to_string(),
                                format: format.extension().to_string(),
                                reason,
                            })
                            .and_then(|bytes| write_output(&job.path, &bytes));
                        let done = JobDone::of(job, result);
                        if done_tx.send(done).is_err() {
                            return;
                        }
                    }
                });
            }
            drop(job_rx);
            drop(done_tx);

            let outcome = self.dispatch(rx, &job_tx, &done_rx, &mut result);
            drop(job_tx);
            // Wait for the pool to finish every job it took.
            for done in done_rx.iter() {
                self.finish_job(done, &mut result);
            }
            self.settle_skipped(&mut result);
            outcome
        });
        result.finished = self.finished.borrow().len();
        outcome.map(|()| result)
    }

    fn dispatch(
        &mut self,
        rx: &Receiver<Msg>,
        job_tx: &Sender<Job>,
        done_rx: &Receiver<JobDone>,
        result: &mut SinkResult,
    ) -> Result<()> {
        // The feeds of the sequences being written as one file each, by input. Inputs come in
        // order, so one is open at a time: its job never waits for a pool thread held by
        // another sequence still taking frames. A feed whose writer failed stays here until
        // the input ends, so that its frames are dropped rather than start a second file.
        let mut streams: HashMap<usize, Sender<Feed>> = HashMap::new();
        // Frames delivered per input: live frames are numbered by delivery, not capture.
        let mut delivered: HashMap<usize, usize> = HashMap::new();
        // Inputs with frames delivered and more to come (what an abort must close).
        let mut open: HashSet<usize> = HashSet::new();
        // Every path this run writes, and the input it belongs to: a second input's output
        // under the same name fails instead of overwriting the first one's.
        let mut claimed: HashMap<PathBuf, usize> = HashMap::new();
        // A message taken to look past the frame before it (`newest_first`).
        let mut ahead: Option<Msg> = None;
        while let Some(msg) = ahead
            .take()
            .or_else(|| self.receive(rx, &mut result.aborted, &mut result.idle))
        {
            while let Ok(done) = done_rx.try_recv() {
                self.finish_job(done, result);
            }
            match msg {
                Msg::Failed { input, .. } | Msg::End { input } if self.cut.contains(&input) => {}
                Msg::Failed { input, error } => {
                    // The feed ends without a close: the file is not written.
                    streams.remove(&input);
                    self.failed.insert(input);
                    self.fail(input, error, result);
                }
                Msg::End { input } => {
                    if self.failed.contains(&input) {
                        // Already reported as failed.
                        continue;
                    }
                    open.remove(&input);
                    self.close(input, &mut streams);
                }
                Msg::Frame(mut frame) => {
                    let input = frame.meta.input;
                    if self.failed.contains(&input) {
                        Counters::add(&self.counters.failed, 1);
                        continue;
                    }
                    if self.newest_first && superseded(&frame, rx, &mut ahead) {
                        Counters::add(&self.counters.dropped_before_sink, 1);
                        continue;
                    }
                    // Files queued behind a stop are not encoded: the run ends with the
                    // frames in flight, not with every frame decoded ahead of it.
                    if self.all_or_nothing
                        && (self.cut.contains(&input)
                            || self.rules.stopped()
                            || self.rules.past_limit(self.clock.now()))
                    {
                        Counters::add(&self.counters.dropped_after_stop, 1);
                        open.remove(&input);
                        if self.cut.insert(input) {
                            if delivered.get(&input).is_some_and(|&n| n > 0) {
                                // A sequence ends with the frames delivered, as `--frames`
                                // ends it.
                                self.close(input, &mut streams);
                            } else {
                                result.not_reached += 1;
                            }
                        }
                        continue;
                    }
                    let count = delivered.entry(input).or_default();
                    frame.meta.index = *count;
                    *count += 1;
                    if frame.meta.last {
                        open.remove(&input);
                    } else {
                        open.insert(input);
                    }
                    Counters::add(&self.counters.delivered, 1);
                    if self.on_frame.is_none() {
                        *self.delivered_by_input.entry(input).or_default() += 1;
                    }
                    // A frame handed to the callback is delivered now; one only encoded is
                    // delivered when its file is written (a job a stop skips is not).
                    let latency = self.clock.now().saturating_sub(frame.meta.timestamp);
                    if let Some(callback) = &mut self.on_frame {
                        result.latency.record(latency);
                        callback(&frame).map_err(|e| {
                            let at = format!(
                                "on_frame ({}, frame {})",
                                frame.meta.name, frame.meta.index
                            );
                            Error::from_user(&at, e)
                        })?;
                    }
                    let Some(namer) = &self.namer else {
                        if frame.meta.last {
                            self.input_done(input, None);
                        }
                        continue;
                    };
                    let single = !frame.meta.sequence && frame.meta.index == 0 && frame.meta.last;
                    if !single && namer.format.holds_many_frames() {
                        let last = frame.meta.last;
                        if let std::collections::hash_map::Entry::Vacant(slot) =
                            streams.entry(input)
                        {
                            let (feed_tx, feed_rx) =
                                bounded(self.encoder_threads.max(SEQUENCE_QUEUE));
                            let job = Job::sequence(input, namer.path(input, None), feed_rx);
                            if let Err(error) =
                                claim(&mut claimed, &self.input_files, &job, self.names)
                            {
                                self.refuse(input, error, result);
                                continue;
                            }
                            if job_tx.send(job).is_err() {
                                return Err(Error::Gpu("the encoder pool stopped".into()));
                            }
                            slot.insert(feed_tx);
                        }
                        // A send fails when the writer has failed (its report says why): the
                        // frame is dropped, as after a stop (the failure stops a stream); a
                        // file's frames are taken back when its failure is reported.
                        if let Some(feed) = streams.get(&input)
                            && feed.send(Feed::Frame(Box::new(frame), latency)).is_err()
                            && self.on_frame.is_none()
                            && !self.all_or_nothing
                        {
                            let counters = self.counters;
                            self.take_back(input, 1, &counters.dropped_after_stop);
                        }
                        if last {
                            self.close(input, &mut streams);
                        }
                        continue;
                    }
                    let job = if single {
                        Job {
                            input,
                            path: namer.path(input, None),
                            frames: vec![frame],
                            latencies: vec![latency],
                            closes_input: true,
                            one_of_many: false,
                            feed: None,
                        }
                    } else {
                        Job {
                            input,
                            path: namer.path(input, Some(frame.meta.index)),
                            closes_input: frame.meta.last,
                            one_of_many: true,
                            feed: None,
                            frames: vec![frame],
                            latencies: vec![latency],
                        }
                    };
                    if let Err(error) = claim(&mut claimed, &self.input_files, &job, self.names) {
                        self.refuse(input, error, result);
                    } else if job_tx.send(job).is_err() {
                        return Err(Error::Gpu("the encoder pool stopped".into()));
                    }
                }
            }
        }
        if result.aborted {
            // Each sequence is written with the frames it has (or, written as frame files,
            // reported done), in input order.
            let mut open: Vec<usize> = open.into_iter().collect();
            open.sort_unstable();
            for input in open {
                if !self.failed.contains(&input) && !self.cut.contains(&input) {
                    self.close(input, &mut streams);
                }
            }
        }
        Ok(())
    }

    /// Each sequence of frame files cut by a stop rule with some of its jobs skipped is done
    /// (it keeps the frame files written before the stop, as `--frames` ends one) if one was
    /// written and it was not reported already; otherwise it was not reached.
    fn settle_skipped(&mut self, result: &mut SinkResult) {
        let mut inputs: Vec<usize> = self.skipped_sequences.drain().collect();
        inputs.sort_unstable();
        for input in inputs {
            if self.finished.borrow().contains(&input) || self.failed.contains(&input) {
                continue;
            }
            if self
                .frame_files
                .remove(&input)
                .is_some_and(|f| !f.is_empty())
            {
                self.input_done(input, None);
            } else {
                result.not_reached += 1;
            }
        }
    }

    /// Reports input `input` done (written, or failed with `error`) to the events.
    fn input_done(&self, input: usize, error: Option<&Error>) {
        self.finished.borrow_mut().insert(input);
        (self.emit)(Event::InputDone {
            name: &self.names[input],
            error,
        });
    }

    /// The next message for the sink; `None` when the channel is closed, or when the run is
    /// given up on (then `aborted` is set): the abort flag is set, or the run is past its time
    /// limit and nothing has come for [`LIMIT_GRACE`] (a batch whose capture is blocked in a
    /// read, such as an open stdin; a live source blocked in its call, such as a stalled
    /// camera or a closure waiting for frames that do not come), or the live source has been
    /// in its call for the idle timeout while nothing came to the sink since it asked (then
    /// `idle` is set too, unless the run was stopped). The channel is polled when
    /// either can happen, so that a source that sends nothing more cannot keep the sink
    /// waiting; frames still coming through the stages keep it waiting, each within the grace
    /// while the capture runs, and however long they take once it has returned.
    fn receive(&self, rx: &Receiver<Msg>, aborted: &mut bool, idle: &mut bool) -> Option<Msg> {
        let timed = self.rules.time_limit.is_some();
        if self.abort.is_none() && !timed && self.idle.is_none() {
            return rx.recv().ok();
        }
        // When this wait was first seen past the limit.
        let mut quiet_since: Option<Instant> = None;
        // When the sink came back for a message: a source waiting on the sink's own work (a
        // closure waiting for a callback's answer) is not idle for that time, nor are frames
        // still coming out of the stages.
        let entered = self.clock.now();
        loop {
            if self
                .abort
                .as_ref()
                .is_some_and(|a| a.load(Ordering::Relaxed))
            {
                *aborted = true;
                return None;
            }
            match rx.recv_timeout(Duration::from_millis(50)) {
                Ok(msg) => return Some(msg),
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => return None,
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                    let now = self.clock.now();
                    if let Some((timeout, wait)) = &self.idle
                        && !self.capture_ended.load(Ordering::Relaxed)
                        && now.saturating_sub(entered) >= *timeout
                        && wait.waited(now).is_some_and(|waited| waited >= *timeout)
                    {
                        // After a stop (Ctrl-C) the run was ending anyway: it ends as stopped.
                        *aborted = true;
                        *idle = !self.rules.stopped();
                        return None;
                    }
                    if timed
                        && self.rules.past_limit(self.clock.now())
                        && !self.capture_ended.load(Ordering::Relaxed)
                    {
                        let since = *quiet_since.get_or_insert_with(Instant::now);
                        if since.elapsed() >= self.grace {
                            *aborted = true;
                            return None;
                        }
                    } else {
                        quiet_since = None;
                    }
                }
            }
        }
    }

    /// Ends input `input` with no more frames to come: closes the sequence it writes as one
    /// file (whose job reports the input done once the file is written), or reports it done.
    fn close(&mut self, input: usize, streams: &mut HashMap<usize, Sender<Feed>>) {
        match streams.remove(&input) {
            // A writer that failed is gone: its report says why.
            Some(feed) => {
                let _ = feed.send(Feed::Close);
            }
            None => self.input_done(input, None),
        }
    }

    /// Reports input `input` as failed with `error`, in the events and the result. With
    /// `all_or_nothing`, removes the frame files it has written (those still being encoded
    /// are removed as they finish) and drops its frames still coming.
    fn fail(&mut self, input: usize, error: Error, result: &mut SinkResult) {
        if self.all_or_nothing {
            self.failed.insert(input);
            if let Some(frames) = self.delivered_by_input.remove(&input) {
                self.counters.delivered.fetch_sub(frames, Ordering::Relaxed);
                Counters::add(&self.counters.failed, frames);
            }
            if let Some(paths) = self.frame_files.remove(&input) {
                for path in &paths {
                    remove_frame_file(path);
                }
                result.written.retain(|written| !paths.contains(written));
            }
        }
        self.input_done(input, Some(&error));
        result.failures.push(error);
    }

    /// Fails input `input`, whose frame just delivered cannot be written (its output is
    /// another input's, or another output's): no more of its frames are taken.
    fn refuse(&mut self, input: usize, error: Error, result: &mut SinkResult) {
        // A file's frames are all taken back by `fail`; a live stream's others were written.
        if !self.all_or_nothing && self.on_frame.is_none() {
            let counters = self.counters;
            self.take_back(input, 1, &counters.failed);
        }
        self.failed.insert(input);
        self.fail(input, error, result);
    }

    /// Counts `frames` of live input `input`, counted as delivered with no callback, in
    /// `instead`: dropped after a stop (the one file they went to failed, and stopped the
    /// stream) or failed (their own frame file did).
    fn take_back(&mut self, input: usize, frames: u64, instead: &AtomicU64) {
        self.counters.delivered.fetch_sub(frames, Ordering::Relaxed);
        Counters::add(instead, frames);
        if let Some(counted) = self.delivered_by_input.get_mut(&input) {
            *counted = counted.saturating_sub(frames);
        }
    }

    fn finish_job(&mut self, done: JobDone, result: &mut SinkResult) {
        if done.cancelled {
            return;
        }
        if let Some(frames) = done.skipped {
            // Frames a callback saw were delivered; without one, only encoding delivers.
            if self.on_frame.is_none() {
                self.counters.delivered.fetch_sub(frames, Ordering::Relaxed);
                Counters::add(&self.counters.dropped_after_stop, frames);
                if let Some(counted) = self.delivered_by_input.get_mut(&done.input) {
                    *counted = counted.saturating_sub(frames);
                }
            }
            // Nothing of the input is written when its whole file was skipped. A sequence of
            // frame files keeps those written before its skipped ones: whether it has any is
            // known once every job is done (frame 1 may be written beside a skipped frame 0),
            // in `settle_skipped`.
            self.cut.insert(done.input);
            if done.one_of_many {
                self.skipped_sequences.insert(done.input);
            } else {
                result.not_reached += 1;
            }
            return;
        }
        // Frames only encoded are delivered now (a callback's were when it was called).
        if done.result.is_ok() && self.on_frame.is_none() {
            for &latency in &done.latencies {
                result.latency.record(latency);
            }
        }
        match done.result {
            Ok(()) if done.one_of_many && self.all_or_nothing => {
                if self.failed.contains(&done.input) {
                    // The input failed while this frame was being encoded.
                    remove_frame_file(&done.path);
                    return;
                }
                result.written.push(done.path.clone());
                if done.closes_input {
                    self.frame_files.remove(&done.input);
                    self.input_done(done.input, None);
                } else {
                    self.frame_files
                        .entry(done.input)
                        .or_default()
                        .push(done.path);
                }
            }
            Ok(()) => {
                result.written.push(done.path);
                if done.closes_input {
                    self.input_done(done.input, None);
                }
            }
            // A file is one failure, however many of its frame files failed.
            Err(_) if self.all_or_nothing && self.failed.contains(&done.input) => {}
            Err(error) => {
                // A stream whose one file failed, and that feeds no callback, has nothing
                // left to do: it stops as on Ctrl-C. The frames it took reached no file: they
                // count as dropped after that stop, not delivered.
                if !self.all_or_nothing && !done.one_of_many && self.on_frame.is_none() {
                    self.rules.halt.store(true, Ordering::Relaxed);
                    let taken = self.delivered_by_input.get(&done.input).copied();
                    let counters = self.counters;
                    self.take_back(done.input, taken.unwrap_or(0), &counters.dropped_after_stop);
                }
                // A live stream's frame file that failed: the stream goes on, without it.
                if !self.all_or_nothing && done.one_of_many && self.on_frame.is_none() {
                    let counters = self.counters;
                    self.take_back(done.input, 1, &counters.failed);
                }
                self.fail(done.input, error, result);
            }
        }
    }
}

/// Removes a frame file of a failed input. Like a temp file of [`encode::write_atomic`], one
/// that cannot be removed is left: the input's failure is what gets reported.
fn remove_frame_file(path: &Path) {
    let _ = std::fs::remove_file(path);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tick_after_a_time_is_counted_in_whole_intervals() {
        let ms = Duration::from_millis;
        assert_eq!(tick_after(ms(210), ms(35)), Some(ms(245)));
        assert_eq!(tick_after(ms(209), ms(35)), Some(ms(210)));
        assert_eq!(tick_after(Duration::ZERO, ms(35)), Some(ms(35)));
        assert_eq!(
            tick_after(Duration::from_secs(1), Duration::from_nanos(333_333_333)),
            Some(Duration::from_nanos(1_333_333_332))
        );
        assert_eq!(tick_after(ms(1), Duration::MAX), Some(Duration::MAX));
        assert_eq!(tick_after(Duration::MAX, ms(35)), None);
    }

    fn frame(seq: u64, input: usize, last: bool) -> Frame {
        let mut meta = FrameMeta::still(seq, input);
        meta.last = last;
        Frame::new(1, 1, vec![seq as u8, 2, 3, 255], false, meta)
    }

    #[test]
    fn a_callback_taking_the_newest_frame_drops_the_older_ones_waiting() {
        let (tx, rx) = bounded(8);
        for msg in [
            Msg::Frame(frame(1, 0, false)),
            Msg::Frame(frame(2, 0, false)),
            Msg::End { input: 0 },
        ] {
            tx.send(msg).unwrap();
        }
        let mut ahead = None;
        // Frame 0, then 1, each with a newer one waiting: dropped.
        assert!(superseded(&frame(0, 0, false), &rx, &mut ahead));
        let Some(Msg::Frame(one)) = ahead.take() else {
            panic!("frame 1 is taken next");
        };
        assert!(superseded(&one, &rx, &mut ahead));
        let Some(Msg::Frame(two)) = ahead.take() else {
            panic!("frame 2 is taken next");
        };
        // Frame 2: the end of the stream comes after it, not a frame: it is delivered.
        assert_eq!(two.meta.seq, 2);
        assert!(!superseded(&two, &rx, &mut ahead));
        assert!(matches!(ahead.take(), Some(Msg::End { input: 0 })));
        // Nothing waiting.
        assert!(!superseded(&two, &rx, &mut ahead));
        assert!(ahead.is_none());
        // Another input's frame, or an input's last frame, does not drop it.
        tx.send(Msg::Frame(frame(4, 1, false))).unwrap();
        assert!(!superseded(&frame(3, 0, false), &rx, &mut ahead));
        assert!(ahead.take().is_some());
        tx.send(Msg::Frame(frame(5, 0, false))).unwrap();
        assert!(!superseded(&frame(3, 0, true), &rx, &mut ahead));
        assert_eq!(rx.len(), 1, "a last frame looks at nothing");
    }

    /// Under `Latest`, the GPU stage starts on the newest frame waiting: the frames queued
    /// behind one another are dropped before the GPU, all but the last. Without, each goes
    /// through, in order. (Every message is queued before the stage starts: no timing.)
    #[test]
    fn the_gpu_stage_under_latest_starts_on_the_newest_frame_waiting() {
        for newest in [true, false] {
            let (tx, rx) = bounded(8);
            for seq in 0..5 {
                tx.send(Msg::Frame(frame(seq, 0, false))).unwrap();
            }
            tx.send(Msg::End { input: 0 }).unwrap();
            drop(tx);
            let (out_tx, out_rx) = bounded(8);
            let link = Link::new(out_tx, out_rx.clone(), FramePolicy::Lossless);
            let counters = Counters::default();
            let mut processor = Processor::new(None, &Ops::default(), 3).unwrap();
            let halt = AtomicBool::new(false);
            gpu_loop(&mut processor, (1, newest), (&rx, &halt), &link, &counters).unwrap();
            drop(link);
            let mut seqs = Vec::new();
            for msg in out_rx.iter() {
                match msg {
                    Msg::Frame(f) => seqs.push(f.meta.seq),
                    Msg::End { input: 0 } => seqs.push(99),
                    _ => panic!("only frames and the end are passed on"),
                }
            }
            let (want, dropped): (&[u64], u64) = if newest {
                (&[4, 99], 4)
            } else {
                (&[0, 1, 2, 3, 4, 99], 0)
            };
            assert_eq!(seqs, want, "newest {newest}");
            assert_eq!(Counters::get(&counters.dropped_before_gpu), dropped);
            assert_eq!(Counters::get(&counters.processed), want.len() as u64 - 1);
        }
    }
}

//! `shutter bench`: how many frames per second each stage and the whole pipeline sustain on
//! this machine, measured on synthetic frames, as a table or one JSON object.
//!
//! Method, for every row:
//! - Frames are synthetic RGBA (gradients, stripes and low noise: neither all zeros nor
//!   incompressible noise), [`DISTINCT_FRAMES`] different ones used in turn so that no stage
//!   sees the same input twice in a row.
//! - Warm-up iterations run first and are not counted; then each timed iteration measures one
//!   frame through the stage, setup (copying the input into place) outside the timer.
//! - A row reports the median, p10 and p90, min and max of its samples; fps is 1 / median.
//!   Pipelined rows (GPU ring with several frames in flight, end to end) record when each
//!   frame finishes; a sample is the time of `max(in_flight, 2)` consecutive frames divided by
//!   their number (a sliding window: frames come back in bursts): the steady-state cost of
//!   one frame.
//! - Without an explicit `--frames`, a row stops early once it has used its time budget and
//!   has at least [`MIN_SAMPLES`] samples, so that the default run stays short.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::DeviceChoice;
use crate::backend::Processor;
use crate::error::{Error, Result};
use crate::frame::{Frame, FrameMeta};
use crate::gpu::copy::{MAX_COPY_THREADS, copy_threads, par_copy_with};
use crate::gpu::map::{MapSignal, MapState, SETTLE_LIMIT};
use crate::gpu::{GpuBackend, GpuContext, Upload};
use crate::mode::{ImageMode, cpu as mode_cpu};
use crate::ops::{Filter, Ops, cpu, fast};
use crate::pipeline::Pipeline;
use crate::sink::encode::{self, Format};
use crate::source::live::FuncGrabber;
use crate::source::{DecodeLimits, Source, decode_bytes};

/// Different input frames a run rotates through.
pub const DISTINCT_FRAMES: usize = 4;
/// Fewest timed samples a row stops at when its time budget runs out.
pub const MIN_SAMPLES: usize = 3;
/// Timed samples per row when `--frames` is not given.
pub const DEFAULT_FRAMES: usize = 20;
/// Time a row may take when `--frames` is not given (after which it stops at [`MIN_SAMPLES`]).
pub const DEFAULT_ROW_BUDGET: Duration = Duration::from_millis(200);
/// The largest frame `--size` accepts, in pixels (the decoder's default limit).
pub const MAX_PIXELS: u64 = 178_956_970;

/// Which backends' rows a run measures (`--device`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BenchDevice {
    /// The backend `--device auto` would pick: a GPU adapter if any, else the CPU.
    Auto,
    /// The GPU only (an error without an adapter).
    Gpu,
    /// The CPU only.
    Cpu,
    /// Both; GPU rows are skipped, with the reason, when there is no adapter.
    #[default]
    Both,
}

impl std::str::FromStr for BenchDevice {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(BenchDevice::Auto),
            "gpu" => Ok(BenchDevice::Gpu),
            "cpu" => Ok(BenchDevice::Cpu),
            "both" => Ok(BenchDevice::Both),
            _ => Err(Error::Usage(format!(
                "device (--device): unknown device '{s}' (expected auto, gpu, cpu or both)"
            ))),
        }
    }
}

/// What to measure.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchOptions {
    /// Frame width in pixels (`--size`).
    pub width: u32,
    /// Frame height in pixels (`--size`).
    pub height: u32,
    /// Mirror and filters; `ops.mode` is the mode the round-trip rows convert to (`None`:
    /// RGBA round trips, the ones the throughput targets name).
    pub ops: Ops,
    /// The mode of the mode-conversion, encode and end-to-end rows (default RGB, Gradio's).
    pub mode: ImageMode,
    /// Which backends' rows are measured (`--device`).
    pub device: BenchDevice,
    /// Frames on the GPU at once in the pipelined rows.
    pub in_flight: usize,
    /// Timed samples per row.
    pub frames: usize,
    /// Time after which a row stops at [`MIN_SAMPLES`]; `None`: every row takes `frames`.
    pub row_budget: Option<Duration>,
}

impl Default for BenchOptions {
    fn default() -> Self {
        BenchOptions {
            width: 1920,
            height: 1080,
            ops: Ops::new(true, vec![Filter::Sepia]),
            mode: ImageMode::Rgb,
            device: BenchDevice::Both,
            in_flight: 3,
            frames: DEFAULT_FRAMES,
            row_budget: Some(DEFAULT_ROW_BUDGET),
        }
    }
}

impl BenchOptions {
    /// Options from the command line's strings: `size` as [`parse_size`], `ops` as
    /// [`parse_ops`], `mode` a Pillow mode name, `device` auto|gpu|cpu|both.
    ///
    /// # Errors
    /// [`Error::Usage`] naming the flag whose value is wrong.
    pub fn from_flags(
        size: &str,
        ops: &str,
        mode: Option<&str>,
        device: &str,
        in_flight: usize,
        frames: Option<usize>,
    ) -> Result<Self> {
        let (width, height) = parse_size(size)?;
        let mut ops = parse_ops(ops)?;
        let mode = match mode {
            Some(name) => {
                let mode: ImageMode = name.parse()?;
                ops.mode = Some(mode);
                ops.dither = mode.dither_for(None)?;
                mode
            }
            None => ImageMode::Rgb,
        };
        crate::pipeline::check_in_flight("in_flight (--in-flight)", in_flight)?;
        if frames == Some(0) {
            return Err(Error::Usage("frames (--frames): must be at least 1".into()));
        }
        Ok(BenchOptions {
            width,
            height,
            ops,
            mode,
            device: device.parse()?,
            in_flight,
            frames: frames.unwrap_or(DEFAULT_FRAMES),
            row_budget: frames.is_none().then_some(DEFAULT_ROW_BUDGET),
        })
    }
}

/// RGBA frames with their alpha dropped: what an RGB source hands over (`schedule_rgb`).
pub fn rgb_frames(rgba: &[Vec<u8>]) -> Vec<Vec<u8>> {
    rgba.iter()
        .map(|px| {
            px.chunks_exact(4)
                .flat_map(|p| [p[0], p[1], p[2]])
                .collect()
        })
        .collect()
}

/// `720p`, `1080p`, `1440p`, `4k` (`2160p`), `8k` (`4320p`) or `WIDTHxHEIGHT`.
///
/// # Errors
/// [`Error::Usage`] for anything else, a zero side, or more than [`MAX_PIXELS`] pixels.
pub fn parse_size(size: &str) -> Result<(u32, u32)> {
    let bad = |why: &str| {
        Error::Usage(format!(
            "size (--size): '{size}' {why} (expected 720p, 1080p, 1440p, 4k, 8k or WIDTHxHEIGHT)"
        ))
    };
    let lower = size.trim().to_ascii_lowercase();
    let (w, h) = match lower.as_str() {
        "720p" => (1280, 720),
        "1080p" => (1920, 1080),
        "1440p" => (2560, 1440),
        "4k" | "2160p" => (3840, 2160),
        "8k" | "4320p" => (7680, 4320),
        other => {
            let (w, h) = other
                .split_once(['x', '×'])
                .ok_or_else(|| bad("is not a size"))?;
            let side = |s: &str| s.trim().parse::<u32>().ok().filter(|v| *v > 0);
            match (side(w), side(h)) {
                (Some(w), Some(h)) => (w, h),
                _ => return Err(bad("needs two whole numbers above 0")),
            }
        }
    };
    if u64::from(w) * u64::from(h) > MAX_PIXELS {
        return Err(bad(&format!("is more than {MAX_PIXELS} pixels")));
    }
    Ok((w, h))
}

/// A comma-separated op list: `mirror` and filter names (`sepia`, `sepia-norm`, `grayscale`,
/// `invert`), in order; `none` for no op. The mirror may stand anywhere: every filter is
/// point-wise or a frame-wide reduction, so it commutes with the mirror.
///
/// # Errors
/// [`Error::Usage`] naming the first unknown op.
pub fn parse_ops(list: &str) -> Result<Ops> {
    let mut ops = Ops::default();
    for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        match name.to_ascii_lowercase().as_str() {
            "mirror" => ops.mirror = true,
            "none" => {}
            _ => ops.filters.push(name.parse().map_err(|_| {
                let filters: Vec<&str> = Filter::ALL.iter().map(|f| f.name()).collect();
                Error::Usage(format!(
                    "ops (--ops): unknown op '{name}' (expected mirror, {} or none)",
                    filters.join(", ")
                ))
            })?),
        }
    }
    Ok(ops)
}

/// The op list as `--ops` spells it (`mirror,sepia`; `none` when empty).
pub fn ops_name(ops: &Ops) -> String {
    let mut names: Vec<&str> = Vec::new();
    if ops.mirror {
        names.push("mirror");
    }
    names.extend(ops.filters.iter().map(|f| f.name()));
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join(",")
    }
}

/// `count` distinct synthetic RGBA frames (opaque): a horizontal gradient that moves from
/// frame to frame, a vertical one, diagonal stripes and ±8 of hashed noise. Never all zeros;
/// compressible about as much as a photograph, not as white noise.
pub fn synthetic_frames(width: u32, height: u32, count: usize) -> Vec<Vec<u8>> {
    let (w, h) = (width as usize, height as usize);
    (0..count)
        .map(|k| {
            let mut rgba = Vec::with_capacity(w * h * 4);
            for y in 0..h {
                for x in 0..w {
                    let noise = |salt: usize| {
                        let mut v = (x as u32).wrapping_mul(0x9E37_79B1)
                            ^ (y as u32).wrapping_mul(0x85EB_CA77)
                            ^ ((k * 4 + salt) as u32).wrapping_mul(0xC2B2_AE3D);
                        v ^= v >> 15;
                        v = v.wrapping_mul(0x2C1B_3C6D);
                        (v >> 28) as i32 - 8
                    };
                    let r = ((x + k * w / 7) % w.max(1)) * 255 / w.max(1);
                    let g = y * 255 / h.max(1);
                    let b = ((x / 8 + y / 8 + k * 5) % 32) * 8;
                    for (c, v) in [r, g, b].into_iter().enumerate() {
                        rgba.push((v as i32 + noise(c)).clamp(1, 255) as u8);
                    }
                    rgba.push(255);
                }
            }
            rgba
        })
        .collect()
}

/// One measured stage.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Stable identifier, e.g. `cpu.ops.fast`, `gpu.round_trip.in_flight_3`, `encode.webp`.
    pub key: String,
    /// What a person reads in the table.
    pub label: String,
    /// `cpu`, `gpu` or `-` (stages that run on the CPU whatever the backend).
    pub backend: &'static str,
    /// Timed samples, milliseconds, sorted.
    pub samples_ms: Vec<f64>,
}

impl Row {
    /// The sample at quantile `q` (nearest rank).
    pub fn quantile_ms(&self, q: f64) -> f64 {
        match self.samples_ms.len() {
            0 => f64::NAN,
            n => self.samples_ms[((n - 1) as f64 * q).round() as usize],
        }
    }

    /// The median sample.
    pub fn median_ms(&self) -> f64 {
        self.quantile_ms(0.5)
    }

    /// Frames per second at the median.
    pub fn fps(&self) -> f64 {
        1000.0 / self.median_ms()
    }

    /// The row as one table line (see [`Report::table_header`]); a label wider than its column
    /// goes on a line of its own, so that the figures stay in their columns.
    pub fn table_line(&self) -> String {
        let (label, first_line) = if self.label.chars().count() > LABEL_COLUMN {
            ("", format!("{}\n", self.label))
        } else {
            (self.label.as_str(), String::new())
        };
        format!(
            "{first_line}{label:<LABEL_COLUMN$} {:>4} {:>10.3} {:>9.3} {:>9.3} {:>9.1} {:>4}",
            self.backend,
            self.median_ms(),
            self.quantile_ms(0.1),
            self.quantile_ms(0.9),
            self.fps(),
            self.samples_ms.len()
        )
    }
}

/// Characters of the table's stage column.
const LABEL_COLUMN: usize = 44;

/// A stage that was not measured, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The key the row would have had (as [`Row::key`]), or `gpu` for all the GPU rows when
    /// no usable adapter was opened.
    pub key: String,
    /// Why it was not measured (no adapter, a format that cannot hold the mode, ...).
    pub reason: String,
}

/// The outcome of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// The options the run measured with.
    pub options: BenchOptions,
    /// Threads the CPU fast path uses.
    pub cpu_threads: usize,
    /// The GPU adapter, when one was opened.
    pub gpu: Option<String>,
    /// Its `max_buffer_size` and `max_storage_buffer_binding_size`: frames over the binding
    /// size run in bands.
    pub gpu_limits: Option<(u64, u64)>,
    /// The measured stages, in the order they ran.
    pub rows: Vec<Row>,
    /// The stages that were not measured, with the reason for each.
    pub skipped: Vec<Skipped>,
    /// Wall time of the whole run, seconds.
    pub elapsed_s: f64,
}

impl Report {
    /// The lines above the table: what was measured, where, and the column names.
    pub fn table_header(options: &BenchOptions, cpu_threads: usize, gpu: Option<&str>) -> String {
        let round_trip_mode = options
            .ops
            .mode
            .map_or("RGBA".to_string(), |m| m.to_string());
        format!(
            "shutter bench: {}x{} frames, ops {}, round trips to {round_trip_mode}, mode {} for convert/encode/end to end\n\
             machine: {cpu_threads} CPU threads; GPU: {}; the GPU ring's host copies on {} thread(s)\n\
             timed frames per row (warm-up excluded): median, p10, p90 in ms; fps = 1000 / median\n\
             {:<LABEL_COLUMN$} {:>4} {:>10} {:>9} {:>9} {:>9} {:>4}",
            options.width,
            options.height,
            ops_name(&options.ops),
            options.mode,
            gpu.unwrap_or("none"),
            copy_threads(),
            "stage",
            "on",
            "median",
            "p10",
            "p90",
            "fps",
            "n"
        )
    }

    /// The whole report as one JSON object.
    pub fn to_json(&self) -> String {
        let o = &self.options;
        let mut out = String::from("{");
        out += &format!(
            "\"version\":{},\"width\":{},\"height\":{},\"ops\":{},\"round_trip_mode\":{},\"mode\":{},",
            json_str(env!("CARGO_PKG_VERSION")),
            o.width,
            o.height,
            json_str(&ops_name(&o.ops)),
            o.ops
                .mode
                .map_or("null".to_string(), |m| json_str(&m.to_string())),
            json_str(&o.mode.to_string()),
        );
        out += &format!(
            "\"in_flight\":{},\"frames\":{},\"cpu_threads\":{},\"copy_threads\":{},\"gpu\":{},\"gpu_max_buffer\":{},\"gpu_max_binding\":{},\"elapsed_s\":{},",
            o.in_flight,
            o.frames,
            self.cpu_threads,
            copy_threads(),
            self.gpu.as_deref().map_or("null".to_string(), json_str),
            self.gpu_limits
                .map_or("null".to_string(), |l| l.0.to_string()),
            self.gpu_limits
                .map_or("null".to_string(), |l| l.1.to_string()),
            json_num(self.elapsed_s),
        );
        let rows: Vec<String> = self
            .rows
            .iter()
            .map(|r| {
                format!(
                    "{{\"key\":{},\"label\":{},\"backend\":{},\"samples\":{},\"median_ms\":{},\"p10_ms\":{},\"p90_ms\":{},\"min_ms\":{},\"max_ms\":{},\"fps\":{}}}",
                    json_str(&r.key),
                    json_str(&r.label),
                    json_str(r.backend),
                    r.samples_ms.len(),
                    json_num(r.median_ms()),
                    json_num(r.quantile_ms(0.1)),
                    json_num(r.quantile_ms(0.9)),
                    json_num(r.quantile_ms(0.0)),
                    json_num(r.quantile_ms(1.0)),
                    json_num(r.fps()),
                )
            })
            .collect();
        out += &format!("\"rows\":[{}],", rows.join(","));
        let skipped: Vec<String> = self
            .skipped
            .iter()
            .map(|s| {
                format!(
                    "{{\"key\":{},\"reason\":{}}}",
                    json_str(&s.key),
                    json_str(&s.reason)
                )
            })
            .collect();
        out += &format!("\"skipped\":[{}]}}", skipped.join(","));
        out
    }
}

/// A JSON string literal (also used by `shutter run --json`).
pub fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A JSON number (`null` for NaN and infinities, which JSON lacks).
fn json_num(v: f64) -> String {
    if v.is_finite() {
        format!("{:.6}", v)
    } else {
        "null".to_string()
    }
}

/// How long each row may run, and how many samples it takes.
#[derive(Debug, Clone, Copy)]
struct Timing {
    frames: usize,
    budget: Option<Duration>,
}

impl Timing {
    /// Runs `warmup` untimed iterations, then timed ones until `frames` samples (or the budget
    /// with at least [`MIN_SAMPLES`]). `one(k)` processes input `k` and returns the time of the
    /// part that counts.
    fn measure(
        self,
        warmup: usize,
        mut one: impl FnMut(usize) -> Result<Duration>,
    ) -> Result<Vec<f64>> {
        for k in 0..warmup {
            one(k)?;
        }
        let start = Instant::now();
        let mut samples = Vec::with_capacity(self.frames);
        for k in 0..self.frames {
            samples.push(one(warmup + k)?.as_secs_f64() * 1e3);
            if self
                .budget
                .is_some_and(|b| start.elapsed() > b && samples.len() >= MIN_SAMPLES)
            {
                break;
            }
        }
        samples.sort_by(f64::total_cmp);
        Ok(samples)
    }
}

/// What [`run`] reports while it runs.
#[derive(Debug, Clone, Copy)]
pub enum Progress<'a> {
    /// The backends are open: the CPU fast path's threads and the GPU adapter, if any.
    Started {
        /// Threads the CPU fast path uses.
        cpu_threads: usize,
        /// The GPU adapter's name, when one was opened.
        gpu: Option<&'a str>,
    },
    /// A row has been measured.
    Row(&'a Row),
}

/// Collects rows and tells the caller about each as it is measured.
struct Rows<'a> {
    rows: Vec<Row>,
    skipped: Vec<Skipped>,
    on_progress: &'a mut dyn FnMut(Progress<'_>),
}

impl Rows<'_> {
    fn push(
        &mut self,
        key: impl Into<String>,
        label: impl Into<String>,
        backend: &'static str,
        samples_ms: Vec<f64>,
    ) {
        let row = Row {
            key: key.into(),
            label: label.into(),
            backend,
            samples_ms,
        };
        (self.on_progress)(Progress::Row(&row));
        self.rows.push(row);
    }

    fn skip(&mut self, key: impl Into<String>, reason: impl Into<String>) {
        self.skipped.push(Skipped {
            key: key.into(),
            reason: reason.into(),
        });
    }
}

/// The row `key`: the last frame's pass replayed on data already on the GPU; skipped, with
/// the reason, when the ops run no pass (`--ops none` in RGB: the frame only goes up and back).
fn pass_alone(
    gpu: &mut GpuBackend,
    timing: Timing,
    rows: &mut Rows<'_>,
    key: &str,
    label: String,
) -> Result<()> {
    // The probe is the row's warm-up.
    if gpu.replay_pass()?.is_none() {
        rows.skip(
            key,
            "no pass runs: with no ops the frame only goes up and back",
        );
        return Ok(());
    }
    let samples = timing.measure(0, |_| {
        gpu.replay_pass()?
            .ok_or_else(|| Error::Gpu("bench: the ops pass could not be replayed".into()))
    })?;
    rows.push(key, label, "gpu", samples);
    Ok(())
}

fn timed(f: impl FnOnce()) -> Duration {
    let start = Instant::now();
    f();
    start.elapsed()
}

/// The formats an `encode.*` row is measured for, when they hold the mode.
fn encode_formats() -> [Format; 5] {
    [
        Format::default(),
        Format::Png,
        Format::Jpeg {
            quality: encode::DEFAULT_JPEG_QUALITY,
        },
        Format::Gif,
        Format::Npy,
    ]
}

fn encode_key(format: &Format) -> String {
    match format {
        Format::Webp { lossless: true, .. } => "webp_lossless".to_string(),
        other => other.extension().to_string(),
    }
}

fn encode_label(format: &Format) -> String {
    match format {
        Format::Webp {
            quality,
            lossless: false,
        } => format!("encode webp lossy q{quality}"),
        Format::Webp { lossless: true, .. } => "encode webp lossless".to_string(),
        Format::Jpeg { quality } => format!("encode jpeg q{quality}"),
        other => format!("encode {}", other.extension()),
    }
}

/// Measures every row `options` asks for, telling `on_progress` when the backends are open and
/// as each row finishes.
///
/// # Errors
/// [`Error::NoAdapter`] for [`BenchDevice::Gpu`] without an adapter; [`Error::Gpu`] when the
/// GPU fails part-way; [`Error::Encode`] when an encoder fails on the synthetic frames.
pub fn run(options: &BenchOptions, on_progress: &mut dyn FnMut(Progress<'_>)) -> Result<Report> {
    let started = Instant::now();
    let (w, h) = (options.width, options.height);
    let inputs = synthetic_frames(w, h, DISTINCT_FRAMES);
    let input = |k: usize| &inputs[k % DISTINCT_FRAMES];
    let timing = Timing {
        frames: options.frames,
        budget: options.row_budget,
    };
    let mut rows = Rows {
        rows: Vec::new(),
        skipped: Vec::new(),
        on_progress,
    };

    let (want_cpu, gpu) = match options.device {
        BenchDevice::Cpu => (true, None),
        BenchDevice::Gpu => (false, Some(GpuContext::new()?)),
        BenchDevice::Auto => match GpuContext::new() {
            Ok(ctx) if ctx.is_software() => {
                rows.skip("gpu", Error::SoftwareAdapter(ctx.describe()).to_string());
                (true, None)
            }
            Ok(ctx) => (false, Some(ctx)),
            Err(err) => {
                rows.skip("gpu", err.to_string());
                (true, None)
            }
        },
        BenchDevice::Both => match GpuContext::new() {
            Ok(ctx) => (true, Some(ctx)),
            Err(err) => {
                rows.skip("gpu", err.to_string());
                (true, None)
            }
        },
    };
    let cpu_threads = fast::available_threads();
    let gpu_name = gpu.as_ref().map(|ctx| ctx.info.name.clone());
    (rows.on_progress)(Progress::Started {
        cpu_threads,
        gpu: gpu_name.as_deref(),
    });

    let bytes = inputs[0].len();
    let mut work = vec![0u8; bytes];
    let samples = timing.measure(1, |k| Ok(timed(|| work.copy_from_slice(input(k)))))?;
    rows.push(
        "memcpy",
        "memcpy of one RGBA frame (memory bound)",
        "-",
        samples,
    );

    if want_cpu && (options.ops.mirror || !options.ops.filters.is_empty()) {
        let ops = &options.ops;
        let samples = timing.measure(1, |k| {
            work.copy_from_slice(input(k));
            Ok(timed(|| cpu::apply(ops, w, h, &mut work)))
        })?;
        rows.push(
            "cpu.ops.reference",
            "ops, CPU reference (1 thread)",
            "cpu",
            samples,
        );
        let samples = timing.measure(2, |k| {
            work.copy_from_slice(input(k));
            Ok(timed(|| fast::apply(ops, w, h, &mut work)))
        })?;
        rows.push(
            "cpu.ops.fast",
            format!("ops, CPU fast path ({cpu_threads} threads)"),
            "cpu",
            samples,
        );
    }
    if want_cpu {
        // What the CPU backend does with a mode set: the ops and the conversion in one pass
        // where the mode is point-wise (compare with the ops row plus the convert row).
        let (mode, ops) = (options.mode, &options.ops);
        let dither = mode.dither_for(None)?;
        let mut frame = Frame::new(w, h, work.clone(), false, FrameMeta::still(0, 0));
        let samples = timing.measure(2, |k| {
            frame.rgba.copy_from_slice(input(k));
            Ok(timed(|| {
                std::hint::black_box(mode_cpu::apply_and_convert(ops, mode, dither, &mut frame));
            }))
        })?;
        rows.push(
            format!("cpu.ops_mode.{mode}"),
            format!("ops + convert to {mode}, CPU fast path"),
            "cpu",
            samples,
        );
    }

    if let Some(ctx) = &gpu {
        gpu_rows(ctx, options, &inputs, timing, &mut rows)?;
    }

    // Mode conversion, encoders and decoders run on the CPU whichever backend processed.
    let mode = options.mode;
    let dither = mode.dither_for(None)?;
    let processed: Vec<Vec<u8>> = inputs
        .iter()
        .map(|px| {
            let mut px = px.clone();
            fast::apply(&options.ops, w, h, &mut px);
            px
        })
        .collect();
    let samples = timing.measure(1, |k| {
        let px = &processed[k % DISTINCT_FRAMES];
        Ok(timed(|| {
            std::hint::black_box(mode_cpu::convert(mode, dither, w, h, px, false));
        }))
    })?;
    rows.push(
        format!("mode.{mode}"),
        format!("mode convert RGBA -> {mode} (CPU)"),
        "-",
        samples,
    );

    let frames: Vec<Frame> = processed
        .iter()
        .enumerate()
        .map(|(k, px)| {
            let mut frame = Frame::new(w, h, px.clone(), false, FrameMeta::still(k as u64, 0));
            frame.image = Some(mode_cpu::convert(mode, dither, w, h, px, false));
            frame
        })
        .collect();
    for format in encode_formats() {
        let key = format!("encode.{}", encode_key(&format));
        if !format.holds(mode) {
            rows.skip(
                key,
                format!("{} cannot hold mode {mode}", format.extension()),
            );
            continue;
        }
        if let Err(reason) = encode::encode_frames(&format, &frames[..1], &|| false) {
            rows.skip(key, reason);
            continue;
        }
        let samples = timing.measure(1, |k| {
            let frame = std::slice::from_ref(&frames[k % DISTINCT_FRAMES]);
            let start = Instant::now();
            let encoded = encode::encode_frames(&format, frame, &|| false);
            let spent = start.elapsed();
            encoded.map(|_| spent).map_err(|reason| Error::Encode {
                output: "bench".to_string(),
                format: format.extension().to_string(),
                reason,
            })
        })?;
        rows.push(key, encode_label(&format), "-", samples);
    }

    // Decoders read what a capture stage reads: the synthetic frames as RGB files.
    let rgb_frames: Vec<Frame> = inputs
        .iter()
        .enumerate()
        .map(|(k, px)| Frame::new(w, h, px.clone(), false, FrameMeta::still(k as u64, 0)))
        .collect();
    for format in [
        Format::Png,
        Format::Jpeg {
            quality: encode::DEFAULT_JPEG_QUALITY,
        },
    ] {
        let key = format!("decode.{}", format.extension());
        let files: std::result::Result<Vec<Vec<u8>>, String> = rgb_frames
            .iter()
            .map(|f| encode::encode_frames(&format, std::slice::from_ref(f), &|| false))
            .collect();
        let files = match files {
            Ok(files) => files,
            Err(reason) => {
                rows.skip(key, reason);
                continue;
            }
        };
        let limits = DecodeLimits::default();
        let first: Result<Vec<_>> =
            decode_bytes("bench", files[0].clone(), &limits).and_then(Iterator::collect);
        if let Err(err) = first {
            rows.skip(key, err.to_string());
            continue;
        }
        let samples = timing.measure(1, |k| {
            let file = files[k % DISTINCT_FRAMES].clone();
            let start = Instant::now();
            let decoded: Result<Vec<_>> = decode_bytes("bench", file, &limits)?.collect();
            let spent = start.elapsed();
            decoded.map(|_| spent)
        })?;
        rows.push(
            key,
            format!("decode {} to RGBA", format.extension()),
            "-",
            samples,
        );
    }

    if let Some(ctx) = &gpu {
        end_to_end(Some(ctx.clone()), options, &inputs, &mut rows)?;
    }
    if want_cpu {
        end_to_end(None, options, &inputs, &mut rows)?;
    }

    Ok(Report {
        options: options.clone(),
        cpu_threads,
        gpu: gpu_name,
        gpu_limits: gpu.as_ref().map(|ctx| {
            let limits = ctx.device.limits();
            (
                limits.max_buffer_size,
                limits.max_storage_buffer_binding_size,
            )
        }),
        rows: rows.rows,
        skipped: rows.skipped,
        elapsed_s: started.elapsed().as_secs_f64(),
    })
}

/// Upload, readback and the round trip through the GPU ring, one frame at a time and pipelined.
fn gpu_rows(
    ctx: &Arc<GpuContext>,
    options: &BenchOptions,
    inputs: &[Vec<u8>],
    timing: Timing,
    rows: &mut Rows<'_>,
) -> Result<()> {
    let (w, h) = (options.width, options.height);
    let bytes = inputs[0].len() as u64;
    let device = &ctx.device;
    let queue = &ctx.queue;
    let max = device.limits().max_buffer_size;
    if bytes > max {
        for key in ["gpu.upload", "gpu.readback", "gpu.copy_bound"] {
            rows.skip(
                key,
                format!("{bytes} bytes is over the adapter's buffer limit of {max}"),
            );
        }
    } else {
        let storage = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("bench storage"),
            size: bytes,
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_DST
                | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        let readback = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("bench readback"),
            size: bytes,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let staging = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("bench upload"),
            size: bytes,
            usage: wgpu::BufferUsages::MAP_WRITE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: true,
        });
        let wait = |index: wgpu::SubmissionIndex| -> Result<()> {
            device
                .poll(wgpu::PollType::Wait {
                    submission_index: Some(index),
                    timeout: None,
                })
                .map(|_| ())
                .map_err(|err| Error::Gpu(format!("bench: waiting for the GPU: {err}")))
        };
        // Maps `buffer` and waits for it (after `index`, the work that used it).
        let map = |buffer: &wgpu::Buffer, mode, index| -> Result<()> {
            let mapped = MapSignal::new(MapState::Pending);
            mapped.map(buffer.slice(..), mode);
            wait(index)?;
            if mapped.settle(SETTLE_LIMIT) != MapState::Mapped {
                ctx.take_error()?;
                return Err(Error::Gpu("bench: a buffer did not map".into()));
            }
            Ok(())
        };
        let samples = timing.measure(2, |k| {
            let start = Instant::now();
            queue.write_buffer(&storage, 0, &inputs[k % DISTINCT_FRAMES]);
            wait(queue.submit([]))?;
            Ok(start.elapsed())
        })?;
        ctx.take_error()?;
        rows.push(
            "gpu.upload.write_buffer",
            "upload: write_buffer + submit + wait",
            "gpu",
            samples,
        );
        let threads = fast::available_threads().min(MAX_COPY_THREADS);
        let thread_counts: &[usize] = if threads > 1 { &[1, threads] } else { &[1] };
        for &threads in thread_counts {
            let samples = timing.measure(2, |k| {
                let start = Instant::now();
                {
                    let mut view = staging
                        .slice(..)
                        .get_mapped_range_mut()
                        .map_err(|err| Error::Gpu(format!("bench: {err}")))?;
                    par_copy_with(view.slice(..), &inputs[k % DISTINCT_FRAMES], threads);
                }
                staging.unmap();
                let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
                    label: Some("bench upload"),
                });
                encoder.copy_buffer_to_buffer(&staging, 0, &storage, 0, bytes);
                let index = queue.submit([encoder.finish()]);
                map(&staging, wgpu::MapMode::Write, index)?;
                Ok(start.elapsed())
            })?;
            ctx.take_error()?;
            rows.push(
                format!("gpu.upload.staging.threads_{threads}"),
                format!("upload: mapped buffer, {threads}-thread copy + wait"),
                "gpu",
                samples,
            );
        }
        let mut out = vec![0u8; inputs[0].len()];
        for &threads in thread_counts {
            let samples = timing.measure(2, |_| {
                let start = Instant::now();
                let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
                    label: Some("bench readback"),
                });
                encoder.copy_buffer_to_buffer(&storage, 0, &readback, 0, bytes);
                map(
                    &readback,
                    wgpu::MapMode::Read,
                    queue.submit([encoder.finish()]),
                )?;
                {
                    let view = readback
                        .slice(..)
                        .get_mapped_range()
                        .map_err(|err| Error::Gpu(format!("bench: {err}")))?;
                    par_copy_with((&mut out[..]).into(), &view, threads);
                }
                readback.unmap();
                Ok(start.elapsed())
            })?;
            ctx.take_error()?;
            rows.push(
                format!("gpu.readback.threads_{threads}"),
                format!("readback: copy + map + {threads}-thread copy out"),
                "gpu",
                samples,
            );
        }
        // The bound of a round trip: the GPU's copies alone, from a mapped upload buffer to a
        // mapped readback, with no host copy and no compute (PyTorch's pinned copy peer).
        let samples = timing.measure(2, |_| {
            let start = Instant::now();
            staging.unmap();
            let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("bench copy bound"),
            });
            encoder.copy_buffer_to_buffer(&staging, 0, &storage, 0, bytes);
            encoder.copy_buffer_to_buffer(&storage, 0, &readback, 0, bytes);
            let index = queue.submit([encoder.finish()]);
            map(&readback, wgpu::MapMode::Read, index.clone())?;
            map(&staging, wgpu::MapMode::Write, index)?;
            readback.unmap();
            Ok(start.elapsed())
        })?;
        ctx.take_error()?;
        rows.push(
            "gpu.copy_bound",
            "copy bound: mapped -> GPU -> mapped, no compute",
            "gpu",
            samples,
        );
    }

    let mode_note = options
        .ops
        .mode
        .map_or(String::new(), |m| format!(" + mode {m}"));
    let frame = |k: usize| {
        Frame::new(
            w,
            h,
            inputs[k % DISTINCT_FRAMES].clone(),
            false,
            FrameMeta::still(k as u64, 0),
        )
    };
    let n = options.in_flight;
    // The default upload (mapped buffers) and write_buffer, measured in the same run.
    for (upload, key, note) in [
        (Upload::Staging, "", ""),
        (Upload::WriteBuffer, ".write_buffer", " (write_buffer)"),
    ] {
        let mut processor = Processor::new(Some(ctx.clone()), &options.ops, 1)?;
        set_upload(&mut processor, upload);
        let samples = timing.measure(2, |k| {
            let input = frame(k);
            let start = Instant::now();
            processor.process(input)?;
            Ok(start.elapsed())
        })?;
        rows.push(
            format!("gpu.round_trip{key}.in_flight_1"),
            format!("GPU round trip{mode_note}{note}, 1 in flight"),
            "gpu",
            samples,
        );
        if upload == Upload::Staging
            && let Some(gpu) = processor.gpu()
        {
            pass_alone(
                gpu,
                timing,
                rows,
                "gpu.pass",
                format!("GPU pass alone{mode_note} (data on the GPU)"),
            )?;
        }
        if n == 1 {
            // The round trip with 1 in flight is the row above.
            continue;
        }

        let mut processor = Processor::new(Some(ctx.clone()), &options.ops, n)?;
        set_upload(&mut processor, upload);
        let samples = pipelined(&mut processor, timing, n, frame)?;
        rows.push(
            format!("gpu.round_trip{key}.in_flight_{n}"),
            format!("GPU round trip{mode_note}{note}, {n} in flight"),
            "gpu",
            samples,
        );
    }
    // Frames that live in the ring's mapped buffers, as PyTorch's pinned peer keeps its frames
    // in pinned memory: each slot's upload buffer is written once (the first frame in each),
    // then frames go up and come back with no host copy (`schedule_with` writing nothing,
    // `collect_with` reading in place). The gap to the round trips above is what the two host
    // copies cost. (Modes that finish on the CPU, `1`/`P` with dithering, still copy down.)
    let samples = in_place_round_trip(ctx, options, timing, inputs, false)?;
    rows.push(
        format!("gpu.round_trip.in_place.in_flight_{n}"),
        format!("GPU round trip{mode_note}, no host copy, {n} in flight"),
        "gpu",
        samples,
    );

    // The same two round trips for an RGB source (a JPEG, most cameras) uploaded as it is, at
    // 3 bytes a pixel (`schedule_rgb`): a quarter fewer bytes up than the rows above, which
    // start from RGBA; the kernels widen on the GPU. The copying one copies the RGB frame up
    // and the result out into one reused buffer, as the plain round trip does.
    let rgb = rgb_frames(inputs);
    let mut processor = Processor::new(Some(ctx.clone()), &options.ops, n)?;
    let out = std::cell::RefCell::new(Vec::new());
    let samples = drive(
        &mut processor,
        timing,
        n,
        |p, k| {
            p.schedule_rgb(
                w,
                h,
                &rgb[k % DISTINCT_FRAMES],
                FrameMeta::still(k as u64, 0),
            )
        },
        |p| {
            let copied = p.collect_with(true, |f| {
                let mut out = out.borrow_mut();
                out.clear();
                out.extend_from_slice(f.bytes);
            })?;
            Ok(copied.is_some())
        },
    )?;
    rows.push(
        format!("gpu.round_trip.rgb.in_flight_{n}"),
        format!("GPU round trip{mode_note}, RGB up at 3 B/px, {n} in flight"),
        "gpu",
        samples,
    );
    if let Some(gpu) = processor.gpu() {
        pass_alone(
            gpu,
            timing,
            rows,
            "gpu.pass.rgb",
            format!("GPU pass alone{mode_note}, RGB input"),
        )?;
    }
    let samples = in_place_round_trip(ctx, options, timing, &rgb, true)?;
    rows.push(
        format!("gpu.round_trip.in_place.rgb.in_flight_{n}"),
        format!("GPU round trip{mode_note}, RGB up at 3 B/px, no host copy, {n} in flight"),
        "gpu",
        samples,
    );
    Ok(())
}

/// The round trip with no host copy: frames live in the ring's mapped buffers, each slot's
/// upload buffer written once (its first frame, from `frames`: RGBA, or RGB with `rgb`), then
/// frames go up and come back with no copy (`schedule_with` / `schedule_rgb_with` writing
/// nothing, `collect_with` reading in place).
fn in_place_round_trip(
    ctx: &Arc<GpuContext>,
    options: &BenchOptions,
    timing: Timing,
    frames: &[Vec<u8>],
    rgb: bool,
) -> Result<Vec<f64>> {
    let (w, h, n) = (options.width, options.height, options.in_flight);
    let mut processor = Processor::new(Some(ctx.clone()), &options.ops, n)?;
    let slots = processor.capacity();
    drive(
        &mut processor,
        timing,
        n,
        |p, k| {
            let meta = FrameMeta::still(k as u64, 0);
            let fill = |mut dst: wgpu::WriteOnly<'_, [u8]>| {
                if k < slots {
                    dst.copy_from_slice(&frames[k % DISTINCT_FRAMES]);
                }
            };
            if rgb {
                p.schedule_rgb_with(w, h, meta, fill)
            } else {
                p.schedule_with(w, h, false, meta, fill)
            }
        },
        |p| Ok(p.collect_with(true, |f| f.bytes.len())?.is_some()),
    )
}

fn set_upload(processor: &mut Processor, upload: Upload) {
    if let Some(gpu) = processor.gpu() {
        gpu.set_upload(upload);
    }
}

/// Keeps `processor` full and records when each frame comes back. Frames that come back
/// are scheduled again (their buffers reused: no allocation in the loop).
fn pipelined(
    processor: &mut Processor,
    timing: Timing,
    in_flight: usize,
    frame: impl Fn(usize) -> Frame,
) -> Result<Vec<f64>> {
    let spare = std::cell::RefCell::new((0..in_flight).map(&frame).collect::<Vec<_>>());
    drive(
        processor,
        timing,
        in_flight,
        |p, k| {
            let next = spare.borrow_mut().pop();
            let mut next = next.unwrap_or_else(|| frame(k));
            next.image = None;
            p.schedule(next)
        },
        |p| {
            let done = p.collect(true)?;
            Ok(done.map(|done| spare.borrow_mut().push(done)).is_some())
        },
    )
}

/// Keeps `processor` full (`schedule(processor, k)` starts the `k`th frame) and records when
/// each frame comes back (`collect(processor)` waits for the oldest and says whether one came).
fn drive(
    processor: &mut Processor,
    timing: Timing,
    in_flight: usize,
    mut schedule: impl FnMut(&mut Processor, usize) -> Result<()>,
    mut collect: impl FnMut(&mut Processor) -> Result<bool>,
) -> Result<Vec<f64>> {
    let warmup = in_flight + 2;
    let window = in_flight.max(2);
    let mut finished: Vec<Instant> = Vec::with_capacity(warmup + window + timing.frames);
    let mut scheduled = 0;
    loop {
        while processor.pending() < processor.capacity() {
            schedule(processor, scheduled)?;
            scheduled += 1;
        }
        if !collect(processor)? {
            return Err(Error::Gpu(
                "bench: a scheduled frame never came back".into(),
            ));
        }
        let now = Instant::now();
        finished.push(now);
        let timed = finished.len().saturating_sub(warmup + window);
        let out_of_time = timing.budget.is_some_and(|b| {
            timed >= MIN_SAMPLES && finished.get(warmup).is_some_and(|t0| now - *t0 > b)
        });
        if timed >= timing.frames || out_of_time {
            break;
        }
    }
    while processor.pending() > 0 {
        collect(processor)?;
    }
    Ok(windowed(&finished[warmup..], window, timing.frames))
}

/// Per-frame times from the instants frames finished: over each run of `window` consecutive
/// frames, its duration / `window` (a ring hands frames back in bursts, so single intervals
/// alternate between ~0 and several frames' worth). At most `limit` samples, sorted.
fn windowed(finished: &[Instant], window: usize, limit: usize) -> Vec<f64> {
    let mut samples: Vec<f64> = finished
        .windows(window + 1)
        .map(|w| (w[window] - w[0]).as_secs_f64() * 1e3 / window as f64)
        .take(limit)
        .collect();
    samples.sort_by(f64::total_cmp);
    samples
}

/// Frames through the whole [`Pipeline`] (capture thread, backend, sink thread) to a callback
/// sink: the interval between consecutive frames reaching the callback.
fn end_to_end(
    gpu: Option<Arc<GpuContext>>,
    options: &BenchOptions,
    inputs: &[Vec<u8>],
    rows: &mut Rows<'_>,
) -> Result<()> {
    let (w, h) = (options.width, options.height);
    let backend = if gpu.is_some() { "gpu" } else { "cpu" };
    let warmup = options.in_flight + 2;
    let window = options.in_flight.max(2);
    let total = (warmup + window + options.frames) as u64;
    let frames: Arc<[Vec<u8>]> = inputs.to_vec().into();
    let mut produced = 0usize;
    let grabber = FuncGrabber::from_fn(move || {
        let rgba = frames[produced % frames.len()].clone();
        produced += 1;
        Some(Ok((w, h, rgba)))
    })
    .named("bench frames");
    let arrivals = Arc::new(Mutex::new(Vec::<Instant>::with_capacity(total as usize)));
    let sink = Arc::clone(&arrivals);
    let budget = options.row_budget;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop_flag = Arc::clone(&stop);
    let device = if gpu.is_some() {
        DeviceChoice::Gpu
    } else {
        DeviceChoice::Cpu
    };
    let mode = options.mode;
    let stats = Pipeline::builder()
        .source(Source::grabber(grabber))
        .mirror(options.ops.mirror)
        .filters(options.ops.filters.clone())
        .mode(mode)
        .dither(mode.dither_for(None)?)
        .device(device)
        .in_flight(options.in_flight)
        .max_frames(total)
        .stop_flag(stop)
        .on_frame(move |_frame: &Frame| {
            let mut seen = sink.lock().unwrap_or_else(PoisonError::into_inner);
            let now = Instant::now();
            seen.push(now);
            if let Some(budget) = budget
                && seen.len() > warmup + window + MIN_SAMPLES
                && now - seen[warmup] > budget
            {
                stop_flag.store(true, std::sync::atomic::Ordering::Relaxed);
            }
            Ok(())
        })
        .build()?
        .run()?;
    let seen = arrivals.lock().unwrap_or_else(PoisonError::into_inner);
    let samples = windowed(
        seen.get(warmup..).unwrap_or_default(),
        window,
        options.frames,
    );
    let note = if mode == ImageMode::Rgb {
        String::new()
    } else {
        format!(", mode {mode}")
    };
    if samples.is_empty() {
        // Why, when the pipeline said (frames over the decode limits, say).
        let why = stats
            .failures
            .first()
            .map_or_else(String::new, |err| format!(": {err}"));
        rows.skip(
            format!("e2e.{backend}"),
            format!("only {} frames reached the callback{why}", seen.len()),
        );
    } else {
        rows.push(
            format!("e2e.{backend}"),
            format!("end to end: frames -> Pipeline -> callback{note}"),
            backend,
            samples,
        );
    }
    Ok(())
}

/// `shutter bench`: runs `options` and prints the table (rows as they finish) or, with
/// `json`, one JSON object on stdout.
///
/// # Errors
/// As [`run`].
pub fn main(options: &BenchOptions, json: bool) -> Result<()> {
    use std::io::Write as _;
    let stdout_error = |err| Error::io("<stdout>", err);
    let mut stdout = std::io::stdout();
    // A closed stdout does not end a bench half-way (nor panic, as `println!` would): the
    // first failure is kept and returned at the end.
    let mut failed = None;
    let mut print = |progress: Progress<'_>| {
        let line = match progress {
            _ if json => return,
            Progress::Started { cpu_threads, gpu } => {
                Report::table_header(options, cpu_threads, gpu)
            }
            Progress::Row(row) => row.table_line(),
        };
        if let Err(err) = writeln!(stdout, "{line}") {
            failed.get_or_insert(err);
        }
    };
    let report = run(options, &mut print)?;
    if let Some(err) = failed {
        return Err(stdout_error(err));
    }
    let mut text = String::new();
    if json {
        text = report.to_json();
    } else {
        for skipped in &report.skipped {
            text += &format!("skipped {}: {}\n", skipped.key, skipped.reason);
        }
        if let Some((buffer, binding)) = report.gpu_limits {
            text += &format!(
                "GPU limits: buffers up to {} MiB, storage bindings up to {} MiB (larger frames run in bands)\n",
                buffer >> 20,
                binding >> 20
            );
        }
        text += &format!("{:.1} s in all", report.elapsed_s);
    }
    writeln!(std::io::stdout(), "{text}").map_err(stdout_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_by_name_and_by_number() {
        assert_eq!(parse_size("1080p").unwrap(), (1920, 1080));
        assert_eq!(parse_size("4K").unwrap(), (3840, 2160));
        assert_eq!(parse_size("64x48").unwrap(), (64, 48));
        for bad in ["", "12x", "0x5", "axb", "100000x100000", "1080"] {
            let err = parse_size(bad).unwrap_err();
            assert!(err.is_usage(), "{bad}");
            assert!(err.to_string().starts_with("size (--size)"), "{err}");
        }
    }

    #[test]
    fn ops_take_the_mirror_anywhere_and_name_unknown_ops() {
        let ops = parse_ops("sepia, mirror,invert").unwrap();
        assert!(ops.mirror);
        assert_eq!(ops.filters, vec![Filter::Sepia, Filter::Invert]);
        assert_eq!(ops_name(&ops), "mirror,sepia,invert");
        assert!(parse_ops("none").unwrap().is_identity());
        let err = parse_ops("mirror,blur").unwrap_err();
        assert!(err.is_usage() && err.to_string().contains("blur"), "{err}");
    }

    #[test]
    fn synthetic_frames_differ_and_are_never_all_zero() {
        let frames = synthetic_frames(33, 9, DISTINCT_FRAMES);
        assert_eq!(frames.len(), DISTINCT_FRAMES);
        for (i, a) in frames.iter().enumerate() {
            assert_eq!(a.len(), 33 * 9 * 4);
            assert!(a.iter().any(|&b| b != 0 && b != 255));
            for b in &frames[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }

    /// benches/peers/peers.py recomputes these frames with numpy and checks the same pixels
    /// and sums, so that the peers see what shutter sees.
    #[test]
    fn synthetic_frame_pixels_are_pinned() {
        let frames = synthetic_frames(33, 9, DISTINCT_FRAMES);
        let px = |k: usize, x: usize, y: usize| {
            let i = (y * 33 + x) * 4;
            frames[k][i..i + 4].to_vec()
        };
        assert_eq!(px(0, 0, 0), [1, 1, 3, 255]);
        assert_eq!(px(1, 17, 4), [165, 108, 63, 255]);
        assert_eq!(px(3, 32, 8), [103, 231, 159, 255]);
        let sums: Vec<u64> = frames
            .iter()
            .map(|f| f.iter().map(|&b| u64::from(b)).sum())
            .collect();
        assert_eq!(sums, [149_901, 161_473, 173_258, 185_530]);
    }

    #[test]
    fn bursts_average_out_over_the_window() {
        // Frames finish in pairs 10 ms apart: single intervals are 0 or 10 ms; over a window of
        // two frames every sample is 5 ms a frame.
        let t0 = Instant::now();
        let at = [0u64, 0, 10, 10, 20, 20, 30]
            .map(|ms| t0 + Duration::from_millis(ms))
            .to_vec();
        let samples = windowed(&at, 2, 10);
        assert_eq!(samples.len(), 5);
        assert!(
            samples.iter().all(|s| (s - 5.0).abs() < 1e-9),
            "{samples:?}"
        );
        assert_eq!(windowed(&at, 2, 3).len(), 3);
        assert!(windowed(&at[..2], 2, 10).is_empty());
    }

    #[test]
    fn json_strings_are_escaped() {
        assert_eq!(json_str("a\"b\\c\nd\u{1}"), "\"a\\\"b\\\\c\\nd\\u0001\"");
        assert_eq!(json_num(f64::NAN), "null");
    }
}

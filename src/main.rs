//! The `shutter` command line: parses flags into a [`shutter::Pipeline`], runs it, and maps the
//! outcome to an exit code (0 all good, 1 some input or the run failed, 2 usage error).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use shutter::gpu::GpuContext;
use shutter::pipeline::{Event, Output};
use shutter::{
    DecodeLimits, DeviceChoice, Error, Format, FramePolicy, ImageMode, Ops, Pipeline, Source,
};

#[derive(Parser)]
#[command(
    name = "shutter",
    version,
    about = "Stream images through the GPU: mirror, filter, convert, encode."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Process image files (or the built-in default image) and write the results.
    Run(Box<RunArgs>),
    /// List the GPU adapters (marking the one `--device auto` picks) and the cameras.
    Devices,
    /// Measure frames per second per stage and end to end, on synthetic frames.
    Bench(Box<BenchArgs>),
}

#[derive(Args)]
struct BenchArgs {
    /// Frame size: 720p, 1080p, 1440p, 4k, 8k or WIDTHxHEIGHT.
    #[arg(long, value_name = "SIZE", default_value = "1080p")]
    size: String,
    /// Ops, comma-separated: mirror, sepia, sepia-norm, grayscale, invert (or none).
    #[arg(long, value_name = "OP[,OP...]", default_value = "mirror,sepia")]
    ops: String,
    /// Pillow mode for the convert, encode and end-to-end rows (default RGB); given, the
    /// round trips convert to it too.
    #[arg(long, value_name = "MODE")]
    mode: Option<String>,
    /// Backends to measure: auto, gpu, cpu or both.
    #[arg(long, value_name = "DEVICE", default_value = "both")]
    device: String,
    /// Frames on the GPU at once in the pipelined rows.
    #[arg(long, value_name = "N", default_value_t = 3, allow_negative_numbers = true, value_parser = whole::<usize>)]
    in_flight: usize,
    /// Timed frames per row. Without it a row takes at most 20, and stops once it has 3 and
    /// has used 0.2 s.
    #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = whole::<usize>)]
    frames: Option<usize>,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct RunArgs {
    /// Image files, directories (their images, by name), `-` for stdin, `webcam[:INDEX]` or
    /// `pattern[:WxH][@FPS]`. None: a built-in image.
    #[arg(value_name = "SOURCE")]
    sources: Vec<std::ffi::OsString>,
    /// Output directory (created), or one output file whose extension picks the format.
    #[arg(short, long, value_name = "PATH", default_value = "out")]
    out: PathBuf,
    /// Output format: webp (default), png, jpeg, gif, bmp, tiff, npy. An animation or a stream
    /// is one file in webp, gif and npy, a numbered file per frame in the others.
    #[arg(long, value_name = "FMT")]
    format: Option<String>,
    /// Encoder quality: webp 0–100 (default 80), jpeg 1–100 (default 75).
    #[arg(long, value_name = "Q", allow_negative_numbers = true)]
    quality: Option<f32>,
    /// Lossless webp.
    #[arg(long)]
    lossless: bool,
    /// Mirror frames horizontally (before filters); on by default for webcams.
    #[arg(long, overrides_with = "no_mirror")]
    mirror: bool,
    /// Do not mirror (webcams mirror by default, as Gradio's `mirror_webcam`).
    #[arg(long)]
    no_mirror: bool,
    /// Leave out the inputs' ICC colour profiles, kept by default in png, jpeg, tiff and webp
    /// outputs where they describe the output's colours.
    #[arg(long)]
    no_icc: bool,
    /// Filters, applied in order: sepia, sepia-norm, grayscale, invert (comma-separated or repeated).
    #[arg(long, value_name = "NAME[,NAME...]")]
    filter: Vec<String>,
    /// Pillow image mode of the output: 1, L, P, RGB (default), RGBA, CMYK, YCbCr, LAB, HSV, I, F.
    #[arg(long, value_name = "MODE")]
    mode: Option<String>,
    /// Dithering for modes 1 and P: fs (Floyd–Steinberg, default) or none.
    #[arg(long, value_name = "fs|none")]
    dither: Option<String>,
    /// Where the ops run: auto (a hardware GPU if any, else the CPU, which beats a software
    /// one such as lavapipe), gpu (any adapter, software too), cpu.
    #[arg(long, value_name = "DEVICE", default_value = "auto")]
    device: String,
    /// Frames on the GPU at once (1 to 64).
    #[arg(long, value_name = "N", default_value_t = 3, allow_negative_numbers = true, value_parser = whole::<usize>)]
    in_flight: usize,
    /// Most memory the frames of files take between decoding and encoding (e.g. 512M, 4G;
    /// default 1G): the next frame's decoding waits while they take more; one frame always
    /// goes through.
    #[arg(long, value_name = "SIZE", allow_hyphen_values = true)]
    in_flight_memory: Option<String>,
    /// Webcam: requested frame width (the closest the camera offers is used).
    #[arg(long, value_name = "PX", allow_negative_numbers = true, value_parser = whole::<u32>)]
    width: Option<u32>,
    /// Webcam: requested frame height.
    #[arg(long, value_name = "PX", allow_negative_numbers = true, value_parser = whole::<u32>)]
    height: Option<u32>,
    /// Webcam: requested frame rate.
    #[arg(long, value_name = "FPS", allow_negative_numbers = true, value_parser = whole::<u32>)]
    fps: Option<u32>,
    /// Live sources: deliver at most one frame per SECS, the first captured at or after each
    /// tick (webcam default 0.5); refused on files, which are all delivered.
    #[arg(long, value_name = "SECS", allow_negative_numbers = true)]
    stream_every: Option<f64>,
    /// End the run after SECS (a live stream or a batch); in-flight frames finish and files are
    /// complete.
    #[arg(long, value_name = "SECS", allow_negative_numbers = true)]
    time_limit: Option<f64>,
    /// Live sources: end the stream, keeping what it delivered, when the source has sent
    /// nothing for SECS (a stalled camera; webcam default 30, as Gradio's; 0 for none); exits
    /// 1 then.
    #[arg(long, value_name = "SECS", allow_negative_numbers = true)]
    idle_timeout: Option<f64>,
    /// Stop after capturing N frames (with --stream-every or a dropping --policy, fewer are
    /// delivered).
    #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = whole::<u64>)]
    frames: Option<u64>,
    /// When a stage is busy: lossless (wait), latest (drop older frames), drop-new. Default:
    /// latest for webcams, paced patterns and streams with --stream-every, else lossless;
    /// files are always lossless.
    #[arg(long, value_name = "POLICY")]
    policy: Option<String>,
    /// Up to N waiting frames go to the GPU in one submission (Gradio's max_batch_size; 1 to
    /// 64).
    #[arg(long, value_name = "N", default_value_t = 1, allow_negative_numbers = true, value_parser = whole::<usize>)]
    batch: usize,
    /// Print the run's statistics as one JSON object on stdout.
    #[arg(long)]
    json: bool,
    /// Largest image accepted, in pixels (width × height; default 178956970, Pillow's bomb
    /// limit); larger inputs fail with an error.
    #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = whole::<u64>)]
    max_pixels: Option<u64>,
}

/// Prints a line to stderr. A closed or full stderr does not fail the run (nor panic, as
/// `eprintln!` does): the exit code still says how the run went.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// Prints a line to stdout. A failure (a closed pipe, a full disk) does not panic, as
/// `println!` does: the first is remembered and fails the exit code ([`stdout_failure`]).
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(err) = writeln!(std::io::stdout(), $($arg)*) {
            let _ = STDOUT_FAILED.set(err.to_string());
        }
    }};
}

/// The first error writing to stdout, if any.
static STDOUT_FAILED: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// `code`, or a failure when stdout could not be written: `--json` or a table that did not
/// reach its reader is a failed run.
fn stdout_failure(code: ExitCode) -> ExitCode {
    match STDOUT_FAILED.get() {
        Some(err) => {
            say!("shutter: error: cannot write to stdout: {err}");
            ExitCode::from(1)
        }
        None => code,
    }
}

/// Mesa's device-select layer asks Wayland which GPU drives the display, and where there is
/// no session (a server, a container: no `XDG_RUNTIME_DIR`) libwayland prints "error:
/// XDG_RUNTIME_DIR is invalid or not set" twice, lines that read like shutter's own errors.
/// shutter picks its adapter itself, so there the layer is turned off (`NODEVICE_SELECT=1`),
/// unless the user set that variable.
fn quiet_headless_vulkan() {
    if std::env::var_os("XDG_RUNTIME_DIR").is_none()
        && std::env::var_os("NODEVICE_SELECT").is_none()
    {
        // SAFETY: the first thing `main` does, before any thread is started.
        unsafe { std::env::set_var("NODEVICE_SELECT", "1") };
    }
}

/// The parsed command line. `--help` and `--version` are printed here, as clap prints them,
/// and give exit 1 when they could not be written (a full disk, a closed pipe), where clap
/// says nothing and exits 0.
fn parse_command_line() -> Result<Cli, ExitCode> {
    use std::io::Write as _;
    Cli::try_parse().map_err(|err| {
        let printed = err.print().and_then(|()| std::io::stdout().flush());
        match printed {
            Err(io) if !err.use_stderr() => {
                say!("shutter: error: cannot write to stdout: {io}");
                ExitCode::from(1)
            }
            _ => ExitCode::from(u8::try_from(err.exit_code()).unwrap_or(2)),
        }
    })
}

fn main() -> ExitCode {
    quiet_headless_vulkan();
    // A decoder that panics on a malformed file is caught, and the file fails with one error
    // line naming it: its panic message would only repeat that line, as a crash.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !shutter::source::in_guarded_decoder() {
            default_hook(info);
        }
    }));
    let cli = match parse_command_line() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    let code = match cli.command {
        Command::Devices => devices(),
        Command::Bench(a) => {
            let options = shutter::bench::BenchOptions::from_flags(
                &a.size,
                &a.ops,
                a.mode.as_deref(),
                &a.device,
                a.in_flight,
                a.frames,
            );
            match options.and_then(|o| shutter::bench::main(&o, a.json)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(err) => {
                    say!("shutter: error: {}", one_line(&err));
                    ExitCode::from(if err.is_usage() { 2 } else { 1 })
                }
            }
        }
        Command::Run(args) => match run(*args) {
            Ok(code) => code,
            Err(err) => {
                say!("shutter: error: {}", one_line(&err));
                ExitCode::from(if err.is_usage() { 2 } else { 1 })
            }
        },
    };
    stdout_failure(code)
}

fn devices() -> ExitCode {
    let adapters = GpuContext::adapters();
    if adapters.is_empty() {
        out!("no GPU adapters: `--device auto` uses the CPU backend");
    }
    for (i, a) in adapters.iter().enumerate() {
        let mark = match (i, a.is_software()) {
            (0, false) => " (auto)",
            (0, true) => " (--device gpu; auto runs on the CPU, faster than a software renderer)",
            _ => "",
        };
        out!(
            "gpu {i}: {} [{}, {}] {}{mark}",
            a.name,
            a.backend,
            a.device_type,
            a.driver
        );
    }
    match shutter::source::webcam::list_cameras() {
        Ok(cameras) if cameras.is_empty() => out!("no cameras"),
        Ok(cameras) => {
            for cam in cameras {
                out!("webcam:{}: {} ({})", cam.index, cam.name, cam.description);
                if let Some(err) = &cam.error {
                    out!("    formats unknown: {err}");
                }
                for mode in &cam.formats {
                    out!("    {mode}");
                }
            }
        }
        Err(err) => out!("cameras: {}", one_line(&err)),
    }
    ExitCode::SUCCESS
}

/// Messages from libraries sometimes span lines; a user reads one line per error.
fn one_line(err: &Error) -> String {
    printable(&err.to_string())
}

/// `text` on one line, safe for a terminal: runs of whitespace (a newline in a file name, a
/// multi-line message) become one space, and other control characters (an escape sequence in a
/// file name would recolour or clear the terminal) are shown escaped, as `\u{1b}`.
fn printable(text: &str) -> String {
    let mut line = String::with_capacity(text.len());
    for word in text.split_whitespace() {
        if !line.is_empty() {
            line.push(' ');
        }
        for c in word.chars() {
            if c.is_control() {
                line.extend(c.escape_unicode());
            } else {
                line.push(c);
            }
        }
    }
    line
}

fn run(args: RunArgs) -> Result<ExitCode, Error> {
    let device: DeviceChoice = args.device.parse()?;
    let mut filters = Vec::new();
    for list in &args.filter {
        filters.extend(Ops::parse_filters(list)?);
    }
    // `-o out.png` names one file; `-o out.png/`, an existing directory or any other name is a
    // directory.
    let out_text = args.out.as_os_str().to_string_lossy();
    let names_dir = out_text.ends_with('/') || out_text.ends_with(std::path::MAIN_SEPARATOR);
    let path_format = if names_dir || args.out.is_dir() {
        None
    } else {
        Format::from_path(&args.out, args.quality, args.lossless).transpose()?
    };
    // `-o clip.apng` is a file the user wants, not a directory to make.
    if path_format.is_none()
        && !names_dir
        && !args.out.is_dir()
        && let Some(ext) = args.out.extension().and_then(|e| e.to_str())
        && shutter::sink::encode::UNWRITTEN_EXTENSIONS.contains(&ext.to_ascii_lowercase().as_str())
    {
        return Err(Error::Usage(format!(
            "--out {}: shutter does not write {ext} files; it writes webp, png, jpeg, gif, bmp, \
             tiff and npy (a directory with this name needs a trailing /)",
            args.out.display()
        )));
    }
    let out_is_file = path_format.is_some();
    let format = match (&args.format, path_format) {
        (Some(name), Some(by_path)) => {
            let format = Format::from_name(name, args.quality, args.lossless)?;
            if format.extension() != by_path.extension() {
                return Err(Error::Usage(format!(
                    "--out {}: the name says {}, --format says {}; give a matching file name, \
                     or a directory",
                    args.out.display(),
                    by_path.extension(),
                    format.extension()
                )));
            }
            format
        }
        (Some(name), None) => Format::from_name(name, args.quality, args.lossless)?,
        (None, Some(by_path)) => by_path,
        (None, None) => Format::from_name("webp", args.quality, args.lossless)?,
    };
    let mode: ImageMode = match &args.mode {
        Some(name) => name.parse()?,
        None => ImageMode::Rgb,
    };
    let dither = mode.dither_for(args.dither.as_deref().map(str::parse).transpose()?)?;
    shutter::pipeline::check_in_flight("--in-flight", args.in_flight)?;
    shutter::pipeline::check_in_flight("--batch", args.batch)?;
    let in_flight_memory = args
        .in_flight_memory
        .as_deref()
        .map(|text| parse_size("--in-flight-memory", text))
        .transpose()?;
    if args.frames == Some(0) {
        return Err(Error::Usage("--frames: must be at least 1".into()));
    }
    let output = if out_is_file {
        Output::File(args.out.clone())
    } else {
        Output::Dir(args.out.clone())
    };
    let mut limits = DecodeLimits::default();
    if let Some(max) = args.max_pixels {
        if max == 0 {
            return Err(Error::Usage("--max-pixels: must be at least 1".into()));
        }
        limits.max_pixels = max;
    }
    let mut sources: Vec<Source> = if args.sources.is_empty() {
        vec![Source::builtin_default()]
    } else {
        // A path that is not UTF-8 is still a path (it cannot be `-`, a webcam or a pattern).
        args.sources
            .iter()
            .map(|arg| match arg.to_str() {
                Some(text) => Source::parse(text),
                None => Ok(Source::Path(arg.into())),
            })
            .collect::<Result<_, _>>()?
    };
    let webcam = sources.iter().any(|s| matches!(s, Source::Webcam { .. }));
    let live = sources.iter().any(Source::is_live);
    if !webcam {
        // The pattern takes its size and rate in its own argument (`pattern:WxH@FPS`).
        for (flag, given) in [
            ("--width", args.width.is_some()),
            ("--height", args.height.is_some()),
            ("--fps", args.fps.is_some()),
        ] {
            if given {
                return Err(Error::Usage(format!(
                    "{flag}: applies to a webcam source only (a pattern takes pattern:WxH@FPS)"
                )));
            }
        }
    }
    // `-o -` is not standard output: refuse it rather than write into a directory named `-`.
    if args.out.as_os_str() == "-" {
        return Err(Error::Usage(
            "--out -: shutter does not write to standard output; give a file or directory".into(),
        ));
    }
    for source in &mut sources {
        if let Source::Webcam {
            width, height, fps, ..
        } = source
        {
            (*width, *height, *fps) = (args.width, args.height, args.fps);
        }
    }
    let mirror = if args.no_mirror {
        false
    } else {
        args.mirror || webcam
    };
    let seconds = |flag: &str, v: Option<f64>| -> Result<Option<Duration>, Error> {
        v.map(|secs| {
            Duration::try_from_secs_f64(secs)
                .ok()
                .filter(|d| !d.is_zero())
                .ok_or_else(|| {
                    Error::Usage(format!(
                        "{flag}: {secs} is not a positive number of seconds a timer can hold"
                    ))
                })
        })
        .transpose()
    };
    let stream_every = seconds("--stream-every", args.stream_every)?
        .or(webcam.then_some(Duration::from_millis(500)));
    let time_limit = seconds("--time-limit", args.time_limit)?;
    // `--idle-timeout 0`: none, not even a webcam's default.
    let idle_timeout = match args.idle_timeout {
        Some(0.0) => None,
        given => seconds("--idle-timeout", given)?.or(webcam.then_some(Duration::from_secs(30))),
    };
    let policy: Option<FramePolicy> = args.policy.as_deref().map(str::parse).transpose()?;
    let stop = Arc::new(AtomicBool::new(false));
    let abort = Arc::new(AtomicBool::new(false));
    let interrupted = stop.clone();
    let aborted = abort.clone();
    let (on_signal, on_second) = (stop.clone(), abort.clone());
    // Without a handler Ctrl-C still ends the process, just not cleanly: not worth failing for.
    // The first Ctrl-C (or SIGTERM, or SIGHUP) stops the run cleanly. A second one, for a run
    // that waits on a source that sends nothing (a stalled camera, an open stdin), ends it
    // now, writing a GIF, WebP or npy with the frames it has; a third exits at once.
    let _ = ctrlc::set_handler(move || {
        if !on_signal.swap(true, Ordering::Relaxed) {
            say!("shutter: stopping (Ctrl-C again to end now)");
            return;
        }
        if on_second.swap(true, Ordering::Relaxed) {
            say!("shutter: interrupted a third time; exiting now");
            // A GIF, WebP or npy of a stream being written leaves no temp file behind.
            shutter::sink::encode::remove_temp_files();
            std::process::exit(130);
        }
        say!("shutter: interrupted again; ending now (once more to exit at once)");
    });

    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden());
    let events = bar.clone();
    let mut builder = Pipeline::builder();
    // For measuring on a machine where the binary cannot be rebuilt (a lent GPU machine:
    // `benches/device/decode_ahead.py`), as `SHUTTER_COPY_THREADS` is.
    if let Some(n) = std::env::var("SHUTTER_DECODE_THREADS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
    {
        builder = builder.decode_threads(n.clamp(1, 64));
    }
    builder = builder
        .sources(sources)
        .mirror(mirror)
        .filters(filters)
        .device(device)
        .in_flight(args.in_flight)
        .in_flight_bytes(in_flight_memory.unwrap_or(shutter::pipeline::DEFAULT_IN_FLIGHT_BYTES))
        .mode(mode)
        .dither(dither)
        .limits(limits)
        .icc_profiles(!args.no_icc)
        .batch(args.batch)
        .stop_flag(stop)
        .abort_flag(abort)
        .output(output, format)
        .on_event(move |event| match event {
            Event::Started { inputs, .. } => {
                if inputs > 1 && std::io::stderr().is_terminal() {
                    events.set_length(inputs as u64);
                    events.set_style(
                        ProgressStyle::with_template("{bar:40} {pos}/{len} inputs {elapsed}")
                            .unwrap_or_else(|_| ProgressStyle::default_bar()),
                    );
                    events.set_draw_target(ProgressDrawTarget::stderr());
                }
            }
            Event::CpuFallback { reason } => {
                events.suspend(|| say!("shutter: {}; running on the CPU", one_line(reason)))
            }
            Event::InputDone { error, .. } => {
                if let Some(err) = error {
                    events.suspend(|| say!("shutter: error: {}", one_line(err)));
                }
                events.inc(1);
            }
        });
    if let Some(d) = stream_every {
        builder = builder.stream_every(d);
    }
    if let Some(d) = time_limit {
        builder = builder.time_limit(d);
    }
    if let Some(d) = idle_timeout {
        builder = builder.idle_timeout(d);
    }
    if let Some(n) = args.frames {
        builder = builder.max_frames(n);
    }
    if let Some(p) = policy {
        builder = builder.policy(p);
    }
    let stats = match builder.build().and_then(Pipeline::run) {
        Ok(stats) => stats,
        // A source that cannot start (no camera): `--json` still gets its object, with the
        // failure, as for a file that fails. A usage error gets none, as before any work.
        Err(err) if args.json && !err.is_usage() => {
            bar.finish_and_clear();
            let failed = shutter::Stats {
                inputs: 1,
                failures: vec![err],
                ..Default::default()
            };
            out!("{}", stats_json(&failed));
            return Err(failed.failures.into_iter().next().expect("the failure"));
        }
        Err(err) => return Err(err),
    };
    bar.finish_and_clear();
    if args.json {
        out!("{}", stats_json(&stats));
    }

    let failed = stats.failures.len();
    let backend = stats
        .backend
        .as_ref()
        .map_or_else(String::new, |b| format!(", {b}"));
    let interrupted = interrupted.load(Ordering::Relaxed);
    let not_reached = match (stats.not_reached, interrupted) {
        (0, _) => String::new(),
        (n, true) => format!(", {n} not reached (interrupted)"),
        (n, false) if stats.source_idle => format!(", {n} not reached (--idle-timeout)"),
        (n, false) => format!(", {n} not reached (--frames or --time-limit)"),
    };
    // The file written when there is one (`-o dir/` for one image, `-o one.png` for one
    // frame of a stream, which is `one_00000.png`); `-o one.png` for several frames writes
    // numbered files beside it, named as a range (by name: encoders finish in any order).
    let first = stats.written.iter().min();
    let last = stats.written.iter().max();
    let destination = match (first, last) {
        (Some(first), Some(last)) if first == last => first.display().to_string(),
        (Some(first), Some(last)) if out_is_file => {
            format!("{} … {}", first.display(), last.display())
        }
        _ => args.out.display().to_string(),
    };
    say!(
        "shutter: {} input{}, {} frame{}, {} failed{not_reached}, {} file{} written to {} in {:.2} s ({:.1} fps{backend})",
        stats.inputs,
        plural(stats.inputs as u64),
        stats.frames,
        plural(stats.frames),
        failed,
        stats.written.len(),
        plural(stats.written.len() as u64),
        printable(&destination),
        stats.elapsed.as_secs_f64(),
        stats.fps(),
    );
    if live || stats.drops.total() > 0 {
        let lat = stats.latency.map_or_else(String::new, |l| {
            format!(
                "; latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
                l.p50.as_secs_f64() * 1e3,
                l.p99.as_secs_f64() * 1e3,
                l.max.as_secs_f64() * 1e3
            )
        });
        let after_stop = match stats.drops.after_stop {
            0 => String::new(),
            n => format!(", {n} after the stop"),
        };
        let failed_frames = match stats.failed_frames {
            0 => String::new(),
            n => format!(", {n} failed"),
        };
        say!(
            "shutter: {} captured, {} processed, {} delivered{failed_frames}; dropped {} before processing, {} before the sink, {} by --stream-every{after_stop}{lat}",
            stats.captured,
            stats.frames,
            stats.delivered,
            stats.drops.before_gpu,
            stats.drops.before_sink,
            stats.drops.by_interval,
        );
    }
    if stats.alpha_dropped > 0 && args.mode.is_none() {
        let n = stats.alpha_dropped;
        say!(
            "shutter: note: {n} input{} had transparency, which the default --mode RGB drops (as Gradio's default image_mode does); --mode RGBA keeps it",
            plural(n as u64)
        );
    }
    if stats.source_idle
        && let Some(timeout) = idle_timeout
    {
        say!(
            "shutter: error: the source sent no frame for {} s (--idle-timeout): its stream was ended with what it had delivered",
            timeout.as_secs_f64()
        );
    }
    Ok(if failed > 0 || stats.source_idle {
        ExitCode::from(1)
    } else if aborted.load(Ordering::Relaxed) {
        // Ended by a second Ctrl-C, not cleanly.
        ExitCode::from(130)
    } else if interrupted && stats.not_reached > 0 {
        // A batch cut short by Ctrl-C: not every input was written (128 + SIGINT).
        ExitCode::from(130)
    } else {
        ExitCode::SUCCESS
    })
}

/// The bytes `text` names: a number, with K, M, G or T for powers of 1024 (`512M`, `1.5G`; a
/// `B` or `iB` after them is allowed), at least one byte.
fn parse_size(flag: &str, text: &str) -> Result<u64, Error> {
    let bad = || {
        Error::Usage(format!(
            "{flag}: expected a size such as 512M or 4G, got {text:?}"
        ))
    };
    let lower = text.trim().to_ascii_lowercase();
    let number = lower
        .strip_suffix("ib")
        .or_else(|| lower.strip_suffix('b'))
        .unwrap_or(&lower);
    let (number, scale) = match number.char_indices().last() {
        Some((at, unit @ ('k' | 'm' | 'g' | 't'))) => {
            let power = match unit {
                'k' => 1,
                'm' => 2,
                'g' => 3,
                _ => 4,
            };
            (&number[..at], 1024f64.powi(power))
        }
        _ => (number, 1.0),
    };
    let value = number.trim().parse::<f64>().map_err(|_| bad())? * scale;
    if !value.is_finite() || value > u64::MAX as f64 {
        return Err(bad());
    }
    if value < 1.0 {
        return Err(Error::Usage(format!(
            "{flag}: must be at least 1 byte, got {text:?}"
        )));
    }
    Ok(value as u64)
}

/// The run's statistics as one JSON object (hand-written: a handful of numbers and strings).
fn stats_json(stats: &shutter::Stats) -> String {
    let text = shutter::bench::json_str;
    let ms = |d: Duration| format!("{:.3}", d.as_secs_f64() * 1e3);
    let latency = stats.latency.map_or_else(
        || "null".to_string(),
        |l| {
            format!(
                "{{\"p50_ms\":{},\"p99_ms\":{},\"max_ms\":{},\"count\":{}}}",
                ms(l.p50),
                ms(l.p99),
                ms(l.max),
                l.count
            )
        },
    );
    let failures: Vec<String> = stats
        .failures
        .iter()
        .map(|e| text(&e.to_string()))
        .collect();
    let written: Vec<String> = stats
        .written
        .iter()
        .map(|p| text(&p.display().to_string()))
        .collect();
    format!(
        "{{\"inputs\":{},\"captured\":{},\"processed\":{},\"delivered\":{},\"failed_frames\":{},\"dropped\":{{\"before_gpu\":{},\"before_sink\":{},\"by_interval\":{},\"after_stop\":{},\"total\":{}}},\"written\":[{}],\"failures\":[{}],\"not_reached\":{},\"alpha_dropped\":{},\"in_flight_peak_bytes\":{},\"source_idle\":{},\"elapsed_s\":{:.6},\"fps\":{:.3},\"latency\":{},\"backend\":{}}}",
        stats.inputs,
        stats.captured,
        stats.frames,
        stats.delivered,
        stats.failed_frames,
        stats.drops.before_gpu,
        stats.drops.before_sink,
        stats.drops.by_interval,
        stats.drops.after_stop,
        stats.drops.total(),
        written.join(","),
        failures.join(","),
        stats.not_reached,
        stats.alpha_dropped,
        stats.in_flight_peak_bytes,
        stats.source_idle,
        stats.elapsed.as_secs_f64(),
        stats.fps(),
        latency,
        stats
            .backend
            .as_ref()
            .map_or_else(|| "null".to_string(), |b| text(&b.to_string())),
    )
}

/// A count given to a flag: a whole number (`-1` reaches here, rather than being taken for a
/// flag, so that the message says what is wrong with it). Every count flag needs 1 or more,
/// as the message says; a 0 is refused after parsing, in one line naming the flag, with the
/// other usage errors.
fn whole<T: std::str::FromStr>(text: &str) -> Result<T, String> {
    text.trim()
        .parse()
        .map_err(|_| "expected a whole number of 1 or more".to_string())
}

fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    /// K, M, G and T are powers of 1024, with or without `B`/`iB`, in any case.
    #[test]
    fn sizes_scale_by_powers_of_1024() {
        let size = |text: &str| parse_size("--in-flight-memory", text).expect(text);
        assert_eq!(size("100"), 100);
        assert_eq!(size("2k"), 2 * 1024);
        assert_eq!(size("512M"), 512 * 1024 * 1024);
        assert_eq!(size("4G"), 4 * 1024 * 1024 * 1024);
        assert_eq!(size("1.5GiB"), 3 * 512 * 1024 * 1024);
        assert_eq!(size("2tb"), 2 * 1024u64.pow(4));
    }
}

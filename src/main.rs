//! The `shutter` command line: parses flags into a [`shutter::Pipeline`], runs it, and maps the
//! outcome to an exit code (0 all good, 1 some input or the run failed, 2 usage error).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use shutter::gpu::GpuContext;
use shutter::pipeline::{Event, Output};
use shutter::{DecodeLimits, DeviceChoice, Error, Format, ImageMode, Ops, Pipeline, Source};

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
    /// List the GPU adapters, marking the one `--device auto` picks.
    Devices,
}

#[derive(Args)]
struct RunArgs {
    /// Image files, directories (their images, by name) or `-` for stdin. None: a built-in image.
    #[arg(value_name = "SOURCE")]
    sources: Vec<String>,
    /// Output directory (created), or one output file whose extension picks the format.
    #[arg(short, long, value_name = "PATH", default_value = "out")]
    out: PathBuf,
    /// Output format: webp (default), png, jpeg, gif, bmp, tiff, npy.
    #[arg(long, value_name = "FMT")]
    format: Option<String>,
    /// Encoder quality: webp 0–100 (default 80), jpeg 1–100 (default 75).
    #[arg(long, value_name = "Q")]
    quality: Option<f32>,
    /// Lossless webp.
    #[arg(long)]
    lossless: bool,
    /// Mirror frames horizontally (before filters).
    #[arg(long)]
    mirror: bool,
    /// Filters, applied in order: sepia, sepia-norm, grayscale, invert (comma-separated or repeated).
    #[arg(long, value_name = "NAME[,NAME...]")]
    filter: Vec<String>,
    /// Pillow image mode of the output: 1, L, P, RGB (default), RGBA, CMYK, YCbCr, LAB, HSV, I, F.
    #[arg(long, value_name = "MODE")]
    mode: Option<String>,
    /// Dithering for modes 1 and P: fs (Floyd–Steinberg, default) or none.
    #[arg(long, value_name = "fs|none")]
    dither: Option<String>,
    /// Where the ops run: auto (a GPU if any, else the CPU), gpu, cpu.
    #[arg(long, value_name = "DEVICE", default_value = "auto")]
    device: String,
    /// Frames on the GPU at once.
    #[arg(long, value_name = "N", default_value_t = 3)]
    in_flight: usize,
    /// Largest image accepted, in pixels (width × height); larger inputs fail with an error.
    #[arg(long, value_name = "N")]
    max_pixels: Option<u64>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Devices => devices(),
        Command::Run(args) => match run(*args) {
            Ok(code) => code,
            Err(err) => {
                eprintln!("shutter: error: {}", one_line(&err));
                ExitCode::from(if err.is_usage() { 2 } else { 1 })
            }
        },
    }
}

fn devices() -> ExitCode {
    let adapters = GpuContext::adapters();
    if adapters.is_empty() {
        println!("no GPU adapters: `--device auto` uses the CPU backend");
    }
    for (i, a) in adapters.iter().enumerate() {
        let mark = if i == 0 { " (auto)" } else { "" };
        println!(
            "gpu {i}: {} [{}, {}] {}{mark}",
            a.name, a.backend, a.device_type, a.driver
        );
    }
    ExitCode::SUCCESS
}

/// Messages from libraries sometimes span lines; a user reads one line per error.
fn one_line(err: &Error) -> String {
    err.to_string()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

fn run(args: RunArgs) -> Result<ExitCode, Error> {
    let device: DeviceChoice = args.device.parse()?;
    let mut filters = Vec::new();
    for list in &args.filter {
        filters.extend(Ops::parse_filters(list)?);
    }
    let out_is_file =
        !args.out.is_dir() && Format::from_path(&args.out, args.quality, args.lossless).is_some();
    let format = match (&args.format, out_is_file) {
        (Some(name), _) => Format::from_name(name, args.quality, args.lossless)?,
        (None, true) => Format::from_path(&args.out, args.quality, args.lossless)
            .unwrap_or_else(|| Format::from_name("webp", args.quality, args.lossless))?,
        (None, false) => Format::from_name("webp", args.quality, args.lossless)?,
    };
    let mode: ImageMode = match &args.mode {
        Some(name) => name.parse()?,
        None => ImageMode::Rgb,
    };
    let dither = mode.dither_for(args.dither.as_deref().map(str::parse).transpose()?)?;
    if args.in_flight == 0 {
        return Err(Error::Usage("--in-flight: must be at least 1".into()));
    }
    let output = if out_is_file {
        Output::File(args.out.clone())
    } else {
        Output::Dir(args.out.clone())
    };
    let mut limits = DecodeLimits::default();
    if let Some(max) = args.max_pixels {
        limits.max_pixels = max;
    }
    let sources: Vec<Source> = if args.sources.is_empty() {
        vec![Source::builtin_default()]
    } else {
        args.sources.iter().map(|s| Source::parse(s)).collect()
    };

    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden());
    let events = bar.clone();
    let stats = Pipeline::builder()
        .sources(sources)
        .mirror(args.mirror)
        .filters(filters)
        .device(device)
        .in_flight(args.in_flight)
        .mode(mode)
        .dither(dither)
        .limits(limits)
        .output(output, format)
        .on_event(move |event| match event {
            Event::Started { inputs } => {
                if inputs > 1 && std::io::stderr().is_terminal() {
                    events.set_length(inputs as u64);
                    events.set_style(
                        ProgressStyle::with_template("{bar:40} {pos}/{len} inputs {elapsed}")
                            .unwrap_or_else(|_| ProgressStyle::default_bar()),
                    );
                    events.set_draw_target(ProgressDrawTarget::stderr());
                }
            }
            Event::CpuFallback { reason } => events.suspend(|| {
                eprintln!(
                    "shutter: no GPU adapter ({}); running on the CPU",
                    one_line(reason)
                )
            }),
            Event::InputDone { error, .. } => {
                if let Some(err) = error {
                    events.suspend(|| eprintln!("shutter: error: {}", one_line(err)));
                }
                events.inc(1);
            }
        })
        .build()?
        .run()?;
    bar.finish_and_clear();

    let failed = stats.failures.len();
    let backend = stats
        .backend
        .as_ref()
        .map_or_else(String::new, |b| format!(", {b}"));
    eprintln!(
        "shutter: {} input{}, {} frame{}, {} failed, {} file{} written to {} in {:.2} s ({:.1} fps{backend})",
        stats.inputs,
        plural(stats.inputs as u64),
        stats.frames,
        plural(stats.frames),
        failed,
        stats.written.len(),
        plural(stats.written.len() as u64),
        args.out.display(),
        stats.elapsed.as_secs_f64(),
        stats.fps(),
    );
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

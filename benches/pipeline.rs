//! Criterion benches for the whole pipeline: synthetic RGBA frames from a closure source,
//! mirror + sepia, mode RGB, to a callback sink, on the CPU and GPU backends. Each iteration
//! is one run of [`FRAMES_PER_RUN`] frames; the time reported is per frame (thread start-up
//! and warm-up included, as a user's run has them). Under `cargo test` it runs once on 64×48
//! frames.

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use shutter::bench::{DISTINCT_FRAMES, synthetic_frames};
use shutter::source::live::FuncGrabber;
use shutter::{DeviceChoice, Filter, Frame, ImageMode, Pipeline, Source};

/// Frames per pipeline run.
const FRAMES_PER_RUN: u64 = 24;

fn benchmarking() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// One pipeline run of `FRAMES_PER_RUN` frames; returns its wall time.
fn run_once(device: DeviceChoice, w: u32, h: u32, inputs: &[Vec<u8>]) -> Duration {
    let frames = inputs.to_vec();
    let mut k = 0;
    let grabber = FuncGrabber::from_fn(move || {
        let rgba = frames[k % frames.len()].clone();
        k += 1;
        Some(Ok((w, h, rgba)))
    });
    let start = Instant::now();
    let stats = Pipeline::builder()
        .source(Source::grabber(grabber))
        .mirror(true)
        .filter(Filter::Sepia)
        .mode(ImageMode::Rgb)
        .device(device)
        .max_frames(FRAMES_PER_RUN)
        .on_frame(|frame: &Frame| {
            std::hint::black_box(frame.width);
            Ok(())
        })
        .build()
        .expect("pipeline settings")
        .run()
        .expect("pipeline run");
    assert_eq!(stats.frames, FRAMES_PER_RUN);
    start.elapsed()
}

fn bench_pipeline(c: &mut Criterion) {
    let (name, w, h) = if benchmarking() {
        ("1080p", 1920, 1080)
    } else {
        ("64x48", 64, 48)
    };
    let inputs = synthetic_frames(w, h, DISTINCT_FRAMES);
    let mut group = c.benchmark_group(format!("pipeline mirror+sepia {name} to callback"));
    group.throughput(Throughput::Elements(1));
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(5));
    let mut devices = vec![("cpu", DeviceChoice::Cpu)];
    match shutter::gpu::GpuContext::new() {
        Ok(_) => devices.push(("gpu", DeviceChoice::Gpu)),
        Err(err) => eprintln!("no GPU adapter, GPU pipeline bench skipped: {err}"),
    }
    for (label, device) in devices {
        group.bench_function(label, |b| {
            b.iter_custom(|iters| {
                let runs = iters.div_ceil(FRAMES_PER_RUN).max(1);
                let total: Duration = (0..runs).map(|_| run_once(device, w, h, &inputs)).sum();
                total * iters as u32 / (runs * FRAMES_PER_RUN) as u32
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_pipeline);
criterion_main!(benches);

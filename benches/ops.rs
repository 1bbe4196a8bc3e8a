//! Criterion benches for the kernels: the CPU reference, the CPU fast path and the GPU round
//! trip (upload, fused pass, readback; 1 and 3 frames in flight, and with no host copy), mirror
//! and sepia on RGBA frames at 720p, 1080p and 4K; and the CPU fast path with a mode (L, RGB,
//! HSV, LAB); and mode `1`'s Floyd–Steinberg dithering after the GPU pass, on the CPU and in
//! GPU wavefronts. `cargo bench --bench ops`; under `cargo test` every bench runs once, on 64×48
//! frames, so that the suite stays quick.

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use shutter::backend::Processor;
use shutter::bench::{DISTINCT_FRAMES, rgb_frames, synthetic_frames};
use shutter::frame::{Frame, FrameMeta};
use shutter::gpu::{GpuContext, Upload};
use shutter::mode::cpu::apply_and_convert;
use shutter::mode::{Dither, ImageMode};
use shutter::ops::{Filter, Ops, cpu, fast};

/// True under `cargo bench` (criterion gets `--bench`), false under `cargo test`.
fn benchmarking() -> bool {
    std::env::args().any(|a| a == "--bench")
}

fn sizes() -> Vec<(&'static str, u32, u32)> {
    if benchmarking() {
        vec![
            ("720p", 1280, 720),
            ("1080p", 1920, 1080),
            ("4K", 3840, 2160),
        ]
    } else {
        vec![("64x48", 64, 48)]
    }
}

/// Times `iters` in-place runs of `apply`, each on a fresh copy of the next input (the copy
/// is not timed).
fn in_place(
    iters: u64,
    inputs: &[Vec<u8>],
    work: &mut [u8],
    mut apply: impl FnMut(&mut [u8]),
) -> Duration {
    let mut total = Duration::ZERO;
    for i in 0..iters as usize {
        work.copy_from_slice(&inputs[i % inputs.len()]);
        let start = Instant::now();
        apply(work);
        total += start.elapsed();
    }
    total
}

/// Times `iters` frames through `processor` with its ring kept full; returned frames are
/// scheduled again.
fn ring(iters: u64, processor: &mut Processor, inputs: &[Vec<u8>], w: u32, h: u32) -> Duration {
    let mut spare: Vec<Frame> = (0..processor.capacity())
        .map(|k| {
            let px = inputs[k % inputs.len()].clone();
            Frame::new(w, h, px, false, FrameMeta::still(k as u64, 0))
        })
        .collect();
    let start = Instant::now();
    let mut done = 0;
    while done < iters {
        while processor.pending() < processor.capacity() {
            let Some(frame) = spare.pop() else { break };
            processor.schedule(frame).expect("schedule");
        }
        if let Some(frame) = processor.collect(true).expect("collect") {
            done += 1;
            spare.push(frame);
        }
    }
    while processor.pending() > 0 {
        processor.collect(true).expect("drain");
    }
    start.elapsed()
}

/// As [`ring`], with no host copy: each slot's upload buffer is written once (the first frame
/// in each), then frames go up and come back without a copy (`schedule_with` writing nothing,
/// `collect_with` reading in place), as a PyTorch user's frames stay in pinned memory. With
/// `rgb`, `inputs` are RGB frames uploaded at 3 bytes a pixel (`schedule_rgb_with`).
fn ring_in_place(
    iters: u64,
    processor: &mut Processor,
    inputs: &[Vec<u8>],
    (w, h): (u32, u32),
    rgb: bool,
) -> Duration {
    let slots = processor.capacity();
    let mut scheduled = 0usize;
    let start = Instant::now();
    let mut done = 0;
    while done < iters {
        while processor.pending() < processor.capacity() {
            let meta = FrameMeta::still(scheduled as u64, 0);
            let first = scheduled < slots;
            let input = &inputs[scheduled % inputs.len()];
            let fill = |mut dst: wgpu::WriteOnly<'_, [u8]>| {
                if first {
                    dst.copy_from_slice(input);
                }
            };
            let scheduled_ok = if rgb {
                processor.schedule_rgb_with(w, h, meta, fill)
            } else {
                processor.schedule_with(w, h, false, meta, fill)
            };
            scheduled_ok.expect("schedule_with");
            scheduled += 1;
        }
        if processor
            .collect_with(true, |f| f.bytes.len())
            .expect("collect_with")
            .is_some()
        {
            done += 1;
        }
    }
    while processor.pending() > 0 {
        processor.collect_with(true, |_| ()).expect("drain");
    }
    start.elapsed()
}

/// The CPU fast path's ops + mode conversion in one pass, for the modes whose conversion costs
/// the most (and L, the cheapest), at each size.
fn bench_modes(c: &mut Criterion) {
    for (name, w, h) in sizes() {
        let inputs = synthetic_frames(w, h, DISTINCT_FRAMES);
        let mut group = c.benchmark_group(format!("mirror+sepia + mode, CPU fast path {name}"));
        group.throughput(Throughput::Elements(1));
        group.sample_size(10);
        group.warm_up_time(Duration::from_millis(500));
        group.measurement_time(Duration::from_secs(2));
        for mode in [ImageMode::L, ImageMode::Rgb, ImageMode::Hsv, ImageMode::Lab] {
            let mut ops = Ops::new(true, vec![Filter::Sepia]);
            ops.mode = Some(mode);
            group.bench_function(mode.to_string(), |b| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for i in 0..iters as usize {
                        let px = inputs[i % inputs.len()].clone();
                        let mut frame = Frame::new(w, h, px, false, FrameMeta::still(0, 0));
                        let start = Instant::now();
                        let image = apply_and_convert(&ops, mode, Dither::None, &mut frame);
                        total += start.elapsed();
                        std::hint::black_box(image);
                    }
                    total
                })
            });
        }
        group.finish();
    }
}

fn bench_kernels(c: &mut Criterion) {
    let ops = Ops::new(true, vec![Filter::Sepia]);
    let gpu = GpuContext::new()
        .map_err(|err| eprintln!("no GPU adapter, GPU benches skipped: {err}"))
        .ok();
    for (name, w, h) in sizes() {
        let inputs = synthetic_frames(w, h, DISTINCT_FRAMES);
        let mut work = inputs[0].clone();
        let mut group = c.benchmark_group(format!("mirror+sepia {name}"));
        group.throughput(Throughput::Elements(1));
        group.sample_size(10);
        group.warm_up_time(Duration::from_millis(500));
        group.measurement_time(Duration::from_secs(2));

        if name == "1080p" || !benchmarking() {
            group.bench_function("cpu reference", |b| {
                b.iter_custom(|iters| {
                    in_place(iters, &inputs, &mut work, |px| cpu::apply(&ops, w, h, px))
                })
            });
        }
        group.bench_function("cpu fast", |b| {
            b.iter_custom(|iters| {
                in_place(iters, &inputs, &mut work, |px| fast::apply(&ops, w, h, px))
            })
        });
        if let Some(ctx) = &gpu {
            // The ring's mapped upload buffers (the default) and wgpu's write_buffer.
            for (upload, note) in [
                (Upload::Staging, ""),
                (Upload::WriteBuffer, ", write_buffer"),
            ] {
                for in_flight in [1usize, 3] {
                    let mut processor =
                        Processor::new(Some(ctx.clone()), &ops, in_flight).expect("gpu processor");
                    if let Some(gpu) = processor.gpu() {
                        gpu.set_upload(upload);
                    }
                    let label = format!("gpu round trip, {in_flight} in flight{note}");
                    group.bench_function(label, |b| {
                        b.iter_custom(|iters| ring(iters, &mut processor, &inputs, w, h))
                    });
                }
            }
            let mut processor = Processor::new(Some(ctx.clone()), &ops, 3).expect("gpu processor");
            group.bench_function("gpu round trip, 3 in flight, no host copy", |b| {
                b.iter_custom(|iters| ring_in_place(iters, &mut processor, &inputs, (w, h), false))
            });
            let rgb = rgb_frames(&inputs);
            let mut processor = Processor::new(Some(ctx.clone()), &ops, 3).expect("gpu processor");
            group.bench_function("gpu round trip, 3 in flight, no host copy, RGB up", |b| {
                b.iter_custom(|iters| ring_in_place(iters, &mut processor, &rgb, (w, h), true))
            });
        }
        group.finish();
    }
}

/// The measurement behind `DITHER_ON_GPU_BY_DEFAULT` in `src/gpu/ring.rs`: mode `1` with
/// Floyd–Steinberg after mirror + sepia, on the CPU after the GPU pass (RGBA read back) and in
/// GPU wavefronts (1 byte a pixel read back), beside the GPU pass with no mode. On lavapipe (a
/// CPU rasteriser) the figures say nothing about a real GPU.
fn bench_dither(c: &mut Criterion) {
    let Ok(ctx) = GpuContext::new() else {
        return;
    };
    let no_mode = Ops::new(true, vec![Filter::Sepia]);
    let mut one = no_mode.clone();
    one.mode = Some(ImageMode::One);
    one.dither = Dither::FloydSteinberg;
    let sizes = if benchmarking() {
        vec![("1080p", 1920, 1080), ("4K", 3840, 2160)]
    } else {
        sizes()
    };
    for (name, w, h) in sizes {
        let inputs = synthetic_frames(w, h, DISTINCT_FRAMES);
        let mut group = c.benchmark_group(format!("mirror+sepia + mode 1 dithered, GPU {name}"));
        group.throughput(Throughput::Elements(1));
        group.sample_size(10);
        group.warm_up_time(Duration::from_millis(500));
        group.measurement_time(Duration::from_secs(2));
        for (label, ops, on_gpu) in [
            ("gpu pass alone, no mode", &no_mode, false),
            ("cpu dither after gpu pass", &one, false),
            ("gpu wavefronts", &one, true),
        ] {
            let mut processor = Processor::new(Some(ctx.clone()), ops, 3).expect("gpu processor");
            if let Some(gpu) = processor.gpu() {
                gpu.set_dither_on_gpu(on_gpu);
            }
            group.bench_function(label, |b| {
                b.iter_custom(|iters| ring(iters, &mut processor, &inputs, w, h))
            });
        }
        group.finish();
    }
}

criterion_group!(benches, bench_kernels, bench_modes, bench_dither);
criterion_main!(benches);

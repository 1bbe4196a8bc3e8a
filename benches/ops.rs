//! Criterion benches for the kernels: the CPU reference, the CPU fast path and the GPU round
//! trip (upload, fused pass, readback; 1 and 3 frames in flight), mirror + sepia on RGBA
//! frames at 720p, 1080p and 4K. `cargo bench --bench ops`; under `cargo test` every bench
//! runs once, on 64×48 frames, so that the suite stays quick.

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use shutter::backend::Processor;
use shutter::bench::{DISTINCT_FRAMES, synthetic_frames};
use shutter::frame::{Frame, FrameMeta};
use shutter::gpu::{GpuContext, Upload};
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
                    if let Processor::Gpu { gpu, .. } = &mut processor {
                        gpu.set_upload(upload);
                    }
                    let label = format!("gpu round trip, {in_flight} in flight{note}");
                    group.bench_function(label, |b| {
                        b.iter_custom(|iters| ring(iters, &mut processor, &inputs, w, h))
                    });
                }
            }
        }
        group.finish();
    }
}

criterion_group!(benches, bench_kernels);
criterion_main!(benches);

//! Criterion benches for the ops: CPU reference vs GPU round trip (upload, fused pass,
//! readback) on 1080p RGBA frames. `cargo bench --bench ops`; in `cargo test` they run once.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use shutter::backend::Processor;
use shutter::frame::{Frame, FrameMeta};
use shutter::gpu::GpuContext;
use shutter::ops::{Filter, Ops};

const W: u32 = 1920;
const H: u32 = 1080;

/// Distinct non-zero frames, rotated so caches don't flatter.
fn frames(n: usize) -> Vec<Frame> {
    (0..n)
        .map(|k| {
            let rgba = (0..W as usize * H as usize * 4)
                .map(|i| (i.wrapping_mul(2654435761).wrapping_add(k * 97) >> 7) as u8)
                .collect();
            Frame::new(W, H, rgba, false, FrameMeta::still(k as u64, 0))
        })
        .collect()
}

fn bench_ops(c: &mut Criterion) {
    let ops = Ops {
        mirror: true,
        filters: vec![Filter::Sepia],
        ..Default::default()
    };
    let inputs = frames(3);
    let mut group = c.benchmark_group("mirror+sepia 1080p");
    group.throughput(Throughput::Elements(1));
    group.sample_size(10);

    let mut cpu = Processor::new(None, &ops, 1).expect("cpu");
    let mut k = 0;
    group.bench_function("cpu", |b| {
        b.iter(|| {
            k = (k + 1) % inputs.len();
            cpu.process(inputs[k].clone()).expect("cpu process")
        })
    });

    match GpuContext::new() {
        Ok(ctx) => {
            for in_flight in [1usize, 3] {
                let mut gpu = Processor::new(Some(ctx.clone()), &ops, in_flight).expect("gpu");
                group.bench_function(format!("gpu in-flight {in_flight}"), |b| {
                    b.iter(|| {
                        k = (k + 1) % inputs.len();
                        if gpu.pending() >= gpu.capacity() {
                            gpu.collect(true).expect("collect");
                        }
                        gpu.schedule(inputs[k].clone()).expect("schedule");
                    });
                    while gpu.pending() > 0 {
                        gpu.collect(true).expect("drain");
                    }
                });
            }
        }
        Err(err) => eprintln!("no GPU adapter, GPU benches skipped: {err}"),
    }
    group.finish();
}

criterion_group!(benches, bench_ops);
criterion_main!(benches);

//! Unit tests of the GPU backend's internals that integration tests cannot reach: banding of
//! frames over the storage-binding limit, buffer reuse, and the backend's thread-safety.

use std::sync::Arc;

use super::{GpuBackend, GpuContext};
use crate::frame::{Frame, FrameMeta};
use crate::ops::{Filter, Ops, cpu};

fn gpu_or_skip(test: &str) -> Option<Arc<GpuContext>> {
    match GpuContext::new() {
        Ok(ctx) => Some(ctx),
        Err(err) if std::env::var("SHUTTER_REQUIRE_GPU").is_ok_and(|v| v == "1") => {
            panic!("{test}: SHUTTER_REQUIRE_GPU=1 but no GPU adapter: {err}")
        }
        Err(err) => {
            eprintln!("{test}: skipped, no GPU adapter: {err}");
            None
        }
    }
}

/// Pixels that vary in every channel: i × 37 + channel × 101, wrapped to a byte.
fn pattern(width: u32, height: u32) -> Vec<u8> {
    (0..width as usize * height as usize * 4)
        .map(|i| ((i / 4) * 37 + (i % 4) * 101) as u8)
        .collect()
}

fn frame(width: u32, height: u32, seq: u64) -> Frame {
    Frame::new(
        width,
        height,
        pattern(width, height),
        true,
        FrameMeta::still(seq, 0),
    )
}

#[test]
fn gpu_backend_can_move_to_another_thread() {
    fn assert_send<T: Send>() {}
    assert_send::<GpuBackend>();
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<GpuContext>();
}

#[test]
fn frames_over_the_binding_limit_are_processed_in_bands_and_match_cpu() {
    let Some(ctx) = gpu_or_skip("frames_over_the_binding_limit") else {
        return;
    };
    let ops = Ops {
        mirror: true,
        filters: vec![Filter::Sepia, Filter::SepiaNorm, Filter::Invert],
        ..Default::default()
    };
    // 1366 × 4 bytes a row, 8 KiB bindings: bands of 32 rows (aligned offsets), 100 rows in all.
    let mut gpu = GpuBackend::with_limits(ctx, &ops, 2, Some(32 * 1366 * 4 + 100)).unwrap();
    let input = frame(1366, 100, 0);
    let mut want = input.rgba.clone();
    cpu::apply(&ops, 1366, 100, &mut want);
    gpu.schedule(input).unwrap();
    let got = gpu.collect(true).unwrap().expect("one frame was scheduled");
    assert!(got.rgba == want, "banded GPU output differs from the CPU");
}

#[test]
fn a_steady_stream_of_one_size_allocates_once_per_slot() {
    let Some(ctx) = gpu_or_skip("a_steady_stream_of_one_size") else {
        return;
    };
    let ops = Ops {
        mirror: false,
        filters: vec![Filter::Invert],
        ..Default::default()
    };
    let mut gpu = GpuBackend::new(ctx, &ops, 2).unwrap();
    for seq in 0..6 {
        gpu.schedule(frame(64, 48, seq)).unwrap();
        if gpu.pending() == gpu.capacity() {
            gpu.collect(true).unwrap().expect("a frame is pending");
        }
    }
    while gpu.collect(true).unwrap().is_some() {}
    assert_eq!(gpu.buffer_allocations(), 2);
    // A smaller frame reuses the buffers; a larger one grows its slot only.
    gpu.schedule(frame(10, 10, 6)).unwrap();
    gpu.collect(true).unwrap().expect("scheduled");
    assert_eq!(gpu.buffer_allocations(), 2);
    gpu.schedule(frame(100, 100, 7)).unwrap();
    gpu.collect(true).unwrap().expect("scheduled");
    assert_eq!(gpu.buffer_allocations(), 3);
}

//! Unit tests of the GPU backend's internals that integration tests cannot reach: banding of
//! frames over the storage-binding limit, buffer reuse, and the backend's thread-safety.

use std::sync::Arc;

use super::{GpuBackend, GpuContext};
use crate::frame::{Frame, FrameMeta};
use crate::mode::{Dither, ImageMode};
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
    // Invert before sepia-norm: rows read past a band's end (zeros where reads are bounded)
    // would turn white and raise the maximum, which no pixel of `pattern` reaches.
    let ops = Ops {
        mirror: true,
        filters: vec![Filter::Invert, Filter::SepiaNorm, Filter::Sepia],
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
fn packed_modes_over_the_binding_limit_are_converted_in_bands_and_match_cpu() {
    let Some(ctx) = gpu_or_skip("packed_modes_over_the_binding_limit") else {
        return;
    };
    // 1366 × 4 bytes a row and 800 KiB bindings: bands of 128 rows (the multiple that keeps
    // the 1- and 3-byte outputs aligned too), so 301 rows are bands of 128, 128 and 45; the
    // frame's 411,166 pixels end in a partial 4-pixel quad.
    for mode in [ImageMode::L, ImageMode::Lab, ImageMode::F, ImageMode::Cmyk] {
        let ops = Ops {
            mirror: true,
            filters: vec![Filter::SepiaNorm],
            mode: Some(mode),
            dither: Dither::None,
        };
        let mut gpu = GpuBackend::with_limits(Arc::clone(&ctx), &ops, 2, Some(800 << 10)).unwrap();
        let input = frame(1366, 301, 0);
        let mut after_ops = input.clone();
        cpu::apply(&ops, 1366, 301, &mut after_ops.rgba);
        let want = crate::mode::cpu::convert_frame(mode, Dither::None, &after_ops);
        gpu.schedule(input).unwrap();
        let got = gpu.collect(true).unwrap().expect("one frame was scheduled");
        assert!(
            got.image == Some(want),
            "{mode}: banded GPU output differs from the CPU"
        );
    }
}

#[test]
fn wavefront_dithering_of_a_frame_over_the_binding_limit_falls_back_to_the_cpu() {
    let Some(ctx) = gpu_or_skip("wavefront_dithering_over_the_binding_limit") else {
        return;
    };
    let ops = Ops {
        mirror: true,
        filters: vec![Filter::Sepia],
        mode: Some(ImageMode::One),
        dither: Dither::FloydSteinberg,
    };
    // 1364 is a multiple of 4, but 300 rows need 3 bands of at most 128 rows: the waves need
    // the whole frame in one binding, so this frame dithers on the CPU; 1364 × 100 fits one.
    let mut gpu = GpuBackend::with_limits(Arc::clone(&ctx), &ops, 2, Some(800 << 10)).unwrap();
    gpu.set_dither_on_gpu(true);
    for (height, seq) in [(300, 0), (100, 1)] {
        let input = frame(1364, height, seq);
        let mut after_ops = input.clone();
        cpu::apply(&ops, 1364, height, &mut after_ops.rgba);
        let want = crate::mode::cpu::convert_frame(ImageMode::One, ops.dither, &after_ops);
        gpu.schedule(input).unwrap();
        let got = gpu.collect(true).unwrap().expect("one frame was scheduled");
        assert!(
            got.image == Some(want),
            "1364×{height}: GPU differs from the CPU"
        );
    }
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

#[test]
fn both_uploads_give_the_cpu_reference_bytes_over_many_slot_reuses() {
    let Some(ctx) = gpu_or_skip("both_uploads") else {
        return;
    };
    let ops = Ops {
        mirror: true,
        filters: vec![Filter::Sepia],
        ..Default::default()
    };
    // Sizes that grow and shrink, so slots reallocate (a new, mapped upload buffer) and reuse
    // a buffer larger than the frame (a partial copy into it); identity copies straight
    // through. 1366×768 is over the parallel copy's threshold.
    let sizes = [(3, 7), (1366, 768), (1, 1), (640, 3), (1366, 768), (2, 2)];
    for upload in [super::Upload::Staging, super::Upload::WriteBuffer] {
        for ops in [ops.clone(), Ops::default()] {
            let mut gpu = GpuBackend::new(Arc::clone(&ctx), &ops, 2).unwrap();
            gpu.set_upload(upload);
            let mut expected = Vec::new();
            for (seq, &(w, h)) in sizes.iter().cycle().take(14).enumerate() {
                let f = frame(w, h, seq as u64);
                let mut want = f.rgba.clone();
                cpu::apply(&ops, w, h, &mut want);
                expected.push(want);
                if gpu.pending() == gpu.capacity() {
                    let done = gpu.collect(true).unwrap().unwrap();
                    assert!(done.rgba == expected[done.meta.seq as usize]);
                }
                gpu.schedule(f).unwrap();
            }
            while let Some(done) = gpu.collect(true).unwrap() {
                let seq = done.meta.seq as usize;
                assert!(done.rgba == expected[seq], "{upload:?} frame {seq}");
            }
        }
    }
}

/// An error wgpu reports outside any error scope goes to the thread whose call failed: another
/// thread on the same device is not told of it, and the failing thread is told once.
#[test]
fn an_uncaptured_error_is_reported_to_the_thread_that_caused_it() {
    let Some(ctx) = gpu_or_skip("uncaptured_error_by_thread") else {
        return;
    };
    assert!(ctx.take_error().is_ok(), "a fresh device has no error");
    let caused = std::sync::Barrier::new(2);
    let checked = std::sync::Barrier::new(2);
    std::thread::scope(|scope| {
        let failing = scope.spawn(|| {
            // A storage buffer that is also mappable for reading: invalid without a feature.
            let _ = ctx.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("invalid on purpose"),
                size: 16,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::STORAGE,
                mapped_at_creation: false,
            });
            caused.wait();
            checked.wait();
            (ctx.take_error(), ctx.take_error())
        });
        caused.wait();
        let other = ctx.take_error();
        checked.wait();
        let (first, second) = failing.join().expect("the failing thread returns");
        assert!(other.is_ok(), "another thread was told: {other:?}");
        let Err(crate::Error::Gpu(message)) = first else {
            panic!("the failing thread was not told: {first:?}")
        };
        assert!(message.contains("invalid on purpose"), "{message}");
        assert!(second.is_ok(), "told twice: {second:?}");
    });
}

/// An RGB frame's bytes (`pattern` without its alpha) and the RGBA frame the CPU sees for it:
/// alpha 255, no alpha in the source.
fn rgb_and_rgba(width: u32, height: u32, seq: u64) -> (Vec<u8>, Frame) {
    let rgba = pattern(width, height);
    let rgb: Vec<u8> = rgba.chunks(4).flat_map(|p| [p[0], p[1], p[2]]).collect();
    let widened = rgb
        .chunks(3)
        .flat_map(|p| [p[0], p[1], p[2], 255])
        .collect();
    let frame = Frame::new(width, height, widened, false, FrameMeta::still(seq, 0));
    (rgb, frame)
}

#[test]
fn rgb_frames_over_the_binding_limit_are_read_in_bands_and_match_cpu() {
    let Some(ctx) = gpu_or_skip("rgb_frames_over_the_binding_limit") else {
        return;
    };
    // 1366 × 3 = 4098 bytes a row in, 5464 out; 800 KiB bindings give bands of 128 rows (the
    // multiple that aligns both), so 301 rows are 3 bands, the last one's input ending mid-word.
    // Invert first: a band that read rows past its end (zeros, on drivers that bound reads)
    // would see white there and raise sepia-norm's maximum, which no pixel here reaches.
    for mode in [
        None,
        Some(ImageMode::L),
        Some(ImageMode::Rgb),
        Some(ImageMode::Lab),
    ] {
        let ops = Ops {
            mirror: true,
            filters: vec![Filter::Invert, Filter::SepiaNorm],
            mode,
            dither: Dither::None,
        };
        let mut gpu = GpuBackend::with_limits(Arc::clone(&ctx), &ops, 2, Some(800 << 10)).unwrap();
        let (rgb, input) = rgb_and_rgba(1366, 301, 0);
        let mut want = input.clone();
        cpu::apply(&ops, 1366, 301, &mut want.rgba);
        if let Some(mode) = mode {
            want.image = Some(crate::mode::cpu::convert_frame(mode, Dither::None, &want));
        }
        gpu.schedule_rgb(1366, 301, &rgb, input.meta).unwrap();
        let got = gpu.collect(true).unwrap().expect("one frame was scheduled");
        match mode {
            None => assert!(
                got.rgba == want.rgba,
                "banded RGB input differs from the CPU"
            ),
            Some(mode) => assert!(
                got.image == want.image,
                "{mode}: banded RGB input differs from the CPU"
            ),
        }
    }
}

#[test]
fn rgb_and_rgba_frames_take_turns_in_one_ring_even_with_no_ops() {
    let Some(ctx) = gpu_or_skip("rgb_and_rgba_frames_take_turns") else {
        return;
    };
    let cases = [
        Ops::default(),
        Ops {
            mirror: true,
            filters: vec![Filter::Invert],
            ..Default::default()
        },
    ];
    for ops in cases {
        for upload in [super::Upload::Staging, super::Upload::WriteBuffer] {
            // One slot: each frame reuses the buffers (and bind groups) the one before it
            // left. 5 × 3 RGB is 45 bytes, not whole words: uploaded rounded up.
            let mut gpu = GpuBackend::new(Arc::clone(&ctx), &ops, 1).unwrap();
            gpu.set_upload(upload);
            let sizes = [
                (5, 3),
                (5, 3),
                (7, 2),
                (64, 33),
                (3, 1),
                (0, 4),
                (8, 1),
                (9, 9),
            ];
            for (seq, (width, height)) in sizes.into_iter().enumerate() {
                let seq = seq as u64;
                let (rgb, mut want) = rgb_and_rgba(width, height, seq);
                if seq.is_multiple_of(2) {
                    gpu.schedule_rgb(width, height, &rgb, want.meta.clone())
                        .unwrap();
                } else {
                    want = frame(width, height, seq);
                    gpu.schedule(want.clone()).unwrap();
                }
                cpu::apply(&ops, width, height, &mut want.rgba);
                let got = gpu.collect(true).unwrap().expect("one frame was scheduled");
                assert_eq!(got.meta.seq, seq);
                assert!(
                    got.rgba == want.rgba,
                    "{ops:?} {upload:?}, frame {seq} ({width}×{height}) differs from the CPU"
                );
            }
        }
    }
}

#[test]
fn an_rgb_buffer_of_the_wrong_length_is_a_usage_error() {
    let Some(ctx) = gpu_or_skip("an_rgb_buffer_of_the_wrong_length") else {
        return;
    };
    let mut gpu = GpuBackend::new(ctx, &Ops::default(), 1).unwrap();
    let err = gpu
        .schedule_rgb(4, 4, &[7; 4 * 4 * 4], FrameMeta::still(9, 0))
        .unwrap_err();
    assert!(
        matches!(&err, crate::Error::Usage(msg) if msg.contains("frame 9") && msg.contains("48")),
        "{err}"
    );
    assert_eq!(gpu.pending(), 0);
}

//! Live sources without a camera: the YUV conversions (GPU pass against the CPU twin, and
//! against values worked by hand), the synthetic camera's YUYV / NV12 / MJPEG frames through
//! `to_rgba`, the test pattern's pacing and self-describing frame numbers, closure sources, the
//! webcam's behaviour on a machine without one, and the `pattern:` / `webcam:` arguments.
//! Time is a `ManualClock`: nothing sleeps, nothing depends on wall time.

mod common;

use std::io::Cursor;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use shutter::Error;
use shutter::gpu::GpuContext;
use shutter::gpu::yuv::YuvConverter;
use shutter::source::live::{
    Clock, FrameGrabber, FuncGrabber, IntoRawFrame, ManualClock, RawFormat, RawFrame,
    SyntheticCamera, to_rgba,
};
use shutter::source::pattern::{
    self, PatternGrabber, parse_pattern, parse_webcam, read_frame_number,
};
use shutter::source::webcam::{NokhwaGrabber, list_cameras};
use shutter::source::yuv;

/// One device for the whole binary (device creation is the slow part on lavapipe).
fn gpu(test: &str) -> Option<Arc<GpuContext>> {
    static CTX: OnceLock<Option<Arc<GpuContext>>> = OnceLock::new();
    CTX.get_or_init(|| common::gpu_or_skip(test)).clone()
}

fn converter(test: &str) -> Option<YuvConverter> {
    gpu(test).map(|ctx| YuvConverter::new(ctx).expect("the YUV pass compiles"))
}

fn manual_clock() -> (Arc<ManualClock>, Arc<dyn Clock>) {
    let clock = Arc::new(ManualClock::new());
    let shared: Arc<dyn Clock> = clock.clone();
    (clock, shared)
}

/// Largest difference between two byte buffers of the same length.
fn max_diff(a: &[u8], b: &[u8]) -> u8 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| x.abs_diff(*y))
        .max()
        .unwrap_or(0)
}

/// PSNR in dB over R, G and B of two RGBA8 buffers.
fn psnr_rgb(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len());
    let (mut sum, mut n) = (0f64, 0f64);
    for (p, q) in a.chunks_exact(4).zip(b.chunks_exact(4)) {
        for (x, y) in p[..3].iter().zip(&q[..3]) {
            let d = f64::from(*x) - f64::from(*y);
            sum += d * d;
            n += 1.0;
        }
    }
    if sum == 0.0 {
        return f64::INFINITY;
    }
    10.0 * (255.0f64 * 255.0 / (sum / n)).log10()
}

/// The frame mirrored left to right.
fn mirrored(rgba: &[u8], width: u32) -> Vec<u8> {
    rgba.chunks_exact(width as usize * 4)
        .flat_map(|row| row.chunks_exact(4).rev().flatten().copied())
        .collect()
}

/// The frame written as PNG and read back.
fn png_round_trip(rgba: &[u8], width: u32, height: u32) -> (u32, u32, Vec<u8>) {
    let image = image::RgbaImage::from_raw(width, height, rgba.to_vec()).expect("sized buffer");
    let mut png = Vec::new();
    image
        .write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png)
        .expect("png encodes");
    let back = image::load_from_memory_with_format(&png, image::ImageFormat::Png)
        .expect("png decodes")
        .into_rgba8();
    (back.width(), back.height(), back.into_raw())
}

const YUV_SIZES: [(u32, u32); 5] = [(2, 2), (6, 4), (64, 2), (1280, 720), (3840, 2160)];

#[test]
fn yuyv_on_the_gpu_equals_the_cpu_twin_exactly() {
    let Some(mut gpu) = converter("yuyv_on_the_gpu_equals_the_cpu_twin_exactly") else {
        return;
    };
    // YUYV pairs pixels along a row only: any height, odd ones too.
    let sizes = YUV_SIZES.into_iter().chain([(6, 3), (2, 1)]);
    for (i, (w, h)) in sizes.enumerate() {
        let data = common::random_rgba(w, h, 100 + i as u64)[..(w * h * 2) as usize].to_vec();
        let cpu = yuv::yuyv_to_rgba(w, h, &data).expect("even width");
        let on_gpu = gpu
            .convert(RawFormat::Yuyv, w, h, &data)
            .expect("gpu converts");
        assert_eq!(max_diff(&cpu, &on_gpu), 0, "{w}x{h}");
    }
}

#[test]
fn nv12_on_the_gpu_equals_the_cpu_twin_exactly() {
    let Some(mut gpu) = converter("nv12_on_the_gpu_equals_the_cpu_twin_exactly") else {
        return;
    };
    for (i, (w, h)) in YUV_SIZES.into_iter().enumerate() {
        let data = common::random_rgba(w, h, 200 + i as u64)[..(w * h * 3 / 2) as usize].to_vec();
        let cpu = yuv::nv12_to_rgba(w, h, &data).expect("even sides");
        let on_gpu = gpu
            .convert(RawFormat::Nv12, w, h, &data)
            .expect("gpu converts");
        assert_eq!(max_diff(&cpu, &on_gpu), 0, "{w}x{h}");
    }
}

#[test]
fn the_gpu_converter_reuses_its_buffers_across_sizes_and_formats() {
    let Some(mut gpu) = converter("the_gpu_converter_reuses_its_buffers_across_sizes_and_formats")
    else {
        return;
    };
    // Large, then small, then large again: stale bytes from a larger frame must not leak.
    for (w, h, format) in [
        (64, 32, RawFormat::Nv12),
        (2, 2, RawFormat::Yuyv),
        (6, 4, RawFormat::Nv12),
        (64, 32, RawFormat::Yuyv),
    ] {
        let bytes = match format {
            RawFormat::Yuyv => w * h * 2,
            _ => w * h * 3 / 2,
        } as usize;
        let data = common::random_rgba(w, h, u64::from(w * h))[..bytes].to_vec();
        let cpu = match format {
            RawFormat::Yuyv => yuv::yuyv_to_rgba(w, h, &data),
            _ => yuv::nv12_to_rgba(w, h, &data),
        }
        .expect("valid frame");
        let on_gpu = gpu.convert(format, w, h, &data).expect("gpu converts");
        assert_eq!(cpu, on_gpu, "{w}x{h} {format}");
    }
}

/// YUYV `16 128 235 128` is black then white; `81 90 81 240` is BT.601's red twice;
/// `126 128 126 128` is mid grey (c = 298·110 = 32780; (32780 + 128) >> 8 = 128).
const YUYV_HAND: [u8; 12] = [16, 128, 235, 128, 81, 90, 81, 240, 126, 128, 126, 128];
const YUYV_HAND_RGBA: [[u8; 4]; 6] = [
    [0, 0, 0, 255],
    [255, 255, 255, 255],
    [255, 0, 0, 255],
    [255, 0, 0, 255],
    [128, 128, 128, 255],
    [128, 128, 128, 255],
];

/// NV12 2×2, Y = 16 235 / 126 81, U V = 90 240. By hand (D = −38, E = 112):
/// Y 16: C = 0 → R (0 + 45808 + 128) >> 8 = 179, G (0 + 3800 − 23296 + 128) >> 8 < 0 → 0,
/// B (0 − 19608 + 128) >> 8 < 0 → 0. Y 235: C = 65262 → R 255 (clamped), G 45894 >> 8 = 179,
/// B 45782 >> 8 = 178. Y 126: C = 32780 → R 255, G 13412 >> 8 = 52, B 13300 >> 8 = 51.
/// Y 81: C = 19370 → 255, 0, 0.
const NV12_HAND: [u8; 6] = [16, 235, 126, 81, 90, 240];
const NV12_HAND_RGBA: [[u8; 4]; 4] = [
    [179, 0, 0, 255],
    [255, 179, 178, 255],
    [255, 52, 51, 255],
    [255, 0, 0, 255],
];

#[test]
fn yuv_conversions_match_values_worked_by_hand() {
    let yuyv: Vec<u8> = YUYV_HAND_RGBA.concat();
    let nv12: Vec<u8> = NV12_HAND_RGBA.concat();
    assert_eq!(yuv::yuyv_to_rgba(6, 1, &YUYV_HAND).expect("valid"), yuyv);
    assert_eq!(yuv::nv12_to_rgba(2, 2, &NV12_HAND).expect("valid"), nv12);
    if let Some(mut gpu) = converter("yuv_conversions_match_values_worked_by_hand") {
        assert_eq!(
            gpu.convert(RawFormat::Yuyv, 6, 1, &YUYV_HAND).expect("gpu"),
            yuyv
        );
        assert_eq!(
            gpu.convert(RawFormat::Nv12, 2, 2, &NV12_HAND).expect("gpu"),
            nv12
        );
    }
}

/// Asserts that `result` is a decode error whose message contains every one of `words`.
fn assert_decode_error<T: std::fmt::Debug>(result: shutter::Result<T>, words: &[&str]) {
    match result {
        Err(err @ Error::Decode { .. }) => {
            let message = err.to_string();
            assert!(!message.contains('\n'), "one line: {message:?}");
            for word in words {
                assert!(message.contains(word), "{message:?} lacks {word:?}");
            }
        }
        other => panic!("expected a decode error, got {other:?}"),
    }
}

#[test]
fn odd_sizes_are_refused_with_a_clear_error_on_both_sides() {
    assert_decode_error(
        yuv::yuyv_to_rgba(3, 2, &[0; 12]),
        &["width 3 is odd", "yuyv"],
    );
    assert_decode_error(yuv::nv12_to_rgba(3, 2, &[0; 12]), &["3×2", "even", "nv12"]);
    assert_decode_error(yuv::nv12_to_rgba(4, 3, &[0; 18]), &["4×3", "even"]);
    assert_decode_error(yuv::yuyv_to_rgba(4, 2, &[0; 15]), &["15 bytes", "needs 16"]);
    assert_decode_error(yuv::yuyv_to_rgba(0, 2, &[]), &["empty"]);
    if let Some(mut gpu) = converter("odd_sizes_are_refused_with_a_clear_error_on_both_sides") {
        assert_decode_error(
            gpu.convert(RawFormat::Yuyv, 5, 4, &[0; 40]),
            &["width 5 is odd"],
        );
        assert_decode_error(
            gpu.convert(RawFormat::Nv12, 6, 5, &[0; 45]),
            &["6×5", "even"],
        );
        assert!(matches!(
            gpu.convert(RawFormat::Mjpeg, 2, 2, &[0; 8]),
            Err(Error::Unsupported { .. })
        ));
    }
    let raw = RawFrame {
        width: 7,
        height: 2,
        format: RawFormat::Yuyv,
        data: vec![0; 28],
        timestamp: Duration::ZERO,
    };
    assert_decode_error(to_rgba(raw, None), &["width 7 is odd"]);
}

#[test]
fn yuv_round_trip_of_rgb_stays_within_three() {
    let mut worst = 0;
    for r in (0..=255u8).step_by(5) {
        for g in (0..=255u8).step_by(5) {
            for b in (0..=255u8).step_by(5) {
                let [y, u, v] = yuv::rgb_to_yuv(r, g, b);
                let back = yuv::yuv_to_rgb(y, u, v);
                for (a, z) in [r, g, b].into_iter().zip(back) {
                    worst = worst.max(a.abs_diff(z));
                }
            }
        }
    }
    eprintln!("BT.601 RGB -> YUV -> RGB: worst channel error {worst}");
    assert!(worst <= 3, "worst channel error {worst}");
}

/// Frame numbers, sizes and rates of the synthetic camera checks.
const CAMERA_FRAMES: u64 = 5;

/// Runs a synthetic camera through `to_rgba` and checks each frame against its picture:
/// exact-ish for YUV (`max_error`), by PSNR for MJPEG, and by the frame number it carries.
fn check_synthetic_camera(format: RawFormat, mut gpu: Option<&mut YuvConverter>) {
    let (w, h, fps) = (320, 240, 30.0);
    let (_, clock) = manual_clock();
    let mut camera = SyntheticCamera::new(format, w, h, fps, clock)
        .expect("valid camera")
        .with_limit(CAMERA_FRAMES);
    let mut k = 0;
    while let Some(raw) = camera.next_frame().expect("synthetic frames never fail") {
        assert_eq!(raw.format, format);
        assert_eq!(raw.timestamp, Duration::from_secs_f64(k as f64 / fps));
        let frame = to_rgba(raw, gpu.as_deref_mut()).expect("converts");
        assert_eq!((frame.width, frame.height), (w, h));
        assert!(!frame.has_alpha);
        let picture = camera.picture(k);
        match format {
            RawFormat::Mjpeg => {
                let psnr = psnr_rgb(&frame.rgba, &picture);
                eprintln!("{format} frame {k}: PSNR {psnr:.1} dB");
                assert!(psnr > 40.0, "{format} frame {k}: PSNR {psnr:.1} dB");
            }
            _ => {
                let err = max_diff(&frame.rgba, &picture);
                eprintln!("{format} frame {k}: max error {err}");
                assert!(err <= 1, "{format} frame {k}: max error {err}");
            }
        }
        assert_eq!(read_frame_number(&frame.rgba, w, h), Some(k), "{format}");
        k += 1;
    }
    assert_eq!(k, CAMERA_FRAMES, "the limit ends the stream");
    assert!(camera.next_frame().expect("ended").is_none());
}

#[test]
fn synthetic_camera_frames_convert_back_to_the_picture_on_the_cpu() {
    for format in [RawFormat::Yuyv, RawFormat::Nv12, RawFormat::Mjpeg] {
        check_synthetic_camera(format, None);
    }
}

#[test]
fn synthetic_camera_frames_convert_back_to_the_picture_on_the_gpu() {
    let Some(mut gpu) = converter("synthetic_camera_frames_convert_back_to_the_picture_on_the_gpu")
    else {
        return;
    };
    for format in [RawFormat::Yuyv, RawFormat::Nv12, RawFormat::Mjpeg] {
        check_synthetic_camera(format, Some(&mut gpu));
    }
}

#[test]
fn synthetic_camera_uncompressed_formats_are_exact_or_luma() {
    let (_, clock) = manual_clock();
    for format in [RawFormat::Rgb, RawFormat::Rgba, RawFormat::Bgr] {
        let mut camera = SyntheticCamera::new(format, 64, 48, 10.0, clock.clone()).expect("ok");
        let raw = camera.next_frame().expect("frame").expect("not ended");
        let frame = to_rgba(raw, None).expect("converts");
        assert_eq!(frame.rgba, camera.picture(0), "{format}");
    }
    let mut camera = SyntheticCamera::new(RawFormat::Gray, 64, 48, 10.0, clock).expect("ok");
    let raw = camera.next_frame().expect("frame").expect("not ended");
    let frame = to_rgba(raw, None).expect("converts");
    assert!(
        frame
            .rgba
            .chunks_exact(4)
            .all(|p| p[0] == p[1] && p[1] == p[2])
    );
    assert_eq!(read_frame_number(&frame.rgba, 64, 48), Some(0));
}

#[test]
fn mjpeg_from_the_synthetic_camera_decodes_to_the_picture() {
    let (_, clock) = manual_clock();
    let mut camera =
        SyntheticCamera::new(RawFormat::Mjpeg, 640, 480, 30.0, clock).expect("valid camera");
    let raw = camera.next_frame().expect("frame").expect("not ended");
    assert!(raw.data.starts_with(&[0xFF, 0xD8]), "a JPEG");
    let frame = to_rgba(raw, None).expect("decodes");
    let psnr = psnr_rgb(&frame.rgba, &camera.picture(0));
    assert!(psnr > 40.0, "PSNR {psnr:.1} dB");
}

#[test]
fn synthetic_camera_refuses_odd_sizes_for_yuv() {
    let (_, clock) = manual_clock();
    assert!(SyntheticCamera::new(RawFormat::Yuyv, 33, 32, 30.0, clock.clone()).is_err());
    assert!(SyntheticCamera::new(RawFormat::Nv12, 32, 33, 30.0, clock.clone()).is_err());
    assert!(SyntheticCamera::new(RawFormat::Mjpeg, 33, 33, 30.0, clock).is_ok());
}

#[test]
fn paced_pattern_stamps_frame_k_at_k_over_fps_and_carries_k() {
    let (manual, clock) = manual_clock();
    let mut grabber = PatternGrabber::new(320, 240, Some(60.0), clock).expect("valid");
    assert!(grabber.paced());
    let mut previous: Option<Vec<u8>> = None;
    for k in 0..120u64 {
        let raw = grabber.next_frame().expect("never fails").expect("endless");
        assert_eq!(raw.format, RawFormat::Rgba);
        assert_eq!((raw.width, raw.height), (320, 240));
        let due = Duration::from_secs_f64(k as f64 / 60.0);
        assert_eq!(raw.timestamp, due, "frame {k}");
        assert_eq!(
            manual.now(),
            due,
            "the grabber slept until frame {k} was due"
        );
        assert_eq!(read_frame_number(&raw.data, 320, 240), Some(k));
        assert!(raw.data.iter().any(|&b| b != 0), "never all zeros");
        if let Some(previous) = &previous {
            assert_ne!(previous, &raw.data, "frame {k} differs from the one before");
        }
        previous = Some(raw.data);
    }
}

#[test]
fn a_late_reader_gets_due_pattern_frames_at_once_on_schedule() {
    let (manual, clock) = manual_clock();
    let mut grabber = PatternGrabber::new(64, 64, Some(10.0), clock).expect("valid");
    grabber.next_frame().expect("frame 0");
    manual.advance(Duration::from_secs(1));
    for k in 1..=10u64 {
        let raw = grabber.next_frame().expect("frame").expect("endless");
        assert_eq!(raw.timestamp, Duration::from_secs_f64(k as f64 / 10.0));
        assert_eq!(read_frame_number(&raw.data, 64, 64), Some(k));
    }
    assert_eq!(
        manual.now(),
        Duration::from_secs(1),
        "no sleeping while behind"
    );
}

#[test]
fn unpaced_pattern_never_waits() {
    let (manual, clock) = manual_clock();
    manual.advance(Duration::from_millis(5));
    let mut grabber = PatternGrabber::new(64, 48, None, clock).expect("valid");
    assert!(!grabber.paced());
    for k in 0..10 {
        let raw = grabber.next_frame().expect("frame").expect("endless");
        assert_eq!(raw.timestamp, Duration::from_millis(5));
        assert_eq!(read_frame_number(&raw.data, 64, 48), Some(k));
    }
}

#[test]
fn frame_numbers_survive_png_mirroring_and_inversion_including_large_ones() {
    let (_, clock) = manual_clock();
    let max = (1u64 << 48) - 1;
    for (w, h) in [(640, 480), (320, 240), (64, 64), (33, 17), (16, 16)] {
        for start in [0, 255, 1 << 20, 4_000_000_000, 1 << 40, max - 1] {
            let mut grabber = PatternGrabber::new(w, h, Some(60.0), clock.clone())
                .expect("valid")
                .starting_at(start);
            for k in start..start + 2 {
                let raw = grabber.next_frame().expect("frame").expect("endless");
                let rgba = raw.data;
                assert_eq!(read_frame_number(&rgba, w, h), Some(k), "{w}x{h} frame {k}");
                let (pw, ph, png) = png_round_trip(&rgba, w, h);
                assert_eq!(read_frame_number(&png, pw, ph), Some(k), "PNG {w}x{h} {k}");
                let flipped = mirrored(&rgba, w);
                assert_eq!(read_frame_number(&flipped, w, h), Some(k), "mirrored {k}");
                let inverted: Vec<u8> = rgba
                    .chunks_exact(4)
                    .flat_map(|p| [255 - p[0], 255 - p[1], 255 - p[2], p[3]])
                    .collect();
                assert_eq!(read_frame_number(&inverted, w, h), Some(k), "inverted {k}");
            }
        }
    }
    // Numbers wrap at 2^48.
    assert_eq!(
        read_frame_number(&pattern::render(64, 64, max + 3), 64, 64),
        Some(2)
    );
}

#[test]
fn frames_without_a_code_read_as_none() {
    assert_eq!(read_frame_number(&[0; 64 * 64 * 4], 64, 64), None);
    assert_eq!(read_frame_number(&[255; 64 * 64 * 4], 64, 64), None);
    let noise = common::random_rgba(64, 64, 7);
    assert_eq!(read_frame_number(&noise, 64, 64), None);
    // A buffer of the wrong length is not read at all.
    assert_eq!(read_frame_number(&pattern::render(64, 64, 1), 64, 63), None);
}

#[test]
fn pattern_sizes_and_rates_out_of_range_are_refused() {
    let (_, clock) = manual_clock();
    assert!(PatternGrabber::new(8, 64, None, clock.clone()).is_err());
    assert!(PatternGrabber::new(64, 100_000, None, clock.clone()).is_err());
    assert!(PatternGrabber::new(64, 64, Some(0.0), clock.clone()).is_err());
    assert!(PatternGrabber::new(64, 64, Some(f64::NAN), clock).is_err());
}

#[test]
fn closure_sources_stream_user_frames_until_none() {
    let (_, clock) = manual_clock();
    let mut step = 0u8;
    let mut grabber = FuncGrabber::from_fn(move || {
        step += 1;
        (step <= 4).then(|| {
            Ok(image::RgbaImage::from_pixel(
                8,
                4,
                image::Rgba([step, 2 * step, 3 * step, 255]),
            ))
        })
    })
    .with_clock(clock)
    .with_fps(4.0)
    .named("steps");
    assert!(grabber.paced());
    assert_eq!(grabber.describe(), "steps @ 4 fps");
    let mut seen = Vec::new();
    while let Some(raw) = grabber.next_frame().expect("no error") {
        assert_eq!(
            raw.timestamp,
            Duration::from_secs_f64(seen.len() as f64 / 4.0)
        );
        let frame = to_rgba(raw, None).expect("rgba");
        assert!(!frame.has_alpha, "opaque RGBA has no alpha to keep");
        seen.push(frame.rgba[0]);
    }
    assert_eq!(seen, [1, 2, 3, 4]);
    assert!(grabber.next_frame().expect("still ended").is_none());
}

#[test]
fn rates_too_slow_for_a_duration_pace_frames_never_instead_of_panicking() {
    // `with_fps(1e-300)` (and `pattern@1e-300`) put the second frame 1e300 s after the first,
    // past what a `Duration` holds: computing it panicked. It is due never.
    let (_, clock) = manual_clock();
    let mut grabber = FuncGrabber::from_frames((0..3u8).map(|k| (2u32, 2u32, vec![k; 16])))
        .with_clock(clock.clone())
        .with_fps(1e-300)
        .named("cam");
    let first = grabber.next_frame().expect("no error").expect("a frame");
    assert_eq!(first.timestamp, Duration::ZERO);
    assert_eq!(grabber.next_due(), Some(Duration::MAX));
    // The manual clock moves to the time it is slept until: the frame comes, stamped never.
    let second = grabber.next_frame().expect("no error").expect("a frame");
    assert_eq!(second.timestamp, Duration::MAX);
    // Its name in messages and on its frames is the name given, without the rate.
    assert_eq!(grabber.name(), "cam");
    let mut pattern = PatternGrabber::new(64, 48, Some(1e-300), clock).expect("a pattern");
    pattern.next_frame().expect("no error").expect("a frame");
    assert_eq!(pattern.next_due(), Some(Duration::MAX));
}

#[test]
fn closure_errors_and_bad_frames_become_user_errors_naming_the_frame() {
    let mut calls = 0;
    let mut grabber = FuncGrabber::from_fn(move || {
        calls += 1;
        Some(if calls == 1 {
            Ok((2, 2, vec![0u8; 16]))
        } else {
            Err("the model ran out of memory".into())
        })
    });
    assert!(grabber.next_frame().expect("first frame").is_some());
    match grabber.next_frame() {
        Err(err @ Error::User { .. }) => {
            let message = err.to_string();
            assert!(
                message.contains("closure: frame 1: the model ran out of memory"),
                "{message}"
            );
            // The closure's own error is kept, under the context the message adds.
            let own = err.user_error().map(ToString::to_string);
            assert_eq!(own.as_deref(), Some("the model ran out of memory"));
        }
        other => panic!("expected a user error, got {other:?}"),
    }
    let mut bad = FuncGrabber::from_frames([(3u32, 3u32, vec![0u8; 5])]);
    assert!(
        matches!(bad.next_frame(), Err(Error::User { message, error: None }) if message.contains("5 bytes"))
    );
}

#[test]
fn iterator_sources_keep_alpha_when_it_is_used() {
    let frames = vec![
        image::RgbaImage::from_pixel(2, 2, image::Rgba([9, 9, 9, 128])),
        image::RgbaImage::from_pixel(2, 2, image::Rgba([9, 9, 9, 255])),
    ];
    let mut grabber = FuncGrabber::from_frames(frames);
    let first = to_rgba(grabber.next_frame().expect("ok").expect("frame"), None).expect("rgba");
    assert!(first.has_alpha);
    let second = to_rgba(grabber.next_frame().expect("ok").expect("frame"), None).expect("rgba");
    assert!(!second.has_alpha);
    assert!(grabber.next_frame().expect("ok").is_none());
}

#[test]
fn to_rgba_expands_rgb_bgr_and_gray_and_checks_lengths() {
    let raw = |format, data: Vec<u8>| RawFrame {
        width: 2,
        height: 1,
        format,
        data,
        timestamp: Duration::ZERO,
    };
    let rgb = to_rgba(raw(RawFormat::Rgb, vec![1, 2, 3, 4, 5, 6]), None).expect("rgb");
    assert_eq!(rgb.rgba, [1, 2, 3, 255, 4, 5, 6, 255]);
    let bgr = to_rgba(raw(RawFormat::Bgr, vec![1, 2, 3, 4, 5, 6]), None).expect("bgr");
    assert_eq!(bgr.rgba, [3, 2, 1, 255, 6, 5, 4, 255]);
    let gray = to_rgba(raw(RawFormat::Gray, vec![7, 8]), None).expect("gray");
    assert_eq!(gray.rgba, [7, 7, 7, 255, 8, 8, 8, 255]);
    // Padding past the frame is ignored; too few bytes is an error.
    let padded = to_rgba(raw(RawFormat::Rgb, vec![1; 10]), None).expect("padded");
    assert_eq!(padded.rgba.len(), 8);
    assert_decode_error(to_rgba(raw(RawFormat::Rgb, vec![1; 5]), None), &["5 bytes"]);
    assert_decode_error(
        to_rgba(raw(RawFormat::Mjpeg, vec![0xFF, 0xD8, 0]), None),
        &["mjpeg"],
    );
    // A camera's JPEG cut short (the decoder's reasons end in a line break).
    let mut jpeg = Vec::new();
    image::RgbImage::from_fn(16, 16, |x, y| image::Rgb([x as u8 * 16, y as u8 * 16, 7]))
        .write_to(&mut Cursor::new(&mut jpeg), image::ImageFormat::Jpeg)
        .unwrap();
    jpeg.truncate(jpeg.len() / 2);
    assert_decode_error(to_rgba(raw(RawFormat::Mjpeg, jpeg), None), &["mjpeg"]);
}

#[test]
fn webcam_without_a_camera_is_a_one_line_camera_error() {
    let listed = list_cameras();
    let has_video_device = std::path::Path::new("/dev/video0").exists();
    if cfg!(target_os = "linux") && !has_video_device {
        // This machine: no /dev/video*, so an empty list and an error naming webcam:0.
        match &listed {
            Ok(cameras) => assert!(cameras.is_empty(), "{cameras:?}"),
            Err(err) => panic!("listing no cameras should not fail: {err}"),
        }
    }
    let camera_zero_listed = matches!(&listed, Ok(c) if c.iter().any(|c| c.index == 0));
    match NokhwaGrabber::open(0, Some(640), Some(480), Some(30)) {
        Err(err @ Error::Camera { .. }) => {
            let message = err.to_string();
            assert!(message.starts_with("camera webcam:0: "), "{message}");
            assert!(!message.contains('\n'), "one line: {message:?}");
            if !camera_zero_listed {
                assert!(message.contains("no camera"), "{message}");
            }
        }
        Err(other) => panic!("expected Error::Camera, got {other}"),
        Ok(grabber) => {
            // A machine with a camera: it opened, and says in which mode.
            assert!(camera_zero_listed);
            assert!(grabber.describe().starts_with("webcam:0 ("));
        }
    }
    if let Err(err) = listed {
        assert!(matches!(err, Error::Camera { .. }), "{err}");
    }
}

#[test]
fn pattern_arguments_parse_in_every_documented_form() {
    assert_eq!(parse_pattern("pattern").unwrap(), (640, 480, None));
    assert_eq!(parse_pattern("pattern:320x240").unwrap(), (320, 240, None));
    assert_eq!(parse_pattern("pattern:320X240").unwrap(), (320, 240, None));
    assert_eq!(parse_pattern("pattern@60").unwrap(), (640, 480, Some(60.0)));
    assert_eq!(
        parse_pattern("pattern:64x48@29.97").unwrap(),
        (64, 48, Some(29.97))
    );
}

#[test]
fn bad_pattern_arguments_are_usage_errors_naming_the_argument() {
    for bad in [
        "pattern:",
        "pattern:320",
        "pattern:320x",
        "pattern:ax240",
        "pattern:320x240@",
        "pattern:320x240@fast",
        "pattern:320x240@0",
        "pattern:320x240@-5",
        "pattern:320x240@inf",
        "pattern:0x240",
        "pattern:8x8",
        "pattern:99999x240",
        "patterns",
        "pattern320x240",
        "webcam",
    ] {
        match parse_pattern(bad) {
            Err(err @ Error::Usage(_)) => {
                let message = err.to_string();
                assert!(message.contains(&format!("'{bad}'")), "{message}");
            }
            other => panic!("{bad}: expected a usage error, got {other:?}"),
        }
    }
}

#[test]
fn webcam_arguments_parse_and_bad_ones_name_the_argument() {
    assert_eq!(parse_webcam("webcam").unwrap(), 0);
    assert_eq!(parse_webcam("webcam:0").unwrap(), 0);
    assert_eq!(parse_webcam("webcam:12").unwrap(), 12);
    for bad in [
        "webcam:",
        "webcam:-1",
        "webcam:one",
        "webcam:1.5",
        "webcam0",
        "webcam:99999999999999999999999",
        "pattern",
    ] {
        match parse_webcam(bad) {
            Err(err @ Error::Usage(_)) => {
                let message = err.to_string();
                assert!(message.contains(&format!("'{bad}'")), "{message}");
            }
            other => panic!("{bad}: expected a usage error, got {other:?}"),
        }
    }
}

#[test]
fn grabbers_work_behind_a_box() {
    let (_, clock) = manual_clock();
    let mut boxed: Box<dyn FrameGrabber> = Box::new(
        SyntheticCamera::new(RawFormat::Nv12, 64, 48, 25.0, clock)
            .expect("valid")
            .with_limit(2),
    );
    assert!(boxed.paced());
    assert!(boxed.describe().contains("NV12"));
    assert!(boxed.next_frame().expect("frame").is_some());
    assert!(boxed.next_frame().expect("frame").is_some());
    assert!(boxed.next_frame().expect("end").is_none());
}

/// A camera's YUYV and NV12 frames through a whole run: on the GPU the capture builds the YUV
/// pass at the first such frame, and the frames the callback gets are the camera's pictures,
/// as on the CPU.
#[test]
fn a_runs_yuv_camera_frames_are_its_pictures_on_the_gpu_and_the_cpu() {
    use shutter::{DeviceChoice, FramePolicy, Pipeline, Source};
    use std::sync::Mutex;
    let Some(ctx) = gpu("a_runs_yuv_camera_frames_are_its_pictures_on_the_gpu_and_the_cpu") else {
        return;
    };
    for format in [RawFormat::Yuyv, RawFormat::Nv12] {
        let mut runs = Vec::new();
        for device in [DeviceChoice::Gpu, DeviceChoice::Cpu] {
            let (_, clock) = manual_clock();
            let camera = SyntheticCamera::new(format, 32, 16, 30.0, clock.clone())
                .expect("valid camera")
                .with_limit(3);
            let pictures: Vec<Vec<u8>> = (0..3).map(|k| camera.picture(k)).collect();
            let frames = Arc::new(Mutex::new(Vec::new()));
            let seen = frames.clone();
            let stats = Pipeline::builder()
                .source(Source::grabber(camera))
                .device(device)
                .gpu_context(ctx.clone())
                .clock(clock)
                .policy(FramePolicy::Lossless)
                .on_frame(move |frame| {
                    seen.lock().unwrap().push(frame.rgba.clone());
                    Ok(())
                })
                .build()
                .unwrap()
                .run()
                .unwrap();
            assert_eq!(stats.delivered, 3, "{format} {device:?}");
            let frames = frames.lock().unwrap().clone();
            for (k, (frame, picture)) in frames.iter().zip(&pictures).enumerate() {
                let err = max_diff(frame, picture);
                assert!(err <= 1, "{format} {device:?} frame {k}: max error {err}");
                assert_eq!(read_frame_number(frame, 32, 16), Some(k as u64));
            }
            runs.push(frames);
        }
        assert_eq!(runs[0], runs[1], "{format}: GPU and CPU frames differ");
    }
}

/// The RGBA8 frame a closure's value becomes.
fn rgba_of(value: impl IntoRawFrame) -> shutter::Result<Vec<u8>> {
    Ok(to_rgba(value.into_raw_frame()?, None)?.rgba)
}

#[test]
fn u8_arrays_are_frames_in_any_memory_order() {
    use ndarray::{Array2, Array3, ShapeBuilder, s};
    // (H, W, 3): RGB, row-major; x varies fastest.
    let rgb = Array3::from_shape_fn((3, 5, 3), |(y, x, c)| (y * 50 + x * 9 + c * 3 + 1) as u8);
    let want: Vec<u8> = rgb
        .outer_iter()
        .flat_map(|row| {
            row.outer_iter()
                .flat_map(|px| [px[0], px[1], px[2], 255])
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(rgba_of(rgb.clone()).unwrap(), want);
    // The same pixels stored column-major (a transposed array made standard again), and cut
    // out of a larger array (a buffer with an offset).
    let mut column_major = Array3::zeros((3, 5, 3).f());
    column_major.assign(&rgb);
    assert!(!column_major.is_standard_layout());
    assert_eq!(rgba_of(column_major).unwrap(), want);
    let mut larger = Array3::<u8>::from_elem((4, 5, 3), 7);
    larger.slice_mut(s![1.., .., ..]).assign(&rgb);
    assert_eq!(rgba_of(larger.slice_move(s![1.., .., ..])).unwrap(), want);
    // (H, W, 4) keeps its alpha; (H, W, 1) and (H, W) are gray.
    let rgba = Array3::from_shape_fn((2, 3, 4), |(y, x, c)| (y * 90 + x * 30 + c * 11 + 5) as u8);
    assert_eq!(
        rgba_of(rgba.clone()).unwrap(),
        rgba.iter().copied().collect::<Vec<_>>()
    );
    let gray = Array2::from_shape_fn((2, 3), |(y, x)| (y * 100 + x * 40 + 3) as u8);
    let gray_rgba: Vec<u8> = gray.iter().flat_map(|&v| [v, v, v, 255]).collect();
    assert_eq!(rgba_of(gray.clone()).unwrap(), gray_rgba);
    assert_eq!(
        rgba_of(gray.insert_axis(ndarray::Axis(2))).unwrap(),
        gray_rgba
    );
    // Two channels are no frame.
    let err = rgba_of(Array3::<u8>::zeros((2, 2, 2))).unwrap_err();
    assert!(
        err.to_string()
            .contains("C = 1 (gray), 3 (RGB) or 4 (RGBA)"),
        "{err}"
    );
}

/// Floats are scaled as Gradio scales them (scikit-image's conversion): ×255 in the array's
/// precision, rounded half to even, negatives to 0; outside −1 to 1, or NaN, the frame fails.
#[test]
fn float_arrays_are_scaled_as_gradio_scales_them() {
    use ndarray::{Array2, Array3};
    // 2.5/255 × 255 is exactly 2.5 in f32 and f64: half to even gives 2 (half up would give 3).
    assert_eq!((2.5f32 / 255.0) * 255.0, 2.5);
    assert_eq!((2.5f64 / 255.0) * 255.0, 2.5);
    // By hand: 0 → 0; 0.25 × 255 = 63.75 → 64; 0.5 × 255 = 127.5 → 128 (even); 0.75 × 255 =
    // 191.25 → 191; 1 → 255; −0.5 → −127.5 → 0.
    let values = [0.0, 0.25, 0.5, 0.75, 1.0, -0.5];
    let want_gray = [0u8, 64, 128, 191, 255, 0, 2];
    let want: Vec<u8> = want_gray.iter().flat_map(|&v| [v, v, v, 255]).collect();
    let f64s: Vec<f64> = values.iter().copied().chain([2.5 / 255.0]).collect();
    let f32s: Vec<f32> = values
        .iter()
        .map(|&v| v as f32)
        .chain([2.5f32 / 255.0])
        .collect();
    let gray64 = Array2::from_shape_vec((1, 7), f64s.clone()).unwrap();
    let gray32 = Array2::from_shape_vec((1, 7), f32s.clone()).unwrap();
    assert_eq!(rgba_of(gray64).unwrap(), want);
    assert_eq!(rgba_of(gray32).unwrap(), want);
    // (H, W, 3): each channel alike.
    let rgb = Array3::from_shape_fn((1, 7, 3), |(_, x, c)| f32s[(x + c) % 7]);
    let got = rgba_of(rgb).unwrap();
    for x in 0..7 {
        let px: Vec<u8> = (0..3).map(|c| want_gray[(x + c) % 7]).collect();
        assert_eq!(&got[x * 4..x * 4 + 3], &px[..], "pixel {x}");
        assert_eq!(got[x * 4 + 3], 255);
    }
    // Out of range, and NaN, name the value and where it is.
    for bad in [1.5f64, -1.01, f64::NAN] {
        let mut array = Array3::<f64>::from_elem((2, 3, 3), 0.5);
        array[[1, 2, 0]] = bad;
        let err = rgba_of(array).unwrap_err();
        assert!(err.to_string().contains("(1, 2, 0)"), "{bad}: {err}");
        assert!(err.to_string().contains("out of range"), "{bad}: {err}");
    }
    // An (H, W) array's value is named by its row and column.
    let mut gray = Array2::<f32>::from_elem((2, 3), 0.25);
    gray[[1, 0]] = 7.0;
    let err = rgba_of(gray).unwrap_err();
    assert!(
        err.to_string().contains("7.0 at (1, 0) is out of range"),
        "{err}"
    );
}

/// Gradio's `fake_diffusion` demo yields `rng.random((600, 600, 3))`: the same array from a
/// closure streams through a whole run.
#[test]
fn a_closure_yielding_float_arrays_streams_through_a_run() {
    use ndarray::Array3;
    use shutter::{DeviceChoice, Pipeline, Source};
    let step = |k: usize| {
        Array3::from_shape_fn((4, 6, 3), move |(y, x, c)| {
            ((y * 6 + x) * 3 + c + k) as f32 / 100.0
        })
    };
    let mut k = 0;
    let grabber = FuncGrabber::from_fn(move || {
        k += 1;
        (k <= 3).then(|| Ok(step(k)))
    });
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = seen.clone();
    let stats = Pipeline::builder()
        .source(Source::grabber(grabber))
        .device(DeviceChoice::Cpu)
        .on_frame(move |frame| {
            record.lock().unwrap().push(frame.rgba.clone());
            Ok(())
        })
        .build()
        .unwrap()
        .run()
        .unwrap();
    assert_eq!(stats.delivered, 3);
    let seen = seen.lock().unwrap();
    for (k, rgba) in (1..=3).zip(seen.iter()) {
        assert_eq!(*rgba, rgba_of(step(k)).unwrap(), "step {k}");
        // Value ((y·6 + x)·3 + c + k)/100 ×255: the first red is k·2.55, rounded.
        assert_eq!(rgba[0], (k as f32 * 2.55).round() as u8, "step {k}");
    }
}

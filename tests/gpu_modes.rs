//! Pillow's `image_mode` on the GPU backend: every mode against Pillow 13.0's golden bytes
//! (`tests/data/golden/`), and against the CPU processor on random frames after mirror and a
//! filter (odd sizes, 4K, every RGB colour), with frames of several sizes in flight.

mod common;

use std::sync::{Arc, OnceLock};

use common::read_golden;
use shutter::backend::Processor;
use shutter::gpu::{GpuBackend, GpuContext, Upload};
use shutter::mode::{Dither, ImageMode, ModeData, ModeImage, Palette};
use shutter::{Filter, FinishedFrame, Frame, FrameMeta, Ops};

/// One device for the whole binary (device creation is the slow part on lavapipe).
fn gpu(test: &str) -> Option<Arc<GpuContext>> {
    static CTX: OnceLock<Option<Arc<GpuContext>>> = OnceLock::new();
    CTX.get_or_init(|| common::gpu_or_skip(test)).clone()
}

fn mode_ops(mirror: bool, filters: &[Filter], mode: ImageMode, dither: Dither) -> Ops {
    Ops {
        mirror,
        filters: filters.to_vec(),
        mode: Some(mode),
        dither,
    }
}

/// Runs `frames` through one GPU backend, all in flight at once, and returns them in order.
fn run_gpu(ctx: &Arc<GpuContext>, ops: &Ops, frames: Vec<Frame>) -> Vec<Frame> {
    run_gpu_dithering(ctx, ops, frames, false)
}

/// As [`run_gpu`], with `1`'s Floyd–Steinberg in GPU wavefronts when `dither_on_gpu`.
fn run_gpu_dithering(
    ctx: &Arc<GpuContext>,
    ops: &Ops,
    frames: Vec<Frame>,
    dither_on_gpu: bool,
) -> Vec<Frame> {
    let mut gpu = GpuBackend::new(Arc::clone(ctx), ops, frames.len().max(1))
        .unwrap_or_else(|e| panic!("{ops:?}: {e}"));
    gpu.set_dither_on_gpu(dither_on_gpu);
    let n = frames.len();
    for frame in frames {
        gpu.schedule(frame)
            .unwrap_or_else(|e| panic!("{ops:?}: {e}"));
    }
    let out: Vec<Frame> = (0..n)
        .map(|_| {
            gpu.collect(true)
                .unwrap_or_else(|e| panic!("{ops:?}: {e}"))
                .expect("a frame is pending")
        })
        .collect();
    assert_eq!(gpu.pending(), 0);
    out
}

/// What the CPU processor makes of `frame`: the ops, then `mode::cpu::convert_frame`.
fn cpu_image(ops: &Ops, frame: Frame) -> ModeImage {
    let mut cpu = Processor::new(None, ops, 1).expect("the CPU processor always opens");
    cpu.process(frame)
        .expect("the CPU processor does not fail")
        .image
        .expect("a mode was set")
}

fn image_of(frame: &Frame) -> &ModeImage {
    frame
        .image
        .as_ref()
        .unwrap_or_else(|| panic!("frame {}: no image with a mode set", frame.meta.seq))
}

/// Where two converted images differ: how many pixels, and the first one with both values.
fn difference(got: &ModeImage, want: &ModeImage) -> Option<String> {
    if got == want {
        return None;
    }
    if (got.width, got.height, got.mode) != (want.width, want.height, want.mode) {
        return Some(format!(
            "got {}×{} {}, expected {}×{} {}",
            got.width, got.height, got.mode, want.width, want.height, want.mode
        ));
    }
    if got.palette != want.palette {
        return Some(format!(
            "palettes differ: {:?} vs {:?}",
            got.palette.as_ref().map(|p| p.len()),
            want.palette.as_ref().map(|p| p.len())
        ));
    }
    let (g, w) = (got.as_bytes(), want.as_bytes());
    if g.len() != w.len() {
        return Some(format!("{} bytes, expected {}", g.len(), w.len()));
    }
    let bpp = g.len() / (got.width as usize * got.height as usize).max(1);
    let first = g.chunks(bpp).zip(w.chunks(bpp)).position(|(a, b)| a != b)?;
    let count = g
        .chunks(bpp)
        .zip(w.chunks(bpp))
        .filter(|(a, b)| a != b)
        .count();
    let at = first * bpp;
    Some(format!(
        "{count} pixels differ; first at x={} y={}: GPU {:?}, CPU {:?}",
        first % got.width as usize,
        first / got.width as usize,
        &g[at..at + bpp],
        &w[at..at + bpp]
    ))
}

fn random_frame(width: u32, height: u32, seed: u64, has_alpha: bool) -> Frame {
    let mut rgba = common::random_rgba(width, height, seed);
    if !has_alpha {
        // An RGB source: Pillow's convert("RGBA") gives A = 255, and so do the decoders.
        rgba.chunks_exact_mut(4).for_each(|px| px[3] = 255);
    }
    Frame::new(width, height, rgba, has_alpha, FrameMeta::still(seed, 0))
}

/// Runs random frames of `sizes` (alternating RGBA and RGB sources) through the GPU with `ops`
/// and compares each image with the CPU processor's. `Err` describes every difference.
fn compare_with_cpu(
    ctx: &Arc<GpuContext>,
    ops: &Ops,
    sizes: &[(u32, u32)],
    seed: u64,
) -> Result<(), String> {
    compare_with_cpu_dithering(ctx, ops, sizes, seed, false)
}

/// As [`compare_with_cpu`], with `1`'s Floyd–Steinberg in GPU wavefronts when `dither_on_gpu`.
fn compare_with_cpu_dithering(
    ctx: &Arc<GpuContext>,
    ops: &Ops,
    sizes: &[(u32, u32)],
    seed: u64,
    dither_on_gpu: bool,
) -> Result<(), String> {
    let frames: Vec<Frame> = sizes
        .iter()
        .enumerate()
        .map(|(i, &(w, h))| random_frame(w, h, seed + i as u64, i % 2 == 0))
        .collect();
    let wanted: Vec<ModeImage> = frames.iter().map(|f| cpu_image(ops, f.clone())).collect();
    let got = run_gpu_dithering(ctx, ops, frames, dither_on_gpu);
    let mut failures = Vec::new();
    for (frame, want) in got.iter().zip(&wanted) {
        if let Some(diff) = difference(image_of(frame), want) {
            failures.push(format!(
                "{}×{} (alpha {}): {diff}",
                frame.width, frame.height, frame.has_alpha
            ));
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("; "))
    }
}

/// One device, then every op list of `cases` on `sizes`; fails listing every difference.
fn assert_gpu_equals_cpu(test: &str, cases: &[Ops], sizes: &[(u32, u32)]) {
    let Some(ctx) = gpu(test) else {
        return;
    };
    let failures: Vec<String> = cases
        .iter()
        .enumerate()
        .filter_map(|(i, ops)| {
            compare_with_cpu(&ctx, ops, sizes, 1000 + 10 * i as u64)
                .err()
                .map(|e| format!("{ops:?}: {e}"))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

// ---- the golden set ---------------------------------------------------------------------

/// One golden conversion: the input frame, what to ask for, and Pillow's answer.
struct Golden {
    id: String,
    mode: ImageMode,
    dither: Dither,
    frame: Frame,
    expected: Vec<u8>,
    /// Pillow's palette bytes (`P` only).
    palette: Option<Vec<u8>>,
}

/// Every golden output of a mode (`1`, `P`, … and `1_nodither`, `P_web_nodither`), with the
/// frame read from its input (RGB inputs widened with A = 255).
fn golden(tags: &[&str]) -> Vec<Golden> {
    common::golden_cases(tags)
        .into_iter()
        .map(|case| Golden {
            palette: case.entry["palette_file"].as_str().map(read_golden),
            frame: Frame::new(
                case.width,
                case.height,
                case.rgba,
                case.has_alpha,
                FrameMeta::still(case.seq as u64, 0),
            ),
            id: case.id,
            mode: case.mode,
            dither: case.dither,
            expected: case.expected,
        })
        .collect()
}

/// The GPU images of golden cases, each (mode, dither) through one backend with all its
/// inputs in flight together, in the cases' order.
fn gpu_images(ctx: &Arc<GpuContext>, cases: &[Golden]) -> Vec<ModeImage> {
    gpu_images_dithering(ctx, cases, false)
}

/// As [`gpu_images`], with `1`'s Floyd–Steinberg in GPU wavefronts when `dither_on_gpu`.
fn gpu_images_dithering(
    ctx: &Arc<GpuContext>,
    cases: &[Golden],
    dither_on_gpu: bool,
) -> Vec<ModeImage> {
    let mut images: Vec<Option<ModeImage>> = vec![None; cases.len()];
    let mut groups: Vec<(ImageMode, Dither)> = Vec::new();
    for key in cases.iter().map(|c| (c.mode, c.dither)) {
        if !groups.contains(&key) {
            groups.push(key);
        }
    }
    for (mode, dither) in groups {
        let which: Vec<usize> = (0..cases.len())
            .filter(|&i| (cases[i].mode, cases[i].dither) == (mode, dither))
            .collect();
        let frames = which.iter().map(|&i| cases[i].frame.clone()).collect();
        let ops = mode_ops(false, &[], mode, dither);
        let done = run_gpu_dithering(ctx, &ops, frames, dither_on_gpu);
        for (i, frame) in which.into_iter().zip(done) {
            images[i] = frame.image;
        }
    }
    images
        .into_iter()
        .zip(cases)
        .map(|(im, c)| im.unwrap_or_else(|| panic!("{}: no image", c.id)))
        .collect()
}

/// Asserts that the GPU gives Pillow's bytes (and palette) for every golden case of `tags`;
/// returns how many cases were checked.
fn assert_gpu_equals_pillow(test: &str, tags: &[&str]) -> usize {
    assert_gpu_dithering_equals_pillow(test, tags, false)
}

/// As [`assert_gpu_equals_pillow`], with `1`'s Floyd–Steinberg in GPU wavefronts when
/// `dither_on_gpu`.
fn assert_gpu_dithering_equals_pillow(test: &str, tags: &[&str], dither_on_gpu: bool) -> usize {
    let Some(ctx) = gpu(test) else {
        return 0;
    };
    let cases = golden(tags);
    let mut failures = Vec::new();
    for (case, im) in cases
        .iter()
        .zip(gpu_images_dithering(&ctx, &cases, dither_on_gpu))
    {
        let got = im.as_bytes();
        if got.as_ref() != case.expected.as_slice() {
            let n = got
                .iter()
                .zip(&case.expected)
                .filter(|(a, b)| a != b)
                .count();
            failures.push(format!(
                "{}: {n} of {} bytes differ (lengths {} and {})",
                case.id,
                case.expected.len(),
                got.len(),
                case.expected.len()
            ));
        }
        let palette = im.palette.as_ref().map(|p| p.as_bytes().to_vec());
        if palette != case.palette {
            failures.push(format!("{}: palette differs", case.id));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    cases.len()
}

#[test]
fn every_golden_mode_output_has_a_gpu_check() {
    // 7 inputs (5 RGB, 2 RGBA) × 13 tags; the tests below cover these tags between them.
    assert_eq!(golden(&common::GOLDEN_MODE_TAGS).len(), 7 * 13);
}

#[test]
fn l_i_and_f_on_the_gpu_equal_pillow_on_every_golden_input() {
    let n = assert_gpu_equals_pillow("l_i_f_golden", &["L", "I", "F"]);
    assert!(n == 0 || n == 21, "{n}");
}

#[test]
fn bilevel_1_on_the_gpu_equals_pillow_with_floyd_steinberg_and_threshold() {
    let n = assert_gpu_equals_pillow("bilevel_golden", &["1", "1_nodither"]);
    assert!(n == 0 || n == 14, "{n}");
}

#[test]
fn bilevel_1_in_gpu_wavefronts_equals_pillow_on_every_golden_input() {
    // Widths 64, 32, 96 and 40 dither in wavefronts; 1 and 3 fall back to the CPU.
    let n = assert_gpu_dithering_equals_pillow("wavefront_golden", &["1"], true);
    assert!(n == 0 || n == 7, "{n}");
}

#[test]
fn p_on_the_gpu_equals_pillow_indices_and_palettes_web_and_octree() {
    let n = assert_gpu_equals_pillow("p_golden", &["P", "P_web_nodither"]);
    assert!(n == 0 || n == 14, "{n}");
}

#[test]
fn rgb_rgba_and_cmyk_on_the_gpu_equal_pillow_on_every_golden_input() {
    let n = assert_gpu_equals_pillow("rgb_rgba_cmyk_golden", &["RGB", "RGBA", "CMYK"]);
    assert!(n == 0 || n == 21, "{n}");
}

#[test]
fn ycbcr_on_the_gpu_equals_pillow_on_every_golden_input() {
    let n = assert_gpu_equals_pillow("ycbcr_golden", &["YCbCr"]);
    assert!(n == 0 || n == 7, "{n}");
}

#[test]
fn hsv_on_the_gpu_equals_pillow_on_every_golden_input() {
    let n = assert_gpu_equals_pillow("hsv_golden", &["HSV"]);
    assert!(n == 0 || n == 7, "{n}");
}

#[test]
fn lab_on_the_gpu_is_within_one_of_pillow_and_equals_the_cpu_on_every_golden_input() {
    let Some(ctx) = gpu("lab_golden") else {
        return;
    };
    let cases = golden(&["LAB"]);
    let (mut pixels, mut differ, mut max) = (0usize, 0usize, 0i32);
    for (case, im) in cases.iter().zip(gpu_images(&ctx, &cases)) {
        let want = cpu_image(
            &mode_ops(false, &[], ImageMode::Lab, Dither::None),
            case.frame.clone(),
        );
        assert_eq!(difference(&im, &want), None, "{}: GPU vs CPU", case.id);
        let got = im.as_bytes();
        assert_eq!(got.len(), case.expected.len(), "{}", case.id);
        for (g, e) in got.chunks_exact(3).zip(case.expected.chunks_exact(3)) {
            // L is unsigned; a and b are two's-complement bytes.
            let d = [
                i32::from(g[0]) - i32::from(e[0]),
                i32::from(g[1] as i8) - i32::from(e[1] as i8),
                i32::from(g[2] as i8) - i32::from(e[2] as i8),
            ];
            max = max.max(d.iter().map(|x| x.abs()).max().unwrap_or(0));
            differ += usize::from(d != [0; 3]);
        }
        pixels += got.len() / 3;
    }
    println!("LAB on the GPU: {differ} of {pixels} golden pixels differ from LittleCMS by 1");
    assert!(max <= 1, "LAB off Pillow by {max}");
}

// ---- random frames against the CPU processor ----------------------------------------------

/// One pixel, an odd shape, a common odd-width screen.
const SMALL_SIZES: [(u32, u32); 3] = [(1, 1), (3, 7), (1366, 768)];

/// Mode × dither pairs: every mode, `1` and `P` with both dithers.
fn every_mode_and_dither() -> Vec<(ImageMode, Dither)> {
    let mut all = Vec::new();
    for mode in ImageMode::ALL {
        all.push((mode, Dither::FloydSteinberg));
        if mode.takes_dither() {
            all.push((mode, Dither::None));
        }
    }
    all
}

/// Mirror and one filter before each conversion, the filter changing from mode to mode.
fn mirrored_and_filtered(modes: &[(ImageMode, Dither)]) -> Vec<Ops> {
    modes
        .iter()
        .enumerate()
        .map(|(i, &(mode, dither))| {
            let filter = Filter::ALL[i % Filter::ALL.len()];
            mode_ops(true, &[filter], mode, dither)
        })
        .collect()
}

#[test]
fn point_modes_on_the_gpu_equal_the_cpu_after_mirror_and_a_filter_on_1x1_3x7_and_1366x768() {
    let modes: Vec<_> = every_mode_and_dither()
        .into_iter()
        .filter(|&(m, d)| m.is_pointwise(d) && m != ImageMode::Lab)
        .collect();
    assert_eq!(modes.len(), 10);
    assert_gpu_equals_cpu("point_modes", &mirrored_and_filtered(&modes), &SMALL_SIZES);
}

#[test]
fn lab_on_the_gpu_equals_the_cpu_after_mirror_and_sepia_on_1x1_3x7_and_1366x768() {
    let ops = mode_ops(true, &[Filter::Sepia], ImageMode::Lab, Dither::None);
    assert_gpu_equals_cpu("lab_small", &[ops], &SMALL_SIZES);
}

#[test]
fn dithered_1_and_p_on_the_gpu_equal_the_cpu_after_mirror_and_a_filter() {
    let ops = [
        mode_ops(
            true,
            &[Filter::Invert],
            ImageMode::One,
            Dither::FloydSteinberg,
        ),
        mode_ops(
            true,
            &[Filter::SepiaNorm],
            ImageMode::P,
            Dither::FloydSteinberg,
        ),
        // RGBA sources (the 1×1 and 1366×768 frames) quantize P with the octree.
        mode_ops(true, &[Filter::Sepia], ImageMode::P, Dither::None),
    ];
    assert_gpu_equals_cpu("dithered", &ops, &SMALL_SIZES);
}

#[test]
fn l_rgb_hsv_and_f_on_the_gpu_equal_the_cpu_on_3840x2160() {
    let ops = [
        mode_ops(true, &[Filter::Sepia], ImageMode::L, Dither::None),
        mode_ops(true, &[Filter::Invert], ImageMode::Rgb, Dither::None),
        mode_ops(false, &[Filter::SepiaNorm], ImageMode::Hsv, Dither::None),
        mode_ops(true, &[Filter::Grayscale], ImageMode::F, Dither::None),
    ];
    assert_gpu_equals_cpu("4k_point", &ops, &[(3840, 2160)]);
}

/// The other packed and wide modes at 4K: RGBA (alpha kept), CMYK, I (4 bytes a pixel), `1`
/// without dithering, and P with Floyd–Steinberg (dithered on the CPU after the GPU pass).
#[test]
fn rgba_cmyk_i_1_and_dithered_p_on_the_gpu_equal_the_cpu_on_3840x2160() {
    let ops = [
        mode_ops(true, &[Filter::Sepia], ImageMode::Rgba, Dither::None),
        mode_ops(false, &[Filter::Invert], ImageMode::Cmyk, Dither::None),
        mode_ops(true, &[Filter::SepiaNorm], ImageMode::I, Dither::None),
        mode_ops(true, &[Filter::Sepia], ImageMode::One, Dither::None),
        mode_ops(
            false,
            &[Filter::Sepia],
            ImageMode::P,
            Dither::FloydSteinberg,
        ),
    ];
    assert_gpu_equals_cpu("4k_wide", &ops, &[(3840, 2160)]);
}

#[test]
fn lab_on_the_gpu_equals_the_cpu_on_3840x2160() {
    let ops = mode_ops(true, &[Filter::Sepia], ImageMode::Lab, Dither::None);
    assert_gpu_equals_cpu("4k_lab", &[ops], &[(3840, 2160)]);
}

#[test]
fn floyd_steinberg_1_on_the_gpu_equals_the_cpu_on_3840x2160() {
    let ops = mode_ops(
        true,
        &[Filter::Sepia],
        ImageMode::One,
        Dither::FloydSteinberg,
    );
    assert_gpu_equals_cpu("4k_dither", &[ops], &[(3840, 2160)]);
}

#[test]
fn floyd_steinberg_1_in_gpu_wavefronts_equals_the_cpu_on_odd_sizes_and_3840x2160() {
    let Some(ctx) = gpu("wavefront") else {
        return;
    };
    let ops = mode_ops(
        true,
        &[Filter::SepiaNorm],
        ImageMode::One,
        Dither::FloydSteinberg,
    );
    // Widths that are multiples of 4 run in waves (1 row, 1 block wide, a tall thin frame,
    // 4K); 1366 and 3 fall back to the CPU in the same ring.
    let sizes = [
        (4, 1),
        (8, 3),
        (4, 300),
        (1366, 768),
        (1364, 768),
        (3, 7),
        (3840, 2160),
    ];
    if let Err(err) = compare_with_cpu_dithering(&ctx, &ops, &sizes, 77, true) {
        panic!("{err}");
    }
}

/// A 4096 × 4096 frame holding every RGB colour once, `r` fastest.
fn every_colour_frame() -> Frame {
    let rgba: Vec<u8> = (0..1u32 << 24)
        .flat_map(|n| {
            let [r, g, b, _] = n.to_le_bytes();
            [r, g, b, 255]
        })
        .collect();
    Frame::new(4096, 4096, rgba, false, FrameMeta::still(0, 0))
}

#[test]
fn every_rgb_colour_converts_on_the_gpu_as_on_the_cpu() {
    let Some(ctx) = gpu("every_colour") else {
        return;
    };
    let frame = every_colour_frame();
    let mut failures = Vec::new();
    for mode in [
        ImageMode::L,
        ImageMode::F,
        ImageMode::YCbCr,
        ImageMode::Hsv,
        ImageMode::Lab,
        ImageMode::P,
    ] {
        let ops = mode_ops(false, &[], mode, Dither::None);
        let want = cpu_image(&ops, frame.clone());
        let got = run_gpu(&ctx, &ops, vec![frame.clone()]);
        if let Some(diff) = difference(image_of(&got[0]), &want) {
            failures.push(format!("{mode}: {diff}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

// ---- the ring with a mode ---------------------------------------------------------------

#[test]
fn frames_of_different_sizes_in_flight_with_a_mode_come_back_in_order_with_reused_buffers() {
    let Some(ctx) = gpu("in_flight") else {
        return;
    };
    // P without dither: RGB sources pack on the GPU, RGBA sources come back as RGBA for the
    // octree, so the slots switch between both outputs.
    let ops = mode_ops(true, &[Filter::Sepia], ImageMode::P, Dither::None);
    let mut gpu = GpuBackend::new(Arc::clone(&ctx), &ops, 3).expect("kernels compile");
    let sizes = [
        (5, 5),
        (640, 480),
        (1, 1),
        (1366, 768),
        (3, 7),
        (800, 600),
        (2, 9),
    ];
    let mut wanted = Vec::new();
    let mut collected = Vec::new();
    for (seq, &(w, h)) in sizes.iter().enumerate() {
        let frame = random_frame(w, h, seq as u64, seq % 3 == 1);
        wanted.push(cpu_image(&ops, frame.clone()));
        gpu.schedule(frame).expect("scheduled");
        if gpu.pending() == gpu.capacity() {
            collected.push(gpu.collect(true).expect("collected").expect("ring full"));
        }
    }
    while let Some(frame) = gpu.collect(true).expect("collected") {
        collected.push(frame);
    }
    let seqs: Vec<u64> = collected.iter().map(|f| f.meta.seq).collect();
    assert_eq!(seqs, (0..sizes.len() as u64).collect::<Vec<_>>());
    for (frame, want) in collected.iter().zip(&wanted) {
        if let Some(diff) = difference(image_of(frame), want) {
            panic!(
                "frame {} ({}×{}): {diff}",
                frame.meta.seq, frame.width, frame.height
            );
        }
    }
    // As for RGBA output: 3 first allocations, then 1366×768 and 800×600 grow their slots.
    assert_eq!(gpu.buffer_allocations(), 5);
}

#[test]
fn packed_images_are_sized_exactly_and_typed_per_mode() {
    let Some(ctx) = gpu("sized_exactly") else {
        return;
    };
    // 3 × 7 = 21 pixels: not a multiple of 4, so every packing has a partial last word.
    for (mode, want) in [
        (ImageMode::L, 21),
        (ImageMode::Rgb, 63),
        (ImageMode::Cmyk, 84),
        (ImageMode::I, 21),
        (ImageMode::F, 21),
    ] {
        let ops = mode_ops(false, &[], mode, Dither::None);
        let got = run_gpu(&ctx, &ops, vec![random_frame(3, 7, 5, false)]);
        let im = image_of(&got[0]);
        assert_eq!(im.data.len(), want, "{mode}");
        match (&im.data, mode) {
            (ModeData::I32(_), ImageMode::I)
            | (ModeData::F32(_), ImageMode::F)
            | (ModeData::U8(_), _) => {}
            (other, _) => panic!("{mode}: {other:?}"),
        }
        assert_eq!(im.shape()[..2], [7, 3]);
    }
}

#[test]
fn rgba_from_an_rgb_source_has_alpha_255_whatever_the_buffer_holds() {
    let Some(ctx) = gpu("rgba_alpha") else {
        return;
    };
    let ops = mode_ops(false, &[], ImageMode::Rgba, Dither::None);
    let rgba = common::random_rgba(5, 3, 9);
    let rgb_source = Frame::new(5, 3, rgba.clone(), false, FrameMeta::still(0, 0));
    let rgba_source = Frame::new(5, 3, rgba.clone(), true, FrameMeta::still(1, 0));
    let got = run_gpu(&ctx, &ops, vec![rgb_source, rgba_source]);
    let want: Vec<u8> = rgba
        .chunks_exact(4)
        .flat_map(|p| [p[0], p[1], p[2], 255])
        .collect();
    assert_eq!(image_of(&got[0]).as_bytes().as_ref(), want.as_slice());
    assert_eq!(image_of(&got[1]).as_bytes().as_ref(), rgba.as_slice());
}

#[test]
fn empty_frames_and_frames_without_a_mode_keep_the_cpu_behaviour() {
    let Some(ctx) = gpu("empty_and_none") else {
        return;
    };
    let ops = mode_ops(false, &[Filter::Invert], ImageMode::Hsv, Dither::None);
    let empty = Frame::new(0, 4, Vec::new(), false, FrameMeta::still(0, 0));
    let got = run_gpu(&ctx, &ops, vec![empty.clone()]);
    assert_eq!(difference(image_of(&got[0]), &cpu_image(&ops, empty)), None);
    // Written in place and lent, an empty frame is an empty image in the mode.
    let mut gpu = Processor::new(Some(Arc::clone(&ctx)), &ops, 2).expect("GPU processor");
    gpu.schedule_with(0, 4, false, FrameMeta::still(1, 0), |dst| {
        assert!(dst.is_empty())
    })
    .expect("an empty frame schedules");
    let lent = gpu.collect_with(true, |f| (f.mode, f.width, f.height, f.bytes.len()));
    assert_eq!(
        lent.expect("collect_with"),
        Some((Some(ImageMode::Hsv), 0, 4, 0))
    );
    // Without a mode the RGBA result stays in `rgba` and there is no image.
    let ops = Ops::new(true, vec![Filter::Invert]);
    let frame = random_frame(9, 4, 3, true);
    let got = run_gpu(&ctx, &ops, vec![frame.clone()]);
    assert!(got[0].image.is_none());
    let mut want = frame.rgba;
    shutter::ops::cpu::apply(&ops, 9, 4, &mut want);
    assert_eq!(got[0].rgba, want);
}

// ---- pixels written and read in place ---------------------------------------------------

/// A lent output, kept: size, mode, bytes, palette.
type Output = (u32, u32, Option<ImageMode>, Vec<u8>, Option<Palette>);

fn keep(f: FinishedFrame<'_>) -> (u64, Output) {
    let out = (
        f.width,
        f.height,
        f.mode,
        f.bytes.to_vec(),
        f.palette.cloned(),
    );
    (f.meta.seq, out)
}

/// Runs `frames` through `processor`, scheduling even ones with `schedule_with` (the pixels
/// written into the upload buffer) and odd ones with `schedule`, collecting every third with
/// `collect` and the others with `collect_with`. At most `capacity` frames are pending, except
/// that frame 3 is scheduled into a full ring (which makes it copy the oldest frame back).
fn run_mixed(processor: &mut Processor, frames: &[Frame]) -> Vec<(u64, Output)> {
    let mut out = Vec::new();
    let mut collected = 0;
    let mut collect = |p: &mut Processor| {
        let got = if collected % 3 == 2 {
            p.collect(true)
                .expect("collect")
                .map(|frame| frame.lend(keep))
        } else {
            p.collect_with(true, keep).expect("collect_with")
        };
        collected += 1;
        out.push(got.expect("a frame is pending"));
    };
    for (i, frame) in frames.iter().enumerate() {
        if processor.pending() == processor.capacity() && i != 3 {
            collect(processor);
        }
        let result = if i % 2 == 0 {
            processor.schedule_with(
                frame.width,
                frame.height,
                frame.has_alpha,
                frame.meta.clone(),
                |mut dst| dst.copy_from_slice(&frame.rgba),
            )
        } else {
            processor.schedule(frame.clone())
        };
        result.expect("schedule");
    }
    while processor.pending() > 0 {
        collect(processor);
    }
    out
}

#[test]
fn pixels_written_into_and_read_from_the_rings_buffers_equal_the_copying_path() {
    let Some(ctx) = gpu("in_place") else {
        return;
    };
    let mut cases = vec![Ops::new(true, vec![Filter::Sepia])];
    cases.extend(mirrored_and_filtered(&every_mode_and_dither()));
    let sizes = [(1, 1), (3, 7), (1366, 768), (64, 33), (5, 2), (3, 7)];
    let mut failures = Vec::new();
    for (i, ops) in cases.iter().enumerate() {
        // Large frames only where they are quick on the CPU (no mode, and RGB).
        let big = ops.mode.is_none() || ops.mode == Some(ImageMode::Rgb);
        let frames: Vec<Frame> = sizes
            .iter()
            .enumerate()
            .map(|(k, &(w, h))| {
                let (w, h) = if big || w < 1000 { (w, h) } else { (31, 17) };
                let mut frame = random_frame(w, h, 7000 + 10 * i as u64 + k as u64, k % 2 == 1);
                frame.meta.seq = k as u64;
                frame
            })
            .collect();
        let mut cpu = Processor::new(None, ops, 1).expect("the CPU processor opens");
        let want = run_mixed(&mut cpu, &frames);
        let uploads: &[Upload] = if ops.mode.is_none() {
            &[Upload::Staging, Upload::WriteBuffer]
        } else {
            &[Upload::Staging]
        };
        for &upload in uploads {
            let mut gpu = Processor::new(Some(Arc::clone(&ctx)), ops, 2).expect("GPU processor");
            assert!(gpu.is_gpu());
            gpu.gpu().expect("a GPU backend").set_upload(upload);
            let got = run_mixed(&mut gpu, &frames);
            assert_eq!(got.len(), frames.len());
            for ((seq, g), (_, w)) in got.iter().zip(&want) {
                if g != w {
                    let first = g.3.iter().zip(&w.3).position(|(a, b)| a != b);
                    failures.push(format!(
                        "{ops:?} {upload:?} frame {seq}: got {}×{} {:?} {} bytes, \
                         want {}×{} {:?} {} bytes, first difference at byte {first:?}",
                        g.0,
                        g.1,
                        g.2,
                        g.3.len(),
                        w.0,
                        w.1,
                        w.2,
                        w.3.len()
                    ));
                }
            }
            let order: Vec<u64> = got.iter().map(|(seq, _)| *seq).collect();
            assert_eq!(order, (0..frames.len() as u64).collect::<Vec<_>>());
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_reader_or_writer_that_panics_leaves_the_ring_whole() {
    let Some(ctx) = gpu("reader_panics") else {
        return;
    };
    let ops = Ops::new(true, vec![Filter::Sepia]);
    let frame = random_frame(33, 9, 5, false);
    let mut want = frame.rgba.clone();
    shutter::ops::cpu::apply(&ops, 33, 9, &mut want);
    // One slot: had the panic kept it, the next `schedule` would wait for it forever, so the
    // rest runs on a thread and the test fails if it does not finish.
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut gpu = Processor::new(Some(ctx), &ops, 1).expect("GPU processor");
        let fill = |mut dst: wgpu::WriteOnly<'_, [u8]>| dst.copy_from_slice(&frame.rgba);
        let meta = FrameMeta::still(0, 0);
        gpu.schedule_with(33, 9, false, meta.clone(), fill)
            .expect("schedule");
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            gpu.collect_with(true, |_| -> () { panic!("the reader fails") })
        }));
        assert!(panicked.is_err());
        // And a writer that panics half-way through the frame.
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            gpu.schedule_with(33, 9, false, meta.clone(), |mut dst| {
                dst.slice(..100).copy_from_slice(&frame.rgba[..100]);
                panic!("the writer fails")
            })
        }));
        assert!(panicked.is_err());
        assert_eq!(gpu.pending(), 0);
        let mut outputs = Vec::new();
        for _ in 0..3 {
            gpu.schedule_with(33, 9, false, meta.clone(), fill)
                .expect("schedule after the panic");
            let out = gpu.collect_with(true, |f| f.bytes.to_vec());
            outputs.push(out.expect("collect after the panic").expect("a frame"));
        }
        done.send(outputs).expect("the test waits");
    });
    let outputs = finished
        .recv_timeout(std::time::Duration::from_secs(120))
        .expect("frames after a panicking reader never came back");
    for out in outputs {
        assert_eq!(out, want);
    }
}

// ---- RGB frames uploaded at 3 bytes a pixel ---------------------------------------------

#[test]
fn rgb_frames_uploaded_at_3_bytes_a_pixel_equal_the_widened_frames_in_every_mode() {
    let Some(ctx) = gpu("rgb_upload") else {
        return;
    };
    let mut cases = vec![Ops::default(), Ops::new(true, vec![Filter::SepiaNorm])];
    cases.extend(mirrored_and_filtered(&every_mode_and_dither()));
    let sizes = [(1, 1), (3, 7), (64, 33), (5, 2), (1366, 768), (2, 3)];
    let mut failures = Vec::new();
    for (i, ops) in cases.iter().enumerate() {
        let big = ops.mode.is_none() || ops.mode == Some(ImageMode::Rgb);
        let frames: Vec<Frame> = sizes
            .iter()
            .enumerate()
            .map(|(k, &(w, h))| {
                let (w, h) = if big || w < 1000 { (w, h) } else { (31, 17) };
                let mut frame = random_frame(w, h, 9000 + 10 * i as u64 + k as u64, false);
                frame.meta.seq = k as u64;
                frame
            })
            .collect();
        // What the CPU makes of the frames widened to RGBA (A = 255, an RGB source).
        let mut cpu = Processor::new(None, ops, 1).expect("the CPU processor opens");
        let want: Vec<(u64, Output)> = frames
            .iter()
            .map(|frame| {
                cpu.schedule(frame.clone()).expect("CPU schedule");
                cpu.collect_with(true, keep)
                    .expect("CPU collect")
                    .expect("a frame")
            })
            .collect();
        let wavefronts: &[bool] = if ops.dither == Dither::FloydSteinberg {
            &[false, true]
        } else {
            &[false]
        };
        for &on_gpu in wavefronts {
            let mut gpu = GpuBackend::new(Arc::clone(&ctx), ops, 2).expect("GPU backend");
            gpu.set_dither_on_gpu(on_gpu);
            let mut got = Vec::new();
            for (k, frame) in frames.iter().enumerate() {
                if gpu.pending() == gpu.capacity() {
                    got.push(
                        gpu.collect_with(true, keep)
                            .expect("collect")
                            .expect("frame"),
                    );
                }
                let rgb: Vec<u8> = frame
                    .rgba
                    .chunks(4)
                    .flat_map(|p| [p[0], p[1], p[2]])
                    .collect();
                let (w, h, meta) = (frame.width, frame.height, frame.meta.clone());
                let result = if k % 2 == 0 {
                    gpu.schedule_rgb_with(w, h, meta, |mut dst| dst.copy_from_slice(&rgb))
                } else {
                    gpu.schedule_rgb(w, h, &rgb, meta)
                };
                result.unwrap_or_else(|e| panic!("{ops:?}: {e}"));
            }
            while gpu.pending() > 0 {
                let frame = if got.len() % 3 == 2 {
                    gpu.collect(true).expect("collect").map(|f| f.lend(keep))
                } else {
                    gpu.collect_with(true, keep).expect("collect")
                };
                got.push(frame.expect("a frame is pending"));
            }
            for ((seq, g), (_, w)) in got.iter().zip(&want) {
                if g != w {
                    let first = g.3.iter().zip(&w.3).position(|(a, b)| a != b);
                    failures.push(format!(
                        "{ops:?} (wavefronts {on_gpu}) frame {seq}: got {}×{} {:?} {} bytes, \
                         want {} bytes, first difference at byte {first:?}",
                        g.0,
                        g.1,
                        g.2,
                        g.3.len(),
                        w.3.len()
                    ));
                }
            }
            assert_eq!(got.len(), frames.len());
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

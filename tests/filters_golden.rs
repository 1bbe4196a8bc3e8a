//! The filters against numpy's values for the Gradio sepia demo on `grad64x48`, and against
//! Pillow's `ImageOps.grayscale` (its `L`) and `ImageOps.invert` on every golden input
//! (`tests/data/golden/`, made by its `make_golden.py`), on both backends.

mod common;

use shutter::backend::Processor;
use shutter::frame::{Frame, FrameMeta};
use shutter::ops::{Filter, Ops};

const W: u32 = 64;
const H: u32 = 48;

fn golden(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/data/golden/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The numpy demo's float output (`img.dot(M.T) / max`), f64 little-endian, H×W×3.
fn numpy_sepia_norm() -> Vec<f64> {
    golden("grad64x48__sepia.bin")
        .chunks_exact(8)
        .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")))
        .collect()
}

/// The raw maximum numpy divided by, as the manifest records it in the sepia entry's note.
fn numpy_raw_max() -> f64 {
    let manifest = String::from_utf8(golden("manifest.json")).expect("utf-8 manifest");
    let key = "raw max before division = ";
    let at = manifest.find(key).expect("manifest records the raw max") + key.len();
    let digits: String = manifest[at..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    digits.parse().expect("a number")
}

fn input_frame() -> Frame {
    let rgb = golden("input_grad64x48.bin");
    let rgba = rgb
        .chunks_exact(3)
        .flat_map(|p| [p[0], p[1], p[2], 255])
        .collect();
    Frame::new(W, H, rgba, false, FrameMeta::still(0, 0))
}

/// Every processor the machine has: the CPU reference and, when there is an adapter, the GPU.
fn processors(ops: &Ops, test: &str) -> Vec<(&'static str, Processor)> {
    let mut out = vec![("cpu", Processor::new(None, ops, 1).expect("cpu processor"))];
    if let Some(ctx) = common::gpu_or_skip(test) {
        out.push((
            "gpu",
            Processor::new(Some(ctx), ops, 2).expect("gpu processor"),
        ));
    }
    out
}

fn assert_within_one(name: &str, got: &[u8], want: &[i64]) {
    assert_eq!(got.len(), want.len());
    let worst = got
        .iter()
        .zip(want)
        .map(|(&g, &w)| (i64::from(g) - w).abs())
        .max()
        .unwrap_or(0);
    assert!(worst <= 1, "{name}: differs from numpy by {worst}");
}

fn rgb_of(frame: &Frame) -> Vec<u8> {
    frame.to_rgb()
}

#[test]
fn sepia_equals_numpy_clip_rint_of_img_dot_m_transpose() {
    let raw_max = numpy_raw_max();
    let want: Vec<i64> = numpy_sepia_norm()
        .iter()
        .map(|v| (v * raw_max).round_ties_even().clamp(0.0, 255.0) as i64)
        .collect();
    let ops = Ops {
        mirror: false,
        filters: vec![Filter::Sepia],
        ..Default::default()
    };
    for (name, mut p) in processors(&ops, "sepia_golden") {
        let out = p.process(input_frame()).expect("process");
        assert_within_one(name, &rgb_of(&out), &want);
    }
}

#[test]
fn sepia_norm_equals_the_gradio_demo_after_gradio_rounding() {
    let want: Vec<i64> = numpy_sepia_norm()
        .iter()
        .map(|v| (v * 255.0).round_ties_even() as i64)
        .collect();
    assert!(want.contains(&255), "the brightest value maps to 255");
    let ops = Ops {
        mirror: false,
        filters: vec![Filter::SepiaNorm],
        ..Default::default()
    };
    for (name, mut p) in processors(&ops, "sepia_norm_golden") {
        let out = p.process(input_frame()).expect("process");
        assert_within_one(name, &rgb_of(&out), &want);
    }
}

#[test]
fn mirror_equals_pillow_imageops_mirror_exactly() {
    let want = golden("grad64x48__mirror.bin");
    let ops = Ops {
        mirror: true,
        filters: vec![],
        ..Default::default()
    };
    for (name, mut p) in processors(&ops, "mirror_golden") {
        let out = p.process(input_frame()).expect("process");
        assert_eq!(rgb_of(&out), want, "{name}");
    }
}

/// Runs `filter` on every golden input (odd sizes, 1×1, RGBA) on each processor, and checks
/// the RGBA frame it gives against `want` of the case.
fn check_on_golden_inputs(
    filter: Filter,
    test: &str,
    want: impl Fn(&common::GoldenCase) -> Vec<u8>,
) {
    let ops = Ops::new(false, vec![filter]);
    // Each input once: its `L` output is the one `want` may use.
    let cases = common::golden_cases(&["L"]);
    assert_eq!(cases.len(), 7);
    for (name, mut p) in processors(&ops, test) {
        for case in &cases {
            let frame = Frame::new(
                case.width,
                case.height,
                case.rgba.clone(),
                case.has_alpha,
                FrameMeta::still(0, 0),
            );
            let out = p.process(frame).expect("process");
            assert_eq!(out.rgba, want(case), "{name}: {}", case.id);
        }
    }
}

/// `grayscale` is Pillow's `ImageOps.grayscale` (`convert("L")`) in each colour band, alpha
/// kept: checked against Pillow's own `L` of every golden input.
#[test]
fn grayscale_equals_pillow_convert_l_in_each_band() {
    check_on_golden_inputs(Filter::Grayscale, "grayscale_golden", |case| {
        case.expected
            .iter()
            .zip(case.rgba.chunks_exact(4))
            .flat_map(|(&l, px)| [l, l, l, px[3]])
            .collect()
    });
}

/// `invert` is Pillow's `ImageOps.invert`, 255 − v in each colour band, alpha kept, on every
/// golden input.
#[test]
fn invert_is_255_minus_each_colour_band() {
    check_on_golden_inputs(Filter::Invert, "invert_golden", |case| {
        case.rgba
            .chunks_exact(4)
            .flat_map(|px| [255 - px[0], 255 - px[1], 255 - px[2], px[3]])
            .collect()
    });
}

//! `mode::cpu::convert` against Pillow 13.0's own output: every input × mode of the golden set
//! in `tests/data/golden/` (made by its `make_golden.py`, run as
//! `python3 tests/data/golden/make_golden.py tests/data/golden` with Pillow and numpy; see its
//! `manifest.json`: the sepia demo's floats may differ by a few ulp with another BLAS).

mod common;

use common::{golden_manifest, num_of, read_golden, str_of};
use serde_json::Value;
use shutter::mode::cpu::convert;
use shutter::mode::pixel::{YCBCR_COEF, YCBCR_TABLES, hsv_tables};
use shutter::mode::{Dtype, FrameArray, ImageMode, ModeImage};

use common::GoldenCase as Case;

impl Case {
    fn convert(&self) -> ModeImage {
        convert(
            self.mode,
            self.dither,
            self.width,
            self.height,
            &self.rgba,
            self.has_alpha,
        )
    }
}

/// Every golden case whose tag is in `tags`.
fn cases(tags: &[&str]) -> Vec<Case> {
    common::golden_cases(tags)
}

/// Asserts byte equality, naming the first differing pixel.
fn assert_exact(case: &Case, got: &[u8]) {
    assert_eq!(got.len(), case.expected.len(), "{}: length", case.id);
    if let Some(i) = got.iter().zip(&case.expected).position(|(a, b)| a != b) {
        let bpp = case.expected.len() / (case.width * case.height) as usize;
        let p = i / bpp;
        let (x, y) = (p % case.width as usize, p / case.width as usize);
        let n = got
            .iter()
            .zip(&case.expected)
            .filter(|(a, b)| a != b)
            .count();
        panic!(
            "{}: {n} bytes differ; first at pixel ({x}, {y}) input {:?}: got {:?}, Pillow {:?}",
            case.id,
            &case.rgba[p * 4..p * 4 + 4],
            &got[p * bpp..(p + 1) * bpp],
            &case.expected[p * bpp..(p + 1) * bpp]
        );
    }
}

fn check_exact(tags: &[&str]) -> usize {
    let all = cases(tags);
    for case in &all {
        assert_exact(case, &case.convert().as_bytes());
    }
    all.len()
}

#[test]
fn every_golden_mode_output_is_covered() {
    let man = golden_manifest();
    for e in man["outputs"].as_array().expect("outputs") {
        let id = str_of(e, "id");
        let tag = id.split_once("__").map_or("", |(_, t)| t);
        assert!(
            common::GOLDEN_MODE_TAGS.contains(&tag) || tag == "mirror" || tag == "sepia",
            "untested golden output {id}"
        );
    }
    assert_eq!(cases(&common::GOLDEN_MODE_TAGS).len(), 7 * 13);
}

#[test]
fn luma_modes_l_i_f_match_pillow_exactly() {
    assert_eq!(check_exact(&["L", "I", "F"]), 21);
}

#[test]
fn bilevel_1_matches_pillow_with_floyd_steinberg_and_threshold() {
    assert_eq!(check_exact(&["1", "1_nodither"]), 14);
}

#[test]
fn channel_copies_rgb_rgba_cmyk_match_pillow_exactly() {
    assert_eq!(check_exact(&["RGB", "RGBA", "CMYK"]), 21);
}

#[test]
fn ycbcr_matches_pillow_exactly() {
    assert_eq!(check_exact(&["YCbCr"]), 7);
}

#[test]
fn hsv_matches_pillow_exactly_directly_and_through_tables() {
    assert_eq!(check_exact(&["HSV"]), 7);
    let t = hsv_tables();
    for case in cases(&["HSV"]) {
        let got: Vec<u8> = case
            .rgba
            .chunks_exact(4)
            .flat_map(|p| t.pixel(p[0], p[1], p[2]))
            .collect();
        assert_exact(&case, &got);
    }
}

#[test]
fn p_web_palette_matches_pillow_indices_and_palette() {
    let all: Vec<Case> = cases(&["P", "P_web_nodither"])
        .into_iter()
        .filter(|c| !c.has_alpha)
        .collect();
    assert_eq!(all.len(), 10);
    for case in &all {
        let im = case.convert();
        assert_exact(case, &im.as_bytes());
        let pal = im.palette.expect("P has a palette");
        assert_eq!(
            pal.mode(),
            str_of(&case.entry, "palette_mode"),
            "{}",
            case.id
        );
        assert_eq!(pal.len(), num_of(&case.entry, "palette_entries") as usize);
        assert_eq!(
            pal.as_bytes(),
            read_golden(str_of(&case.entry, "palette_file")),
            "{}",
            case.id
        );
    }
}

#[test]
fn rgba_source_p_matches_pillow_octree_quantize() {
    let all: Vec<Case> = cases(&["P", "P_web_nodither"])
        .into_iter()
        .filter(|c| c.has_alpha)
        .collect();
    assert_eq!(all.len(), 4);
    for case in &all {
        let im = case.convert();
        let pal = im.palette.as_ref().expect("P has a palette");
        assert_eq!(pal.mode(), "RGBA", "{}", case.id);
        assert_eq!(pal.len(), num_of(&case.entry, "palette_entries") as usize);
        let expected = read_golden(str_of(&case.entry, "palette_file"));
        if pal.as_bytes() != expected {
            let n = pal
                .as_bytes()
                .chunks(4)
                .zip(expected.chunks(4))
                .filter(|(a, b)| a != b)
                .count();
            panic!("{}: {n} palette entries differ", case.id);
        }
        assert_exact(case, &im.as_bytes());
    }
}

#[test]
fn lab_is_within_one_of_littlecms() {
    let (mut pixels, mut differ, mut max) = (0usize, 0usize, [0i32; 3]);
    let mut per_channel = [0usize; 3];
    for case in cases(&["LAB"]) {
        let got = case.convert();
        let got = got.as_bytes();
        assert_eq!(got.len(), case.expected.len(), "{}", case.id);
        let mut case_differ = 0;
        for (g, e) in got.chunks_exact(3).zip(case.expected.chunks_exact(3)) {
            // L is unsigned; a and b are two's-complement bytes.
            let d = [
                i32::from(g[0]) - i32::from(e[0]),
                i32::from(g[1] as i8) - i32::from(e[1] as i8),
                i32::from(g[2] as i8) - i32::from(e[2] as i8),
            ];
            for k in 0..3 {
                max[k] = max[k].max(d[k].abs());
                per_channel[k] += usize::from(d[k] != 0);
            }
            case_differ += usize::from(d != [0; 3]);
        }
        println!(
            "{}: {case_differ} of {} pixels differ by 1",
            case.id,
            got.len() / 3
        );
        pixels += got.len() / 3;
        differ += case_differ;
    }
    println!(
        "LAB: {differ} of {pixels} pixels differ from LittleCMS (L {}, a {}, b {} values); max |diff| {max:?}",
        per_channel[0], per_channel[1], per_channel[2]
    );
    assert!(
        max.iter().all(|&m| m <= 1),
        "LAB off by more than 1: {max:?}"
    );
}

#[test]
fn arrays_have_the_manifest_shape_bands_and_dtype() {
    for case in cases(&common::GOLDEN_MODE_TAGS) {
        let im = case.convert();
        let (h, w) = (case.height as usize, case.width as usize);
        let bands = num_of(&case.entry, "bands") as usize;
        assert_eq!(case.mode.bands(), bands, "{}", case.id);
        let names: Vec<&str> = case.entry["band_names"]
            .as_array()
            .expect("band_names")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(case.mode.band_names(), names.as_slice(), "{}", case.id);
        let want_shape = if bands == 1 {
            vec![h, w]
        } else {
            vec![h, w, bands]
        };
        let arr = im.to_array();
        assert_eq!(arr.shape(), want_shape.as_slice(), "{}", case.id);
        let dtype = match str_of(&case.entry, "dtype") {
            "u8" if case.mode == ImageMode::One => Dtype::Bool,
            "u8" => Dtype::U8,
            "i32" => Dtype::I32,
            "f32" => Dtype::F32,
            other => panic!("{}: dtype {other}", case.id),
        };
        assert_eq!(arr.dtype(), dtype, "{}", case.id);
        assert_eq!(case.mode.dtype(), dtype, "{}", case.id);
        if let FrameArray::Bool(a) = &arr {
            // The bool array is the golden 0/255 bytes.
            let bytes: Vec<u8> = a.iter().map(|&b| if b { 255 } else { 0 }).collect();
            assert_eq!(bytes, case.expected, "{}", case.id);
        }
    }
}

#[test]
fn ycbcr_tables_equal_pillow_tables_json() {
    let json: Value = serde_json::from_slice(&read_golden("ycbcr_tables.json"))
        .expect("ycbcr_tables.json is JSON");
    for (k, (name, _)) in YCBCR_COEF.iter().enumerate() {
        let want: Vec<i64> = json[*name]
            .as_array()
            .unwrap_or_else(|| panic!("table {name} missing"))
            .iter()
            .filter_map(Value::as_i64)
            .collect();
        let got: Vec<i64> = YCBCR_TABLES[k].iter().map(|&v| i64::from(v)).collect();
        assert_eq!(got, want, "table {name}");
    }
}

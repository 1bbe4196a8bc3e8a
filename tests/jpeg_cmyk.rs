//! Four-component JPEGs (CMYK, and Adobe's YCCK) open as Pillow's `CMYK`, with the file's own
//! inks, instead of as RGB (`tests/data/jpeg_cmyk/`, Pillow's arrays made by its
//! `make_jpeg_cmyk.py`). JPEG decoders differ by a level or two (zune-jpeg is not libjpeg-turbo),
//! so the inks are compared within a tolerance; every conversion after that is exact, checked
//! against the same inks opened from a CMYK TIFF.

mod common;

use std::path::{Path, PathBuf};

use common::{s, shutter, stderr};
use shutter::mode::source::SourceMode;
use shutter::source::DecodeLimits;
use shutter::source::file::decode_path;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/jpeg_cmyk")
}

/// The files and how far zune-jpeg may be from libjpeg-turbo on them, at most and on average:
/// `cmyk.jpg` is Pillow's own (every component at full resolution), `ycck.jpg` jpeg-encoder's
/// YCCK with Cb and Cr subsampled 2×2, where the two decoders' upsampling differs.
const FILES: [(&str, u8, f64); 2] = [("cmyk.jpg", 1, 0.05), ("ycck.jpg", 2, 0.5)];

fn inks_of(file: &str) -> (u32, u32, Vec<[u8; 4]>, Vec<u8>) {
    let path = dir().join(file);
    let mut frames = decode_path(file, &path, &DecodeLimits::default()).expect("decodes");
    let frame = frames.next().expect("a frame").expect("decodes");
    let SourceMode::Cmyk(inks) = frame.source else {
        panic!("{file}: opens as {:?}, not CMYK", frame.source);
    };
    (frame.width, frame.height, inks, frame.rgba)
}

fn pillow(file: &str, what: &str) -> Vec<u8> {
    std::fs::read(dir().join(format!("{file}.{what}"))).expect("Pillow's array")
}

/// The largest and the mean difference of two byte arrays of the same length.
fn distance(a: &[u8], b: &[u8]) -> (u8, f64) {
    assert_eq!(a.len(), b.len(), "lengths");
    let worst = a.iter().zip(b).map(|(x, y)| x.abs_diff(*y)).max();
    let sum: u64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| u64::from(x.abs_diff(*y)))
        .sum();
    (worst.unwrap_or(0), sum as f64 / a.len().max(1) as f64)
}

#[test]
fn four_component_jpegs_open_with_pillows_inks_and_rgb() {
    for (file, tolerance, mean_tolerance) in FILES {
        let (width, height, inks, rgba) = inks_of(file);
        let expected = pillow(file, "cmyk");
        assert_eq!(
            expected.len(),
            width as usize * height as usize * 4,
            "{file}"
        );
        let (worst, mean) = distance(inks.as_flattened(), &expected);
        assert!(
            worst <= tolerance && mean < mean_tolerance,
            "{file}: inks off by {worst} (mean {mean})"
        );
        // RGB is Pillow's CMYK → RGB of those inks; alpha is opaque.
        let rgb: Vec<u8> = rgba
            .chunks_exact(4)
            .flat_map(|p| [p[0], p[1], p[2]])
            .collect();
        assert!(rgba.chunks_exact(4).all(|p| p[3] == 255), "{file}: alpha");
        let (worst, mean) = distance(&rgb, &pillow(file, "rgb"));
        assert!(
            worst <= tolerance && mean < mean_tolerance,
            "{file}: RGB off by {worst} (mean {mean})"
        );
    }
}

#[test]
fn every_mode_converts_from_the_inks_as_from_a_cmyk_tiff() {
    let tmp = tempfile::tempdir().expect("tempdir");
    // Some modes on the GPU backend, when there is one (always in CI).
    let gpu = common::gpu_or_skip("every_mode_converts_from_the_inks_as_from_a_cmyk_tiff")
        .map_or("cpu", |_| "gpu");
    for (file, tolerance, _) in FILES {
        let jpeg = dir().join(file);
        let cmyk_to = |out: &Path| {
            let args = [
                "run",
                s(&jpeg),
                "--device",
                "cpu",
                "--mode",
                "CMYK",
                "-o",
                s(out),
            ];
            let run = shutter(&args);
            assert!(run.status.success(), "{}", stderr(&run));
        };
        // `--mode CMYK` gives the file's inks (an npy's header is 128 bytes here).
        let npy = tmp.path().join(format!("{file}.npy"));
        cmyk_to(&npy);
        let array = std::fs::read(&npy).expect("npy");
        let (worst, _) = distance(&array[128..], &pillow(file, "cmyk"));
        assert!(worst <= tolerance, "{file}: --mode CMYK off by {worst}");
        // The same inks in a CMYK TIFF, which tests/source_modes.rs checks against Pillow.
        let tiff = tmp.path().join(format!("{file}.tif"));
        cmyk_to(&tiff);
        for (mode, device, mirror) in [
            ("1", "cpu", false),
            ("L", gpu, true),
            ("P", "cpu", false),
            ("RGB", "cpu", true),
            ("RGBA", "cpu", false),
            ("CMYK", gpu, false),
            ("YCbCr", "cpu", false),
            ("LAB", "cpu", false),
            ("HSV", "cpu", true),
            ("I", "cpu", false),
            ("F", "cpu", false),
        ] {
            let mut arrays = Vec::new();
            for input in [&jpeg, &tiff] {
                let npy = tmp
                    .path()
                    .join(format!("{file}.{mode}.{}.npy", arrays.len()));
                let mut args = vec!["run", s(input), "--device", device, "--mode", mode];
                args.extend(["-o", s(&npy)]);
                if mirror {
                    args.push("--mirror");
                }
                let out = shutter(&args);
                assert!(out.status.success(), "{file} {mode}: {}", stderr(&out));
                arrays.push(std::fs::read(&npy).expect("npy"));
            }
            assert_eq!(arrays[0], arrays[1], "{file} → {mode} on the {device}");
        }
    }
}

#[test]
fn a_cmyk_jpeg_with_its_first_component_subsampled_is_refused_by_name() {
    // jpeg-encoder's CMYK at 4:2:0 subsamples C, M and Y but not K, a layout zune-jpeg misreads.
    let tmp = tempfile::tempdir().expect("tempdir");
    let good = dir().join("cmyk.jpg");
    let bad = dir().join("cmyk_subsampled.jpg");
    let out_dir = tmp.path().join("out/");
    let out = shutter(&[
        "run",
        s(&bad),
        s(&good),
        "--device",
        "cpu",
        "-o",
        s(&out_dir),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("cmyk_subsampled.jpg") && err.contains("subsampled"),
        "{err}"
    );
    assert!(
        out_dir.join("cmyk.webp").exists(),
        "the other input is still written"
    );
    assert!(!out_dir.join("cmyk_subsampled.webp").exists());
}

/// Writes the two fixtures Pillow cannot: YCCK, and CMYK with its first component subsampled
/// (`cargo test --test jpeg_cmyk -- --ignored`, then `python make_jpeg_cmyk.py` there).
#[test]
#[ignore = "writes the jpeg-encoder fixtures"]
fn write_jpeg_encoder_fixtures() {
    use jpeg_encoder::{ColorType, Encoder, SamplingFactor};
    let (width, height) = (29u16, 19u16);
    let mut inks = common::random_rgba(u32::from(width), u32::from(height), 7);
    // Smooth ramps under the noise, as in a picture, so subsampling has something to keep.
    for (i, p) in inks.chunks_exact_mut(4).enumerate() {
        let (x, y) = ((i % 29) as u8, (i / 29) as u8);
        let ramps = [x * 8, y * 12, (x + y) * 5, x.wrapping_mul(y)];
        for (v, r) in p.iter_mut().zip(ramps) {
            *v = r.wrapping_add(*v / 16);
        }
    }
    for (file, colour, sampling) in [
        ("ycck.jpg", ColorType::CmykAsYcck, SamplingFactor::F_2_2),
        (
            "cmyk_subsampled.jpg",
            ColorType::Cmyk,
            SamplingFactor::F_2_2,
        ),
    ] {
        let mut encoder = Encoder::new_file(dir().join(file), 90).expect("create");
        encoder.set_sampling_factor(sampling);
        encoder
            .encode(&inks, width, height, colour)
            .expect("encode");
    }
}

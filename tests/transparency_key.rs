//! A file's transparency colour (a PNG's tRNS on an RGB or gray image, or its one transparent
//! palette entry) kept through the conversion to `L` or `RGB` and written as Pillow writes
//! `info["transparency"]`: a PNG's tRNS chunk, a GIF's transparent index, an L image's WebP
//! made RGBA. The fixtures and Pillow's outputs come from `tests/data/trns/make_trns.py`.

use std::fs;
use std::path::{Path, PathBuf};

use shutter::pipeline::Output;
use shutter::{DeviceChoice, Filter, Format, ImageMode, Pipeline, Source};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/trns")
}

struct Case {
    input: String,
    mode: ImageMode,
    /// Per format: Pillow's transparent pixels (row-major 0/1), `None` where Pillow fails.
    masks: Vec<(&'static str, Option<Vec<u8>>)>,
    png_trns: Option<Vec<u8>>,
}

fn cases() -> Vec<Case> {
    let text = fs::read_to_string(dir().join("manifest.json")).expect("manifest");
    let manifest: serde_json::Value = serde_json::from_str(&text).expect("manifest JSON");
    let bytes = |v: &serde_json::Value| -> Option<Vec<u8>> {
        v.as_array().map(|a| {
            a.iter()
                .map(|x| x.as_u64().expect("a number") as u8)
                .collect()
        })
    };
    manifest["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .map(|c| Case {
            input: c["input"].as_str().expect("input").to_string(),
            mode: c["mode"].as_str().expect("mode").parse().expect("a mode"),
            masks: ["png", "gif", "webp"]
                .into_iter()
                .map(|f| (f, bytes(&c[f])))
                .collect(),
            png_trns: c.get("png_trns").and_then(bytes),
        })
        .collect()
}

fn run(input: &Path, out: &Path, format: Format, mode: ImageMode, filters: &[Filter]) {
    let stats = Pipeline::builder()
        .source(Source::Path(input.to_path_buf()))
        .device(DeviceChoice::Cpu)
        .filters(filters.iter().copied())
        .mode(mode)
        .output(Output::File(out.to_path_buf()), format)
        .build()
        .and_then(Pipeline::run)
        .unwrap_or_else(|e| panic!("{}: {e}", input.display()));
    assert!(stats.failures.is_empty(), "{:?}", stats.failures);
}

fn transparent_pixels(path: &Path) -> Vec<u8> {
    image::open(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .into_rgba8()
        .pixels()
        .map(|p| u8::from(p[3] < 255))
        .collect()
}

/// The samples of a PNG's tRNS chunk, 8-bit (the chunk holds 16 bits a sample), read from
/// the file's chunks.
fn png_trns(path: &Path) -> Option<Vec<u8>> {
    let data = fs::read(path).expect("read");
    let mut at = 8;
    while at + 8 <= data.len() {
        let len = u32::from_be_bytes(data[at..at + 4].try_into().expect("4 bytes")) as usize;
        let kind = &data[at + 4..at + 8];
        if kind == b"tRNS" {
            let chunk = &data[at + 8..at + 8 + len];
            assert!(chunk.chunks_exact(2).all(|s| s[0] == 0), "8-bit samples");
            return Some(chunk.chunks_exact(2).map(|s| s[1]).collect());
        }
        at += 12 + len;
    }
    None
}

#[test]
fn the_transparency_colour_is_written_where_pillow_writes_it() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let formats = [
        ("png", Format::Png),
        ("gif", Format::Gif),
        ("webp", Format::from_name("webp", None, true).expect("webp")),
        (
            "lossy.webp",
            Format::from_name("webp", None, false).expect("webp"),
        ),
    ];
    let mut checked = 0;
    for case in cases() {
        for (ext, format) in &formats {
            let pillow = ext.rsplit('.').next().expect("a format");
            let Some((_, Some(want))) = case.masks.iter().find(|(f, _)| *f == pillow) else {
                continue; // Pillow cannot save this one
            };
            let out = tmp
                .path()
                .join(format!("{}.{}.{ext}", case.input, case.mode));
            run(&dir().join(&case.input), &out, *format, case.mode, &[]);
            let what = format!("{} → {} {ext}", case.input, case.mode);
            assert_eq!(&transparent_pixels(&out), want, "{what}");
            if *ext == "png" {
                assert_eq!(png_trns(&out), case.png_trns, "{what}");
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 39);
}

#[test]
fn a_filter_makes_a_new_image_without_a_transparency_colour() {
    let tmp = tempfile::tempdir().expect("tempdir");
    for input in ["rgb_key.png", "gray_key.png", "palette_one.png"] {
        let out = tmp.path().join(format!("{input}.png"));
        run(
            &dir().join(input),
            &out,
            Format::Png,
            ImageMode::Rgb,
            &[Filter::Invert],
        );
        assert_eq!(png_trns(&out), None, "{input}");
        assert!(transparent_pixels(&out).iter().all(|&t| t == 0), "{input}");
    }
}

#[test]
fn transparency_kept_as_a_colour_is_not_counted_as_dropped() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dropped = |input: &str, format: Format, ext: &str| {
        Pipeline::builder()
            .source(Source::Path(dir().join(input)))
            .device(DeviceChoice::Cpu)
            .output(
                Output::File(tmp.path().join(format!("{input}.{ext}"))),
                format,
            )
            .build()
            .and_then(Pipeline::run)
            .expect("run")
            .alpha_dropped
    };
    // The default mode, RGB: a PNG or GIF keeps the colour, a JPEG or TIFF drops it.
    assert_eq!(dropped("rgb_key.png", Format::Png, "png"), 0);
    assert_eq!(dropped("palette_one.png", Format::Gif, "gif"), 0);
    assert_eq!(dropped("rgb_key.png", Format::Tiff, "tif"), 1);
    // One alpha per palette entry is no single colour: RGB drops it whatever the format.
    assert_eq!(dropped("palette_alphas.png", Format::Png, "png"), 1);
}

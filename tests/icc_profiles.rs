//! ICC colour profiles: read from JPEG, PNG, WebP and TIFF files where Pillow reads them
//! (`info["icc_profile"]`), carried through the pipeline with the frames, and written into PNG,
//! JPEG, TIFF and WebP outputs where they describe the colours the file stores. The fixtures
//! and Pillow's reading of them come from `tests/data/icc/make_icc.py`; outputs are read back
//! with `image`'s decoders, not with shutter's own reader.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use image::{ImageDecoder, ImageReader};
use shutter::pipeline::Output;
use shutter::source::{self, DecodeLimits, Input};
use shutter::{DeviceChoice, Filter, Format, ImageMode, Pipeline, Source};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/icc")
}

fn profile(name: &str) -> Vec<u8> {
    fs::read(dir().join(name)).expect("profile")
}

/// Each fixture with the profile file Pillow reads from it (`None` for no profile) and its
/// frame count, from the manifest.
fn fixtures() -> Vec<(String, Option<String>, usize)> {
    let text = fs::read_to_string(dir().join("manifest.json")).expect("manifest");
    let manifest: serde_json::Value = serde_json::from_str(&text).expect("manifest JSON");
    manifest["fixtures"]
        .as_object()
        .expect("fixtures")
        .iter()
        .map(|(file, f)| {
            let profile = f["profile"].as_str().map(str::to_string);
            let frames = f["frames"].as_u64().expect("frames") as usize;
            (file.clone(), profile, frames)
        })
        .collect()
}

/// The profile an output file holds, as `image`'s decoder for its format reads it (the
/// `tiff` crate's for TIFF: `image` 0.25's TIFF decoder gives none).
fn written_profile(path: &Path) -> Option<Vec<u8>> {
    if path.extension().is_some_and(|e| e == "tif") {
        let file = std::io::BufReader::new(fs::File::open(path).expect("open output"));
        let mut decoder = tiff::decoder::Decoder::new(file).expect("a TIFF");
        return decoder.get_tag_u8_vec(tiff::tags::Tag::IccProfile).ok();
    }
    let mut decoder = ImageReader::open(path)
        .and_then(ImageReader::with_guessed_format)
        .expect("open output")
        .into_decoder()
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    decoder.icc_profile().expect("read the profile")
}

/// The pixels of an output file, as RGBA8.
fn written_pixels(path: &Path) -> Vec<u8> {
    image::open(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .into_rgba8()
        .into_raw()
}

/// Runs `input` through a CPU pipeline in `mode` into `out` as `format`.
fn convert(input: &Path, out: &Path, format: Format, mode: ImageMode, icc: bool) {
    convert_filtered(input, out, format, mode, icc, &[]);
}

/// [`convert`] with `filters`.
fn convert_filtered(
    input: &Path,
    out: &Path,
    format: Format,
    mode: ImageMode,
    icc: bool,
    filters: &[Filter],
) {
    let stats = Pipeline::builder()
        .source(Source::Path(input.to_path_buf()))
        .device(DeviceChoice::Cpu)
        .filters(filters.iter().copied())
        .mode(mode)
        .icc_profiles(icc)
        .output(Output::File(out.to_path_buf()), format)
        .build()
        .and_then(Pipeline::run)
        .unwrap_or_else(|e| panic!("{}: {e}", input.display()));
    assert!(stats.failures.is_empty(), "{:?}", stats.failures);
}

fn lossy_webp() -> Format {
    Format::from_name("webp", None, false).expect("webp")
}

fn lossless_webp() -> Format {
    Format::from_name("webp", None, true).expect("webp")
}

fn jpeg() -> Format {
    Format::from_name("jpeg", None, false).expect("jpeg")
}

#[test]
fn every_frame_carries_the_profile_pillow_reads() {
    for (file, want, frames) in fixtures() {
        let path = dir().join(&file);
        let decoded: Vec<_> = source::decode(&Input::from_path(&path), &DecodeLimits::default())
            .and_then(|frames| frames.collect::<Result<Vec<_>, _>>())
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(decoded.len(), frames, "{file}");
        let want = want.map(|name| profile(&name));
        for (k, frame) in decoded.iter().enumerate() {
            assert_eq!(
                frame.icc_profile.as_deref(),
                want.as_deref(),
                "{file} frame {k}"
            );
        }
    }
}

#[test]
fn outputs_that_store_rgb_keep_an_rgb_profile_and_their_pixels() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let srgb = profile("srgb.icc");
    let formats = [
        ("png", Format::Png),
        ("jpg", jpeg()),
        ("webp", lossy_webp()),
        ("lossless.webp", lossless_webp()),
        ("tif", Format::Tiff),
    ];
    for source in [
        "rgb.png",
        "rgb.jpg",
        "rgb.webp",
        "rgb.tif",
        "rgb_big.tif",
        "rgba.png",
    ] {
        for mode in [ImageMode::Rgb, ImageMode::Rgba, ImageMode::P] {
            for (ext, format) in &formats {
                if !format.holds(mode) {
                    continue;
                }
                let with = tmp.path().join(format!("{source}.{mode}.{ext}"));
                let without = tmp.path().join(format!("{source}.{mode}.none.{ext}"));
                convert(&dir().join(source), &with, *format, mode, true);
                convert(&dir().join(source), &without, *format, mode, false);
                let case = format!("{source} → {mode} {ext}");
                assert_eq!(written_profile(&with).as_deref(), Some(&srgb[..]), "{case}");
                assert_eq!(written_profile(&without), None, "{case} without");
                assert_eq!(
                    written_pixels(&with),
                    written_pixels(&without),
                    "{case}: the profile changed the pixels"
                );
            }
        }
    }
}

#[test]
fn a_profile_is_written_only_where_it_describes_the_stored_colours() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = |name: &str| tmp.path().join(name);
    let cases: [(&str, ImageMode, Format, &str, Option<&str>); 12] = [
        // An RGB profile on gray samples is invalid in PNG, JPEG and TIFF...
        ("rgb.png", ImageMode::L, Format::Png, "l.png", None),
        ("rgb.png", ImageMode::One, Format::Png, "1.png", None),
        ("rgb.png", ImageMode::L, jpeg(), "l.jpg", None),
        ("rgb.png", ImageMode::I, Format::Tiff, "i.tif", None),
        // ...but a WebP stores gray as RGB.
        (
            "rgb.png",
            ImageMode::L,
            lossy_webp(),
            "l.webp",
            Some("srgb.icc"),
        ),
        // A gray profile fits gray samples only.
        (
            "gray.png",
            ImageMode::L,
            Format::Png,
            "gray.png",
            Some("gray.icc"),
        ),
        (
            "gray.png",
            ImageMode::F,
            Format::Tiff,
            "gray_f.tif",
            Some("gray.icc"),
        ),
        (
            "gray.png",
            ImageMode::Rgb,
            Format::Png,
            "gray_rgb.png",
            None,
        ),
        ("gray.png", ImageMode::L, lossless_webp(), "gray.webp", None),
        // CMYK inks keep their profile; converted to RGB they have none that fits.
        (
            "cmyk.jpg",
            ImageMode::Cmyk,
            jpeg(),
            "cmyk.jpg",
            Some("cmyk.icc"),
        ),
        (
            "cmyk.jpg",
            ImageMode::Cmyk,
            Format::Tiff,
            "cmyk.tif",
            Some("cmyk.icc"),
        ),
        (
            "cmyk.jpg",
            ImageMode::Rgb,
            Format::Png,
            "cmyk_rgb.png",
            None,
        ),
    ];
    for (source, mode, format, name, want) in cases {
        convert(&dir().join(source), &out(name), format, mode, true);
        let want = want.map(profile);
        assert_eq!(
            written_profile(&out(name)),
            want,
            "{source} → {mode} {name}"
        );
    }
}

#[test]
fn a_profile_that_does_not_describe_the_pixels_is_left_out() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let sepia = [Filter::Sepia];
    type Case<'a> = (&'a str, ImageMode, Format, &'a [Filter], Option<&'a str>);
    let cases: [Case; 5] = [
        // CMYK inks made RGB for the filter, then CMYK again by plain inversion.
        ("cmyk.jpg", ImageMode::Cmyk, Format::Tiff, &sepia, None),
        // RGB pixels carrying a CMYK profile: their CMYK is plain inversion too.
        ("rgb_cmyk.png", ImageMode::Cmyk, Format::Tiff, &[], None),
        ("rgb_cmyk.png", ImageMode::Cmyk, jpeg(), &[], None),
        // A gray file's profile once a filter has made its pixels RGB.
        ("gray.png", ImageMode::L, Format::Png, &sepia, None),
        // Filters work on RGB: an RGB profile still describes the result.
        (
            "rgb.png",
            ImageMode::Rgb,
            Format::Png,
            &sepia,
            Some("srgb.icc"),
        ),
    ];
    for (k, (source, mode, format, filters, want)) in cases.into_iter().enumerate() {
        let out = tmp.path().join(format!("{k}.{}", format.extension()));
        convert_filtered(&dir().join(source), &out, format, mode, true, filters);
        let want = want.map(profile);
        assert_eq!(written_profile(&out), want, "{source} {filters:?} → {mode}");
    }
}

#[test]
fn a_profile_of_several_jpeg_segments_is_written_whole() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let large = profile("large.icc");
    for (ext, format) in [
        ("jpg", jpeg()),
        ("png", Format::Png),
        ("webp", lossy_webp()),
    ] {
        let out = tmp.path().join(format!("large.{ext}"));
        convert(
            &dir().join("large_swapped.jpg"),
            &out,
            format,
            ImageMode::Rgb,
            true,
        );
        assert_eq!(written_profile(&out).as_deref(), Some(&large[..]), "{ext}");
    }
}

#[test]
fn formats_without_profiles_are_still_written() {
    let tmp = tempfile::tempdir().expect("tempdir");
    for (ext, format) in [
        ("gif", Format::Gif),
        ("bmp", Format::Bmp),
        ("npy", Format::Npy),
    ] {
        let out = tmp.path().join(format!("rgb.{ext}"));
        convert(&dir().join("rgb.png"), &out, format, ImageMode::Rgb, true);
        assert!(fs::metadata(&out).is_ok_and(|m| m.len() > 0), "{ext}");
    }
}

#[test]
fn callbacks_see_each_frames_profile_unless_turned_off() {
    let srgb = profile("srgb.icc");
    for (icc, want) in [(true, Some(srgb.as_slice())), (false, None)] {
        let seen: Arc<Mutex<Vec<Option<Vec<u8>>>>> = Arc::default();
        let sink = seen.clone();
        Pipeline::builder()
            .source(Source::Path(dir().join("anim.webp")))
            .source(Source::Path(dir().join("anim.png")))
            .device(DeviceChoice::Cpu)
            .icc_profiles(icc)
            .on_frame(move |frame| {
                let profile = frame.meta.icc_profile.as_deref().map(<[u8]>::to_vec);
                sink.lock().expect("lock").push(profile);
                Ok(())
            })
            .build()
            .and_then(Pipeline::run)
            .expect("run");
        let seen = seen.lock().expect("lock");
        assert_eq!(seen.len(), 6);
        for profile in seen.iter() {
            assert_eq!(profile.as_deref(), want, "icc_profiles({icc})");
        }
    }
}

#[test]
fn no_icc_on_the_command_line_leaves_the_profile_out() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let input = dir().join("rgb.jpg");
    for (flag, want) in [(None, Some(profile("srgb.icc"))), (Some("--no-icc"), None)] {
        let out = tmp.path().join(format!("out{}.png", flag.unwrap_or("")));
        let mut args = vec![
            "run",
            common::s(&input),
            "-o",
            common::s(&out),
            "--device",
            "cpu",
        ];
        args.extend(flag);
        let result = common::shutter(&args);
        assert!(result.status.success(), "{}", common::stderr(&result));
        assert_eq!(written_profile(&out), want, "{flag:?}");
    }
}

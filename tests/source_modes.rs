//! Files that open in a mode other than RGB(A) — `1`, `L`, `LA`, `I;16`, `P`, `CMYK` — or
//! that Pillow reads its own way (16-bit BMPs, tRNS values) converted to
//! every mode, mirrored or not, on both backends, against Pillow 13's `np.asarray(im.convert(m))`
//! (`tests/data/sources/`, made by its `make_sources.py`). Pillow converts these from their own
//! mode, so `L` → `CMYK` is (0, 0, 0, 255 − v) and a palette PNG → `P` keeps its indices.

mod common;

use std::path::{Path, PathBuf};

use serde_json::Value;
use shutter::backend::Processor;
use shutter::frame::{Frame, FrameMeta};
use shutter::mode::ImageMode;
use shutter::mode::source::SourceMode;
use shutter::ops::Ops;
use shutter::source::DecodeLimits;
use shutter::source::file::decode_path;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/sources")
}

struct Expected {
    file: String,
    mode: ImageMode,
    mirror: bool,
    bytes: Vec<u8>,
    palette: Option<Vec<u8>>,
}

/// Every output of the manifest.
fn expected() -> Vec<Expected> {
    let text = std::fs::read_to_string(dir().join("manifest.json")).expect("manifest");
    let manifest: Value = serde_json::from_str(&text).expect("manifest json");
    let blob = std::fs::read(dir().join("pillow.bin")).expect("pillow.bin");
    let slice = |range: &Value| {
        let at = range[0].as_u64().expect("offset") as usize;
        let len = range[1].as_u64().expect("length") as usize;
        blob[at..at + len].to_vec()
    };
    let mut out = Vec::new();
    for file in manifest["files"].as_array().expect("files") {
        for o in file["outputs"].as_array().expect("outputs") {
            out.push(Expected {
                file: file["file"].as_str().expect("file").to_string(),
                mode: o["mode"].as_str().expect("mode").parse().expect("a mode"),
                mirror: o["mirror"].as_bool().expect("mirror"),
                bytes: slice(&o["bytes"]),
                palette: o.get("palette").map(slice),
            });
        }
    }
    out
}

fn decode(file: &str) -> Frame {
    decode_at(file, &dir().join(file))
}

/// The frame of the still at `path`, named `name`, with the mode it opens in.
fn decode_at(name: &str, path: &Path) -> Frame {
    let mut frames = decode_path(name, path, &DecodeLimits::default()).expect("decodes");
    let d = frames.next().expect("one frame").expect("decodes");
    let mut frame = Frame::new(
        d.width,
        d.height,
        d.rgba,
        d.has_alpha,
        FrameMeta::still(0, 0),
    );
    frame.source = d.source;
    frame
}

/// Converts every file to every mode on `processor_for`'s backend and compares with Pillow;
/// returns how many outputs were checked. Every mismatch is listed before the test fails.
fn check_all(label: &str, processor_for: impl Fn(&Ops) -> Processor) -> usize {
    let all = expected();
    let mut failures = Vec::new();
    for e in &all {
        let mut ops = Ops::new(e.mirror, vec![]);
        ops.mode = Some(e.mode);
        let mut processor = processor_for(&ops);
        let frame = processor.process(decode(&e.file)).expect("processes");
        let image = frame.image.expect("a mode image");
        let got = image.as_bytes();
        let what = format!("{label}: {} → {} (mirror {})", e.file, e.mode, e.mirror);
        if got.len() != e.bytes.len() {
            failures.push(format!(
                "{what}: {} bytes, Pillow {}",
                got.len(),
                e.bytes.len()
            ));
            continue;
        }
        // LAB: within ±1 of LittleCMS, a and b compared as the signed bytes they are.
        let lab = e.mode == ImageMode::Lab;
        let value = |v: u8| {
            if lab {
                i16::from(v as i8)
            } else {
                i16::from(v)
            }
        };
        let worst = got
            .iter()
            .zip(&e.bytes)
            .map(|(&a, &b)| (value(a) - value(b)).unsigned_abs())
            .max()
            .unwrap_or(0);
        let tolerance = u16::from(lab);
        if worst > tolerance {
            failures.push(format!(
                "{what}: off by {worst}\n got    {:?}\n Pillow {:?}",
                &got[..got.len().min(48)],
                &e.bytes[..e.bytes.len().min(48)]
            ));
        }
        if let Some(palette) = &e.palette {
            let ours = image.palette.as_ref().expect("P has a palette").as_bytes();
            if ours != &palette[..] {
                failures.push(format!(
                    "{what}: palette of {} bytes, Pillow's {}; first {:?}, Pillow {:?}",
                    ours.len(),
                    palette.len(),
                    &ours[..ours.len().min(40)],
                    &palette[..palette.len().min(40)]
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} outputs differ from Pillow:\n{}",
        failures.len(),
        all.len(),
        failures.join("\n")
    );
    all.len()
}

#[test]
fn every_source_mode_converts_as_pillow_does_on_the_cpu() {
    let checked = check_all("cpu", |ops| Processor::new(None, ops, 1).expect("cpu"));
    assert_eq!(checked, 43 * 11 * 2, "43 files × 11 modes × mirror or not");
}

#[test]
fn every_source_mode_converts_as_pillow_does_on_the_gpu() {
    let Some(ctx) = common::gpu_or_skip("every_source_mode_converts_as_pillow_does_on_the_gpu")
    else {
        return;
    };
    let checked = check_all("gpu", |ops| {
        Processor::new(Some(ctx.clone()), ops, 2).expect("gpu")
    });
    assert_eq!(checked, 43 * 11 * 2);
}

#[test]
fn files_report_the_mode_pillow_opens_them_in() {
    let kind = |file| match decode(file).source {
        SourceMode::Color => "RGB",
        SourceMode::Gray => "gray",
        SourceMode::Gray16(_) => "I;16",
        SourceMode::Gray16Key(..) => "I;16 key",
        SourceMode::Palette { .. } => "P",
        SourceMode::ColorKey(_) => "RGB key",
        SourceMode::Int32(_) => "I",
        SourceMode::Float32(_) => "F",
        SourceMode::GrayKey(_) => "gray key",
        SourceMode::Cmyk(_) => "CMYK",
    };
    for (file, want) in [
        ("gray.png", "gray"),
        ("gray_alpha.png", "gray"),
        ("bilevel.png", "gray"),
        ("gray16.png", "I;16"),
        ("gray16.tif", "I;16"),
        ("gray16_trns.png", "I;16"),
        ("gray_alpha.tif", "gray"),
        ("rgba_premultiplied.tif", "RGB"),
        ("int32.tif", "I"),
        ("float32.tif", "F"),
        ("float32_turned.tif", "F"),
        ("cmyk.tif", "CMYK"),
        ("rgba16_premultiplied.tif", "RGB"),
        ("gray_alpha16.png", "RGB"),
        ("gray4_trns.png", "gray key"),
        ("rgb16_trns.png", "RGB key"),
        ("gray_trns.png", "gray key"),
        ("palette_turned.png", "P"),
        ("gray.bmp", "gray"),
        ("bilevel.bmp", "gray"),
        ("palette.bmp", "P"),
        ("rgb_key.png", "RGB key"),
        ("rgb_key_web.png", "RGB key"),
        ("palette.png", "P"),
        ("palette4_trns.png", "P"),
        ("gray16_white_is_zero.tif", "I;16"),
        ("palette.tif", "P"),
        ("palette4.tif", "P"),
        ("os2_palette.bmp", "P"),
        ("os2_rgb.bmp", "RGB"),
        ("gray16_trns7.png", "I;16 key"),
        ("gray16_trns255.png", "I;16 key"),
        ("bilevel_trns.png", "gray key"),
        ("cmyk16.tif", "CMYK"),
        ("rgb555.bmp", "RGB"),
        ("rgb565.bmp", "RGB"),
        ("gray4.tif", "gray"),
        ("gray2_white_is_zero.tif", "gray"),
    ] {
        assert_eq!(kind(file), want, "{file}");
    }
}

#[test]
fn a_palette_file_expands_to_the_same_pixels_as_its_indices_say() {
    // The palette path reads the indices with `png` next to `image`'s RGBA: both must agree.
    for file in ["palette.png", "palette4_trns.png", "palette.bmp"] {
        let frame = decode(file);
        let SourceMode::Palette { indices, palette } = &frame.source else {
            panic!("{file}: a palette source");
        };
        let entries = palette.as_bytes();
        let bpe = entries.len() / palette.len();
        for (k, &i) in indices.iter().enumerate() {
            let entry = &entries[usize::from(i) * bpe..][..bpe];
            let px = &frame.rgba[k * 4..k * 4 + 4];
            assert_eq!(&px[..3], &entry[..3], "{file}: pixel {k} colour");
            assert_eq!(
                px[3],
                if bpe == 4 { entry[3] } else { 255 },
                "{file}: alpha"
            );
        }
    }
}

#[test]
fn after_a_filter_a_gray_file_converts_from_its_rgb_pixels() {
    // Invert keeps a gray image gray, but filters make RGB images: CMYK is then 255 − v in
    // C, M and Y, as from any RGB frame.
    let mut ops = Ops::new(false, vec![shutter::Filter::Invert]);
    ops.mode = Some(ImageMode::Cmyk);
    let frame = decode("gray.png");
    let v = frame.rgba[0];
    let out = Processor::new(None, &ops, 1)
        .expect("cpu")
        .process(frame)
        .expect("processes");
    let image = out.image.expect("CMYK");
    assert_eq!(
        image.as_bytes()[..4],
        [v, v, v, 0],
        "inverted, then RGB → CMYK"
    );
}

/// An RGB PNG of `width`×`height` noise with a tRNS colour `key`, in 8 or 16 bits a sample
/// (a 16-bit sample `v` is `v * 257`, so both open as the same 8-bit pixels in Pillow).
fn keyed_rgb_png(path: &Path, width: u32, height: u32, sixteen: bool, key: [u8; 3]) {
    let rgb: Vec<u8> = common::random_rgba(width, height, 5)
        .chunks_exact(4)
        .flat_map(|px| [px[0], px[1], px[2]])
        .collect();
    let file = std::fs::File::create(path).unwrap();
    let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), width, height);
    encoder.set_color(png::ColorType::Rgb);
    let (data, trns) = if sixteen {
        let wide = rgb.iter().flat_map(|&v| (u16::from(v) * 257).to_be_bytes());
        let trns = key.iter().flat_map(|&k| u16::from(k).to_be_bytes());
        (wide.collect::<Vec<u8>>(), trns.collect::<Vec<u8>>())
    } else {
        let trns = key.iter().flat_map(|&k| [0, k]);
        (rgb, trns.collect())
    };
    encoder.set_depth(if sixteen {
        png::BitDepth::Sixteen
    } else {
        png::BitDepth::Eight
    });
    encoder.set_trns(trns);
    let mut writer = encoder.write_header().unwrap();
    writer.write_image_data(&data).unwrap();
    writer.finish().unwrap();
}

#[test]
fn a_16_bit_rgb_file_with_a_colour_key_no_pixel_has_converts_as_its_8_bit_twin() {
    // Pillow's `convert("RGBA")` of an RGB PNG with a tRNS colour is RGBA whether or not a
    // pixel has that colour, so a filtered frame goes to `P` as RGBA does (quantised). A
    // 16-bit file whose key matched no pixel was taken as RGB: the WEB palette, every index
    // off (the 8-bit file, checked against Pillow, was right).
    let tmp = tempfile::TempDir::new().unwrap();
    let key = [1, 2, 3];
    let (narrow, wide) = (tmp.path().join("rgb8.png"), tmp.path().join("rgb16.png"));
    keyed_rgb_png(&narrow, 17, 5, false, key);
    keyed_rgb_png(&wide, 17, 5, true, key);
    let (eight, sixteen) = (decode_at("rgb8", &narrow), decode_at("rgb16", &wide));
    assert!(
        eight.rgba.chunks_exact(4).all(|px| px[3] == 255),
        "no pixel has the key"
    );
    assert_eq!(eight.rgba, sixteen.rgba);
    assert!(eight.has_alpha && sixteen.has_alpha);
    for filters in [vec![], vec![shutter::Filter::Invert]] {
        for mode in [ImageMode::P, ImageMode::Rgba, ImageMode::One, ImageMode::L] {
            for dither in [
                shutter::mode::Dither::None,
                shutter::mode::Dither::FloydSteinberg,
            ] {
                let mut ops = Ops::new(false, filters.clone());
                ops.mode = Some(mode);
                ops.dither = dither;
                let run = |frame: &Frame| {
                    let out = Processor::new(None, &ops, 1)
                        .expect("cpu")
                        .process(frame.clone())
                        .expect("processes");
                    let image = out.image.expect("an image of the mode");
                    (image.as_bytes().to_vec(), format!("{:?}", image.palette))
                };
                assert!(
                    run(&eight) == run(&sixteen),
                    "{filters:?} {mode:?} {dither:?}: the 16-bit file converts otherwise"
                );
            }
        }
    }
}

#[test]
fn the_cli_writes_pillows_arrays_for_a_gray_and_a_palette_file() {
    let tmp = tempfile::tempdir().expect("tempdir");
    for (file, mode) in [
        ("gray.png", "CMYK"),
        ("palette.png", "P"),
        ("gray16.png", "I"),
    ] {
        let out = tmp.path().join(format!("{file}.{mode}.npy"));
        let run = common::shutter(&[
            "run",
            common::s(&dir().join(file)),
            "--device",
            "cpu",
            "--mode",
            mode,
            "-o",
            common::s(&out),
        ]);
        assert!(run.status.success(), "{file}: {}", common::stderr(&run));
        let npy = std::fs::read(&out).expect("npy written");
        let want = expected()
            .into_iter()
            .find(|e| e.file == file && e.mode.name() == mode && !e.mirror)
            .expect("in the manifest");
        assert!(
            npy.ends_with(&want.bytes),
            "{file} → {mode}: the npy's data is not Pillow's"
        );
    }
}

#[test]
fn i_and_f_tiffs_shutter_writes_read_back_exactly() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let input = dir().join("gray16.png");
    for mode in ["I", "F"] {
        let run = |args: &[&str]| {
            let out = common::shutter(args);
            assert!(out.status.success(), "{mode}: {}", common::stderr(&out));
        };
        let tiff = tmp.path().join(format!("{mode}.tiff"));
        let direct = tmp.path().join(format!("{mode}.npy"));
        let back = tmp.path().join(format!("{mode}.back.npy"));
        let input = common::s(&input);
        run(&[
            "run",
            input,
            "--device",
            "cpu",
            "--mode",
            mode,
            "-o",
            common::s(&tiff),
        ]);
        run(&[
            "run",
            input,
            "--device",
            "cpu",
            "--mode",
            mode,
            "-o",
            common::s(&direct),
        ]);
        let tiff = common::s(&tiff);
        run(&[
            "run",
            tiff,
            "--device",
            "cpu",
            "--mode",
            mode,
            "-o",
            common::s(&back),
        ]);
        let (direct, back) = (std::fs::read(direct).unwrap(), std::fs::read(back).unwrap());
        assert_eq!(
            direct, back,
            "{mode}: the TIFF's samples, all 16 bits of them"
        );
    }
}

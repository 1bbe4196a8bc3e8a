//! `--mode` from the command line: npy arrays typed like `np.asarray(im.convert(mode))`, every
//! mode written to every format that holds it, and impossible requests refused before work.

mod common;

use std::path::{Path, PathBuf};

use common::{s, shutter, stderr};
use shutter::{Dither, ImageMode, ModeImage};
use tempfile::TempDir;

/// A colourful RGB picture with hard edges and ramps (never uniform).
fn picture(dir: &Path) -> (PathBuf, image::RgbaImage) {
    let img = image::RgbaImage::from_fn(23, 11, |x, y| {
        image::Rgba([
            (x * 11) as u8,
            (y * 23) as u8,
            ((x * y) % 256) as u8 ^ 0x3c,
            255,
        ])
    });
    let path = dir.join("x.png");
    image::DynamicImage::ImageRgba8(img.clone())
        .to_rgb8()
        .save(&path)
        .expect("save");
    (path, img)
}

fn reference(mode: ImageMode, img: &image::RgbaImage) -> ModeImage {
    shutter::mode::cpu::convert(
        mode,
        Dither::FloydSteinberg,
        img.width(),
        img.height(),
        img.as_raw(),
        false,
    )
}

/// The numpy `descr` and shape `np.asarray(im)` has for each mode, from the spec's table.
fn numpy_type(mode: ImageMode) -> (&'static str, String) {
    let (h, w) = (11, 23);
    match mode {
        ImageMode::One => ("|b1", format!("({h}, {w})")),
        ImageMode::L | ImageMode::P => ("|u1", format!("({h}, {w})")),
        ImageMode::I => ("<i4", format!("({h}, {w})")),
        ImageMode::F => ("<f4", format!("({h}, {w})")),
        ImageMode::Rgb | ImageMode::Hsv | ImageMode::YCbCr | ImageMode::Lab => {
            ("|u1", format!("({h}, {w}, 3)"))
        }
        ImageMode::Rgba | ImageMode::Cmyk => ("|u1", format!("({h}, {w}, 4)")),
    }
}

#[test]
fn npy_output_has_the_shape_dtype_and_bytes_numpy_gives_for_every_mode() {
    let tmp = TempDir::new().unwrap();
    let (src, img) = picture(tmp.path());
    for mode in ImageMode::ALL {
        let out_dir = tmp.path().join(format!("out-{mode}"));
        let out = shutter(&[
            "run",
            s(&src),
            "--mode",
            mode.name(),
            "--format",
            "npy",
            "-o",
            s(&out_dir),
        ]);
        assert!(out.status.success(), "{mode}: {}", stderr(&out));
        let bytes = std::fs::read(out_dir.join("x.npy")).unwrap();
        assert_eq!(&bytes[..8], b"\x93NUMPY\x01\x00", "{mode}");
        let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
        let header = std::str::from_utf8(&bytes[10..10 + header_len]).unwrap();
        let (descr, shape) = numpy_type(mode);
        assert!(
            header.contains(&format!("'descr': '{descr}'")),
            "{mode}: {header}"
        );
        assert!(
            header.contains(&format!("'shape': {shape}")),
            "{mode}: {header}"
        );
        assert_eq!(
            (10 + header_len) % 64,
            0,
            "{mode}: header padded to 64 bytes"
        );
        let data = &bytes[10 + header_len..];
        let want = reference(mode, &img);
        let want_bytes = if mode == ImageMode::One {
            // numpy bools are 0/1 bytes; the ModeImage stores Pillow's 0/255.
            want.as_bytes().iter().map(|&b| u8::from(b != 0)).collect()
        } else {
            want.as_bytes().into_owned()
        };
        assert_eq!(data, want_bytes.as_slice(), "{mode}");
    }
}

#[test]
fn every_mode_is_written_to_every_format_that_holds_it_and_decodes_back() {
    let tmp = TempDir::new().unwrap();
    let (src, img) = picture(tmp.path());
    let cases: &[(ImageMode, &[&str])] = &[
        (
            ImageMode::One,
            &["png", "webp", "gif", "bmp", "tiff", "jpeg"],
        ),
        (ImageMode::L, &["png", "webp", "gif", "bmp", "tiff", "jpeg"]),
        (ImageMode::P, &["png", "gif"]),
        (
            ImageMode::Rgb,
            &["png", "webp", "gif", "bmp", "tiff", "jpeg"],
        ),
        (ImageMode::Rgba, &["png", "webp", "gif", "bmp", "tiff"]),
        (ImageMode::Cmyk, &["jpeg", "tiff"]),
        (ImageMode::YCbCr, &["jpeg"]),
        (ImageMode::I, &["tiff"]),
        (ImageMode::F, &["tiff"]),
    ];
    for &(mode, formats) in cases {
        let want = reference(mode, &img);
        for &format in formats {
            let dst = tmp.path().join(format!("{mode}.{format}"));
            let out = shutter(&["run", s(&src), "--mode", mode.name(), "-o", s(&dst)]);
            assert!(out.status.success(), "{mode} → {format}: {}", stderr(&out));
            if matches!(mode, ImageMode::I | ImageMode::F) {
                assert_tiff_values(&dst, &want);
                continue;
            }
            let decoded = image::open(&dst)
                .unwrap_or_else(|e| panic!("{mode} → {format} does not decode: {e}"));
            assert_eq!(
                (decoded.width(), decoded.height()),
                (23, 11),
                "{mode} → {format}"
            );
            let lossless = matches!(format, "png" | "bmp" | "tiff");
            if !lossless {
                continue;
            }
            // Lossless formats give the mode's values back.
            match mode {
                ImageMode::One | ImageMode::L => {
                    assert_eq!(
                        decoded.to_luma8().as_raw(),
                        want.as_bytes().as_ref(),
                        "{mode} → {format}"
                    );
                }
                ImageMode::Rgb | ImageMode::Rgba => {
                    let got = if mode == ImageMode::Rgb {
                        decoded.to_rgb8().into_raw()
                    } else {
                        decoded.to_rgba8().into_raw()
                    };
                    assert_eq!(got, want.as_bytes().as_ref(), "{mode} → {format}");
                }
                ImageMode::P => {
                    // The palette colours of the indices, as Pillow's P image shows them.
                    let palette = want.palette.as_ref().expect("P has a palette");
                    let entries = palette.as_bytes();
                    let want_rgb: Vec<u8> = want
                        .as_bytes()
                        .iter()
                        .flat_map(|&i| entries[i as usize * 3..i as usize * 3 + 3].to_vec())
                        .collect();
                    assert_eq!(decoded.to_rgb8().into_raw(), want_rgb, "{mode} → {format}");
                }
                _ => {}
            }
        }
    }
}

/// `image` does not read 32-bit integer TIFFs: read I and F back with the `tiff` crate.
fn assert_tiff_values(path: &Path, want: &ModeImage) {
    use tiff::decoder::{Decoder, DecodingResult};
    let file = std::io::BufReader::new(std::fs::File::open(path).unwrap());
    let mut decoder = Decoder::new(file).expect("a TIFF");
    assert_eq!(decoder.dimensions().unwrap(), (23, 11));
    match (decoder.read_image().expect("TIFF pixels"), &want.data) {
        (DecodingResult::I32(got), shutter::mode::ModeData::I32(want)) => assert_eq!(&got, want),
        (DecodingResult::F32(got), shutter::mode::ModeData::F32(want)) => {
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&got), bits(want), "F values exact to the bit");
        }
        (other, _) => panic!(
            "{}: unexpected TIFF sample type {:?}",
            want.mode,
            std::mem::discriminant(&other)
        ),
    }
}

#[test]
fn cmyk_jpeg_decodes_back_to_the_source_colours() {
    let tmp = TempDir::new().unwrap();
    let (src, img) = picture(tmp.path());
    let dst = tmp.path().join("c.jpeg");
    let out = shutter(&[
        "run",
        s(&src),
        "--mode",
        "CMYK",
        "-o",
        s(&dst),
        "--quality",
        "95",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let got = image::open(&dst).unwrap().to_rgb8();
    let want = image::DynamicImage::ImageRgba8(img).to_rgb8();
    let mse: f64 = got
        .as_raw()
        .iter()
        .zip(want.as_raw())
        .map(|(&a, &b)| (f64::from(a) - f64::from(b)).powi(2))
        .sum::<f64>()
        / got.as_raw().len() as f64;
    let psnr = 10.0 * (255.0f64 * 255.0 / mse.max(1e-9)).log10();
    // Inverted CMYK would give a negative image, far below this.
    assert!(psnr > 25.0, "CMYK JPEG round trip PSNR {psnr:.1} dB");
}

#[test]
fn bad_mode_requests_exit_2_with_one_line_and_write_nothing() {
    let tmp = TempDir::new().unwrap();
    let (src, _) = picture(tmp.path());
    let out_dir = tmp.path().join("out");
    let cases: [(&[&str], &[&str]); 5] = [
        (&["--mode", "XYZ"], &["--mode", "XYZ"]),
        (&["--mode", "L", "--dither", "none"], &["--dither", "L"]),
        (&["--mode", "F", "--format", "jpeg"], &["jpeg", "tiff, npy"]),
        (&["--mode", "LAB", "--format", "png"], &["png", "npy"]),
        (
            &["--mode", "1", "--dither", "sideways"],
            &["--dither", "sideways"],
        ),
    ];
    for (flags, named) in cases {
        let mut args = vec!["run", s(&src), "-o", s(&out_dir)];
        args.extend_from_slice(flags);
        let out = shutter(&args);
        assert_eq!(out.status.code(), Some(2), "{flags:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{flags:?}: {err}");
        for word in named {
            assert!(err.contains(word), "{flags:?} should name {word}: {err}");
        }
        assert!(!out_dir.exists(), "{flags:?} created the output directory");
    }
}

#[test]
fn dithering_can_be_turned_off_for_bilevel_output() {
    let tmp = TempDir::new().unwrap();
    let (src, img) = picture(tmp.path());
    let dst = tmp.path().join("b.png");
    let out = shutter(&[
        "run",
        s(&src),
        "--mode",
        "1",
        "--dither",
        "none",
        "-o",
        s(&dst),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let want = shutter::mode::cpu::convert(
        ImageMode::One,
        Dither::None,
        img.width(),
        img.height(),
        img.as_raw(),
        false,
    );
    let got = image::open(&dst).unwrap().to_luma8();
    assert_eq!(got.as_raw(), want.as_bytes().as_ref());
    let dithered = reference(ImageMode::One, &img);
    assert_ne!(want, dithered, "the picture must show the difference");
}

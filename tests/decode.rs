//! Capture: every format decodes to the pixels that were encoded, animated GIFs, WebPs and
//! PNGs keep their frames and delays (composited as Pillow does), EXIF orientation is applied, SVG comes out with straight alpha,
//! directories expand in order, and every kind of bad input is a typed error naming the file.

mod common;

use std::fs;
use std::io::Cursor;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::time::Duration;

use image::codecs::gif::{GifEncoder, Repeat};
use image::{Delay, DynamicImage, ImageBuffer, ImageFormat, Luma, Rgb, RgbImage, Rgba, RgbaImage};
use shutter::source::{self, DecodeLimits, DecodedFrame, Input, Source};
use shutter::{Error, Plays};
use tempfile::TempDir;

/// A smooth, never-zero RGBA gradient with varied alpha.
fn gradient(width: u32, height: u32) -> RgbaImage {
    RgbaImage::from_fn(width, height, |x, y| {
        Rgba([
            (20 + x * 200 / width.max(1)) as u8,
            (30 + y * 200 / height.max(1)) as u8,
            (90 + (x + y) * 100 / (width + height)) as u8,
            (60 + (x * 7 + y * 3) % 190) as u8,
        ])
    })
}

fn opaque(image: &RgbaImage) -> RgbImage {
    DynamicImage::ImageRgba8(image.clone()).to_rgb8()
}

/// The RGBA8 bytes an RGB image decodes to: A = 255.
fn rgb_to_rgba(image: &RgbImage) -> Vec<u8> {
    image
        .pixels()
        .flat_map(|p| [p[0], p[1], p[2], 255])
        .collect()
}

fn decode_path(path: &Path, limits: &DecodeLimits) -> Result<Vec<DecodedFrame>, Error> {
    let input = Input::from_path(path);
    source::decode(&input, limits)?.collect()
}

fn decode_one(path: &Path) -> DecodedFrame {
    let mut frames = decode_path(path, &DecodeLimits::default())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(frames.len(), 1, "{}", path.display());
    frames.remove(0)
}

fn decode_err(path: &Path, limits: &DecodeLimits) -> Error {
    match decode_path(path, limits) {
        Ok(frames) => panic!("{}: decoded {} frames", path.display(), frames.len()),
        Err(err) => {
            let msg = err.to_string();
            eprintln!("{msg}");
            let name = path.file_name().unwrap().to_string_lossy();
            assert!(
                msg.contains(&*name),
                "message does not name the file: {msg}"
            );
            assert!(!msg.contains('\n'), "message is not one line: {msg}");
            err
        }
    }
}

fn save(dir: &TempDir, name: &str, image: &DynamicImage, format: ImageFormat) -> PathBuf {
    let path = dir.path().join(name);
    image.save_with_format(&path, format).unwrap();
    path
}

/// PSNR in dB between two equally long byte buffers.
fn psnr(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len());
    let mse = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2))
        .sum::<f64>()
        / a.len() as f64;
    if mse == 0.0 {
        f64::INFINITY
    } else {
        10.0 * (255.0f64 * 255.0 / mse).log10()
    }
}

fn rgb_of(rgba: &[u8]) -> Vec<u8> {
    rgba.chunks_exact(4)
        .flat_map(|p| [p[0], p[1], p[2]])
        .collect()
}

// ---------------------------------------------------------------- formats decode exactly

#[test]
fn png_rgba_decodes_exactly() {
    let dir = TempDir::new().unwrap();
    let image = gradient(37, 23);
    let path = save(
        &dir,
        "a.png",
        &DynamicImage::ImageRgba8(image.clone()),
        ImageFormat::Png,
    );
    let frame = decode_one(&path);
    assert_eq!((frame.width, frame.height), (37, 23));
    assert_eq!(frame.rgba, image.into_raw());
    assert!(frame.has_alpha);
    assert_eq!(frame.delay, None);
}

#[test]
fn png_rgb_decodes_with_opaque_alpha() {
    let dir = TempDir::new().unwrap();
    let image = opaque(&gradient(20, 10));
    let path = save(
        &dir,
        "rgb.PNG",
        &DynamicImage::ImageRgb8(image.clone()),
        ImageFormat::Png,
    );
    let frame = decode_one(&path);
    assert_eq!(frame.rgba, rgb_to_rgba(&image));
    assert!(!frame.has_alpha);
}

#[test]
fn bmp_decodes_exactly() {
    let dir = TempDir::new().unwrap();
    let image = opaque(&gradient(33, 17));
    let path = save(
        &dir,
        "a.bmp",
        &DynamicImage::ImageRgb8(image.clone()),
        ImageFormat::Bmp,
    );
    let frame = decode_one(&path);
    assert_eq!(frame.rgba, rgb_to_rgba(&image));
}

#[test]
fn tiff_decodes_exactly() {
    let dir = TempDir::new().unwrap();
    let image = gradient(31, 19);
    let path = save(
        &dir,
        "a.tif",
        &DynamicImage::ImageRgba8(image.clone()),
        ImageFormat::Tiff,
    );
    let frame = decode_one(&path);
    assert_eq!(frame.rgba, image.into_raw());
    assert!(frame.has_alpha);
}

#[test]
fn lossless_webp_decodes_exactly() {
    let dir = TempDir::new().unwrap();
    let image = gradient(40, 30);
    // image's WebP encoder is lossless.
    let path = save(
        &dir,
        "a.webp",
        &DynamicImage::ImageRgba8(image.clone()),
        ImageFormat::WebP,
    );
    let frame = decode_one(&path);
    assert_eq!(frame.rgba, image.into_raw());
    assert!(frame.has_alpha);
}

#[test]
fn jpeg_decodes_close_to_the_source() {
    // A smooth gradient at quality 90: decoded PSNR must be ≥ 35 dB.
    let dir = TempDir::new().unwrap();
    let image = opaque(&gradient(64, 48));
    let path = dir.path().join("a.jpeg");
    let mut bytes = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 90)
        .encode_image(&image)
        .unwrap();
    fs::write(&path, &bytes).unwrap();
    let frame = decode_one(&path);
    assert_eq!((frame.width, frame.height), (64, 48));
    assert!(!frame.has_alpha);
    assert!(frame.rgba.chunks_exact(4).all(|p| p[3] == 255));
    let db = psnr(&rgb_of(&frame.rgba), image.as_raw());
    eprintln!("jpeg q90 decode PSNR {db:.1} dB");
    assert!(db >= 35.0, "jpeg PSNR {db:.1} dB");
}

#[test]
fn gray_and_16_bit_convert_like_pillow() {
    let dir = TempDir::new().unwrap();
    // 8-bit gray: replicated into R, G and B.
    let gray = ImageBuffer::<Luma<u8>, _>::from_fn(5, 3, |x, y| Luma([(10 + x * 40 + y) as u8]));
    let path = save(
        &dir,
        "l8.png",
        &DynamicImage::ImageLuma8(gray.clone()),
        ImageFormat::Png,
    );
    let frame = decode_one(&path);
    let expected: Vec<u8> = gray
        .pixels()
        .flat_map(|p| [p[0], p[0], p[0], 255])
        .collect();
    assert_eq!(frame.rgba, expected);

    // 16-bit gray is Pillow's I;16: converting to RGB clips at 255 instead of scaling.
    let values = [1u16, 100, 255, 256, 1000, 65535];
    let gray16 = ImageBuffer::<Luma<u16>, _>::from_raw(6, 1, values.to_vec()).unwrap();
    let path = save(
        &dir,
        "l16.png",
        &DynamicImage::ImageLuma16(gray16),
        ImageFormat::Png,
    );
    let frame = decode_one(&path);
    let got: Vec<u8> = frame.rgba.chunks_exact(4).map(|p| p[0]).collect();
    assert_eq!(got, [1, 100, 255, 255, 255, 255]);

    // 16-bit RGB keeps the high byte of each sample.
    let rgb16 = ImageBuffer::<Rgb<u16>, _>::from_raw(
        2,
        1,
        vec![0x1234, 0xABCD, 0x00FF, 0xFF00, 0x8080, 0x0101],
    )
    .unwrap();
    let path = save(
        &dir,
        "rgb16.png",
        &DynamicImage::ImageRgb16(rgb16),
        ImageFormat::Png,
    );
    let frame = decode_one(&path);
    assert_eq!(frame.rgba, [0x12, 0xAB, 0x00, 255, 0xFF, 0x80, 0x01, 255]);
}

// ---------------------------------------------------------------- GIF

/// A GIF of `colours.len()` solid-ish frames (few colours, so the palette is exact).
fn animated_gif(path: &Path, colours: &[[u8; 3]], delays_ms: &[u32]) -> Vec<RgbaImage> {
    let frames: Vec<RgbaImage> = colours
        .iter()
        .enumerate()
        .map(|(i, c)| {
            RgbaImage::from_fn(12, 8, |x, y| {
                if (x + y + i as u32).is_multiple_of(3) {
                    Rgba([c[0], c[1], c[2], 255])
                } else {
                    Rgba([200, 10 + 20 * i as u8, 60, 255])
                }
            })
        })
        .collect();
    let mut bytes = Vec::new();
    {
        let mut encoder = GifEncoder::new(&mut bytes);
        encoder.set_repeat(Repeat::Infinite).unwrap();
        for (frame, &ms) in frames.iter().zip(delays_ms) {
            encoder
                .encode_frame(image::Frame::from_parts(
                    frame.clone(),
                    0,
                    0,
                    Delay::from_numer_denom_ms(ms, 1),
                ))
                .unwrap();
        }
    }
    fs::write(path, bytes).unwrap();
    frames
}

#[test]
fn gif_yields_every_frame_with_its_delay() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("anim.gif");
    let sources = animated_gif(
        &path,
        &[[255, 0, 0], [0, 255, 0], [0, 0, 255]],
        &[50, 120, 300],
    );
    let frames = decode_path(&path, &DecodeLimits::default()).unwrap();
    assert_eq!(frames.len(), 3);
    let delays: Vec<_> = frames.iter().map(|f| f.delay).collect();
    assert_eq!(
        delays,
        [
            Some(Duration::from_millis(50)),
            Some(Duration::from_millis(120)),
            Some(Duration::from_millis(300))
        ]
    );
    for (frame, source) in frames.iter().zip(&sources) {
        assert_eq!((frame.width, frame.height), (12, 8));
        assert_eq!(&frame.rgba, source.as_raw());
        assert!(!frame.has_alpha, "an opaque GIF frame has no alpha");
    }
}

#[test]
fn gif_with_transparency_reports_alpha() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("t.gif");
    let image = RgbaImage::from_fn(6, 6, |x, _| {
        if x < 3 {
            Rgba([10, 200, 30, 255])
        } else {
            Rgba([0, 0, 0, 0])
        }
    });
    let mut bytes = Vec::new();
    GifEncoder::new(&mut bytes)
        .encode(image.as_raw(), 6, 6, image::ExtendedColorType::Rgba8)
        .unwrap();
    fs::write(&path, bytes).unwrap();
    let frame = decode_one(&path);
    assert!(frame.has_alpha);
    assert_eq!(&frame.rgba[..4], &[10, 200, 30, 255]);
    assert_eq!(frame.rgba[3 * 4 + 3], 0);
}

#[test]
fn truncated_gif_ends_with_an_error_not_a_panic() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("cut.gif");
    animated_gif(
        &path,
        &[[255, 0, 0], [0, 255, 0], [0, 0, 255]],
        &[50, 50, 50],
    );
    let bytes = fs::read(&path).unwrap();
    fs::write(&path, &bytes[..bytes.len() * 2 / 3]).unwrap();
    let err = decode_err(&path, &DecodeLimits::default());
    assert!(matches!(err, Error::Decode { .. }), "{err:?}");
}

// ---------------------------------------------------------------- animated WebP and APNG

/// Asserts that `frames` are Pillow's reading of fixture `name`: count, size, composited
/// pixels, delays, and alpha exactly where a composited frame has a non-opaque pixel.
fn assert_pillow_frames(name: &str, frames: &[DecodedFrame]) {
    let fixture = common::anim_fixture(name);
    let expected = fixture.frames();
    assert_eq!(frames.len(), expected.len(), "{name}: frame count");
    for (k, (frame, want)) in frames.iter().zip(&expected).enumerate() {
        assert_eq!(
            (frame.width, frame.height),
            (fixture.width, fixture.height),
            "{name} frame {k}"
        );
        assert!(
            frame.rgba == *want,
            "{name} frame {k}: pixels differ from Pillow's"
        );
        // Every frame of an animation has a delay: where Pillow gives none (an APNG's
        // default image), 0.
        let want_delay = fixture.delays_ms[k].or(frame.plays.map(|_| 0));
        assert_eq!(
            frame.delay.map(|d| d.as_millis() as u64),
            want_delay,
            "{name} frame {k}: delay"
        );
        // Alpha as Pillow's mode has it: an RGBA (or LA) frame, however opaque, or a P, L or
        // RGB one that shows transparency.
        let translucent = want.chunks_exact(4).any(|px| px[3] != 255);
        let alpha_mode = matches!(fixture.modes[k].as_str(), "RGBA" | "LA");
        assert_eq!(
            frame.has_alpha,
            alpha_mode || translucent,
            "{name} frame {k}: has_alpha ({})",
            fixture.modes[k]
        );
    }
}

fn decode_fixture(name: &str) -> Vec<DecodedFrame> {
    let path = common::anim_fixture(name).path;
    decode_path(&path, &DecodeLimits::default()).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn animated_webp_gives_every_frame_as_pillow_composites_it() {
    let frames = decode_fixture("anim.webp");
    // Frame 2 is a sub-frame blended over frame 1's translucent pixels; frame 3 is opaque,
    // and still RGBA in Pillow (the file has the alpha flag).
    assert!(frames.iter().all(|f| f.has_alpha));
    assert!(frames[3].rgba.chunks_exact(4).all(|px| px[3] == 255));
    assert_pillow_frames("anim.webp", &frames);
}

#[test]
fn a_webp_of_blended_and_disposed_sub_frames_composites_as_pillow_does() {
    // Translucent sub-frames over translucent pixels, disposal next to and under later
    // frames, a key frame after a full-canvas disposal, a background colour to ignore.
    let frames = decode_fixture("composite.webp");
    assert_pillow_frames("composite.webp", &frames);
}

#[test]
fn a_gifs_transparent_pixels_keep_the_transparent_colour_as_in_pillow() {
    // Pillow fills the canvas and disposed areas with the transparent index's colour at
    // alpha 0; it shows once the alpha is dropped (`convert("RGB")`, Gradio's default mode).
    let frames = decode_fixture("transparent.gif");
    assert!(frames.iter().all(|f| f.has_alpha));
    let hidden: Vec<&[u8]> = frames[0]
        .rgba
        .chunks_exact(4)
        .filter(|px| px[3] == 0)
        .collect();
    assert!(!hidden.is_empty());
    assert!(
        hidden.iter().all(|px| px[..3] == [200, 100, 50]),
        "{hidden:?}"
    );
    assert_pillow_frames("transparent.gif", &frames);
}

#[test]
fn gif_frames_with_their_own_palettes_and_transparent_indices_match_pillow() {
    // Pillow's writer gives each frame its own palette and transparent index; disposal 2
    // paints each frame's own transparent colour, which shows once alpha is dropped.
    let frames = decode_fixture("palettes.gif");
    assert_pillow_frames("palettes.gif", &frames);
}

#[test]
fn gif_sub_frames_restored_interlaced_and_past_the_screen_match_pillow() {
    // Disposal 3, a disposal kept from an earlier frame, an interlaced frame, a local
    // palette, and a first frame reaching past the 7×5 screen, which grows the canvas.
    let frames = decode_fixture("restore.gif");
    assert_eq!((frames[0].width, frames[0].height), (9, 6));
    assert_pillow_frames("restore.gif", &frames);
}

#[test]
fn a_gif_without_its_trailer_and_with_junk_after_it_keeps_every_frame() {
    let frames = decode_fixture("untrailed.gif");
    assert_pillow_frames("untrailed.gif", &frames);
}

#[test]
fn a_gifs_later_frames_are_rgba_when_its_first_had_transparency_however_opaque() {
    // Pillow's frames after the first are RGBA then, and convert as RGBA (P by quantising,
    // not through the WEB palette), opaque ones too.
    let frames = decode_fixture("opaque_later.gif");
    assert_pillow_frames("opaque_later.gif", &frames);
    assert!(frames[1..].iter().all(|f| f.has_alpha));
    assert!(
        frames[1..]
            .iter()
            .all(|f| f.rgba.chunks_exact(4).all(|px| px[3] == 255))
    );
}

/// A GIF with a `screen` and one 1×1 frame at `at` of `size` (index 0: red).
fn one_pixel_gif(screen: (u16, u16), at: (u16, u16), size: (u16, u16)) -> Vec<u8> {
    let mut bytes = b"GIF89a".to_vec();
    bytes.extend(screen.0.to_le_bytes());
    bytes.extend(screen.1.to_le_bytes());
    bytes.extend([0x80, 0, 0, 255, 0, 0, 0, 0, 0]);
    bytes.push(b',');
    for v in [at.0, at.1, size.0, size.1] {
        bytes.extend(v.to_le_bytes());
    }
    // Code size 2: clear, index 0, end.
    bytes.extend([0, 2, 2, 0x44, 0x01, 0, b';']);
    bytes
}

#[test]
fn a_gif_frame_outside_its_screen_grows_the_canvas_as_in_pillow() {
    let dir = TempDir::new().unwrap();
    let outside = dir.path().join("outside.gif");
    fs::write(&outside, one_pixel_gif((8, 8), (100, 100), (1, 1))).unwrap();
    let frame = decode_one(&outside);
    assert_eq!((frame.width, frame.height), (101, 101));
    assert_eq!(frame.rgba[frame.rgba.len() - 4..], [255, 0, 0, 255]);
    assert_eq!(frame.rgba[..4], [255, 0, 0, 255], "the canvas is index 0");
    // A 0×0 screen shows its frame, as Pillow does; no pixels at all is an error.
    let empty_screen = dir.path().join("screen0.gif");
    fs::write(&empty_screen, one_pixel_gif((0, 0), (0, 0), (1, 1))).unwrap();
    let frame = decode_one(&empty_screen);
    assert_eq!(
        (frame.width, frame.height, &frame.rgba[..]),
        (1, 1, &[255, 0, 0, 255][..])
    );
    let nothing = dir.path().join("nothing.gif");
    fs::write(&nothing, one_pixel_gif((0, 0), (0, 0), (0, 0))).unwrap();
    let err = decode_err(&nothing, &DecodeLimits::default());
    assert!(matches!(err, Error::Decode { .. }), "{err:?}");
    assert!(err.to_string().contains("no pixels"), "{err}");
}

/// A first frame disposed of "to previous" (method 3) has no canvas before it: Pillow fills
/// its extent with its transparent index, so the next frame shows transparency where it
/// draws nothing. Screen 2×1, palette red, green, blue, white; frame 0 draws green, blue
/// with transparent index 3 (white) and method 3; frame 1 draws red at (1, 0). Pillow 13
/// reads frame 1 as RGBA [(255, 255, 255, 0), (255, 0, 0, 255)] (not frame 0's green).
#[test]
fn a_first_gif_frame_restored_to_previous_leaves_its_transparent_index() {
    let mut gif = b"GIF89a".to_vec();
    gif.extend([2, 0, 1, 0, 0x81, 0, 0]);
    gif.extend([255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255]);
    // GCE: method 3, transparent flag, 10 cs, index 3; then indices 1, 2 (clear, 1, 2, end).
    gif.extend([0x21, 0xF9, 4, 0x0D, 10, 0, 3, 0]);
    gif.extend([b',', 0, 0, 0, 0, 2, 0, 1, 0, 0, 2, 2, 0x8C, 0x0A, 0]);
    // GCE: no disposal, no transparency; then index 0 at (1, 0) (clear, 0, end).
    gif.extend([0x21, 0xF9, 4, 0, 10, 0, 0, 0]);
    gif.extend([b',', 1, 0, 0, 0, 1, 0, 1, 0, 0, 2, 2, 0x44, 0x01, 0, b';']);
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("restore0.gif");
    fs::write(&path, gif).unwrap();
    let frames = decode_path(&path, &DecodeLimits::default()).unwrap();
    assert_eq!(frames.len(), 2);
    assert_eq!(frames[0].rgba, [0, 255, 0, 255, 0, 0, 255, 255]);
    assert_eq!(frames[1].rgba, [255, 255, 255, 0, 255, 0, 0, 255]);
    assert!(frames[1].has_alpha);
}

/// A disposal to the background whose background index lies past the palette paints the
/// palette's entry 0 (Pillow's `_rgb`), not black. Screen 2×1, background index 5, palette
/// red, green, blue, white; frame 0 draws green, blue; frame 1 draws blue at (0, 0),
/// disposed of to the background; frame 2 draws white at (1, 0). Pillow 13 reads frame 2 as
/// [(255, 0, 0, 255), (255, 255, 255, 255)].
#[test]
fn a_gif_background_index_past_the_palette_disposes_to_its_first_entry() {
    let mut gif = b"GIF89a".to_vec();
    gif.extend([2, 0, 1, 0, 0x81, 5, 0]);
    gif.extend([255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255]);
    // Indices 1, 2 (clear, 1, 2, end).
    gif.extend([b',', 0, 0, 0, 0, 2, 0, 1, 0, 0, 2, 2, 0x8C, 0x0A, 0]);
    // GCE: method 2; then index 2 at (0, 0) (clear, 2, end).
    gif.extend([0x21, 0xF9, 4, 0x08, 10, 0, 0, 0]);
    gif.extend([b',', 0, 0, 0, 0, 1, 0, 1, 0, 0, 2, 2, 0x54, 0x01, 0]);
    // Index 3 at (1, 0) (clear, 3, end).
    gif.extend([b',', 1, 0, 0, 0, 1, 0, 1, 0, 0, 2, 2, 0x5C, 0x01, 0, b';']);
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("background5.gif");
    fs::write(&path, gif).unwrap();
    let frames = decode_path(&path, &DecodeLimits::default()).unwrap();
    let rgba: Vec<&[u8]> = frames.iter().map(|f| &f.rgba[..]).collect();
    assert_eq!(
        rgba,
        [
            &[0, 255, 0, 255, 0, 0, 255, 255][..],
            &[0, 0, 255, 255, 0, 0, 255, 255][..],
            &[255, 0, 0, 255, 255, 255, 255, 255][..],
        ]
    );
}

#[test]
fn a_tiny_gif_with_a_huge_frame_is_a_limits_error_before_any_allocation() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("huge.gif");
    fs::write(&path, one_pixel_gif((1, 1), (0, 0), (60_000, 60_000))).unwrap();
    let err = decode_err(&path, &DecodeLimits::default());
    assert!(matches!(err, Error::Limits { .. }), "{err:?}");
    assert!(err.to_string().contains("60000×60000"), "{err}");
}

#[test]
fn apng_blend_over_translucent_frames_and_every_dispose_op_match_pillow() {
    // Pillow pastes a frame with its alpha as the mask, alpha included, and its "previous"
    // after a blended frame is the blended canvas.
    let frames = decode_fixture("over.png");
    assert_pillow_frames("over.png", &frames);
}

#[test]
fn an_apngs_default_image_outside_the_animation_is_frame_0_as_in_pillow() {
    let frames = decode_fixture("default.png");
    assert_eq!(frames.len(), 4, "the default image and 3 animation frames");
    assert_pillow_frames("default.png", &frames);
}

#[test]
fn apng_gives_every_frame_as_pillow_composites_it() {
    let frames = decode_fixture("anim.png");
    assert_pillow_frames("anim.png", &frames);
}

/// An fcTL whose delay denominator is 0 counts hundredths of a second (the APNG
/// specification; Pillow sets `delay_den = 100`): 5/0 is 50 ms and 7/0 is 70 ms, as Pillow
/// 13 reports for the same two frames (`info["duration"]` 50.0 and 70.0).
#[test]
fn an_apng_delay_over_a_zero_denominator_counts_hundredths_of_a_second() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("den0.png");
    let frames: [[u8; 8]; 2] = [
        [200, 10, 20, 255, 30, 40, 50, 255],
        [60, 70, 80, 255, 90, 100, 110, 255],
    ];
    {
        let mut encoder = png::Encoder::new(fs::File::create(&path).unwrap(), 2, 1);
        encoder.set_color(png::ColorType::Rgba);
        encoder.set_animated(2, 0).unwrap();
        let mut writer = encoder.write_header().unwrap();
        for (pixels, hundredths) in frames.iter().zip([5, 7]) {
            writer.set_frame_delay(hundredths, 0).unwrap();
            writer.write_image_data(pixels).unwrap();
        }
        writer.finish().unwrap();
    }
    let decoded = decode_path(&path, &DecodeLimits::default()).unwrap();
    let delays: Vec<Option<Duration>> = decoded.iter().map(|f| f.delay).collect();
    assert_eq!(
        delays,
        [
            Some(Duration::from_millis(50)),
            Some(Duration::from_millis(70))
        ]
    );
    for (frame, pixels) in decoded.iter().zip(&frames) {
        assert_eq!(frame.rgba, pixels.to_vec());
    }
}

/// A 2-bit gray APNG's levels 0–3 are Pillow's `L;2`: 0, 85, 170, 255 (× 255/3). Pillow 13
/// reads these two 4×1 frames (levels 0 1 2 3, then 3 2 1 0) as exactly those grays.
#[test]
fn a_two_bit_gray_apng_scales_its_levels_as_pillow_does() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("l2.png");
    {
        let mut encoder = png::Encoder::new(fs::File::create(&path).unwrap(), 4, 1);
        encoder.set_color(png::ColorType::Grayscale);
        encoder.set_depth(png::BitDepth::Two);
        encoder.set_animated(2, 0).unwrap();
        let mut writer = encoder.write_header().unwrap();
        writer.write_image_data(&[0b00_01_10_11]).unwrap();
        writer.write_image_data(&[0b11_10_01_00]).unwrap();
        writer.finish().unwrap();
    }
    let gray =
        |levels: [u8; 4]| -> Vec<u8> { levels.iter().flat_map(|&v| [v, v, v, 255]).collect() };
    let frames = decode_path(&path, &DecodeLimits::default()).unwrap();
    let rgba: Vec<Vec<u8>> = frames.into_iter().map(|f| f.rgba).collect();
    assert_eq!(rgba, [gray([0, 85, 170, 255]), gray([255, 170, 85, 0])]);
}

#[test]
fn animations_carry_their_loop_count_as_plays() {
    let times = |n| Some(Plays::Times(NonZeroU32::new(n).unwrap()));
    for (name, plays) in [
        // No NETSCAPE extension: one play. NETSCAPE 3: three repeats after the first play.
        ("once.gif", times(1)),
        ("loop3.gif", times(4)),
        // WebP and APNG count plays.
        ("anim.webp", times(3)),
        ("anim.png", times(2)),
        ("composite.webp", Some(Plays::Forever)),
        ("still.webp", None),
        ("still.png", None),
    ] {
        for (k, frame) in decode_fixture(name).iter().enumerate() {
            assert_eq!(frame.plays, plays, "{name} frame {k}");
        }
    }
}

#[test]
fn image_reports_a_play_once_gif_as_looping_forever() {
    // Why the GIF's loop count is read with the gif crate: image cannot tell these apart.
    use image::AnimationDecoder;
    use image::metadata::LoopCount;
    for name in ["once.gif", "composite.webp"] {
        let path = common::anim_fixture(name).path;
        let reader = std::io::BufReader::new(fs::File::open(&path).unwrap());
        let count = if name.ends_with(".gif") {
            image::codecs::gif::GifDecoder::new(reader)
                .unwrap()
                .loop_count()
        } else {
            image::codecs::webp::WebPDecoder::new(reader)
                .unwrap()
                .loop_count()
        };
        assert!(matches!(count, LoopCount::Infinite), "{name}");
    }
}

#[test]
fn animations_from_bytes_keep_every_frame() {
    for name in ["anim.webp", "anim.png"] {
        let bytes = fs::read(common::anim_fixture(name).path).unwrap();
        let frames: Vec<DecodedFrame> = source::decode_bytes(name, bytes, &DecodeLimits::default())
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_pillow_frames(name, &frames);
    }
}

#[test]
fn a_still_webp_or_png_stays_one_still_frame() {
    for name in ["still.webp", "still.png"] {
        let frames = decode_fixture(name);
        assert_eq!(frames.len(), 1, "{name}");
        let frame = &frames[0];
        assert_eq!(frame.delay, None, "{name}: a still has no delay");
        assert!(frame.has_alpha, "{name}: the decoder reports alpha");
        assert!(
            frame.rgba == common::anim_fixture(name).rgba,
            "{name}: pixels differ from Pillow's"
        );
    }
}

#[test]
fn animations_obey_the_limits() {
    let few_pixels = DecodeLimits {
        max_pixels: 20,
        ..DecodeLimits::default()
    };
    let little_memory = DecodeLimits {
        max_alloc: 100,
        ..DecodeLimits::default()
    };
    for name in ["anim.webp", "anim.png"] {
        let path = common::anim_fixture(name).path;
        for limits in [few_pixels, little_memory] {
            let err = decode_err(&path, &limits);
            assert!(matches!(err, Error::Limits { .. }), "{name}: {err:?}");
            assert!(err.to_string().contains("7×5"), "{err}");
        }
    }
}

#[test]
fn a_truncated_animation_is_a_decode_error_not_a_panic() {
    let dir = TempDir::new().unwrap();
    for name in ["anim.webp", "anim.png"] {
        let bytes = fs::read(common::anim_fixture(name).path).unwrap();
        let path = dir.path().join(format!("cut-{name}"));
        fs::write(&path, &bytes[..bytes.len() * 3 / 4]).unwrap();
        let err = decode_err(&path, &DecodeLimits::default());
        assert!(matches!(err, Error::Decode { .. }), "{name}: {err:?}");
    }
}

// ---------------------------------------------------------------- EXIF orientation

/// A JPEG with an APP1 Exif segment carrying `orientation`, spliced in right after SOI.
fn jpeg_with_orientation(image: &RgbImage, orientation: u16) -> Vec<u8> {
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 95)
        .encode_image(image)
        .unwrap();
    assert_eq!(&jpeg[..2], &[0xFF, 0xD8]);
    // TIFF header (big-endian), one IFD with one entry: 0x0112 SHORT x1 = orientation.
    let mut tiff = Vec::new();
    tiff.extend_from_slice(b"MM\x00\x2A\x00\x00\x00\x08");
    tiff.extend_from_slice(&1u16.to_be_bytes());
    tiff.extend_from_slice(&0x0112u16.to_be_bytes());
    tiff.extend_from_slice(&3u16.to_be_bytes());
    tiff.extend_from_slice(&1u32.to_be_bytes());
    tiff.extend_from_slice(&orientation.to_be_bytes());
    tiff.extend_from_slice(&[0, 0]);
    tiff.extend_from_slice(&0u32.to_be_bytes());
    let mut payload = b"Exif\x00\x00".to_vec();
    payload.extend_from_slice(&tiff);
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&((payload.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(&payload);
    out.extend_from_slice(&jpeg[2..]);
    out
}

/// 32×16: left half red, right half blue.
fn two_halves() -> RgbImage {
    RgbImage::from_fn(32, 16, |x, _| {
        if x < 16 {
            Rgb([230, 20, 20])
        } else {
            Rgb([20, 20, 230])
        }
    })
}

fn pixel(frame: &DecodedFrame, x: u32, y: u32) -> [u8; 4] {
    let i = ((y * frame.width + x) * 4) as usize;
    frame.rgba[i..i + 4].try_into().unwrap()
}

fn is_red(p: [u8; 4]) -> bool {
    p[0] > 180 && p[2] < 80
}

fn is_blue(p: [u8; 4]) -> bool {
    p[2] > 180 && p[0] < 80
}

#[test]
fn exif_orientation_6_rotates_clockwise() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("rot6.jpg");
    fs::write(&path, jpeg_with_orientation(&two_halves(), 6)).unwrap();
    let frame = decode_one(&path);
    // Rotated 90° clockwise: 16 wide, 32 high; the left (red) half is now on top.
    assert_eq!((frame.width, frame.height), (16, 32));
    assert!(is_red(pixel(&frame, 8, 4)), "{:?}", pixel(&frame, 8, 4));
    assert!(is_blue(pixel(&frame, 8, 28)), "{:?}", pixel(&frame, 8, 28));
}

#[test]
fn exif_orientation_3_rotates_half_a_turn() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("rot3.jpg");
    fs::write(&path, jpeg_with_orientation(&two_halves(), 3)).unwrap();
    let frame = decode_one(&path);
    assert_eq!((frame.width, frame.height), (32, 16));
    assert!(is_blue(pixel(&frame, 4, 8)), "{:?}", pixel(&frame, 4, 8));
    assert!(is_red(pixel(&frame, 28, 8)), "{:?}", pixel(&frame, 28, 8));
}

// ---------------------------------------------------------------- SVG

#[test]
fn svg_half_transparent_rect_has_straight_alpha() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("rect.svg");
    fs::write(
        &path,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="8" height="6">
             <rect x="0" y="0" width="8" height="6" fill="#ff8040" fill-opacity="0.5"/>
           </svg>"##,
    )
    .unwrap();
    let frame = decode_one(&path);
    assert_eq!((frame.width, frame.height), (8, 6));
    assert!(frame.has_alpha);
    for px in frame.rgba.chunks_exact(4) {
        for (got, want) in px.iter().zip([255u8, 128, 64, 128]) {
            assert!(
                got.abs_diff(want) <= 1,
                "pixel {px:?}, want ≈ [255, 128, 64, 128]"
            );
        }
    }
}

#[test]
fn svg_size_rounds_up_and_outside_is_transparent() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("odd.svg");
    fs::write(
        &path,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="10.2" height="4.5">
             <rect x="0" y="0" width="2" height="2" fill="blue"/>
           </svg>"#,
    )
    .unwrap();
    let frame = decode_one(&path);
    assert_eq!((frame.width, frame.height), (11, 5));
    assert_eq!(pixel(&frame, 0, 0), [0, 0, 255, 255]);
    assert_eq!(pixel(&frame, 9, 3), [0, 0, 0, 0]);
}

/// An SVG reads no file but itself: an `<image>` or `<feImage>` naming a file beside it
/// (here an SVG, which usvg would render) is skipped, where usvg's default resolver reads any
/// path whole (`/dev/zero` without end, a FIFO forever). One embedded as a `data:` URL is part
/// of the document and is drawn.
#[test]
fn svg_reads_no_other_file_but_draws_an_embedded_one() {
    let dir = TempDir::new().unwrap();
    let red = r#"<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"><rect width="4" height="4" fill="red"/></svg>"#;
    fs::write(dir.path().join("red.svg"), red).unwrap();
    let by_path = dir.path().join("by_path.svg");
    let absolute = dir.path().join("red.svg");
    fs::write(
        &by_path,
        format!(
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="12" height="4">
                 <rect width="12" height="4" fill="blue"/>
                 <image href="red.svg" x="0" y="0" width="4" height="4"/>
                 <image href="{}" x="4" y="0" width="4" height="4"/>
                 <filter id="f" x="0" y="0" width="1" height="1"><feImage href="red.svg"/></filter>
                 <rect x="8" y="0" width="4" height="4" fill="blue" filter="url(#f)"/>
               </svg>"#,
            absolute.display()
        ),
    )
    .unwrap();
    let frame = decode_one(&by_path);
    assert_eq!((frame.width, frame.height), (12, 4));
    for x in [1, 5] {
        assert_eq!(
            pixel(&frame, x, 1),
            [0, 0, 255, 255],
            "x {x}: the file was read"
        );
    }
    assert!(
        !is_red(pixel(&frame, 9, 1)),
        "feImage read the file: {:?}",
        pixel(&frame, 9, 1)
    );

    let embedded = dir.path().join("embedded.svg");
    let data = format!(
        "data:image/svg+xml;utf8,{}",
        red.replace('<', "%3C")
            .replace('>', "%3E")
            .replace('"', "'")
    );
    fs::write(
        &embedded,
        format!(
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="8" height="4">
                 <rect width="8" height="4" fill="blue"/>
                 <image href="{data}" x="0" y="0" width="4" height="4"/>
               </svg>"#
        ),
    )
    .unwrap();
    let frame = decode_one(&embedded);
    assert_eq!(pixel(&frame, 1, 1), [255, 0, 0, 255]);
    assert_eq!(pixel(&frame, 5, 1), [0, 0, 255, 255]);
}

#[test]
fn bytes_are_sniffed_like_stdin() {
    let limits = DecodeLimits::default();
    let image = gradient(9, 7);
    let mut png = Vec::new();
    DynamicImage::ImageRgba8(image.clone())
        .write_to(&mut Cursor::new(&mut png), ImageFormat::Png)
        .unwrap();
    let frames: Vec<_> = source::decode_bytes("<stdin>", png, &limits)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(frames[0].rgba, image.into_raw());

    let svg = "\u{feff}  \n<svg xmlns='http://www.w3.org/2000/svg' width='3' height='2'/>";
    let frames: Vec<_> = source::decode_bytes("<stdin>", svg.as_bytes().to_vec(), &limits)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!((frames[0].width, frames[0].height), (3, 2));

    let err = source::decode_bytes("<stdin>", b"just some text".to_vec(), &limits)
        .err()
        .unwrap();
    assert!(matches!(err, Error::Unsupported { .. }), "{err:?}");
    assert!(err.to_string().contains("<stdin>"));
}

// ---------------------------------------------------------------- expand

#[test]
fn directory_expands_to_sorted_images() {
    let dir = TempDir::new().unwrap();
    let tiny = DynamicImage::ImageRgb8(RgbImage::from_pixel(2, 2, Rgb([1, 2, 3])));
    for name in ["b.png", "a.JPG", "d.Tiff"] {
        let format = ImageFormat::from_path(name.to_lowercase()).unwrap();
        save(&dir, name, &tiny, format);
    }
    fs::write(dir.path().join("c.txt"), "not an image").unwrap();
    fs::write(dir.path().join("notes"), "no extension").unwrap();
    fs::write(
        dir.path().join("e.svg"),
        "<svg xmlns='http://www.w3.org/2000/svg' width='1' height='1'/>",
    )
    .unwrap();
    fs::write(dir.path().join(".hidden.png"), "junk").unwrap();
    fs::create_dir(dir.path().join("sub.png")).unwrap();

    let inputs: Vec<Input> = source::expand(&[Source::Path(dir.path().to_path_buf())])
        .into_iter()
        .collect::<Result<_, _>>()
        .unwrap();
    let names: Vec<String> = inputs
        .iter()
        .map(|i| {
            Path::new(&i.name)
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert_eq!(names, ["a.JPG", "b.png", "d.Tiff", "e.svg"]);
    assert_eq!(inputs[0].stem, "a");
    for input in &inputs {
        let frames: Vec<_> = source::decode(input, &DecodeLimits::default())
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(frames.len(), 1, "{}", input.name);
    }
}

#[test]
fn a_string_is_a_path_and_parses_as_a_command_line_source() {
    for path in ["-", "webcam:0", "photo.png"] {
        assert_eq!(Source::from(path), Source::Path(path.into()), "{path}");
        assert_eq!(Source::from(path.to_string()), Source::Path(path.into()));
    }
    assert_eq!("-".parse::<Source>().unwrap(), Source::Stdin);
    assert!(matches!(
        "pattern:64x32@5".parse::<Source>(),
        Ok(Source::Pattern {
            width: 64,
            height: 32,
            fps: Some(_)
        })
    ));
    assert!(matches!(
        "pattern:2x2".parse::<Source>(),
        Err(Error::Usage(_))
    ));
}

#[test]
fn expand_keeps_order_and_reports_missing_paths() {
    let dir = TempDir::new().unwrap();
    let file = dir.path().join("x.png");
    fs::write(&file, "whatever").unwrap();
    let missing = dir.path().join("missing.png");
    let out = source::expand(&[
        Source::parse(file.to_str().unwrap()).unwrap(),
        Source::Path(missing.clone()),
        Source::parse("-").unwrap(),
    ]);
    assert_eq!(out.len(), 3);
    assert_eq!(out[0].as_ref().unwrap().stem, "x");
    match &out[1] {
        Err(err @ Error::Io { path, .. }) => {
            assert_eq!(path, &missing);
            assert!(err.to_string().contains("missing.png"));
        }
        other => panic!("expected Error::Io, got {other:?}"),
    }
    let stdin = out[2].as_ref().unwrap();
    assert_eq!(
        (stdin.name.as_str(), stdin.stem.as_str()),
        ("<stdin>", "stdin")
    );
}

#[cfg(unix)]
#[test]
fn a_dangling_image_link_in_a_directory_fails_by_name_instead_of_vanishing() {
    let dir = TempDir::new().unwrap();
    fs::write(dir.path().join("a.png"), png_bytes(3, 2)).unwrap();
    std::os::unix::fs::symlink(dir.path().join("gone.png"), dir.path().join("b.png")).unwrap();
    // A link to a directory is still no input.
    fs::create_dir(dir.path().join("sub.png")).unwrap();
    std::os::unix::fs::symlink(dir.path().join("sub.png"), dir.path().join("c.png")).unwrap();
    let inputs: Vec<_> = source::expand(&[Source::Path(dir.path().to_path_buf())])
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let stems: Vec<&str> = inputs.iter().map(|i| i.stem.as_str()).collect();
    assert_eq!(stems, ["a", "b"]);
    match source::decode(&inputs[1], &DecodeLimits::default()).map(|_| ()) {
        Err(err @ Error::Io { .. }) => assert!(err.to_string().contains("b.png"), "{err}"),
        other => panic!("expected Error::Io naming b.png, got {other:?}"),
    }
}

// ---------------------------------------------------------------- bad input

fn png_bytes(width: u32, height: u32) -> Vec<u8> {
    let mut out = Vec::new();
    DynamicImage::ImageRgba8(gradient(width, height))
        .write_to(&mut Cursor::new(&mut out), ImageFormat::Png)
        .unwrap();
    out
}

/// A q90 JPEG of `gradient(w, h)`.
fn jpeg_bytes(width: u32, height: u32) -> Vec<u8> {
    let mut bytes = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 90)
        .encode_image(&opaque(&gradient(width, height)))
        .unwrap();
    bytes
}

/// `jpeg` with an APP1 segment after SOI holding an end-of-image marker (as an EXIF
/// thumbnail's own JPEG does).
fn with_thumbnail_marker(jpeg: &[u8]) -> Vec<u8> {
    let payload = b"Exif\0\0\xFF\xD8thumb\xFF\xD9";
    let len = (payload.len() + 2) as u16;
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(payload);
    out.extend_from_slice(&jpeg[2..]);
    out
}

#[test]
fn a_jpeg_cut_off_in_its_image_data_is_a_decode_error_not_grey_pixels() {
    let dir = TempDir::new().unwrap();
    let bytes = jpeg_bytes(200, 150);
    let cut = bytes.len() * 6 / 10;
    // A cut inside the scan, and the same with an FF D9 in a segment before the scan.
    for (name, data) in [
        ("cut.jpg", bytes[..cut].to_vec()),
        ("cut_thumb.jpg", with_thumbnail_marker(&bytes[..cut])),
    ] {
        let path = dir.path().join(name);
        fs::write(&path, data).unwrap();
        let err = decode_err(&path, &DecodeLimits::default());
        assert!(
            matches!(&err, Error::Decode { format, reason, .. }
                if format == "jpeg" && reason.contains("ends early")),
            "{name}: {err:?}"
        );
    }
    // Complete, with a thumbnail marker or bytes after the end, it decodes as before.
    let whole = decode_one(&{
        let path = dir.path().join("whole.jpg");
        fs::write(&path, &bytes).unwrap();
        path
    });
    for (name, data) in [
        ("thumb.jpg", with_thumbnail_marker(&bytes)),
        ("trailing.jpg", [&bytes[..], b"trailing bytes"].concat()),
    ] {
        let path = dir.path().join(name);
        fs::write(&path, data).unwrap();
        assert_eq!(decode_one(&path).rgba, whole.rgba, "{name}");
    }
}

#[test]
fn truncated_png_is_a_decode_error() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("truncated.png");
    let bytes = png_bytes(64, 64);
    fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let err = decode_err(&path, &DecodeLimits::default());
    assert!(
        matches!(err, Error::Decode { ref format, .. } if format == "png"),
        "{err:?}"
    );
}

#[test]
fn random_bytes_with_png_extension_are_a_decode_error() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("noise.png");
    let noise: Vec<u8> = (0u32..4096)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8 | 1)
        .collect();
    fs::write(&path, noise).unwrap();
    let err = decode_err(&path, &DecodeLimits::default());
    assert!(matches!(err, Error::Decode { .. }), "{err:?}");
}

#[test]
fn zero_byte_file_is_a_decode_error() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("empty.jpg");
    fs::write(&path, b"").unwrap();
    let err = decode_err(&path, &DecodeLimits::default());
    assert!(matches!(err, Error::Decode { .. }), "{err:?}");
}

#[test]
fn a_file_with_an_unknown_or_no_extension_is_read_by_its_content_as_pillow_does() {
    let dir = TempDir::new().unwrap();
    let png = dir.path().join("a.png");
    fs::write(&png, png_bytes(4, 4)).unwrap();
    let want = decode_one(&png).rgba;
    for name in ["image.xyz", "no-extension"] {
        let path = dir.path().join(name);
        fs::write(&path, png_bytes(4, 4)).unwrap();
        assert_eq!(decode_one(&path).rgba, want, "{name}");
    }
    // Content that is no image: unsupported, naming the extension.
    let path = dir.path().join("notes.xyz");
    fs::write(&path, b"just some text, no image here").unwrap();
    let err = decode_err(&path, &DecodeLimits::default());
    assert!(matches!(err, Error::Unsupported { .. }), "{err:?}");
    assert!(err.to_string().contains("xyz"), "{err}");
}

#[test]
fn a_file_with_the_wrong_extension_is_read_by_its_content() {
    let dir = TempDir::new().unwrap();
    let png = dir.path().join("a.png");
    fs::write(&png, png_bytes(4, 4)).unwrap();
    let path = dir.path().join("really-a-png.jpg");
    fs::write(&path, png_bytes(4, 4)).unwrap();
    assert_eq!(decode_one(&path).rgba, decode_one(&png).rgba);
    // Broken in its real format too: that format's error.
    let bytes = png_bytes(64, 64);
    let path = dir.path().join("cut-png.jpg");
    fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let err = decode_err(&path, &DecodeLimits::default());
    assert!(
        matches!(&err, Error::Decode { format, .. } if format == "png"),
        "{err:?}"
    );
}

#[test]
fn image_over_small_limits_is_a_limits_error() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("wide.png");
    fs::write(&path, png_bytes(64, 48)).unwrap();
    let narrow = DecodeLimits {
        max_width: 32,
        ..DecodeLimits::default()
    };
    let err = decode_err(&path, &narrow);
    assert!(matches!(err, Error::Limits { .. }), "{err:?}");
    assert!(err.to_string().contains("64×48"), "{err}");

    let few_pixels = DecodeLimits {
        max_pixels: 1000,
        ..DecodeLimits::default()
    };
    let err = decode_err(&path, &few_pixels);
    assert!(matches!(err, Error::Limits { .. }), "{err:?}");

    let little_memory = DecodeLimits {
        max_alloc: 4096,
        ..DecodeLimits::default()
    };
    let err = decode_err(&path, &little_memory);
    assert!(matches!(err, Error::Limits { .. }), "{err:?}");

    // GIF and SVG obey the limits too.
    let gif = dir.path().join("big.gif");
    animated_gif(&gif, &[[1, 2, 3], [4, 5, 6]], &[10, 10]);
    let tiny = DecodeLimits {
        max_pixels: 50,
        ..DecodeLimits::default()
    };
    let err = decode_err(&gif, &tiny);
    assert!(matches!(err, Error::Limits { .. }), "{err:?}");
    let svg = dir.path().join("big.svg");
    fs::write(
        &svg,
        "<svg xmlns='http://www.w3.org/2000/svg' width='4000' height='4000'/>",
    )
    .unwrap();
    let err = decode_err(&svg, &few_pixels);
    assert!(matches!(err, Error::Limits { .. }), "{err:?}");
    assert!(err.to_string().contains("4000×4000"), "{err}");
}

#[test]
fn png_header_declaring_a_huge_image_is_refused_before_decoding() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("bomb.png");
    fs::write(&path, common::png_header_only(100_000, 100_000)).unwrap();
    let err = decode_err(&path, &DecodeLimits::default());
    assert!(matches!(err, Error::Limits { .. }), "{err:?}");
    assert!(err.to_string().contains("100000×100000"), "{err}");

    // Within the side limits but 3.6 gigapixels: the pixel-count check stops it.
    let path = dir.path().join("bomb2.png");
    fs::write(&path, common::png_header_only(60_000, 60_000)).unwrap();
    let err = decode_err(&path, &DecodeLimits::default());
    assert!(matches!(err, Error::Limits { .. }), "{err:?}");
    assert!(
        err.to_string().contains("60000×60000 is 3600000000 pixels"),
        "{err}"
    );
}

#[test]
fn malformed_svg_is_a_decode_error() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("broken.svg");
    fs::write(
        &path,
        "<svg xmlns='http://www.w3.org/2000/svg' width='4'><rect",
    )
    .unwrap();
    let err = decode_err(&path, &DecodeLimits::default());
    assert!(
        matches!(err, Error::Decode { ref format, .. } if format == "svg"),
        "{err:?}"
    );
}

#[test]
fn missing_file_is_an_io_error() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("gone.png");
    let err = decode_err(&path, &DecodeLimits::default());
    assert!(matches!(err, Error::Io { .. }), "{err:?}");
}

/// Malformed files found by mutation fuzzing fail with one readable line: a PNG chunk type of
/// a byte that is no letter is named whole (it was cut at its escape's brace, leaving the
/// rest of the chunk's debug dump), and a JPEG's message from zune-jpeg comes without the
/// quotes and `\n` of its debug form.
#[test]
fn malformed_files_give_readable_messages() {
    let dir = TempDir::new().unwrap();
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    common::png_chunk(
        &mut png,
        b"I\x01DR",
        &[0, 0, 0, 1, 0, 0, 0, 1, 8, 0, 0, 0, 0],
    );
    common::png_chunk(&mut png, b"IEND", &[]);
    let path = dir.path().join("escape.png");
    fs::write(&path, &png).unwrap();
    let err = decode_err(&path, &DecodeLimits::default()).to_string();
    assert!(
        err.ends_with("cannot decode png: chunk 'I\\u{1}DR' appeared before IHDR chunk"),
        "{err}"
    );

    let mut jpeg = Vec::new();
    DynamicImage::ImageRgb8(opaque(&gradient(16, 8)))
        .write_to(&mut Cursor::new(&mut jpeg), ImageFormat::Jpeg)
        .unwrap();
    // An APP0 segment of length 0 right after the start of image.
    jpeg.splice(2..2, [0xFF, 0xE0, 0x00, 0x00]);
    let path = dir.path().join("app0.jpg");
    fs::write(&path, &jpeg).unwrap();
    let err = decode_err(&path, &DecodeLimits::default());
    assert!(matches!(err, Error::Decode { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.starts_with(&format!("{}: cannot decode jpeg: ", path.display())),
        "{text}"
    );
    assert!(!text.contains('"') && !text.contains('\\'), "{text}");

    // A PNG 2^31 − 1 pixels wide is over the limits by its size, not "Memory limit exceeded"
    // (`image`'s refusal of its row buffer).
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = (i32::MAX as u32).to_be_bytes().to_vec();
    ihdr.extend([0, 0, 0, 1, 8, 2, 0, 0, 0]);
    common::png_chunk(&mut png, b"IHDR", &ihdr);
    common::png_chunk(&mut png, b"IEND", &[]);
    let path = dir.path().join("wide.png");
    fs::write(&path, &png).unwrap();
    let err = decode_err(&path, &DecodeLimits::default());
    assert!(matches!(err, Error::Limits { .. }), "{err:?}");
    assert!(
        err.to_string()
            .ends_with("2147483647×1 is larger than the maximum of 65535×65535"),
        "{err}"
    );
}

/// Files that made a decoder crate panic (found by mutation fuzzing) fail by name with a
/// decode error, and the decode returns: a palette PNG whose PLTE chunk holds no whole number
/// of colours (the `png` crate indexes past it), SVGs whose coordinates tiny-skia's
/// rasteriser cannot hold, and SVG turbulences asking for more octaves than resvg can draw.
#[test]
fn inputs_that_make_a_decoder_panic_or_hang_fail_by_name() {
    let dir = TempDir::new().unwrap();
    // 1×1, 8-bit palette, a PLTE of 4 bytes, one pixel of index 0.
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    common::png_chunk(&mut png, b"IHDR", &[0, 0, 0, 1, 0, 0, 0, 1, 8, 3, 0, 0, 0]);
    common::png_chunk(&mut png, b"PLTE", &[0, 1, 2, 3]);
    common::png_chunk(
        &mut png,
        b"IDAT",
        &[0x78, 0x9C, 0x63, 0x60, 0x00, 0x00, 0x00, 0x02, 0x00, 0x01],
    );
    common::png_chunk(&mut png, b"IEND", &[]);
    let path = dir.path().join("plte4.png");
    fs::write(&path, &png).unwrap();
    let err = decode_err(&path, &DecodeLimits::default());
    assert!(matches!(err, Error::Decode { .. }), "{err:?}");
    assert!(err.to_string().contains("PLTE chunk has 4 bytes"), "{err}");

    let svg = |body: &str| {
        format!("<svg xmlns='http://www.w3.org/2000/svg' width='50' height='25'>{body}</svg>")
    };
    for (name, body) in [
        (
            "scale.svg",
            "<g transform='scale(1e30)'><circle r='5'/></g>",
        ),
        (
            "offset.svg",
            "<filter id='f'><feOffset dx='1e30'/></filter><rect width='10' height='10' filter='url(#f)'/>",
        ),
    ] {
        let path = dir.path().join(name);
        fs::write(&path, svg(body)).unwrap();
        let err = decode_err(&path, &DecodeLimits::default());
        assert!(matches!(err, Error::Decode { .. }), "{name}: {err:?}");
        assert!(
            err.to_string().contains("the decoder failed on its data"),
            "{err}"
        );
    }
    // Octaves past the 30th add nothing a pixel shows, and resvg gets them wrong (its lattice
    // coordinates overflow: debug builds panic, release ones drift to white): they are drawn
    // with 30, however written, and take no longer than 30.
    let octaves = |path: &Path, n: &str| {
        fs::write(
            path,
            svg(&format!(
                "<filter id='f'><feTurbulence baseFrequency='0.1' numOctaves={n}/></filter>\
                 <rect width='20' height='20' filter='url(#f)'/>"
            )),
        )
        .unwrap();
        decode_path(path, &DecodeLimits::default()).map(|frames| frames[0].rgba.clone())
    };
    let path = dir.path().join("octaves.svg");
    let drawn = octaves(&path, "'29'").unwrap();
    assert!(drawn.iter().any(|&v| v != drawn[0]), "a noise is drawn");
    for n in [
        "'30'",
        "'31'",
        "'64'",
        "\" +6.4e1 \"",
        "'255'",
        "'4294967296'",
    ] {
        assert_eq!(octaves(&path, n).unwrap(), drawn, "numOctaves={n}");
    }
    // One usvg reads through a character reference is not rewritten, and is refused.
    let err = octaves(&path, "'&#54;4'").unwrap_err();
    assert!(matches!(err, Error::Limits { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("asks for 64 octaves, more than the 30 shutter renders"),
        "{err}"
    );
}

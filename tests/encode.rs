//! Encoders: every format round-trips (lossless ones exactly, jpeg and lossy webp within a
//! stated PSNR), animated GIFs keep frames and delays, npy is a valid v1.0 file, settings are
//! validated as usage errors, and atomic writes never leave a partial or temp file behind.

mod common;

use std::fs;
use std::path::Path;
use std::time::Duration;

use image::codecs::gif::GifDecoder;
use image::metadata::LoopCount;
use image::{AnimationDecoder, ImageFormat};
use shutter::sink::encode::{self, Format};
use shutter::sink::sequence::SequenceWriter;
use shutter::{Dither, Error, Frame, FrameMeta, ImageMode};
use tempfile::TempDir;

/// A smooth, never-zero RGBA gradient with varied alpha (alpha is dropped by the encoders).
fn gradient(width: u32, height: u32) -> Frame {
    let mut rgba = Vec::with_capacity((width * height * 4) as usize);
    for y in 0..height {
        for x in 0..width {
            rgba.extend_from_slice(&[
                (20 + x * 200 / width) as u8,
                (30 + y * 200 / height) as u8,
                (90 + (x + y) * 100 / (width + height)) as u8,
                (60 + (x * 7 + y * 3) % 190) as u8,
            ]);
        }
    }
    Frame::new(width, height, rgba, true, FrameMeta::still(0, 0))
}

/// A pseudo-random frame (xorshift), for exact round trips of noisy content.
fn noise(width: u32, height: u32, seed: u64) -> Frame {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let rgba = (0..width * height * 4)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect();
    Frame::new(width, height, rgba, true, FrameMeta::still(0, 0))
}

/// A frame of few colours (an exact GIF palette), with a delay.
fn few_colours(index: u8, delay: Option<Duration>) -> Frame {
    let (w, h) = (10u32, 6u32);
    let mut rgba = Vec::new();
    for y in 0..h {
        for x in 0..w {
            if (x + y + u32::from(index)).is_multiple_of(4) {
                rgba.extend_from_slice(&[250, 40 * index, 20, 255]);
            } else {
                rgba.extend_from_slice(&[30, 90, 200 - 30 * index, 255]);
            }
        }
    }
    let mut meta = FrameMeta::still(u64::from(index), 0);
    meta.index = usize::from(index);
    meta.delay = delay;
    Frame::new(w, h, rgba, false, meta)
}

fn decode_rgb(bytes: &[u8], format: ImageFormat) -> (u32, u32, Vec<u8>) {
    let image = image::load_from_memory_with_format(bytes, format)
        .unwrap_or_else(|e| panic!("{format:?} does not decode: {e}"));
    (image.width(), image.height(), image.to_rgb8().into_raw())
}

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

fn assert_exact(format: Format, image_format: ImageFormat) {
    for frame in [gradient(37, 21), noise(16, 9, 7)] {
        let bytes = encode::encode(&format, std::slice::from_ref(&frame)).unwrap();
        let (w, h, rgb) = decode_rgb(&bytes, image_format);
        assert_eq!((w, h), (frame.width, frame.height), "{format:?}");
        assert_eq!(rgb, frame.to_rgb(), "{format:?} is not exact");
    }
}

// ---------------------------------------------------------------- round trips

#[test]
fn png_round_trips_exactly() {
    assert_exact(Format::Png, ImageFormat::Png);
}

#[test]
fn bmp_round_trips_exactly() {
    assert_exact(Format::Bmp, ImageFormat::Bmp);
}

#[test]
fn tiff_round_trips_exactly() {
    assert_exact(Format::Tiff, ImageFormat::Tiff);
}

#[test]
fn lossless_webp_round_trips_exactly() {
    let format = Format::from_name("webp", None, true).unwrap();
    assert_exact(format, ImageFormat::WebP);
}

#[test]
fn outputs_are_rgb_with_alpha_dropped_not_composited() {
    // A fully transparent pixel keeps its colour: no compositing onto a background.
    let frame = Frame::new(
        2,
        1,
        vec![200, 100, 50, 0, 10, 20, 30, 128],
        true,
        FrameMeta::still(0, 0),
    );
    let bytes = encode::encode(&Format::Png, &[frame]).unwrap();
    let image = image::load_from_memory_with_format(&bytes, ImageFormat::Png).unwrap();
    assert_eq!(image.color(), image::ColorType::Rgb8);
    assert_eq!(image.to_rgb8().into_raw(), [200, 100, 50, 10, 20, 30]);
}

#[test]
fn jpeg_round_trips_within_30_db() {
    // Smooth 96×64 gradient at Pillow's default quality 75: PSNR must be ≥ 30 dB.
    let frame = gradient(96, 64);
    let format = Format::from_name("jpeg", None, false).unwrap();
    assert_eq!(format, Format::Jpeg { quality: 75 });
    let bytes = encode::encode(&format, std::slice::from_ref(&frame)).unwrap();
    let (w, h, rgb) = decode_rgb(&bytes, ImageFormat::Jpeg);
    assert_eq!((w, h), (96, 64));
    let db = psnr(&rgb, &frame.to_rgb());
    eprintln!("jpeg q75 PSNR {db:.1} dB");
    assert!(db >= 30.0, "jpeg q75 PSNR {db:.1} dB");

    // Higher quality gives a bigger, closer file.
    let best =
        encode::encode(&Format::Jpeg { quality: 100 }, std::slice::from_ref(&frame)).unwrap();
    assert!(best.len() > bytes.len());
    let (_, _, rgb) = decode_rgb(&best, ImageFormat::Jpeg);
    assert!(psnr(&rgb, &frame.to_rgb()) > db);
}

/// `frame` converted to `mode` by the CPU backend, as the pipeline hands it to the encoders.
fn in_mode(mut frame: Frame, mode: ImageMode) -> Frame {
    frame.image = Some(shutter::mode::cpu::convert_frame(
        mode,
        Dither::FloydSteinberg,
        &frame,
    ));
    frame
}

/// The marker and payload of each segment of a JPEG before its first scan.
fn jpeg_segments(bytes: &[u8]) -> Vec<(u8, &[u8])> {
    assert_eq!(&bytes[..2], &[0xFF, 0xD8], "starts with SOI");
    let mut segments = Vec::new();
    let mut i = 2;
    while bytes[i + 1] != 0xDA {
        assert_eq!(bytes[i], 0xFF, "a marker at byte {i}");
        let len = usize::from(u16::from_be_bytes([bytes[i + 2], bytes[i + 3]]));
        segments.push((bytes[i + 1], &bytes[i + 4..i + 2 + len]));
        i += 2 + len;
    }
    segments
}

/// (horizontal sampling, vertical sampling, quantization table number) of each component,
/// from the baseline frame header (SOF0).
fn jpeg_components(bytes: &[u8]) -> Vec<(u8, u8, u8)> {
    let (_, sof) = jpeg_segments(bytes)
        .into_iter()
        .find(|&(marker, _)| marker == 0xC0)
        .expect("a baseline JPEG");
    sof[6..]
        .chunks_exact(3)
        .take(usize::from(sof[5]))
        .map(|c| (c[1] >> 4, c[1] & 0x0F, c[2]))
        .collect()
}

/// The 8-bit quantization table numbered `number`, in zigzag order, from the DQT segments.
fn jpeg_table(bytes: &[u8], number: u8) -> Vec<u8> {
    for (marker, mut dqt) in jpeg_segments(bytes) {
        while marker == 0xDB && dqt.len() >= 65 {
            if dqt[0] == number {
                return dqt[1..65].to_vec();
            }
            dqt = &dqt[65..];
        }
    }
    panic!("no quantization table {number}");
}

#[test]
fn cmyk_jpeg_has_four_full_resolution_components_quantized_like_pillow() {
    // Pillow (libjpeg) subsamples no CMYK component and quantizes each with the luma table.
    let frame = gradient(37, 21);
    for quality in [1, 75, 90, 100] {
        let bytes = encode::encode(
            &Format::Jpeg { quality },
            &[in_mode(frame.clone(), ImageMode::Cmyk)],
        )
        .unwrap();
        let components = jpeg_components(&bytes);
        assert_eq!(components.len(), 4, "quality {quality}");
        for (h, v, table) in components {
            assert_eq!((h, v), (1, 1), "quality {quality}");
            if quality == 75 {
                // Pillow's luma table at quality 75, in zigzag order.
                assert_eq!(
                    jpeg_table(&bytes, table)[..8],
                    [8, 6, 6, 7, 6, 5, 8, 7],
                    "table {table}"
                );
            }
        }
    }
}

#[test]
fn rgb_and_ycbcr_jpegs_are_4_2_0_at_every_quality_like_pillow() {
    // Pillow (libjpeg) subsamples chroma 2×2 whatever the quality; gray has one component.
    let frame = gradient(37, 21);
    let cases = [
        (ImageMode::Rgb, vec![(2, 2), (1, 1), (1, 1)]),
        (ImageMode::YCbCr, vec![(2, 2), (1, 1), (1, 1)]),
        (ImageMode::L, vec![(1, 1)]),
        (ImageMode::One, vec![(1, 1)]),
    ];
    for (mode, want) in cases {
        for quality in [1, 75, 90, 100] {
            let bytes =
                encode::encode(&Format::Jpeg { quality }, &[in_mode(frame.clone(), mode)]).unwrap();
            let sampling: Vec<(u8, u8)> = jpeg_components(&bytes)
                .into_iter()
                .map(|(h, v, _)| (h, v))
                .collect();
            assert_eq!(sampling, want, "{mode} at quality {quality}");
        }
    }
    // A frame without a converted image is written as RGB, the same way.
    let bytes = encode::encode(&Format::Jpeg { quality: 75 }, &[frame]).unwrap();
    assert_eq!(jpeg_components(&bytes).len(), 3);
    assert_eq!(jpeg_components(&bytes)[0], (2, 2, 0));
}

#[test]
fn cmyk_jpeg_decodes_back_to_the_source_colours_at_the_default_quality() {
    // RGB → CMYK is (255 − R, 255 − G, 255 − B, 0), so the decoded RGB is the source's.
    for frame in [gradient(37, 21), gradient(96, 64)] {
        let bytes = encode::encode(
            &Format::Jpeg { quality: 75 },
            &[in_mode(frame.clone(), ImageMode::Cmyk)],
        )
        .unwrap();
        let (w, h, rgb) = decode_rgb(&bytes, ImageFormat::Jpeg);
        assert_eq!((w, h), (frame.width, frame.height));
        let db = psnr(&rgb, &frame.to_rgb());
        assert!(db >= 35.0, "CMYK jpeg q75 {w}×{h} PSNR {db:.1} dB");
    }
}

/// A 13×5 black-and-white picture (1 for white), and Pillow 13's BMP of its `1` image
/// (`Image.fromarray(rows).convert("1").save("x.bmp")`).
const ONE_BIT_ROWS: [&str; 5] = [
    "1101110101011",
    "1011010111010",
    "1101111010101",
    "0010100000010",
    "0011101010100",
];
#[rustfmt::skip]
const PILLOW_ONE_BIT_BMP: [u8; 82] = [
    // BITMAPFILEHEADER: size 82, pixels at 62.
    0x42, 0x4d, 0x52, 0, 0, 0, 0, 0, 0, 0, 0x3e, 0, 0, 0,
    // BITMAPINFOHEADER: 13×5, 1 plane, 1 bit, uncompressed, 20 bytes, 3780 px/m, 2 colours.
    0x28, 0, 0, 0, 0x0d, 0, 0, 0, 0x05, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0x14, 0, 0, 0,
    0xc4, 0x0e, 0, 0, 0xc4, 0x0e, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0,
    // Palette: black, white.
    0, 0, 0, 0, 0xff, 0xff, 0xff, 0,
    // Rows bottom-up, 4 bytes each.
    0x3a, 0xa0, 0, 0, 0x28, 0x10, 0, 0, 0xde, 0xa8, 0, 0, 0xb5, 0xd0, 0, 0, 0xdd, 0x58, 0, 0,
];

/// [`ONE_BIT_ROWS`] as a `1` frame, and its 0/255 samples.
fn one_bit_frame() -> (Frame, Vec<u8>) {
    let gray: Vec<u8> = ONE_BIT_ROWS
        .concat()
        .bytes()
        .map(|b| if b == b'1' { 255 } else { 0 })
        .collect();
    let rgba = gray.iter().flat_map(|&v| [v, v, v, 255]).collect();
    let frame = Frame::new(13, 5, rgba, false, FrameMeta::still(0, 0));
    let frame = in_mode(frame, ImageMode::One);
    (frame, gray)
}

#[test]
fn one_bit_png_bmp_and_tiff_hold_one_bit_a_pixel_like_pillow() {
    let (frame, gray) = one_bit_frame();
    let frames = std::slice::from_ref(&frame);

    let png = encode::encode(&Format::Png, frames).unwrap();
    let reader = png::Decoder::new(std::io::Cursor::new(&png))
        .read_info()
        .unwrap();
    let info = reader.info();
    assert_eq!(
        (info.color_type, info.bit_depth),
        (png::ColorType::Grayscale, png::BitDepth::One)
    );

    let bmp = encode::encode(&Format::Bmp, frames).unwrap();
    assert_eq!(bmp, PILLOW_ONE_BIT_BMP, "Pillow's bytes");

    let tiff = encode::encode(&Format::Tiff, frames).unwrap();
    let mut decoder = tiff::decoder::Decoder::new(std::io::Cursor::new(&tiff)).unwrap();
    let tag = |decoder: &mut tiff::decoder::Decoder<_>, tag| decoder.get_tag_u32(tag).unwrap();
    use tiff::tags::Tag;
    // What Pillow writes: 1 bit, BlackIsZero, uncompressed, one strip of 2-byte rows.
    assert_eq!(tag(&mut decoder, Tag::BitsPerSample), 1);
    assert_eq!(tag(&mut decoder, Tag::PhotometricInterpretation), 1);
    assert_eq!(tag(&mut decoder, Tag::Compression), 1);
    assert_eq!(tag(&mut decoder, Tag::RowsPerStrip), 5);
    assert_eq!(tag(&mut decoder, Tag::StripByteCounts), 10);

    // Our decoder reads each back as black and white.
    for (bytes, format) in [
        (&png, ImageFormat::Png),
        (&bmp, ImageFormat::Bmp),
        (&tiff, ImageFormat::Tiff),
    ] {
        let image = image::load_from_memory_with_format(bytes, format).unwrap();
        assert_eq!(image.to_luma8().into_raw(), gray, "{format:?}");
    }
}

#[test]
fn lossy_webp_round_trips_within_30_db() {
    // Smooth 96×64 gradient at the default quality 80: PSNR must be ≥ 30 dB.
    let frame = gradient(96, 64);
    let format = Format::default();
    assert_eq!(
        format,
        Format::Webp {
            quality: 80.0,
            lossless: false
        }
    );
    let bytes = encode::encode(&format, std::slice::from_ref(&frame)).unwrap();
    assert_eq!(&bytes[..4], b"RIFF");
    assert_eq!(
        &bytes[8..16],
        b"WEBPVP8 ",
        "lossy webp uses the VP8 bitstream"
    );
    let (w, h, rgb) = decode_rgb(&bytes, ImageFormat::WebP);
    assert_eq!((w, h), (96, 64));
    let db = psnr(&rgb, &frame.to_rgb());
    eprintln!("webp q80 PSNR {db:.1} dB");
    assert!(db >= 30.0, "webp q80 PSNR {db:.1} dB");

    let low = encode::encode(
        &Format::from_name("webp", Some(5.0), false).unwrap(),
        &[noise(64, 64, 3)],
    )
    .unwrap();
    let high = encode::encode(
        &Format::from_name("webp", Some(95.0), false).unwrap(),
        &[noise(64, 64, 3)],
    )
    .unwrap();
    assert!(high.len() > low.len(), "quality changes the output");
}

#[test]
fn still_gif_round_trips() {
    let frame = few_colours(1, None);
    let bytes = encode::encode(&Format::Gif, std::slice::from_ref(&frame)).unwrap();
    let (w, h, rgb) = decode_rgb(&bytes, ImageFormat::Gif);
    assert_eq!((w, h), (10, 6));
    assert_eq!(rgb, frame.to_rgb(), "≤ 256 colours give an exact palette");
}

/// A GIF's global colour table, and for each image whether it has a local one.
fn gif_tables(bytes: &[u8]) -> (Vec<u8>, Vec<bool>) {
    let table_len = |flags: u8| 3 * (2usize << (flags & 7));
    let flags = bytes[10];
    let mut at = 13;
    let global = if flags & 0x80 != 0 {
        at += table_len(flags);
        bytes[13..at].to_vec()
    } else {
        Vec::new()
    };
    let mut locals = Vec::new();
    let skip_blocks = |mut at: usize| {
        while bytes[at] != 0 {
            at += 1 + usize::from(bytes[at]);
        }
        at + 1
    };
    loop {
        match bytes[at] {
            0x21 => at = skip_blocks(at + 2),
            0x2C => {
                let flags = bytes[at + 9];
                locals.push(flags & 0x80 != 0);
                at += 10;
                if flags & 0x80 != 0 {
                    at += table_len(flags);
                }
                at = skip_blocks(at + 1);
            }
            0x3B => return (global, locals),
            other => panic!("unexpected GIF block {other:#x} at {at}"),
        }
    }
}

#[test]
fn a_gifs_global_colour_table_is_its_first_frames_palette_as_pillow_writes_it() {
    // Pillow takes a GIF's mode from its global table (a gray ramp opens as L): an empty one
    // would make every frame black in Pillow's `convert("RGB")`.
    let mut gray = gradient(7, 3);
    for px in gray.rgba.chunks_exact_mut(4) {
        px[1] = px[0];
        px[2] = px[0];
        px[3] = 255;
    }
    gray.has_alpha = false;
    gray.source = shutter::mode::source::SourceMode::Gray;
    // Pillow's `convert("P")` of an L image: its indices are the gray values, the palette a ramp.
    let gray_p = in_mode(gray, ImageMode::P);
    let bytes = encode::encode(&Format::Gif, std::slice::from_ref(&gray_p)).unwrap();
    let (global, locals) = gif_tables(&bytes);
    let ramp: Vec<u8> = (0..=255u8).flat_map(|v| [v, v, v]).collect();
    assert_eq!(global, ramp);
    assert_eq!(locals, [false]);

    // Frames each with its own exact palette (45 colours): the first in the global table,
    // the next with a local one, the first frame again with none.
    let frames = [noise(9, 5, 1), noise(9, 5, 2), noise(9, 5, 1)];
    let bytes = encode::encode(&Format::Gif, &frames).unwrap();
    let (global, locals) = gif_tables(&bytes);
    assert!(global.len() >= 45 * 3, "{} bytes", global.len());
    assert_eq!(locals, [false, true, false]);
}

#[test]
fn a_gif_stopped_while_encoding_keeps_the_frames_done() {
    // The stop is asked before each frame after the first: here it says yes on its third
    // call, so frames 0, 1 and 2 are written, in RGB (quantised) and in P alike.
    for mode in [None, Some(ImageMode::P)] {
        let frames: Vec<Frame> = (0..6)
            .map(|k| {
                let frame = few_colours(k, Some(Duration::from_millis(50)));
                mode.map_or(frame.clone(), |m| in_mode(frame, m))
            })
            .collect();
        let calls = std::cell::Cell::new(0);
        let stop = || {
            calls.set(calls.get() + 1);
            calls.get() >= 3
        };
        let bytes = encode::encode_until(&Format::Gif, &frames, &stop).unwrap();
        let decoder = GifDecoder::new(std::io::Cursor::new(&bytes)).unwrap();
        let decoded = decoder.into_frames().collect_frames().unwrap();
        assert_eq!(decoded.len(), 3, "{mode:?}");
        // Stopped before the second frame: still a GIF, of the first frame alone.
        let bytes = encode::encode_until(&Format::Gif, &frames, &|| true).unwrap();
        let decoder = GifDecoder::new(std::io::Cursor::new(&bytes)).unwrap();
        assert_eq!(decoder.into_frames().count(), 1, "{mode:?}");
    }
    // An animated WebP stops too (a still of the first frame); an npy is written whole, and
    // its stop not asked.
    let frames: Vec<Frame> = (0..3)
        .map(|k| few_colours(k, Some(Duration::from_millis(50))))
        .collect();
    let bytes = encode::encode_until(&Format::default(), &frames, &|| true).unwrap();
    assert_eq!(webp_frames(&bytes).len(), 1);
    assert!(!webp_chunks(&bytes).contains(&"ANMF".to_string()));
    let asked = std::cell::Cell::new(false);
    let stop = || {
        asked.set(true);
        true
    };
    let bytes = encode::encode_until(&Format::Npy, &frames, &stop).unwrap();
    assert_eq!(parse_npy(&bytes).2[0], 3);
    assert!(!asked.get(), "the npy's stop was asked");
}

#[test]
fn a_p_gifs_transparent_pixels_show_nothing_not_the_frame_before() {
    // A P frame with a transparent palette entry: every frame is disposed of to the
    // background, so frame 1's transparent pixels are transparent when shown, not frame 0's
    // colours (disposal 1 kept frame 0 under them).
    use shutter::mode::{ModeData, ModeImage, Palette};
    let (w, h) = (6u32, 4u32);
    let colours = vec![[0, 0, 0, 0], [250, 20, 30, 255], [10, 200, 90, 255]];
    let frames: Vec<Frame> = (0..3u8)
        .map(|k| {
            // Frame 0 opaque; frames 1 and 2 transparent in a column that moves.
            let indices: Vec<u8> = (0..w * h)
                .map(|i| match (k, i % w) {
                    (0, x) => 1 + (x % 2) as u8,
                    (_, x) if x == u32::from(k) * 2 => 0,
                    (_, x) => 1 + ((x + u32::from(k)) % 2) as u8,
                })
                .collect();
            let mut frame = few_colours(k, Some(Duration::from_millis(50)));
            frame.image = Some(ModeImage {
                width: w,
                height: h,
                mode: ImageMode::P,
                data: ModeData::U8(indices),
                palette: Some(Palette::Rgba(colours.clone())),
            });
            frame
        })
        .collect();
    let bytes = encode::encode(&Format::Gif, &frames).unwrap();
    let decoded = GifDecoder::new(std::io::Cursor::new(&bytes))
        .unwrap()
        .into_frames()
        .collect_frames()
        .unwrap();
    assert_eq!(decoded.len(), 3);
    for (k, (got, want)) in decoded.iter().zip(&frames).enumerate() {
        let Some(ModeImage {
            data: ModeData::U8(indices),
            ..
        }) = &want.image
        else {
            unreachable!()
        };
        let shown: Vec<[u8; 4]> = got.buffer().pixels().map(|p| p.0).collect();
        for (i, (&index, px)) in indices.iter().zip(&shown).enumerate() {
            let colour = colours[usize::from(index)];
            if colour[3] == 0 {
                assert_eq!(px[3], 0, "frame {k} pixel {i}: transparent, not {px:?}");
            } else {
                assert_eq!(*px, colour, "frame {k} pixel {i}");
            }
        }
    }
}

#[test]
fn animated_gif_keeps_frames_and_delays() {
    let frames = vec![
        few_colours(0, Some(Duration::from_millis(40))),
        few_colours(1, Some(Duration::from_millis(120))),
        few_colours(2, None),
    ];
    let bytes = encode::encode(&Format::Gif, &frames).unwrap();
    let decoder = GifDecoder::new(std::io::Cursor::new(&bytes)).unwrap();
    assert!(
        matches!(decoder.loop_count(), LoopCount::Infinite),
        "loops forever"
    );
    let decoded = decoder.into_frames().collect_frames().unwrap();
    assert_eq!(decoded.len(), 3);
    let delays: Vec<u32> = decoded.iter().map(frame_delay_ms).collect();
    assert_eq!(delays, [40, 120, 100], "missing delays default to 100 ms");
    for (got, want) in decoded.iter().zip(&frames) {
        let rgb: Vec<u8> = got
            .buffer()
            .pixels()
            .flat_map(|p| [p[0], p[1], p[2]])
            .collect();
        assert_eq!(rgb, want.to_rgb());
    }
}

/// A decoded GIF frame's delay in milliseconds.
fn frame_delay_ms(frame: &image::Frame) -> u32 {
    let (n, d) = frame.delay().numer_denom_ms();
    n / d
}

/// The delays of a GIF's frames, in milliseconds, as `image` reads them.
fn gif_delays_ms(gif: &[u8]) -> Vec<u32> {
    let frames = GifDecoder::new(std::io::Cursor::new(gif))
        .unwrap()
        .into_frames()
        .collect_frames()
        .unwrap();
    frames.iter().map(frame_delay_ms).collect()
}

/// The delays of an animated WebP's frames, in milliseconds.
fn webp_delays_ms(webp: &[u8]) -> Vec<u128> {
    webp_frames(webp)
        .iter()
        .map(|f| f.delay.unwrap().as_millis())
        .collect()
}

/// The frames of a WebP file as shutter decodes it (as Pillow composites them).
fn webp_frames(bytes: &[u8]) -> Vec<shutter::source::DecodedFrame> {
    shutter::source::decode_bytes("test.webp", bytes.to_vec(), &Default::default())
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// The chunk names of a WebP file, in order (inside `ANMF` frames too).
fn webp_chunks(bytes: &[u8]) -> Vec<String> {
    fn walk(mut at: &[u8], out: &mut Vec<String>) {
        while at.len() >= 8 {
            let len = u32::from_le_bytes(at[4..8].try_into().unwrap()) as usize;
            let name = String::from_utf8_lossy(&at[..4]).to_string();
            if name == "ANMF" {
                walk(&at[24..8 + len], out);
            }
            out.push(name);
            at = &at[(8 + len + (len & 1)).min(at.len())..];
        }
    }
    assert_eq!(&bytes[..4], b"RIFF");
    assert_eq!(
        u32::from_le_bytes(bytes[4..8].try_into().unwrap()) as usize,
        bytes.len() - 8,
        "the RIFF size is the file's"
    );
    let mut out = Vec::new();
    walk(&bytes[12..], &mut out);
    out
}

#[test]
fn an_animated_webp_holds_every_frame_as_its_own_file_would_with_delays_and_plays() {
    let delays = [40, 130, 70, 250];
    let frames: Vec<Frame> = delays
        .iter()
        .enumerate()
        .map(|(k, &ms)| {
            let mut frame = noise(9, 7, k as u64 + 1);
            if k != 2 {
                // Opaque but for frame 2 (the file's alpha flag comes from any frame).
                frame.rgba.chunks_exact_mut(4).for_each(|px| px[3] = 255);
            }
            frame.meta.delay = Some(Duration::from_millis(ms));
            frame.meta.plays = Some(shutter::Plays::Times(3.try_into().unwrap()));
            in_mode(frame, ImageMode::Rgba)
        })
        .collect();
    for lossless in [false, true] {
        let format = Format::from_name("webp", None, lossless).unwrap();
        let bytes = encode::encode(&format, &frames).unwrap();
        let chunks = webp_chunks(&bytes);
        assert_eq!(&chunks[..2], ["VP8X", "ANIM"], "{lossless}");
        assert_eq!(chunks.iter().filter(|c| *c == "ANMF").count(), 4);
        // VP8X: animation and alpha.
        assert_eq!(bytes[20], 0x02 | 0x10, "{lossless}");
        let decoded = webp_frames(&bytes);
        assert_eq!(decoded.len(), 4);
        // libwebp's own animation decoder (browsers' and Pillow's) reads it the same way:
        // each frame's end time, the loop count, and the canvas.
        let libwebp = webp::AnimDecoder::new(&bytes).decode().unwrap();
        assert_eq!(libwebp.len(), 4);
        assert_eq!(libwebp.loop_count, 3);
        let ends: Vec<i32> = (&libwebp).into_iter().map(|f| f.get_time_ms()).collect();
        assert_eq!(ends, [40, 170, 240, 490]);
        for (k, (got, frame)) in decoded.iter().zip(&frames).enumerate() {
            assert_eq!(
                libwebp.get_frame(k).unwrap().get_image(),
                &got.rgba[..],
                "{lossless}: frame {k}"
            );
            assert_eq!(got.delay, Some(Duration::from_millis(delays[k])));
            assert_eq!(
                got.plays,
                Some(shutter::Plays::Times(3.try_into().unwrap()))
            );
            // The frame is the one its own file holds, pixel for pixel.
            let mut alone = frame.clone();
            alone.meta.delay = None;
            let own = webp_frames(&encode::encode(&format, &[alone]).unwrap());
            assert_eq!(got.rgba, own[0].rgba, "{lossless}: frame {k}");
            if lossless {
                assert_eq!(got.rgba, frame.rgba, "frame {k}");
            }
        }
    }
}

/// The rectangle (x, y, width, height) each `ANMF` frame of an animated WebP covers.
fn anmf_rects(bytes: &[u8]) -> Vec<(u32, u32, u32, u32)> {
    let u24 = |b: &[u8]| u32::from_le_bytes([b[0], b[1], b[2], 0]);
    let mut at = &bytes[12..];
    let mut rects = Vec::new();
    while at.len() >= 8 {
        let len = u32::from_le_bytes(at[4..8].try_into().unwrap()) as usize;
        if &at[..4] == b"ANMF" {
            let head = &at[8..24];
            rects.push((
                2 * u24(&head[0..]),
                2 * u24(&head[3..]),
                1 + u24(&head[6..]),
                1 + u24(&head[9..]),
            ));
        }
        at = &at[(8 + len + (len & 1)).min(at.len())..];
    }
    rects
}

#[test]
fn an_animated_webps_later_frames_hold_only_the_rectangle_that_changed() {
    // Frame 1 changes a 3×2 patch at (5, 7): its WebP frame starts at (4, 6), as a frame's
    // offset counts pairs of pixels. Frame 2 is frame 1 again (one pixel is written), and
    // frame 3 changes the last pixel's blue.
    let (w, h) = (37usize, 23usize);
    let first = noise(w as u32, h as u32, 77);
    let mut patched = first.clone();
    for y in 7..9 {
        for x in 5..8 {
            let i = (y * w + x) * 4;
            patched.rgba[i] ^= 0x5a;
            patched.rgba[i + 3] = 255;
        }
    }
    let mut last = patched.clone();
    last.rgba[(w * h - 1) * 4 + 2] ^= 1;
    let frames: Vec<Frame> = [first, patched.clone(), patched, last]
        .into_iter()
        .map(|mut frame| {
            frame.meta.delay = Some(Duration::from_millis(100));
            in_mode(frame, ImageMode::Rgba)
        })
        .collect();
    let rects = [(0, 0, 37, 23), (4, 6, 4, 3), (0, 0, 1, 1), (36, 22, 1, 1)];
    for lossless in [true, false] {
        let format = Format::from_name("webp", None, lossless).unwrap();
        let bytes = encode::encode(&format, &frames).unwrap();
        assert_eq!(anmf_rects(&bytes), rects, "lossless {lossless}");
        let decoded = webp_frames(&bytes);
        let libwebp = webp::AnimDecoder::new(&bytes).decode().unwrap();
        assert_eq!(decoded.len(), 4);
        for (k, got) in decoded.iter().enumerate() {
            assert_eq!(libwebp.get_frame(k).unwrap().get_image(), &got.rgba[..]);
            if lossless {
                assert!(got.rgba == frames[k].rgba, "frame {k} differs");
                continue;
            }
            // Lossy: the rectangle is its own still file's pixels, the rest the frame before.
            let (x0, y0, rw, rh) = rects[k];
            let (x0, y0, rw, rh) = (x0 as usize, y0 as usize, rw as usize, rh as usize);
            let part: Vec<u8> = (y0..y0 + rh)
                .flat_map(|y| frames[k].rgba[(y * w + x0) * 4..(y * w + x0 + rw) * 4].to_vec())
                .collect();
            let part = Frame::new(rw as u32, rh as u32, part, true, FrameMeta::still(0, 0));
            let part = in_mode(part, ImageMode::Rgba);
            let own = &webp_frames(&encode::encode(&format, &[part]).unwrap())[0].rgba;
            for y in 0..h {
                for x in 0..w {
                    let i = (y * w + x) * 4;
                    let inside = (x0..x0 + rw).contains(&x) && (y0..y0 + rh).contains(&y);
                    let want = if inside {
                        &own[((y - y0) * rw + x - x0) * 4..][..4]
                    } else {
                        &decoded[k - 1].rgba[i..i + 4]
                    };
                    assert_eq!(&got.rgba[i..i + 4], want, "frame {k} at ({x}, {y})");
                }
            }
        }
    }
}

#[test]
fn a_gifs_later_frames_hold_the_changed_part_over_the_frame_before_unless_transparent() {
    // Four colours on 20×12, opaque; frame 1 repaints a patch, frame 2 makes one pixel
    // transparent (a transparent pixel shows the canvas, so frame 1 is written as the part
    // around its patch and the hole and disposed of to the background, and frame 2 is that
    // part again, over the cleared part), frame 3 repaints a patch again, and frame 4 a patch
    // around the hole, which is still transparent: a part over frame 3, since the canvas
    // under it is transparent too.
    let (w, h) = (20usize, 12usize);
    let colours = [[200, 30, 40], [20, 160, 60], [30, 40, 220], [240, 240, 20]];
    let first: Vec<u8> = (0..w * h)
        .flat_map(|i| {
            let [r, g, b] = colours[(i % w + i / w) % 4];
            [r, g, b, 255]
        })
        .collect();
    let paint = |rgba: &mut Vec<u8>, xs: std::ops::Range<usize>, ys: std::ops::Range<usize>| {
        for y in ys {
            for x in xs.clone() {
                rgba[(y * w + x) * 4..][..3].copy_from_slice(&colours[3]);
            }
        }
    };
    let mut patched = first.clone();
    paint(&mut patched, 3..6, 2..5);
    let mut holed = patched.clone();
    holed[(7 * w + 9) * 4 + 3] = 0;
    let mut last = holed.clone();
    paint(&mut last, 14..17, 8..11);
    let mut around = last.clone();
    paint(&mut around, 8..11, 6..9);
    let frames: Vec<Frame> = [first, patched, holed, last, around]
        .into_iter()
        .map(|rgba| {
            let mut frame = Frame::new(w as u32, h as u32, rgba, true, FrameMeta::still(0, 0));
            frame.meta.delay = Some(Duration::from_millis(50));
            in_mode(frame, ImageMode::Rgba)
        })
        .collect();
    let bytes = encode::encode(&Format::Gif, &frames).unwrap();
    use gif::DisposalMethod::{Background, Keep};
    assert_eq!(
        gif_layout(&bytes),
        [
            ((0, 0, 20, 12), Keep),
            ((2, 2, 8, 6), Background),
            ((2, 2, 8, 6), Keep),
            ((14, 8, 3, 3), Keep),
            ((8, 6, 3, 3), Background),
        ]
    );
    assert_composites_exactly(&bytes, &frames);

    // Without the hole, frame 1 is the patch, drawn over frame 0; its corner moved up and
    // left to even coordinates, as a WebP frame needs.
    let opaque = [&frames[0], &frames[1]].map(Clone::clone);
    let bytes = encode::encode(&Format::Gif, &opaque).unwrap();
    assert_eq!(gif_layout(&bytes)[1].0, (2, 2, 4, 3));
}

/// Composited, each frame of a GIF is its source frame (of opaque and transparent pixels): the
/// colours exactly, transparent where it is.
fn assert_composites_exactly(bytes: &[u8], frames: &[Frame]) {
    let decoded = GifDecoder::new(std::io::Cursor::new(bytes))
        .unwrap()
        .into_frames()
        .collect_frames()
        .unwrap();
    assert_eq!(decoded.len(), frames.len());
    for (k, (got, want)) in decoded.iter().zip(frames).enumerate() {
        for (i, (g, s)) in got
            .buffer()
            .pixels()
            .zip(want.rgba.chunks_exact(4))
            .enumerate()
        {
            if s[3] == 0 {
                assert_eq!(g[3], 0, "frame {k} pixel {i} is transparent");
            } else {
                assert_eq!(g.0, [s[0], s[1], s[2], 255], "frame {k} pixel {i}");
            }
        }
    }
}

/// Where each frame of a GIF is written, and how it is disposed of.
fn gif_layout(bytes: &[u8]) -> Vec<((u16, u16, u16, u16), gif::DisposalMethod)> {
    let mut options = gif::DecodeOptions::new();
    options.set_color_output(gif::ColorOutput::Indexed);
    let mut decoder = options.read_info(bytes).unwrap();
    let mut written = Vec::new();
    while let Some(frame) = decoder.read_next_frame().unwrap() {
        written.push((
            (frame.left, frame.top, frame.width, frame.height),
            frame.dispose,
        ));
    }
    written
}

#[test]
fn a_gif_clears_only_the_part_where_pixels_turn_transparent() {
    // On a transparent 24×16 canvas: a red square and a green dot; a blue square comes (drawn
    // over frame 0); the dot goes (frame 1 is grown to the part around its square and the
    // dot, and cleared); nothing changes; the red square goes (frame 3, one pixel, is grown
    // to the part around it and the square, and cleared; frame 4 draws one pixel there);
    // nothing changes. A pixel turning transparent costs a part, not the whole canvas.
    let square =
        |x: usize, y: usize, left: usize| (left..left + 3).contains(&x) && (6..9).contains(&y);
    let frames = rgba_animation((24, 16), 6, |x, y, k| {
        if square(x, y, 2) && k < 4 {
            [220, 30, 40, 255]
        } else if square(x, y, 6) && k >= 1 {
            [30, 40, 220, 255]
        } else if (x, y) == (20, 1) && k < 2 {
            [30, 200, 60, 255]
        } else {
            [0, 0, 0, 0]
        }
    });
    let bytes = encode::encode(&Format::Gif, &frames).unwrap();
    use gif::DisposalMethod::{Background, Keep};
    assert_eq!(
        gif_layout(&bytes),
        [
            ((0, 0, 24, 16), Keep),
            ((6, 1, 15, 8), Background),
            ((6, 0, 15, 9), Keep),
            ((0, 0, 5, 9), Background),
            ((0, 0, 1, 1), Keep),
            ((0, 0, 1, 1), Background),
        ]
    );
    assert_composites_exactly(&bytes, &frames);
    // The frames pushed together grow the part of the one before in the batch, not the one
    // held from an earlier push: the same file.
    let mut writer = SequenceWriter::new(Format::Gif, std::io::Cursor::new(Vec::new())).unwrap();
    writer.push_all(&frames.iter().collect::<Vec<_>>()).unwrap();
    assert!(writer.finish().unwrap().into_inner() == bytes, "one batch");
}

/// Each frame of a GIF as written: its transparent index and its indices, and the global
/// palette.
type GifFrames = (Option<Vec<u8>>, Vec<(Option<u8>, Vec<u8>)>);

fn gif_frames_written(bytes: &[u8]) -> GifFrames {
    let mut options = gif::DecodeOptions::new();
    options.set_color_output(gif::ColorOutput::Indexed);
    let mut decoder = options.read_info(bytes).unwrap();
    let global = decoder.global_palette().map(<[u8]>::to_vec);
    let mut frames = Vec::new();
    while let Some(frame) = decoder.read_next_frame().unwrap() {
        frames.push((frame.transparent, frame.buffer.to_vec()));
    }
    (global, frames)
}

/// GIF frames with an RGBA image, rgba `pixel(x, y, k)` on `w` × `h`.
fn rgba_animation(
    (w, h): (usize, usize),
    frames: u8,
    pixel: impl Fn(usize, usize, u8) -> [u8; 4],
) -> Vec<Frame> {
    (0..frames)
        .map(|k| {
            let rgba = (0..w * h).flat_map(|i| pixel(i % w, i / w, k)).collect();
            let mut frame = Frame::new(w as u32, h as u32, rgba, true, FrameMeta::still(0, 0));
            frame.meta.delay = Some(Duration::from_millis(40));
            in_mode(frame, ImageMode::Rgba)
        })
        .collect()
}

#[test]
fn an_rgba_gif_animations_frames_each_keep_a_transparent_index_for_pillow() {
    // Pillow reads every frame after the first as RGB, alpha lost, unless the first frame has
    // a transparent index; and it disposes of a frame without one to its opaque background
    // colour. So each frame of an RGBA animation has one, used by no pixel when the frame is
    // opaque: an extra palette entry, a free one, or (all 256 used) 255 colours.
    let opaque_few = rgba_animation((24, 16), 3, |x, y, k| {
        [(x / 6 * 60) as u8, (y / 4 * 60) as u8, k * 50, 255]
    });
    // Exactly 256 colours, 16 pixels each: the exact palette is full.
    let colour = |c: usize| {
        let c = c * 0x9E37_79B9 % (1 << 24);
        [(c >> 16) as u8, (c >> 8) as u8, c as u8, 255]
    };
    let opaque_many = rgba_animation((64, 64), 2, |x, y, k| {
        colour((y * 64 + x) / 16 + 256 * usize::from(k))
    });
    for (name, frames) in [("few colours", &opaque_few), ("many colours", &opaque_many)] {
        let bytes = encode::encode(&Format::Gif, frames).unwrap();
        let (_, written) = gif_frames_written(&bytes);
        assert_eq!(written.len(), frames.len(), "{name}");
        for (k, (transparent, indices)) in written.iter().enumerate() {
            let t = transparent.unwrap_or_else(|| panic!("{name}: frame {k} has none"));
            assert!(!indices.contains(&t), "{name}: frame {k} uses it");
        }
        let decoded = GifDecoder::new(std::io::Cursor::new(&bytes))
            .unwrap()
            .into_frames()
            .collect_frames()
            .unwrap();
        for (got, want) in decoded.iter().zip(frames) {
            assert!(got.buffer().pixels().all(|p| p[3] == 255), "{name}: opaque");
            if name == "few colours" {
                let rgba: Vec<u8> = got.buffer().as_raw().clone();
                assert!(rgba == want.rgba, "{name}: exact");
            }
        }
    }
    // A full palette: quantised to 255 colours and the slot.
    let bytes = encode::encode(&Format::Gif, &opaque_many).unwrap();
    let (_, written) = gif_frames_written(&bytes);
    let (transparent, indices) = &written[0];
    assert_eq!(*transparent, Some(255));
    assert!(!indices.contains(&255));

    // A still keeps no slot: one frame is not read as an animation.
    let mut still = opaque_few[0].clone();
    still.meta.delay = None;
    let (_, written) = gif_frames_written(&encode::encode(&Format::Gif, &[still]).unwrap());
    assert_eq!(written[0].0, None);
}

#[test]
fn a_gif_animations_global_palette_is_never_the_gray_ramp_that_pillow_opens_as_l() {
    // Frame 0 holds the gray levels 0, 1, 2, 3 (an exact palette: the ramp), frame 1 other
    // grays (its own palette). Pillow would open the file as L and read frame 1's indices as
    // levels; the first two entries are swapped instead. A still keeps its ramp.
    let gray = |levels: [u8; 4]| {
        let rgba = (0..32)
            .flat_map(|i| {
                let v = levels[i % 4];
                [v, v, v, 255]
            })
            .collect();
        let mut frame = Frame::new(8, 4, rgba, false, FrameMeta::still(0, 0));
        frame.meta.delay = Some(Duration::from_millis(100));
        frame
    };
    let frames = [gray([0, 1, 2, 3]), gray([200, 1, 90, 3])];
    let bytes = encode::encode(&Format::Gif, &frames).unwrap();
    let (global, _) = gif_frames_written(&bytes);
    let global = global.expect("a global palette");
    assert_eq!(&global[..12], &[1, 1, 1, 0, 0, 0, 2, 2, 2, 3, 3, 3]);
    let decoded = GifDecoder::new(std::io::Cursor::new(&bytes))
        .unwrap()
        .into_frames()
        .collect_frames()
        .unwrap();
    assert_eq!(decoded.len(), frames.len());
    for (got, want) in decoded.iter().zip(&frames) {
        assert!(got.buffer().as_raw() == &want.rgba);
    }
    let mut still = frames[0].clone();
    still.meta.delay = None;
    let (global, _) = gif_frames_written(&encode::encode(&Format::Gif, &[still]).unwrap());
    assert_eq!(
        &global.unwrap()[..12],
        &[0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]
    );
}

#[test]
fn an_animations_own_delays_keep_their_sum_in_a_webp_and_are_cut_in_a_gif() {
    // An APNG at 30 fps: 33.3 ms a frame. Pillow's WebP places each frame at its rounded
    // start time (33, 34, 33); its GIF cuts each delay to centiseconds (30 each).
    let frames: Vec<Frame> = (0..3)
        .map(|k| {
            let mut frame = few_colours(k, Some(Duration::from_micros(33_333)));
            frame.meta.timestamp = Duration::from_micros(33_333 * u64::from(k));
            frame
        })
        .collect();
    let webp = encode::encode(&Format::default(), &frames).unwrap();
    let delays = webp_delays_ms(&webp);
    assert_eq!(delays, [33, 34, 33]);
    let gif = encode::encode(&Format::Gif, &frames).unwrap();
    let delays = gif_delays_ms(&gif);
    assert_eq!(delays, [30, 30, 30]);
}

#[test]
fn a_gif_cuts_an_animations_own_delays_to_centiseconds_never_rounding_them_up() {
    // Pillow's GIF writer keeps `int(duration / 10)` centiseconds. By hand: 66.667 ms (an APNG
    // at 15 fps) is 6.67 cs, cut to 6 (rounding gives 7); 35 ms is 3.5 cs, cut to 3 (not 4);
    // 99 ms is 9.9 cs, cut to 9 (not 10). A WebP keeps their sum in milliseconds instead:
    // starts at 66.667, 101.667 and 200.667 ms round to 67, 102 and 201, so 67, 35, 99.
    let delays = [66_667, 35_000, 99_000].map(Duration::from_micros);
    let mut at = Duration::ZERO;
    let frames: Vec<Frame> = delays
        .iter()
        .zip(0..)
        .map(|(&delay, k)| {
            let mut frame = few_colours(k, Some(delay));
            frame.meta.timestamp = at;
            at += delay;
            frame
        })
        .collect();
    let gif = encode::encode(&Format::Gif, &frames).unwrap();
    let written = gif_delays_ms(&gif);
    assert_eq!(written, [60, 30, 90]);
    let webp = encode::encode(&Format::default(), &frames).unwrap();
    let written = webp_delays_ms(&webp);
    assert_eq!(written, [67, 35, 99]);
}

#[test]
fn a_streams_webp_frames_last_until_the_next_capture_and_one_frame_is_a_still() {
    // 30 fps: 33.3 ms apart, written as 33, 34, 33, … (their sum kept), the last as the one
    // before it; no frame shorter than 20 ms.
    let times = [0.0, 33.3, 66.7, 100.0, 105.0, 200.0];
    let frames: Vec<Frame> = times
        .iter()
        .enumerate()
        .map(|(k, &ms)| {
            let mut frame = noise(6, 4, 20 + k as u64);
            frame.meta = FrameMeta {
                timestamp: Duration::from_secs_f64(ms / 1000.0),
                sequence: true,
                ..FrameMeta::still(k as u64, 0)
            };
            frame
        })
        .collect();
    let bytes = encode::encode(&Format::default(), &frames).unwrap();
    assert_eq!(bytes[20], 0x02, "opaque: no alpha flag");
    let delays = webp_delays_ms(&bytes);
    assert_eq!(delays, [33, 34, 33, 20, 95, 95]);
    assert_eq!(webp_frames(&bytes)[0].plays, Some(shutter::Plays::Forever));

    // A stream stopped after its first frame: the still file of that frame.
    let one = encode::encode(&Format::default(), &frames[..1]).unwrap();
    let mut alone = frames[0].clone();
    alone.meta.sequence = false;
    assert_eq!(one, encode::encode(&Format::default(), &[alone]).unwrap());
    assert_eq!(webp_chunks(&one), ["VP8 "]);
}

#[test]
fn an_animated_webp_keeps_the_first_frames_profile_and_refuses_a_frame_of_another_size() {
    let profile =
        fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/icc/srgb.icc")).unwrap();
    let frames: Vec<Frame> = (0..3)
        .map(|k| {
            let mut frame = noise(5, 5, 40 + k);
            frame.rgba.chunks_exact_mut(4).for_each(|px| px[3] = 255);
            frame.meta.delay = Some(Duration::from_millis(100));
            frame.meta.icc_profile = Some(profile.clone().into());
            frame
        })
        .collect();
    let bytes = encode::encode(&Format::default(), &frames).unwrap();
    assert_eq!(&webp_chunks(&bytes)[..3], ["VP8X", "ICCP", "ANIM"]);
    assert_eq!(bytes[20], 0x02 | 0x20, "animation and profile, no alpha");
    let decoded = webp_frames(&bytes);
    assert_eq!(decoded.len(), 3);
    assert_eq!(decoded[0].icc_profile.as_deref(), Some(&profile[..]));
    // Smaller or larger (a GIF's canvas that a later frame grew): refused, as Pillow's WebP
    // writer refuses them, where a GIF keeps the first frame's size.
    for (w, h) in [(4, 5), (6, 6)] {
        let mut mixed = frames.clone();
        mixed[1] = noise(w, h, 9);
        mixed[1].meta.delay = Some(Duration::from_millis(100));
        let err = encode::encode(&Format::default(), &mixed).unwrap_err();
        assert!(
            err.to_string().contains(&format!("frame 1 is {w}×{h}")),
            "{err}"
        );
        assert!(encode::encode(&Format::Gif, &mixed).is_ok() == (w == 6));
    }
}

// ---------------------------------------------------------------- npy

/// Parses a v1.0 .npy file: (descr, fortran_order, shape, data).
fn parse_npy(bytes: &[u8]) -> (String, bool, Vec<usize>, &[u8]) {
    assert_eq!(&bytes[..6], b"\x93NUMPY");
    assert_eq!(&bytes[6..8], &[1, 0], "version 1.0");
    let len = usize::from(u16::from_le_bytes([bytes[8], bytes[9]]));
    assert_eq!((10 + len) % 64, 0, "data starts at a multiple of 64");
    let header = std::str::from_utf8(&bytes[10..10 + len]).unwrap();
    assert!(header.ends_with('\n'));
    let header = header.trim_end();
    let field = |key: &str| -> &str {
        let start = header.find(&format!("'{key}': ")).unwrap() + key.len() + 4;
        let rest = &header[start..];
        let end = if rest.starts_with('(') {
            rest.find(')').unwrap() + 1
        } else {
            rest.find(',').unwrap()
        };
        &rest[..end]
    };
    let descr = field("descr").trim_matches('\'').to_string();
    let fortran = field("fortran_order") == "True";
    let shape = field("shape")
        .trim_matches(|c| c == '(' || c == ')')
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect();
    (descr, fortran, shape, &bytes[10 + len..])
}

#[test]
fn npy_one_frame_is_h_w_3() {
    let frame = noise(7, 5, 11);
    let bytes = encode::encode(&Format::Npy, std::slice::from_ref(&frame)).unwrap();
    let (descr, fortran, shape, data) = parse_npy(&bytes);
    assert_eq!(descr, "|u1");
    assert!(!fortran);
    assert_eq!(shape, [5, 7, 3]);
    assert_eq!(data, frame.to_rgb().as_slice());
}

#[test]
fn npy_several_frames_are_n_h_w_3() {
    let frames = vec![noise(4, 3, 1), noise(4, 3, 2), noise(4, 3, 3)];
    let bytes = encode::encode(&Format::Npy, &frames).unwrap();
    let (descr, _, shape, data) = parse_npy(&bytes);
    assert_eq!(descr, "|u1");
    assert_eq!(shape, [3, 3, 4, 3]);
    let expected: Vec<u8> = frames.iter().flat_map(Frame::to_rgb).collect();
    assert_eq!(data, expected.as_slice());

    let mismatched = vec![noise(4, 3, 1), noise(5, 3, 2)];
    let err = encode::encode(&Format::Npy, &mismatched).unwrap_err();
    assert!(err.to_string().contains("5×3"), "{err}");
    // Named as the frame at fault, the second, as a `SequenceWriter` names it.
    assert!(
        err.to_string().starts_with("frame 1: cannot encode npy: "),
        "{err}"
    );
}

#[test]
fn a_sequence_writer_puts_each_frame_in_the_file_as_it_comes() {
    let tmp = TempDir::new().unwrap();
    // Frames of a sequence: even one of them is stacked, (1, H, W, 3).
    let frames: Vec<Frame> = (0..120)
        .map(|k| {
            let mut frame = noise(9, 4, k + 1);
            frame.meta.sequence = true;
            frame
        })
        .collect();
    let frame_bytes = 9 * 4 * 3;
    for count in [1, 3, 120] {
        let path = tmp.path().join(format!("seq{count}.npy"));
        let file = fs::File::create(&path).unwrap();
        let mut writer = SequenceWriter::new(Format::Npy, file).unwrap();
        let mut header = 0;
        for (k, frame) in frames[..count].iter().enumerate() {
            writer.push(frame).unwrap();
            let len = fs::metadata(&path).unwrap().len() as usize;
            if k == 0 {
                header = len - frame_bytes;
                assert_eq!(header % 64, 0);
            }
            assert_eq!(len, header + (k + 1) * frame_bytes, "after frame {k}");
        }
        assert_eq!(writer.frames(), count);
        drop(writer.finish().unwrap());
        let bytes = fs::read(&path).unwrap();
        let (descr, _, shape, data) = parse_npy(&bytes);
        assert_eq!(descr, "|u1");
        assert_eq!(shape, [count, 4, 9, 3]);
        let expected: Vec<u8> = frames[..count].iter().flat_map(Frame::to_rgb).collect();
        assert_eq!(data, expected.as_slice());
        assert_eq!(
            bytes,
            encode::encode(&Format::Npy, &frames[..count]).unwrap()
        );
    }

    // A GIF frame is written once the next one tells its delay.
    let path = tmp.path().join("seq.gif");
    let mut writer = SequenceWriter::new(Format::Gif, fs::File::create(&path).unwrap()).unwrap();
    let gif_frames: Vec<Frame> = (0..4u8).map(|k| few_colours(k, None)).collect();
    let mut sizes = Vec::new();
    for frame in &gif_frames {
        writer.push(frame).unwrap();
        sizes.push(fs::metadata(&path).unwrap().len());
    }
    assert_eq!(sizes[0], 0, "the first frame waits for the second");
    assert!(sizes.windows(2).all(|w| w[0] < w[1]), "{sizes:?}");
    drop(writer.finish().unwrap());
    assert_eq!(
        fs::read(&path).unwrap(),
        encode::encode(&Format::Gif, &gif_frames).unwrap()
    );

    // Frames quantised side by side (NeuQuant: many colours) make the same file as one by one.
    let many: Vec<Frame> = frames[..7].to_vec();
    let mut writer = SequenceWriter::new(Format::Gif, std::io::Cursor::new(Vec::new())).unwrap();
    let refs: Vec<&Frame> = many.iter().collect();
    writer.push_all(&refs[..3]).unwrap();
    writer.push_all(&refs[3..]).unwrap();
    assert_eq!(writer.frames(), 7);
    assert_eq!(
        writer.finish().unwrap().into_inner(),
        encode::encode(&Format::Gif, &many).unwrap()
    );
}

#[test]
fn a_sequence_writer_refuses_a_frame_unlike_the_first_and_stays_refused() {
    for format in [Format::Gif, Format::Npy] {
        let mut writer = SequenceWriter::new(format, std::io::Cursor::new(Vec::new())).unwrap();
        writer.push(&noise(4, 3, 1)).unwrap();
        writer.push(&noise(4, 3, 2)).unwrap();
        let err = writer.push(&noise(5, 3, 3)).unwrap_err();
        assert!(matches!(err, Error::Encode { .. }), "{err:?}");
        assert!(
            err.to_string().starts_with("frame 2: cannot encode ")
                && err.to_string().contains("frame 2 is 5×3"),
            "{format:?}: {err}"
        );
        assert_eq!(writer.frames(), 2);
        assert!(
            writer.finish().is_ok(),
            "{format:?}: the frames before stand"
        );
    }
    let writer = SequenceWriter::new(Format::Npy, std::io::Cursor::new(Vec::new())).unwrap();
    assert_eq!(
        writer.finish().unwrap_err().to_string(),
        "no frames: cannot encode npy: no frames to encode"
    );
    assert!(matches!(
        SequenceWriter::new(Format::Png, std::io::Cursor::new(Vec::new())),
        Err(Error::Usage(_))
    ));
}

#[test]
fn single_frame_formats_refuse_several_frames_and_none() {
    let frames = vec![noise(4, 3, 1), noise(4, 3, 2)];
    assert!(encode::encode(&Format::Png, &frames).is_err());
    assert!(encode::encode(&Format::Png, &[]).is_err());
    assert!(Format::Gif.holds_many_frames() && Format::Npy.holds_many_frames());
    assert!(
        Format::default().holds_many_frames(),
        "webp makes an animation"
    );
    for format in [
        Format::Png,
        Format::Bmp,
        Format::Tiff,
        Format::Jpeg { quality: 75 },
    ] {
        assert!(!format.holds_many_frames(), "{format:?}");
        assert!(encode::encode(&format, &frames).is_err(), "{format:?}");
    }
}

// ---------------------------------------------------------------- settings

#[test]
fn quality_out_of_range_is_a_usage_error() {
    let err = Format::from_name("webp", Some(500.0), false).unwrap_err();
    assert!(err.is_usage());
    assert_eq!(
        err.to_string(),
        "quality (--quality): 500 is out of range 0–100 for webp"
    );
    let err = Format::from_name("jpg", Some(0.0), false).unwrap_err();
    assert!(err.is_usage());
    assert!(err.to_string().contains("1–100 for jpeg"), "{err}");
    assert!(
        Format::from_name("jpeg", Some(101.0), false)
            .unwrap_err()
            .is_usage()
    );
    assert!(Format::from_name("webp", Some(0.0), false).is_ok());
    assert!(Format::from_name("webp", Some(100.0), false).is_ok());
}

#[test]
fn unknown_format_is_a_usage_error() {
    let err = Format::from_name("heic", None, false).unwrap_err();
    assert!(matches!(err, Error::Usage(_)));
    assert!(err.to_string().contains("--format") && err.to_string().contains("heic"));
}

#[test]
fn lossless_and_quality_only_where_they_apply() {
    assert!(Format::from_name("png", None, true).unwrap_err().is_usage());
    assert!(
        Format::from_name("jpeg", None, true)
            .unwrap_err()
            .is_usage()
    );
    assert!(
        Format::from_name("png", Some(90.0), false)
            .unwrap_err()
            .is_usage()
    );
    assert_eq!(
        Format::from_name("webp", None, true).unwrap(),
        Format::Webp {
            quality: 80.0,
            lossless: true
        }
    );
    assert!(
        Format::from_path(Path::new("out.gif"), Some(50.0), false)
            .unwrap()
            .unwrap_err()
            .is_usage()
    );
    assert_eq!(
        Format::from_path(Path::new("out.TIF"), None, false)
            .unwrap()
            .unwrap(),
        Format::Tiff
    );
    assert!(Format::from_path(Path::new("out"), None, false).is_none());
}

// ---------------------------------------------------------------- write_atomic

#[test]
fn write_atomic_writes_and_replaces_without_leftovers() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("out.png");
    encode::write_atomic(&path, b"first version").unwrap();
    assert_eq!(fs::read(&path).unwrap(), b"first version");
    encode::write_atomic(&path, b"second").unwrap();
    assert_eq!(fs::read(&path).unwrap(), b"second");
    assert_eq!(common::dir_names(dir.path()), ["out.png"]);
}

#[test]
fn write_atomic_takes_names_as_long_as_the_file_system_does() {
    let dir = TempDir::new().unwrap();
    // 255 bytes, the usual limit, in two-byte characters too: the temp name must fit as well.
    for name in [
        format!("{}.png", "b".repeat(251)),
        format!("{}.png", "é".repeat(125)),
    ] {
        let path = dir.path().join(&name);
        encode::write_atomic(&path, b"data").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"data");
    }
    assert_eq!(common::dir_names(dir.path()).len(), 2, "no temp file left");
}

#[test]
fn write_atomic_under_a_regular_file_fails_and_leaves_nothing() {
    let dir = TempDir::new().unwrap();
    let blocker = dir.path().join("blocker");
    fs::write(&blocker, b"a file, not a directory").unwrap();
    let path = blocker.join("out.png");
    let err = encode::write_atomic(&path, b"data").unwrap_err();
    match &err {
        Error::Io { path: p, .. } => assert_eq!(p, &path),
        other => panic!("expected Error::Io, got {other:?}"),
    }
    assert!(err.to_string().contains("out.png"), "{err}");
    assert_eq!(common::dir_names(dir.path()), ["blocker"]);
    assert_eq!(fs::read(&blocker).unwrap(), b"a file, not a directory");
}

#[test]
fn write_atomic_onto_a_directory_fails_and_removes_its_temp_file() {
    let dir = TempDir::new().unwrap();
    let target = dir.path().join("taken");
    fs::create_dir(&target).unwrap();
    fs::write(target.join("inside"), b"x").unwrap();
    let err = encode::write_atomic(&target, b"data").unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err:?}");
    assert_eq!(
        common::dir_names(dir.path()),
        ["taken"],
        "the temp file was removed"
    );
}

#[test]
fn a_gif_whose_later_frame_grows_the_canvas_is_written_at_the_first_frames_size() {
    // Screen 10×10; frame 2 is placed at (8, 8), 5×5, past the screen: Pillow's frames (and
    // shutter's) grow to 13×13 from there. Pillow's GIF of them keeps 10×10; npy, like
    // numpy's stack, cannot hold both sizes.
    let tmp = TempDir::new().unwrap();
    let input = tmp.path().join("grow.gif");
    {
        let palette = [0, 0, 0, 250, 10, 10, 10, 250, 10, 10, 10, 250];
        let file = fs::File::create(&input).unwrap();
        let mut gif = gif::Encoder::new(file, 10, 10, &palette).unwrap();
        let first = (0..100u8).map(|i| i % 3).collect::<Vec<u8>>();
        for (left, top, side, buffer) in [(0, 0, 10, first), (8, 8, 5, vec![2; 25])] {
            let frame = gif::Frame {
                left,
                top,
                width: side,
                height: side,
                delay: 10,
                buffer: buffer.into(),
                ..gif::Frame::default()
            };
            gif.write_frame(&frame).unwrap();
        }
    }
    let frames: Vec<_> = shutter::source::decode(
        &shutter::source::Input::from_path(&input),
        &shutter::DecodeLimits::default(),
    )
    .and_then(|f| f.collect::<Result<Vec<_>, _>>())
    .unwrap();
    assert_eq!(
        frames
            .iter()
            .map(|f| (f.width, f.height))
            .collect::<Vec<_>>(),
        [(10, 10), (13, 13)]
    );

    let out = tmp.path().join("out.gif");
    let run = |out: &Path| {
        common::shutter(&[
            "run",
            common::s(&input),
            "-o",
            common::s(out),
            "--device",
            "cpu",
        ])
    };
    let result = run(&out);
    assert!(result.status.success(), "{}", common::stderr(&result));
    let written = GifDecoder::new(std::io::BufReader::new(fs::File::open(&out).unwrap()))
        .unwrap()
        .into_frames()
        .collect_frames()
        .unwrap();
    assert_eq!(written.len(), 2);
    for (k, (frame, source)) in written.iter().zip(&frames).enumerate() {
        let buffer = frame.buffer();
        assert_eq!(buffer.dimensions(), (10, 10), "frame {k}");
        for (x, y, px) in buffer.enumerate_pixels() {
            let at = ((y * source.width + x) * 4) as usize;
            assert_eq!(
                &px.0[..3],
                &source.rgba[at..at + 3],
                "frame {k} at ({x}, {y})"
            );
        }
    }

    let npy = tmp.path().join("out.npy");
    let result = run(&npy);
    assert_eq!(result.status.code(), Some(1));
    assert!(
        common::stderr(&result).contains("frame 0 is 10×10 RGB, frame 1 is 13×13 RGB"),
        "{}",
        common::stderr(&result)
    );
    assert!(!npy.exists());
}

#[test]
fn a_lossless_webp_of_opaque_rgba_has_no_alpha_as_libwebp_writes_it() {
    use image::ImageDecoder;
    // Pillow's libwebp leaves the alpha flag off for opaque pixels, so Pillow reopens the
    // file as RGB; image-webp kept it on.
    let tmp = TempDir::new().unwrap();
    let color_of = |alpha: u8| {
        let input = tmp.path().join(format!("in{alpha}.png"));
        image::RgbaImage::from_fn(5, 3, |x, y| {
            image::Rgba([
                x as u8 * 40,
                y as u8 * 70,
                9,
                if x == 2 { alpha } else { 255 },
            ])
        })
        .save(&input)
        .unwrap();
        let out = tmp.path().join(format!("out{alpha}.webp"));
        let args = [
            "run",
            common::s(&input),
            "-o",
            common::s(&out),
            "--lossless",
        ];
        let result = common::shutter(&[&args[..], &["--mode", "RGBA", "--device", "cpu"]].concat());
        assert!(result.status.success(), "{}", common::stderr(&result));
        let file = std::io::BufReader::new(fs::File::open(&out).unwrap());
        let decoder = image::codecs::webp::WebPDecoder::new(file).unwrap();
        let color = decoder.color_type();
        let pixels = image::DynamicImage::from_decoder(decoder)
            .unwrap()
            .into_rgba8();
        assert_eq!(pixels.get_pixel(2, 1).0[3], alpha);
        color
    };
    assert_eq!(color_of(255), image::ColorType::Rgb8);
    assert_eq!(color_of(7), image::ColorType::Rgba8);
}

#[test]
fn a_frame_whose_pixels_do_not_fill_its_size_is_refused_not_a_panic() {
    let short = || Frame::new(4, 3, vec![7; 4 * 3 * 4 - 4], false, FrameMeta::still(0, 0));
    for format in [Format::Png, Format::Gif, Format::default(), Format::Npy] {
        let err = encode::encode(&format, &[short()]).unwrap_err();
        assert!(
            err.to_string()
                .contains("frame 0 has 44 bytes of pixels where a 4×3 RGBA frame needs 48"),
            "{format:?}: {err}"
        );
    }
    let mut writer = SequenceWriter::new(Format::Gif, std::io::Cursor::new(Vec::new())).unwrap();
    let err = writer.push(&short()).unwrap_err();
    assert!(matches!(err, Error::Encode { .. }), "{err:?}");
}

#[test]
fn a_wrong_length_buffer_is_named_in_bytes_given_and_needed_for_the_frame_at_fault() {
    // The RGBA bytes given, not the RGB values they would convert to; the frame named once,
    // by its place in the frames given (its `meta.seq`, 7, is not a place).
    let mut meta = FrameMeta::still(7, 0);
    meta.delay = Some(Duration::from_millis(100));
    let wrong = Frame::new(4, 4, vec![0; 10], false, meta.clone());
    let err = encode::encode(&Format::default(), std::slice::from_ref(&wrong)).unwrap_err();
    assert!(matches!(err, Error::Encode { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "frame 0: cannot encode webp: frame 0 has 10 bytes of pixels where a 4×4 RGBA frame needs 64"
    );
    let good = Frame::new(4, 4, vec![90; 64], false, meta);
    for format in [Format::Gif, Format::default(), Format::Npy] {
        let err = encode::encode(&format, &[good.clone(), wrong.clone()]).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "frame 1: cannot encode {}: frame 1 has 10 bytes of pixels where a 4×4 RGBA frame needs 64",
                format.extension()
            )
        );
        let mut writer = SequenceWriter::new(format, std::io::Cursor::new(Vec::new())).unwrap();
        writer.push(&good).unwrap();
        let err = writer.push(&wrong).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "frame 1: cannot encode {}: frame 1 has 10 bytes of pixels where a 4×4 RGBA frame needs 64",
                format.extension()
            )
        );
    }
}

#[test]
fn a_frame_of_no_pixels_is_refused_in_every_format_but_npy() {
    let jpeg = Format::Jpeg { quality: 75 };
    let lossless = Format::Webp {
        quality: 80.0,
        lossless: true,
    };
    for (w, h) in [(0, 0), (0, 5), (5, 0)] {
        let empty = Frame::new(w, h, Vec::new(), false, FrameMeta::still(0, 0));
        for format in [
            Format::Png,
            Format::Gif,
            Format::default(),
            lossless,
            jpeg,
            Format::Bmp,
            Format::Tiff,
        ] {
            let name = format.extension();
            let err = encode::encode(&format, std::slice::from_ref(&empty)).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!(
                    "frame 0: cannot encode {name}: frame 0 is {w}×{h}, no pixels: {name} cannot hold an empty image (npy can)"
                ),
                "{format:?}"
            );
        }
        for format in [Format::Gif, Format::default()] {
            let mut writer = SequenceWriter::new(format, std::io::Cursor::new(Vec::new())).unwrap();
            let err = writer.push(&empty).unwrap_err();
            assert!(err.to_string().contains("no pixels"), "{format:?}: {err}");
        }
        // numpy holds empty arrays: (H, W, 3), and (N, H, W, 3) for a sequence.
        let bytes = encode::encode(&Format::Npy, std::slice::from_ref(&empty)).unwrap();
        assert_eq!(parse_npy(&bytes).2, [h as usize, w as usize, 3]);
        let bytes = encode::encode(&Format::Npy, &[empty.clone(), empty.clone()]).unwrap();
        assert_eq!(parse_npy(&bytes).2, [2, h as usize, w as usize, 3]);
    }
}

#[test]
fn hand_built_formats_out_of_range_are_the_usage_error_the_pipeline_gives() {
    let frame = gradient(4, 4);
    for format in [
        Format::Jpeg { quality: 0 },
        Format::Jpeg { quality: 200 },
        Format::Webp {
            quality: f32::NAN,
            lossless: false,
        },
        Format::Webp {
            quality: 150.0,
            lossless: false,
        },
    ] {
        let want = format.check().unwrap_err().to_string();
        assert!(want.contains("out of range"), "{want}");
        let built = shutter::Pipeline::builder()
            .source(shutter::Source::Path("in.png".into()))
            .output(shutter::Output::Dir("out".into()), format)
            .build()
            .map(drop)
            .unwrap_err();
        assert_eq!(built.to_string(), want, "{format:?}");
        let err = encode::encode(&format, std::slice::from_ref(&frame)).unwrap_err();
        assert!(err.is_usage(), "{format:?}: {err:?}");
        assert_eq!(err.to_string(), want, "{format:?}");
        let err =
            encode::encode_until(&format, std::slice::from_ref(&frame), &|| true).unwrap_err();
        assert_eq!(err.to_string(), want, "{format:?}");
        if format.holds_many_frames() {
            let err = SequenceWriter::new(format, std::io::Cursor::new(Vec::new()))
                .map(drop)
                .unwrap_err();
            assert!(err.is_usage(), "{format:?}: {err:?}");
            assert_eq!(err.to_string(), want, "{format:?}");
        }
    }
    // A lossless WebP has no quality to check.
    let lossless = Format::Webp {
        quality: f32::NAN,
        lossless: true,
    };
    assert!(encode::encode(&lossless, &[frame]).is_ok());
}

#[test]
fn a_frame_whose_buffer_does_not_fill_its_size_gives_errors_and_empty_arrays_not_panics() {
    use shutter::mode::{FrameArray, ModeData, ModeImage};
    let wrong = Frame::new(4, 4, vec![0; 10], false, FrameMeta::still(7, 0));
    let err = wrong.to_image().unwrap_err();
    assert!(err.is_usage(), "{err:?}");
    assert_eq!(
        err.to_string(),
        "frame 7 has 10 bytes of pixels where a 4×4 RGBA frame needs 64"
    );
    assert_eq!(wrong.array().shape(), [0, 0, 3]);
    assert_eq!(wrong.array_view().shape(), [0, 0, 3]);
    assert_eq!(wrong.rgb_array().shape(), [0, 0, 3]);
    assert_eq!(wrong.rgba_view().shape(), [0, 0, 4]);
    // A size whose bytes pass `u64` (a `u32` side squared, times 4).
    let huge = Frame::new(
        u32::MAX,
        u32::MAX,
        Vec::new(),
        false,
        FrameMeta::still(0, 0),
    );
    assert_eq!(huge.rgba_view().shape(), [0, 0, 4]);
    assert!(
        huge.to_image()
            .unwrap_err()
            .to_string()
            .contains("needs 73786976260478468100")
    );
    // A converted image whose data is short: per mode, an array of no pixels.
    for (mode, data, shape) in [
        (ImageMode::Rgb, ModeData::U8(vec![0; 10]), &[0, 0, 3][..]),
        (ImageMode::One, ModeData::U8(vec![0; 10]), &[0, 0]),
        (ImageMode::P, ModeData::U8(vec![0; 10]), &[0, 0]),
        (ImageMode::I, ModeData::I32(vec![0; 10]), &[0, 0]),
        (ImageMode::F, ModeData::F32(vec![0.0; 10]), &[0, 0]),
    ] {
        let mut frame = gradient(4, 4);
        frame.image = Some(ModeImage {
            width: 4,
            height: 4,
            mode,
            data,
            palette: Some(shutter::mode::Palette::Rgb(vec![[1, 2, 3]])),
        });
        let array = frame.array();
        assert_eq!(array.shape(), shape, "{mode}");
        assert_eq!(frame.array_view().shape(), shape, "{mode}");
        assert!(matches!(
            array,
            FrameArray::U8(_) | FrameArray::Bool(_) | FrameArray::I32(_) | FrameArray::F32(_)
        ));
        let err = frame.to_image().unwrap_err();
        assert!(err.is_usage(), "{mode}: {err:?}");
        if matches!(mode, ImageMode::Rgb | ImageMode::One | ImageMode::P) {
            assert_eq!(
                err.to_string(),
                format!(
                    "the mode image has 10 values where a 4×4 {mode} image needs {}",
                    16 * mode.bands()
                ),
            );
        }
    }
}

#[test]
fn a_gif_parts_unchanged_pixels_show_the_frame_before_through_its_transparent_index() {
    // Opaque frames of four colours on 40×30; frame 1 changes two pixels far apart, so its
    // part spans the pixels between them, which did not change: they take the transparent
    // index (long runs of one index, which LZW codes in a few bytes), and show frame 0's.
    let (w, h) = (40usize, 30usize);
    let colours = [
        [200u8, 30, 40],
        [20, 160, 60],
        [30, 40, 220],
        [240, 240, 20],
    ];
    let first: Vec<u8> = (0..w * h)
        .flat_map(|i| {
            let [r, g, b] = colours[(i % w / 5 + i / w / 5) % 4];
            [r, g, b, 255]
        })
        .collect();
    let mut second = first.clone();
    for (x, y) in [(4, 4), (33, 25)] {
        second[(y * w + x) * 4..][..3].copy_from_slice(&[255, 255, 255]);
    }
    let frames: Vec<Frame> = [first, second]
        .into_iter()
        .map(|rgba| {
            let mut frame = Frame::new(w as u32, h as u32, rgba, false, FrameMeta::still(0, 0));
            frame.meta.delay = Some(Duration::from_millis(50));
            frame
        })
        .collect();
    let bytes = encode::encode(&Format::Gif, &frames).unwrap();
    assert_eq!(gif_layout(&bytes)[1].0, (4, 4, 30, 22));
    let (_, written) = gif_frames_written(&bytes);
    let (transparent, indices) = &written[1];
    let t = transparent.expect("a transparent index for the unchanged pixels");
    let drawn: Vec<usize> = (0..indices.len()).filter(|&i| indices[i] != t).collect();
    assert_eq!(
        drawn,
        [0, indices.len() - 1],
        "only the two changed pixels are drawn"
    );
    assert_composites_exactly(&bytes, &frames);
}

#[test]
fn a_p_gif_animations_opaque_first_frame_keeps_a_transparent_index_for_pillow() {
    // P frames of a 256-entry RGBA palette (as an RGBA source's octree palette is), the first
    // opaque and using 4 entries, the second with a transparent entry. Pillow reads every
    // frame after the first as RGB, alpha lost, unless the first has a transparent index: it
    // gets one, an entry no pixel uses.
    use shutter::ModeImage;
    use shutter::mode::{ModeData, Palette};
    let (w, h) = (12u32, 8u32);
    let mut palette: Vec<[u8; 4]> = (0..=255u8).map(|i| [i, 255 - i, 90, 255]).collect();
    let p_frame = |indices: Vec<u8>, palette: &[[u8; 4]]| {
        let rgba: Vec<u8> = indices
            .iter()
            .flat_map(|&i| palette[usize::from(i)])
            .collect();
        let mut frame = Frame::new(w, h, rgba, true, FrameMeta::still(0, 0));
        frame.meta.delay = Some(Duration::from_millis(60));
        frame.image = Some(ModeImage {
            width: w,
            height: h,
            mode: ImageMode::P,
            data: ModeData::U8(indices),
            palette: Some(Palette::Rgba(palette.to_vec())),
        });
        frame
    };
    let first = p_frame((0..w * h).map(|i| (i % 4) as u8).collect(), &palette);
    palette[9][3] = 0;
    let second = p_frame(
        (0..w * h).map(|i| [9, 1, 2][(i % 3) as usize]).collect(),
        &palette,
    );
    let frames = [first, second];
    let bytes = encode::encode(&Format::Gif, &frames).unwrap();
    let (_, written) = gif_frames_written(&bytes);
    let (transparent, indices) = &written[0];
    let t = transparent.expect("the first frame has a transparent index");
    assert!(!indices.contains(&t), "used by no pixel");
    assert_eq!(written[1].0, Some(9));
    assert_composites_exactly(&bytes, &frames);
}

//! Raster decoding: PNG, JPEG, WebP, BMP, TIFF and GIF files into RGBA8 frames, through the
//! `image` crate, with EXIF orientation applied and the limits checked before pixels are read.
//!
//! Animated GIFs, WebPs and PNGs (APNG) give every frame, composited onto the full canvas as
//! Pillow's `ImageSequence` shows it, with its delay (WebP frames by the `webp_anim` module,
//! which blends as libwebp does); a WebP or PNG without animation is a still. `image` cannot
//! composite 16-bit APNGs: those give their default image, as a still. EXIF orientation is
//! applied to stills only.
//!
//! Colour conversion follows Pillow's `convert("RGBA")` as Gradio would see it:
//! - 8-bit gray, gray+alpha, RGB and palette images expand to RGBA (A = 255 without alpha);
//! - 16-bit RGB(A) and gray+alpha keep the high byte of each sample (Pillow's `;16B` unpackers);
//! - 16-bit gray without alpha opens as Pillow mode `I;16`, whose conversion to RGB(A) *clips*
//!   at 255 rather than scaling (`I16_RGB`): values above 255 become white. Kept for parity.
//! - float samples are clamped to [0, 1] and scaled to 0–255.
//!
//! `has_alpha` is true when the decoder reports an alpha channel (a PNG `tRNS` chunk counts);
//! for animations, whose frames are always RGBA, it is decided per frame: true when that
//! composited frame has a pixel that is not fully opaque.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::num::NonZeroU32;
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use image::codecs::gif::GifDecoder;
use image::codecs::png::PngDecoder;
use image::codecs::webp::WebPDecoder;
use image::error::ImageError;
use image::metadata::{LoopCount, Orientation};
use image::{AnimationDecoder, DynamicImage, ImageDecoder, ImageReader};

use super::{DecodeLimits, DecodedFrame, Frames, InputFormat, svg};
use crate::error::{Error, Result};
use crate::frame::Plays;

/// Decodes the file at `path`, choosing the decoder by its extension; `name` is how messages
/// refer to it. As Pillow opens files by their content, a file whose extension is missing,
/// unknown or wrong is decoded as the format its first bytes show, when they show one.
///
/// # Errors
/// [`Error::Unsupported`] for a file with no image extension whose content is no format
/// shutter reads, [`Error::Io`] when the file cannot be opened or read, [`Error::Decode`] for
/// an empty or malformed file (the reason says when the content looks like another format),
/// [`Error::Limits`] for an image over `limits`.
pub fn decode_path(name: &str, path: &Path, limits: &DecodeLimits) -> Result<Frames> {
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().into_owned())
        .unwrap_or_default();
    let by_name = InputFormat::from_extension(&ext);
    let file = File::open(path).map_err(|err| Error::io(path, err))?;
    let len = file.metadata().map_err(|err| Error::io(path, err))?.len();
    let sniffed = sniff_file(path);
    let Some(format) = by_name.or(sniffed) else {
        let reason = if ext.is_empty() {
            "no file extension to tell the format by, and the content is no image format \
             shutter reads"
                .to_string()
        } else {
            format!("'.{ext}' is not an image extension shutter reads")
        };
        return Err(Error::Unsupported {
            input: name.to_string(),
            reason: format!(
                "{reason} (expected one of {})",
                super::IMAGE_EXTENSIONS.join(", ")
            ),
        });
    };
    if len == 0 {
        return Err(Error::Decode {
            input: name.to_string(),
            format: format.name().to_string(),
            reason: "the file is empty (0 bytes)".to_string(),
        });
    }
    match decode_as(name, path, file, format, limits) {
        // The extension was wrong (a PNG saved as .jpg): the content decides, as in Pillow.
        Err(Error::Decode { .. }) if sniffed.is_some_and(|s| s != format) => {
            let actual = sniffed.expect("checked just above");
            let file = File::open(path).map_err(|err| Error::io(path, err))?;
            decode_as(name, path, file, actual, limits)
        }
        result => result,
    }
}

/// The format the first bytes of the file at `path` show, if any.
fn sniff_file(path: &Path) -> Option<InputFormat> {
    let mut head = Vec::with_capacity(512);
    File::open(path)
        .and_then(|f| f.take(512).read_to_end(&mut head))
        .ok()
        .and_then(|_| InputFormat::sniff(&head))
}

/// Decodes `file` (the file at `path`) as `format`.
fn decode_as(
    name: &str,
    path: &Path,
    file: File,
    format: InputFormat,
    limits: &DecodeLimits,
) -> Result<Frames> {
    if format == InputFormat::Svg {
        let mut data = Vec::new();
        BufReader::new(file)
            .read_to_end(&mut data)
            .map_err(|err| Error::io(path, err))?;
        svg::decode(name, &data, path.parent(), limits)
    } else {
        decode_reader(name, format, BufReader::new(file), limits)
    }
}

/// Decodes a raster image of a known `format` from `reader`.
///
/// # Errors
/// [`Error::Decode`], [`Error::Limits`] or [`Error::Unsupported`] naming `name`, as
/// [`super::decode`] describes; SVG is not a raster format and is [`Error::Unsupported`] here.
pub fn decode_reader<R>(
    name: &str,
    format: InputFormat,
    reader: R,
    limits: &DecodeLimits,
) -> Result<Frames>
where
    R: BufRead + Seek + Send + 'static,
{
    let mut reader = reader;
    match format {
        InputFormat::Gif => decode_gif(name, reader, limits),
        InputFormat::Webp if is_animated_webp(&mut reader) => {
            super::webp_anim::decode(name, reader, limits)
        }
        InputFormat::Png if is_animated_png(&mut reader) => decode_apng(name, reader, limits),
        InputFormat::Svg => Err(Error::Unsupported {
            input: name.to_string(),
            reason: "SVG is not a raster format; use svg::decode".to_string(),
        }),
        _ => decode_still(name, format, reader, limits),
    }
}

/// Whether `reader` holds an animated WebP, judged from its chunk headers; the reader is left
/// at the start. Anything unreadable counts as a still, for [`decode_still`] to report.
fn is_animated_webp<R: BufRead + Seek>(reader: &mut R) -> bool {
    let animated = WebPDecoder::new(&mut *reader).is_ok_and(|d| d.has_animation());
    reader.seek(SeekFrom::Start(0)).is_ok() && animated
}

/// Whether `reader` holds an APNG (an `acTL` chunk before the image data) whose frames `image`
/// can composite (8-bit samples); the reader is left at the start. Anything unreadable counts
/// as a still, for [`decode_still`] to report.
fn is_animated_png<R: BufRead + Seek>(reader: &mut R) -> bool {
    let animated = PngDecoder::new(&mut *reader).is_ok_and(|d| {
        let eight_bit = !matches!(
            d.color_type(),
            image::ColorType::L16
                | image::ColorType::La16
                | image::ColorType::Rgb16
                | image::ColorType::Rgba16
        );
        eight_bit && d.is_apng().unwrap_or(false)
    });
    reader.seek(SeekFrom::Start(0)).is_ok() && animated
}

/// `image`'s limits for `limits`. Width and height are left out while the header is read
/// (so that our own check can name the dimensions) and set afterwards.
pub(super) fn image_limits(limits: &DecodeLimits, with_dimensions: bool) -> image::Limits {
    let mut out = image::Limits::default();
    out.max_alloc = Some(limits.max_alloc);
    if with_dimensions {
        out.max_image_width = Some(limits.max_width);
        out.max_image_height = Some(limits.max_height);
    } else {
        out.max_image_width = None;
        out.max_image_height = None;
    }
    out
}

/// Checks the header's dimensions and the decoder's output size before any pixel is decoded.
pub(super) fn check_header(
    name: &str,
    (width, height): (u32, u32),
    total_bytes: u64,
    limits: &DecodeLimits,
) -> Result<()> {
    limits.check(name, u64::from(width), u64::from(height))?;
    if total_bytes > limits.max_alloc {
        return Err(Error::Limits {
            input: name.to_string(),
            reason: format!(
                "{width}×{height} needs {total_bytes} bytes to decode, more than the allocation limit of {} bytes",
                limits.max_alloc
            ),
        });
    }
    Ok(())
}

/// One still image: header, limits, orientation, pixels, RGBA8.
fn decode_still<R>(
    name: &str,
    format: InputFormat,
    reader: R,
    limits: &DecodeLimits,
) -> Result<Frames>
where
    R: BufRead + Seek,
{
    let err = |e| image_error(name, format, e);
    let image_format = format.to_image().ok_or_else(|| Error::Unsupported {
        input: name.to_string(),
        reason: format!("{} is not a raster format", format.name()),
    })?;
    let mut reader = reader;
    if format == InputFormat::Jpeg {
        // The JPEG decoder fills the rest of a cut-off scan with grey and says nothing (Pillow
        // raises "image file is truncated"): look for the end-of-image marker first.
        let complete = jpeg_has_end(&mut reader)
            .and_then(|complete| reader.seek(SeekFrom::Start(0)).map(|_| complete))
            .map_err(|e| err(ImageError::IoError(e)))?;
        if !complete {
            return Err(Error::Decode {
                input: name.to_string(),
                format: format.name().to_string(),
                reason: "the data ends early (truncated file: no end-of-image marker after \
                         the image data)"
                    .to_string(),
            });
        }
    }
    let mut reader = ImageReader::with_format(reader, image_format);
    reader.limits(image_limits(limits, false));
    let mut decoder = reader.into_decoder().map_err(err)?;
    check_header(name, decoder.dimensions(), decoder.total_bytes(), limits)?;
    decoder
        .set_limits(image_limits(limits, true))
        .map_err(err)?;
    let has_alpha = decoder.color_type().has_alpha();
    // A broken EXIF block should not make the image unreadable: Pillow's exif_transpose
    // leaves such images as they are too.
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let mut image = DynamicImage::from_decoder(decoder).map_err(err)?;
    image.apply_orientation(orientation);
    let (width, height) = (image.width(), image.height());
    let frame = DecodedFrame {
        width,
        height,
        rgba: to_rgba8(image),
        has_alpha,
        delay: None,
        plays: None,
    };
    Ok(Box::new(std::iter::once(Ok(frame))))
}

/// Whether a JPEG stream holds an end-of-image marker (FF D9) after its first start-of-scan
/// segment. Markers before the scan are walked by their lengths, so an EXIF thumbnail's own
/// FF D9 does not count; inside entropy-coded data every FF byte is followed by 00 or a
/// restart marker, so an FF D9 there is the real end. A stream whose header is itself cut off
/// counts as complete here: the decoder reports that one.
fn jpeg_has_end<R: Read + Seek>(reader: &mut R) -> std::io::Result<bool> {
    reader.seek(SeekFrom::Start(0))?;
    let mut data = Vec::new();
    reader.read_to_end(&mut data)?;
    let mut at = 2; // after SOI (FF D8)
    let scan = loop {
        // Fill bytes (FF FF ...) may precede a marker.
        while data.get(at) == Some(&0xFF) && data.get(at + 1) == Some(&0xFF) {
            at += 1;
        }
        match (data.get(at), data.get(at + 1)) {
            (Some(0xFF), Some(0xDA)) => break at,
            // Markers without a length: TEM, RST0..7.
            (Some(0xFF), Some(0x01 | 0xD0..=0xD7)) => at += 2,
            (Some(0xFF), Some(_)) => match (data.get(at + 2), data.get(at + 3)) {
                (Some(&hi), Some(&lo)) => at += 2 + usize::from(u16::from_be_bytes([hi, lo])),
                _ => return Ok(true),
            },
            // Not a marker where one should be, or the header ends: the decoder's to report.
            _ => return Ok(true),
        }
    };
    Ok(data[scan..].windows(2).any(|w| w == [0xFF, 0xD9]))
}

/// RGBA8 pixels from any decoded image, converting as Pillow would (see the module comment).
pub fn to_rgba8(image: DynamicImage) -> Vec<u8> {
    fn high(v: u16) -> u8 {
        (v >> 8) as u8
    }
    match image {
        DynamicImage::ImageRgba8(buf) => buf.into_raw(),
        DynamicImage::ImageRgb8(buf) => super::widen::rgb(&buf),
        DynamicImage::ImageLuma8(buf) => super::widen::gray(&buf),
        DynamicImage::ImageLuma16(buf) => buf
            .into_raw()
            .into_iter()
            .flat_map(|v| {
                let v = v.min(255) as u8;
                [v, v, v, 255]
            })
            .collect(),
        DynamicImage::ImageLumaA16(buf) => buf
            .into_raw()
            .chunks_exact(2)
            .flat_map(|p| {
                let v = high(p[0]);
                [v, v, v, high(p[1])]
            })
            .collect(),
        DynamicImage::ImageRgb16(buf) => buf
            .into_raw()
            .chunks_exact(3)
            .flat_map(|p| [high(p[0]), high(p[1]), high(p[2]), 255])
            .collect(),
        DynamicImage::ImageRgba16(buf) => buf.into_raw().into_iter().map(high).collect(),
        other => other.to_rgba8().into_raw(),
    }
}

/// An animated (or still) GIF: every frame, composited onto the full canvas, with its delay.
fn decode_gif<R>(name: &str, reader: R, limits: &DecodeLimits) -> Result<Frames>
where
    R: BufRead + Seek + Send + 'static,
{
    let err = |e| image_error(name, InputFormat::Gif, e);
    let mut reader = reader;
    let plays = gif_plays(&mut reader).map_err(|e| err(ImageError::IoError(e)))?;
    let mut decoder = GifDecoder::new(reader).map_err(err)?;
    check_header(name, decoder.dimensions(), decoder.total_bytes(), limits)?;
    decoder
        .set_limits(image_limits(limits, true))
        .map_err(err)?;
    animation(name, InputFormat::Gif, decoder, plays)
}

/// How many times the GIF in `reader` plays, from its NETSCAPE extension (a count of repeats
/// after the first play; none: it plays once); the reader is left at the start.
///
/// `image`'s `loop_count` reports a GIF without the extension as looping forever, so the
/// `gif` crate reads the header here. A header it cannot read counts as looping forever, for
/// `GifDecoder` to report.
fn gif_plays<R: Read + Seek>(reader: &mut R) -> std::io::Result<Plays> {
    let repeat = gif::DecodeOptions::new()
        .read_info(&mut *reader)
        .map(|d| d.repeat());
    reader.seek(SeekFrom::Start(0))?;
    Ok(match repeat {
        Ok(gif::Repeat::Finite(repeats)) => {
            Plays::Times(NonZeroU32::MIN.saturating_add(u32::from(repeats)))
        }
        Ok(gif::Repeat::Infinite) | Err(_) => Plays::Forever,
    })
}

/// An APNG: every frame of the animation, composited onto the full canvas, with its delay. A
/// default image that is not part of the animation is skipped, as Pillow does.
fn decode_apng<R>(name: &str, reader: R, limits: &DecodeLimits) -> Result<Frames>
where
    R: BufRead + Seek + Send + 'static,
{
    let err = |e| image_error(name, InputFormat::Png, e);
    let mut decoder = PngDecoder::with_limits(reader, image_limits(limits, false)).map_err(err)?;
    // The canvas as RGBA8, whatever the file's colour type.
    let (width, height) = decoder.dimensions();
    let canvas_bytes = u64::from(width) * u64::from(height) * 4;
    check_header(name, (width, height), canvas_bytes, limits)?;
    decoder
        .set_limits(image_limits(limits, true))
        .map_err(err)?;
    let decoder = decoder.apng().map_err(err)?;
    let plays = plays_of(decoder.loop_count());
    animation(name, InputFormat::Png, decoder, plays)
}

/// The frames of an animation, decoded as the caller asks for them.
///
/// `image`'s frame iterator is not `Send`, so a small thread owns the decoder and hands frames
/// over a one-slot channel: frames are decoded one ahead of the caller. Dropping the iterator
/// stops the thread at its next frame.
fn animation<D>(name: &str, format: InputFormat, decoder: D, plays: Plays) -> Result<Frames>
where
    D: AnimationDecoder<'static> + Send + 'static,
{
    let kind = if format == InputFormat::Png {
        "APNG"
    } else {
        "GIF"
    };
    let (tx, rx) = mpsc::sync_channel::<Result<DecodedFrame>>(1);
    let thread_name = name.to_string();
    std::thread::Builder::new()
        .name(format!("shutter-{}", format.name()))
        .spawn(move || {
            let mut count = 0usize;
            for frame in decoder.into_frames() {
                let item = match frame {
                    Ok(frame) => Ok(animation_frame(frame, plays)),
                    Err(e) => Err(image_error(&thread_name, format, e)),
                };
                let failed = item.is_err();
                count += 1;
                if tx.send(item).is_err() || failed {
                    return;
                }
            }
            if count == 0 {
                let _ = tx.send(Err(Error::Decode {
                    input: thread_name,
                    format: format.name().to_string(),
                    reason: format!("the {kind} has no frames"),
                }));
            }
        })
        .map_err(|e| Error::Decode {
            input: name.to_string(),
            format: format.name().to_string(),
            reason: format!("cannot start the {kind} decoding thread: {e}"),
        })?;
    Ok(Box::new(rx.into_iter()))
}

/// The plays of an APNG's loop count (`num_plays`, 0 for forever).
fn plays_of(count: LoopCount) -> Plays {
    match count {
        LoopCount::Infinite => Plays::Forever,
        LoopCount::Finite(n) => Plays::Times(n),
    }
}

/// One composited frame of an animation; it has alpha when a pixel is not fully opaque.
fn animation_frame(frame: image::Frame, plays: Plays) -> DecodedFrame {
    let delay = Duration::from(frame.delay());
    let buffer = frame.into_buffer();
    let (width, height) = buffer.dimensions();
    let rgba = buffer.into_raw();
    let has_alpha = rgba.chunks_exact(4).any(|px| px[3] != 255);
    DecodedFrame {
        width,
        height,
        rgba,
        has_alpha,
        delay: Some(delay),
        plays: Some(plays),
    }
}

/// Maps an `image` error to ours by its category, with a one-line reason.
///
/// I/O errors met while decoding (as opposed to opening) mean the data ended early or could
/// not be read: they are decode errors of the input, not I/O errors of a path.
pub fn image_error(name: &str, format: InputFormat, err: ImageError) -> Error {
    let input = name.to_string();
    match err {
        ImageError::Limits(e) => Error::Limits {
            input,
            reason: one_line(&e.to_string()),
        },
        ImageError::Unsupported(e) => Error::Unsupported {
            input,
            reason: one_line(&e.to_string()),
        },
        ImageError::IoError(e) => {
            let reason = if e.kind() == std::io::ErrorKind::UnexpectedEof {
                "the data ends early (truncated file)".to_string()
            } else {
                one_line(&e.to_string())
            };
            Error::Decode {
                input,
                format: format.name().to_string(),
                reason,
            }
        }
        // "Format error decoding Png: <cause>": the format is already in our message.
        ImageError::Decoding(e) => Error::Decode {
            input,
            format: format.name().to_string(),
            reason: one_line(&match std::error::Error::source(&e) {
                Some(cause) => cause.to_string(),
                None => e.to_string(),
            }),
        },
        other => Error::Decode {
            input,
            format: format.name().to_string(),
            reason: one_line(&other.to_string()),
        },
    }
}

/// Joins a possibly multi-line message into one line.
pub(crate) fn one_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

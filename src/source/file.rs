//! Raster decoding: PNG, JPEG, WebP, BMP, TIFF and GIF files into RGBA8 frames, through the
//! `image` crate, with EXIF orientation applied and the limits checked before pixels are read.
//!
//! Animated GIFs, WebPs and PNGs (APNG) give every frame, composited onto the full canvas as
//! Pillow's `ImageSequence` shows it, with its delay: GIFs by the `gif_anim` module and APNGs
//! by the `apng` module, which follow Pillow's own rules, WebPs by the `webp_anim` module,
//! which blends as libwebp does. A WebP or PNG without animation is a still; 16-bit APNGs
//! give their default image, as a still. The orientation Pillow's `exif_transpose` applies (EXIF,
//! or XMP without it: see the `metadata` module) turns stills and every frame of an animated
//! WebP or APNG; GIFs have none.
//!
//! Colour conversion follows Pillow's `convert("RGBA")` as Gradio would see it:
//! - 8-bit gray, gray+alpha, RGB and palette images expand to RGBA (A = 255 without alpha);
//! - 16-bit RGB(A) and gray+alpha keep the high byte of each sample (Pillow's `;16B` unpackers);
//! - 16-bit gray without alpha opens as Pillow mode `I;16`, whose conversion to RGB(A) *clips*
//!   at 255 rather than scaling (`I16_RGB`): values above 255 become white. Kept for parity.
//!   A tRNS colour key on such a PNG is ignored, as Pillow's `I;16` has no transparency.
//! - float samples are clamped to [0, 1] and scaled to 0–255.
//!
//! Each frame also says which Pillow mode the file opens in ([`SourceMode`]): gray files
//! (`1`, `L`, `LA`), 16-bit gray ones (`I;16`, with their samples) and palette PNGs (`P`,
//! with their indices and palette, read with `png` next to `image`'s pixels), so that
//! conversions start from it as in Pillow ([`crate::mode::source`]).
//!
//! `has_alpha` is true when the decoder reports an alpha channel (a PNG `tRNS` chunk counts);
//! for animations, whose frames are always RGBA, it is decided per frame: true when that
//! composited frame has a pixel that is not fully opaque.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::Arc;

use image::codecs::webp::WebPDecoder;
use image::error::ImageError;
use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageReader};

use super::{DecodeLimits, DecodedFrame, Frames, InputFormat, svg};
use crate::error::{Error, Result};
use crate::mode::Palette;
use crate::mode::source::SourceMode;

/// Decodes the file at `path`, choosing the decoder by its extension; `name` is how messages
/// refer to it. As Pillow opens files by their content, a file whose extension is missing,
/// unknown or wrong is decoded as the format its first bytes show, when they show one.
///
/// # Errors
/// [`Error::Unsupported`] for a file with no image extension whose content is no format
/// shutter reads, [`Error::Io`] when the file cannot be opened or read, [`Error::Decode`] for
/// an empty or malformed file (the reason says when the content looks like another format, or
/// like no image format, which is found from the first bytes before the rest is read),
/// [`Error::Limits`] for an image over `limits` or a file of more bytes than
/// [`DecodeLimits::max_input_bytes`]. A file that is not a regular file (a pipe, a FIFO) is
/// read to its end and judged by its content, as standard input is.
pub fn decode_path(name: &str, path: &Path, limits: &DecodeLimits) -> Result<Frames> {
    decode_path_within(name, path, limits, None)
}

/// [`decode_path`], refusing an SVG or a pipe's image larger than `max_side` holds before its
/// pixels are decoded (a file's header is checked before this, by the decode-ahead workers).
pub(crate) fn decode_path_within(
    name: &str,
    path: &Path,
    limits: &DecodeLimits,
    max_side: super::MaxSide,
) -> Result<Frames> {
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().into_owned())
        .unwrap_or_default();
    let by_name = InputFormat::from_extension(&ext);
    let mut file = File::open(path).map_err(|err| Error::io(path, err))?;
    let meta = file.metadata().map_err(|err| Error::io(path, err))?;
    if !meta.is_file() {
        // A pipe, FIFO or terminal (`<(cat g.png)`, `/dev/stdin`): its size says nothing and
        // it can be read once. Read it as standard input is, and judge it by its content.
        let data = super::read_input(name, file, limits)?;
        return super::decode_data(name, data, limits, max_side);
    }
    let len = meta.len();
    limits.check_input_size(name, len)?;
    // The first bytes tell the content's format before anything else is read.
    let mut head = Vec::with_capacity(super::SNIFF_LEN);
    (&mut file)
        .take(super::SNIFF_LEN as u64)
        .read_to_end(&mut head)
        .and_then(|_| file.seek(SeekFrom::Start(0)))
        .map_err(|err| Error::io(path, err))?;
    let sniffed = InputFormat::sniff(&head);
    let svgz = ext.eq_ignore_ascii_case("svgz") || super::is_gzip(&head);
    if sniffed.is_none() && svgz {
        return Err(Error::Unsupported {
            input: name.to_string(),
            reason: super::SVGZ_REASON.to_string(),
        });
    }
    let Some(format) = by_name.or(sniffed) else {
        // The content decides (a PNG named `.txt` is read): say so, not only the extension.
        let reason = if ext.is_empty() {
            "no file extension to tell the format by, and the content is no image format \
             shutter reads"
                .to_string()
        } else {
            format!(
                "{}, and '.{ext}' is not an image extension",
                super::unknown_content(&head)
            )
        };
        return Err(Error::Unsupported {
            input: name.to_string(),
            reason: format!(
                "{reason} (shutter reads PNG, JPEG, WebP, GIF, BMP, TIFF and SVG, by their \
                 content: extensions {})",
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
    // Every format shutter reads shows itself in its first bytes: content that shows none is
    // refused now, not after a decoder has read (or, for JPEG and SVG, loaded) all of it.
    if sniffed.is_none() {
        return Err(Error::Decode {
            input: name.to_string(),
            format: format.name().to_string(),
            reason: format!(
                "the content is not {} data: {}",
                format.name(),
                super::unknown_content(&head)
            ),
        });
    }
    match decode_as(name, path, file, format, limits, max_side) {
        // The extension was wrong (a PNG saved as .jpg): the content decides, as in Pillow.
        Err(Error::Decode { .. }) if sniffed.is_some_and(|s| s != format) => {
            let actual = sniffed.expect("checked just above");
            let file = File::open(path).map_err(|err| Error::io(path, err))?;
            decode_as(name, path, file, actual, limits, max_side)
        }
        result => result,
    }
}

/// Decodes `file` (the file at `path`) as `format`.
fn decode_as(
    name: &str,
    path: &Path,
    file: File,
    format: InputFormat,
    limits: &DecodeLimits,
    max_side: super::MaxSide,
) -> Result<Frames> {
    if format == InputFormat::Svg {
        let mut data = Vec::new();
        BufReader::new(file)
            .read_to_end(&mut data)
            .map_err(|err| Error::io(path, err))?;
        svg::decode_within(name, &data, limits, max_side)
    } else {
        decode_reader_within(name, format, BufReader::new(file), limits, max_side)
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
    decode_reader_within(name, format, reader, limits, None)
}

/// [`decode_reader`], refusing a GIF whose canvas grows past `max_side` before its pixels are
/// decoded (other formats' sizes are checked from their headers before this).
pub(crate) fn decode_reader_within<R>(
    name: &str,
    format: InputFormat,
    reader: R,
    limits: &DecodeLimits,
    max_side: super::MaxSide,
) -> Result<Frames>
where
    R: BufRead + Seek + Send + 'static,
{
    let mut reader = reader;
    // The orientation and the ICC profile, from the metadata before the pixels.
    let found = super::metadata::scan(format, &mut reader)
        .map_err(|e| image_error(name, format, ImageError::IoError(e)))?;
    // One read of a PNG's header says whether it is animated and how Pillow opens a still.
    let png = if format == InputFormat::Png {
        png_header(&mut reader)
    } else {
        PngHeader::default()
    };
    // A size over the limits is named as such, before `image` refuses the row buffer of a
    // 2^31-pixel-wide PNG as "Memory limit exceeded".
    if let Some((width, height)) = png.size {
        limits.check(name, width.into(), height.into())?;
    }
    if let Some(len) = png.bad_palette {
        return Err(Error::Decode {
            input: name.to_string(),
            format: format.name().to_string(),
            reason: format!("its PLTE chunk has {len} bytes, not 1 to 256 colours of 3 bytes each"),
        });
    }
    let orientation = found.orientation();
    let frames = match format {
        InputFormat::Gif => super::gif_anim::decode(name, reader, limits, max_side),
        InputFormat::Webp if is_animated_webp(&mut reader) => {
            let frames = super::webp_anim::decode(name, reader, limits)?;
            Ok(turn_frames(frames, orientation))
        }
        InputFormat::Png if png.animated => {
            let frames = super::apng::decode(name, reader, limits)?;
            Ok(turn_frames(frames, orientation))
        }
        InputFormat::Bmp if bmp_header_size(&mut reader) == Some(OS2_V2_HEADER) => {
            let data = os2_as_windows_bmp(reader).ok_or_else(|| Error::Decode {
                input: name.to_string(),
                format: format.name().to_string(),
                reason: "an OS/2 2.x header cut short".to_string(),
            })?;
            decode_still(
                name,
                format,
                std::io::Cursor::new(data),
                limits,
                png,
                orientation,
            )
        }
        InputFormat::Svg => Err(Error::Unsupported {
            input: name.to_string(),
            reason: "SVG is not a raster format; use svg::decode".to_string(),
        }),
        _ => decode_still(name, format, reader, limits, png, orientation),
    }?;
    Ok(match found.icc {
        Some(icc) => Box::new(frames.map(move |frame| {
            frame.map(|mut frame| {
                frame.icc_profile = Some(Arc::clone(&icc));
                frame
            })
        })),
        None => frames,
    })
}

/// `frames`, each turned by `orientation` (the frames of an animation are RGBA, `Color`), as
/// a still is: `image`'s `apply_orientation`, and the source mode's planes with it.
fn turn_frames(frames: Frames, orientation: Orientation) -> Frames {
    if orientation == Orientation::NoTransforms {
        return frames;
    }
    Box::new(frames.map(move |frame| {
        frame.map(|mut frame| {
            let (w, h) = (frame.width, frame.height);
            if frame.rgba.len() != w as usize * h as usize * 4 {
                return frame; // not a frame of this size: nothing to turn safely
            }
            let rgba = std::mem::take(&mut frame.rgba);
            let Some(buffer) = image::RgbaImage::from_raw(w, h, rgba) else {
                return frame; // cannot happen: the length is the image's
            };
            let mut image = DynamicImage::ImageRgba8(buffer);
            image.apply_orientation(orientation);
            (frame.width, frame.height) = (image.width(), image.height());
            frame.rgba = image.into_rgba8().into_raw();
            frame.source = orient_source(frame.source, w as usize, h as usize, orientation);
            frame
        })
    }))
}

/// Whether `reader` holds an animated WebP, judged from its chunk headers; the reader is left
/// at the start. Anything unreadable counts as a still, for [`decode_still`] to report.
fn is_animated_webp<R: BufRead + Seek>(reader: &mut R) -> bool {
    let animated = WebPDecoder::new(&mut *reader).is_ok_and(|d| d.has_animation());
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

/// A still WebP decoded by libwebp, the decoder Pillow uses, about twice as fast as
/// image-webp's (whose pixels are the same). `None` when libwebp cannot read it: image-webp
/// then decodes it, or says what is wrong. The reader is left at its start.
fn webp_through_libwebp<R: BufRead + Seek>(
    name: &str,
    reader: &mut R,
    limits: &DecodeLimits,
) -> Result<Option<DynamicImage>> {
    let io = |e: std::io::Error| image_error(name, InputFormat::Webp, ImageError::IoError(e));
    let mut data = Vec::new();
    reader.seek(SeekFrom::Start(0)).map_err(io)?;
    limits.check_input_size(name, reader.read_to_end(&mut data).map_err(io)? as u64)?;
    reader.seek(SeekFrom::Start(0)).map_err(io)?;
    let Some(features) = webp::BitstreamFeatures::new(&data) else {
        return Ok(None);
    };
    if features.has_animation() {
        return Ok(None);
    }
    let (width, height) = (features.width(), features.height());
    let bands: u64 = if features.has_alpha() { 4 } else { 3 };
    let bytes = u64::from(width) * u64::from(height) * bands;
    check_header(name, (width, height), bytes, limits)?;
    let Some(decoded) = webp::Decoder::new(&data).decode() else {
        return Ok(None);
    };
    let (w, h, pixels) = (decoded.width(), decoded.height(), decoded.to_vec());
    Ok(if decoded.is_alpha() {
        image::RgbaImage::from_raw(w, h, pixels).map(DynamicImage::ImageRgba8)
    } else {
        image::RgbImage::from_raw(w, h, pixels).map(DynamicImage::ImageRgb8)
    })
}

/// One still image: header, limits, orientation, pixels, RGBA8.
fn decode_still<R>(
    name: &str,
    format: InputFormat,
    reader: R,
    limits: &DecodeLimits,
    png: PngHeader,
    metadata_orientation: Orientation,
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
    // A CMYK or YCCK JPEG's whole stream, which Pillow opens as `CMYK`.
    let mut jpeg_cmyk = None;
    if format == InputFormat::Jpeg {
        // The JPEG decoder fills the rest of a cut-off scan with grey and says nothing (Pillow
        // raises "image file is truncated"): look for the end-of-image marker first.
        let scan = jpeg_scan(&mut reader)
            .and_then(|scan| reader.seek(SeekFrom::Start(0)).map(|_| scan))
            .map_err(|e| err(ImageError::IoError(e)))?;
        if !scan.complete {
            return Err(Error::Decode {
                input: name.to_string(),
                format: format.name().to_string(),
                reason: "the data ends early (truncated file: no end-of-image marker after \
                         the image data)"
                    .to_string(),
            });
        }
        jpeg_cmyk = scan.four_components;
    }
    // A TIFF's alpha may be premultiplied, which Pillow undoes; `image` reads no gray+alpha
    // TIFF, which Pillow opens as `LA`.
    let tiff = if format == InputFormat::Tiff {
        tiff_header(&mut reader)
    } else {
        TiffHeader::default()
    };
    // A BMP with a palette opens as Pillow's `P`, or `L` / `1` when the palette is a gray ramp.
    let (bmp, bmp16) = if format == InputFormat::Bmp {
        (bmp_palette(&mut reader), bmp_16_bit_channels(&mut reader))
    } else {
        (BmpPalette::None, None)
    };
    // A 32-bit TIFF's samples or a CMYK file's inks, in the file's orientation.
    let mut wide = None;
    let (mut image, orientation) = if tiff.gray_alpha {
        tiff_gray_alpha(name, &mut reader, limits)?
    } else if let Some(white_is_zero) = tiff.narrow_gray {
        tiff_narrow_gray(name, &mut reader, limits, white_is_zero)?
    } else if let Some((data, frame_header)) = jpeg_cmyk {
        let (image, orientation, inks) =
            super::jpeg_cmyk::decode(name, &data, frame_header, limits)?;
        wide = Some(inks);
        (image, orientation)
    } else if tiff.wide || tiff.cmyk || tiff.palette {
        let (image, orientation, samples) = if tiff.palette {
            tiff_palette(name, &mut reader, limits)?
        } else if tiff.cmyk {
            tiff_cmyk(name, &mut reader, limits)?
        } else {
            tiff_wide(name, &mut reader, limits)?
        };
        wide = Some(samples);
        (image, orientation)
    } else if let Some(image) = (format == InputFormat::Webp)
        .then(|| webp_through_libwebp(name, &mut reader, limits))
        .transpose()?
        .flatten()
    {
        // The turn is the metadata's (EXIF, else XMP), as below.
        (image, Orientation::NoTransforms)
    } else {
        let mut image_reader = ImageReader::with_format(&mut reader, image_format);
        let mut header_limits = image_limits(limits, false);
        if format == InputFormat::Png {
            // `image` gives the `png` crate its whole allocation limit, which an ICC profile
            // would take: give it what this image needs (see `png_budget`).
            let pixels = png.size.map_or(0, |(w, h)| u64::from(w) * u64::from(h));
            header_limits.max_alloc = Some(png_budget(pixels, limits));
        }
        image_reader.limits(header_limits);
        let mut decoder = image_reader.into_decoder().map_err(err)?;
        check_header(name, decoder.dimensions(), decoder.total_bytes(), limits)?;
        decoder
            .set_limits(image_limits(limits, true))
            .map_err(err)?;
        // A broken EXIF block should not make the image unreadable: Pillow's exif_transpose
        // leaves such images as they are too.
        let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
        (
            DynamicImage::from_decoder(decoder).map_err(err)?,
            orientation,
        )
    };
    if let Some(channels) = bmp16 {
        match &mut image {
            DynamicImage::ImageRgb8(rgb) => widen_like_pillow(rgb, 3, channels),
            DynamicImage::ImageRgba8(rgba) => widen_like_pillow(rgba, 4, channels),
            _ => {}
        }
    }
    if tiff.white_is_zero16
        && let DynamicImage::ImageLuma16(gray) = &mut image
    {
        gray.iter_mut().for_each(|v| *v = u16::MAX - *v); // back to the stored values
    }
    // Where the decoder finds no turn (EXIF), Pillow's `getexif` falls back to the XMP
    // packet's.
    let orientation = if orientation == Orientation::NoTransforms {
        metadata_orientation
    } else {
        orientation
    };
    let mut has_alpha = image.color().has_alpha();
    let (unturned_width, unturned_height) = (image.width(), image.height());
    image.apply_orientation(orientation);
    let (width, height) = (image.width(), image.height());
    let wide = wide.map(|samples| {
        let (w, h) = (unturned_width as usize, unturned_height as usize);
        orient_source(samples, w, h, orientation)
    });
    if png.gray16_key.is_some()
        && let DynamicImage::ImageLumaA16(gray_alpha) = &image
    {
        // `image` made the tRNS colour an alpha channel of the 16-bit samples; Pillow's
        // `I;16` compares the clipped ones (below).
        let samples = gray_alpha.as_raw().chunks_exact(2).map(|p| p[0]).collect();
        if let Some(gray) = image::ImageBuffer::from_raw(width, height, samples) {
            image = DynamicImage::ImageLuma16(gray);
            has_alpha = false;
        }
    }
    let source = match &image {
        _ if wide.is_some() => wide.unwrap_or_default(),
        DynamicImage::ImageLumaA16(_) if png.gray_alpha16 => SourceMode::Color,
        DynamicImage::ImageLuma8(_) | DynamicImage::ImageLumaA8(_) if png.gray_key.is_some() => {
            png.gray_key.map_or(SourceMode::Gray, SourceMode::GrayKey)
        }
        DynamicImage::ImageLuma8(_)
        | DynamicImage::ImageLumaA8(_)
        | DynamicImage::ImageLumaA16(_) => SourceMode::Gray,
        DynamicImage::ImageLuma16(samples) => match png.gray16_key.map(u8::try_from) {
            Some(Ok(key)) => SourceMode::Gray16Key(samples.as_raw().clone(), key),
            _ => SourceMode::Gray16(samples.as_raw().clone()),
        },
        // The indices are the file's, in its own orientation.
        _ if png.indexed => png_palette(&mut reader, limits).map_or(SourceMode::Color, |p| {
            let (w, h) = (unturned_width as usize, unturned_height as usize);
            orient_source(p, w, h, orientation)
        }),
        DynamicImage::ImageRgb8(pixels) if bmp != BmpPalette::None => bmp.source(pixels, || {
            bmp_indices(&mut reader, pixels.width(), pixels.height())
        }),
        // Pillow keeps the raw 16-bit key, which its conversions put in an 8-bit pixel
        // (`putpixel` clamps each channel to 255) to find the key's `P` entry or `L` value.
        DynamicImage::ImageRgba16(_) if png.rgb16_key.is_some() => {
            png.rgb16_key.map_or(SourceMode::Color, |key| {
                SourceMode::ColorKey(key.map(|k| u8::try_from(k).unwrap_or(u8::MAX)))
            })
        }
        DynamicImage::ImageRgba8(_) if png.rgb_key.is_some() => {
            png.rgb_key.map_or(SourceMode::Color, SourceMode::ColorKey)
        }
        _ => SourceMode::Color,
    };
    let mut rgba = to_rgba8(name, image)?;
    if tiff.premultiplied {
        unpremultiply(&mut rgba);
    }
    // Pillow's colour keys, compared with the 8-bit values (see `PngHeader`): a 16-bit
    // key by its low byte.
    let gray16_key = png.gray16_key.map(low_byte);
    if let Some(key) = png.gray_key.or(gray16_key) {
        for px in rgba.chunks_exact_mut(4) {
            px[3] = if px[0] == key { 0 } else { 255 };
        }
        has_alpha = true;
    }
    if let Some(key) = png.rgb16_key {
        for px in rgba.chunks_exact_mut(4) {
            let keyed = (0..3).all(|c| px[c] == low_byte(key[c]));
            px[3] = if keyed { 0 } else { 255 };
        }
        // Pillow's `convert("RGBA")` of the file is RGBA whether or not a pixel matches, as
        // for an 8-bit RGB or a gray key (a filtered frame then goes to `P` as RGBA does).
        has_alpha = true;
    }
    let frame = DecodedFrame {
        width,
        height,
        rgba,
        has_alpha,
        delay: None,
        source,
        plays: None,
        icc_profile: None,
    };
    Ok(Box::new(std::iter::once(Ok(frame))))
}

/// The low byte of a 16-bit value, which is what Pillow compares a 16-bit PNG's tRNS key
/// with: its 8-bit samples (a 16-bit gray file's clipped to 255, an RGB one's high bytes).
fn low_byte(v: u16) -> u8 {
    v.to_le_bytes()[0]
}

/// What a PNG's header says about the mode Pillow opens it in.
#[derive(Debug, Default, Clone, Copy)]
struct PngHeader {
    /// The bytes of a palette PNG's `PLTE` chunk that holds no whole number of colours (3
    /// bytes each, 1 to 256 of them), which the `png` crate panics on: the file is refused
    /// before it is read.
    bad_palette: Option<usize>,
    /// An APNG (an `acTL` chunk before the image data) of at most 8 bits a sample, whose
    /// frames [`super::apng`] composites; 16-bit ones are read as their default image.
    animated: bool,
    /// Palette indices (and not an animated PNG): Pillow's `P`.
    indexed: bool,
    /// The tRNS value of a 16-bit gray PNG: Pillow's `I;16` with that transparency, whose
    /// low byte matches the samples clipped to 8 bits (so 300 matches 44, 65535 every
    /// sample from 255 up). Only a value up to 255 is a transparency value its `P` and `L`
    /// keep: Pillow carries a larger one as it is, which names no entry.
    gray16_key: Option<u16>,
    /// The tRNS colour of an 8-bit RGB PNG: Pillow's `RGB` with a transparency colour.
    rgb_key: Option<[u8; 3]>,
    /// The tRNS value of a gray PNG of 1 to 8 bits. Pillow compares it, raw, with the
    /// samples scaled to 8 bits (so at 2 or 4 bits only 0 can match; at 1 bit it reads any
    /// key but 0 as 255, white), where `image` compares the raw samples.
    gray_key: Option<u8>,
    /// The tRNS colour of a 16-bit RGB PNG. Pillow opens the file as 8-bit RGB and compares
    /// those values with the key's low bytes, where `image` compares 16-bit samples; its `P`
    /// and `L` take the key clamped to 255 a channel.
    rgb16_key: Option<[u16; 3]>,
    /// 16-bit gray with alpha, which Pillow opens as `RGBA` (not `LA`).
    gray_alpha16: bool,
    /// Width and height, `None` when the header cannot be read.
    size: Option<(u32, u32)>,
}

/// What the `png` crate may allocate beyond the image itself: ancillary chunks (an ICC
/// profile inflated, text, EXIF) and its buffers. It inflates an `iCCP` profile up to its
/// whole budget before it finds it too large (and then drops it), so the budget is kept to
/// this much above the pixels, rather than the whole allocation limit: a 3 MB PNG whose
/// profile inflates to 3 GiB took 2.1 GB. Pillow refuses profiles over 1 MiB.
const PNG_METADATA_BYTES: u64 = 64 << 20;

/// The `png` crate's budget for a PNG of `pixels` pixels: 8 bytes a pixel (16-bit RGBA) plus
/// [`PNG_METADATA_BYTES`], within `limits.max_alloc`.
pub(super) fn png_budget(pixels: u64, limits: &DecodeLimits) -> u64 {
    pixels
        .saturating_mul(8)
        .saturating_add(PNG_METADATA_BYTES)
        .min(limits.max_alloc)
}

/// Reads `reader`'s PNG header and leaves `reader` at its start. An unreadable header says
/// nothing: the decoder reports it.
fn png_header<R: BufRead + Seek>(reader: &mut R) -> PngHeader {
    // The size as the IHDR chunk gives it, for a header the `png` crate refuses (a width of
    // 2^31 − 1 is over its memory limit).
    let stated = reader.fill_buf().ok().and_then(|head| {
        let ihdr = head.get(8..24).filter(|c| &c[4..8] == b"IHDR")?;
        let side =
            |at: usize| u32::from_be_bytes([ihdr[at], ihdr[at + 1], ihdr[at + 2], ihdr[at + 3]]);
        Some((side(8), side(12)))
    });
    let mut decoder = png::Decoder::new_with_limits(
        &mut *reader,
        png::Limits {
            bytes: PNG_METADATA_BYTES as usize,
        },
    );
    // Nothing here needs the ICC profile: not inflating it costs nothing.
    decoder.set_ignore_iccp_chunk(true);
    let header = decoder
        .read_info()
        .map(|png| {
            let info = png.info();
            PngHeader {
                bad_palette: info
                    .palette
                    .as_deref()
                    .map(<[u8]>::len)
                    .filter(|&len| len % 3 != 0 || len == 0 || len > 768)
                    .filter(|_| info.color_type == png::ColorType::Indexed),
                size: Some((info.width, info.height)),
                animated: info.animation_control.is_some()
                    && info.bit_depth != png::BitDepth::Sixteen,
                indexed: info.color_type == png::ColorType::Indexed
                    && info.animation_control.is_none(),
                gray16_key: match info.trns.as_deref() {
                    Some(&[k0, k1])
                        if info.color_type == png::ColorType::Grayscale
                            && info.bit_depth == png::BitDepth::Sixteen =>
                    {
                        Some(u16::from_be_bytes([k0, k1]))
                    }
                    _ => None,
                },
                // `png` keeps one byte a sample at 8 bits.
                rgb_key: match info.trns.as_deref() {
                    Some(&[r, g, b])
                        if info.color_type == png::ColorType::Rgb
                            && info.bit_depth == png::BitDepth::Eight =>
                    {
                        Some([r, g, b])
                    }
                    _ => None,
                },
                gray_key: match info.trns.as_deref() {
                    // Pillow's `1` takes any key but 0 as white.
                    Some(&[key])
                        if info.color_type == png::ColorType::Grayscale
                            && info.bit_depth == png::BitDepth::One =>
                    {
                        Some(if key == 0 { 0 } else { 255 })
                    }
                    Some(&[key])
                        if info.color_type == png::ColorType::Grayscale
                            && info.bit_depth != png::BitDepth::Sixteen =>
                    {
                        Some(key)
                    }
                    _ => None,
                },
                rgb16_key: match info.trns.as_deref() {
                    Some(&[r0, r1, g0, g1, b0, b1])
                        if info.color_type == png::ColorType::Rgb
                            && info.bit_depth == png::BitDepth::Sixteen =>
                    {
                        Some([
                            u16::from_be_bytes([r0, r1]),
                            u16::from_be_bytes([g0, g1]),
                            u16::from_be_bytes([b0, b1]),
                        ])
                    }
                    _ => None,
                },
                gray_alpha16: info.color_type == png::ColorType::GrayscaleAlpha
                    && info.bit_depth == png::BitDepth::Sixteen,
            }
        })
        .unwrap_or(PngHeader {
            size: stated,
            ..PngHeader::default()
        });
    match reader.seek(SeekFrom::Start(0)) {
        Ok(_) => header,
        Err(_) => PngHeader::default(),
    }
}

/// What a TIFF's first image directory says about the mode Pillow opens it in.
#[derive(Debug, Default, Clone, Copy)]
struct TiffHeader {
    /// RGBA with associated (premultiplied) alpha, 8 or 16 bits a sample: Pillow's `RGBa`
    /// reader (on the high bytes at 16 bits).
    premultiplied: bool,
    /// Gray with unassociated alpha (BlackIsZero, 2 samples of 8 or 16 bits): Pillow's `LA`.
    gray_alpha: bool,
    /// One 32-bit gray sample, integer or float: Pillow's `I` or `F`.
    wide: bool,
    /// CMYK, 8 or 16 bits a sample, nothing else: Pillow's `CMYK` (of the high bytes at 16
    /// bits, its `CMYK;16` readers).
    cmyk: bool,
    /// One sample of 1, 2, 4 or 8 bits indexing a colour map: Pillow's `P` (the map's high
    /// bytes as its palette). `tiff` reads no palette TIFF.
    palette: bool,
    /// One gray sample of 2 or 4 bits (`Some(true)` for WhiteIsZero): Pillow's `L`, scaled,
    /// which neither `image` nor `tiff` reads.
    narrow_gray: Option<bool>,
    /// One 16-bit WhiteIsZero sample, which Pillow keeps as stored (`I;16`, where it inverts
    /// the narrower WhiteIsZero samples) and `tiff` inverts.
    white_is_zero16: bool,
}

/// Reads `reader`'s TIFF tags and leaves `reader` at its start. Unreadable tags say nothing:
/// the decoder reports them.
fn tiff_header<R: BufRead + Seek>(reader: &mut R) -> TiffHeader {
    const ASSOCIATED: u16 = 1;
    const UNASSOCIATED: u16 = 2;
    const WHITE_IS_ZERO: u16 = 0;
    const BLACK_IS_ZERO: u16 = 1;
    const RGB: u16 = 2;
    const PALETTE: u16 = 3;
    const SEPARATED: u16 = 5;
    let header = (|| {
        use tiff::tags::Tag;
        let mut tiff = tiff::decoder::Decoder::new(&mut *reader).ok()?;
        let extra: Vec<u16> = tiff
            .find_tag_unsigned_vec(Tag::ExtraSamples)
            .ok()
            .flatten()
            .unwrap_or_default();
        let photometric: u16 = tiff
            .find_tag_unsigned(Tag::PhotometricInterpretation)
            .ok()??;
        // Both default to 1 when absent (Pillow writes neither for one-sample images).
        let samples: u16 = tiff
            .find_tag_unsigned(Tag::SamplesPerPixel)
            .ok()
            .flatten()
            .unwrap_or(1);
        let bits: Vec<u16> = tiff
            .find_tag_unsigned_vec(Tag::BitsPerSample)
            .ok()
            .flatten()
            .unwrap_or_else(|| vec![1]);
        let all_bits = |n: u16| bits.iter().all(|&b| b == n);
        Some(TiffHeader {
            premultiplied: photometric == RGB
                && samples == 4
                && extra == [ASSOCIATED]
                && (all_bits(8) || all_bits(16)),
            gray_alpha: photometric == BLACK_IS_ZERO
                && samples == 2
                && extra == [UNASSOCIATED]
                && (all_bits(8) || all_bits(16)),
            wide: photometric == BLACK_IS_ZERO && samples == 1 && all_bits(32),
            cmyk: photometric == SEPARATED
                && samples == 4
                && extra.is_empty()
                && (all_bits(8) || all_bits(16)),
            white_is_zero16: photometric == WHITE_IS_ZERO && samples == 1 && all_bits(16),
            narrow_gray: (matches!(photometric, WHITE_IS_ZERO | BLACK_IS_ZERO)
                && samples == 1
                && extra.is_empty()
                && matches!(bits[..], [2 | 4]))
            .then_some(photometric == WHITE_IS_ZERO),
            palette: photometric == PALETTE
                && samples == 1
                && extra.is_empty()
                && matches!(bits[..], [1 | 2 | 4 | 8]),
        })
    })()
    .unwrap_or_default();
    match reader.seek(SeekFrom::Start(0)) {
        Ok(_) => header,
        Err(_) => TiffHeader::default(),
    }
}

/// Pillow's `RGBa` unpacker on RGBA8 pixels: colour × 255 / alpha (truncated, clipped to
/// 255); a pixel with alpha 0 becomes (0, 0, 0, 0).
fn unpremultiply(rgba: &mut [u8]) {
    for px in rgba.chunks_exact_mut(4) {
        let a = u32::from(px[3]);
        if a == 0 {
            px.fill(0);
        } else if a < 255 {
            for c in &mut px[..3] {
                *c = (u32::from(*c) * 255 / a).min(255) as u8;
            }
        }
    }
}

/// A decode error of TIFF `name`.
fn tiff_error(name: &str, reason: impl std::fmt::Display) -> Error {
    Error::Decode {
        input: name.to_string(),
        format: "tiff".to_string(),
        reason: one_line(&reason.to_string()),
    }
}

/// `reader`'s TIFF opened with `tiff` under `limits`, its size (checked against `limits` at
/// `bytes_per_pixel`) and its Orientation tag, for the readers `image` lacks.
fn open_tiff<R: BufRead + Seek>(
    name: &str,
    reader: R,
    limits: &DecodeLimits,
    bytes_per_pixel: u64,
) -> Result<(tiff::decoder::Decoder<R>, (u32, u32), Orientation)> {
    let mut tiff_limits = tiff::decoder::Limits::default();
    tiff_limits.decoding_buffer_size = usize::try_from(limits.max_alloc).unwrap_or(usize::MAX);
    let mut tiff = tiff::decoder::Decoder::new(reader)
        .map_err(|e| tiff_error(name, e))?
        .with_limits(tiff_limits);
    let (width, height) = tiff.dimensions().map_err(|e| tiff_error(name, e))?;
    let bytes = u64::from(width) * u64::from(height) * bytes_per_pixel;
    check_header(name, (width, height), bytes, limits)?;
    let orientation = tiff
        .find_tag_unsigned::<u8>(tiff::tags::Tag::Orientation)
        .ok()
        .flatten()
        .and_then(Orientation::from_exif)
        .unwrap_or(Orientation::NoTransforms);
    Ok((tiff, (width, height), orientation))
}

/// A gray+alpha TIFF (see [`TiffHeader::gray_alpha`]), decoded with `tiff`, and its orientation.
fn tiff_gray_alpha<R: BufRead + Seek>(
    name: &str,
    reader: &mut R,
    limits: &DecodeLimits,
) -> Result<(DynamicImage, Orientation)> {
    use tiff::decoder::DecodingResult;
    let (mut tiff, (width, height), orientation) = open_tiff(name, reader, limits, 2)?;
    let image = match tiff.read_image().map_err(|e| tiff_error(name, e))? {
        DecodingResult::U8(samples) => {
            image::ImageBuffer::from_raw(width, height, samples).map(DynamicImage::ImageLumaA8)
        }
        DecodingResult::U16(samples) => {
            image::ImageBuffer::from_raw(width, height, samples).map(DynamicImage::ImageLumaA16)
        }
        _ => None,
    }
    .ok_or_else(|| tiff_error(name, "the gray+alpha samples do not fill the image"))?;
    Ok((image, orientation))
}

/// A TIFF of one 32-bit gray sample (see [`TiffHeader::wide`]), decoded with `tiff`: the
/// samples clipped to 8 bits as Pillow's `I` and `F` convert to `L` (truncating floats), its
/// orientation, and the samples themselves (`SourceMode::Int32` or `Float32`), unturned.
fn tiff_wide<R: BufRead + Seek>(
    name: &str,
    reader: &mut R,
    limits: &DecodeLimits,
) -> Result<(DynamicImage, Orientation, SourceMode)> {
    use tiff::decoder::DecodingResult;
    let (mut tiff, (width, height), orientation) = open_tiff(name, reader, limits, 4)?;
    let samples = match tiff.read_image().map_err(|e| tiff_error(name, e))? {
        DecodingResult::I32(v) => SourceMode::Int32(v),
        // Wrapped, as Pillow's `I;32N` reads unsigned samples.
        DecodingResult::U32(v) => SourceMode::Int32(v.into_iter().map(|x| x as i32).collect()),
        DecodingResult::F32(v) => SourceMode::Float32(v),
        _ => return Err(tiff_error(name, "32-bit samples of an unknown kind")),
    };
    let gray: Vec<u8> = match &samples {
        SourceMode::Int32(v) => v.iter().map(|&x| x.clamp(0, 255) as u8).collect(),
        // `as` truncates toward zero and saturates (NaN to 0), as Pillow's F → L does.
        SourceMode::Float32(v) => v.iter().map(|&x| x as u8).collect(),
        _ => Vec::new(),
    };
    let image = image::ImageBuffer::from_raw(width, height, gray)
        .map(DynamicImage::ImageLuma8)
        .ok_or_else(|| tiff_error(name, "the 32-bit samples do not fill the image"))?;
    Ok((image, orientation, samples))
}

/// A CMYK TIFF (see [`TiffHeader::cmyk`]), decoded with `tiff`: RGB by Pillow's CMYK → RGB
/// (`R = (255 − K) − C·(255 − K)/255`, rounded), its orientation, and the CMYK samples
/// (`SourceMode::Cmyk`), unturned.
fn tiff_cmyk<R: BufRead + Seek>(
    name: &str,
    reader: &mut R,
    limits: &DecodeLimits,
) -> Result<(DynamicImage, Orientation, SourceMode)> {
    let (mut tiff, (width, height), orientation) = open_tiff(name, reader, limits, 4)?;
    let samples = match tiff.read_image().map_err(|e| tiff_error(name, e))? {
        tiff::decoder::DecodingResult::U8(v) => v,
        // The high byte of each sample, as Pillow's `CMYK;16L`/`CMYK;16B` keep.
        tiff::decoder::DecodingResult::U16(v) => v.iter().map(|&x| (x >> 8) as u8).collect(),
        _ => return Err(tiff_error(name, "CMYK samples of an unknown kind")),
    };
    let cmyk: Vec<[u8; 4]> = samples
        .chunks_exact(4)
        .map(|p| [p[0], p[1], p[2], p[3]])
        .collect();
    let rgb = cmyk
        .iter()
        .flat_map(|&p| crate::mode::pixel::cmyk_to_rgb(p))
        .collect();
    let image = image::ImageBuffer::from_raw(width, height, rgb)
        .map(DynamicImage::ImageRgb8)
        .ok_or_else(|| tiff_error(name, "the CMYK samples do not fill the image"))?;
    Ok((image, orientation, SourceMode::Cmyk(cmyk)))
}

/// The samples of a TIFF of one 1-, 2-, 4- or 8-bit sample a pixel (palette indices, or
/// narrow gray), one a byte, with the decoder (for its other tags), the size and the
/// orientation.
///
/// `tiff` refuses palette images, and `image` gray ones of 2 or 4 bits, so the samples are
/// read from a copy of the file whose first directory says BlackIsZero instead (the same
/// bits, unpacked here).
#[allow(clippy::type_complexity)]
fn tiff_narrow_samples<R: BufRead + Seek>(
    name: &str,
    reader: &mut R,
    limits: &DecodeLimits,
) -> Result<(
    tiff::decoder::Decoder<std::io::Cursor<Vec<u8>>>,
    (u32, u32),
    Orientation,
    usize,
    Vec<u8>,
)> {
    let mut data = Vec::new();
    reader
        .seek(SeekFrom::Start(0))
        .and_then(|_| reader.read_to_end(&mut data))
        .map_err(|e| tiff_error(name, e))?;
    if !set_black_is_zero(&mut data) {
        return Err(tiff_error(name, "no PhotometricInterpretation tag to read"));
    }
    let cursor = std::io::Cursor::new(data);
    let (mut tiff, (width, height), orientation) = open_tiff(name, cursor, limits, 4)?;
    let bits = match tiff.colortype().map_err(|e| tiff_error(name, e))? {
        tiff::ColorType::Gray(bits @ (1 | 2 | 4 | 8)) => usize::from(bits),
        other => return Err(tiff_error(name, format!("samples of {other:?}"))),
    };
    let packed = match tiff.read_image().map_err(|e| tiff_error(name, e))? {
        tiff::decoder::DecodingResult::U8(v) => v,
        _ => return Err(tiff_error(name, "samples of an unknown kind")),
    };
    let (w, h) = (width as usize, height as usize);
    let line = (w * bits).div_ceil(8);
    let samples = unpack_indices(&packed, line, w, h, bits)
        .ok_or_else(|| tiff_error(name, "the samples do not fill the image"))?;
    Ok((tiff, (width, height), orientation, bits, samples))
}

/// A palette TIFF (see [`TiffHeader::palette`]): its colours, its orientation, and its
/// indices and palette (`SourceMode::Palette`), unturned. The colour map (16-bit red, green
/// and blue planes) becomes Pillow's palette of their high bytes.
fn tiff_palette<R: BufRead + Seek>(
    name: &str,
    reader: &mut R,
    limits: &DecodeLimits,
) -> Result<(DynamicImage, Orientation, SourceMode)> {
    let (mut tiff, (width, height), orientation, bits, indices) =
        tiff_narrow_samples(name, reader, limits)?;
    let map: Vec<u16> = tiff
        .find_tag_unsigned_vec(tiff::tags::Tag::ColorMap)
        .map_err(|e| tiff_error(name, e))?
        .ok_or_else(|| tiff_error(name, "a palette image without a ColorMap"))?;
    let entries = 1 << bits;
    if map.len() != 3 * entries {
        return Err(tiff_error(
            name,
            format!("a ColorMap of {} values for {bits}-bit indices", map.len()),
        ));
    }
    let rgb: Vec<[u8; 3]> = (0..entries)
        .map(|i| [0, 1, 2].map(|c| (map[c * entries + i] >> 8) as u8))
        .collect();
    let pixels = indices.iter().flat_map(|&i| rgb[usize::from(i)]).collect();
    let image = image::ImageBuffer::from_raw(width, height, pixels)
        .map(DynamicImage::ImageRgb8)
        .ok_or_else(|| tiff_error(name, "the indices do not fill the image"))?;
    let palette = Palette::Rgb(rgb);
    Ok((image, orientation, SourceMode::Palette { indices, palette }))
}

/// A gray TIFF of 2 or 4 bits a sample (see [`TiffHeader::narrow_gray`]): Pillow's `L` of
/// its samples scaled to 8 bits (× 85 or × 17), inverted for WhiteIsZero (its `L;2I`,
/// `L;4I`), and its orientation.
fn tiff_narrow_gray<R: BufRead + Seek>(
    name: &str,
    reader: &mut R,
    limits: &DecodeLimits,
    white_is_zero: bool,
) -> Result<(DynamicImage, Orientation)> {
    let (_, (width, height), orientation, bits, samples) =
        tiff_narrow_samples(name, reader, limits)?;
    let top = (1u8 << bits) - 1;
    let scale = 255 / top;
    let gray = samples
        .iter()
        .map(|&v| if white_is_zero { top - v } else { v } * scale)
        .collect();
    let image = image::ImageBuffer::from_raw(width, height, gray)
        .map(DynamicImage::ImageLuma8)
        .ok_or_else(|| tiff_error(name, "the samples do not fill the image"))?;
    Ok((image, orientation))
}

/// Rewrites the PhotometricInterpretation of a TIFF's first directory to BlackIsZero, in
/// place; false when the file has no such entry where the header says.
fn set_black_is_zero(data: &mut [u8]) -> bool {
    const PHOTOMETRIC: u16 = 262;
    let little = match data.get(..2) {
        Some(b"II") => true,
        Some(b"MM") => false,
        _ => return false,
    };
    // The `n`-byte unsigned value at `at`, in the file's byte order.
    let uint_at = |d: &[u8], at: usize, n: usize| {
        d.get(at..at + n).map(|b| {
            let fold = |v: u64, &x: &u8| v << 8 | u64::from(x);
            if little {
                b.iter().rev().fold(0, fold)
            } else {
                b.iter().fold(0, fold)
            }
        })
    };
    let u16_at = |d: &[u8], at: usize| uint_at(d, at, 2).map(|v| v as u16);
    // Classic TIFF: 4-byte offsets, 2-byte entry count, 12-byte entries; BigTIFF: 8, 8, 20.
    let (ifd, count, first, size, value) = match u16_at(data, 2) {
        Some(42) => {
            let Some(ifd) = uint_at(data, 4, 4).and_then(|v| usize::try_from(v).ok()) else {
                return false;
            };
            (ifd, u16_at(data, ifd).map(usize::from), 2, 12, 8)
        }
        Some(43) => {
            let Some(ifd) = uint_at(data, 8, 8).and_then(|v| usize::try_from(v).ok()) else {
                return false;
            };
            let count = uint_at(data, ifd, 8).and_then(|v| usize::try_from(v).ok());
            (ifd, count, 8, 20, 12)
        }
        _ => return false,
    };
    let Some(count) = count else {
        return false;
    };
    for k in 0..count.min(4096) {
        let entry = ifd + first + k * size;
        // A SHORT value sits in the first bytes of the entry's value field.
        if u16_at(data, entry) == Some(PHOTOMETRIC) && u16_at(data, entry + 2) == Some(3) {
            let one = if little { [1, 0] } else { [0, 1] };
            if let Some(v) = data.get_mut(entry + value..entry + value + 2) {
                v.copy_from_slice(&one);
                return true;
            }
        }
    }
    false
}

/// A source's planes turned by `orientation`, as its pixels were (`width × height` before).
fn orient_source(
    source: SourceMode,
    width: usize,
    height: usize,
    orientation: Orientation,
) -> SourceMode {
    if orientation == Orientation::NoTransforms {
        return source; // no copy of the planes for the usual file
    }
    match source {
        SourceMode::Int32(v) => SourceMode::Int32(orient_plane(&v, width, height, orientation)),
        SourceMode::Float32(v) => SourceMode::Float32(orient_plane(&v, width, height, orientation)),
        SourceMode::Cmyk(v) => SourceMode::Cmyk(orient_plane(&v, width, height, orientation)),
        SourceMode::Gray16(v) => SourceMode::Gray16(orient_plane(&v, width, height, orientation)),
        SourceMode::Gray16Key(v, key) => {
            SourceMode::Gray16Key(orient_plane(&v, width, height, orientation), key)
        }
        SourceMode::Palette { indices, palette } => SourceMode::Palette {
            indices: orient_plane(&indices, width, height, orientation),
            palette,
        },
        other => other,
    }
}

/// `plane` (`width × height` values, row-major) turned by `orientation` as
/// `DynamicImage::apply_orientation` turns pixels.
fn orient_plane<T: Copy>(
    plane: &[T],
    width: usize,
    height: usize,
    orientation: Orientation,
) -> Vec<T> {
    let (w, h) = (width, height);
    let at = |x: usize, y: usize| plane[y * w + x];
    let turned = matches!(
        orientation,
        Orientation::Rotate90
            | Orientation::Rotate270
            | Orientation::Rotate90FlipH
            | Orientation::Rotate270FlipH
    );
    let (out_w, out_h) = if turned { (h, w) } else { (w, h) };
    let mut out = Vec::with_capacity(plane.len());
    for y in 0..out_h {
        for x in 0..out_w {
            out.push(match orientation {
                Orientation::NoTransforms => at(x, y),
                Orientation::Rotate90 => at(y, h - 1 - x),
                Orientation::Rotate180 => at(w - 1 - x, h - 1 - y),
                Orientation::Rotate270 => at(w - 1 - y, x),
                Orientation::FlipHorizontal => at(w - 1 - x, y),
                Orientation::FlipVertical => at(x, h - 1 - y),
                Orientation::Rotate90FlipH => at(y, x),
                Orientation::Rotate270FlipH => at(w - 1 - y, h - 1 - x),
            });
        }
    }
    out
}

/// The palette of a BMP of 1, 4 or 8 bits a pixel, as Pillow's BMP reader judges it.
#[derive(Debug, Clone, PartialEq)]
enum BmpPalette {
    /// No palette (16 bits a pixel or more), or an unreadable header.
    None,
    /// Entry i is (i, i, i) (with two entries: black then white): Pillow's `L` or `1`.
    Gray,
    /// Any other palette, as RGB entries: Pillow's `P`.
    Colors(Vec<[u8; 3]>),
}

impl BmpPalette {
    /// The source mode of the BMP whose palette this is, now expanded to `pixels`: `P`'s
    /// indices are found again from the colours, or, when the palette repeats a colour (so
    /// the colours cannot tell the indices), read from the file by `file_indices` (an
    /// uncompressed BMP's). Without them, or with an index past the palette, it converts as
    /// RGB.
    fn source(
        &self,
        pixels: &image::RgbImage,
        file_indices: impl FnOnce() -> Option<Vec<u8>>,
    ) -> SourceMode {
        let entries = match self {
            BmpPalette::None => return SourceMode::Color,
            BmpPalette::Gray => return SourceMode::Gray,
            BmpPalette::Colors(entries) => entries,
        };
        let palette = || Palette::Rgb(entries.clone());
        let mut index = std::collections::HashMap::with_capacity(entries.len());
        for (i, &entry) in entries.iter().enumerate() {
            let Ok(i) = u8::try_from(i) else {
                return SourceMode::Color;
            };
            if index.insert(entry, i).is_some() {
                return match file_indices() {
                    Some(indices)
                        if indices.len() == pixels.len() / 3
                            && indices.iter().all(|&i| usize::from(i) < entries.len()) =>
                    {
                        SourceMode::Palette {
                            indices,
                            palette: palette(),
                        }
                    }
                    _ => SourceMode::Color,
                };
            }
        }
        let indices: Option<Vec<u8>> = pixels.pixels().map(|p| index.get(&p.0).copied()).collect();
        match indices {
            Some(indices) => SourceMode::Palette {
                indices,
                palette: Palette::Rgb(entries.clone()),
            },
            None => SourceMode::Color,
        }
    }
}

/// The size of an OS/2 2.x BMP's info header, which `image` refuses and Pillow reads as a
/// Windows one (the 40 bytes they share, then 24 of its own that Pillow skips).
const OS2_V2_HEADER: u32 = 64;

/// The info header's size of the BMP in `reader` (at its start, where it is left).
fn bmp_header_size<R: Read + Seek>(reader: &mut R) -> Option<u32> {
    let mut head = [0u8; 18];
    let size = reader
        .read_exact(&mut head)
        .ok()
        .filter(|()| &head[..2] == b"BM")
        .map(|()| u32::from_le_bytes([head[14], head[15], head[16], head[17]]));
    reader.seek(SeekFrom::Start(0)).ok()?;
    size
}

/// An OS/2 2.x BMP rewritten with a 40-byte Windows info header: the 24 bytes after the
/// first 40 are dropped and the pixel offset and file size moved back by as much.
fn os2_as_windows_bmp<R: Read>(mut reader: R) -> Option<Vec<u8>> {
    const DROPPED: u32 = OS2_V2_HEADER - 40;
    let mut data = Vec::new();
    reader.read_to_end(&mut data).ok()?;
    let end = 14 + OS2_V2_HEADER as usize;
    let mut out = Vec::with_capacity(data.len());
    out.extend_from_slice(data.get(..14)?);
    out.extend_from_slice(&40u32.to_le_bytes());
    out.extend_from_slice(data.get(18..54)?);
    out.extend_from_slice(data.get(end..)?);
    let fix = |out: &mut Vec<u8>, at: usize| {
        let v = u32::from_le_bytes([out[at], out[at + 1], out[at + 2], out[at + 3]]);
        out[at..at + 4].copy_from_slice(&v.saturating_sub(DROPPED).to_le_bytes());
    };
    fix(&mut out, 2); // file size
    fix(&mut out, 10); // pixel data offset
    Some(out)
}

/// Reads a BMP's header and palette as Pillow's BMP reader does (the entry count from the
/// header, else 2^bits; 3-byte entries after a 12-byte OS/2 header, 4-byte ones otherwise)
/// and leaves `reader` at its start.
fn bmp_palette<R: BufRead + Seek>(reader: &mut R) -> BmpPalette {
    let palette = (|| {
        let (header_size, info) = bmp_info(reader)?;
        let (bits, colors, entry_size) = match header_size {
            12 => (u16_at(&info, 6), 0, 3),
            40 | 52 | 56 | 64 | 108 | 124 => (u16_at(&info, 10), u32_at(&info, 28), 4),
            _ => return None,
        };
        if !matches!(bits, 1 | 4 | 8) {
            return None;
        }
        let colors = if colors == 0 { 1u32 << bits } else { colors };
        if colors > 256 {
            return None;
        }
        let mut raw = vec![0u8; colors as usize * entry_size];
        reader.read_exact(&mut raw).ok()?;
        let entries: Vec<[u8; 3]> = raw
            .chunks_exact(entry_size)
            .map(|e| [e[2], e[1], e[0]])
            .collect();
        let ramp = |i: usize| -> u8 { if colors == 2 { [0, 255][i] } else { i as u8 } };
        let gray = entries.iter().enumerate().all(|(i, e)| *e == [ramp(i); 3]);
        Some(if gray {
            BmpPalette::Gray
        } else {
            BmpPalette::Colors(entries)
        })
    })()
    .unwrap_or(BmpPalette::None);
    match reader.seek(SeekFrom::Start(0)) {
        Ok(_) => palette,
        Err(_) => BmpPalette::None,
    }
}

/// The palette indices of an uncompressed BMP of 1, 4 or 8 bits a pixel (Windows or OS/2 1.x
/// header) whose pixels are `width` × `height`, row-major from the top; `None` for any other
/// BMP or one cut short. Leaves `reader` at its start.
fn bmp_indices<R: Read + Seek>(reader: &mut R, width: u32, height: u32) -> Option<Vec<u8>> {
    let indices = (|| {
        reader.seek(SeekFrom::Start(0)).ok()?;
        let mut head = [0u8; 14];
        reader.read_exact(&mut head).ok()?;
        let offset = u64::from(u32_at(&head, 10));
        let (header_size, info) = {
            reader.seek(SeekFrom::Start(0)).ok()?;
            bmp_info(reader)?
        };
        let (file_width, file_height, bits) = match header_size {
            12 => (
                i64::from(u16_at(&info, 0)),
                i64::from(u16_at(&info, 2)),
                u16_at(&info, 6),
            ),
            40 | 52 | 56 | 64 | 108 | 124 if u32_at(&info, 12) == 0 => (
                i64::from(u32_at(&info, 0) as i32),
                i64::from(u32_at(&info, 4) as i32),
                u16_at(&info, 10),
            ),
            _ => return None,
        };
        // A negative height stores the rows top-down.
        let top_down = file_height < 0;
        if !matches!(bits, 1 | 4 | 8)
            || (file_width, file_height.abs()) != (i64::from(width), i64::from(height))
        {
            return None;
        }
        let (w, h, bits) = (width as usize, height as usize, usize::from(bits));
        let stride = (w * bits).div_ceil(32) * 4;
        reader.seek(SeekFrom::Start(offset)).ok()?;
        let mut rows = vec![0u8; stride.checked_mul(h)?];
        reader.read_exact(&mut rows).ok()?;
        let per_byte = 8 / bits;
        let mask = ((1u16 << bits) - 1) as u8;
        let mut indices = Vec::with_capacity(w * h);
        for y in 0..h {
            let row = if top_down { y } else { h - 1 - y };
            let row = &rows[row * stride..][..stride];
            indices.extend((0..w).map(|x| {
                let shift = (per_byte - 1 - x % per_byte) * bits;
                (row[x / per_byte] >> shift) & mask
            }));
        }
        Some(indices)
    })();
    reader.seek(SeekFrom::Start(0)).ok()?;
    indices
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// A BMP's info header size and the rest of the info header (at most 120 bytes), read from
/// `reader`'s start; `None` for a file that is not a BMP.
fn bmp_info<R: Read>(reader: &mut R) -> Option<(u32, Vec<u8>)> {
    let mut head = [0u8; 14 + 4];
    reader.read_exact(&mut head).ok()?;
    if &head[..2] != b"BM" {
        return None;
    }
    let header_size = u32_at(&head, 14);
    let mut info = vec![0u8; usize::try_from(header_size.checked_sub(4)?).ok()?.min(120)];
    reader.read_exact(&mut info).ok()?;
    Some((header_size, info))
}

/// The bits of red, green and blue of a 16-bit BMP whose layout Pillow reads: 5-5-5 (no
/// masks, or those masks) and 5-6-5. Leaves `reader` at its start.
fn bmp_16_bit_channels<R: Read + Seek>(reader: &mut R) -> Option<[u32; 3]> {
    let channels = (|| {
        let (header_size, info) = bmp_info(reader)?;
        if header_size < 40 || u16_at(&info, 10) != 16 {
            return None;
        }
        const BI_RGB: u32 = 0;
        const BI_BITFIELDS: u32 = 3;
        match u32_at(&info, 12) {
            BI_RGB => Some([5, 5, 5]),
            BI_BITFIELDS => {
                // The masks follow a 40-byte header, or are its next fields in a longer one.
                let mut masks = [0u8; 12];
                if header_size >= 52 {
                    masks.copy_from_slice(info.get(36..48)?);
                } else {
                    reader.read_exact(&mut masks).ok()?;
                }
                match [u32_at(&masks, 0), u32_at(&masks, 4), u32_at(&masks, 8)] {
                    [0x7C00, 0x3E0, 0x1F] => Some([5, 5, 5]),
                    [0xF800, 0x7E0, 0x1F] => Some([5, 6, 5]),
                    _ => None,
                }
            }
            _ => None,
        }
    })();
    reader.seek(SeekFrom::Start(0)).ok()?;
    channels
}

/// Widens a 16-bit BMP's channels as Pillow does, `v × 255 / (2ⁿ − 1)` truncated, where
/// `image` rounds: each 8-bit value is taken back to its `n`-bit one (`image`'s rounding
/// keeps them apart) and widened again.
fn widen_like_pillow(pixels: &mut [u8], bands: usize, channels: [u32; 3]) {
    let tables = channels.map(|bits| {
        let top = (1u32 << bits) - 1;
        let mut table = [0u8; 256];
        for (x, out) in table.iter_mut().enumerate() {
            let v = (x as u32 * top + 127) / 255;
            *out = (v * 255 / top) as u8;
        }
        table
    });
    for px in pixels.chunks_exact_mut(bands) {
        for (c, table) in tables.iter().enumerate() {
            px[c] = table[usize::from(px[c])];
        }
    }
}

/// A palette PNG's indices (one byte each, row-major) and palette, the file's transparency
/// as RGBA entries, for [`SourceMode::Palette`]. Entries are added, black, up to the largest
/// index, as Pillow's 256-entry palette has them. `None` when the file cannot be read so (the
/// pixels were, so it then converts as RGB).
fn png_palette<R: BufRead + Seek>(reader: &mut R, limits: &DecodeLimits) -> Option<SourceMode> {
    reader.seek(SeekFrom::Start(0)).ok()?;
    let bytes = usize::try_from(limits.max_alloc).unwrap_or(usize::MAX);
    let mut decoder = png::Decoder::new_with_limits(reader, png::Limits { bytes });
    decoder.set_transformations(png::Transformations::IDENTITY);
    decoder.set_ignore_iccp_chunk(true); // unused here; an ICC bomb would inflate to `bytes`
    let mut png = decoder.read_info().ok()?;
    let info = png.info();
    if info.color_type != png::ColorType::Indexed {
        return None;
    }
    let (width, height) = (info.width as usize, info.height as usize);
    let bits = info.bit_depth as usize;
    let mut rgb: Vec<[u8; 3]> = info
        .palette
        .as_deref()?
        .chunks_exact(3)
        .map(|c| [c[0], c[1], c[2]])
        .collect();
    let alpha = info.trns.as_deref().map(<[u8]>::to_vec);
    let mut packed = vec![0; png.output_buffer_size()?];
    let line = png.next_frame(&mut packed).ok()?.line_size;
    let indices = unpack_indices(&packed, line, width, height, bits)?;
    let largest = indices.iter().max().map_or(0, |&i| usize::from(i));
    if rgb.len() <= largest {
        rgb.resize(largest + 1, [0, 0, 0]);
    }
    let palette = match alpha {
        Some(alpha) => Palette::Rgba(
            rgb.iter()
                .enumerate()
                .map(|(i, &[r, g, b])| [r, g, b, alpha.get(i).copied().unwrap_or(255)])
                .collect(),
        ),
        None => Palette::Rgb(rgb),
    };
    Some(SourceMode::Palette { indices, palette })
}

/// `height` rows of `width` indices of `bits` bits each (1, 2, 4 or 8, leftmost pixel in the
/// high bits), `line` bytes a row, as one byte per index.
fn unpack_indices(
    packed: &[u8],
    line: usize,
    width: usize,
    height: usize,
    bits: usize,
) -> Option<Vec<u8>> {
    if !matches!(bits, 1 | 2 | 4 | 8) || packed.len() < line * height {
        return None;
    }
    let per_byte = 8 / bits;
    let mask = (1u16 << bits) - 1;
    let mut out = Vec::with_capacity(width * height);
    for row in packed.chunks_exact(line.max(1)).take(height) {
        out.extend((0..width).map(|x| {
            let shift = 8 - bits * (x % per_byte + 1);
            ((u16::from(row[x / per_byte]) >> shift) & mask) as u8
        }));
    }
    (out.len() == width * height).then_some(out)
}

/// What [`jpeg_scan`] finds in a JPEG stream's markers.
#[derive(Debug, Default)]
struct JpegScan {
    /// An end-of-image marker (FF D9) follows the first start-of-scan segment.
    complete: bool,
    /// The frame header has four components (CMYK or YCCK), which Pillow opens as `CMYK`;
    /// with them, the whole stream and where its frame header starts.
    four_components: Option<(Vec<u8>, usize)>,
}

/// Walks a JPEG stream's markers. Markers before the scan are walked by their lengths, so an
/// EXIF thumbnail's own FF D9 does not count; inside entropy-coded data every FF byte is
/// followed by 00 or a restart marker, so an FF D9 there is the real end. A stream whose
/// header is itself cut off counts as complete here: the decoder reports that one.
fn jpeg_scan<R: Read + Seek>(reader: &mut R) -> std::io::Result<JpegScan> {
    reader.seek(SeekFrom::Start(0))?;
    let mut data = Vec::new();
    reader.read_to_end(&mut data)?;
    let mut at = 2; // after SOI (FF D8)
    let mut frame_header = None;
    let complete = JpegScan {
        complete: true,
        four_components: None,
    };
    let scan = loop {
        // Fill bytes (FF FF ...) may precede a marker.
        while data.get(at) == Some(&0xFF) && data.get(at + 1) == Some(&0xFF) {
            at += 1;
        }
        match (data.get(at), data.get(at + 1)) {
            (Some(0xFF), Some(0xDA)) => break at,
            // Markers without a length: TEM, RST0..7.
            (Some(0xFF), Some(0x01 | 0xD0..=0xD7)) => at += 2,
            (Some(0xFF), Some(&marker)) => match (data.get(at + 2), data.get(at + 3)) {
                (Some(&hi), Some(&lo)) => {
                    // Start of frame: SOF0..15 but DHT (C4), JPG (C8) and DAC (CC).
                    if matches!(marker, 0xC0..=0xCF) && !matches!(marker, 0xC4 | 0xC8 | 0xCC) {
                        frame_header = Some(at);
                    }
                    at += 2 + usize::from(u16::from_be_bytes([hi, lo]));
                }
                _ => return Ok(complete),
            },
            // Not a marker where one should be, or the header ends: the decoder's to report.
            _ => return Ok(complete),
        }
    };
    Ok(JpegScan {
        complete: data[scan..].windows(2).any(|w| w == [0xFF, 0xD9]),
        four_components: frame_header
            .filter(|&at| data.get(at + 9) == Some(&4))
            .map(|at| (data, at)),
    })
}

/// RGBA8 pixels from any decoded image, converting as Pillow would (see the module comment).
///
/// 8-bit RGB, gray and gray+alpha are widened in their own allocation, so a huge image never
/// needs its decoded and its RGBA copy at once.
///
/// # Errors
/// [`Error::Memory`] naming `input` when that allocation cannot grow to four bytes a pixel.
pub fn to_rgba8(input: &str, image: DynamicImage) -> Result<Vec<u8>> {
    use super::widen::widen_in_place;
    fn high(v: u16) -> u8 {
        (v >> 8) as u8
    }
    let (width, height) = (image.width(), image.height());
    let no_memory = |_| Error::Memory {
        input: input.to_string(),
        reason: format!(
            "its {width}×{height} RGBA frame needs {} bytes",
            u64::from(width) * u64::from(height) * 4
        ),
    };
    Ok(match image {
        DynamicImage::ImageRgba8(buf) => buf.into_raw(),
        DynamicImage::ImageRgb8(buf) => {
            widen_in_place::<3>(buf.into_raw(), |p| [p[0], p[1], p[2], 255]).map_err(no_memory)?
        }
        DynamicImage::ImageLuma8(buf) => {
            widen_in_place::<1>(buf.into_raw(), |p| [p[0], p[0], p[0], 255]).map_err(no_memory)?
        }
        DynamicImage::ImageLumaA8(buf) => {
            widen_in_place::<2>(buf.into_raw(), |p| [p[0], p[0], p[0], p[1]]).map_err(no_memory)?
        }
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
    })
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
            } else if e.kind() == std::io::ErrorKind::InvalidInput && e.raw_os_error().is_some() {
                // The system refused a seek: an offset read from the data (a TIFF's
                // directory, say) lies beyond what a file can hold.
                "malformed data: an offset in it points outside the file".to_string()
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

/// The longest reason a decoder's message is cut to, in characters: a malformed TIFF's
/// message can list every sample's format, 2,000 characters of `Unknown(2048), …`.
const MAX_REASON_CHARS: usize = 300;

/// Joins a possibly multi-line message into one line, and names a PNG chunk by its type
/// where `png`'s message shows its debug form (`ChunkType { type: real, critical: false, … }`
/// → `chunk 'real'`); a message given as a quoted debug string (zune-jpeg's
/// `"Bogus Huffman table definition"`) loses its quotes and escapes, and a line longer than
/// [`MAX_REASON_CHARS`] is cut there, ending in `…`.
pub(crate) fn one_line(text: &str) -> String {
    let text = unquoted(text.trim());
    let mut line = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    const CHUNK: &str = "ChunkType { type: ";
    while let Some(start) = line.find(CHUNK) {
        let rest = &line[start + CHUNK.len()..];
        // The type's debug form may hold braces of its own (`I\u{1}DR`): it ends at the
        // first field after it.
        let Some(name_len) = rest.find(", critical:").or_else(|| rest.find(',')) else {
            break;
        };
        let Some(close) = rest[name_len..].find('}') else {
            break;
        };
        let name = rest[..name_len].to_string();
        let after = &rest[name_len + close + 1..];
        let after = after.strip_prefix(" chunk").unwrap_or(after);
        line = format!("{}chunk '{name}'{after}", &line[..start]);
    }
    if let Some((cut, _)) = line.char_indices().nth(MAX_REASON_CHARS) {
        line.truncate(cut);
        line.push('…');
    }
    line
}

/// `text` without the quotes and escapes of a Rust debug string, when it is one whole
/// (`"Found a marker with invalid length:0\n"` → the message and a line break); any
/// other text as it is.
fn unquoted(text: &str) -> std::borrow::Cow<'_, str> {
    let Some(inner) = text
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .filter(|t| !t.is_empty())
    else {
        return text.into();
    };
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t' | 'r') => out.push(' '),
            Some(other @ ('"' | '\\' | '\'')) => out.push(other),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A still WebP goes through libwebp, whose pixels are image-webp's, lossy (with and
    /// without alpha) and lossless; data libwebp cannot read is left to image-webp, which
    /// says what is wrong with it.
    #[test]
    fn a_still_webp_decodes_through_libwebp_to_image_webps_pixels() {
        let (w, h) = (37u32, 21u32);
        let rgba: Vec<u8> = (0..w * h)
            .flat_map(|i| {
                let (x, y) = (i % w, i / w);
                [
                    (x * 7) as u8,
                    (y * 11) as u8,
                    (x * y) as u8,
                    (40 + x * 5) as u8,
                ]
            })
            .collect();
        let rgb: Vec<u8> = rgba
            .chunks_exact(4)
            .flat_map(|p| [p[0], p[1], p[2]])
            .collect();
        let files = [
            webp::Encoder::from_rgb(&rgb, w, h).encode(80.0).to_vec(),
            webp::Encoder::from_rgba(&rgba, w, h).encode(80.0).to_vec(),
            webp::Encoder::from_rgba(&rgba, w, h)
                .encode_lossless()
                .to_vec(),
        ];
        let limits = DecodeLimits::default();
        for (k, file) in files.iter().enumerate() {
            let mut reader = std::io::Cursor::new(file.clone());
            let ours = webp_through_libwebp("x.webp", &mut reader, &limits)
                .unwrap()
                .expect("libwebp reads it");
            assert_eq!(
                reader.position(),
                0,
                "file {k}: the reader is back at its start"
            );
            let theirs =
                image::load_from_memory_with_format(file, image::ImageFormat::WebP).unwrap();
            assert_eq!(ours.color(), theirs.color(), "file {k}");
            assert!(
                ours.as_bytes() == theirs.as_bytes(),
                "file {k}: other pixels"
            );
        }
        // Cut short: not libwebp's to read, and image-webp's error names the input.
        let cut = &files[0][..files[0].len() - 10];
        let mut reader = std::io::Cursor::new(cut.to_vec());
        assert!(
            webp_through_libwebp("x.webp", &mut reader, &limits)
                .unwrap()
                .is_none()
        );
        let err = decode_reader("x.webp", InputFormat::Webp, reader, &limits)
            .and_then(|mut frames| frames.next().expect("one frame"))
            .unwrap_err();
        assert!(err.to_string().starts_with("x.webp"), "{err}");
    }

    #[test]
    fn png_chunk_types_are_named_not_dumped() {
        assert_eq!(
            one_line(
                "ChunkType { type: real, critical: false, private: true, reserved: true, \
                 safecopy: true } chunk appeared before IHDR chunk"
            ),
            "chunk 'real' appeared before IHDR chunk"
        );
        assert_eq!(one_line("two\n lines \n"), "two; lines");
        // A type of bytes that are not letters is shown as its debug form gives it, braces
        // of its escapes and all, not cut at the escape's brace.
        assert_eq!(
            one_line(
                "ChunkType { type: I\\u{1}DR, critical: true, private: false, reserved: false, \
                 safecopy: false } chunk appeared before IHDR chunk"
            ),
            "chunk 'I\\u{1}DR' appeared before IHDR chunk"
        );
    }

    /// zune-jpeg's messages are debug strings: they lose their quotes and escapes.
    #[test]
    fn a_quoted_debug_message_is_unquoted() {
        assert_eq!(
            one_line("\"Found a marker with invalid length:0\\n\""),
            "Found a marker with invalid length:0"
        );
        assert_eq!(
            one_line("\"a \\\"quoted\\\" word\\nand a line\""),
            "a \"quoted\" word; and a line"
        );
        // Quotes that do not wrap the whole message stay.
        assert_eq!(one_line("bad \"x\" tag"), "bad \"x\" tag");
        assert_eq!(one_line("\"\""), "\"\"");
    }

    /// A message of thousands of characters (a TIFF's list of every sample's format) is cut
    /// to 300, on a character boundary, ending in an ellipsis.
    #[test]
    fn an_overlong_message_is_cut() {
        let long = "é, ".repeat(1000);
        let line = one_line(&long);
        assert_eq!(line.chars().count(), MAX_REASON_CHARS + 1);
        assert!(line.ends_with('…'), "{line}");
        let short = "é, ".repeat(99);
        assert_eq!(one_line(&short), short.trim());
    }

    /// The system's refusal of a seek while decoding (EINVAL: an offset read from the data,
    /// as in a TIFF whose header says BigTIFF) is named as malformed data, not as an error
    /// of the operating system.
    #[test]
    #[cfg(unix)]
    fn a_refused_seek_while_decoding_is_malformed_data() {
        let err = image_error(
            "x.tif",
            InputFormat::Tiff,
            ImageError::IoError(std::io::Error::from_raw_os_error(22)),
        );
        assert_eq!(
            err.to_string(),
            "x.tif: cannot decode tiff: malformed data: an offset in it points outside the file"
        );
    }

    #[test]
    fn the_photometric_tag_is_rewritten_in_either_byte_order_and_in_bigtiff() {
        // Big-endian classic TIFF: header, IFD at 8 with two entries, 262 (SHORT 3) second.
        let mut mm = b"MM\0\x2a\0\0\0\x08\0\x02".to_vec();
        mm.extend([1, 0, 0, 3, 0, 0, 0, 1, 0, 7, 0, 0]); // 256 ImageWidth = 7
        mm.extend([1, 6, 0, 3, 0, 0, 0, 1, 0, 3, 0, 0]); // 262 = 3 (palette)
        assert!(set_black_is_zero(&mut mm));
        assert_eq!(&mm[10 + 12 + 8..10 + 12 + 10], &[0, 1]);
        assert_eq!(&mm[10 + 8..10 + 10], &[0, 7], "other entries untouched");
        // Little-endian BigTIFF: IFD at 16, an 8-byte count, 20-byte entries.
        let mut big = b"II\x2b\0\x08\0\0\0".to_vec();
        big.extend(16u64.to_le_bytes());
        big.extend(1u64.to_le_bytes());
        big.extend([6, 1, 3, 0]);
        big.extend(1u64.to_le_bytes());
        big.extend([3, 0, 0, 0, 0, 0, 0, 0]);
        assert!(set_black_is_zero(&mut big));
        assert_eq!(&big[24 + 12..24 + 14], &[1, 0]);
        // No such entry, or no TIFF at all: nothing is changed.
        let mut none = b"II\x2a\0\x08\0\0\0\0\0".to_vec();
        assert!(!set_black_is_zero(&mut none));
        assert!(!set_black_is_zero(&mut b"GIF89a".to_vec()));
        assert!(!set_black_is_zero(
            &mut b"II\x2a\0\xff\xff\xff\x7f".to_vec()
        ));
    }

    #[test]
    fn planes_turn_as_image_turns_pixels() {
        let (w, h) = (3usize, 2usize);
        let plane: Vec<u8> = (1..=6).collect();
        for orientation in [
            Orientation::NoTransforms,
            Orientation::Rotate90,
            Orientation::Rotate180,
            Orientation::Rotate270,
            Orientation::FlipHorizontal,
            Orientation::FlipVertical,
            Orientation::Rotate90FlipH,
            Orientation::Rotate270FlipH,
        ] {
            let gray = image::GrayImage::from_raw(w as u32, h as u32, plane.clone()).expect("3×2");
            let mut image = DynamicImage::ImageLuma8(gray);
            image.apply_orientation(orientation);
            assert_eq!(
                orient_plane(&plane, w, h, orientation),
                image.into_luma8().into_raw(),
                "{orientation:?}"
            );
        }
    }

    #[test]
    fn bmp_indices_are_found_again_only_when_the_colours_tell_them_apart() {
        let pixels = image::RgbImage::from_raw(2, 1, vec![9, 9, 9, 1, 2, 3]).expect("2×1");
        let distinct = BmpPalette::Colors(vec![[1, 2, 3], [9, 9, 9]]);
        assert_eq!(
            distinct.source(&pixels, || None),
            SourceMode::Palette {
                indices: vec![1, 0],
                palette: Palette::Rgb(vec![[1, 2, 3], [9, 9, 9]]),
            }
        );
        let repeated = BmpPalette::Colors(vec![[1, 2, 3], [9, 9, 9], [1, 2, 3]]);
        assert_eq!(
            repeated.source(&pixels, || None),
            SourceMode::Color,
            "which [1, 2, 3]? the file cannot say"
        );
        assert_eq!(
            repeated.source(&pixels, || Some(vec![1, 2])),
            SourceMode::Palette {
                indices: vec![1, 2],
                palette: Palette::Rgb(vec![[1, 2, 3], [9, 9, 9], [1, 2, 3]]),
            },
            "the file's own indices"
        );
        assert_eq!(
            repeated.source(&pixels, || Some(vec![1, 3])),
            SourceMode::Color,
            "index 3 is past the palette"
        );
        let missing = BmpPalette::Colors(vec![[1, 2, 3]]);
        assert_eq!(
            missing.source(&pixels, || None),
            SourceMode::Color,
            "[9, 9, 9] is no entry"
        );
        assert_eq!(BmpPalette::Gray.source(&pixels, || None), SourceMode::Gray);
    }
}

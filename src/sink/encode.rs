//! Encoders and atomic file writes: turning processed frames into the bytes of one output file
//! (webp, png, jpeg, gif, bmp, tiff, npy) and putting those bytes on disk without ever leaving a
//! partial file.
//!
//! Each frame is written in its converted mode ([`Frame::image`]) where the format holds it
//! ([`Format::holds`]); frames without a converted image are written as RGB, alpha dropped
//! without compositing, as Gradio's default `image_mode="RGB"` (Pillow's `convert("RGB")`).
//! That choice lives in one function, `output_image`.
//!
//! A frame's ICC profile ([`FrameMeta::icc_profile`](crate::FrameMeta::icc_profile)) is
//! written into PNG, JPEG, TIFF and WebP files (lossy and lossless) when it describes the
//! colours the file stores: an RGB profile with RGB, RGBA and P images (and every WebP, which
//! stores gray as RGB, and YCbCr JPEGs, which decode to RGB), a gray one with `1`, L, I and F,
//! a CMYK one with CMYK. Otherwise it is left out: an RGB profile on a gray PNG is invalid,
//! and a conversion such as RGB to CMYK (plain inversion) leaves no profile that fits. So is a
//! profile too large for the format: over 254 segments of a JPEG, over 1 MiB in a PNG (which
//! Pillow cannot open). The pipeline gives a frame its file's profile only where it describes
//! the frame's pixels ([`crate::FrameMeta::icc_profile`]). Pillow writes the profile of PNG
//! and TIFF files whatever the mode, and none in JPEG or WebP unless asked; GIF, BMP and npy
//! hold none.

use std::borrow::Cow;
use std::fs;
use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use image::codecs::bmp::BmpEncoder;
use image::codecs::png::PngEncoder;
use image::codecs::webp::WebPEncoder;
use image::{ExtendedColorType, ImageEncoder};

use super::npy;
use super::sequence::{SequenceWriter, check_values, encoding_threads};
use crate::error::{Error, Result};
use crate::frame::Frame;
use crate::mode::{ImageMode, ModeData, ModeImage, Palette};

/// Pillow's (and Gradio's) default lossy WebP quality.
pub const DEFAULT_WEBP_QUALITY: f32 = 80.0;
/// Pillow's default JPEG quality.
pub const DEFAULT_JPEG_QUALITY: u8 = 75;
/// Delay given to animated-GIF frames that carry none (Pillow's default duration).
pub const DEFAULT_GIF_DELAY: Duration = Duration::from_millis(100);
/// The shortest delay given to a stream's frame (2 cs: browsers show shorter ones at 10 cs).
pub const MIN_GIF_DELAY: Duration = Duration::from_millis(20);
/// NeuQuant speed for large GIF frames with more than 256 colours (1 best … 30 fastest); 10
/// is the `gif` crate's suggested balance. Frames with at most 256 colours get an exact
/// palette; smaller frames a better speed ([`gif_speed`]).
pub const GIF_SPEED: i32 = 10;

/// NeuQuant's speed for frames of `pixels`: one step per 30,000 pixels, from 1 up to
/// [`GIF_SPEED`] (reached at 300,000, about 640×480). NeuQuant learns from a sample of the
/// pixels, and on a small frame speed 10 leaves it few: a 64×48 frame of many colours came
/// out 12.7 levels from its source on average (Pillow's median cut: 6.4), 8.5 at speed 1,
/// which costs a few milliseconds there. On a 640×480 photo speed 10 gives 4.4 (Pillow 5.2)
/// in 100 ms, and speed 1 would take 480.
pub fn gif_speed(pixels: usize) -> i32 {
    let speed = (pixels / 30_000).clamp(1, GIF_SPEED as usize);
    speed as i32
}
/// The format names [`Format::from_name`] accepts.
pub const FORMAT_NAMES: &[&str] = &[
    "webp", "png", "jpeg", "jpg", "jpe", "jfif", "gif", "bmp", "dib", "tiff", "tif", "npy",
];

/// Extensions of image formats shutter does not write: an output name ending in one is
/// refused rather than taken for a directory.
pub const UNWRITTEN_EXTENSIONS: &[&str] = &[
    "apng", "avif", "avifs", "blp", "bw", "cur", "dcx", "dds", "emf", "eps", "exr", "fits", "flc",
    "fli", "ftex", "gbr", "hdr", "heic", "heif", "icb", "icns", "ico", "im", "j2c", "j2k", "jp2",
    "jpc", "jpf", "jpx", "jxl", "jxr", "mpo", "msp", "pbm", "pcd", "pcx", "pdf", "pfm", "pgm",
    "pnm", "ppm", "ps", "psd", "pxr", "qoi", "ras", "rgb", "rgba", "sgi", "svg", "svgz", "tga",
    "vda", "vst", "wdp", "wmf", "xbm", "xpm",
];

/// An output file format and its settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Format {
    /// WebP: lossy (libwebp, method 4, like Pillow) at `quality` 0–100, or lossless.
    Webp {
        /// Lossy quality, 0–100 (default 80); not used when `lossless` is true.
        quality: f32,
        /// True for lossless WebP.
        lossless: bool,
    },
    /// PNG (lossless).
    Png,
    /// JPEG at `quality` 1–100, laid out as Pillow writes it (RGB and YCbCr 4:2:0).
    Jpeg {
        /// Quality, 1–100 (default 75).
        quality: u8,
    },
    /// GIF: still for one frame, animated for several (playing as often as the input
    /// animation did, else looping forever).
    Gif,
    /// Windows bitmap.
    Bmp,
    /// TIFF, uncompressed.
    Tiff,
    /// A NumPy array, `np.asarray(im)` of the frame's mode ((H, W, 3) u8 for RGB, (H, W) u8
    /// for L and P, (H, W) bool for `1`, i32 for I, f32 for F, …); (N, …) for an animation
    /// or a stream.
    Npy,
}

impl Default for Format {
    fn default() -> Self {
        Format::Webp {
            quality: DEFAULT_WEBP_QUALITY,
            lossless: false,
        }
    }
}

impl Format {
    /// The format named `name` (`webp`, `png`, `jpeg`/`jpg`, `gif`, `bmp`, `tiff`/`tif`, `npy`,
    /// any case) with the quality settings given (defaults: webp lossy 80 like Pillow, jpeg 75).
    ///
    /// # Errors
    /// [`Error::Usage`] naming the flag at fault: an unknown name (`--format`); a quality out of
    /// range (0–100 for webp, a whole number 1–100 for jpeg), given for a format without one,
    /// or given with `--lossless` (`--quality`); `--lossless` for anything but webp.
    pub fn from_name(name: &str, quality: Option<f32>, lossless: bool) -> Result<Format> {
        let lower = name.trim().to_ascii_lowercase();
        let format = match lower.as_str() {
            "webp" if lossless => {
                if let Some(q) = quality {
                    return Err(Error::Usage(format!(
                        "quality (--quality): lossless webp has no quality setting (got {q}); drop --quality or --lossless"
                    )));
                }
                Format::Webp {
                    quality: DEFAULT_WEBP_QUALITY,
                    lossless: true,
                }
            }
            "webp" => {
                let quality = quality.unwrap_or(DEFAULT_WEBP_QUALITY);
                check_range(quality, 0.0, "webp")?;
                Format::Webp {
                    quality,
                    lossless: false,
                }
            }
            "jpeg" | "jpg" | "jpe" | "jfif" => {
                no_lossless(lossless, "jpeg")?;
                let quality = match quality {
                    None => DEFAULT_JPEG_QUALITY,
                    Some(q) => {
                        check_range(q, 1.0, "jpeg")?;
                        if q.fract() != 0.0 {
                            return Err(Error::Usage(format!(
                                "quality (--quality): {q} is not a whole number, as jpeg needs"
                            )));
                        }
                        q as u8
                    }
                };
                Format::Jpeg { quality }
            }
            "png" | "gif" | "bmp" | "dib" | "tiff" | "tif" | "npy" => {
                let format = match lower.as_str() {
                    "png" => Format::Png,
                    "gif" => Format::Gif,
                    "bmp" | "dib" => Format::Bmp,
                    "npy" => Format::Npy,
                    _ => Format::Tiff,
                };
                no_lossless(lossless, format.extension())?;
                if let Some(q) = quality {
                    return Err(Error::Usage(format!(
                        "quality (--quality): {} has no quality setting (got {q}); only webp and jpeg do",
                        format.extension()
                    )));
                }
                format
            }
            _ => {
                return Err(Error::Usage(format!(
                    "format (--format): unknown format '{name}' (expected one of webp, png, jpeg, gif, bmp, tiff, npy)"
                )));
            }
        };
        Ok(format)
    }

    /// The format an output path's extension names (any case), if any; `None` when the path
    /// has no extension or one that names no format.
    ///
    /// # Errors
    /// `Some(Err(..))` with the [`Error::Usage`] of [`Format::from_name`] when the settings do
    /// not fit the format.
    pub fn from_path(path: &Path, quality: Option<f32>, lossless: bool) -> Option<Result<Format>> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        FORMAT_NAMES
            .contains(&ext.as_str())
            .then(|| Format::from_name(&ext, quality, lossless))
    }

    /// Checks the settings of a format built by hand: a lossy WebP quality within 0–100, a
    /// JPEG quality within 1–100 ([`Format::from_name`] checks its own).
    ///
    /// # Errors
    /// [`Error::Usage`] naming the quality and its range.
    pub fn check(&self) -> Result<()> {
        match *self {
            Format::Webp {
                quality,
                lossless: false,
            } => check_range(quality, 0.0, "webp"),
            Format::Jpeg { quality } => check_range(f32::from(quality), 1.0, "jpeg"),
            _ => Ok(()),
        }
    }

    /// File extension without the dot.
    pub fn extension(&self) -> &'static str {
        match self {
            Format::Webp { .. } => "webp",
            Format::Png => "png",
            Format::Jpeg { .. } => "jpeg",
            Format::Gif => "gif",
            Format::Bmp => "bmp",
            Format::Tiff => "tiff",
            Format::Npy => "npy",
        }
    }

    /// The most pixels a side of an image may have in this format: WebP's 14 bits (16383),
    /// GIF's 16 (65535), JPEG 65500 (libjpeg's limit: its 16 bits would hold 65535, but
    /// libjpeg, and so Pillow and most readers, refuse a side over 65500); `None` for the
    /// others, bound only by the decoding limits.
    pub fn max_side(&self) -> Option<u32> {
        match self {
            Format::Webp { .. } => Some(WEBP_MAX_SIDE),
            Format::Gif => Some(u32::from(u16::MAX)),
            Format::Jpeg { .. } => Some(JPEG_MAX_SIDE),
            _ => None,
        }
    }

    /// True for formats that hold several frames in one file (gif, an animated webp, npy).
    pub fn holds_many_frames(&self) -> bool {
        matches!(self, Format::Gif | Format::Webp { .. } | Format::Npy)
    }
}

fn check_range(q: f32, min: f32, format: &str) -> Result<()> {
    if q.is_nan() || !(min..=100.0).contains(&q) {
        return Err(Error::Usage(format!(
            "quality (--quality): {q} is out of range {min}–100 for {format}"
        )));
    }
    Ok(())
}

fn no_lossless(lossless: bool, format: &str) -> Result<()> {
    if lossless {
        return Err(Error::Usage(format!(
            "lossless (--lossless): only webp has a lossless mode, not {format}"
        )));
    }
    Ok(())
}

/// Pixels as an encoder receives them: the frame's converted image ([`Frame::image`]) or, for
/// frames without one, their RGB pixels (Gradio's default `image_mode="RGB"`: alpha dropped
/// without compositing, as Pillow's `convert("RGB")`). **The one place that decides about alpha.**
pub(super) fn output_image(frame: &Frame) -> Cow<'_, ModeImage> {
    match &frame.image {
        Some(image) => Cow::Borrowed(image),
        None => Cow::Owned(ModeImage {
            width: frame.width,
            height: frame.height,
            mode: ImageMode::Rgb,
            data: ModeData::U8(frame.to_rgb()),
            palette: None,
        }),
    }
}

impl Format {
    /// True when files of this format can hold images of `mode` (what Pillow can save, within
    /// what our encoders write): `1`, `L`, `RGB` → every format; `RGBA` → png, webp, gif, bmp,
    /// tiff; `P` → png, gif; `CMYK` → jpeg, tiff; `YCbCr` → jpeg; `I`, `F` → tiff; `LAB`,
    /// `HSV` → npy only; every mode → npy.
    pub fn holds(&self, mode: ImageMode) -> bool {
        use ImageMode::*;
        match self {
            Format::Npy => true,
            Format::Png => matches!(mode, One | L | P | Rgb | Rgba),
            Format::Webp { .. } => matches!(mode, One | L | Rgb | Rgba),
            Format::Gif => matches!(mode, One | L | P | Rgb | Rgba),
            Format::Bmp => matches!(mode, One | L | Rgb | Rgba),
            Format::Jpeg { .. } => matches!(mode, One | L | Rgb | Cmyk | YCbCr),
            Format::Tiff => matches!(mode, One | L | Rgb | Rgba | Cmyk | I | F),
        }
    }

    /// True when files of this format keep an `L` or `RGB` image's transparency colour
    /// ([`SourceMode::transparency_key`](crate::mode::source::SourceMode::transparency_key)),
    /// as Pillow saves `info["transparency"]`: PNG as a `tRNS` chunk, GIF as its transparent
    /// index; WebP turns an `L` image with one into RGBA (transparent where it matches),
    /// and an RGB one's is lost. Other formats hold none.
    pub fn keeps_key(&self, mode: ImageMode) -> bool {
        match self {
            Format::Png | Format::Gif => matches!(mode, ImageMode::L | ImageMode::Rgb),
            Format::Webp { .. } => mode == ImageMode::L,
            _ => false,
        }
    }

    /// [`Format::holds`] as the one-line reason an encoder gives when it does not.
    pub(super) fn holds_or_why(&self, mode: ImageMode) -> Result<(), String> {
        if self.holds(mode) {
            Ok(())
        } else {
            Err(format!("{} cannot hold mode {mode}", self.extension()))
        }
    }

    /// Refuses a mode this format cannot hold, before any work starts.
    ///
    /// # Errors
    /// [`Error::Usage`] naming the mode, the format and the formats that can hold the mode.
    pub fn check_mode(&self, mode: ImageMode) -> Result<()> {
        if self.holds(mode) {
            return Ok(());
        }
        let all = [
            Format::Png,
            Format::default(),
            Format::Jpeg {
                quality: DEFAULT_JPEG_QUALITY,
            },
            Format::Gif,
            Format::Bmp,
            Format::Tiff,
            Format::Npy,
        ];
        let able: Vec<&str> = all
            .iter()
            .filter(|f| f.holds(mode))
            .map(|f| f.extension())
            .collect();
        Err(Error::Usage(format!(
            "mode {mode} (--mode): {} cannot hold mode {mode}; formats that can: {}",
            self.extension(),
            able.join(", ")
        )))
    }
}

/// Encodes one frame, or all frames of an animated input, into the bytes of one file.
///
/// Each frame's converted image is written in its mode where the format holds it (see
/// [`Format::holds`]); frames without one are written as RGB. Only
/// [`Format::holds_many_frames`] formats take several frames: GIF and WebP make an animation
/// (each frame's `meta.delay`; for a stream's frames, which carry none, the time to the next
/// frame's timestamp, at least [`MIN_GIF_DELAY`]; [`DEFAULT_GIF_DELAY`] when neither tells;
/// playing as many times as the first frame's `meta.plays`, forever when it has none; one
/// frame makes a still), NPY stacks them into an (N, …) array (a sequence's single frame
/// too, see [`crate::frame::FrameMeta::sequence`]). Every frame must share the first one's
/// size and mode, but for one case: a GIF frame with a `meta.delay` (an animation's) that is
/// larger on both sides, as when a GIF's canvas grows past its screen, is cut to the first
/// frame's size, as Pillow writes such a GIF.
/// An animation's frames are quantised or encoded side by side, a thread a core (at most 8).
///
/// ```
/// use shutter::sink::encode::{self, Format};
/// use shutter::{Frame, FrameMeta};
///
/// let red_blue = vec![255, 0, 0, 255, 0, 0, 255, 255];
/// let frame = Frame::new(2, 1, red_blue, false, FrameMeta::still(0, 0));
/// let webp = encode::encode(&Format::from_name("webp", None, false)?, &[frame])?;
/// assert_eq!(&webp[8..12], b"WEBP");
/// # Ok::<(), shutter::Error>(())
/// ```
///
/// # Errors
/// [`Error::Usage`] for a format built by hand with settings [`Format::check`] refuses (a
/// JPEG quality of 0, a lossy WebP quality past 100 or NaN), as [`Pipeline`](crate::Pipeline)
/// refuses it. [`Error::Encode`] naming the frame at fault by its place in `frames` (`frame 0`
/// for the first, whatever its `meta.seq`; `no frames`; `3 frames` when the format holds one)
/// and the reason: no frames, several frames for a single-frame format, a buffer that does
/// not fill the frame's size (naming the bytes given and the bytes needed), a frame of no
/// pixels (0×0, 0×5: only npy holds one), frames of different sizes or modes, a mode the
/// format cannot hold, or the encoder's own failure (for example WebP beyond 16383 pixels a
/// side, JPEG beyond 65500, GIF beyond 65535).
pub fn encode(format: &Format, frames: &[Frame]) -> Result<Vec<u8>> {
    encode_until(format, frames, &|| false)
}

/// [`encode`], for a run that may stop while a long animation is being encoded: a GIF or an
/// animated WebP stops before the first frame it takes after `stop` says so, and is written
/// with the frames taken before it (at least the first one, so one frame makes a still).
/// `stop` is asked before each frame after the first is taken; frames are taken as encoding
/// threads come free, a few ahead of the one being written, so the frames taken before the
/// stop are all written. An npy array and a single still are written whole, and `stop` is
/// not asked.
///
/// # Errors
/// As [`encode`].
pub fn encode_until(format: &Format, frames: &[Frame], stop: &dyn Fn() -> bool) -> Result<Vec<u8>> {
    format.check()?;
    encode_all(format, frames, stop)
}

/// [`encode_until`] of a format already checked, with its error a one-line reason, which the
/// caller wraps in [`Error::Encode`] with the output's path.
pub(crate) fn encode_frames(
    format: &Format,
    frames: &[Frame],
    stop: &dyn Fn() -> bool,
) -> Result<Vec<u8>, String> {
    encode_all(format, frames, stop).map_err(Error::into_reason)
}

/// [`encode_until`] of a format already checked.
fn encode_all(format: &Format, frames: &[Frame], stop: &dyn Fn() -> bool) -> Result<Vec<u8>> {
    let refused = |output: String, reason: String| Error::Encode {
        output,
        format: format.extension().to_string(),
        reason,
    };
    let Some(first) = frames.first() else {
        return Err(refused(
            "no frames".to_string(),
            "no frames to encode".to_string(),
        ));
    };
    if frames.len() > 1 && !format.holds_many_frames() {
        return Err(refused(
            format!("{} frames", frames.len()),
            format!(
                "{} holds one frame, got {}",
                format.extension(),
                frames.len()
            ),
        ));
    }
    let stacked = frames.len() > 1 || first.meta.sequence;
    if *format == Format::Gif || (format.holds_many_frames() && stacked) {
        let mut writer = SequenceWriter::new(*format, Cursor::new(Vec::new()))?;
        let never = || false;
        let stop = match format {
            Format::Gif | Format::Webp { .. } => stop,
            _ => &never,
        };
        // Encoded side by side, on as many threads as the pipeline's encoders by default.
        writer.push_until(frames, encoding_threads(frames.len()), stop)?;
        return Ok(writer.finish()?.into_inner());
    }
    let still_of = || {
        let img = &checked_output(first, 0)?;
        check_pixels(format, img, 0)?;
        format.holds_or_why(img.mode)?;
        still(format, first, img)
    };
    still_of().map_err(|reason| refused("frame 0".to_string(), reason))
}

/// Frame `k`'s output image ([`output_image`]), its pixels checked first: a frame without a
/// converted image must hold `width × height × 4` bytes, checked before they are converted so
/// that the error names the bytes given; a converted one, the values of its size and mode.
pub(super) fn checked_output(frame: &Frame, k: usize) -> Result<Cow<'_, ModeImage>, String> {
    if frame.image.is_none() {
        crate::frame::check_rgba(frame, k)?;
    }
    let image = output_image(frame);
    check_values(&image, k)?;
    Ok(image)
}

/// Refuses image `k` of no pixels (0×0, 0×5) in any format but npy, where it is an empty
/// array as numpy allows; the others would write a file no reader opens, or fail deep in
/// their encoder.
pub(super) fn check_pixels(format: &Format, image: &ModeImage, k: usize) -> Result<(), String> {
    if *format == Format::Npy || (image.width > 0 && image.height > 0) {
        return Ok(());
    }
    Err(format!(
        "frame {k} is {}×{}, no pixels: {} cannot hold an empty image (npy can)",
        image.width,
        image.height,
        format.extension()
    ))
}

/// The file of one still image, `img` (`frame`'s output, checked), in `format`: with its
/// profile where the format stores it, and its transparency colour where it keeps one.
pub(super) fn still(format: &Format, frame: &Frame, img: &ModeImage) -> Result<Vec<u8>, String> {
    let icc = fitting_profile(frame.meta.icc_profile.as_deref(), format, img.mode);
    let key = transparency_key(frame, img, format);
    if let Some(key) = &key {
        return keyed(img, key, format, icc);
    }
    match *format {
        Format::Npy => return npy_bytes(img),
        Format::Tiff => return tiff(img, icc),
        Format::Jpeg { quality } => return jpeg(img, quality, icc),
        Format::Png if img.mode == ImageMode::P => return png_indexed(img, icc),
        Format::Png if img.mode == ImageMode::One => return png_one_bit(img, icc),
        Format::Bmp if img.mode == ImageMode::One => return bmp_one_bit(img),
        _ => {}
    }
    let (data, color) = eight_bit(img)?;
    let (w, h) = (img.width, img.height);
    let mut out = Vec::new();
    if *format == Format::Bmp {
        // Rows padded to 4 bytes, and the headers and a palette.
        reserve_output(&mut out, data.len() + 4 * h as usize + 2048)?;
    }
    match *format {
        Format::Webp { quality, lossless } => {
            return webp(&data, (w, h), color, (quality, lossless), icc);
        }
        Format::Png => write_with(
            png_encoder_for(&data, color, &mut out),
            &data,
            w,
            h,
            color,
            icc,
        )?,
        Format::Bmp => write_with(BmpEncoder::new(&mut out), &data, w, h, color, None)?,
        Format::Jpeg { .. } | Format::Tiff | Format::Gif | Format::Npy => {
            unreachable!("handled above")
        }
    }
    Ok(out)
}

/// Makes room in `out` for an output of about `bytes` bytes at once: an uncompressed format
/// (BMP, TIFF, npy) grows its buffer to the image's size, which doubling would overshoot by
/// up to as much again (a 525 MB TIFF asked for 1 GiB), and an allocation that fails aborts
/// the process where this says so.
pub(super) fn reserve_output(out: &mut Vec<u8>, bytes: usize) -> Result<(), String> {
    out.try_reserve_exact(bytes)
        .map_err(|_| format!("not enough memory for its {bytes}-byte file"))
}

/// The 8-bit interleaved samples of a `1`, L, RGB or RGBA image, as `image`'s encoders take them.
fn eight_bit(img: &ModeImage) -> Result<(Cow<'_, [u8]>, ExtendedColorType), String> {
    let ModeData::U8(data) = &img.data else {
        return Err(format!("mode {} has no 8-bit samples", img.mode));
    };
    let color = match img.mode {
        ImageMode::One | ImageMode::L => ExtendedColorType::L8,
        ImageMode::Rgb => ExtendedColorType::Rgb8,
        ImageMode::Rgba => ExtendedColorType::Rgba8,
        other => return Err(format!("mode {other} is not 8-bit gray or RGB(A)")),
    };
    Ok((Cow::Borrowed(data.as_slice()), color))
}

/// RGBA samples of any image a GIF can show (gray expanded, palette looked up).
pub(super) fn to_rgba(img: &ModeImage) -> Result<Vec<u8>, String> {
    let ModeData::U8(data) = &img.data else {
        return Err(format!("mode {} has no 8-bit samples", img.mode));
    };
    Ok(match img.mode {
        ImageMode::One | ImageMode::L => data.iter().flat_map(|&v| [v, v, v, 255]).collect(),
        ImageMode::Rgb => data
            .chunks_exact(3)
            .flat_map(|p| [p[0], p[1], p[2], 255])
            .collect(),
        ImageMode::Rgba => data.clone(),
        ImageMode::P => {
            let lookup = palette_rgba(img);
            data.iter()
                .flat_map(|&i| {
                    lookup
                        .get(usize::from(i))
                        .copied()
                        .unwrap_or([0, 0, 0, 255])
                })
                .collect()
        }
        other => return Err(format!("gif cannot show mode {other}")),
    })
}

/// The palette of a P image as RGBA entries.
pub(super) fn palette_rgba(img: &ModeImage) -> Vec<[u8; 4]> {
    match &img.palette {
        Some(Palette::Rgb(p)) => p.iter().map(|c| [c[0], c[1], c[2], 255]).collect(),
        Some(Palette::Rgba(p)) => p.clone(),
        None => Vec::new(),
    }
}

/// A WebP of `data` (`color` samples, `width` × `height`) at `quality`, or lossless, with
/// `icc` as its profile. Lossless (opaque RGBA as RGB): through libwebp when the image has
/// few colours ([`few_colours`]), else through image-webp; lossy through libwebp. The profile
/// is added to libwebp's container.
fn webp(
    data: &[u8],
    (width, height): (u32, u32),
    color: ExtendedColorType,
    (quality, lossless): (f32, bool),
    icc: Option<&[u8]>,
) -> Result<Vec<u8>, String> {
    check_webp_sides(width, height)?;
    if lossless {
        let (data, color) = opaque_as_rgb(data, color);
        if few_colours(&data, color) {
            let webp = webp_lossless_palette(&data, width, height, color)?;
            return match icc {
                Some(icc) => webp_with_profile(&webp, icc),
                None => Ok(webp),
            };
        }
        let mut out = Vec::new();
        let encoder = WebPEncoder::new_lossless(&mut out);
        write_with(encoder, &data, width, height, color, icc)?;
        return Ok(out);
    }
    let webp = webp_lossy(data, width, height, color, quality)?;
    match icc {
        Some(icc) => webp_with_profile(&webp, icc),
        None => Ok(webp),
    }
}

/// WebP's bound on each side (14 bits), lossy and lossless alike.
const WEBP_MAX_SIDE: u32 = 16383;

/// [`WEBP_MAX_SIDE`] for a frame of `width`×`height`.
fn check_webp_sides(width: u32, height: u32) -> Result<(), String> {
    if width == 0 || height == 0 || width > WEBP_MAX_SIDE || height > WEBP_MAX_SIDE {
        return Err(format!(
            "webp sides must be 1–{WEBP_MAX_SIDE} pixels, the frame is {width}×{height}"
        ));
    }
    Ok(())
}

/// RGBA samples whose alpha is 255 everywhere as RGB, so that a lossless WebP has no alpha
/// flag (libwebp, which Pillow uses, leaves it off for opaque images, and Pillow then reopens
/// the file as RGB); other samples as they are.
fn opaque_as_rgb(data: &[u8], color: ExtendedColorType) -> (Cow<'_, [u8]>, ExtendedColorType) {
    if color == ExtendedColorType::Rgba8 && data.chunks_exact(4).all(|px| px[3] == 255) {
        let rgb = data
            .chunks_exact(4)
            .flat_map(|px| [px[0], px[1], px[2]])
            .collect();
        (Cow::Owned(rgb), ExtendedColorType::Rgb8)
    } else {
        (Cow::Borrowed(data), color)
    }
}

/// image's PNG encoder for these samples. RGB or RGBA of at most 256 colours (flat graphics,
/// sprites, a GIF's frames): rows unfiltered and zlib at its default level, as libpng and
/// Pillow store palette images (filters predict smooth photos, not flat areas of few
/// colours). Others: adaptive filters and image's fast deflate (fdeflate, tuned for filtered
/// rows). See PERFORMANCE.md for the sizes and times against Pillow's.
fn png_encoder_for<W: Write>(data: &[u8], color: ExtendedColorType, out: W) -> PngEncoder<W> {
    use image::codecs::png::{CompressionType, FilterType};
    let flat = color != ExtendedColorType::L8 && colours_at_most(data, color, 256);
    if flat {
        PngEncoder::new_with_quality(out, CompressionType::Default, FilterType::NoFilter)
    } else {
        PngEncoder::new(out)
    }
}

/// Runs one of `image`'s single-image encoders, with `icc` as the file's profile.
fn write_with<E: ImageEncoder>(
    mut encoder: E,
    data: &[u8],
    width: u32,
    height: u32,
    color: ExtendedColorType,
    icc: Option<&[u8]>,
) -> Result<(), String> {
    if let Some(icc) = icc {
        encoder
            .set_icc_profile(icc.to_vec())
            .map_err(|e| one_line(&e))?;
    }
    encoder
        .write_image(data, width, height, color)
        .map_err(|e| one_line(&e))
}

/// The transparency colour `frame`'s `image` keeps in `format` (see [`Format::keeps_key`]),
/// as samples of its mode.
pub(super) fn transparency_key(
    frame: &Frame,
    image: &ModeImage,
    format: &Format,
) -> Option<Vec<u8>> {
    format
        .keeps_key(image.mode)
        .then(|| frame.source.transparency_key(image.mode))
        .flatten()
}

/// The RGBA pixels of an `L` or `RGB` image, transparent where the samples equal `key`.
pub(super) fn keyed_rgba(img: &ModeImage, key: &[u8]) -> Result<Vec<u8>, String> {
    let mut rgba = to_rgba(img)?;
    let gray = img.mode != ImageMode::Rgb;
    for px in rgba.chunks_exact_mut(4) {
        let samples = if gray { &px[..1] } else { &px[..3] };
        if samples == key {
            px[3] = 0;
        }
    }
    Ok(rgba)
}

/// An `L` or `RGB` image with a transparency colour, in a format that keeps it
/// ([`Format::keeps_key`]).
fn keyed(
    img: &ModeImage,
    key: &[u8],
    format: &Format,
    icc: Option<&[u8]>,
) -> Result<Vec<u8>, String> {
    let size = (img.width, img.height);
    match *format {
        Format::Webp { quality, lossless } => {
            let rgba = keyed_rgba(img, key)?;
            webp(
                &rgba,
                size,
                ExtendedColorType::Rgba8,
                (quality, lossless),
                icc,
            )
        }
        Format::Png => png_keyed(img, key, icc),
        _ => Err(format!(
            "{} keeps no transparency colour",
            format.extension()
        )),
    }
}

/// An `L` or `RGB` PNG with a `tRNS` chunk of `key`, as Pillow writes an image's
/// `info["transparency"]`.
fn png_keyed(img: &ModeImage, key: &[u8], icc: Option<&[u8]>) -> Result<Vec<u8>, String> {
    let ModeData::U8(data) = &img.data else {
        return Err(format!("mode {} has no 8-bit samples", img.mode));
    };
    let color = match img.mode {
        ImageMode::L => png::ColorType::Grayscale,
        ImageMode::Rgb => png::ColorType::Rgb,
        other => return Err(format!("no transparency colour in a {other} png")),
    };
    let mut out = Vec::new();
    {
        let mut encoder = png_encoder(&mut out, img, icc)?;
        encoder.set_color(color);
        encoder.set_depth(png::BitDepth::Eight);
        // 16 bits a sample, whatever the depth.
        encoder.set_trns(key.iter().flat_map(|&v| [0, v]).collect::<Vec<u8>>());
        let mut writer = encoder.write_header().map_err(|e| one_line(&e))?;
        writer.write_image_data(data).map_err(|e| one_line(&e))?;
        writer.finish().map_err(|e| one_line(&e))?;
    }
    Ok(out)
}

/// The largest profile a JPEG holds: 254 APP2 segments of 65,519 bytes (`jpeg-encoder`
/// refuses more; the format's own limit is 255).
const JPEG_PROFILE_MAX: usize = 254 * 65_519;

/// The largest profile written into a PNG: Pillow refuses to open a PNG whose profile
/// inflates past 1 MiB (`MAX_TEXT_CHUNK`), though it writes one.
const PNG_PROFILE_MAX: usize = 1 << 20;

/// The ICC profile of a frame, when a `format` file of `mode` stores the colours it describes
/// (see the module's introduction) and can hold it; `None` otherwise.
pub(super) fn fitting_profile<'a>(
    icc: Option<&'a [u8]>,
    format: &Format,
    mode: ImageMode,
) -> Option<&'a [u8]> {
    use ImageMode::*;
    let stored = match (format, mode) {
        (Format::Gif | Format::Bmp | Format::Npy, _) | (_, Lab | Hsv) => return None,
        // WebP stores gray as RGB; a YCbCr JPEG is decoded to RGB.
        (Format::Webp { .. }, _) | (_, Rgb | Rgba | P | YCbCr) => crate::icc::RGB,
        (_, One | L | I | F) => crate::icc::GRAY,
        (_, Cmyk) => crate::icc::CMYK,
    };
    let max = match format {
        Format::Jpeg { .. } => JPEG_PROFILE_MAX,
        Format::Png => PNG_PROFILE_MAX,
        _ => usize::MAX,
    };
    icc.filter(|icc| icc.len() <= max && crate::icc::colour_space(icc) == Some(stored))
}

/// A WebP file from libwebp with `icc` added: the extended format's `VP8X` header (made
/// from the `VP8 ` or `VP8L` chunk's size when the file is a simple one) with its ICC flag,
/// then the `ICCP` chunk, then the image's chunks, as the WebP container specifies.
fn webp_with_profile(webp: &[u8], icc: &[u8]) -> Result<Vec<u8>, String> {
    const ICC_FLAG: u8 = 0x20;
    const ALPHA_FLAG: u8 = 0x10;
    let bad = || "libwebp wrote a WebP file this cannot read".to_string();
    if webp.len() < 20 || &webp[..4] != b"RIFF" || &webp[8..12] != b"WEBP" {
        return Err(bad());
    }
    let first = &webp[12..];
    let chunk_len = |chunk: &[u8]| -> Option<usize> {
        let len = u32::from_le_bytes(chunk.get(4..8)?.try_into().ok()?) as usize;
        Some(8 + len + (len & 1))
    };
    let mut out = b"RIFF\0\0\0\0WEBP".to_vec();
    let rest = match &first[..4] {
        b"VP8X" => {
            let len = chunk_len(first)
                .filter(|&n| n == 18 && n <= first.len())
                .ok_or_else(bad)?;
            let mut vp8x = first[..len].to_vec();
            vp8x[8] |= ICC_FLAG;
            out.extend_from_slice(&vp8x);
            &first[len..]
        }
        kind @ (b"VP8 " | b"VP8L") => {
            let (width, height, alpha) = if kind == b"VP8 " {
                // The key frame header: a 3-byte tag, the start code, 14-bit sides.
                let b = first.get(8..18).ok_or_else(bad)?;
                let side = |at: usize| u32::from(u16::from_le_bytes([b[at], b[at + 1]]) & 0x3FFF);
                (side(6), side(8), false)
            } else {
                // The signature 0x2F, then 14-bit sides less one and the alpha bit.
                let b = first.get(8..13).ok_or_else(bad)?;
                let bits = u32::from_le_bytes([b[1], b[2], b[3], b[4]]);
                (
                    (bits & 0x3FFF) + 1,
                    ((bits >> 14) & 0x3FFF) + 1,
                    (bits >> 28) & 1 == 1,
                )
            };
            if width == 0 || height == 0 {
                return Err(bad());
            }
            out.extend_from_slice(b"VP8X");
            out.extend_from_slice(&10u32.to_le_bytes());
            out.push(ICC_FLAG | if alpha { ALPHA_FLAG } else { 0 });
            out.extend_from_slice(&[0, 0, 0]);
            out.extend_from_slice(&(width - 1).to_le_bytes()[..3]);
            out.extend_from_slice(&(height - 1).to_le_bytes()[..3]);
            first
        }
        _ => return Err(bad()),
    };
    let icc_len =
        u32::try_from(icc.len()).map_err(|_| "the ICC profile is over 4 GiB".to_string())?;
    out.extend_from_slice(b"ICCP");
    out.extend_from_slice(&icc_len.to_le_bytes());
    out.extend_from_slice(icc);
    if icc.len() % 2 == 1 {
        out.push(0);
    }
    out.extend_from_slice(rest);
    let riff_len = u32::try_from(out.len() - 8).map_err(|_| "webp over 4 GiB".to_string())?;
    out[4..8].copy_from_slice(&riff_len.to_le_bytes());
    Ok(out)
}

/// Whether a lossless WebP of these samples is better made by libwebp, which stores an image
/// of at most 256 colours as a palette of indices (VP8L's colour-indexing transform, packing
/// 2, 4 or 8 pixels a byte for up to 16, 4 or 2 colours), where image-webp's encoder has no
/// palette: RGB or RGBA samples of at most 256 distinct pixels (a GIF's frames, flat
/// graphics, sprites: 2–3 times smaller, in no more time), or gray of at most 4 values (a
/// dithered `1` image: 2.8 times smaller). Other gray stays with image-webp, which codes it
/// within 10–30% of libwebp's size in a third of the time (see PERFORMANCE.md).
fn few_colours(data: &[u8], color: ExtendedColorType) -> bool {
    let max = match color {
        ExtendedColorType::L8 => 4,
        _ => 256,
    };
    colours_at_most(data, color, max)
}

/// Whether 8-bit L, RGB or RGBA samples hold at most `max` distinct pixels (false for other
/// samples).
fn colours_at_most(data: &[u8], color: ExtendedColorType, max: usize) -> bool {
    let bytes = match color {
        ExtendedColorType::L8 => 1,
        ExtendedColorType::Rgb8 => 3,
        ExtendedColorType::Rgba8 => 4,
        _ => return false,
    };
    let mut seen: Vec<u32> = Vec::with_capacity(max + 1);
    let mut last = None;
    for px in data.chunks_exact(bytes) {
        let value = match *px {
            [v] => u32::from(v),
            [r, g, b] => u32::from_le_bytes([r, g, b, 255]),
            [r, g, b, a] => u32::from_le_bytes([r, g, b, a]),
            _ => return false,
        };
        if last == Some(value) {
            continue;
        }
        last = Some(value);
        if let Err(at) = seen.binary_search(&value) {
            if seen.len() == max {
                return false;
            }
            seen.insert(at, value);
        }
    }
    true
}

/// Lossless WebP through libwebp for an image of few colours ([`few_colours`]): effort
/// quality 25, method 1 (Pillow's default, quality 80 and method 4, makes files within 1% of
/// these in 3 times the time), and the colour of transparent pixels kept (`exact`), as
/// image-webp keeps it.
fn webp_lossless_palette(
    data: &[u8],
    width: u32,
    height: u32,
    color: ExtendedColorType,
) -> Result<Vec<u8>, String> {
    libwebp(data, (width, height), color, |config| {
        config.lossless = 1;
        config.quality = 25.0;
        config.method = 1;
        config.exact = 1;
    })
}

/// A WebP of `data` (`color` samples: gray expanded to RGB, as Pillow's WebP plugin does)
/// through libwebp, with its default settings as `configure` leaves them.
fn libwebp(
    data: &[u8],
    (width, height): (u32, u32),
    color: ExtendedColorType,
    configure: impl FnOnce(&mut webp::WebPConfig),
) -> Result<Vec<u8>, String> {
    let rgb: Vec<u8>;
    let encoder = match color {
        ExtendedColorType::Rgb8 => webp::Encoder::from_rgb(data, width, height),
        ExtendedColorType::Rgba8 => webp::Encoder::from_rgba(data, width, height),
        ExtendedColorType::L8 => {
            rgb = data.iter().flat_map(|&v| [v, v, v]).collect();
            webp::Encoder::from_rgb(&rgb, width, height)
        }
        other => return Err(format!("webp cannot hold {other:?} pixels")),
    };
    let mut config =
        webp::WebPConfig::new().map_err(|()| "libwebp refused its default settings")?;
    configure(&mut config);
    let memory = encoder.encode_advanced(&config).map_err(libwebp_failed)?;
    Ok(memory.to_vec())
}

/// libwebp's error as a reason: running out of memory (a huge frame under a memory limit)
/// says so, as the pipeline's own check does.
fn libwebp_failed(e: webp::WebPEncodingError) -> String {
    match e {
        webp::WebPEncodingError::VP8_ENC_ERROR_OUT_OF_MEMORY => {
            "not enough memory: libwebp could not get the memory to encode it".to_string()
        }
        other => format!("libwebp failed: {other:?}"),
    }
}

/// Lossy WebP through libwebp (the `webp` crate): method 4, like Pillow.
fn webp_lossy(
    data: &[u8],
    width: u32,
    height: u32,
    color: ExtendedColorType,
    quality: f32,
) -> Result<Vec<u8>, String> {
    check_webp_sides(width, height)?;
    // What the `webp` crate's `encode_simple(false, quality)` sets.
    libwebp(data, (width, height), color, |config| {
        config.lossless = 0;
        config.alpha_compression = 1;
        config.quality = quality;
    })
}

/// The array `np.asarray(im)` gives for one still image: (H, W[, bands]).
fn npy_bytes(img: &ModeImage) -> Result<Vec<u8>, String> {
    let shape = img.shape();
    match &img.data {
        ModeData::U8(v) if img.mode == ImageMode::One => {
            let bools: Vec<bool> = v.iter().map(|&b| b != 0).collect();
            npy::to_bytes(&shape, &bools)
        }
        ModeData::U8(v) => npy::to_bytes(&shape, v),
        ModeData::I32(v) => npy::to_bytes(&shape, v),
        ModeData::F32(v) => npy::to_bytes(&shape, v),
    }
}

/// TIFF through the `tiff` crate, which writes every mode Pillow's TIFF plugin shares with
/// us: `1` (1 bit a pixel, [`tiff_one_bit`]), L, RGB, RGBA, CMYK, 32-bit signed I and 32-bit
/// float F.
fn tiff(img: &ModeImage, icc: Option<&[u8]>) -> Result<Vec<u8>, String> {
    use tiff::encoder::{TiffEncoder, colortype};
    if img.mode == ImageMode::One {
        return tiff_one_bit(img, icc);
    }
    let mut buffer = Vec::new();
    let samples = match &img.data {
        ModeData::U8(v) => v.len(),
        ModeData::I32(v) => v.len() * 4,
        ModeData::F32(v) => v.len() * 4,
    };
    // The samples, the profile, and the directory with its strip offsets and lengths (two
    // words a strip, down to a strip a row).
    let directory = 16 * img.height as usize + 8192;
    reserve_output(
        &mut buffer,
        samples + icc.map_or(0, <[u8]>::len) + directory,
    )?;
    let mut out = Cursor::new(buffer);
    let mut encoder = TiffEncoder::new(&mut out).map_err(|e| one_line(&e))?;
    let (w, h) = (img.width, img.height);
    let written = match (&img.data, img.mode) {
        (ModeData::U8(v), ImageMode::L) => {
            tiff_image::<_, colortype::Gray8>(&mut encoder, w, h, v, icc)
        }
        (ModeData::U8(v), ImageMode::Rgb) => {
            tiff_image::<_, colortype::RGB8>(&mut encoder, w, h, v, icc)
        }
        (ModeData::U8(v), ImageMode::Rgba) => {
            tiff_image::<_, colortype::RGBA8>(&mut encoder, w, h, v, icc)
        }
        (ModeData::U8(v), ImageMode::Cmyk) => {
            tiff_image::<_, colortype::CMYK8>(&mut encoder, w, h, v, icc)
        }
        (ModeData::I32(v), ImageMode::I) => {
            tiff_image::<_, colortype::GrayI32>(&mut encoder, w, h, v, icc)
        }
        (ModeData::F32(v), ImageMode::F) => {
            tiff_image::<_, colortype::Gray32Float>(&mut encoder, w, h, v, icc)
        }
        (_, mode) => return Err(format!("tiff cannot hold mode {mode}")),
    };
    written.map_err(|e| one_line(&e))?;
    Ok(out.into_inner())
}

/// Writes one image of colour type `C` with `icc` as its ICC profile tag.
fn tiff_image<W, C>(
    encoder: &mut tiff::encoder::TiffEncoder<W>,
    width: u32,
    height: u32,
    data: &[C::Inner],
    icc: Option<&[u8]>,
) -> tiff::TiffResult<()>
where
    W: Write + std::io::Seek,
    C: tiff::encoder::colortype::ColorType,
    [C::Inner]: tiff::encoder::TiffValue,
{
    let mut image = encoder.new_image::<C>(width, height)?;
    if let Some(icc) = icc {
        image
            .encoder()
            .write_tag(tiff::tags::Tag::IccProfile, Undefined(icc))?;
    }
    image.write_data(data)
}

/// Bytes written as a TIFF tag of type UNDEFINED (7), as TIFF writers store an ICC profile;
/// the `tiff` crate writes a `[u8]` as BYTE.
struct Undefined<'a>(&'a [u8]);

impl tiff::encoder::TiffValue for Undefined<'_> {
    const BYTE_LEN: u8 = 1;
    const FIELD_TYPE: tiff::tags::Type = tiff::tags::Type::UNDEFINED;

    fn count(&self) -> usize {
        self.0.len()
    }

    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(self.0)
    }
}

/// The rows of a `1` image (0/255 bytes) packed 8 pixels a byte, the first pixel in the most
/// significant bit, 1 for white, each row padded with zero bits to `stride` bytes: the layout
/// 1-bit PNG, BMP and TIFF share. Rows run top to bottom.
fn packed_rows(img: &ModeImage, stride: usize) -> Result<Vec<u8>, String> {
    let ModeData::U8(data) = &img.data else {
        return Err("1 image without 8-bit samples".to_string());
    };
    let width = img.width as usize;
    let mut packed = vec![0u8; stride * img.height as usize];
    if width == 0 {
        return Ok(packed);
    }
    for (row, out) in data
        .chunks_exact(width)
        .zip(packed.chunks_exact_mut(stride))
    {
        for (x, _) in row.iter().enumerate().filter(|&(_, &v)| v != 0) {
            out[x / 8] |= 0x80 >> (x % 8);
        }
    }
    Ok(packed)
}

/// Bytes in one packed row of a `1` image: a bit a pixel, rounded up to a byte.
fn one_bit_row(img: &ModeImage) -> usize {
    (img.width as usize).div_ceil(8)
}

/// A 1-bit grayscale PNG, as Pillow writes a `1` image (and reads back as `1`).
fn png_one_bit(img: &ModeImage, icc: Option<&[u8]>) -> Result<Vec<u8>, String> {
    let packed = packed_rows(img, one_bit_row(img))?;
    let mut out = Vec::new();
    {
        let mut encoder = png_encoder(&mut out, img, icc)?;
        encoder.set_color(png::ColorType::Grayscale);
        encoder.set_depth(png::BitDepth::One);
        // Packed bits: unfiltered, as libpng and Pillow.
        encoder.set_filter(png::Filter::NoFilter);
        let mut writer = encoder.write_header().map_err(|e| one_line(&e))?;
        writer.write_image_data(&packed).map_err(|e| one_line(&e))?;
        writer.finish().map_err(|e| one_line(&e))?;
    }
    Ok(out)
}

/// A 1-bit BMP byte for byte as Pillow writes a `1` image: a BITMAPINFOHEADER, a black and a
/// white palette entry, rows bottom-up padded to 4 bytes, 96 dpi (3780 pixels a metre).
fn bmp_one_bit(img: &ModeImage) -> Result<Vec<u8>, String> {
    const HEADERS: u32 = 14 + 40 + 2 * 4;
    const PIXELS_PER_METRE: u32 = 3780;
    let stride = one_bit_row(img).div_ceil(4) * 4;
    let too_big = || format!("bmp cannot hold a {}×{} 1-bit image", img.width, img.height);
    let (Ok(width), Ok(height)) = (i32::try_from(img.width), i32::try_from(img.height)) else {
        return Err(too_big());
    };
    let image_size = u32::try_from(stride * img.height as usize).map_err(|_| too_big())?;
    let file_size = image_size.checked_add(HEADERS).ok_or_else(too_big)?;
    let packed = packed_rows(img, stride)?;
    let mut out = Vec::with_capacity(file_size as usize);
    out.extend_from_slice(b"BM");
    out.extend_from_slice(&file_size.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&HEADERS.to_le_bytes());
    out.extend_from_slice(&40u32.to_le_bytes());
    out.extend_from_slice(&width.to_le_bytes());
    // Positive: rows stored bottom-up.
    out.extend_from_slice(&height.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&image_size.to_le_bytes());
    out.extend_from_slice(&PIXELS_PER_METRE.to_le_bytes());
    out.extend_from_slice(&PIXELS_PER_METRE.to_le_bytes());
    out.extend_from_slice(&2u32.to_le_bytes());
    out.extend_from_slice(&2u32.to_le_bytes());
    out.extend_from_slice(&[0, 0, 0, 0, 255, 255, 255, 0]);
    for row in packed.chunks_exact(stride).rev() {
        out.extend_from_slice(row);
    }
    Ok(out)
}

/// A 1-bit TIFF as Pillow writes a `1` image: BlackIsZero, uncompressed, one strip. The
/// `tiff` crate's image encoder takes whole samples only, so the packed rows go through its
/// directory encoder with the tags written by hand.
fn tiff_one_bit(img: &ModeImage, icc: Option<&[u8]>) -> Result<Vec<u8>, String> {
    use tiff::encoder::TiffEncoder;
    use tiff::tags::Tag;
    let packed = packed_rows(img, one_bit_row(img))?;
    let strip_bytes = u32::try_from(packed.len())
        .map_err(|_| format!("tiff cannot hold a {}×{} image", img.width, img.height))?;
    let mut out = Cursor::new(Vec::new());
    {
        let tiff_err = |e: tiff::TiffError| one_line(&e);
        let mut encoder = TiffEncoder::new(&mut out).map_err(tiff_err)?;
        let mut dir = encoder.image_directory().map_err(tiff_err)?;
        let offset = dir.write_data(packed.as_slice()).map_err(tiff_err)?;
        let offset = u32::try_from(offset).map_err(|_| "tiff over 4 GiB".to_string())?;
        dir.write_tag(Tag::ImageWidth, img.width)
            .map_err(tiff_err)?;
        dir.write_tag(Tag::ImageLength, img.height)
            .map_err(tiff_err)?;
        dir.write_tag(Tag::BitsPerSample, 1u16).map_err(tiff_err)?;
        // No compression.
        dir.write_tag(Tag::Compression, 1u16).map_err(tiff_err)?;
        // BlackIsZero.
        dir.write_tag(Tag::PhotometricInterpretation, 1u16)
            .map_err(tiff_err)?;
        dir.write_tag(Tag::StripOffsets, offset).map_err(tiff_err)?;
        dir.write_tag(Tag::SamplesPerPixel, 1u16)
            .map_err(tiff_err)?;
        dir.write_tag(Tag::RowsPerStrip, img.height)
            .map_err(tiff_err)?;
        dir.write_tag(Tag::StripByteCounts, strip_bytes)
            .map_err(tiff_err)?;
        // Chunky.
        dir.write_tag(Tag::PlanarConfiguration, 1u16)
            .map_err(tiff_err)?;
        if let Some(icc) = icc {
            dir.write_tag(Tag::IccProfile, Undefined(icc))
                .map_err(tiff_err)?;
        }
        dir.finish().map_err(tiff_err)?;
    }
    Ok(out.into_inner())
}

/// JPEG through `jpeg-encoder`, laid out as Pillow's libjpeg writes it by default: RGB and
/// YCbCr 4:2:0 at every quality (each chroma sample the average of a 2×2 block, as libjpeg's
/// downsampler makes it), `1` and L one gray component, CMYK four components at full
/// resolution, each quantized with the luma table, in an Adobe APP14 file with inverted samples
/// (what Pillow writes and reads). YCbCr samples are written as they are, with no colour
/// transform.
/// The longest side of a JPEG written: libjpeg's `JPEG_MAX_DIMENSION`. The format's 16 bits
/// hold 65535, but libjpeg (Pillow's reader and writer, browsers') refuses a file over 65500.
const JPEG_MAX_SIDE: u32 = 65_500;

fn jpeg_too_large(img: &ModeImage) -> String {
    format!(
        "jpeg sides must be at most {JPEG_MAX_SIDE} pixels (libjpeg's limit, which Pillow \
         shares), the frame is {}×{}",
        img.width, img.height
    )
}

fn jpeg(img: &ModeImage, quality: u8, icc: Option<&[u8]>) -> Result<Vec<u8>, String> {
    use jpeg_encoder::{ChromaSubsamplingMethod, ColorType, QuantizationTableType, SamplingFactor};
    let ModeData::U8(data) = &img.data else {
        return Err(format!("mode {} has no 8-bit samples", img.mode));
    };
    let color = match img.mode {
        ImageMode::One | ImageMode::L => ColorType::Luma,
        ImageMode::Rgb => ColorType::Rgb,
        ImageMode::YCbCr => ColorType::Ycbcr,
        ImageMode::Cmyk => ColorType::Cmyk,
        other => return Err(format!("jpeg cannot hold mode {other}")),
    };
    let (Ok(w), Ok(h)) = (u16::try_from(img.width), u16::try_from(img.height)) else {
        return Err(jpeg_too_large(img));
    };
    if u32::from(w.max(h)) > JPEG_MAX_SIDE {
        return Err(jpeg_too_large(img));
    }
    let quality = quality.clamp(1, 100);
    let mut out = Vec::new();
    let mut encoder = jpeg_encoder::Encoder::new(&mut out, quality);
    if let Some(icc) = icc {
        encoder.add_icc_profile(icc).map_err(|e| one_line(&e))?;
    }
    if img.mode == ImageMode::Cmyk {
        // `jpeg-encoder` would subsample K 2×2 below quality 90 (which our own decoder then
        // misreads) and quantize C, M and Y with the chroma table.
        encoder.set_sampling_factor(SamplingFactor::F_1_1);
        let luma = QuantizationTableType::Custom(Box::new(annex_k_luma(quality)));
        encoder.set_quantization_tables(luma.clone(), luma);
    } else {
        // `jpeg-encoder` subsamples only below quality 90, Pillow at every quality. A gray
        // image has one component, which this leaves alone.
        encoder.set_sampling_factor(SamplingFactor::F_2_2);
        encoder.set_chroma_subsampling_method(ChromaSubsamplingMethod::Average);
    }
    encoder
        .encode(data, w, h, color)
        .map_err(|e| one_line(&e))?;
    Ok(out)
}

/// The luminance quantization table of the JPEG standard (ITU-T T.81 Annex K, table K.1), in
/// natural (row-major) order.
const ANNEX_K_LUMA: [u16; 64] = [
    16, 11, 10, 16, 24, 40, 51, 61, //
    12, 12, 14, 19, 26, 58, 60, 55, //
    14, 13, 16, 24, 40, 57, 69, 56, //
    14, 17, 22, 29, 51, 87, 80, 62, //
    18, 22, 37, 56, 68, 109, 103, 77, //
    24, 35, 55, 64, 81, 104, 113, 92, //
    49, 64, 78, 87, 103, 121, 120, 101, //
    72, 92, 95, 98, 112, 100, 103, 99, //
];

/// [`ANNEX_K_LUMA`] scaled to `quality` 1–100 as libjpeg's `jpeg_set_quality` does (and
/// `jpeg-encoder` for its own tables), limited to 1–255 (baseline):
///
/// ```text
/// scale = 5000 / q        for q < 50
///       = 200 - 2 q       otherwise
/// entry = clamp((base * scale + 50) / 100, 1, 255)
/// ```
fn annex_k_luma(quality: u8) -> [u16; 64] {
    let q = u32::from(quality.clamp(1, 100));
    let scale = if q < 50 { 5000 / q } else { 200 - 2 * q };
    ANNEX_K_LUMA.map(|base| {
        let entry = (u32::from(base) * scale + 50) / 100;
        // At most 255 after the clamp, so the conversion cannot fail.
        u16::try_from(entry.clamp(1, 255)).unwrap_or(255)
    })
}

/// An indexed PNG: the indices and the palette (with a tRNS chunk for an RGBA palette).
fn png_indexed(img: &ModeImage, icc: Option<&[u8]>) -> Result<Vec<u8>, String> {
    let ModeData::U8(indices) = &img.data else {
        return Err("P image without 8-bit indices".to_string());
    };
    let palette = palette_rgba(img);
    if palette.is_empty() || palette.len() > 256 {
        return Err(format!("P image with {} palette entries", palette.len()));
    }
    let mut out = Vec::new();
    {
        let mut encoder = png_encoder(&mut out, img, icc)?;
        encoder.set_color(png::ColorType::Indexed);
        encoder.set_depth(png::BitDepth::Eight);
        // Indices are not predicted by their neighbours: unfiltered, as libpng and Pillow.
        encoder.set_filter(png::Filter::NoFilter);
        encoder.set_palette(
            palette
                .iter()
                .flat_map(|c| [c[0], c[1], c[2]])
                .collect::<Vec<u8>>(),
        );
        if matches!(img.palette, Some(Palette::Rgba(_))) {
            encoder.set_trns(palette.iter().map(|c| c[3]).collect::<Vec<u8>>());
        }
        let mut writer = encoder.write_header().map_err(|e| one_line(&e))?;
        writer.write_image_data(indices).map_err(|e| one_line(&e))?;
        writer.finish().map_err(|e| one_line(&e))?;
    }
    Ok(out)
}

/// The `png` crate's encoder for an image of `img`'s size, with `icc` as its profile.
fn png_encoder<'a, W: Write>(
    out: W,
    img: &ModeImage,
    icc: Option<&'a [u8]>,
) -> Result<png::Encoder<'a, W>, String> {
    let mut info = png::Info::with_size(img.width, img.height);
    info.icc_profile = icc.map(Cow::Borrowed);
    png::Encoder::with_info(out, info).map_err(|e| one_line(&e))
}

pub(super) fn one_line(err: &dyn std::fmt::Display) -> String {
    crate::source::file::one_line(&err.to_string())
}

/// Distinguishes temp files of one process.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// The temp files of the [`AtomicFile`]s alive now, for [`remove_temp_files`].
static LIVE_TEMPS: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());

/// Removes the temp file of every [`AtomicFile`] still being written (a GIF, WebP or npy of a stream
/// takes one for as long as the stream runs), for a process about to exit without finishing
/// them (a third Ctrl-C). Their commits then fail. It takes those of every run in the
/// process, other threads' too: it is for a process about to exit, not for ending one run.
pub fn remove_temp_files() {
    let temps = LIVE_TEMPS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    for temp in temps.iter() {
        let _ = fs::remove_file(temp);
    }
}

/// Forgets `temp` in [`LIVE_TEMPS`]: it was renamed or removed.
fn forget_temp(temp: &Path) {
    let mut temps = LIVE_TEMPS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(k) = temps.iter().position(|t| t == temp) {
        temps.swap_remove(k);
    }
}

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename, so that
/// `path` either keeps its old content or has all of the new one: never a partial file.
///
/// The temp file is an [`AtomicFile`]'s: hidden, and removed again on any failure. The data
/// is not fsynced (a crash of the machine, not the process, may lose it).
///
/// # Errors
/// [`Error::Io`] naming `path` (not the temp file) when the directory is missing or not a
/// directory, the file cannot be created or written, or the rename fails.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut file = AtomicFile::create(path)?;
    file.file()
        .write_all(bytes)
        .map_err(|err| Error::io(path, err))?;
    file.commit()
}

/// A file being written under a temporary name, which becomes `path` on
/// [`commit`](Self::commit): until then `path` keeps its old content (or stays absent), and a
/// file dropped without a commit (a failed write, a cancelled stream) removes its temp file.
///
/// The temp file is hidden, `.{name}.tmp.{pid}.{counter}` (the name cut to 64 bytes) in
/// `path`'s directory, so that the rename never crosses file systems.
#[derive(Debug)]
pub struct AtomicFile {
    path: PathBuf,
    temp: PathBuf,
    file: Option<fs::File>,
}

impl AtomicFile {
    /// Creates the temp file for `path`.
    ///
    /// # Errors
    /// [`Error::Io`] naming `path` when `path` has no file name, or the temp file cannot be
    /// created (its directory is missing or not a directory, or not writable).
    pub fn create(path: &Path) -> Result<AtomicFile> {
        let Some(file_name) = path.file_name() else {
            return Err(Error::io(
                path,
                std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "not a file path (no file name)",
                ),
            ));
        };
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let counter = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        // At most 64 bytes of the name, so that the temp name fits wherever the name itself
        // does (255 bytes on most file systems).
        let name = file_name.to_string_lossy();
        let mut keep = name.len().min(64);
        while !name.is_char_boundary(keep) {
            keep -= 1;
        }
        let temp = dir.join(format!(
            ".{}.tmp.{}.{counter}",
            &name[..keep],
            std::process::id()
        ));
        let file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)
            .map_err(|err| Error::io(path, err))?;
        LIVE_TEMPS
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(temp.clone());
        Ok(AtomicFile {
            path: path.to_path_buf(),
            temp,
            file: Some(file),
        })
    }

    /// The temp file, to write (and seek) in.
    pub fn file(&mut self) -> &mut fs::File {
        self.file
            .as_mut()
            .expect("an AtomicFile holds its file until commit or drop")
    }

    /// The path the file becomes.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Puts the temp file in `path`'s place.
    ///
    /// # Errors
    /// [`Error::Io`] naming `path` when the last write or the rename fails; the temp file is
    /// then removed.
    pub fn commit(mut self) -> Result<()> {
        let result = match self.file.take() {
            Some(mut file) => file.flush().and_then(|()| {
                drop(file);
                fs::rename(&self.temp, &self.path)
            }),
            None => Ok(()),
        };
        // Renamed: nothing left to remove (Drop would remove a new file of that name).
        if result.is_ok() {
            forget_temp(&self.temp);
            self.temp = PathBuf::new();
        }
        result.map_err(|err| Error::io(&self.path, err))
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        self.file = None;
        if !self.temp.as_os_str().is_empty() {
            // One that cannot be removed is left: the failure is what gets reported.
            let _ = fs::remove_file(&self.temp);
            forget_temp(&self.temp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A JPEG side is at most 65500 pixels, libjpeg's limit (Pillow cannot read a wider one
    /// back), in the first and second sides alike; 65500 itself is written.
    #[test]
    fn a_jpeg_side_over_65500_pixels_is_refused() {
        let l = |w: u32, h: u32| ModeImage {
            mode: ImageMode::L,
            width: w,
            height: h,
            data: ModeData::U8((0..w * h).map(|i| (i % 251) as u8 + 3).collect()),
            palette: None,
        };
        for (w, h) in [(65_501, 1), (1, 65_501), (65_535, 2)] {
            let err = jpeg(&l(w, h), 75, None).unwrap_err();
            assert_eq!(
                err,
                format!(
                    "jpeg sides must be at most 65500 pixels (libjpeg's limit, which Pillow \
                     shares), the frame is {w}×{h}"
                )
            );
        }
        let fits = jpeg(&l(65_500, 1), 75, None).unwrap();
        let back = image::load_from_memory(&fits).unwrap();
        assert_eq!((back.width(), back.height()), (65_500, 1));
        assert_eq!(Format::Jpeg { quality: 75 }.max_side(), Some(65_500));
    }

    /// WebP holds 14 bits a side: a wider frame fails with that reason, lossy or lossless,
    /// before any encoder runs.
    #[test]
    fn a_webp_wider_than_16383_pixels_is_refused_lossy_and_lossless() {
        let (w, h) = (16_384u32, 1u32);
        let data = vec![200u8; (w * h * 3) as usize];
        for lossless in [false, true] {
            let err = webp(
                &data,
                (w, h),
                ExtendedColorType::Rgb8,
                (80.0, lossless),
                None,
            )
            .unwrap_err();
            assert_eq!(
                err, "webp sides must be 1–16383 pixels, the frame is 16384×1",
                "lossless {lossless}"
            );
        }
        let fits = webp(
            &data[..16_383 * 3],
            (16_383, 1),
            ExtendedColorType::Rgb8,
            (80.0, true),
            None,
        );
        assert!(fits.is_ok(), "{fits:?}");
    }

    /// An image of at most 256 colours (gray: 4 values) is written by libwebp, which stores it
    /// as a palette: it decodes to the same pixels (transparent ones keep their colour) and is
    /// smaller than image-webp's file of them. One colour more, and image-webp writes it.
    #[test]
    fn a_lossless_webp_of_few_colours_is_exact_and_smaller_through_libwebp() {
        let (w, h) = (64u32, 48u32);
        let pixel = |c: u8| {
            [
                c,
                255 - c,
                c.wrapping_mul(7),
                if c.is_multiple_of(5) { 0 } else { 255 },
            ]
        };
        let mut rgba: Vec<u8> = (0..w * h)
            .flat_map(|i| pixel(((i % w) / 4 + 16 * ((i / w) / 3)) as u8))
            .collect();
        let image_webp = |data: &[u8], color: ExtendedColorType| {
            let mut own = Vec::new();
            WebPEncoder::new_lossless(&mut own)
                .write_image(data, w, h, color)
                .unwrap();
            own
        };
        // webp()'s file decodes to the samples exactly and is smaller than image-webp's.
        let exact_and_smaller = |data: &[u8], color: ExtendedColorType| {
            assert!(few_colours(data, color), "{color:?}");
            let file = webp(data, (w, h), color, (80.0, true), None).unwrap();
            let decoded =
                image::load_from_memory_with_format(&file, image::ImageFormat::WebP).unwrap();
            let decoded = match color {
                ExtendedColorType::L8 => decoded.to_luma8().into_raw(),
                _ => decoded.to_rgba8().into_raw(),
            };
            assert!(
                decoded == data,
                "{color:?}: the file differs from its samples"
            );
            let own = image_webp(data, color);
            assert!(
                file.len() < own.len(),
                "{color:?}: libwebp {} bytes, image-webp {}",
                file.len(),
                own.len()
            );
        };
        exact_and_smaller(&rgba, ExtendedColorType::Rgba8);
        // A 257th colour: image-webp's file, byte for byte.
        rgba[..4].copy_from_slice(&[1, 2, 3, 4]);
        assert!(!few_colours(&rgba, ExtendedColorType::Rgba8));
        let file = webp(&rgba, (w, h), ExtendedColorType::Rgba8, (80.0, true), None).unwrap();
        assert!(
            file == image_webp(&rgba, ExtendedColorType::Rgba8),
            "an image of 257 colours is not image-webp's"
        );
        // Gray of at most 4 values (a `1` image) is libwebp's too; of 5, image-webp's.
        let gray: Vec<u8> = (0..w * h)
            .map(|i| [0, 85, 170, 255][(i % 7 % 4) as usize])
            .collect();
        exact_and_smaller(&gray, ExtendedColorType::L8);
        assert!(!few_colours(&[0, 1, 2, 3, 4], ExtendedColorType::L8));
        assert!(few_colours(&[7; 12], ExtendedColorType::Rgb8));
    }

    /// An RGB or RGBA image of at most 256 colours is written unfiltered at zlib's default
    /// level, as Pillow writes one: it decodes to the same pixels, in a smaller file than the
    /// adaptive filters and fast deflate that photos get. One colour more, and it gets those.
    #[test]
    fn a_png_of_few_colours_is_unfiltered_and_smaller() {
        let (w, h) = (96u32, 64u32);
        // A sprite-like image: discs of 24 colours on a flat background.
        let mut rgba: Vec<u8> = (0..w * h)
            .flat_map(|i| {
                let (x, y) = ((i % w) as i32, (i / w) as i32);
                let (cx, cy) = (x / 16 * 16 + 8, y / 16 * 16 + 8);
                let k = ((x / 16) * 7 + (y / 16) * 3) as u8;
                if (x - cx).pow(2) + (y - cy).pow(2) < 36 {
                    [k.wrapping_mul(6), 255 - k * 5, k.wrapping_mul(29), 255]
                } else {
                    [20, 30, 40, 255]
                }
            })
            .collect();
        let encode_with = |data: &[u8], fast: bool| {
            let mut out = Vec::new();
            let encoder = if fast {
                PngEncoder::new(&mut out)
            } else {
                png_encoder_for(data, ExtendedColorType::Rgba8, &mut out)
            };
            encoder
                .write_image(data, w, h, ExtendedColorType::Rgba8)
                .unwrap();
            out
        };
        let ours = encode_with(&rgba, false);
        let fast = encode_with(&rgba, true);
        let decoded = image::load_from_memory_with_format(&ours, image::ImageFormat::Png)
            .unwrap()
            .to_rgba8()
            .into_raw();
        assert!(
            decoded == rgba,
            "the unfiltered PNG differs from its pixels"
        );
        assert!(
            ours.len() < fast.len(),
            "unfiltered {} bytes, fast {}",
            ours.len(),
            fast.len()
        );
        // 257 colours: the fast encoder's file, byte for byte.
        for (k, px) in rgba.chunks_exact_mut(4).take(260).enumerate() {
            px[3] = k as u8;
        }
        assert!(!colours_at_most(&rgba, ExtendedColorType::Rgba8, 256));
        assert!(encode_with(&rgba, false) == encode_with(&rgba, true));
    }

    /// TIFF and npy files are written into a buffer reserved for them at once: doubling
    /// would ask for up to twice the file (1 GiB for a 525 MB TIFF), an abort where memory
    /// is short. 1366×768 F: 4.2 MB of samples, a strip a row or so.
    #[test]
    fn uncompressed_outputs_grow_their_buffer_once() {
        let (width, height) = (1366u32, 768u32);
        let samples: Vec<f32> = (0..width * height)
            .map(|i| (i % 977) as f32 / 7.0)
            .collect();
        let img = ModeImage {
            width,
            height,
            mode: ImageMode::F,
            data: ModeData::F32(samples),
            palette: None,
        };
        let file = tiff(&img, None).unwrap();
        assert!(file.len() > 4 * 1366 * 768);
        assert!(
            file.capacity() <= 4 * 1366 * 768 + 16 * 768 + 8192,
            "{}",
            file.capacity()
        );
        let file = npy_bytes(&img).unwrap();
        assert_eq!(file.capacity(), file.len());
    }

    #[test]
    fn a_profile_fits_the_colours_a_format_stores_and_its_size_limit() {
        let icc = |space: &[u8; 4], len: usize| {
            let mut icc = vec![0u8; len];
            icc[12..16].copy_from_slice(b"mntr");
            icc[16..20].copy_from_slice(space);
            icc
        };
        let jpeg = Format::Jpeg { quality: 75 };
        let fits =
            |icc: &[u8], format: &Format, mode| fitting_profile(Some(icc), format, mode).is_some();
        let rgb = icc(b"RGB ", 600);
        assert!(
            fits(&rgb, &jpeg, ImageMode::YCbCr),
            "a YCbCr JPEG decodes to RGB"
        );
        assert!(
            fits(&rgb, &Format::default(), ImageMode::L),
            "WebP stores RGB"
        );
        assert!(!fits(&rgb, &Format::Png, ImageMode::L));
        assert!(!fits(&rgb, &Format::Npy, ImageMode::Rgb));
        assert!(!fits(&icc(b"Lab ", 600), &Format::Npy, ImageMode::Lab));
        // Sizes: a JPEG holds 254 segments, a PNG what Pillow opens.
        let jpeg_max = icc(b"RGB ", JPEG_PROFILE_MAX);
        assert!(fits(&jpeg_max, &jpeg, ImageMode::Rgb));
        let past = icc(b"RGB ", JPEG_PROFILE_MAX + 1);
        assert!(!fits(&past, &jpeg, ImageMode::Rgb));
        assert!(fits(&past, &Format::Tiff, ImageMode::Rgb));
        let png_past = icc(b"RGB ", PNG_PROFILE_MAX + 1);
        assert!(!fits(&png_past, &Format::Png, ImageMode::Rgb));
        assert!(fits(&png_past, &jpeg, ImageMode::Rgb));
        // The largest JPEG profile is written, not refused by the encoder.
        let frame = Frame {
            image: None,
            ..Frame::new(
                2,
                2,
                vec![9; 16],
                false,
                crate::FrameMeta {
                    icc_profile: Some(jpeg_max.clone().into()),
                    ..crate::FrameMeta::still(0, 0)
                },
            )
        };
        assert!(encode(&jpeg, &[frame]).is_ok());
    }

    #[test]
    fn a_profile_goes_into_each_layout_libwebp_writes() {
        use image::ImageDecoder;
        let (w, h) = (5u32, 3u32);
        let rgba: Vec<u8> = (0..w * h * 4).map(|i| (i * 37 % 251) as u8).collect();
        let mut icc = vec![7u8; 301]; // odd: the chunk is padded
        icc[16..20].copy_from_slice(b"RGB ");
        let lossy = |alpha: bool| {
            let encoder = if alpha {
                webp::Encoder::from_rgba(&rgba, w, h)
            } else {
                webp::Encoder::from_rgb(&rgba[..(w * h * 3) as usize], w, h)
            };
            encoder.encode_simple(false, 80.0).map(|m| m.to_vec())
        };
        let layouts = [
            ("VP8 ", lossy(false).ok(), false),
            ("VP8X", lossy(true).ok(), true),
            (
                "VP8L",
                webp::Encoder::from_rgba(&rgba, w, h)
                    .encode_simple(true, 100.0)
                    .map(|m| m.to_vec())
                    .ok(),
                true,
            ),
        ];
        for (kind, plain, alpha) in layouts {
            let plain = plain.unwrap_or_else(|| panic!("libwebp wrote no {kind} file"));
            assert_eq!(&plain[12..16], kind.as_bytes(), "libwebp's layout");
            let with = webp_with_profile(&plain, &icc).expect(kind);
            let read = |bytes: &[u8]| {
                let mut decoder =
                    image::codecs::webp::WebPDecoder::new(Cursor::new(bytes.to_vec())).expect(kind);
                let profile = decoder.icc_profile().expect(kind);
                let has_alpha = decoder.color_type().has_alpha();
                let image = image::DynamicImage::from_decoder(decoder).expect(kind);
                (profile, has_alpha, image.into_rgba8().into_raw())
            };
            let (profile, has_alpha, pixels) = read(&with);
            let (_, plain_alpha, plain_pixels) = read(&plain);
            assert_eq!(profile.as_deref(), Some(&icc[..]), "{kind}");
            assert_eq!((has_alpha, plain_alpha), (alpha, alpha), "{kind}");
            assert_eq!(pixels, plain_pixels, "{kind}");
            let riff = u32::from_le_bytes(with[4..8].try_into().expect("4 bytes"));
            assert_eq!(riff as usize, with.len() - 8, "{kind}: RIFF size");
        }
    }

    /// A 4×3 frame of shade `v` captured at `at_ms`, with the delay given.
    fn timed_frame(v: u8, at_ms: u64, delay_ms: Option<u64>) -> Frame {
        let mut meta = crate::frame::FrameMeta::still(u64::from(v), 0);
        meta.timestamp = Duration::from_millis(at_ms);
        meta.delay = delay_ms.map(Duration::from_millis);
        Frame::new(4, 3, vec![v; 4 * 3 * 4], false, meta)
    }

    /// The delays of the GIF `frames` make, through the encoder and back.
    fn gif_delays(frames: &[Frame]) -> Vec<Duration> {
        use image::AnimationDecoder;
        let bytes = encode(&Format::Gif, frames).unwrap();
        image::codecs::gif::GifDecoder::new(std::io::Cursor::new(bytes))
            .unwrap()
            .into_frames()
            .collect_frames()
            .unwrap()
            .iter()
            .map(|f| Duration::from(f.delay()))
            .collect()
    }

    #[test]
    fn a_streams_gif_frames_show_until_the_next_was_captured() {
        let ms = |v: &[u64]| {
            v.iter()
                .map(|&m| Duration::from_millis(m))
                .collect::<Vec<_>>()
        };
        let stream = [
            timed_frame(10, 1_000, None),
            timed_frame(60, 1_500, None),
            timed_frame(110, 2_250, None),
            timed_frame(160, 2_251, None),
        ];
        // The last keeps the one before it, which is raised to the 20 ms floor.
        assert_eq!(gif_delays(&stream), ms(&[500, 750, 20, 20]));
        // A GIF's own delays win.
        let own = [timed_frame(1, 0, Some(70)), timed_frame(2, 900, Some(40))];
        assert_eq!(gif_delays(&own), ms(&[70, 40]));
        // A last frame without one after frames with their own: the default.
        let mixed = [timed_frame(1, 0, Some(70)), timed_frame(2, 900, None)];
        assert_eq!(gif_delays(&mixed), ms(&[70, 100]));
        // A lone frame is a still: no delay.
        assert_eq!(gif_delays(&[timed_frame(3, 5, Some(70))]), ms(&[0]));

        // 15 fps (66.7 ms): rounded so that 30 frames play 2 s, not cut to 60 ms (1.8 s).
        let fifteen: Vec<Frame> = (0..30u64)
            .map(|k| timed_frame(k as u8, k * 1000 / 15, None))
            .collect();
        let delays = gif_delays(&fifteen);
        assert!(
            delays
                .iter()
                .all(|d| *d == Duration::from_millis(60) || *d == Duration::from_millis(70)),
            "{delays:?}"
        );
        assert_eq!(delays.iter().sum::<Duration>(), Duration::from_secs(2));
        // A GIF's own delays are cut as Pillow cuts them.
        let own: Vec<Frame> = (0..4u8).map(|k| timed_frame(k, 0, Some(67))).collect();
        assert_eq!(gif_delays(&own), ms(&[60, 60, 60, 60]));
    }

    #[test]
    fn small_gif_frames_are_quantised_with_more_care() {
        // 64×48 of many colours: a gradient with a deterministic ripple.
        let (w, h) = (64u32, 48u32);
        let rgba: Vec<u8> = (0..w * h)
            .flat_map(|i| {
                let (x, y) = (i % w, i / w);
                let ripple = (x * 7 + y * 13) % 23;
                [
                    (x * 4 + ripple) as u8,
                    (y * 5 + ripple * 2) as u8,
                    ((x + y) * 2) as u8,
                    255,
                ]
            })
            .collect();
        let frame = Frame::new(
            w,
            h,
            rgba.clone(),
            false,
            crate::frame::FrameMeta::still(0, 0),
        );
        let bytes = encode(&Format::Gif, &[frame]).unwrap();
        let back = image::load_from_memory(&bytes).unwrap().to_rgba8();
        let error: u64 = back
            .as_raw()
            .iter()
            .zip(&rgba)
            .map(|(&a, &b)| u64::from(a.abs_diff(b)))
            .sum();
        let mean = error as f64 / f64::from(w * h * 3);
        // Speed 1: 6.5 levels; speed 10 gave 11.2 (Pillow's median cut: 5.0).
        assert!(mean < 8.0, "mean error {mean:.2} levels");
        assert_eq!(gif_speed(640 * 480), GIF_SPEED);
        assert_eq!(gif_speed(64 * 48), 1);
    }

    #[test]
    fn defaults_follow_pillow() {
        assert_eq!(
            Format::from_name("WEBP", None, false).unwrap(),
            Format::default()
        );
        assert_eq!(
            Format::from_name("jpg", None, false).unwrap(),
            Format::Jpeg { quality: 75 }
        );
        assert_eq!(Format::from_name("tif", None, false).unwrap(), Format::Tiff);
    }

    #[test]
    fn usage_errors_name_the_flag() {
        let msg = |r: Result<Format>| r.unwrap_err().to_string();
        assert_eq!(
            msg(Format::from_name("webp", Some(500.0), false)),
            "quality (--quality): 500 is out of range 0–100 for webp"
        );
        assert_eq!(
            msg(Format::from_name("jpeg", Some(0.0), false)),
            "quality (--quality): 0 is out of range 1–100 for jpeg"
        );
        assert!(
            msg(Format::from_name("png", Some(50.0), false)).starts_with("quality (--quality)")
        );
        assert!(msg(Format::from_name("png", None, true)).starts_with("lossless (--lossless)"));
        assert!(
            msg(Format::from_name("webp", Some(50.0), true)).starts_with("quality (--quality)")
        );
        assert!(
            msg(Format::from_name("jpeg", Some(50.5), false)).starts_with("quality (--quality)")
        );
        assert!(msg(Format::from_name("heic", None, false)).starts_with("format (--format)"));
        assert!(Format::from_name("webp", Some(f32::NAN), false).is_err());
    }

    #[test]
    fn from_path_by_extension() {
        assert_eq!(
            Format::from_path(Path::new("out/a.JPG"), Some(90.0), false).map(|r| r.ok()),
            Some(Some(Format::Jpeg { quality: 90 }))
        );
        assert!(Format::from_path(Path::new("out/dir"), None, false).is_none());
        assert!(Format::from_path(Path::new("a.txt"), None, false).is_none());
        assert!(matches!(
            Format::from_path(Path::new("a.png"), Some(5.0), false),
            Some(Err(_))
        ));
        for name in FORMAT_NAMES {
            let f = Format::from_name(name, None, false).unwrap();
            assert_eq!(
                Format::from_name(f.extension(), None, false).unwrap(),
                f,
                "{name}"
            );
        }
    }
}

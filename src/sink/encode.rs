//! Encoders and atomic file writes: turning processed frames into the bytes of one output file
//! (webp, png, jpeg, gif, bmp, tiff, npy) and putting those bytes on disk without ever leaving a
//! partial file.
//!
//! Outputs are RGB: alpha is dropped without compositing, as Gradio's default
//! `image_mode="RGB"` (Pillow's `convert("RGB")`) does. That choice lives in one function,
//! [`output_pixels`], which modes with alpha will extend.

use std::fs;
use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use image::codecs::bmp::BmpEncoder;
use image::codecs::gif::{GifEncoder, Repeat};
use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::PngEncoder;
use image::codecs::tiff::TiffEncoder;
use image::codecs::webp::WebPEncoder;
use image::{Delay, ExtendedColorType, ImageEncoder, RgbaImage};

use super::npy;
use crate::error::{Error, Result};
use crate::frame::Frame;

/// Pillow's (and Gradio's) default lossy WebP quality.
pub const DEFAULT_WEBP_QUALITY: f32 = 80.0;
/// Pillow's default JPEG quality.
pub const DEFAULT_JPEG_QUALITY: u8 = 75;
/// Delay given to animated-GIF frames that carry none (Pillow's default duration).
pub const DEFAULT_GIF_DELAY: Duration = Duration::from_millis(100);
/// NeuQuant speed for GIF frames with more than 256 colours (1 best … 30 fastest); 10 is the
/// `gif` crate's suggested balance. Frames with at most 256 colours get an exact palette.
pub const GIF_SPEED: i32 = 10;
/// The format names [`Format::from_name`] accepts.
pub const FORMAT_NAMES: &[&str] = &[
    "webp", "png", "jpeg", "jpg", "gif", "bmp", "tiff", "tif", "npy",
];

/// An output file format and its settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Format {
    /// WebP: lossy (libwebp, method 4, like Pillow) at `quality` 0–100, or lossless.
    Webp { quality: f32, lossless: bool },
    /// PNG (lossless).
    Png,
    /// JPEG at `quality` 1–100.
    Jpeg { quality: u8 },
    /// GIF: still for one frame, animated (looping forever) for several.
    Gif,
    /// Windows bitmap.
    Bmp,
    /// TIFF, uncompressed.
    Tiff,
    /// A NumPy array: (H, W, 3) u8 for one frame, (N, H, W, 3) for several.
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
                        "--quality: lossless webp has no quality setting (got {q}); drop --quality or --lossless"
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
            "jpeg" | "jpg" => {
                no_lossless(lossless, "jpeg")?;
                let quality = match quality {
                    None => DEFAULT_JPEG_QUALITY,
                    Some(q) => {
                        check_range(q, 1.0, "jpeg")?;
                        if q.fract() != 0.0 {
                            return Err(Error::Usage(format!(
                                "--quality: {q} is not a whole number, as jpeg needs"
                            )));
                        }
                        q as u8
                    }
                };
                Format::Jpeg { quality }
            }
            "png" | "gif" | "bmp" | "tiff" | "tif" | "npy" => {
                let format = match lower.as_str() {
                    "png" => Format::Png,
                    "gif" => Format::Gif,
                    "bmp" => Format::Bmp,
                    "npy" => Format::Npy,
                    _ => Format::Tiff,
                };
                no_lossless(lossless, format.extension())?;
                if let Some(q) = quality {
                    return Err(Error::Usage(format!(
                        "--quality: {} has no quality setting (got {q}); only webp and jpeg do",
                        format.extension()
                    )));
                }
                format
            }
            _ => {
                return Err(Error::Usage(format!(
                    "--format: unknown format '{name}' (expected one of webp, png, jpeg, gif, bmp, tiff, npy)"
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

    /// True for formats that hold several frames in one file (gif, npy).
    pub fn holds_many_frames(&self) -> bool {
        matches!(self, Format::Gif | Format::Npy)
    }
}

fn check_range(q: f32, min: f32, format: &str) -> Result<()> {
    if q.is_nan() || !(min..=100.0).contains(&q) {
        return Err(Error::Usage(format!(
            "--quality: {q} is out of range {min}–100 for {format}"
        )));
    }
    Ok(())
}

fn no_lossless(lossless: bool, format: &str) -> Result<()> {
    if lossless {
        return Err(Error::Usage(format!(
            "--lossless: only webp has a lossless mode, not {format}"
        )));
    }
    Ok(())
}

/// Pixels as an encoder receives them: the bytes and their layout.
#[derive(Debug, Clone)]
pub struct OutputPixels {
    pub width: u32,
    pub height: u32,
    /// Interleaved 8-bit samples, row-major.
    pub data: Vec<u8>,
    /// `Rgb8` today; modes with alpha will add `Rgba8` and others.
    pub color: ExtendedColorType,
}

impl OutputPixels {
    /// RGBA with opaque alpha, for encoders that only take RGBA buffers (animated GIF).
    fn into_rgba(self) -> Vec<u8> {
        match self.color {
            ExtendedColorType::Rgb8 => self
                .data
                .chunks_exact(3)
                .flat_map(|p| [p[0], p[1], p[2], 255])
                .collect(),
            _ => self.data,
        }
    }
}

/// What an output carries of a frame: **the one place that decides about alpha**. Today every
/// output is RGB, alpha dropped without compositing (Gradio's default `image_mode="RGB"`,
/// Pillow's `convert("RGB")`).
pub fn output_pixels(frame: &Frame) -> OutputPixels {
    OutputPixels {
        width: frame.width,
        height: frame.height,
        data: frame.to_rgb(),
        color: ExtendedColorType::Rgb8,
    }
}

/// Encodes one frame, or all frames of an animated input, into the bytes of one file.
///
/// Only [`Format::holds_many_frames`] formats take several frames: GIF makes an animation
/// (each frame's `meta.delay`, [`DEFAULT_GIF_DELAY`] when none; looping forever), NPY stacks
/// them into an (N, H, W, 3) array. For GIF and NPY every frame must share the first one's size.
///
/// # Errors
/// A one-line reason (the caller wraps it in [`Error::Encode`] with the output path): no frames,
/// several frames for a single-frame format, frames of different sizes, a frame whose buffer
/// does not match its size, or the encoder's own failure (for example WebP beyond 16383 pixels
/// a side, GIF beyond 65535).
pub fn encode(format: &Format, frames: &[Frame]) -> Result<Vec<u8>, String> {
    let Some(first) = frames.first() else {
        return Err("no frames to encode".to_string());
    };
    if frames.len() > 1 && !format.holds_many_frames() {
        return Err(format!(
            "{} holds one frame, got {}",
            format.extension(),
            frames.len()
        ));
    }
    for (i, frame) in frames.iter().enumerate() {
        if frame.rgba.len() != frame.pixels() * 4 {
            return Err(format!(
                "frame {i} has {} bytes, not {} for {}×{} RGBA",
                frame.rgba.len(),
                frame.pixels() * 4,
                frame.width,
                frame.height
            ));
        }
        if (frame.width, frame.height) != (first.width, first.height) {
            return Err(format!(
                "all frames must share one size: frame 0 is {}×{}, frame {i} is {}×{}",
                first.width, first.height, frame.width, frame.height
            ));
        }
    }
    if matches!(format, Format::Gif) {
        return gif(frames);
    }
    let px = output_pixels(first);
    let mut out = Vec::new();
    match *format {
        Format::Webp {
            quality,
            lossless: false,
        } => return webp_lossy(&px, quality),
        Format::Webp { lossless: true, .. } => {
            write_with(WebPEncoder::new_lossless(&mut out), &px)?;
        }
        Format::Png => write_with(PngEncoder::new(&mut out), &px)?,
        Format::Jpeg { quality } => write_with(
            JpegEncoder::new_with_quality(&mut out, quality.clamp(1, 100)),
            &px,
        )?,
        Format::Bmp => write_with(BmpEncoder::new(&mut out), &px)?,
        Format::Tiff => write_with(TiffEncoder::new(Cursor::new(&mut out)), &px)?,
        Format::Gif => return gif(frames),
        Format::Npy => {
            let channels = usize::from(px.color.channel_count());
            let (h, w) = (first.height as usize, first.width as usize);
            if let [_] = frames {
                return npy::to_bytes(&[h, w, channels], &px.data);
            }
            let mut parts = vec![px.data];
            parts.extend(frames[1..].iter().map(|f| output_pixels(f).data));
            return npy::concat_to_bytes(&[frames.len(), h, w, channels], &parts);
        }
    }
    Ok(out)
}

/// Runs one of `image`'s single-image encoders over the output pixels.
fn write_with<E: ImageEncoder>(encoder: E, px: &OutputPixels) -> Result<(), String> {
    encoder
        .write_image(&px.data, px.width, px.height, px.color)
        .map_err(|e| one_line(&e))
}

/// Lossy WebP through libwebp (the `webp` crate): method 4, like Pillow.
fn webp_lossy(px: &OutputPixels, quality: f32) -> Result<Vec<u8>, String> {
    const MAX_SIDE: u32 = 16383;
    if px.width == 0 || px.height == 0 || px.width > MAX_SIDE || px.height > MAX_SIDE {
        return Err(format!(
            "webp sides must be 1–{MAX_SIDE} pixels, the frame is {}×{}",
            px.width, px.height
        ));
    }
    let encoder = match px.color {
        ExtendedColorType::Rgb8 => webp::Encoder::from_rgb(&px.data, px.width, px.height),
        ExtendedColorType::Rgba8 => webp::Encoder::from_rgba(&px.data, px.width, px.height),
        other => return Err(format!("webp cannot hold {other:?} pixels")),
    };
    let memory = encoder
        .encode_simple(false, quality)
        .map_err(|e| format!("libwebp failed: {e:?}"))?;
    Ok(memory.to_vec())
}

/// A still GIF for one frame; an animation looping forever for several.
fn gif(frames: &[Frame]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    {
        let mut encoder = GifEncoder::new_with_speed(&mut out, GIF_SPEED);
        if let [frame] = frames {
            let px = output_pixels(frame);
            encoder
                .encode(&px.data, px.width, px.height, px.color)
                .map_err(|e| one_line(&e))?;
        } else {
            encoder
                .set_repeat(Repeat::Infinite)
                .map_err(|e| one_line(&e))?;
            for frame in frames {
                let delay = frame.meta.delay.unwrap_or(DEFAULT_GIF_DELAY);
                let px = output_pixels(frame);
                let (w, h) = (px.width, px.height);
                let buffer = RgbaImage::from_raw(w, h, px.into_rgba())
                    .ok_or_else(|| "frame buffer does not match its size".to_string())?;
                encoder
                    .encode_frame(image::Frame::from_parts(
                        buffer,
                        0,
                        0,
                        Delay::from_saturating_duration(delay),
                    ))
                    .map_err(|e| one_line(&e))?;
            }
        }
    }
    Ok(out)
}

fn one_line(err: &dyn std::fmt::Display) -> String {
    crate::source::file::one_line(&err.to_string())
}

/// Distinguishes temp files of one process.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename, so that
/// `path` either keeps its old content or has all of the new one: never a partial file.
///
/// The temp file is hidden, `.{name}.tmp.{pid}.{counter}`, and removed again on any failure.
/// The data is not fsynced (a crash of the machine, not the process, may lose it).
///
/// # Errors
/// [`Error::Io`] naming `path` (not the temp file) when the directory is missing or not a
/// directory, the file cannot be created or written, or the rename fails.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
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
    let temp = dir.join(format!(
        ".{}.tmp.{}.{counter}",
        file_name.to_string_lossy(),
        std::process::id()
    ));
    let mut created = false;
    let result = (|| {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)?;
        created = true;
        file.write_all(bytes)?;
        file.flush()?;
        drop(file);
        fs::rename(&temp, path)
    })();
    if let Err(err) = result {
        if created {
            let _ = fs::remove_file(&temp);
        }
        return Err(Error::io(path, err));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
            "--quality: 500 is out of range 0–100 for webp"
        );
        assert_eq!(
            msg(Format::from_name("jpeg", Some(0.0), false)),
            "--quality: 0 is out of range 1–100 for jpeg"
        );
        assert!(msg(Format::from_name("png", Some(50.0), false)).starts_with("--quality"));
        assert!(msg(Format::from_name("png", None, true)).starts_with("--lossless"));
        assert!(msg(Format::from_name("webp", Some(50.0), true)).starts_with("--quality"));
        assert!(msg(Format::from_name("jpeg", Some(50.5), false)).starts_with("--quality"));
        assert!(msg(Format::from_name("heic", None, false)).starts_with("--format"));
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

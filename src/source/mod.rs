//! Capture: turning sources (files, directories, stdin) into decoded RGBA8 frames.
//!
//! [`expand`] turns command-line sources into [`Input`]s (a directory becomes its image files);
//! [`decode`] turns one input into an iterator of [`DecodedFrame`]s. Raster formats are read by
//! the `image` crate ([`file`](mod@file)), SVG by resvg ([`svg`]). Every failure is an [`Error`] naming the
//! input; nothing here panics on bad data.

mod apng;
pub mod file;
mod gif_anim;
mod jpeg_cmyk;
pub mod live;
mod metadata;
pub mod pattern;
pub mod svg;
pub mod webcam;
mod webp_anim;
pub(crate) mod widen;
pub mod yuv;

use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::frame::Plays;
use crate::mode::source::SourceMode;

/// Something frames come from, as named on the command line.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// An image file or a directory of images.
    Path(PathBuf),
    /// One image read from standard input (`-`).
    Stdin,
    /// An image held in memory (its format sniffed from the content); `name` names it in
    /// messages (`bytes` when empty) and gives the output file its stem: only its last
    /// component, without an image extension or leading dots, so that the file stays in the
    /// output directory (`../up/photo.png` → `photo`; `bytes` when nothing is left).
    Bytes {
        /// The name in messages, and the source of the output files' stem (see above).
        name: String,
        /// The encoded image, in any format shutter reads.
        data: Arc<[u8]>,
    },
    /// A moving synthetic test pattern, `pattern[:WxH][@FPS]`: paced at `fps` on the
    /// pipeline's clock, or as fast as possible. Each side is
    /// [`MIN_SIDE`](pattern::MIN_SIDE)`..=`[`MAX_SIDE`](pattern::MAX_SIDE) pixels and `fps` is
    /// above 0 and at most [`MAX_FPS`](pattern::MAX_FPS); the run refuses others with
    /// [`Error::Usage`].
    Pattern {
        /// Width in pixels ([`DEFAULT_WIDTH`](pattern::DEFAULT_WIDTH) when the argument gives
        /// no size).
        width: u32,
        /// Height in pixels ([`DEFAULT_HEIGHT`](pattern::DEFAULT_HEIGHT) when the argument
        /// gives no size).
        height: u32,
        /// Frames per second; `None`: as fast as possible.
        fps: Option<f64>,
    },
    /// A camera, `webcam[:INDEX]`, with the constraints asked for (the closest format the
    /// camera offers is used).
    Webcam {
        /// The camera's index, as [`list_cameras`](webcam::list_cameras) gives it (0 for a
        /// plain `webcam`).
        index: usize,
        /// Width in pixels asked for; `None` leaves it free (see
        /// [`choose_format`](webcam::choose_format) for when neither side is asked for).
        width: Option<u32>,
        /// Height in pixels asked for; `None` leaves it free.
        height: Option<u32>,
        /// Frames per second asked for; `None` aims for [`DEFAULT_FPS`](webcam::DEFAULT_FPS).
        fps: Option<u32>,
    },
    /// Frames from a grabber of the caller's (a closure, an iterator, a device of their own).
    Grabber(SharedGrabber),
}

/// A caller's grabber inside a [`Source`]; a pipeline takes it out when it runs (once).
#[derive(Clone)]
pub struct SharedGrabber(Arc<std::sync::Mutex<Option<Box<dyn live::FrameGrabber>>>>);

impl std::fmt::Debug for SharedGrabber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedGrabber")
    }
}

impl PartialEq for SharedGrabber {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl From<PathBuf> for Source {
    /// [`Source::Path`]: a file or a directory, never parsed as `-`, `webcam` or `pattern`
    /// (that is [`Source::parse`]).
    fn from(path: PathBuf) -> Source {
        Source::Path(path)
    }
}

impl From<&Path> for Source {
    /// [`Source::Path`], as for a [`PathBuf`].
    fn from(path: &Path) -> Source {
        Source::Path(path.to_path_buf())
    }
}

impl From<&str> for Source {
    /// [`Source::Path`], as for a [`PathBuf`]: `.source("photo.png")`. A command-line source
    /// (`-`, `webcam:0`, `pattern:640x480`) is [`Source::parse`], or `str::parse`.
    fn from(path: &str) -> Source {
        Source::Path(PathBuf::from(path))
    }
}

impl From<String> for Source {
    /// [`Source::Path`], as for a `&str`.
    fn from(path: String) -> Source {
        Source::Path(PathBuf::from(path))
    }
}

impl std::str::FromStr for Source {
    type Err = Error;

    /// [`Source::parse`]: `"webcam:0".parse::<Source>()`.
    fn from_str(arg: &str) -> Result<Source> {
        Source::parse(arg)
    }
}

/// The built-in default input: an SVG scene drawn for shutter, so `shutter run` with no
/// source shows the tool working on a machine with nothing else on it.
const DEFAULT_SVG: &[u8] = include_bytes!("../../assets/default.svg");

impl Source {
    /// The built-in default image (640×400, rasterised from SVG); outputs are named
    /// `shutter-default.<ext>`.
    pub fn builtin_default() -> Source {
        Source::Bytes {
            name: "shutter-default".to_string(),
            data: Arc::from(DEFAULT_SVG),
        }
    }

    /// Parses a command-line source: `-` is stdin, `webcam[:INDEX]` a camera,
    /// `pattern[:WxH][@FPS]` the test pattern, anything else a path.
    ///
    /// # Errors
    /// [`Error::Usage`] for a malformed `webcam:`/`pattern:` argument, naming it.
    pub fn parse(arg: &str) -> Result<Source> {
        Source::parse_special(arg).map_err(|err| match err {
            // `pattern:1.png` that is also a file: say how to name the file.
            Error::Usage(message) if Path::new(arg).exists() => Error::Usage(format!(
                "{message} (for the file of that name, write ./{arg})"
            )),
            other => other,
        })
    }

    fn parse_special(arg: &str) -> Result<Source> {
        if arg == "-" {
            Ok(Source::Stdin)
        } else if arg == "webcam" || arg.starts_with("webcam:") {
            Ok(Source::Webcam {
                index: pattern::parse_webcam(arg)?,
                width: None,
                height: None,
                fps: None,
            })
        } else if arg == "pattern" || arg.starts_with("pattern:") || arg.starts_with("pattern@") {
            let (width, height, fps) = pattern::parse_pattern(arg)?;
            Ok(Source::Pattern { width, height, fps })
        } else {
            Ok(Source::Path(PathBuf::from(arg)))
        }
    }

    /// A source from the caller's grabber.
    pub fn grabber(grabber: impl live::FrameGrabber + 'static) -> Source {
        Source::Grabber(SharedGrabber(Arc::new(std::sync::Mutex::new(Some(
            Box::new(grabber),
        )))))
    }

    /// True for sources that stream until stopped (cameras, patterns, grabbers).
    pub fn is_live(&self) -> bool {
        matches!(
            self,
            Source::Pattern { .. } | Source::Webcam { .. } | Source::Grabber(_)
        )
    }

    /// Opens a live source: its grabber, its name, the stem of its output files, and its
    /// default frame policy (latest wins for cameras and paced patterns).
    ///
    /// # Errors
    /// [`Error::Camera`] when the camera cannot be opened; [`Error::Usage`] for a grabber
    /// already used by another run, or a source that is not live.
    pub fn open_live(
        &self,
        clock: Arc<dyn live::Clock>,
    ) -> Result<(
        Box<dyn live::FrameGrabber>,
        String,
        String,
        crate::stream::FramePolicy,
    )> {
        use crate::stream::FramePolicy;
        match self {
            Source::Pattern { width, height, fps } => {
                let name = match fps {
                    Some(fps) => format!("pattern:{width}x{height}@{fps}"),
                    None => format!("pattern:{width}x{height}"),
                };
                let grabber = pattern::PatternGrabber::new(*width, *height, *fps, clock)?;
                let policy = if fps.is_some() {
                    FramePolicy::Latest
                } else {
                    FramePolicy::Lossless
                };
                Ok((Box::new(grabber), name, "pattern".into(), policy))
            }
            Source::Webcam {
                index,
                width,
                height,
                fps,
            } => {
                let grabber = webcam::NokhwaGrabber::open(*index, *width, *height, *fps)?;
                Ok((
                    Box::new(grabber),
                    format!("webcam:{index}"),
                    format!("webcam{index}"),
                    FramePolicy::Latest,
                ))
            }
            Source::Grabber(shared) => {
                let grabber = shared
                    .0
                    .lock()
                    .map_err(|_| Error::Usage("the grabber's lock is poisoned".into()))?
                    .take()
                    .ok_or_else(|| Error::Usage("this grabber was already used by a run".into()))?;
                let name = grabber.name();
                let stem = grabber.stem().unwrap_or_else(|| "stream".into());
                let policy = if grabber.paced() {
                    FramePolicy::Latest
                } else {
                    FramePolicy::Lossless
                };
                Ok((grabber, name, stem, policy))
            }
            _ => Err(Error::Usage("not a live source".into())),
        }
    }
}

/// One input after directories are expanded.
#[derive(Debug, Clone)]
pub struct Input {
    /// How messages name it: the path as given, or `<stdin>`.
    pub name: String,
    /// File stem used for output names (`photo` for `dir/photo.png`, `stdin` for stdin).
    pub stem: String,
    /// Where the bytes come from.
    pub kind: InputKind,
}

/// Where an [`Input`]'s bytes come from.
#[derive(Debug, Clone)]
pub enum InputKind {
    /// A file; its extension picks the decoder.
    File(PathBuf),
    /// Standard input, read whole; the format is sniffed from the content.
    Stdin,
    /// Bytes in memory; the format is sniffed from the content.
    Bytes(Arc<[u8]>),
}

impl Input {
    /// The input for the file at `path`: named by the path as given, stem from the file name.
    pub fn from_path(path: impl Into<PathBuf>) -> Input {
        let path = path.into();
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "input".to_string());
        Input {
            name: path.display().to_string(),
            stem,
            kind: InputKind::File(path),
        }
    }

    /// The file's whole name (`photo.png`), which outputs use when another input has the same
    /// stem; `None` for standard input and bytes.
    pub fn file_name(&self) -> Option<String> {
        self.file_name_os()
            .map(|name| name.to_string_lossy().into_owned())
    }

    /// [`file_name`](Self::file_name) as the file system has it, bytes that are not UTF-8
    /// included.
    pub fn file_name_os(&self) -> Option<OsString> {
        match &self.kind {
            InputKind::File(path) => path.file_name().map(OsStr::to_os_string),
            InputKind::Stdin | InputKind::Bytes(_) => None,
        }
    }

    /// The stem output files are named by, as the file system has it: a file's own stem,
    /// bytes that are not UTF-8 included (`stem` shows them as U+FFFD, so two such names
    /// could not be told apart), else `stem`.
    pub fn stem_os(&self) -> OsString {
        match &self.kind {
            InputKind::File(path) => path
                .file_stem()
                .filter(|s| !s.is_empty())
                .map_or_else(|| OsString::from(&self.stem), OsStr::to_os_string),
            InputKind::Stdin | InputKind::Bytes(_) => OsString::from(&self.stem),
        }
    }

    /// The standard-input input: named `<stdin>`, stem `stdin`.
    pub fn stdin() -> Input {
        Input {
            name: "<stdin>".to_string(),
            stem: "stdin".to_string(),
            kind: InputKind::Stdin,
        }
    }
}

/// Limits applied while decoding, against decompression bombs.
#[derive(Debug, Clone, Copy)]
pub struct DecodeLimits {
    /// Largest width accepted, in pixels.
    pub max_width: u32,
    /// Largest height accepted, in pixels.
    pub max_height: u32,
    /// Largest width × height accepted.
    pub max_pixels: u64,
    /// Largest allocation a decoder may make, in bytes.
    pub max_alloc: u64,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        DecodeLimits {
            max_width: 65_535,
            max_height: 65_535,
            max_pixels: 178_956_970,
            max_alloc: 2 << 30,
        }
    }
}

/// The memory a frame takes at its peak, in bytes a pixel: its RGBA8 pixels as decoded, the
/// processed copy, and the converted image an encoder reads (a 13000×13000 RGB PNG to WebP
/// peaked at 12.5 bytes a pixel; to PNG at 6.9).
pub const MEMORY_PER_PIXEL: u64 = 12;

/// [`DecodeLimits::check`] asks for a frame's memory up front only from this many bytes
/// (about 22 megapixels), so that small frames and live streams pay nothing for it.
const PROBE_FROM_BYTES: u64 = 256 << 20;

/// Bytes read from the start of an input to tell its format before the rest is read.
pub(crate) const SNIFF_LEN: usize = 512;

/// The fewest bytes [`DecodeLimits::max_input_bytes`] allows, room for metadata (ICC profiles,
/// EXIF thumbnails) around small images.
const MIN_INPUT_BYTES: u64 = 64 << 20;

impl DecodeLimits {
    /// The most bytes an input (a file, a pipe, standard input) may have: the largest image
    /// these limits allow stored raw at 8 bytes a pixel (16-bit RGBA), within
    /// [`max_alloc`](Self::max_alloc), and at least 64 MiB for metadata. With the default
    /// limits, 1 431 655 760 bytes. Inputs read whole into memory (standard input, pipes,
    /// JPEG and SVG files) never take more than this.
    pub fn max_input_bytes(&self) -> u64 {
        self.max_pixels
            .saturating_mul(8)
            .min(self.max_alloc)
            .max(MIN_INPUT_BYTES)
    }

    /// [`Error::Limits`] naming `input` when `len` bytes are more than
    /// [`max_input_bytes`](Self::max_input_bytes).
    pub(crate) fn check_input_size(&self, input: &str, len: u64) -> Result<()> {
        let cap = self.max_input_bytes();
        if len > cap {
            let raw = self.max_pixels.saturating_mul(8);
            let why = if cap == raw {
                format!("8 bytes for each of the {} pixels allowed", self.max_pixels)
            } else if cap == MIN_INPUT_BYTES {
                "the least an input may always have, room for metadata around a small image"
                    .to_string()
            } else {
                "the allocation limit".to_string()
            };
            return Err(Error::Limits {
                input: input.to_string(),
                reason: format!(
                    "the input has more than {cap} bytes, the most an input may have under \
                     these limits ({why})"
                ),
            });
        }
        Ok(())
    }

    /// Checks a `width` × `height` image against these limits before any pixel is decoded:
    /// each side, the pixel count, and the bytes of the RGBA8 frame it becomes. For a large
    /// image it also asks for the memory it will take ([`MEMORY_PER_PIXEL`] bytes a pixel),
    /// and gives it back at once: an image this process cannot hold fails here, naming it,
    /// instead of aborting the whole process part-way (Rust aborts when an allocation fails).
    ///
    /// # Errors
    /// [`Error::Limits`] naming `input` and the dimensions when any limit is exceeded;
    /// [`Error::Memory`] when the memory cannot be had (a `ulimit -v`, a small machine).
    pub fn check(&self, input: &str, width: u64, height: u64) -> Result<()> {
        let limits = |reason: String| Error::Limits {
            input: input.to_string(),
            reason,
        };
        if width > u64::from(self.max_width) || height > u64::from(self.max_height) {
            return Err(limits(format!(
                "{width}×{height} is larger than the maximum of {}×{}",
                self.max_width, self.max_height
            )));
        }
        let pixels = width.saturating_mul(height);
        if pixels > self.max_pixels {
            return Err(limits(format!(
                "{width}×{height} is {pixels} pixels, more than the maximum of {}",
                self.max_pixels
            )));
        }
        let bytes = pixels.saturating_mul(4);
        if bytes > self.max_alloc {
            return Err(limits(format!(
                "{width}×{height} needs {bytes} bytes as RGBA, more than the allocation limit of {} bytes",
                self.max_alloc
            )));
        }
        let needed = pixels.saturating_mul(MEMORY_PER_PIXEL);
        if needed >= PROBE_FROM_BYTES {
            let mut probe: Vec<u8> = Vec::new();
            let size = usize::try_from(needed).unwrap_or(usize::MAX);
            if probe.try_reserve_exact(size).is_err() {
                return Err(Error::Memory {
                    input: input.to_string(),
                    reason: format!(
                        "a {width}×{height} image takes about {} MiB to decode, convert and \
                         encode, and this process could not get them",
                        needed >> 20
                    ),
                });
            }
        }
        Ok(())
    }
}

/// One decoded frame: RGBA8 pixels, row-major, straight alpha, `width * height * 4` bytes.
#[derive(Debug, Clone)]
pub struct DecodedFrame {
    /// Width in pixels (after EXIF orientation is applied).
    pub width: u32,
    /// Height in pixels (after EXIF orientation is applied).
    pub height: u32,
    /// The pixels; A is 255 everywhere when the source has no alpha.
    pub rgba: Vec<u8>,
    /// True when the source carried alpha (see [`file`](mod@file) for the animation rule).
    pub has_alpha: bool,
    /// Display time of this frame (every frame of an animation has one), `None` for stills;
    /// a GIF's frames always have one, a one-frame GIF's too (0 when it gives none).
    pub delay: Option<Duration>,
    /// The Pillow mode the file opens in, where conversions start from it (gray, 16-bit gray
    /// and palette PNGs, gray JPEG, BMP and TIFF; see [`crate::mode::source`]).
    pub source: SourceMode,
    /// How many times the animation plays (its loop count), `None` for stills; a GIF's
    /// frames always have it, a one-frame GIF's too (once, without a loop extension).
    pub plays: Option<Plays>,
    /// The file's ICC colour profile (see [`crate::FrameMeta::icc_profile`]), shared by its frames.
    pub icc_profile: Option<Arc<[u8]>>,
}

/// The frames of one input, decoded lazily where the format allows (animated GIFs, WebPs and
/// PNGs).
pub type Frames = Box<dyn Iterator<Item = Result<DecodedFrame>> + Send>;

/// The image formats shutter reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputFormat {
    /// PNG, APNG included (`.png`, `.apng`).
    Png,
    /// JPEG (`.jpg`, `.jpeg`, `.jpe`, `.jfif`).
    Jpeg,
    /// GIF, still or animated.
    Gif,
    /// WebP, still or animated.
    Webp,
    /// Windows bitmap (`.bmp`, `.dib`).
    Bmp,
    /// TIFF (`.tif`, `.tiff`).
    Tiff,
    /// SVG, rasterised by resvg.
    Svg,
}

/// Extensions (lower case) of the files a directory source picks up, and that [`decode`] reads.
/// The same files named directly are read by their content whatever their extension; these
/// are the ones Pillow registers for the formats shutter reads.
pub const IMAGE_EXTENSIONS: &[&str] = &[
    "png", "apng", "jpg", "jpeg", "jpe", "jfif", "webp", "gif", "bmp", "dib", "tif", "tiff", "svg",
];

impl InputFormat {
    /// The format an extension (without the dot, any case) names, if shutter reads it.
    pub fn from_extension(ext: &str) -> Option<InputFormat> {
        Some(match ext.to_ascii_lowercase().as_str() {
            "png" | "apng" => InputFormat::Png,
            "jpg" | "jpeg" | "jpe" | "jfif" => InputFormat::Jpeg,
            "gif" => InputFormat::Gif,
            "webp" => InputFormat::Webp,
            "bmp" | "dib" => InputFormat::Bmp,
            "tif" | "tiff" => InputFormat::Tiff,
            "svg" => InputFormat::Svg,
            _ => return None,
        })
    }

    /// The format of some bytes, judged by their content: the raster formats by their magic
    /// numbers, SVG when the text starts with `<` (after a BOM and whitespace) or has `<svg`.
    pub fn sniff(bytes: &[u8]) -> Option<InputFormat> {
        if let Ok(format) = image::guess_format(bytes) {
            return InputFormat::from_image(format);
        }
        // BigTIFF, which `image` does not name but reads.
        if bytes.starts_with(b"II+\0") || bytes.starts_with(b"MM\0+") {
            return Some(InputFormat::Tiff);
        }
        looks_like_svg(bytes).then_some(InputFormat::Svg)
    }

    /// Lower-case name used in messages (`png`, `jpeg`, ...).
    pub fn name(self) -> &'static str {
        match self {
            InputFormat::Png => "png",
            InputFormat::Jpeg => "jpeg",
            InputFormat::Gif => "gif",
            InputFormat::Webp => "webp",
            InputFormat::Bmp => "bmp",
            InputFormat::Tiff => "tiff",
            InputFormat::Svg => "svg",
        }
    }

    /// The `image` crate's format for the raster formats (`None` for SVG).
    pub fn to_image(self) -> Option<image::ImageFormat> {
        Some(match self {
            InputFormat::Png => image::ImageFormat::Png,
            InputFormat::Jpeg => image::ImageFormat::Jpeg,
            InputFormat::Gif => image::ImageFormat::Gif,
            InputFormat::Webp => image::ImageFormat::WebP,
            InputFormat::Bmp => image::ImageFormat::Bmp,
            InputFormat::Tiff => image::ImageFormat::Tiff,
            InputFormat::Svg => return None,
        })
    }

    fn from_image(format: image::ImageFormat) -> Option<InputFormat> {
        Some(match format {
            image::ImageFormat::Png => InputFormat::Png,
            image::ImageFormat::Jpeg => InputFormat::Jpeg,
            image::ImageFormat::Gif => InputFormat::Gif,
            image::ImageFormat::WebP => InputFormat::Webp,
            image::ImageFormat::Bmp => InputFormat::Bmp,
            image::ImageFormat::Tiff => InputFormat::Tiff,
            _ => return None,
        })
    }
}

/// SVG when the text starts with `<` after an optional UTF-8 BOM and whitespace, or has `<svg`.
fn looks_like_svg(bytes: &[u8]) -> bool {
    let text = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let start = text.iter().position(|b| !b.is_ascii_whitespace());
    if start.is_some_and(|i| text[i] == b'<') {
        return true;
    }
    text.windows(4).any(|w| w == b"<svg")
}

/// True when `bytes` start as gzip data does (a compressed SVG, `.svgz`, say).
fn is_gzip(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0x1F, 0x8B])
}

/// Why content that [`InputFormat::sniff`] does not recognise cannot be read, judged from its
/// first bytes `head`: gzip (a compressed SVG), a format shutter does not read, or nothing.
pub(crate) fn unknown_content(head: &[u8]) -> String {
    if is_gzip(head) {
        return SVGZ_REASON.to_string();
    }
    match image::guess_format(head) {
        Ok(other) => format!("the content is {other:?}, which shutter does not read"),
        Err(_) => "cannot tell the image format from the content".to_string(),
    }
}

/// Why a gzip-compressed input (`.svgz`) is refused.
pub(crate) const SVGZ_REASON: &str =
    "the content is gzip-compressed: compressed SVG (svgz) is not supported; decompress it first";

/// Reads `reader` (standard input, a pipe) to its end, as [`decode_data`] takes it: the first
/// [`SNIFF_LEN`] bytes first, to refuse content that is no image format shutter reads before
/// reading more, then the rest, at most [`DecodeLimits::max_input_bytes`] in all. Empty
/// input gives no bytes (the decoder reports it).
///
/// # Errors
/// [`Error::Io`] when the read fails, [`Error::Unsupported`] for content that is no image
/// format shutter reads, [`Error::Limits`] for more bytes than the limits allow; each names
/// `name`.
pub(crate) fn read_input<R: Read>(
    name: &str,
    mut reader: R,
    limits: &DecodeLimits,
) -> Result<Vec<u8>> {
    let mut data = Vec::new();
    (&mut reader)
        .take(SNIFF_LEN as u64)
        .read_to_end(&mut data)
        .map_err(|err| Error::io(name, err))?;
    if data.is_empty() {
        return Ok(data);
    }
    if InputFormat::sniff(&data).is_none() {
        return Err(Error::Unsupported {
            input: name.to_string(),
            reason: unknown_content(&data),
        });
    }
    let cap = limits.max_input_bytes();
    // One byte past the limit tells an input over it from one just at it.
    let rest = cap.saturating_add(1).saturating_sub(data.len() as u64);
    reader
        .take(rest)
        .read_to_end(&mut data)
        .map_err(|err| Error::io(name, err))?;
    limits.check_input_size(name, data.len() as u64)?;
    Ok(data)
}

/// The output stem of in-memory bytes named `name` (an upload's file name, say): its last
/// component (`/` or `\\`), without an image extension or leading dots, or `bytes`.
pub(crate) fn bytes_stem(name: &str) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let base = match Path::new(last).file_stem().and_then(OsStr::to_str) {
        Some(stem) if has_image_extension(Path::new(last)) => stem,
        _ => last,
    };
    match base.trim_start_matches('.') {
        "" => "bytes".to_string(),
        stem => stem.to_string(),
    }
}

/// True when `path` has one of the [`IMAGE_EXTENSIONS`] (any case).
fn has_image_extension(path: &Path) -> bool {
    path.extension()
        .and_then(OsStr::to_str)
        .is_some_and(|ext| InputFormat::from_extension(ext).is_some())
}

/// Expands sources into inputs, in the order given.
///
/// A file path is one input (whatever its extension: [`decode`] judges it); a directory becomes
/// its image files (extensions in [`IMAGE_EXTENSIONS`], any case), not recursively, sorted by
/// file name (byte order), skipping other files, subdirectories and hidden files (names
/// starting with `.`, such as macOS `._photo.jpg` leftovers and shutter's own temp files);
/// an image name that cannot be followed (a dangling link) is kept, to fail by name when
/// decoded; `-` is standard input.
///
/// A path that does not exist, or a directory that cannot be listed, gives an
/// [`Error::Io`] naming it in its place, and a directory with no image file an
/// [`Error::Unsupported`]; the other sources are still expanded.
pub fn expand(sources: &[Source]) -> Vec<Result<Input>> {
    let mut out = Vec::new();
    for source in sources {
        match source {
            Source::Stdin => out.push(Ok(Input::stdin())),
            Source::Pattern { .. } | Source::Webcam { .. } | Source::Grabber(_) => {
                out.push(Err(Error::Usage(
                    "a live source runs alone; it cannot be expanded with files".into(),
                )));
            }
            Source::Bytes { name, data } => out.push(Ok(Input {
                // Messages name it as its output file does when it has no name.
                name: if name.trim().is_empty() {
                    "bytes".to_string()
                } else {
                    name.clone()
                },
                stem: bytes_stem(name),
                kind: InputKind::Bytes(data.clone()),
            })),
            Source::Path(path) => match fs::metadata(path) {
                Err(err) => out.push(Err(Error::io(path, err))),
                Ok(meta) if meta.is_dir() => expand_dir(path, &mut out),
                Ok(_) => out.push(Ok(Input::from_path(path))),
            },
        }
    }
    out
}

/// Pushes the image files of directory `dir`, sorted by name.
fn expand_dir(dir: &Path, out: &mut Vec<Result<Input>>) {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) => {
            out.push(Err(Error::io(dir, err)));
            return;
        }
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry,
            Err(err) => {
                out.push(Err(Error::io(dir, err)));
                continue;
            }
        };
        let name = entry.file_name();
        if name.as_encoded_bytes().starts_with(b".") {
            continue;
        }
        let path = entry.path();
        // fs::metadata follows symlinks: a link to an image counts, a link to a directory not.
        // One that cannot be followed (a dangling link) is kept, so that it fails by name.
        if has_image_extension(&path) && fs::metadata(&path).map_or(true, |m| m.is_file()) {
            files.push((name, path));
        }
    }
    if files.is_empty() {
        // "0 inputs" and exit 0 said nothing of a wrong directory or a missing mount.
        out.push(Err(Error::Unsupported {
            input: dir.display().to_string(),
            reason: format!(
                "the directory holds no image files (by extension: {}; subdirectories and hidden files are not read)",
                IMAGE_EXTENSIONS.join(", ")
            ),
        }));
        return;
    }
    files.sort();
    out.extend(
        files
            .into_iter()
            .map(|(_, path)| Ok(Input::from_path(path))),
    );
}

/// Decodes every frame of `input`.
///
/// Files are decoded by the format their extension names (see [`file`](mod@file) and [`svg`]),
/// or their content shows when the extension names none or the wrong one; standard input, and
/// files that are not regular files (pipes, FIFOs, `/dev/stdin`, `<(...)`), are read whole
/// (at most [`DecodeLimits::max_input_bytes`]) and their format sniffed from the content
/// ([`InputFormat::sniff`]). Content whose first bytes show no format shutter reads is refused
/// before the rest is read.
/// Stills are decoded before this returns; animations (GIF, WebP, APNG) frame by frame as the
/// iterator is advanced (an error part-way through is the iterator's last item).
///
/// # Errors
/// - [`Error::Io`] when the file cannot be opened or read (naming the path; `<stdin>`).
/// - [`Error::Unsupported`] for an extension (or content) that is not a format shutter reads.
/// - [`Error::Limits`] when the image is larger than `limits` allow, checked before its pixels
///   are decoded, or the input has more bytes than [`DecodeLimits::max_input_bytes`].
/// - [`Error::Decode`] for empty, truncated or malformed data, naming the input and format,
///   and for data that makes a decoder panic (see [`in_guarded_decoder`]).
pub fn decode(input: &Input, limits: &DecodeLimits) -> Result<Frames> {
    decode_within(input, limits, None)
}

/// The longest side an output format holds, and the format's name (`webp`): an input larger
/// than that fails before its pixels are decoded, since no frame of it could be written (a
/// GIF's 60-byte header can give a 2085×16407 canvas, 130 MB to decode).
pub(crate) type MaxSide = Option<(u32, &'static str)>;

/// [`Error::Unsupported`] naming `input` when a `width` × `height` frame is larger than
/// `max_side` holds.
pub(crate) fn check_side(input: &str, width: u64, height: u64, max_side: MaxSide) -> Result<()> {
    match max_side {
        Some((max, format)) if width > u64::from(max) || height > u64::from(max) => {
            Err(Error::Unsupported {
                input: input.to_string(),
                reason: format!(
                    "its {width}×{height} frames cannot be written as {format}, whose sides \
                     are at most {max} pixels; give another format (--format)"
                ),
            })
        }
        _ => Ok(()),
    }
}

/// [`decode`], which also refuses an input larger than `max_side` holds before decoding its
/// pixels: by its header, its SVG size, or, for standard input and pipes, by the header of
/// the bytes read.
pub(crate) fn decode_within(
    input: &Input,
    limits: &DecodeLimits,
    max_side: MaxSide,
) -> Result<Frames> {
    guarded_frames(&input.name, || match &input.kind {
        InputKind::File(path) => file::decode_path_within(&input.name, path, limits, max_side),
        InputKind::Stdin => {
            let bytes = read_input(&input.name, std::io::stdin().lock(), limits)?;
            decode_data(&input.name, bytes, limits, max_side)
        }
        InputKind::Bytes(data) => decode_data(&input.name, data.to_vec(), limits, max_side),
    })
}

/// The width and height of an input's first frame (a GIF's or APNG's canvas, before EXIF
/// orientation), read from its header without decoding it. `None` where that is not cheap
/// (SVG, standard input, a pipe) or the header cannot be read (the decode says why).
pub(crate) fn header_size(input: &Input) -> Option<(u32, u32)> {
    // A header parser's panic on malformed data is the decode's to report.
    guarded(&input.name, || {
        Ok(match &input.kind {
            // A pipe or a FIFO can be read once: only its decode reads it.
            InputKind::File(path) if std::fs::metadata(path).is_ok_and(|m| m.is_file()) => {
                let file = std::fs::File::open(path).ok();
                file.and_then(|file| header_dimensions(std::io::BufReader::new(file)))
            }
            InputKind::Bytes(data) => header_dimensions(std::io::Cursor::new(&data[..])),
            InputKind::File(_) | InputKind::Stdin => None,
        })
    })
    .ok()
    .flatten()
}

/// The width and height a raster image's header gives, `None` when it cannot be read.
fn header_dimensions<R: std::io::BufRead + std::io::Seek>(reader: R) -> Option<(u32, u32)> {
    let reader = image::ImageReader::new(reader).with_guessed_format().ok()?;
    reader.into_dimensions().ok()
}

thread_local! {
    /// Set while this thread runs a decoder under [`guarded`].
    static IN_DECODER: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// True while the calling thread is inside one of the decoders [`decode`] runs (`png`,
/// `image`, resvg and tiny-skia, ...). A panic there is caught and becomes the input's
/// [`Error::Decode`], so a panic hook may leave it unprinted: the CLI's does, so that a
/// malformed file gets one error line naming it rather than a panic message.
pub fn in_guarded_decoder() -> bool {
    IN_DECODER.with(std::cell::Cell::get)
}

/// Runs `decode` for input `name`, turning a panic in it (a decoder crate's bug on malformed
/// data: a palette of 4 bytes, an SVG scaled by 1e30) into an [`Error::Decode`] naming the
/// input. The decoder's state is dropped with the panic, so nothing half-built is used.
fn guarded<T>(name: &str, decode: impl FnOnce() -> Result<T>) -> Result<T> {
    let outer = IN_DECODER.with(|flag| flag.replace(true));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(decode));
    IN_DECODER.with(|flag| flag.set(outer));
    result.unwrap_or_else(|payload| {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "no message".to_string());
        Err(Error::Decode {
            input: name.to_string(),
            format: "the image".to_string(),
            reason: format!(
                "the decoder failed on its data ({})",
                file::one_line(&message)
            ),
        })
    })
}

/// [`guarded`] for a decode that gives frames: the decode, and each frame's.
fn guarded_frames(name: &str, decode: impl FnOnce() -> Result<Frames>) -> Result<Frames> {
    let frames = guarded(name, decode)?;
    Ok(Box::new(GuardedFrames {
        name: name.to_string(),
        inner: Some(frames),
    }))
}

/// The frames of a [`guarded`] decode: each frame decoded under the guard too, and none
/// after the one whose decoder panicked.
struct GuardedFrames {
    name: String,
    inner: Option<Frames>,
}

impl Iterator for GuardedFrames {
    type Item = Result<DecodedFrame>;

    fn next(&mut self) -> Option<Self::Item> {
        let inner = self.inner.as_mut()?;
        let item = guarded(&self.name, || Ok(inner.next()));
        match item {
            Ok(next) => next,
            Err(err) => {
                self.inner = None;
                Some(Err(err))
            }
        }
    }
}

/// Decodes an image held in memory, its format sniffed from the content; `name` is how
/// messages refer to it.
///
/// # Errors
/// As [`decode`]: [`Error::Decode`] for empty or malformed data, [`Error::Unsupported`] when
/// the content is no format shutter reads, [`Error::Limits`] for images over the limits.
pub fn decode_bytes(name: &str, bytes: Vec<u8>, limits: &DecodeLimits) -> Result<Frames> {
    guarded_frames(name, || decode_data(name, bytes, limits, None))
}

/// [`decode_bytes`] without its guard against a decoder's panic.
pub(crate) fn decode_data(
    name: &str,
    bytes: Vec<u8>,
    limits: &DecodeLimits,
    max_side: MaxSide,
) -> Result<Frames> {
    if bytes.is_empty() {
        return Err(Error::Decode {
            input: name.to_string(),
            format: "image".to_string(),
            reason: "no data (0 bytes)".to_string(),
        });
    }
    let format = match InputFormat::sniff(&bytes) {
        Some(format) => format,
        None => {
            return Err(Error::Unsupported {
                input: name.to_string(),
                reason: unknown_content(&bytes),
            });
        }
    };
    if format == InputFormat::Svg {
        return svg::decode_within(name, &bytes, limits, max_side);
    }
    if max_side.is_some()
        && let Some((width, height)) = header_dimensions(std::io::Cursor::new(&bytes[..]))
    {
        check_side(name, width.into(), height.into(), max_side)?;
    }
    file::decode_reader_within(name, format, std::io::Cursor::new(bytes), limits, max_side)
}

#[cfg(test)]
mod tests {
    #[test]
    fn bytes_stems_stay_in_the_output_directory() {
        for (name, stem) in [
            ("shutter-default", "shutter-default"),
            ("photo.png", "photo"),
            ("photo.JPEG", "photo"),
            ("notes.v2", "notes.v2"),
            ("../escaped", "escaped"),
            ("/tmp/absolute", "absolute"),
            ("sub/dir/name.gif", "name"),
            ("C:\\Users\\me\\cat.webp", "cat"),
            ("..", "bytes"),
            (".", "bytes"),
            ("", "bytes"),
            ("dir/", "bytes"),
            (".png", "png"),
            (".hidden", "hidden"),
        ] {
            assert_eq!(super::bytes_stem(name), stem, "{name:?}");
        }
    }

    use super::*;

    #[test]
    fn sniff_recognises_svg_and_magic() {
        assert_eq!(
            InputFormat::sniff(b"\xEF\xBB\xBF  \n<?xml version='1.0'?>"),
            Some(InputFormat::Svg)
        );
        assert_eq!(
            InputFormat::sniff(b"junk junk <svg width='1'/>"),
            Some(InputFormat::Svg)
        );
        assert_eq!(
            InputFormat::sniff(b"\x89PNG\r\n\x1a\n...."),
            Some(InputFormat::Png)
        );
        assert_eq!(InputFormat::sniff(b"GIF89a...."), Some(InputFormat::Gif));
        assert_eq!(InputFormat::sniff(b"hello"), None);
    }

    #[test]
    fn extensions_any_case() {
        assert_eq!(InputFormat::from_extension("JPG"), Some(InputFormat::Jpeg));
        assert_eq!(InputFormat::from_extension("Tif"), Some(InputFormat::Tiff));
        assert_eq!(InputFormat::from_extension("xyz"), None);
        for ext in IMAGE_EXTENSIONS {
            assert!(InputFormat::from_extension(ext).is_some(), "{ext}");
        }
    }

    #[test]
    fn limits_name_the_dimensions() {
        let limits = DecodeLimits::default();
        let err = limits.check("big.png", 100_000, 100_000).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, Error::Limits { .. }));
        assert!(
            msg.contains("big.png") && msg.contains("100000×100000"),
            "{msg}"
        );
        let small = DecodeLimits {
            max_pixels: 10,
            ..DecodeLimits::default()
        };
        assert!(small.check("x", 4, 3).is_err());
        assert!(small.check("x", 5, 2).is_ok());
    }

    #[test]
    fn an_input_over_its_byte_cap_is_told_which_bound_sets_it() {
        let reason = |limits: DecodeLimits| {
            let cap = limits.max_input_bytes();
            assert!(limits.check_input_size("x", cap).is_ok());
            limits
                .check_input_size("x", cap + 1)
                .unwrap_err()
                .to_string()
        };
        let default = reason(DecodeLimits::default());
        assert!(
            default.ends_with(
                "more than 1431655760 bytes, the most an input may have under these limits \
                 (8 bytes for each of the 178956970 pixels allowed)"
            ),
            "{default}"
        );
        let few = reason(DecodeLimits {
            max_pixels: 100,
            ..DecodeLimits::default()
        });
        assert!(
            few.ends_with(
                "more than 67108864 bytes, the most an input may have under these \
                 limits (the least an input may always have, room for metadata around a small \
                 image)"
            ),
            "{few}"
        );
        let little = reason(DecodeLimits {
            max_alloc: 100 << 20,
            ..DecodeLimits::default()
        });
        assert!(
            little.ends_with(
                "more than 104857600 bytes, the most an input may have under \
                 these limits (the allocation limit)"
            ),
            "{little}"
        );
    }

    #[test]
    fn empty_bytes_are_a_decode_error() {
        let err = decode_bytes("<stdin>", Vec::new(), &DecodeLimits::default())
            .err()
            .map(|e| e.to_string());
        assert!(err.is_some_and(|m| m.contains("<stdin>")));
    }
}

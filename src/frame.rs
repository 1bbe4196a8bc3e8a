//! A frame travelling through the pipeline: RGBA8 pixels plus where it came from.

use std::borrow::Cow;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::mode::source::SourceMode;
use crate::mode::{FrameArray, FrameArrayView, ImageMode, ModeImage, Palette};

/// Where a frame came from and where it sits in its stream.
#[derive(Debug, Clone)]
pub struct FrameMeta {
    /// Position of this frame in the whole run (0, 1, 2, ...), in capture order.
    pub seq: u64,
    /// Index of the input (file, stdin, camera) that produced it, once directories are
    /// expanded: `names[input]` in [`Event::Started`](crate::Event::Started), which lists the
    /// inputs that could be listed, so it is not the index of a source given to the builder
    /// (a directory gives several inputs; a missing file, none). [`name`](Self::name) says
    /// which input it is.
    pub input: usize,
    /// The name of the input that produced it, as in [`Event::Started`](crate::Event::Started):
    /// a file's path (as given, or its directory's path joined with its name), `<stdin>`, or a
    /// live source's name (`webcam:0`, `pattern:640x480`, a closure's
    /// [`named`](crate::FuncGrabber::named), else `closure`); empty for frames made by hand.
    pub name: Arc<str>,
    /// Index of the frame within its input (animated GIFs, WebPs and PNGs have several).
    pub index: usize,
    /// True for the last frame of its input. Always false for live sources (a camera, the
    /// pattern, a closure): their end is only known when the next frame fails to come.
    pub last: bool,
    /// True when the frame belongs to a sequence: a stream, or a file of several frames
    /// (even when a stop rule lets only one through). A sequence is written as one: frame
    /// files numbered `_00000`, an npy of shape (N, …).
    pub sequence: bool,
    /// Display time of this frame (animations), if the source has one.
    pub delay: Option<Duration>,
    /// How many times the animation this frame belongs to plays, as its file says; `None`
    /// for stills and streams (a GIF written from them loops forever). A GIF's frames always
    /// carry it, a one-frame GIF's too.
    pub plays: Option<Plays>,
    /// When the capture stage produced the frame.
    pub captured: Instant,
    /// Capture time on the pipeline's clock (a camera's or paced pattern's frame time); the
    /// sink measures latency and `stream_every` ticks against it. The default clock
    /// ([`SystemClock::shared`](crate::source::live::SystemClock::shared)) counts from its
    /// first use in the process, not from the run's start: a second run's frames start later
    /// (subtract the first frame's timestamp for the time into a run).
    pub timestamp: Duration,
    /// The ICC colour profile of the file the frame came from (Pillow's
    /// `info["icc_profile"]`): what its RGB, gray or CMYK values mean. Shared by the frames of
    /// one file; `None` for files without one, for live sources, when the pipeline is built
    /// with [`icc_profiles(false)`](crate::PipelineBuilder::icc_profiles), and where the
    /// profile does not describe the frame's pixels (one of another colour space than the file
    /// opens in, or a gray or CMYK file's once a filter has made the pixels RGB). Outputs that
    /// can hold it get it where it describes their colours (see [`crate::sink::encode`]).
    pub icc_profile: Option<Arc<[u8]>>,
}

impl FrameMeta {
    /// Metadata for a single still frame of input `input` with sequence number `seq`.
    pub fn still(seq: u64, input: usize) -> Self {
        FrameMeta {
            seq,
            input,
            name: Arc::from(""),
            index: 0,
            last: true,
            sequence: false,
            delay: None,
            plays: None,
            captured: Instant::now(),
            timestamp: Duration::ZERO,
            icc_profile: None,
        }
    }
}

/// How many times an animation plays: the loop count of its file, in plays rather than in
/// each format's own count.
///
/// A GIF's NETSCAPE count is of repeats after the first play (browsers show `loop=3` four
/// times) and a GIF without one plays once; a WebP's or APNG's count is of plays. Pillow's
/// `info["loop"]` is the raw count (0 for forever; none for a GIF that plays once).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plays {
    /// Over and over (a count of 0 in every format).
    Forever,
    /// This many times in all.
    Times(NonZeroU32),
}

/// Pixels of one frame: RGBA8, row-major, `width * height * 4` bytes, straight (not
/// premultiplied) alpha. Sources without alpha fill A with 255 and say so in `has_alpha`.
///
/// Once processed with a mode, the result is [`Frame::image`]: read it with
/// [`Frame::array`]. A [`Pipeline`](crate::Pipeline) always sets a mode (RGB by default), so
/// in its callbacks `rgba` — and [`to_rgb`](Frame::to_rgb), [`rgb_array`](Frame::rgb_array),
/// [`rgba_view`](Frame::rgba_view), which read it — are the frame as captured, before the
/// mirror, the filters and the conversion.
///
/// The layout is byte-identical to an (H, W, 4) u8 array and to the GPU's packed-u32 buffers.
///
/// Its `Debug` names its buffers' sizes, not their bytes (a 4K frame has 33 million).
pub struct Frame {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// The RGBA8 pixels, `width * height * 4` bytes: after processing without a mode, the
    /// result of the mirror and filters; otherwise the frame as captured.
    pub rgba: Vec<u8>,
    /// True when the source carried an alpha channel (RGBA PNG, GIF with transparency, SVG).
    pub has_alpha: bool,
    /// The Pillow mode the source opened in (`L`, `P`, `I;16`, or RGB(A)): some conversions
    /// start from it, as in Pillow ([`crate::mode::source`]). [`SourceMode::Color`] unless a
    /// decoder says otherwise.
    pub source: SourceMode,
    /// Where the frame came from and where it sits in its stream.
    pub meta: FrameMeta,
    /// The frame converted to the pipeline's `image_mode`, once processed with a mode set
    /// ([`Ops::mode`](crate::Ops::mode)). When it is set, `rgba` no longer holds the result.
    pub image: Option<ModeImage>,
    /// The frame's share of its run's budget of bytes in flight (frames of files), given
    /// back when the frame is dropped; a clone has none.
    pub(crate) held: Option<crate::budget::Held>,
}

impl Clone for Frame {
    fn clone(&self) -> Self {
        Frame {
            width: self.width,
            height: self.height,
            rgba: self.rgba.clone(),
            has_alpha: self.has_alpha,
            source: self.source.clone(),
            meta: self.meta.clone(),
            image: self.image.clone(),
            held: None,
        }
    }
}

impl std::fmt::Debug for Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        /// A buffer by its length.
        struct Bytes(usize);
        impl std::fmt::Debug for Bytes {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "[{} bytes]", self.0)
            }
        }
        /// A converted image by its mode, size and element count.
        struct Converted<'a>(&'a ModeImage);
        impl std::fmt::Debug for Converted<'_> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                let image = self.0;
                write!(
                    f,
                    "ModeImage {{ mode: {}, {}×{}, [{} elements]{} }}",
                    image.mode,
                    image.width,
                    image.height,
                    image.data.len(),
                    image
                        .palette
                        .as_ref()
                        .map_or_else(String::new, |p| format!(", {}-entry palette", p.len()))
                )
            }
        }
        f.debug_struct("Frame")
            .field("width", &self.width)
            .field("height", &self.height)
            .field("rgba", &Bytes(self.rgba.len()))
            .field("has_alpha", &self.has_alpha)
            .field("source", &self.source.name())
            .field("meta", &self.meta)
            .field("image", &self.image.as_ref().map(Converted))
            .finish()
    }
}

impl From<crate::source::DecodedFrame> for Frame {
    /// A decoded image ([`crate::source::decode`], [`crate::source::decode_bytes`]) as a frame
    /// to process: keeping the mode its file opens in, so that conversions start from it as
    /// the pipeline's do (a gray PNG's `P` uses the gray ramp, a palette PNG's `P` keeps its
    /// indices), and its delay, loop count and colour profile. Its meta is a still of input 0
    /// ([`FrameMeta::still`]) otherwise. `Frame::new` on its RGBA pixels would convert as from
    /// an RGB file.
    fn from(decoded: crate::source::DecodedFrame) -> Frame {
        let mut meta = FrameMeta::still(0, 0);
        meta.delay = decoded.delay;
        meta.plays = decoded.plays;
        meta.icc_profile = decoded.icc_profile;
        let mut frame = Frame::new(
            decoded.width,
            decoded.height,
            decoded.rgba,
            decoded.has_alpha,
            meta,
        );
        frame.source = decoded.source;
        frame
    }
}

impl Frame {
    /// A frame from RGBA8 pixels, `width × height × 4` bytes. A buffer of another length is
    /// refused where the frame is used, with an error naming both lengths and the size
    /// ([`Processor::schedule`](crate::Processor::schedule), the encoders,
    /// [`to_image`](Self::to_image)), as a frame whose public fields were changed would be;
    /// the accessors that return no `Result` ([`array`](Self::array) and its peers) give an
    /// array of no pixels for it instead.
    pub fn new(width: u32, height: u32, rgba: Vec<u8>, has_alpha: bool, meta: FrameMeta) -> Self {
        Frame {
            width,
            height,
            rgba,
            has_alpha,
            source: SourceMode::Color,
            meta,
            image: None,
            held: None,
        }
    }

    /// A frame with no pixel buffer yet, for the ring's `schedule_with` paths (the pixels are
    /// written straight into the upload buffer).
    pub(crate) fn unfilled(width: u32, height: u32, has_alpha: bool, meta: FrameMeta) -> Self {
        Frame {
            width,
            height,
            rgba: Vec::new(),
            has_alpha,
            source: SourceMode::Color,
            meta,
            image: None,
            held: None,
        }
    }

    /// Number of pixels.
    pub fn pixels(&self) -> usize {
        self.width as usize * self.height as usize
    }

    /// `rgba` as RGB8 (alpha dropped without compositing, as Pillow's `convert("RGB")`): in a
    /// pipeline's callback, the frame as captured; the result is [`Frame::array`]. Of a buffer
    /// that is not `width × height × 4` bytes, the whole pixels it holds.
    pub fn to_rgb(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.rgba.len() / 4 * 3);
        for px in self.rgba.chunks_exact(4) {
            out.extend_from_slice(&px[..3]);
        }
        out
    }

    /// `rgba` as an (H, W, 3) u8 array (alpha dropped): in a pipeline's callback, the frame as
    /// captured. For processed frames use [`Frame::array`].
    ///
    /// A buffer that is not `width × height × 4` bytes (see [`Frame::new`]) gives an array of
    /// no pixels, shape (0, 0, 3); [`to_image`](Self::to_image) says what is wrong with it.
    pub fn rgb_array(&self) -> ndarray::Array3<u8> {
        if check_rgba(self, self.meta.seq).is_err() {
            return ndarray::Array3::zeros((0, 0, 3));
        }
        ndarray::Array3::from_shape_vec(
            (self.height as usize, self.width as usize, 3),
            self.to_rgb(),
        )
        .unwrap_or_else(|_| ndarray::Array3::zeros((0, 0, 3)))
    }

    /// The array a numpy user of Gradio gets from `np.asarray(im.convert(mode))`: typed and
    /// shaped per mode ((H, W) bool for `1`, (H, W) i32 for `I`, (H, W, 3) u8 for RGB, ...).
    /// Frames without a converted image give their RGB pixels, Gradio's default mode.
    ///
    /// This copies the pixels (25 MB for a 4K RGB frame); a callback that only reads them
    /// can borrow them with [`array_view`](Self::array_view).
    ///
    /// A frame built by hand whose buffer does not fill its size (its `rgba`, or the `data`
    /// of its `image`) gives an array of no pixels, shape (0, 0) or (0, 0, bands) in its
    /// mode, where a pipeline's frames never do; [`to_image`](Self::to_image) and the
    /// encoders refuse it with an error naming both lengths.
    pub fn array(&self) -> FrameArray {
        match &self.image {
            Some(image) => image.to_array(),
            None => FrameArray::U8(self.rgb_array().into_dyn()),
        }
    }

    /// [`array`](Self::array) borrowed from the frame, with no copy of its pixels (mode `1`
    /// excepted, whose `bool`s are made from its bytes). A frame without a converted image
    /// gives its RGB pixels as a strided view of the RGBA buffer. A buffer that does not fill
    /// the frame's size gives no pixels, as with `array`.
    pub fn array_view(&self) -> FrameArrayView<'_> {
        match &self.image {
            Some(image) => image.view(),
            None => FrameArrayView::U8(
                self.rgba_view()
                    .slice_move(ndarray::s![.., .., 0..3])
                    .into_dyn(),
            ),
        }
    }

    /// The result as an `image` crate buffer, where [`array`](Self::array) gives it as
    /// numpy would: the Rust peer of Gradio's `type="pil"`. Modes `1`, `L`, `P`, `RGB` and
    /// `RGBA` (see [`ModeImage::to_image`]); a frame without a converted image gives its
    /// RGB pixels, as `array` does.
    ///
    /// # Errors
    /// [`crate::Error::Usage`] for the modes `image` has no buffer type for (`I`, `F`,
    /// `CMYK`, `YCbCr`, `LAB`, `HSV`), and for a buffer that does not fill the frame's size
    /// (its `rgba`, or its image's `data`), naming the frame, both lengths and the size.
    pub fn to_image(&self) -> crate::Result<image::DynamicImage> {
        match &self.image {
            Some(image) => image.to_image(),
            None => {
                check_len(self)?;
                image::RgbImage::from_raw(self.width, self.height, self.to_rgb())
                    .map(image::DynamicImage::ImageRgb8)
                    .ok_or_else(|| {
                        crate::Error::Usage(format!(
                            "frame {}: {}×{} is too large for an `image` buffer",
                            self.meta.seq, self.width, self.height
                        ))
                    })
            }
        }
    }

    /// A view of `rgba` as an (H, W, 4) u8 array, alpha included. Once a mode is set that is
    /// no longer the result (a [`Pipeline`](crate::Pipeline) always sets one, RGB by default):
    /// there use [`Frame::array`], and mode `RGBA` to keep the alpha.
    ///
    /// A buffer that is not `width × height × 4` bytes gives a view of no pixels, shape
    /// (0, 0, 4): a frame built with a wrong length (see [`Frame::new`]), or one a GPU
    /// converted from pixels written in place
    /// ([`GpuBackend::schedule_with`](crate::gpu::GpuBackend::schedule_with) with a mode),
    /// which keeps only its [`image`](Self::image).
    pub fn rgba_view(&self) -> ndarray::ArrayView3<'_, u8> {
        let shape = (self.height as usize, self.width as usize, 4);
        ndarray::ArrayView3::from_shape(shape, &self.rgba).unwrap_or_else(|_| {
            ndarray::ArrayView3::from_shape((0, 0, 4), &[]).expect("no pixels fit an empty slice")
        })
    }
}

/// A finished frame's output lent to a reader: by [`GpuBackend::collect_with`] straight from the
/// ring's mapped readback (no copy), or by [`Processor::collect_with`] from the frame's own
/// buffers.
///
/// [`GpuBackend::collect_with`]: crate::gpu::GpuBackend::collect_with
/// [`Processor::collect_with`]: crate::backend::Processor::collect_with
#[derive(Debug, Clone, Copy)]
pub struct FinishedFrame<'a> {
    /// Where the frame came from (sequence number, input, timestamps).
    pub meta: &'a FrameMeta,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// The mode `bytes` are in; `None` for RGBA8 (no `image_mode` set).
    pub mode: Option<ImageMode>,
    /// Exactly the output's bytes: `width × height × 4` of RGBA8, or the mode's pixels in
    /// [`ModeImage::as_bytes`]'s layout (I and F as little-endian words).
    pub bytes: &'a [u8],
    /// The palette of mode `P`.
    pub palette: Option<&'a Palette>,
}

impl Frame {
    /// Lends this frame's output to `read`: its mode image when it has one, else its RGBA pixels.
    pub fn lend<R>(&self, read: impl FnOnce(FinishedFrame<'_>) -> R) -> R {
        let (mode, bytes, palette) = match &self.image {
            Some(image) => (Some(image.mode), image.as_bytes(), image.palette.as_ref()),
            None => (None, Cow::Borrowed(&self.rgba[..]), None),
        };
        read(FinishedFrame {
            meta: &self.meta,
            width: self.width,
            height: self.height,
            mode,
            bytes: &bytes,
            palette,
        })
    }
}

/// `Ok` when `len` bytes are a `width × height` frame of RGB8 pixels.
///
/// # Errors
/// [`crate::Error::Usage`] naming frame `seq` and both lengths otherwise.
pub(crate) fn check_rgb_len(width: u32, height: u32, len: usize, seq: u64) -> crate::Result<()> {
    check_bytes(width, height, len, 3)
        .map_err(|why| crate::Error::Usage(format!("frame {seq} has {why}")))
}

/// A zeroed buffer for a `width × height` frame of `bpp` bytes a pixel, the frame named by
/// `seq` in the error when no buffer that large can be had (a size past `usize`, or memory
/// the process cannot get), where `vec!` would abort the process.
pub(crate) fn zeroed_pixels(
    width: u32,
    height: u32,
    bpp: usize,
    seq: u64,
) -> crate::Result<Vec<u8>> {
    let len = (width as usize)
        .checked_mul(height as usize)
        .and_then(|pixels| pixels.checked_mul(bpp));
    // Asked for and given back, then allocated zeroed: `vec!` takes pages the system zeroes
    // as they are first written, where filling a reserved buffer would write them twice.
    match len {
        Some(len) if Vec::<u8>::new().try_reserve_exact(len).is_ok() => Ok(vec![0; len]),
        _ => Err(crate::Error::Usage(format!(
            "frame {seq}: a {width}×{height} frame of {bpp} bytes a pixel is more memory than \
             this process can get"
        ))),
    }
}

/// `Ok` when `frame.rgba` holds `width × height × 4` bytes.
///
/// # Errors
/// [`crate::Error::Usage`] naming the frame (its `meta.seq`) and both lengths otherwise.
pub(crate) fn check_len(frame: &Frame) -> crate::Result<()> {
    check_rgba(frame, frame.meta.seq).map_err(crate::Error::Usage)
}

/// `Ok` when `frame.rgba` holds `width × height × 4` bytes; else why, naming the frame
/// `name`: `frame 3 has 10 bytes of pixels where a 4×4 RGBA frame needs 64`.
pub(crate) fn check_rgba(frame: &Frame, name: impl std::fmt::Display) -> Result<(), String> {
    check_bytes(frame.width, frame.height, frame.rgba.len(), 4)
        .map_err(|why| format!("frame {name} has {why}"))
}

/// `Ok` when `len` bytes are `width × height` pixels of `bpp` bytes; else both lengths and
/// the size (counted in `u128`: a `u32` side squared times 4 passes `u64`).
fn check_bytes(width: u32, height: u32, len: usize, bpp: u8) -> Result<(), String> {
    let needed = u128::from(width) * u128::from(height) * u128::from(bpp);
    if len as u128 == needed {
        return Ok(());
    }
    let layout = if bpp == 3 { "RGB" } else { "RGBA" };
    Err(format!(
        "{len} bytes of pixels where a {width}×{height} {layout} frame needs {needed}"
    ))
}

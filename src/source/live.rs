//! Live sources: the [`FrameGrabber`] trait every real-time source implements (webcam, test
//! pattern, user closure, synthetic camera), the [`Clock`] they pace and stamp frames on, the
//! [`RawFrame`]s they hand out, and [`to_rgba`], which turns a raw frame into the pipeline's
//! RGBA8 [`DecodedFrame`].
//!
//! The capture code above this module is generic over [`FrameGrabber`]: nokhwa's webcams
//! ([`crate::source::webcam`]) are one implementation, and [`SyntheticCamera`] produces the
//! same raw YUYV, NV12 and MJPEG frames a webcam does, at a given rate on a clock, so that the
//! whole webcam path except the device itself runs in tests.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::error::{BoxError, Error, Result};
use crate::gpu::yuv::YuvConverter;
use crate::mode::source::SourceMode;
use crate::source::pattern::{self, PatternGrabber};
use crate::source::{DecodeLimits, DecodedFrame, InputFormat, widen, yuv};

/// How a [`RawFrame`]'s bytes are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RawFormat {
    /// 3 bytes a pixel, R G B.
    Rgb,
    /// 4 bytes a pixel, R G B A (straight alpha).
    Rgba,
    /// 3 bytes a pixel, B G R (V4L2 `BGR3`).
    Bgr,
    /// 1 byte a pixel, full-range luma (V4L2 `GREY`).
    Gray,
    /// 4 bytes per pixel pair, `Y0 U Y1 V`, BT.601 limited range; even width.
    Yuyv,
    /// A Y plane, then interleaved `U V` at half width and height; even width and height.
    Nv12,
    /// One JPEG image per frame (Motion JPEG; missing Huffman tables are the standard ones).
    Mjpeg,
}

impl RawFormat {
    /// Lower-case name used in error messages (`yuyv`, `mjpeg`, ...).
    pub fn name(self) -> &'static str {
        match self {
            RawFormat::Rgb => "rgb",
            RawFormat::Rgba => "rgba",
            RawFormat::Bgr => "bgr",
            RawFormat::Gray => "gray",
            RawFormat::Yuyv => "yuyv",
            RawFormat::Nv12 => "nv12",
            RawFormat::Mjpeg => "mjpeg",
        }
    }
}

impl std::fmt::Display for RawFormat {
    /// The FourCC-style name: `RGB`, `RGBA`, `BGR`, `GRAY`, `YUYV`, `NV12`, `MJPEG`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RawFormat::Rgb => "RGB",
            RawFormat::Rgba => "RGBA",
            RawFormat::Bgr => "BGR",
            RawFormat::Gray => "GRAY",
            RawFormat::Yuyv => "YUYV",
            RawFormat::Nv12 => "NV12",
            RawFormat::Mjpeg => "MJPEG",
        })
    }
}

/// One frame as a source delivers it, before any conversion.
#[derive(Debug, Clone, PartialEq)]
pub struct RawFrame {
    /// Width in pixels (for MJPEG: what the source announced; the JPEG's own size wins).
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Layout of `data`.
    pub format: RawFormat,
    /// The bytes; at least the frame's size for uncompressed formats (drivers may pad; the
    /// excess is ignored).
    pub data: Vec<u8>,
    /// When the frame was captured (or was due, for a paced source), on the grabber's clock.
    pub timestamp: Duration,
}

/// A source of live frames: a camera, the test pattern, a user closure.
///
/// The capture thread calls [`next_frame`](FrameGrabber::next_frame) in a loop; it blocks
/// until the next frame exists (a paced pattern waits on its clock, a camera for the device).
pub trait FrameGrabber: Send {
    /// The next frame, waiting for it. `Ok(None)` means the stream has ended (a closure or
    /// iterator ran out, a synthetic camera reached its limit); call no more after that.
    ///
    /// # Errors
    /// The source failed ([`Error::Camera`] for a device, [`Error::User`] for a closure); the
    /// stream should be treated as ended.
    fn next_frame(&mut self) -> Result<Option<RawFrame>>;

    /// What this source is, for messages and statistics: `webcam:0 (HD Camera) 1280x720 YUYV
    /// @ 30 fps`, `pattern 640x480 @ 60 fps`.
    fn describe(&self) -> String;

    /// The source's name, which its frames carry ([`FrameMeta::name`](crate::FrameMeta::name))
    /// and messages and [`Event::Started`](crate::pipeline::Event::Started) give: by default
    /// [`describe`](Self::describe); a [`FuncGrabber`] gives its
    /// [`named`](FuncGrabber::named) name, without its rate.
    fn name(&self) -> String {
        self.describe()
    }

    /// True when frames come on the source's own schedule whether or not anyone is ready for
    /// them (a camera, a paced pattern): such sources default to the `latest` frame policy;
    /// the others (unpaced pattern, closure) to `lossless`.
    fn paced(&self) -> bool {
        false
    }

    /// When the next frame is due, on the clock its timestamp will be on, for a paced source
    /// that knows (the pattern, a closure with [`with_fps`](FuncGrabber::with_fps)); `None`
    /// otherwise. A run with a time limit ends without waiting for a frame due after it.
    fn next_due(&self) -> Option<Duration> {
        None
    }

    /// The stem of the files a run writes from this source (`STEM_00000.png`, `STEM.gif`);
    /// `None` for the default, `stream`.
    fn stem(&self) -> Option<String> {
        None
    }
}

impl<G: FrameGrabber + ?Sized> FrameGrabber for Box<G> {
    fn next_frame(&mut self) -> Result<Option<RawFrame>> {
        (**self).next_frame()
    }

    fn describe(&self) -> String {
        (**self).describe()
    }

    fn name(&self) -> String {
        (**self).name()
    }

    fn paced(&self) -> bool {
        (**self).paced()
    }

    fn next_due(&self) -> Option<Duration> {
        (**self).next_due()
    }

    fn stem(&self) -> Option<String> {
        (**self).stem()
    }
}

/// Time as live sources see it: a monotonic duration since some origin, and a way to wait.
/// Production code uses [`SystemClock`]; tests use [`ManualClock`] so that nothing sleeps.
pub trait Clock: Send + Sync {
    /// The current time since the clock's origin.
    fn now(&self) -> Duration;
    /// Blocks until `now() >= t` (returns at once when `t` has passed).
    fn sleep_until(&self, t: Duration);
}

/// The real, monotonic clock: `now` is the time since the clock was created.
#[derive(Debug, Clone, Copy)]
pub struct SystemClock {
    origin: Instant,
}

impl SystemClock {
    /// A clock whose origin is now.
    pub fn new() -> Self {
        SystemClock {
            origin: Instant::now(),
        }
    }

    /// The process's one shared system clock, behind an `Arc` as grabbers and pipelines take
    /// it: its origin is the first call's instant, so the frames a grabber stamps and the
    /// pipeline that reads them agree, however long before the run the grabber was built.
    pub fn shared() -> Arc<dyn Clock> {
        static SHARED: std::sync::OnceLock<SystemClock> = std::sync::OnceLock::new();
        Arc::new(*SHARED.get_or_init(SystemClock::new))
    }

    /// The instant this clock's `Duration`s count from (to turn a frame's timestamp into an
    /// [`Instant`]: `origin() + timestamp`).
    pub fn origin(&self) -> Instant {
        self.origin
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        SystemClock::new()
    }
}

impl Clock for SystemClock {
    fn now(&self) -> Duration {
        self.origin.elapsed()
    }

    fn sleep_until(&self, t: Duration) {
        loop {
            let now = self.now();
            if now >= t {
                return;
            }
            std::thread::sleep(t - now);
        }
    }
}

/// A clock for tests: time stands still until told to move. `sleep_until(t)` moves it to
/// `max(now, t)` at once, so a paced source runs at full speed while its timestamps follow the
/// schedule exactly.
#[derive(Debug, Default)]
pub struct ManualClock {
    now: Mutex<Duration>,
}

impl ManualClock {
    /// A clock at zero.
    pub fn new() -> Self {
        ManualClock::default()
    }

    /// A clock at `t`.
    pub fn at(t: Duration) -> Self {
        ManualClock { now: Mutex::new(t) }
    }

    /// Moves the clock forward by `d` (at most to `Duration::MAX`).
    pub fn advance(&self, d: Duration) {
        let mut now = self.now.lock().unwrap_or_else(PoisonError::into_inner);
        *now = now.saturating_add(d);
    }

    /// Sets the clock to `t` if that is later than now (it never goes back).
    pub fn set(&self, t: Duration) {
        let mut now = self.now.lock().unwrap_or_else(PoisonError::into_inner);
        *now = (*now).max(t);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Duration {
        *self.now.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn sleep_until(&self, t: Duration) {
        self.set(t);
    }
}

/// Name used in errors about raw frames (they carry no source name).
const LIVE_FRAME: &str = "live frame";

/// Checks that `data` holds at least `needed` bytes and returns exactly those.
fn take_bytes(
    format: RawFormat,
    mut data: Vec<u8>,
    needed: usize,
    size: (u32, u32),
) -> Result<Vec<u8>> {
    if data.len() < needed {
        return Err(Error::Decode {
            input: LIVE_FRAME.to_string(),
            format: format.name().to_string(),
            reason: format!(
                "{} bytes for a {}×{} frame, which needs {needed}",
                data.len(),
                size.0,
                size.1
            ),
        });
    }
    data.truncate(needed);
    Ok(data)
}

/// Turns a raw frame into the pipeline's RGBA8 frame.
///
/// - RGBA is used as is (`has_alpha` when some alpha is below 255); RGB, BGR and gray are
///   expanded (A = 255).
/// - YUYV and NV12 go through the GPU pass when `gpu` is given, the CPU twin otherwise (same
///   bytes; see [`crate::source::yuv`]).
/// - MJPEG is decoded on the CPU by the `image` crate; the JPEG's own size wins over the
///   frame's announced one.
///
/// # Errors
/// - [`Error::Limits`] for frames larger than [`DecodeLimits::default`] allows.
/// - [`Error::Decode`] (input `live frame`) for a frame without pixels (a side of 0), too
///   few bytes, an odd width for YUYV or NV12, an odd height for NV12, or a JPEG that does
///   not decode.
/// - [`Error::Gpu`] when the GPU conversion fails.
pub fn to_rgba(raw: RawFrame, gpu: Option<&mut YuvConverter>) -> Result<DecodedFrame> {
    to_rgba_within(raw, gpu, &DecodeLimits::default())
}

/// [`to_rgba`] under `limits` (a pipeline's `--max-pixels`) instead of the default ones.
///
/// # Errors
/// As [`to_rgba`], [`Error::Limits`] by `limits`.
pub fn to_rgba_within(
    raw: RawFrame,
    gpu: Option<&mut YuvConverter>,
    limits: &DecodeLimits,
) -> Result<DecodedFrame> {
    let RawFrame {
        width,
        height,
        format,
        data,
        ..
    } = raw;
    if format != RawFormat::Mjpeg {
        limits.check(LIVE_FRAME, u64::from(width), u64::from(height))?;
        if width == 0 || height == 0 {
            return Err(Error::Decode {
                input: LIVE_FRAME.to_string(),
                format: format.name().to_string(),
                reason: format!("a {width}×{height} frame has no pixels"),
            });
        }
    }
    let pixels = width as usize * height as usize;
    let size = (width, height);
    let (width, height, rgba) = match format {
        RawFormat::Rgba => (width, height, take_bytes(format, data, pixels * 4, size)?),
        RawFormat::Rgb => {
            let data = take_bytes(format, data, pixels * 3, size)?;
            (width, height, widen::rgb(&data))
        }
        RawFormat::Bgr => {
            let data = take_bytes(format, data, pixels * 3, size)?;
            (width, height, widen::bgr(&data))
        }
        RawFormat::Gray => {
            let data = take_bytes(format, data, pixels, size)?;
            (width, height, widen::gray(&data))
        }
        RawFormat::Yuyv | RawFormat::Nv12 => {
            let rgba = match (gpu, format) {
                (Some(gpu), _) => gpu.convert(format, width, height, &data)?,
                (None, RawFormat::Yuyv) => yuv::yuyv_to_rgba(width, height, &data)?,
                (None, _) => yuv::nv12_to_rgba(width, height, &data)?,
            };
            (width, height, rgba)
        }
        RawFormat::Mjpeg => decode_mjpeg(&data, limits)?,
    };
    let has_alpha = format == RawFormat::Rgba && rgba.chunks_exact(4).any(|p| p[3] != 255);
    Ok(DecodedFrame {
        width,
        height,
        rgba,
        has_alpha,
        delay: None,
        source: SourceMode::Color,
        plays: None,
        icc_profile: None,
    })
}

/// Decodes one Motion-JPEG frame to RGBA8 with the `image` crate, checking its size against
/// `limits` before decoding pixels.
fn decode_mjpeg(data: &[u8], limits: &DecodeLimits) -> Result<(u32, u32, Vec<u8>)> {
    use image::ImageDecoder;
    // The decoder's reason on one line, as a JPEG file's is.
    let decode_error = |err| match super::file::image_error(LIVE_FRAME, InputFormat::Jpeg, err) {
        Error::Decode { input, reason, .. } => Error::Decode {
            input,
            format: "mjpeg".to_string(),
            reason,
        },
        other => other,
    };
    let decoder =
        image::codecs::jpeg::JpegDecoder::new(std::io::Cursor::new(data)).map_err(decode_error)?;
    let (width, height) = decoder.dimensions();
    limits.check(LIVE_FRAME, u64::from(width), u64::from(height))?;
    let image = image::DynamicImage::from_decoder(decoder).map_err(decode_error)?;
    Ok((width, height, image.into_rgba8().into_raw()))
}

/// Something a user closure or iterator may yield as a frame (see [`FuncGrabber`]).
pub trait IntoRawFrame {
    /// The frame's pixels as a [`RawFrame`] (its timestamp is set by the grabber).
    ///
    /// # Errors
    /// [`Error::User`] when the pixels do not match the stated size, an array's shape is no
    /// frame's (C other than 1, 3 or 4), or an array of floats holds a value outside −1 to 1
    /// or NaN; a [`FuncGrabber`]'s stream fails then.
    fn into_raw_frame(self) -> Result<RawFrame>;
}

impl IntoRawFrame for RawFrame {
    fn into_raw_frame(self) -> Result<RawFrame> {
        Ok(self)
    }
}

impl IntoRawFrame for image::RgbaImage {
    fn into_raw_frame(self) -> Result<RawFrame> {
        Ok(RawFrame {
            width: self.width(),
            height: self.height(),
            format: RawFormat::Rgba,
            data: self.into_raw(),
            timestamp: Duration::ZERO,
        })
    }
}

impl IntoRawFrame for image::RgbImage {
    fn into_raw_frame(self) -> Result<RawFrame> {
        Ok(RawFrame {
            width: self.width(),
            height: self.height(),
            format: RawFormat::Rgb,
            data: self.into_raw(),
            timestamp: Duration::ZERO,
        })
    }
}

impl IntoRawFrame for image::DynamicImage {
    fn into_raw_frame(self) -> Result<RawFrame> {
        self.into_rgba8().into_raw_frame()
    }
}

impl IntoRawFrame for DecodedFrame {
    fn into_raw_frame(self) -> Result<RawFrame> {
        (self.width, self.height, self.rgba).into_raw_frame()
    }
}

/// An array's height and width as a frame's sides, refused past what a `u32` holds.
fn array_sides(height: usize, width: usize) -> Result<(u32, u32)> {
    match (u32::try_from(width), u32::try_from(height)) {
        (Ok(w), Ok(h)) => Ok((w, h)),
        _ => Err(Error::user(format!(
            "a {height}×{width} array is larger than a frame's sides hold"
        ))),
    }
}

/// The raw format of an (H, W, C) array's `channels`.
fn channels_format(shape: &[usize]) -> Result<RawFormat> {
    match shape[2] {
        1 => Ok(RawFormat::Gray),
        3 => Ok(RawFormat::Rgb),
        4 => Ok(RawFormat::Rgba),
        _ => Err(Error::user(format!(
            "an array of shape {shape:?} is no frame: an (H, W, C) array needs C = 1 (gray), \
             3 (RGB) or 4 (RGBA)"
        ))),
    }
}

/// An array's elements in row-major order: its own buffer when it is laid out so, a copy
/// otherwise (a transposed or sliced array).
fn standard_bytes(array: ndarray::Array3<u8>) -> Vec<u8> {
    if array.is_standard_layout() {
        let len = array.len();
        let (mut data, offset) = array.into_raw_vec_and_offset();
        let offset = offset.unwrap_or(0);
        if offset == 0 && data.len() == len {
            return data;
        }
        data.drain(..offset);
        data.truncate(len);
        data
    } else {
        array.iter().copied().collect()
    }
}

/// The frame of an (H, W, C) array of bytes.
fn array_frame(array: ndarray::Array3<u8>) -> Result<RawFrame> {
    let shape = array.shape().to_vec();
    let format = channels_format(&shape)?;
    let (width, height) = array_sides(shape[0], shape[1])?;
    Ok(RawFrame {
        width,
        height,
        format,
        data: standard_bytes(array),
        timestamp: Duration::ZERO,
    })
}

/// An (H, W, C) `u8` array, as a numpy user yields to Gradio: C = 3 is RGB, 4 RGBA (straight
/// alpha), 1 gray. Its buffer is taken as it is when the array is in row-major order, and
/// copied in that order otherwise.
impl IntoRawFrame for ndarray::Array3<u8> {
    fn into_raw_frame(self) -> Result<RawFrame> {
        array_frame(self)
    }
}

/// An (H, W) `u8` array: a gray frame.
impl IntoRawFrame for ndarray::Array2<u8> {
    fn into_raw_frame(self) -> Result<RawFrame> {
        self.insert_axis(ndarray::Axis(2)).into_raw_frame()
    }
}

/// A float sample as Gradio stores an array of floats (scikit-image's conversion, which
/// Gradio copies): ×255 in the array's own precision, rounded half to even, clipped to
/// 0–255; `None` outside −1–1, which Gradio refuses ("Images of type float must be between
/// -1 and 1"), and for NaN, which Gradio lets through to an undefined byte.
trait GradioFloat: Copy + std::fmt::Debug {
    fn to_u8(self) -> Option<u8>;
}

impl GradioFloat for f32 {
    fn to_u8(self) -> Option<u8> {
        (-1.0..=1.0)
            .contains(&self)
            .then(|| (self * 255.0).round_ties_even().clamp(0.0, 255.0) as u8)
    }
}

impl GradioFloat for f64 {
    fn to_u8(self) -> Option<u8> {
        (-1.0..=1.0)
            .contains(&self)
            .then(|| (self * 255.0).round_ties_even().clamp(0.0, 255.0) as u8)
    }
}

/// An array of floats as bytes ([`GradioFloat`]), row-major, or the error naming the first
/// value out of range.
fn float_bytes<F: GradioFloat, D: ndarray::Dimension>(
    array: &ndarray::Array<F, D>,
) -> Result<Vec<u8>> {
    if let Some(bytes) = array.iter().map(|&v| v.to_u8()).collect() {
        return Ok(bytes);
    }
    let bad = array.indexed_iter().find(|(_, v)| v.to_u8().is_none());
    let (at, v) = bad.expect("a value out of range, as collecting found");
    Err(Error::user(format!(
        "{v:?} at {at:?} is out of range: an array of floats holds values from 0 to 1 (×255, \
         as Gradio scales them; −1 to 0 give 0)"
    )))
}

/// An (H, W, C) `f32` array of values from 0 to 1, as Gradio takes one (the `fake_diffusion`
/// demo yields `rng.random((600, 600, 3))`): each value ×255 in `f32`, rounded half to even,
/// negative ones to 0; a value outside −1 to 1 fails the stream, as Gradio refuses it, and so
/// does NaN, which Gradio lets through. C as for a `u8` array.
impl IntoRawFrame for ndarray::Array3<f32> {
    fn into_raw_frame(self) -> Result<RawFrame> {
        float_frame(self)
    }
}

/// As the `f32` array, ×255 in `f64`.
impl IntoRawFrame for ndarray::Array3<f64> {
    fn into_raw_frame(self) -> Result<RawFrame> {
        float_frame(self)
    }
}

/// An (H, W) `f32` array of values from 0 to 1: a gray frame, scaled as the (H, W, C) one.
impl IntoRawFrame for ndarray::Array2<f32> {
    fn into_raw_frame(self) -> Result<RawFrame> {
        float_frame(self)
    }
}

/// As the `f32` array, ×255 in `f64`.
impl IntoRawFrame for ndarray::Array2<f64> {
    fn into_raw_frame(self) -> Result<RawFrame> {
        float_frame(self)
    }
}

/// The frame of an array of floats: its bytes ([`float_bytes`]), as the same array of `u8`.
fn float_frame<F: GradioFloat, D: ndarray::Dimension>(
    array: ndarray::Array<F, D>,
) -> Result<RawFrame>
where
    ndarray::Array<u8, D>: IntoRawFrame,
{
    let bytes = float_bytes(&array)?;
    ndarray::Array::from_shape_vec(array.raw_dim(), bytes)
        .expect("a byte for each value, in row-major order")
        .into_raw_frame()
}

/// `(width, height, rgba)`: RGBA8 pixels, row-major, exactly `width * height * 4` bytes.
impl IntoRawFrame for (u32, u32, Vec<u8>) {
    fn into_raw_frame(self) -> Result<RawFrame> {
        let (width, height, data) = self;
        let needed = width as u64 * height as u64 * 4;
        if data.len() as u64 != needed {
            return Err(Error::user(format!(
                "{} bytes for a {width}×{height} RGBA frame, which needs {needed}",
                data.len()
            )));
        }
        Ok(RawFrame {
            width,
            height,
            format: RawFormat::Rgba,
            data,
            timestamp: Duration::ZERO,
        })
    }
}

type NextFn = Box<dyn FnMut() -> Option<Result<RawFrame>> + Send>;

/// A live source from a user closure or iterator — the library's equivalent of a Gradio
/// generator function feeding an image output.
///
/// The closure is called once per frame from the capture thread; `None` ends the stream.
/// Frames may be anything [`IntoRawFrame`]: `image::RgbaImage`, `RgbImage`, `DynamicImage`,
/// `(width, height, rgba_vec)`, a [`RawFrame`], an `ndarray` array of bytes or of floats from
/// 0 to 1 ((H, W, C) or (H, W), as a numpy user yields them to Gradio). Timestamps come from the grabber's clock
/// (the process-wide [`SystemClock::shared`], which pipelines use by default, unless
/// [`with_clock`](FuncGrabber::with_clock)); with
/// [`with_fps`](FuncGrabber::with_fps) frame `k` is held back until `k / fps` after the first.
///
/// ```
/// use shutter::source::live::{FrameGrabber, FuncGrabber};
///
/// let mut step = 0u8;
/// let mut grabber = FuncGrabber::from_fn(move || {
///     step += 1;
///     (step <= 3).then(|| Ok(image::RgbImage::from_pixel(4, 2, image::Rgb([step * 80, 0, 0]))))
/// });
/// let mut frames = 0;
/// while let Some(frame) = grabber.next_frame()? {
///     assert_eq!((frame.width, frame.height), (4, 2));
///     frames += 1;
/// }
/// assert_eq!(frames, 3);
/// # Ok::<(), shutter::Error>(())
/// ```
pub struct FuncGrabber {
    next: NextFn,
    name: String,
    /// The output stem [`named`](FuncGrabber::named) gives.
    stem: Option<String>,
    clock: Arc<dyn Clock>,
    fps: Option<f64>,
    produced: u64,
    start: Option<Duration>,
    ended: bool,
}

impl std::fmt::Debug for FuncGrabber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FuncGrabber")
            .field("name", &self.name)
            .field("fps", &self.fps)
            .field("produced", &self.produced)
            .finish_non_exhaustive()
    }
}

impl FuncGrabber {
    /// A source calling `f` for each frame: `Some(Ok(frame))` is a frame, `Some(Err(e))` fails
    /// the stream with [`Error::User`] (the message names the source and the frame, then gives
    /// `e`'s; [`Error::user_error`] is `e`), `None` ends it. `e` is a [`BoxError`]: any error
    /// with `.into()` (`Some(Err("why".into()))`). A frame is anything [`IntoRawFrame`]: an
    /// `image` buffer, `(width, height, rgba)`, or an `ndarray` array as a numpy user yields it
    /// to Gradio, bytes or floats from 0 to 1.
    ///
    /// ```
    /// use shutter::source::live::FuncGrabber;
    /// // Gradio's fake_diffusion demo yields `rng.random((600, 600, 3))`, floats from 0 to 1.
    /// let mut step = 0u32;
    /// let grabber = FuncGrabber::from_fn(move || {
    ///     step += 1;
    ///     (step <= 10).then(|| {
    ///         let level = step as f32 / 10.0;
    ///         Ok(ndarray::Array3::from_elem((60, 80, 3), level))
    ///     })
    /// });
    /// # let _ = grabber;
    /// ```
    pub fn from_fn<F, T>(mut f: F) -> Self
    where
        F: FnMut() -> Option<std::result::Result<T, BoxError>> + Send + 'static,
        T: IntoRawFrame,
    {
        let next: NextFn = Box::new(move || {
            Some(match f()? {
                Ok(frame) => frame.into_raw_frame(),
                Err(err) => Err(Error::from_user("", err)),
            })
        });
        FuncGrabber {
            next,
            name: "closure".to_string(),
            stem: None,
            clock: SystemClock::shared(),
            fps: None,
            produced: 0,
            start: None,
            ended: false,
        }
    }

    /// A source yielding the items of `iter`, ending with it.
    pub fn from_frames<I>(iter: I) -> Self
    where
        I: IntoIterator,
        I::Item: IntoRawFrame,
        I::IntoIter: Send + 'static,
    {
        let mut iter = iter.into_iter();
        FuncGrabber::from_fn(move || iter.next().map(Ok))
    }

    /// Names the source in messages (default `closure`) and in the names of the files a run
    /// writes from it (`NAME_00000.png`, `NAME.gif`; default `stream`): the name's last path
    /// component, without an image extension or leading dots, as for [`Source::Bytes`].
    ///
    /// [`Source::Bytes`]: crate::source::Source::Bytes
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self.stem = Some(crate::source::bytes_stem(&self.name));
        self
    }

    /// Stamps (and paces) frames on `clock` instead of [`SystemClock::shared`].
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Paces the stream: frame `k` is returned no earlier than `k / fps` after the first (and
    /// stamped with that time). Rates that are not finite and above 0 leave it unpaced.
    pub fn with_fps(mut self, fps: f64) -> Self {
        self.fps = (fps.is_finite() && fps > 0.0).then_some(fps);
        self
    }

    /// Frames produced so far.
    pub fn produced(&self) -> u64 {
        self.produced
    }
}

impl FrameGrabber for FuncGrabber {
    fn next_frame(&mut self) -> Result<Option<RawFrame>> {
        if self.ended {
            return Ok(None);
        }
        if self.fps.is_some() {
            self.start.get_or_insert_with(|| self.clock.now());
        }
        let due = self.next_due();
        let frame = match (self.next)() {
            None => {
                self.ended = true;
                return Ok(None);
            }
            Some(Err(err)) => {
                self.ended = true;
                return Err(match err {
                    Error::User { message, error } => Error::User {
                        message: format!("{}: frame {}: {message}", self.name, self.produced),
                        error,
                    },
                    other => other,
                });
            }
            Some(Ok(frame)) => frame,
        };
        let timestamp = match due {
            Some(due) => {
                self.clock.sleep_until(due);
                due
            }
            None => self.clock.now(),
        };
        self.produced += 1;
        Ok(Some(RawFrame { timestamp, ..frame }))
    }

    fn stem(&self) -> Option<String> {
        self.stem.clone()
    }

    fn describe(&self) -> String {
        match self.fps {
            Some(fps) => format!("{} @ {fps} fps", self.name),
            None => self.name.clone(),
        }
    }

    fn name(&self) -> String {
        self.name.clone()
    }

    fn paced(&self) -> bool {
        self.fps.is_some()
    }

    fn next_due(&self) -> Option<Duration> {
        let (fps, start) = (self.fps?, self.start?);
        (!self.ended).then(|| due(start, self.produced, fps))
    }
}

/// When frame `k` of a stream paced at `fps` from `start` is due: `start + k / fps`, or
/// [`Duration::MAX`] (never) for a time past what a `Duration` holds (a rate such as 1e-300).
pub(crate) fn due(start: Duration, k: u64, fps: f64) -> Duration {
    Duration::try_from_secs_f64(k as f64 / fps)
        .ok()
        .and_then(|after| start.checked_add(after))
        .unwrap_or(Duration::MAX)
}

/// JPEG quality of the synthetic camera's MJPEG frames (a webcam's typical setting).
pub const SYNTHETIC_JPEG_QUALITY: u8 = 90;

/// A stand-in for a webcam: the moving test pattern ([`crate::source::pattern`]) at a given
/// rate on a clock, delivered in a camera's raw format (YUYV, NV12, MJPEG, or RGB / BGR / gray
/// / RGBA), so the whole webcam path except the device runs in tests.
///
/// Frame `k` shows [`pattern::render`]`(width, height, k)` (see [`SyntheticCamera::picture`]),
/// encoded with the reverse BT.601 formula of [`crate::source::yuv`] or as a quality-90 JPEG;
/// it is due `k / fps` after the first frame, and stamped with that time.
pub struct SyntheticCamera {
    pattern: PatternGrabber,
    format: RawFormat,
    limit: Option<u64>,
    produced: u64,
}

impl std::fmt::Debug for SyntheticCamera {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyntheticCamera")
            .field("format", &self.format)
            .field("pattern", &self.pattern)
            .field("limit", &self.limit)
            .finish_non_exhaustive()
    }
}

impl SyntheticCamera {
    /// A `width` × `height` camera delivering `format` at `fps` frames per second on `clock`.
    ///
    /// # Errors
    /// [`Error::Usage`] for a size or rate the pattern rejects ([`PatternGrabber::new`]);
    /// [`Error::Decode`] for an odd width with YUYV or NV12, or an odd height with NV12.
    pub fn new(
        format: RawFormat,
        width: u32,
        height: u32,
        fps: f64,
        clock: Arc<dyn Clock>,
    ) -> Result<Self> {
        match format {
            RawFormat::Yuyv => {
                yuv::yuyv_len(width, height)?;
            }
            RawFormat::Nv12 => {
                yuv::nv12_len(width, height)?;
            }
            _ => {}
        }
        Ok(SyntheticCamera {
            pattern: PatternGrabber::new(width, height, Some(fps), clock)?,
            format,
            limit: None,
            produced: 0,
        })
    }

    /// Ends the stream (`Ok(None)`) after `frames` frames.
    pub fn with_limit(mut self, frames: u64) -> Self {
        self.limit = Some(frames);
        self
    }

    /// Numbers the frames from `frame` instead of 0.
    pub fn starting_at(mut self, frame: u64) -> Self {
        self.pattern = self.pattern.starting_at(frame);
        self
    }

    /// The RGBA8 picture frame number `frame` shows, before encoding.
    pub fn picture(&self, frame: u64) -> Vec<u8> {
        let (width, height) = self.pattern.size();
        pattern::render(width, height, frame)
    }

    /// The format the frames come in.
    pub fn format(&self) -> RawFormat {
        self.format
    }

    /// Frames produced so far.
    pub fn produced(&self) -> u64 {
        self.produced
    }

    /// Encodes an RGBA picture in `format`.
    fn encode(format: RawFormat, width: u32, height: u32, rgba: Vec<u8>) -> Result<Vec<u8>> {
        let rgb = |order: [usize; 3]| -> Vec<u8> {
            rgba.chunks_exact(4)
                .flat_map(|p| order.map(|c| p[c]))
                .collect()
        };
        Ok(match format {
            RawFormat::Rgba => rgba,
            RawFormat::Rgb => rgb([0, 1, 2]),
            RawFormat::Bgr => rgb([2, 1, 0]),
            RawFormat::Gray => rgba
                .chunks_exact(4)
                .map(|p| {
                    let luma =
                        299 * u32::from(p[0]) + 587 * u32::from(p[1]) + 114 * u32::from(p[2]);
                    ((luma + 500) / 1000) as u8
                })
                .collect(),
            RawFormat::Yuyv => yuv::rgba_to_yuyv(width, height, &rgba)?,
            RawFormat::Nv12 => yuv::rgba_to_nv12(width, height, &rgba)?,
            RawFormat::Mjpeg => {
                let mut jpeg = Vec::new();
                image::codecs::jpeg::JpegEncoder::new_with_quality(
                    &mut jpeg,
                    SYNTHETIC_JPEG_QUALITY,
                )
                .encode(
                    &rgb([0, 1, 2]),
                    width,
                    height,
                    image::ExtendedColorType::Rgb8,
                )
                .map_err(|err| Error::Encode {
                    output: "synthetic camera".to_string(),
                    format: "jpeg".to_string(),
                    reason: err.to_string(),
                })?;
                jpeg
            }
        })
    }
}

impl FrameGrabber for SyntheticCamera {
    fn next_frame(&mut self) -> Result<Option<RawFrame>> {
        if self.limit.is_some_and(|limit| self.produced >= limit) {
            return Ok(None);
        }
        let (k, timestamp) = self.pattern.advance();
        let (width, height) = self.pattern.size();
        let data = Self::encode(
            self.format,
            width,
            height,
            pattern::render(width, height, k),
        )?;
        self.produced += 1;
        Ok(Some(RawFrame {
            width,
            height,
            format: self.format,
            data,
            timestamp,
        }))
    }

    fn describe(&self) -> String {
        let (width, height) = self.pattern.size();
        let fps = self.pattern.fps().unwrap_or_default();
        format!(
            "synthetic camera {width}x{height} {} @ {fps} fps",
            self.format
        )
    }

    fn paced(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shared_system_clock_counts_from_one_origin() {
        let first = SystemClock::shared();
        // Spin (no sleep) until the first clock has moved past 1 ms.
        let early = loop {
            let t = first.now();
            if t > Duration::from_millis(1) {
                break t;
            }
        };
        // A clock taken later (as a pipeline takes one after its grabber was built) reads at
        // least as late: a clock of its own would start again from 0.
        let later = SystemClock::shared();
        assert!(later.now() >= early);
    }
}

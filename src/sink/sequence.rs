//! Writing an animation or a stream into one file frame by frame, as the frames come: a GIF,
//! an animated WebP, or a stacked npy array whose length is known only at the end.
//!
//! A stream written as one file is never held in memory: each frame is encoded (a GIF frame
//! quantised, an npy frame's samples written) when it arrives, so a long webcam recording
//! costs a few frames of memory (those queued for the writer), not one per frame, and the
//! file is ready soon after the last frame. Two things are known only later, and are settled then:
//! - a GIF or WebP frame's delay, when a stream's frames carry none, is the time until the
//!   next frame was captured: each quantised or encoded frame waits for the next one (or the
//!   end) before it is written;
//! - a WebP's container size and alpha flag: rewritten at the end;
//! - an npy array's first dimension, the number of frames: the header is written with room for
//!   any count and rewritten with the count at the end.
//!
//! A GIF or WebP frame after the first holds only the rectangle of pixels that changed since
//! the frame before, drawn over it (as Pillow's GIF and libwebp's animation encoder store
//! them): where a background stands still, the file is several times smaller and faster to
//! make. Where pixels turn transparent, a GIF frame cannot draw them over the one before: that
//! one is disposed of to the background in the part around them (see `plan`). The writer keeps
//! the last frame to compare the next one with.
//!
//! Writing a frame is three steps, so that frames can be encoded side by side and still be
//! written in order: `SequenceWriter::take` checks it and settles the part of the canvas it is
//! written as (cheap, in order: each frame is compared with the one taken before it);
//! `Taken::encode` quantises or encodes that part (the costly step, on any thread, and for a
//! GIF the LZW code too); `SequenceWriter::put` writes it (in order: a GIF or WebP frame's
//! delay is settled by the next one). `Encoders` runs the middle step on threads of their own:
//! a writer takes each frame as it comes and puts it as soon as it and those before it are
//! encoded ([`SequenceWriter::push_all`], [`encode`](super::encode::encode), and the pipeline's
//! writer of a stream, whose frames come one by one).

use std::borrow::{Borrow, Cow};
use std::collections::VecDeque;
use std::io::{Seek, SeekFrom, Write};
use std::sync::Arc;
use std::time::Duration;

use super::encode::{
    DEFAULT_GIF_DELAY, Format, MIN_GIF_DELAY, check_pixels, checked_output, fitting_profile,
    gif_speed, keyed_rgba, one_line, output_image, palette_rgba, still, to_rgba, transparency_key,
};
use super::npy;
use crate::error::Error;
use crate::frame::{Frame, Plays};
use crate::mode::{ImageMode, ModeData, ModeImage};

/// Writes the frames of one animation or stream, one [`push`](Self::push) at a time, into one
/// GIF, animated WebP or npy file on `W` (a file, or a `Cursor<Vec<u8>>`).
///
/// The result is the file [`encode`](super::encode::encode) makes of the same frames: a GIF
/// or WebP animation with each frame's delay and the first frame's play count (a still for
/// one frame), or an (N, …) npy array.
///
/// A frame shows for its [`meta.delay`](crate::FrameMeta::delay) (an animation's own); one
/// without (a stream's) shows until the next frame's
/// [`meta.timestamp`](crate::FrameMeta::timestamp), at least 20 ms, and the last one as long
/// as the one before it. Frames made by hand with [`FrameMeta::still`](crate::FrameMeta::still)
/// are all stamped 0: give them a delay (or timestamps), or they play at 20 ms each.
///
/// ```
/// use std::time::Duration;
/// use shutter::sink::sequence::SequenceWriter;
/// use shutter::{Format, Frame, FrameMeta};
///
/// let mut writer = SequenceWriter::new(Format::Gif, std::io::Cursor::new(Vec::new()))?;
/// for k in 0..3u8 {
///     let mut meta = FrameMeta::still(u64::from(k), 0);
///     meta.delay = Some(Duration::from_millis(100));
///     let rgba = [k * 80, 40, 200, 255].repeat(8 * 6);
///     writer.push(&Frame::new(8, 6, rgba, false, meta))?;
/// }
/// let gif: Vec<u8> = writer.finish()?.into_inner();
/// assert_eq!(&gif[..6], b"GIF89a");
/// # Ok::<(), shutter::Error>(())
/// ```
pub struct SequenceWriter<W: Write + Seek> {
    format: Format,
    state: State<W>,
    /// Size and mode of the first frame, which every later one must share.
    first: Option<(u32, u32, ImageMode)>,
    /// Frames written so far ([`put`](Self::put)).
    count: usize,
    /// Frames taken so far ([`take`](Self::take)): written, or being encoded.
    taken: usize,
    /// A GIF's or WebP's last frame taken: what the canvas shows when the next frame comes,
    /// which that frame then changes only in part.
    before: Option<Before>,
}

/// What an encoding thread gives back: the frame taken, encoded, or the panic that stopped it.
pub(crate) type Encoding<F> = (Taken<F>, std::thread::Result<Result<Encoded, String>>);

/// Frames taken into a sequence ([`SequenceWriter::take`]), encoded on threads of their own
/// ([`Taken::encode`]), each as soon as a thread is free, and given back in the order taken
/// ([`ready`](Self::ready)) to be put. At most one frame more than the threads is taken and
/// not yet given back ([`has_room`](Self::has_room)), so that a frame slower than the next
/// ones leaves no thread idle.
pub(crate) struct Encoders<F> {
    work: crossbeam_channel::Sender<Taken<F>>,
    done: crossbeam_channel::Receiver<Encoding<F>>,
    /// Keeps `done` open while no thread holds it (no threads: npy, or encoding here).
    _done: crossbeam_channel::Sender<Encoding<F>>,
    /// The frames taken and not yet given back, from the oldest: `None` while encoding.
    window: VecDeque<Option<Encoding<F>>>,
    /// The index in the sequence of the window's oldest frame.
    oldest: usize,
    threads: usize,
    format: Format,
}

impl<F: Borrow<Frame> + Send> Encoders<F> {
    /// Starts `threads` encoding threads in `scope`; none for an npy, whose samples are written
    /// as they are, and with none, frames are encoded on the caller's thread.
    pub(crate) fn start<'scope>(
        scope: &'scope std::thread::Scope<'scope, '_>,
        format: Format,
        threads: usize,
    ) -> Self
    where
        F: 'scope,
    {
        let threads = if format == Format::Npy { 0 } else { threads };
        #[cfg(test)]
        THREADS_STARTED.with(|started| started.set(Some(threads)));
        let (work, work_rx) = crossbeam_channel::bounded::<Taken<F>>(threads.max(1));
        let (done_tx, done) = crossbeam_channel::unbounded::<Encoding<F>>();
        for _ in 0..threads {
            let (work_rx, done_tx) = (work_rx.clone(), done_tx.clone());
            scope.spawn(move || {
                for taken in work_rx {
                    let encoded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        taken.encode(&format)
                    }));
                    if done_tx.send((taken, encoded)).is_err() {
                        return;
                    }
                }
            });
        }
        Encoders {
            work,
            done,
            _done: done_tx,
            window: VecDeque::new(),
            oldest: 0,
            threads,
            format,
        }
    }

    /// Whether another frame may be taken now.
    pub(crate) fn has_room(&self) -> bool {
        self.window.len() <= self.threads
    }

    /// Whether every frame taken was given back.
    pub(crate) fn is_empty(&self) -> bool {
        self.window.is_empty()
    }

    /// Encodes `taken`, the frame after those taken before it: on a thread, or here when there
    /// are none or it costs nothing (an npy frame).
    pub(crate) fn encode(&mut self, taken: Taken<F>) -> Result<(), String> {
        if self.window.is_empty() {
            self.oldest = taken.k;
        }
        if self.threads == 0 || !taken.costly() {
            let encoded = Ok(taken.encode(&self.format));
            self.window.push_back(Some((taken, encoded)));
            return Ok(());
        }
        self.window.push_back(None);
        self.work.send(taken).map_err(|_| stopped())
    }

    /// Where the threads give frames back, to wait on with other channels: give what comes to
    /// [`arrived`](Self::arrived).
    pub(crate) fn finished(&self) -> &crossbeam_channel::Receiver<Encoding<F>> {
        &self.done
    }

    /// Takes a frame a thread gave back, as [`finished`](Self::finished) received it.
    pub(crate) fn arrived(
        &mut self,
        encoding: Result<Encoding<F>, crossbeam_channel::RecvError>,
    ) -> Result<(), String> {
        let encoding = encoding.map_err(|_| stopped())?;
        let slot = encoding
            .0
            .k
            .checked_sub(self.oldest)
            .and_then(|place| self.window.get_mut(place))
            .ok_or_else(stopped)?;
        *slot = Some(encoding);
        Ok(())
    }

    /// Waits for a thread to give a frame back.
    pub(crate) fn wait(&mut self) -> Result<(), String> {
        let encoding = self.done.recv();
        self.arrived(encoding)
    }

    /// The oldest frame taken, once it is encoded (a panic while encoding it goes on here).
    pub(crate) fn ready(&mut self) -> Option<(Taken<F>, Result<Encoded, String>)> {
        if !matches!(self.window.front(), Some(Some(_))) {
            return None;
        }
        let (taken, encoded) = self.window.pop_front().flatten()?;
        self.oldest += 1;
        Some((
            taken,
            encoded.unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
        ))
    }
}

#[cfg(test)]
thread_local! {
    /// The encoding threads the last `Encoders` started on this thread.
    static THREADS_STARTED: std::cell::Cell<Option<usize>> = const { std::cell::Cell::new(None) };
}

/// The encoding threads for `frames` frames given at once ([`SequenceWriter::push_all`],
/// [`encode`](super::encode::encode)): none for one (it is encoded on the caller's thread),
/// else the pipeline's default, a thread a core (at most 8), and no more than the frames.
pub(crate) fn encoding_threads(frames: usize) -> usize {
    match frames {
        0 | 1 => 0,
        n => crate::pipeline::default_threads().min(n),
    }
}

/// Why encoding threads gave nothing back.
fn stopped() -> String {
    "the encoding threads stopped".to_string()
}

/// A GIF's or WebP's frame as the next one sees it.
struct Before {
    image: Arc<ModeImage>,
    /// Its transparency colour.
    key: Option<Vec<u8>>,
    /// The part of the canvas it is written as.
    written: Rect,
}

/// A frame taken into a sequence (`SequenceWriter::take`): checked, its part of the canvas
/// settled. [`encode`](Self::encode) it (anywhere), then [`put`](SequenceWriter::put) it.
pub(crate) struct Taken<F> {
    frame: F,
    /// Its index in the sequence.
    k: usize,
    part: Part,
}

/// What a frame taken is encoded as.
enum Part {
    /// A GIF frame (`image`, with its transparency colour `key`) drawn `draw`; `over`: the
    /// frame before, when the pixels that did not change since it become transparent runs
    /// ([`quantise_over`]); `grown`: the frame before, when `draw` clears more than the part
    /// it is written as.
    Gif {
        image: Arc<ModeImage>,
        key: Option<Vec<u8>>,
        draw: Draw,
        over: Option<Arc<ModeImage>>,
        grown: Option<Grown>,
        /// A transparent index even when no pixel is transparent (see [`quantise`]).
        slot: bool,
    },
    /// A WebP frame: the part `rect` of the image, as a still.
    Webp(Arc<ModeImage>, Rect),
    /// An npy frame: the image taken out of the frame, else the frame's own.
    Npy(Option<ModeImage>),
}

/// The GIF frame before a frame taken, written instead as its part `rect` (a larger one, which
/// the frame taken clears: disposing of a part clears only the part). Any larger part of a frame
/// draws the same canvas: outside its own part, the frame equals the canvas under it,
/// transparent where it is transparent.
struct Grown {
    image: Arc<ModeImage>,
    key: Option<Vec<u8>>,
    rect: Rect,
    /// Its index in the sequence.
    k: usize,
}

/// What a GIF frame's buffer holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GifBuffer {
    /// Its indices.
    Indices,
    /// Their LZW code ([`gif::Frame::make_lzw_pre_encoded`]), as the file holds it.
    Coded,
}

/// A GIF frame, quantised.
type GifFrame = (gif::Frame<'static>, GifBuffer);

/// GIF frame `k` with its indices LZW-coded here (on the thread that quantised it, not the
/// writer's), but for the first frame's, which may still change when it is written (see
/// `break_gray_ramp`).
fn coded((mut frame, buffer): GifFrame, k: usize) -> GifFrame {
    if k == 0 || buffer == GifBuffer::Coded {
        return (frame, buffer);
    }
    frame.buffer = Cow::Owned(lzw(&frame.buffer));
    (frame, GifBuffer::Coded)
}

/// A frame taken, encoded ([`Taken::encode`]).
pub(crate) enum Encoded {
    /// A GIF frame (its indices LZW-coded, but for the first frame's), and the frame before
    /// it grown ([`Grown`]).
    Gif(GifFrame, Option<GifFrame>),
    /// A still WebP file of the frame's part.
    Webp(Vec<u8>),
    /// Nothing: an npy frame's samples are written as they are.
    Npy,
}

impl<F: Borrow<Frame>> Taken<F> {
    /// Whether [`encode`](Self::encode) has work to do (elsewhere than the writer's thread).
    pub(crate) fn costly(&self) -> bool {
        !matches!(self.part, Part::Npy(_))
    }

    /// The frame quantised (GIF) or encoded (WebP): the costly part of writing it, which
    /// needs nothing of the writer.
    ///
    /// # Errors
    /// A one-line reason: the frame is beyond what the format holds, or its encoder failed.
    pub(crate) fn encode(&self, format: &Format) -> Result<Encoded, String> {
        match &self.part {
            Part::Gif {
                image,
                key,
                draw,
                over,
                grown,
                slot,
            } => {
                let quantised = match (draw, over) {
                    (Draw::Over(rect), Some(before)) => {
                        quantise_over(image, key.as_deref(), *rect, before, *slot)?
                    }
                    _ => (
                        quantise_rect(image, key.as_deref(), draw.rect(), *slot)?,
                        GifBuffer::Indices,
                    ),
                };
                let grown = match grown {
                    Some(g) => {
                        let quantised = quantise_rect(&g.image, g.key.as_deref(), g.rect, true)?;
                        Some(coded((quantised, GifBuffer::Indices), g.k))
                    }
                    None => None,
                };
                Ok(Encoded::Gif(coded(quantised, self.k), grown))
            }
            Part::Webp(image, rect) => {
                let frame = self.frame.borrow();
                if *rect == Rect::whole(image.width, image.height) {
                    return still(format, frame, image).map(Encoded::Webp);
                }
                let part = crop(image, *rect).ok_or("a webp frame cannot be cut")?;
                still(format, frame, &part).map(Encoded::Webp)
            }
            Part::Npy(_) => Ok(Encoded::Npy),
        }
    }
}

impl<W: Write + Seek> std::fmt::Debug for SequenceWriter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SequenceWriter")
            .field("format", &self.format)
            .field("frames", &self.count)
            .field("broken", &matches!(self.state, State::Broken))
            .finish()
    }
}

enum State<W: Write + Seek> {
    Gif(GifState<W>),
    Webp(WebpState<W>),
    Npy(NpyState<W>),
    /// A write failed: the file is not finished.
    Broken,
}

/// A GIF in the making.
struct GifState<W: Write> {
    /// The writer until the first frame is written, then the encoder around it. The encoder
    /// starts with the first frame's write, when it is known whether there is a second frame
    /// (one frame makes a still, without a loop count).
    out: GifOut<W>,
    /// The last frame taken, quantised, waiting for the next one to know its delay.
    held: Option<HeldFrame>,
    /// The first frame's play count.
    plays: Option<Plays>,
    /// The delays of the frames before the held one.
    timing: Timing,
    /// The global colour table: the first frame's palette.
    global: Vec<u8>,
}

/// The display times of a sequence's frames, each settled when the frame after it comes.
#[derive(Default)]
struct Timing {
    /// The delay given to the frame before, and whether it was that frame's own (a stream's
    /// last frame keeps the one before it, when that one was computed).
    previous: Option<(Duration, bool)>,
    /// The delays summed so far (a stream's; a WebP's own ones too), and the units written
    /// for them.
    stream_time: Duration,
    stream_written: u128,
}

impl Timing {
    /// How many `unit`s (10 ms in a GIF, 1 ms in a WebP) the frame captured at `at` shows,
    /// `own` being its own delay and `next` the capture time of the frame after it (`None`
    /// at the end).
    ///
    /// The delay: the frame's own (an animation's frames); else the time until the next frame
    /// was captured, at least [`MIN_GIF_DELAY`]; else, for a stream's last frame, the one
    /// before it; else [`DEFAULT_GIF_DELAY`]. A stream's delays are rounded so that their sum
    /// stays the time captured (at 15 fps a GIF's alternate 60 and 70 ms, not 60 every time,
    /// 10% fast). Own delays are rounded the same way with `keep_sum` (as Pillow's WebP
    /// writer places each frame at its rounded start time: 33.3 ms three times is 33, 34,
    /// 33), else cut to whole units (as Pillow's GIF writer cuts them).
    fn units(
        &mut self,
        own: Option<Duration>,
        at: Duration,
        next: Option<Duration>,
        (unit, keep_sum): (Duration, bool),
    ) -> u128 {
        let until_next = next.map(|t| t.saturating_sub(at).max(MIN_GIF_DELAY));
        let delay = own
            .or(until_next)
            .or_else(|| {
                self.previous
                    .and_then(|(delay, own)| (!own).then_some(delay))
            })
            .unwrap_or(DEFAULT_GIF_DELAY);
        self.previous = Some((delay, own.is_some()));
        let unit = unit.as_micros().max(1);
        match own {
            Some(own) if !keep_sum => own.as_micros() / unit,
            _ => {
                self.stream_time += delay;
                let end = (self.stream_time.as_micros() + unit / 2) / unit;
                let units = end - self.stream_written;
                self.stream_written = end;
                units
            }
        }
    }
}

enum GifOut<W: Write> {
    Waiting(W),
    Writing(gif::Encoder<W>),
    Taken,
}

struct HeldFrame {
    frame: gif::Frame<'static>,
    buffer: GifBuffer,
    timestamp: Duration,
    delay: Option<Duration>,
}

/// A stacked npy array in the making.
struct NpyState<W: Write + Seek> {
    out: W,
    descr: &'static str,
    /// One frame's shape.
    frame_shape: Vec<usize>,
    /// The bytes the header takes: enough for any frame count.
    header_len: usize,
    /// Samples converted before writing (`1` as bool bytes, I and F as little-endian).
    scratch: Vec<u8>,
}

impl<W: Write + Seek> SequenceWriter<W> {
    /// A writer of `format` (gif, webp or npy) onto `out`.
    ///
    /// # Errors
    /// [`Error::Usage`] when `format` holds one frame, or has settings [`Format::check`]
    /// refuses (a lossy WebP quality past 100 or NaN).
    pub fn new(format: Format, out: W) -> Result<Self, Error> {
        format.check()?;
        let state = match format {
            Format::Gif => State::Gif(GifState {
                out: GifOut::Waiting(out),
                held: None,
                plays: None,
                timing: Timing::default(),
                global: Vec::new(),
            }),
            Format::Webp { .. } => State::Webp(WebpState {
                out,
                format,
                held: None,
                plays: None,
                timing: Timing::default(),
                header: None,
                written: 0,
                alpha: false,
            }),
            Format::Npy => State::Npy(NpyState {
                out,
                descr: "",
                frame_shape: Vec::new(),
                header_len: 0,
                scratch: Vec::new(),
            }),
            other => {
                return Err(Error::Usage(format!(
                    "{} holds one frame: a sequence needs gif, webp or npy",
                    other.extension()
                )));
            }
        };
        Ok(SequenceWriter {
            format,
            state,
            first: None,
            count: 0,
            taken: 0,
            before: None,
        })
    }

    /// Frames written so far: every frame pushed, up to the first refused.
    pub fn frames(&self) -> usize {
        self.count
    }

    /// Encodes `frame` into the file.
    ///
    /// # Errors
    /// [`Error::Encode`] naming the frame (`frame 3`: its index in the sequence) and the
    /// reason: its buffer does not fill its size (naming the bytes given and needed), it has
    /// no pixels (0×0, 0×5: only npy holds them), its size or mode differs from the first
    /// frame's (a GIF animation's frame, one with a `meta.delay`, larger on both sides is cut
    /// to the first frame's size instead, as Pillow writes a GIF whose canvas grows), the
    /// format cannot hold its mode, it is beyond what the format holds (GIF
    /// sides past 65535, WebP past 16383), or a write failed (the writer is then unusable).
    pub fn push(&mut self, frame: &Frame) -> Result<(), Error> {
        self.push_all(&[frame])
    }

    /// Encodes `frames`, in order, into the file: GIF frames are quantised, WebP frames
    /// encoded, side by side on a thread a core (at most 8, as [`encode`](super::encode::encode)
    /// does), each as soon as a thread is free, then written one after the other. The file is
    /// the one the frames pushed one by one make.
    ///
    /// # Errors
    /// As [`push`](Self::push), for the first frame that fails; the frames before it are in
    /// the file.
    pub fn push_all(&mut self, frames: &[&Frame]) -> Result<(), Error> {
        let threads = encoding_threads(frames.len());
        self.push_until(frames.iter().copied(), threads, &|| false)
    }

    /// Encodes `frames`, in order, on up to `threads` threads (none: on this one), each frame
    /// as soon as a thread is free, and writes each as soon as it and those before it are
    /// encoded; stops before a frame after the first when `stop` says so.
    ///
    /// # Errors
    /// As [`push_all`](Self::push_all).
    pub(crate) fn push_until<'f>(
        &mut self,
        frames: impl IntoIterator<Item = &'f Frame>,
        threads: usize,
        stop: &dyn Fn() -> bool,
    ) -> Result<(), Error> {
        let format = self.format;
        std::thread::scope(|scope| {
            let mut encoders = Encoders::start(scope, format, threads);
            let mut frames = frames.into_iter();
            let (mut more, mut first) = (true, true);
            let mut refused = None;
            loop {
                while let Some((taken, encoded)) = encoders.ready() {
                    self.put(taken, encoded)?;
                }
                if encoders.is_empty() && (!more || refused.is_some()) {
                    return refused.map_or(Ok(()), Err);
                }
                if more && refused.is_none() && encoders.has_room() {
                    let next = frames.next().filter(|_| first || !stop());
                    first = false;
                    let Some(frame) = next else {
                        more = false;
                        continue;
                    };
                    match self.take(frame, None) {
                        Ok(taken) => {
                            let k = taken.k;
                            encoders
                                .encode(taken)
                                .map_err(|reason| self.error(k, reason))?;
                        }
                        Err(error) => refused = Some(error),
                    }
                } else {
                    let count = self.count;
                    encoders
                        .wait()
                        .map_err(|reason| self.error(count, reason))?;
                }
            }
        })
    }

    /// Takes `frame` as the sequence's next one (`image`: its output image, when the caller
    /// has taken it out of the frame, else the frame's own): checks it, and settles the part
    /// of the canvas it is written as. Its encoding ([`Taken::encode`]) may then run on any
    /// thread, beside later frames' (taken after it, each compared with the one before);
    /// [`put`](Self::put) writes the frames in the order they were taken.
    ///
    /// # Errors
    /// As [`push`](Self::push). The frame is not taken; the frames taken before it still are.
    pub(crate) fn take<F: Borrow<Frame>>(
        &mut self,
        frame: F,
        image: Option<ModeImage>,
    ) -> Result<Taken<F>, Error> {
        let k = self.taken;
        let part = self
            .settle(frame.borrow(), image)
            .map_err(|reason| self.error(k, reason))?;
        self.taken += 1;
        Ok(Taken { frame, k, part })
    }

    /// [`take`](Self::take) of frame `self.taken`, its error a one-line reason.
    fn settle(&mut self, frame: &Frame, image: Option<ModeImage>) -> Result<Part, String> {
        if matches!(self.state, State::Broken) {
            return Err("an earlier write failed".to_string());
        }
        let mut image = match image {
            Some(image) => Cow::Owned(image),
            None => checked_output(frame, self.taken)?,
        };
        // A GIF frame placed past its logical screen grows the frames after it (as in
        // Pillow); Pillow's GIF of them keeps the first frame's size, as this does. A
        // stream's frames (no delay of their own) that change size are refused, and so
        // are a WebP's (Pillow refuses them too: its pixels would be cut without a word).
        if self.format == Format::Gif
            && frame.meta.delay.is_some()
            && let Some((w, h, mode)) = self.first
            && image.mode == mode
            && image.width >= w
            && image.height >= h
            && (image.width, image.height) != (w, h)
            && let Some(cropped) = crop(&image, Rect::whole(w, h))
        {
            image = Cow::Owned(cropped);
        }
        self.check(&image, self.taken)?;
        let key = transparency_key(frame, &image, &self.format);
        if matches!(self.state, State::Npy(_)) {
            return Ok(Part::Npy(match image {
                Cow::Owned(image) => Some(image),
                Cow::Borrowed(_) => None,
            }));
        }
        let image = Arc::new(image.into_owned());
        // A frame after the first holds only what changed since the one before (with the
        // same transparency colour: else the canvas shows other pixels).
        let before = self.before.as_ref();
        let alike = before.filter(|before| before.key == key);
        let rect = changed(alike.map(|before| &*before.image), &image);
        let whole = Rect::whole(image.width, image.height);
        let (part, written) = if self.format == Format::Gif {
            // An animation's frames that may be transparent keep a transparent index.
            let slot = (matches!(image.mode, ImageMode::Rgba | ImageMode::P) || key.is_some())
                && (frame.meta.delay.is_some() || frame.meta.sequence);
            let draw = plan(
                &image,
                key.as_deref(),
                rect,
                before.map(|before| (&*before.image, before.key.as_deref(), before.written)),
            );
            let over = match draw {
                Draw::Over(_) if rect.is_some() => alike.map(|before| Arc::clone(&before.image)),
                _ => None,
            };
            let grown = match draw {
                Draw::Cleared { before: rect, .. } => before
                    .filter(|before| before.written != rect)
                    .map(|before| Grown {
                        image: Arc::clone(&before.image),
                        key: before.key.clone(),
                        rect,
                        k: self.taken - 1,
                    }),
                Draw::Over(_) => None,
            };
            let part = Part::Gif {
                image: Arc::clone(&image),
                key: key.clone(),
                draw,
                over,
                grown,
                slot,
            };
            (part, draw.rect())
        } else {
            let rect = rect.unwrap_or(whole);
            (Part::Webp(Arc::clone(&image), rect), rect)
        };
        self.before = Some(Before {
            image,
            key,
            written,
        });
        Ok(part)
    }

    /// Writes frame `taken`, `encoded` by [`Taken::encode`]; the frames taken before it must
    /// have been put. Gives the frame back.
    ///
    /// # Errors
    /// As [`push`](Self::push), for a frame that could not be encoded or written: the writer
    /// is then unusable.
    pub(crate) fn put<F: Borrow<Frame>>(
        &mut self,
        taken: Taken<F>,
        encoded: Result<Encoded, String>,
    ) -> Result<F, Error> {
        let k = taken.k;
        let result = if k == self.count {
            encoded.and_then(|encoded| self.write(taken, encoded))
        } else {
            Err(format!("frame {k} was put after frame {}", self.count))
        };
        match result {
            Ok(frame) => {
                self.count += 1;
                Ok(frame)
            }
            Err(reason) => {
                self.state = State::Broken;
                Err(self.error(k, reason))
            }
        }
    }

    /// [`put`](Self::put), its error a one-line reason.
    fn write<F: Borrow<Frame>>(&mut self, taken: Taken<F>, encoded: Encoded) -> Result<F, String> {
        let (frame, k) = (taken.frame.borrow(), taken.k);
        let written = match (&mut self.state, taken.part, encoded) {
            (State::Gif(gif), Part::Gif { draw, .. }, Encoded::Gif(quantised, grown)) => {
                // The frame before, grown to hold what this one clears.
                if let Some(grown) = grown {
                    let held = gif.held.as_mut().ok_or("a GIF frame grew no frame")?;
                    held.redraw(grown);
                }
                gif.push(frame, quantised, matches!(draw, Draw::Over(_)), k)
            }
            (State::Webp(webp), Part::Webp(image, rect), Encoded::Webp(file)) => {
                webp.push(frame, (rect, image.mode), file, k)
            }
            (State::Npy(npy), Part::Npy(image), Encoded::Npy) => match image {
                Some(image) => npy.push(&image, k),
                None => npy.push(&output_image(frame), k),
            },
            (State::Broken, ..) => Err("an earlier write failed".to_string()),
            _ => Err("a frame was encoded for another format".to_string()),
        };
        written.map(|()| taken.frame)
    }

    /// The error of frame `k`: `reason`.
    fn error(&self, k: usize, reason: String) -> Error {
        Error::Encode {
            output: format!("frame {k}"),
            format: self.format.extension().to_string(),
            reason,
        }
    }

    /// Refuses image `k` unless it has the first frame's size and mode (the first one: a mode
    /// the format holds), samples that fill them, and pixels (but in an npy).
    fn check(&mut self, image: &ModeImage, k: usize) -> Result<(), String> {
        check_values(image, k)?;
        check_pixels(&self.format, image, k)?;
        match self.first {
            None => {
                self.format.holds_or_why(image.mode)?;
                self.first = Some((image.width, image.height, image.mode));
            }
            Some((w, h, mode)) if (image.width, image.height, image.mode) != (w, h, mode) => {
                return Err(format!(
                    "all frames must share one size and mode: frame 0 is {w}×{h} {mode}, frame {k} is {}×{} {}",
                    image.width, image.height, image.mode
                ));
            }
            Some(_) => {}
        }
        Ok(())
    }

    /// Ends the file: writes the last GIF frame and the trailer, or the npy header with the
    /// frame count. Returns the writer.
    ///
    /// # Errors
    /// [`Error::Encode`] (naming `no frames`, or the frames taken: `3 frames`) when no frame
    /// was taken or a write failed.
    pub fn finish(self) -> Result<W, Error> {
        let output = match self.count {
            0 => "no frames".to_string(),
            1 => "1 frame".to_string(),
            n => format!("{n} frames"),
        };
        let format = self.format.extension().to_string();
        self.close().map_err(|reason| Error::Encode {
            output,
            format,
            reason,
        })
    }

    /// [`finish`](Self::finish), its error a one-line reason.
    fn close(self) -> Result<W, String> {
        if self.count == 0 {
            return Err("no frames to encode".to_string());
        }
        match self.state {
            State::Gif(mut gif) => {
                gif.write_held(None, self.count)?;
                match std::mem::replace(&mut gif.out, GifOut::Taken) {
                    GifOut::Writing(encoder) => encoder.into_inner().map_err(|e| one_line(&e)),
                    GifOut::Waiting(_) | GifOut::Taken => {
                        Err("the GIF encoder never started".to_string())
                    }
                }
            }
            State::Webp(webp) => webp.finish(self.count),
            State::Npy(mut npy) => {
                let mut shape = vec![self.count];
                shape.extend_from_slice(&npy.frame_shape);
                let header = npy::header_at_least(npy.descr, &shape, npy.header_len)?;
                if header.len() != npy.header_len {
                    return Err(format!(
                        "npy header of {} bytes does not fit the {} reserved",
                        header.len(),
                        npy.header_len
                    ));
                }
                let io = |e: std::io::Error| one_line(&e);
                npy.out.seek(SeekFrom::Start(0)).map_err(io)?;
                npy.out.write_all(&header).map_err(io)?;
                npy.out.seek(SeekFrom::End(0)).map_err(io)?;
                npy.out.flush().map_err(io)?;
                Ok(npy.out)
            }
            State::Broken => Err("an earlier write failed".to_string()),
        }
    }
}

/// Refuses an image whose samples do not fill its size and mode.
pub(super) fn check_values(image: &ModeImage, k: usize) -> Result<(), String> {
    image
        .check_len()
        .map_err(|why| format!("frame {k} has {why}"))
}

/// The top left `width` × `height` of an image of 8-bit samples (its palette kept).
fn crop(image: &ModeImage, rect: Rect) -> Option<ModeImage> {
    let ModeData::U8(data) = &image.data else {
        return None;
    };
    let bands = image.mode.bands();
    let row = image.width as usize * bands;
    let keep = rect.x as usize * bands..(rect.x + rect.width) as usize * bands;
    let data = data
        .chunks_exact(row)
        .skip(rect.y as usize)
        .take(rect.height as usize)
        .flat_map(|r| &r[keep.clone()])
        .copied()
        .collect();
    Some(ModeImage {
        width: rect.width,
        height: rect.height,
        mode: image.mode,
        data: ModeData::U8(data),
        palette: image.palette.clone(),
    })
}

/// A rectangle of a frame, in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Rect {
    x: u32,
    y: u32,
    width: u32,
    height: u32,
}

impl Rect {
    /// The whole of a `width` × `height` frame.
    fn whole(width: u32, height: u32) -> Self {
        Rect {
            x: 0,
            y: 0,
            width,
            height,
        }
    }

    /// The smallest rectangle holding both.
    fn union(self, other: Rect) -> Rect {
        let (x, y) = (self.x.min(other.x), self.y.min(other.y));
        Rect {
            x,
            y,
            width: (self.x + self.width).max(other.x + other.width) - x,
            height: (self.y + self.height).max(other.y + other.height) - y,
        }
    }

    /// Whether `other` lies inside.
    fn contains(self, other: Rect) -> bool {
        self.union(other) == self
    }

    /// The smallest rectangle around the pixels of this one that `flags` (one a pixel, row by
    /// row) marks; `None` when it marks none.
    fn around(self, flags: impl IntoIterator<Item = bool>) -> Option<Rect> {
        let width = self.width.max(1) as usize;
        let marked = flags.into_iter().enumerate().filter(|(_, f)| *f);
        let (mut left, mut top, mut right, mut bottom) = (usize::MAX, usize::MAX, 0, 0);
        for (i, _) in marked {
            let (x, y) = (i % width, i / width);
            (left, top) = (left.min(x), top.min(y));
            (right, bottom) = (right.max(x + 1), bottom.max(y + 1));
        }
        (left != usize::MAX).then(|| Rect {
            x: self.x + left as u32,
            y: self.y + top as u32,
            width: (right - left) as u32,
            height: (bottom - top) as u32,
        })
    }
}

/// How a GIF frame is drawn on the canvas the frame before leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Draw {
    /// Its part `rect`, over the frame before, which is kept.
    Over(Rect),
    /// Its part `rect`, once the frame before is disposed of to the background: that frame is
    /// first written as its part `before` (a rectangle around the one it had), which disposing
    /// of it then clears; the rest of the canvas still shows it.
    Cleared { before: Rect, rect: Rect },
}

impl Draw {
    /// The part of the frame written.
    fn rect(self) -> Rect {
        match self {
            Draw::Over(rect) | Draw::Cleared { rect, .. } => rect,
        }
    }
}

/// How the GIF frame `image` (transparency colour `key`) is drawn. `rect` is its part that
/// changed since the frame before ([`changed`]; `None` when not comparable), and `before` that
/// frame, its key and the part it is written as (`None` for the first frame).
///
/// Over the frame before, kept, when no pixel turns transparent: a transparent pixel of the
/// part shows the canvas, which is transparent there too. Else the frame before must be
/// cleared where pixels turn transparent (a GIF has no other way to make a pixel transparent
/// again): it is written as the part around its own and those pixels (the whole frame when the
/// two are not comparable) and disposed of to the background, and this frame draws its
/// pixels that are not transparent there, and what changed elsewhere. A sprite moving over a
/// transparent background costs a rectangle around it a frame, not the whole canvas.
fn plan(
    image: &ModeImage,
    key: Option<&[u8]>,
    rect: Option<Rect>,
    before: Option<(&ModeImage, Option<&[u8]>, Rect)>,
) -> Draw {
    let whole = Rect::whole(image.width, image.height);
    let Some((before, before_key, held)) = before else {
        return Draw::Over(whole);
    };
    let may_show_through = key.is_some() || matches!(image.mode, ImageMode::Rgba | ImageMode::P);
    if !may_show_through {
        return Draw::Over(rect.unwrap_or(whole));
    }
    let fallback = Draw::Cleared {
        before: whole,
        rect: whole,
    };
    let cleared = match rect {
        Some(rect) => {
            let (Some(now), Some(was)) = (
                transparent_pixels(image, key, rect),
                transparent_pixels(before, before_key, rect),
            ) else {
                return fallback;
            };
            let turned = now.iter().zip(&was).map(|(&now, &was)| now && !was);
            match rect.around(turned) {
                None => return Draw::Over(rect),
                Some(turned) => held.union(turned),
            }
        }
        None => whole,
    };
    let Some(now) = transparent_pixels(image, key, cleared) else {
        return fallback;
    };
    let mut drawn = cleared.around(now.iter().map(|t| !t));
    if let Some(rect) = rect
        && !cleared.contains(rect)
    {
        drawn = Some(drawn.map_or(rect, |d| d.union(rect)));
    }
    Draw::Cleared {
        before: cleared,
        rect: drawn.unwrap_or(Rect {
            width: 1,
            height: 1,
            ..cleared
        }),
    }
}

/// The part of `image` that a GIF or animated WebP frame must hold, `before` being the frame
/// shown before it: the smallest rectangle around the pixels that changed, its corner moved up
/// and left to even coordinates (a WebP frame's offset counts pairs of pixels). One pixel when
/// nothing changed. `None` (the whole frame) when there is no frame before, or when the two
/// differ in what is not pixels (size, mode, palette): the canvas then holds none of its pixels.
fn changed(before: Option<&ModeImage>, image: &ModeImage) -> Option<Rect> {
    let (Some(before), ModeData::U8(now)) = (before, &image.data) else {
        return None;
    };
    let ModeData::U8(then) = &before.data else {
        return None;
    };
    if (before.width, before.height, before.mode) != (image.width, image.height, image.mode)
        || before.palette != image.palette
        || then.len() != now.len()
    {
        return None;
    }
    let bands = image.mode.bands();
    let row = image.width as usize * bands;
    if row == 0 {
        return None;
    }
    // The changed rows, and columns in samples, from the first to past the last.
    let (mut top, mut bottom, mut left, mut right) = (usize::MAX, 0, usize::MAX, 0);
    for (y, (a, b)) in then
        .chunks_exact(row)
        .zip(now.chunks_exact(row))
        .enumerate()
    {
        if a == b {
            continue;
        }
        let first = a.iter().zip(b).position(|(p, q)| p != q).unwrap_or(0);
        let last = row
            - a.iter()
                .rev()
                .zip(b.iter().rev())
                .position(|(p, q)| p != q)
                .unwrap_or(0);
        (top, bottom) = (top.min(y), y + 1);
        (left, right) = (left.min(first), right.max(last));
    }
    if top == usize::MAX {
        return Some(Rect::whole(1, 1));
    }
    // Whole pixels: the first sample's pixel to the last sample's.
    let (left, right) = (left / bands, right.div_ceil(bands));
    let (x, y) = (left as u32 & !1, top as u32 & !1);
    Some(Rect {
        x,
        y,
        width: right as u32 - x,
        height: bottom as u32 - y,
    })
}

/// One GIF frame of `image`: a P image's indices and palette as they are (an RGBA palette's
/// first fully transparent entry becomes the transparent index); other modes quantised with
/// NeuQuant ([`gif_speed`]), each frame with its own palette. The frame is disposed of to the
/// background (a part drawn over it changes that to kept, see [`plan`]), so the
/// next frame's transparent pixels show through to nothing, not to this frame. An `L` or
/// `RGB` image with a transparency colour (`key`) is transparent where its samples equal it,
/// as Pillow's GIF of it is.
///
/// With `slot`, the frame gets a transparent index even when no pixel is transparent (a
/// palette entry that no pixel uses; 255 colours where all 256 are, except in a P image,
/// whose indices are its own: a full palette all used gets none). Pillow
/// needs one in an animation's frames: it reads every frame after the first as RGB, alpha
/// lost, unless the first has one; and a frame disposed of to the background becomes its
/// opaque background colour, not transparent, unless that frame has one.
fn quantise(
    image: &ModeImage,
    key: Option<&[u8]>,
    slot: bool,
) -> Result<gif::Frame<'static>, String> {
    let (Ok(w), Ok(h)) = (u16::try_from(image.width), u16::try_from(image.height)) else {
        return Err(format!(
            "gif sides must be at most 65535 pixels, the frame is {}×{}",
            image.width, image.height
        ));
    };
    if image.mode == ImageMode::P {
        let ModeData::U8(indices) = &image.data else {
            return Err("P image without 8-bit indices".to_string());
        };
        let palette = palette_rgba(image);
        let mut frame = gif::Frame {
            width: w,
            height: h,
            buffer: Cow::Owned(indices.clone()),
            palette: Some(palette.iter().flat_map(|c| [c[0], c[1], c[2]]).collect()),
            transparent: palette
                .iter()
                .position(|c| c[3] == 0)
                .and_then(|i| u8::try_from(i).ok()),
            dispose: gif::DisposalMethod::Background,
            ..gif::Frame::default()
        };
        // A full palette whose every entry is used keeps no slot: its indices are its own.
        if slot {
            add_slot(&mut frame);
        }
        return Ok(frame);
    }
    let mut rgba = match key {
        Some(key) => keyed_rgba(image, key)?,
        None => to_rgba(image)?,
    };
    let speed = gif_speed(usize::from(w) * usize::from(h));
    let mut quantised = super::palette::frame_from_rgba(w, h, &mut rgba, speed);
    // No pixel is transparent when there is no index (so `rgba` is as it came, its alpha
    // made 255): a full palette, every entry used, becomes 255 colours and the slot.
    if slot && !add_slot(&mut quantised) {
        let quant = color_quant::NeuQuant::new(speed, 255, &rgba);
        let mut palette = quant.color_map_rgb();
        palette.extend_from_slice(&[0; 3]);
        quantised = gif::Frame {
            width: w,
            height: h,
            buffer: Cow::Owned(
                rgba.chunks_exact(4)
                    .map(|px| quant.index_of(px) as u8)
                    .collect(),
            ),
            palette: Some(palette),
            transparent: Some(255),
            ..gif::Frame::default()
        };
    }
    quantised.dispose = gif::DisposalMethod::Background;
    Ok(quantised)
}

/// Gives `frame` a transparent index that no pixel uses, when it has none: an extra palette
/// entry, else an entry no pixel uses. `false` when it has none and cannot get one (a full
/// palette, every entry used).
fn add_slot(frame: &mut gif::Frame<'_>) -> bool {
    if frame.transparent.is_some() {
        return true;
    }
    let palette = frame.palette.get_or_insert_with(Vec::new);
    if palette.len() < 256 * 3 {
        frame.transparent = u8::try_from(palette.len() / 3).ok();
        palette.extend_from_slice(&[0; 3]);
        return true;
    }
    let mut used = [false; 256];
    frame
        .buffer
        .iter()
        .for_each(|&i| used[usize::from(i)] = true);
    frame.transparent = used
        .iter()
        .position(|&u| !u)
        .and_then(|i| u8::try_from(i).ok());
    frame.transparent.is_some()
}

/// The part `rect` of `image` quantised for a GIF frame, placed at its corner. `slot`: see
/// [`quantise`].
fn quantise_rect(
    image: &ModeImage,
    key: Option<&[u8]>,
    rect: Rect,
    slot: bool,
) -> Result<gif::Frame<'static>, String> {
    if rect == Rect::whole(image.width, image.height) {
        return quantise(image, key, slot);
    }
    let (Ok(left), Ok(top), Some(part)) = (
        u16::try_from(rect.x),
        u16::try_from(rect.y),
        crop(image, rect),
    ) else {
        return Err(format!(
            "a gif frame cannot be cut at {}, {} of {}×{}",
            rect.x, rect.y, image.width, image.height
        ));
    };
    let mut quantised = quantise(&part, key, slot)?;
    (quantised.left, quantised.top) = (left, top);
    Ok(quantised)
}

/// The part `rect` of `image` quantised for a GIF frame drawn over the frame `before` it
/// (kept, of the same size, mode and palette): the pixels that did not change take the
/// transparent index, which shows that frame's, so the part codes as long runs of one index
/// (as gifsicle's and ffmpeg's GIF optimisers do), when that makes the frame smaller. The
/// frame gets the index for it ([`quantise`]'s `slot`), but a P frame whose full palette is all
/// used has none, and is drawn whole. The frame's indices come LZW-coded when both ways were
/// coded to be compared.
fn quantise_over(
    image: &ModeImage,
    key: Option<&[u8]>,
    rect: Rect,
    before: &ModeImage,
    slot: bool,
) -> Result<(gif::Frame<'static>, GifBuffer), String> {
    let Some(unchanged) = unchanged_pixels(before, image, rect).filter(|u| u.contains(&true))
    else {
        return Ok((quantise_rect(image, key, rect, slot)?, GifBuffer::Indices));
    };
    let mut quantised = quantise_rect(image, key, rect, true)?;
    let Some(t) = quantised.transparent else {
        return Ok((quantised, GifBuffer::Indices));
    };
    let runs: Vec<u8> = quantised
        .buffer
        .iter()
        .zip(&unchanged)
        .map(|(&index, &unchanged)| if unchanged { t } else { index })
        .collect();
    // Without the runs, the frame needs no transparent index when it took one only for them
    // (the last palette entry, used by no pixel).
    let entries = quantised.palette.as_ref().map_or(0, |p| p.len() / 3);
    let strip = !slot && usize::from(t) + 1 == entries && !quantised.buffer.contains(&t);
    let (with_runs, without) = (lzw(&runs), lzw(&quantised.buffer));
    if gif_cost(entries, &with_runs) < gif_cost(entries - usize::from(strip), &without) {
        quantised.buffer = Cow::Owned(with_runs);
    } else {
        quantised.buffer = Cow::Owned(without);
        if strip {
            quantised.transparent = None;
            if let Some(palette) = &mut quantised.palette {
                palette.truncate(palette.len() - 3);
            }
        }
    }
    Ok((quantised, GifBuffer::Coded))
}

/// The LZW code of a GIF frame's `indices` as the `gif` crate writes it (and takes it,
/// [`GifBuffer::Coded`]): its minimum code size (from the largest index), then the code.
fn lzw(indices: &[u8]) -> Vec<u8> {
    let largest = indices.iter().copied().max().map_or(0, u32::from);
    let code_size = (largest + 1).max(4).next_power_of_two().trailing_zeros() as u8;
    let mut code = Vec::with_capacity(indices.len() / 2 + 1);
    code.push(code_size);
    let mut encoder = weezl::encode::Encoder::new(weezl::BitOrder::Lsb, code_size);
    let result = encoder.into_vec(&mut code).encode_all(indices);
    let len = 1 + result.consumed_out;
    code.truncate(len);
    code
}

/// About the bytes a GIF frame with a local palette of `entries` colours and indices coded as
/// `code` ([`lzw`]) takes: the palette, padded to a power of two, and the code in blocks.
fn gif_cost(entries: usize, code: &[u8]) -> usize {
    let palette = 3 * entries.max(2).next_power_of_two();
    let code = code.len() - 1;
    palette + code + code / 255
}

/// Whether each pixel of the part `rect` has the same samples in `image` as in `before` (of
/// the same size and mode).
fn unchanged_pixels(before: &ModeImage, image: &ModeImage, rect: Rect) -> Option<Vec<bool>> {
    let (ModeData::U8(then), ModeData::U8(now)) = (&before.data, &image.data) else {
        return None;
    };
    let bands = image.mode.bands();
    let row = image.width as usize * bands;
    let (x, width) = (rect.x as usize * bands, rect.width as usize * bands);
    let mut unchanged = Vec::with_capacity(rect.width as usize * rect.height as usize);
    for y in rect.y as usize..(rect.y + rect.height) as usize {
        let span = y * row + x..y * row + x + width;
        let (a, b) = (then.get(span.clone())?, now.get(span)?);
        unchanged.extend(
            a.chunks_exact(bands)
                .zip(b.chunks_exact(bands))
                .map(|(p, q)| p == q),
        );
    }
    Some(unchanged)
}

/// Whether each pixel of `image`'s part `rect` is transparent in its GIF frame: a P image's
/// pixels of its first fully transparent palette entry (as [`quantise`] makes it the
/// transparent index), another mode's pixels of alpha 0, after the transparency colour `key`.
fn transparent_pixels(image: &ModeImage, key: Option<&[u8]>, rect: Rect) -> Option<Vec<bool>> {
    let part = crop(image, rect)?;
    if part.mode == ImageMode::P {
        let ModeData::U8(indices) = &part.data else {
            return None;
        };
        let t = palette_rgba(&part).iter().position(|c| c[3] == 0);
        return Some(indices.iter().map(|&i| Some(usize::from(i)) == t).collect());
    }
    let rgba = match key {
        Some(key) => keyed_rgba(&part, key),
        None => to_rgba(&part),
    };
    Some(rgba.ok()?.chunks_exact(4).map(|px| px[3] == 0).collect())
}

/// Swaps the first two entries of `frame`'s palette (and its indices) when the palette is the
/// gray ramp 0, 1, 2, …: Pillow opens a GIF whose global palette is that ramp as L, and
/// then reads later frames' own palettes' indices as gray levels. (A still keeps it: Pillow
/// opens it as L, as Pillow writes an L image.)
fn break_gray_ramp(frame: &mut gif::Frame<'static>) {
    let Some(palette) = &mut frame.palette else {
        return;
    };
    let ramp = palette.len() >= 6
        && palette
            .chunks(3)
            .enumerate()
            .all(|(i, c)| c.iter().all(|&v| usize::from(v) == i));
    if !ramp {
        return;
    }
    palette[..6].copy_from_slice(&[1, 1, 1, 0, 0, 0]);
    let swap = |i: u8| match i {
        0 => 1,
        1 => 0,
        other => other,
    };
    frame.buffer.to_mut().iter_mut().for_each(|i| *i = swap(*i));
    frame.transparent = frame.transparent.map(swap);
}

impl HeldFrame {
    /// Writes `frame`, a larger part of the same image ([`Grown`]), instead, with the held
    /// one's delay and disposal.
    fn redraw(&mut self, (frame, buffer): GifFrame) {
        self.frame = gif::Frame {
            delay: self.frame.delay,
            dispose: self.frame.dispose,
            ..frame
        };
        self.buffer = buffer;
    }
}

impl<W: Write> GifState<W> {
    /// Takes frame `k`, quantised (its buffer's indices coded or not), and writes the one
    /// held before it, whose delay it settles; `over` when the frame is drawn over that one,
    /// which is then kept, not cleared.
    fn push(
        &mut self,
        frame: &Frame,
        (gif_frame, buffer): GifFrame,
        over: bool,
        k: usize,
    ) -> Result<(), String> {
        if k == 0 {
            self.plays = frame.meta.plays;
        }
        if over && let Some(held) = &mut self.held {
            held.frame.dispose = gif::DisposalMethod::Keep;
        }
        self.write_held(Some(frame.meta.timestamp), k + 1)?;
        self.held = Some(HeldFrame {
            frame: gif_frame,
            buffer,
            timestamp: frame.meta.timestamp,
            delay: frame.meta.delay,
        });
        Ok(())
    }

    /// Writes the held frame, if any, `next` being the capture time of the frame after it
    /// (`None` at the end) and `frames` the number of frames taken with the next one: with
    /// its delay in centiseconds ([`Timing::units`]), or, a single frame, as a still (no
    /// delay, no loop count).
    fn write_held(&mut self, next: Option<Duration>, frames: usize) -> Result<(), String> {
        let Some(mut held) = self.held.take() else {
            return Ok(());
        };
        let animated = frames > 1;
        if animated {
            let centiseconds = self.timing.units(
                held.delay,
                held.timestamp,
                next,
                (Duration::from_millis(10), false),
            );
            held.frame.delay = u16::try_from(centiseconds).unwrap_or(u16::MAX);
        }
        if let GifOut::Waiting(_) = self.out {
            let GifOut::Waiting(out) = std::mem::replace(&mut self.out, GifOut::Taken) else {
                unreachable!("matched above");
            };
            // The first frame's palette is the global one, as Pillow writes it: readers that
            // take a GIF's mode from its global palette (Pillow's, which opens a gray ramp
            // as L) see the frame's colours, not an empty table's black.
            if animated && held.buffer == GifBuffer::Indices {
                break_gray_ramp(&mut held.frame);
            }
            let global = held.frame.palette.take().unwrap_or_default();
            let mut encoder = gif::Encoder::new(out, held.frame.width, held.frame.height, &global)
                .map_err(|e| one_line(&e))?;
            self.global = global;
            if animated && let Some(repeat) = repeat(self.plays) {
                encoder.set_repeat(repeat).map_err(|e| one_line(&e))?;
            }
            self.out = GifOut::Writing(encoder);
        }
        // A later frame with the same palette uses the global one.
        if held.frame.palette.as_ref() == Some(&self.global) {
            held.frame.palette = None;
        }
        match &mut self.out {
            GifOut::Writing(encoder) => match held.buffer {
                GifBuffer::Indices => encoder.write_frame(&held.frame),
                GifBuffer::Coded => encoder.write_lzw_pre_encoded_frame(&held.frame),
            }
            .map_err(|e| one_line(&e)),
            GifOut::Waiting(_) | GifOut::Taken => Err("the GIF encoder is gone".to_string()),
        }
    }
}

/// The NETSCAPE loop count of an animation whose first frame plays `plays` times; it counts
/// repeats after the first play: none (no extension) for one play, else forever when the
/// input says so or says nothing.
fn repeat(plays: Option<Plays>) -> Option<gif::Repeat> {
    match plays {
        None | Some(Plays::Forever) => Some(gif::Repeat::Infinite),
        Some(Plays::Times(plays)) => match u16::try_from(plays.get() - 1) {
            Ok(0) => None,
            Ok(repeats) => Some(gif::Repeat::Finite(repeats)),
            Err(_) => Some(gif::Repeat::Finite(u16::MAX)),
        },
    }
}

/// An animated WebP in the making. Each frame is encoded as a still WebP (lossy or lossless,
/// as one frame's file would be) of the rectangle that changed since the frame before (the
/// first: the whole canvas), whose image chunks become the animation's `ANMF` frame: not
/// blended with the canvas (its transparent pixels are transparent), nothing disposed. The
/// container's size and its alpha flag are written last.
struct WebpState<W: Write + Seek> {
    out: W,
    format: Format,
    /// The last frame taken, as its still file, waiting for the next one to know its
    /// duration (and, the first, whether there is a second: one frame is written as a still).
    held: Option<HeldStill>,
    /// The first frame's play count.
    plays: Option<Plays>,
    /// The durations of the frames before the held one.
    timing: Timing,
    /// The first frame's profile, for the container, once the header is written.
    header: Option<Option<Vec<u8>>>,
    /// Bytes written so far: the container holds at most 4 GiB.
    written: u64,
    /// Some frame has transparency: the header's alpha flag.
    alpha: bool,
}

/// A frame encoded as a still WebP file: the part of the canvas that `rect` covers.
struct HeldStill {
    file: Vec<u8>,
    rect: Rect,
    /// The profile the container gets (the first frame's).
    icc: Option<Vec<u8>>,
    timestamp: Duration,
    delay: Option<Duration>,
}

/// The `VP8X` flags of an animation, and of one with an ICC profile and with alpha.
const VP8X_ANIMATION: u8 = 0x02;
const VP8X_ICC: u8 = 0x20;
const VP8X_ALPHA: u8 = 0x10;
/// Where the `VP8X` flags byte is in the file: after `RIFF`, the size, `WEBP`, `VP8X` and
/// the chunk's size.
const VP8X_FLAGS_AT: u64 = 20;
/// The longest duration an `ANMF` frame holds (24 bits of milliseconds).
const MAX_WEBP_DURATION_MS: u128 = 0xFF_FFFF;

impl<W: Write + Seek> WebpState<W> {
    /// Takes frame `k` (`file`, the still WebP of its part `rect`, in `mode`) and writes the
    /// one held before it, whose duration it settles.
    fn push(
        &mut self,
        frame: &Frame,
        (rect, mode): (Rect, ImageMode),
        file: Vec<u8>,
        k: usize,
    ) -> Result<(), String> {
        if k == 0 {
            self.plays = frame.meta.plays;
        }
        self.write_held(Some(frame.meta.timestamp), k + 1)?;
        self.held = Some(HeldStill {
            file,
            rect,
            icc: (k == 0)
                .then(|| {
                    fitting_profile(frame.meta.icc_profile.as_deref(), &self.format, mode)
                        .map(<[u8]>::to_vec)
                })
                .flatten(),
            timestamp: frame.meta.timestamp,
            delay: frame.meta.delay,
        });
        Ok(())
    }

    /// Writes the held frame, if any, `next` being the capture time of the frame after it
    /// (`None` at the end) and `frames` the number of frames taken with the next one: with
    /// its duration in milliseconds ([`Timing::units`]), or, a single frame, as the still
    /// file it is.
    fn write_held(&mut self, next: Option<Duration>, frames: usize) -> Result<(), String> {
        let Some(held) = self.held.take() else {
            return Ok(());
        };
        let io = |e: std::io::Error| one_line(&e);
        if frames == 1 {
            return self.out.write_all(&held.file).map_err(io);
        }
        let millis = self.timing.units(
            held.delay,
            held.timestamp,
            next,
            (Duration::from_millis(1), true),
        );
        let (chunks, alpha) = image_chunks(&held.file)?;
        self.alpha |= alpha;
        if self.header.is_none() {
            // The first frame is the whole canvas.
            self.write_header(held.rect.width, held.rect.height, held.icc.as_deref())?;
            self.header = Some(held.icc);
        }
        let mut anmf = Vec::with_capacity(24);
        anmf.extend_from_slice(b"ANMF");
        let size = u32::try_from(16 + chunks.len()).map_err(|_| "a webp frame over 4 GiB")?;
        anmf.extend_from_slice(&size.to_le_bytes());
        // The frame's offset, in units of two pixels, then its sides less one.
        let rect = held.rect;
        for side in [rect.x / 2, rect.y / 2, rect.width - 1, rect.height - 1] {
            anmf.extend_from_slice(&side.to_le_bytes()[..3]);
        }
        let millis = u32::try_from(millis.min(MAX_WEBP_DURATION_MS)).unwrap_or(u32::MAX);
        anmf.extend_from_slice(&millis.to_le_bytes()[..3]);
        // Not blended with the canvas (bit 1), not disposed of (bit 0 clear).
        anmf.push(0b10);
        self.grow(anmf.len() + chunks.len())?;
        self.out.write_all(&anmf).map_err(io)?;
        self.out.write_all(chunks).map_err(io)
    }

    /// The container's start: `RIFF` (its size written at the end), `VP8X` with the canvas
    /// and the animation flag, the profile, and `ANIM` with the play count.
    fn write_header(&mut self, width: u32, height: u32, icc: Option<&[u8]>) -> Result<(), String> {
        let mut head = b"RIFF\0\0\0\0WEBPVP8X".to_vec();
        head.extend_from_slice(&10u32.to_le_bytes());
        head.push(VP8X_ANIMATION | if icc.is_some() { VP8X_ICC } else { 0 });
        head.extend_from_slice(&[0; 3]);
        head.extend_from_slice(&(width - 1).to_le_bytes()[..3]);
        head.extend_from_slice(&(height - 1).to_le_bytes()[..3]);
        if let Some(icc) = icc {
            let len = u32::try_from(icc.len()).map_err(|_| "the ICC profile is over 4 GiB")?;
            head.extend_from_slice(b"ICCP");
            head.extend_from_slice(&len.to_le_bytes());
            head.extend_from_slice(icc);
            if icc.len() % 2 == 1 {
                head.push(0);
            }
        }
        head.extend_from_slice(b"ANIM");
        head.extend_from_slice(&6u32.to_le_bytes());
        // Background colour (BGRA, transparent black, as Pillow writes it), then the loop
        // count: plays, 0 for forever.
        head.extend_from_slice(&[0; 4]);
        let plays = match self.plays {
            None | Some(Plays::Forever) => 0,
            Some(Plays::Times(plays)) => u16::try_from(plays.get()).unwrap_or(u16::MAX),
        };
        head.extend_from_slice(&plays.to_le_bytes());
        self.grow(head.len())?;
        self.out.write_all(&head).map_err(|e| one_line(&e))
    }

    /// Counts `bytes` more, refusing them past what the container's 32-bit size holds (before
    /// they are written, so that a long stream fails at that frame, not at its end).
    fn grow(&mut self, bytes: usize) -> Result<(), String> {
        self.written += bytes as u64;
        if self.written > u64::from(u32::MAX) {
            return Err("the animation would pass the 4 GiB a webp file holds".to_string());
        }
        Ok(())
    }

    /// Writes the last frame, then the container's size and alpha flag. Returns the writer.
    fn finish(mut self, frames: usize) -> Result<W, String> {
        self.write_held(None, frames)?;
        let io = |e: std::io::Error| one_line(&e);
        if frames > 1 {
            let end = self.out.seek(SeekFrom::End(0)).map_err(io)?;
            let size = u32::try_from(end - 8).map_err(|_| "the webp would be over 4 GiB")?;
            self.out.seek(SeekFrom::Start(4)).map_err(io)?;
            self.out.write_all(&size.to_le_bytes()).map_err(io)?;
            if self.alpha {
                let icc = self.header.as_ref().is_some_and(Option::is_some);
                let flags = VP8X_ANIMATION | VP8X_ALPHA | if icc { VP8X_ICC } else { 0 };
                self.out.seek(SeekFrom::Start(VP8X_FLAGS_AT)).map_err(io)?;
                self.out.write_all(&[flags]).map_err(io)?;
            }
            self.out.seek(SeekFrom::End(0)).map_err(io)?;
        }
        self.out.flush().map_err(io)?;
        Ok(self.out)
    }
}

/// The image chunks of a still WebP file (`ALPH` and `VP8 `, or `VP8L`, with their headers
/// and padding), and whether they hold transparency.
fn image_chunks(file: &[u8]) -> Result<(&[u8], bool), String> {
    let bad = || "the webp encoder wrote a file this cannot read".to_string();
    if file.len() < 12 || &file[..4] != b"RIFF" || &file[8..12] != b"WEBP" {
        return Err(bad());
    }
    let mut at = 12;
    let (mut start, mut end, mut alpha) = (None, 12, false);
    while at + 8 <= file.len() {
        let kind = &file[at..at + 4];
        let len = u32::from_le_bytes([file[at + 4], file[at + 5], file[at + 6], file[at + 7]]);
        let next = at
            .checked_add(8 + len as usize + (len as usize & 1))
            .filter(|&n| n <= file.len())
            .ok_or_else(bad)?;
        match kind {
            b"ALPH" | b"VP8 " | b"VP8L" => {
                start.get_or_insert(at);
                end = next;
                alpha |= kind == b"ALPH"
                    || (kind == b"VP8L"
                        && file.get(at + 9..at + 13).is_some_and(|b| b[3] & 0x10 != 0));
            }
            _ => {}
        }
        at = next;
    }
    let start = start.ok_or_else(bad)?;
    Ok((&file[start..end], alpha))
}

impl<W: Write + Seek> NpyState<W> {
    /// Writes frame `k`'s samples (and, before the first, a header with room for any count).
    fn push(&mut self, image: &ModeImage, k: usize) -> Result<(), String> {
        let io = |e: std::io::Error| one_line(&e);
        if k == 0 {
            self.descr = match (&image.data, image.mode) {
                (ModeData::U8(_), ImageMode::One) => <bool as npy::Element>::DESCR,
                (ModeData::U8(_), _) => <u8 as npy::Element>::DESCR,
                (ModeData::I32(_), _) => <i32 as npy::Element>::DESCR,
                (ModeData::F32(_), _) => <f32 as npy::Element>::DESCR,
            };
            self.frame_shape = image.shape();
            let mut widest = vec![usize::MAX];
            widest.extend_from_slice(&self.frame_shape);
            let header = npy::header_at_least(self.descr, &widest, 0)?;
            self.header_len = header.len();
            self.out.write_all(&header).map_err(io)?;
        }
        self.scratch.clear();
        let bytes: &[u8] = match &image.data {
            ModeData::U8(v) if image.mode == ImageMode::One => {
                self.scratch.extend(v.iter().map(|&b| u8::from(b != 0)));
                &self.scratch
            }
            ModeData::U8(v) => v,
            ModeData::I32(v) => {
                npy::Element::extend_bytes(v, &mut self.scratch);
                &self.scratch
            }
            ModeData::F32(v) => {
                npy::Element::extend_bytes(v, &mut self.scratch);
                &self.scratch
            }
        };
        self.out.write_all(bytes).map_err(io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rgb(width: u32, height: u32, data: Vec<u8>) -> ModeImage {
        ModeImage {
            width,
            height,
            mode: ImageMode::Rgb,
            data: ModeData::U8(data),
            palette: None,
        }
    }

    #[test]
    fn the_changed_part_is_the_box_of_changed_pixels_from_an_even_corner() {
        let before = rgb(5, 4, (0..60).collect());
        let rect = |x, y, width, height| {
            Some(Rect {
                x,
                y,
                width,
                height,
            })
        };
        assert_eq!(changed(None, &before), None, "no frame before");
        assert_eq!(
            changed(Some(&before), &before),
            rect(0, 0, 1, 1),
            "nothing changed"
        );
        // The green of pixel (3, 1), then also the blue of (4, 3).
        let mut data: Vec<u8> = (0..60).collect();
        data[(5 + 3) * 3 + 1] ^= 1;
        assert_eq!(
            changed(Some(&before), &rgb(5, 4, data.clone())),
            rect(2, 0, 2, 2)
        );
        data[(3 * 5 + 4) * 3 + 2] ^= 1;
        assert_eq!(changed(Some(&before), &rgb(5, 4, data)), rect(2, 0, 3, 4));
        // Another size, or the same samples through another palette: none of it is shown.
        assert_eq!(changed(Some(&rgb(4, 5, (0..60).collect())), &before), None);
        let indexed = |colour: [u8; 3]| ModeImage {
            mode: ImageMode::P,
            palette: Some(crate::mode::Palette::Rgb(vec![[0; 3], colour])),
            ..rgb(5, 4, vec![1; 20])
        };
        assert_eq!(
            changed(Some(&indexed([1, 2, 3])), &indexed([1, 2, 4])),
            None
        );
        assert_eq!(
            changed(Some(&indexed([1, 2, 3])), &indexed([1, 2, 3])),
            rect(0, 0, 1, 1)
        );
    }

    #[test]
    fn push_all_encodes_many_frames_on_a_thread_a_core_not_a_thread_a_frame() {
        let frames: Vec<Frame> = (0..40u8)
            .map(|k| {
                let meta = crate::FrameMeta::still(u64::from(k), 0);
                Frame::new(2, 2, [k, 9, 200, 255].repeat(4), false, meta)
            })
            .collect();
        let refs: Vec<&Frame> = frames.iter().collect();
        let mut writer =
            SequenceWriter::new(Format::Gif, std::io::Cursor::new(Vec::new())).unwrap();
        writer.push_all(&refs).unwrap();
        let threads = THREADS_STARTED.with(std::cell::Cell::get);
        assert_eq!(threads, Some(crate::pipeline::default_threads()));
        assert!(threads.is_some_and(|n| n <= 8), "{threads:?}");
        // One frame is encoded here, as `encode` does.
        writer.push_all(&refs[..1]).unwrap();
        assert_eq!(THREADS_STARTED.with(std::cell::Cell::get), Some(0));
        assert_eq!(writer.frames(), 41);
    }

    #[test]
    fn a_webp_refuses_the_frame_that_would_pass_4_gib() {
        let SequenceWriter {
            state: State::Webp(mut webp),
            ..
        } = SequenceWriter::new(Format::default(), std::io::Cursor::new(Vec::new())).unwrap()
        else {
            panic!("a webp writer");
        };
        webp.written = u64::from(u32::MAX) - 10;
        assert!(webp.grow(10).is_ok(), "exactly the most a RIFF size holds");
        let err = webp.grow(1).unwrap_err();
        assert!(err.contains("4 GiB"), "{err}");
    }

    #[test]
    fn a_frames_lzw_code_is_the_one_the_gif_crate_writes() {
        // Empty, one index, long runs, every largest index (each minimum code size), and
        // lengths around the 4096 codes after which the code table is reset.
        let mut cases: Vec<Vec<u8>> = vec![vec![], vec![0], vec![255], vec![0; 100_000]];
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        for largest in [1u8, 2, 3, 4, 7, 8, 15, 16, 31, 63, 127, 128, 200, 255] {
            for len in [1, 17, 4095, 4096, 70_000] {
                let indices = (0..len)
                    .map(|i| {
                        state ^= state << 13;
                        state ^= state >> 7;
                        state ^= state << 17;
                        // Runs of one index in a third of the rows.
                        let value = if i / 64 % 3 == 0 {
                            i as u64 / 64
                        } else {
                            state
                        };
                        (value % (u64::from(largest) + 1)) as u8
                    })
                    .collect();
                cases.push(indices);
            }
        }
        for indices in cases {
            let mut frame = gif::Frame {
                width: 1,
                height: 1,
                buffer: Cow::Owned(indices.clone()),
                ..gif::Frame::default()
            };
            frame.make_lzw_pre_encoded();
            assert!(
                lzw(&indices) == *frame.buffer,
                "{} indices, the largest {:?}",
                indices.len(),
                indices.iter().max()
            );
        }
    }
}

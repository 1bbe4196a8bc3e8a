//! Files decoded ahead of their turn. The capture takes the inputs of a batch in order, and
//! decoding one (25–100 ms for a 1080p PNG or WebP) would bound a job whose encoders run on
//! many cores; so decode workers take the inputs in order and decode each one's first frame
//! (all of a still image) while the capture sends the frames before it. The capture still
//! takes them one by one in order, so outputs, failures and their order are those of a
//! serial run; the later frames of an animation are decoded by the capture, in turn.
//!
//! A worker decodes the input whose turn it is at once, as the capture alone would. Another
//! input it decodes only within `window` inputs of the turn, when its header gives its size
//! and the turn's header gives the turn's, and with room in the run's [`Budget`] for both
//! (see [`Budget::start_decode`]). So standard input, a pipe, an SVG or a file whose header
//! cannot be read is read only in its turn, as before, and the frames in flight stay within
//! the budget.

use std::collections::HashMap;
use std::iter::Peekable;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use crossbeam_channel::{Receiver, Sender};

use crate::budget::{Ahead, Budget, Look, Start};
use crate::error::{Error, Result};
use crate::source::{self, DecodeLimits, Frames, Input};

/// An input's frames, the first one decoded.
pub(crate) struct Decoded {
    pub(crate) frames: Peekable<Frames>,
    /// Its first frame's share of the budget, when it was decoded ahead of its turn.
    pub(crate) ahead: Option<Ahead>,
}

/// What an input must fit to be decoded.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bounds {
    /// The decoding limits.
    pub(crate) limits: DecodeLimits,
    /// The longest side the output format holds, and the format: an input larger than that
    /// fails before it is decoded ([`source::MaxSide`]).
    pub(crate) max_side: source::MaxSide,
}

/// A size not known (yet) in [`Shared::sizes`].
const UNKNOWN: u64 = 0;

/// What the decode workers and the capture share.
struct Shared<'a> {
    inputs: &'a [Input],
    bounds: &'a Bounds,
    budget: &'a Arc<Budget>,
    /// What a frame takes from the budget, per pixel.
    bytes_per_pixel: u64,
    /// How many inputs past the turn may be decoded ahead.
    window: usize,
    /// The next input a worker takes.
    next: AtomicUsize,
    /// The input the capture is on.
    turn: AtomicUsize,
    /// Each input's first frame in budget bytes, from its header ([`UNKNOWN`] until read, and
    /// when it cannot be).
    sizes: Vec<AtomicU64>,
    /// Set when the capture has finished.
    done: AtomicBool,
    /// The run has stopped.
    stopped: &'a (dyn Fn() -> bool + Sync),
}

/// The capture's end: inputs' frames, in order.
pub(crate) struct Decoder<'s, 'a> {
    shared: &'s Shared<'a>,
    rx: Receiver<(usize, Result<Decoded>)>,
    /// Inputs decoded before the capture asked for them.
    early: HashMap<usize, Result<Decoded>>,
}

impl Decoder<'_, '_> {
    /// Input `index`'s frames; the inputs are taken in order, each once.
    pub(crate) fn take(&mut self, index: usize) -> Result<Decoded> {
        let shared = self.shared;
        shared.turn.store(index, Ordering::SeqCst);
        shared.budget.turn_changed();
        loop {
            if let Some(result) = self.early.remove(&index) {
                return result;
            }
            match self.rx.recv() {
                Ok((i, result)) if i == index => return result,
                Ok((i, result)) => {
                    self.early.insert(i, result);
                }
                // No worker is left: none could be started, or the run has stopped.
                Err(_) if (shared.stopped)() => return Err(stopped(&shared.inputs[index])),
                Err(_) => return shared.answer(index, || shared.decode(index, None)),
            }
        }
    }
}

/// The error of an input a stopped run did not decode (the capture ends there, unreported).
fn stopped(input: &Input) -> Error {
    Error::Decode {
        input: input.name.clone(),
        format: "the image".to_string(),
        reason: "the run stopped before it was decoded".to_string(),
    }
}

impl Shared<'_> {
    /// Input `index`'s frames, the first decoded; `header` is its size if already read.
    fn decode(&self, index: usize, header: Option<(u32, u32)>) -> Result<Decoded> {
        let input = &self.inputs[index];
        if let Some((width, height)) = header.or_else(|| source::header_size(input)) {
            source::check_side(
                &input.name,
                width.into(),
                height.into(),
                self.bounds.max_side,
            )?;
        }
        let mut frames =
            source::decode_within(input, &self.bounds.limits, self.bounds.max_side)?.peekable();
        frames.peek();
        Ok(Decoded {
            frames,
            ahead: None,
        })
    }

    /// `answer` for input `index`, which must answer whatever happens: `source::decode` turns
    /// a decoder's panic into the input's error, but anything else panicking would leave the
    /// capture waiting for the input forever.
    fn answer(&self, index: usize, answer: impl FnOnce() -> Result<Decoded>) -> Result<Decoded> {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(answer)).unwrap_or_else(|_| {
            Err(Error::Decode {
                input: self.inputs[index].name.clone(),
                format: "the image".to_string(),
                reason: "the decode worker failed".to_string(),
            })
        })
    }

    fn over(&self) -> bool {
        self.done.load(Ordering::SeqCst) || (self.stopped)()
    }

    /// When input `index` may start, the turn being `turn`.
    fn look(&self, index: usize) -> Look {
        let turn = self.turn.load(Ordering::SeqCst);
        if self.over() {
            return Look::Halted;
        }
        if index <= turn {
            return Look::Turn;
        }
        let size = |i: usize| self.sizes[i].load(Ordering::SeqCst);
        match (size(index), size(turn)) {
            (UNKNOWN, _) | (_, UNKNOWN) => Look::Wait,
            _ if index - turn > self.window => Look::Wait,
            (bytes, turn) => Look::Ahead { bytes, turn },
        }
    }

    /// A worker: takes the next input, waits for its start, decodes it, sends it; again.
    fn work(&self, tx: &Sender<(usize, Result<Decoded>)>) {
        loop {
            if self.over() {
                return;
            }
            let index = self.next.fetch_add(1, Ordering::SeqCst);
            if index >= self.inputs.len() {
                return;
            }
            let result = self.answer(index, || self.prepare(index));
            if tx.send((index, result)).is_err() {
                return;
            }
        }
    }

    /// Input `index`, decoded in its turn or ahead of it.
    fn prepare(&self, index: usize) -> Result<Decoded> {
        let header = source::header_size(&self.inputs[index]);
        if let Some((width, height)) = header {
            let pixels = u64::from(width) * u64::from(height);
            let bytes = pixels.saturating_mul(self.bytes_per_pixel).max(1);
            self.sizes[index].store(bytes, Ordering::SeqCst);
            // Decodes waiting on this one's size (it may be the turn's) look again.
            self.budget.turn_changed();
        }
        let ahead = match self.budget.start_decode(|| self.look(index)) {
            Start::Never => return Err(stopped(&self.inputs[index])),
            Start::Now => None,
            Start::Ahead(share) => Some(share),
        };
        let mut result = self.decode(index, header);
        if let Ok(decoded) = &mut result
            && let Some(Ok(first)) = decoded.frames.peek()
            && let Some(mut share) = ahead
        {
            // The header told the size; a decoder may still give another.
            share.resize(self.bytes_per_pixel * u64::from(first.width) * u64::from(first.height));
            decoded.ahead = Some(share);
        }
        result
    }
}

/// Sets [`Shared::done`] when dropped, on every way out of the capture: a worker waiting for
/// its start then gives up, and the workers can be joined.
struct DoneOnDrop<'s, 'a>(&'s Shared<'a>);

impl Drop for DoneOnDrop<'_, '_> {
    fn drop(&mut self) {
        self.0.done.store(true, Ordering::SeqCst);
        self.0.budget.turn_changed();
    }
}

/// Runs `capture` with a [`Decoder`] of `inputs` fed by `workers` decode threads (at most one
/// per input), and returns what it returns once the workers have stopped: a worker finishes
/// the decode it is in, and starts none once `capture` has returned or `stopped` is true.
pub(crate) fn decode_ahead<R>(
    inputs: &[Input],
    bounds: &Bounds,
    budget: &Arc<Budget>,
    bytes_per_pixel: u64,
    workers: usize,
    stopped: &(dyn Fn() -> bool + Sync),
    capture: impl FnOnce(&mut Decoder<'_, '_>) -> R,
) -> R {
    let workers = workers.clamp(1, inputs.len().max(1));
    let shared = Shared {
        inputs,
        bounds,
        budget,
        bytes_per_pixel,
        window: workers,
        next: AtomicUsize::new(0),
        turn: AtomicUsize::new(0),
        sizes: inputs.iter().map(|_| AtomicU64::new(UNKNOWN)).collect(),
        done: AtomicBool::new(false),
        stopped,
    };
    let (tx, rx) = crossbeam_channel::unbounded();
    std::thread::scope(|scope| {
        let _done = DoneOnDrop(&shared);
        for k in 0..workers {
            let tx = tx.clone();
            let shared = &shared;
            // A worker the system cannot start is one fewer; with none, the capture decodes.
            let _ = std::thread::Builder::new()
                .name(format!("shutter-decode{k}"))
                .spawn_scoped(scope, move || shared.work(&tx));
        }
        drop(tx);
        let mut decoder = Decoder {
            shared: &shared,
            rx,
            early: HashMap::new(),
        };
        capture(&mut decoder)
    })
}

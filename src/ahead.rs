//! Files decoded ahead of their turn. The capture takes the inputs of a batch in order, and
//! decoding one (25–100 ms for a 1080p PNG or WebP) would bound a job whose encoders run on
//! many cores; so decode workers take the inputs in order and decode each one's first frame
//! (all of a still image) while the capture sends the frames before it. The capture still
//! takes them one by one in order, so outputs, failures and their order are those of a
//! serial run; the later frames of an animation are decoded by the capture, in turn.
//!
//! A worker decodes the input whose turn it is at once, as the capture alone would; another
//! input it decodes only within `window` inputs of the turn and with room in the run's
//! [`Budget`] for its frame and the turn's (see [`Budget::start_decode`]): the size of its
//! frame read from its header, or else taken as the largest so far.

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

/// What the decode workers and the capture share.
struct Shared<'a> {
    inputs: &'a [Input],
    limits: &'a DecodeLimits,
    budget: &'a Arc<Budget>,
    /// What a frame takes from the budget, per pixel.
    bytes_per_pixel: u64,
    /// How many inputs past the turn may be decoded ahead.
    window: usize,
    /// The next input a worker takes.
    next: AtomicUsize,
    /// The input the capture is on.
    turn: AtomicUsize,
    /// The largest frame so far (decoded, or read in a header), in budget bytes: the estimate
    /// of a frame whose header says nothing, and of the frame whose turn it is.
    estimate: AtomicU64,
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
                // No worker is left (none could be started): decode it here.
                Err(_) => return shared.decode(index),
            }
        }
    }

    /// Notes a frame's weight in the budget: decodes ahead expect frames as large as the
    /// largest so far.
    pub(crate) fn weighed(&self, bytes: u64) {
        self.shared.estimate.fetch_max(bytes, Ordering::SeqCst);
    }
}

impl Shared<'_> {
    fn decode(&self, index: usize) -> Result<Decoded> {
        let input = &self.inputs[index];
        // `decode` turns a decoder's panic into the input's error; anything else panicking
        // here must still answer for the input, or the capture would wait for it forever.
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut frames = source::decode(input, self.limits)?.peekable();
            frames.peek();
            Ok(Decoded {
                frames,
                ahead: None,
            })
        }))
        .unwrap_or_else(|_| {
            Err(Error::Decode {
                input: input.name.clone(),
                format: "the image".to_string(),
                reason: "the decode worker failed".to_string(),
            })
        })
    }

    fn over(&self) -> bool {
        self.done.load(Ordering::SeqCst) || (self.stopped)()
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
            // A still's size is in its header: its share is then exact, not a guess.
            let own =
                source::header_pixels(&self.inputs[index]).map(|px| px * self.bytes_per_pixel);
            if let Some(bytes) = own {
                self.estimate.fetch_max(bytes, Ordering::SeqCst);
            }
            let start = self.budget.start_decode(|| {
                let turn = self.turn.load(Ordering::SeqCst);
                if self.over() {
                    Look::Halted
                } else if index <= turn {
                    Look::Turn
                } else if index - turn <= self.window {
                    let largest = self.estimate.load(Ordering::SeqCst);
                    Look::Ahead {
                        bytes: own.unwrap_or(largest),
                        turn: largest,
                    }
                } else {
                    Look::Wait
                }
            });
            let mut ahead = match start {
                Start::Never => return,
                Start::Now => None,
                Start::Ahead(share) => Some(share),
            };
            let mut result = self.decode(index);
            if let Ok(decoded) = &mut result {
                match decoded.frames.peek() {
                    Some(Ok(first)) => {
                        let bytes =
                            self.bytes_per_pixel * u64::from(first.width) * u64::from(first.height);
                        self.estimate.fetch_max(bytes, Ordering::SeqCst);
                        if let Some(share) = &mut ahead {
                            share.resize(bytes);
                        }
                        decoded.ahead = ahead;
                    }
                    // No frame to hold: the share goes back.
                    _ => drop(ahead),
                }
            }
            if tx.send((index, result)).is_err() {
                return;
            }
        }
    }
}

/// Runs `capture` with a [`Decoder`] of `inputs` fed by `workers` decode threads (at most one
/// per input), and returns what it returns once the workers have stopped: a worker finishes
/// the decode it is in, and starts none once `capture` has returned or `stopped` is true.
#[allow(clippy::too_many_arguments)]
pub(crate) fn decode_ahead<R>(
    inputs: &[Input],
    limits: &DecodeLimits,
    budget: &Arc<Budget>,
    bytes_per_pixel: u64,
    workers: usize,
    stopped: &(dyn Fn() -> bool + Sync),
    capture: impl FnOnce(&mut Decoder<'_, '_>) -> R,
) -> R {
    let workers = workers.clamp(1, inputs.len().max(1));
    let shared = Shared {
        inputs,
        limits,
        budget,
        bytes_per_pixel,
        window: workers,
        next: AtomicUsize::new(0),
        turn: AtomicUsize::new(0),
        estimate: AtomicU64::new(0),
        done: AtomicBool::new(false),
        stopped,
    };
    let (tx, rx) = crossbeam_channel::unbounded();
    std::thread::scope(|scope| {
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
        let result = capture(&mut decoder);
        shared.done.store(true, Ordering::SeqCst);
        budget.turn_changed();
        result
    })
}

//! The bytes of file frames in flight: a run's stages hold frames by count (a channel of
//! `in_flight` between each, a queue per encoder thread), which at 1080p is a few hundred MB
//! but for a huge animated canvas (a GIF's logical screen can be 65535×65535) is many GB. The
//! capture takes a [`Held`] share of the budget for each frame it sends and waits while the
//! frames still held take too much; the share goes back when the frame is dropped, wherever
//! that is (an encoder, the callback's caller, a frame policy's eviction).
//!
//! One frame is always let through, however large, so a single frame over the budget still
//! runs, alone.
//!
//! Files decoded ahead of their turn (on decode workers, while the capture sends the frames
//! before them) count too: a worker starts such a decode only with room for it and for the
//! frame whose turn it is, and holds an [`Ahead`] share from then until the capture takes the
//! frame, when the share becomes the frame's [`Held`] one. The frame whose turn it is is
//! decoded whatever the budget, as the capture alone would.

use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// How often a capture waiting for room looks at whether the run has stopped (a run whose
/// sink has gone does not drop its frames at once).
const HALT_POLL: Duration = Duration::from_millis(100);

/// The budget of one run.
#[derive(Debug)]
pub(crate) struct Budget {
    limit: u64,
    state: Mutex<State>,
    freed: Condvar,
}

#[derive(Debug, Default)]
struct State {
    /// Frames sent on.
    in_use: u64,
    /// Frames decoded, or being decoded, ahead of their turn.
    ahead: u64,
    /// The most of `in_use + ahead` so far.
    peak: u64,
    /// Threads waiting on `freed` (no one to wake: no wake-up call).
    waiting: usize,
}

impl State {
    fn held(&self) -> u64 {
        self.in_use + self.ahead
    }
}

/// A frame's share of the budget, given back when dropped.
#[derive(Debug)]
pub(crate) struct Held {
    budget: Arc<Budget>,
    bytes: u64,
}

/// What a decode waiting in [`Budget::start_decode`] may do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Look {
    /// Its input's turn has come: it starts whatever the budget.
    Turn,
    /// It may start ahead of its turn if there is room for its frame, of `bytes`, and for the
    /// first frame of the input whose turn it is, of `turn` (both from their headers).
    Ahead { bytes: u64, turn: u64 },
    /// It waits.
    Wait,
    /// The run is over: it does not start.
    Halted,
}

/// How a decode starts.
#[derive(Debug)]
pub(crate) enum Start {
    /// In its turn, without a share.
    Now,
    /// Ahead of its turn, with this share.
    Ahead(Ahead),
    /// Not at all: the run is over.
    Never,
}

/// The share of a frame decoded ahead of its turn (its header's size while it is decoded),
/// given back when dropped or turned into the frame's [`Held`] share by [`Budget::acquire`].
#[derive(Debug)]
pub(crate) struct Ahead {
    budget: Arc<Budget>,
    bytes: u64,
}

impl Budget {
    /// A budget of `limit` bytes.
    pub(crate) fn new(limit: u64) -> Arc<Budget> {
        Arc::new(Budget {
            limit,
            state: Mutex::new(State::default()),
            freed: Condvar::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits for a change (or the poll interval), holding `state` until then.
    fn wait<'a>(&'a self, mut state: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        state.waiting += 1;
        let mut state = self
            .freed
            .wait_timeout(state, HALT_POLL)
            .unwrap_or_else(PoisonError::into_inner)
            .0;
        state.waiting -= 1;
        state
    }

    /// Releases `state`, changed, waking the threads waiting for a change, if any.
    fn changed(&self, state: MutexGuard<'_, State>) {
        let waiting = state.waiting > 0;
        drop(state);
        if waiting {
            self.freed.notify_all();
        }
    }

    /// Takes `bytes` for a frame sent on, waiting while shares held already take the budget
    /// (no frame sent on: it is taken at once, whatever its size, since the frames ahead
    /// cannot go before it). The frame's `ahead` share, if it was decoded ahead, becomes part
    /// of it. `None` when `halted` turns true while waiting.
    pub(crate) fn acquire(
        self: &Arc<Self>,
        bytes: u64,
        ahead: Option<Ahead>,
        halted: impl Fn() -> bool,
    ) -> Option<Held> {
        // Declared before the lock's guard, so that it is dropped (taking the lock) after it.
        let mut ahead = ahead;
        let own = ahead.as_ref().map_or(0, |a| a.bytes);
        let mut state = self.lock();
        while state.in_use > 0 && (state.held() - own).saturating_add(bytes) > self.limit {
            if halted() {
                return None;
            }
            state = self.wait(state);
        }
        if let Some(share) = &mut ahead {
            state.ahead -= share.bytes;
            share.bytes = 0;
        }
        state.in_use += bytes;
        state.peak = state.peak.max(state.held());
        // Decodes waiting for room may fit now that this share has moved on.
        self.changed(state);
        drop(ahead);
        Some(Held {
            budget: self.clone(),
            bytes,
        })
    }

    /// Waits until a decode may start, as `look` says, and takes the share of one decoded
    /// ahead of its turn. `look` is asked again whenever a share or the turn changes (and at
    /// least every 100 ms), under the budget's lock.
    pub(crate) fn start_decode(self: &Arc<Self>, look: impl Fn() -> Look) -> Start {
        let mut state = self.lock();
        loop {
            match look() {
                Look::Turn => return Start::Now,
                Look::Halted => return Start::Never,
                // Room for this frame and for the one whose turn it is.
                Look::Ahead { bytes, turn }
                    if bytes.saturating_add(turn) <= self.limit.saturating_sub(state.held()) =>
                {
                    state.ahead += bytes;
                    state.peak = state.peak.max(state.held());
                    return Start::Ahead(Ahead {
                        budget: self.clone(),
                        bytes,
                    });
                }
                Look::Ahead { .. } | Look::Wait => {}
            }
            state = self.wait(state);
        }
    }

    /// Wakes the decodes waiting in [`Budget::start_decode`] to look again (call it after
    /// changing what their `look` looks at).
    pub(crate) fn turn_changed(&self) {
        self.changed(self.lock());
    }

    /// The most bytes held at once so far.
    pub(crate) fn peak(&self) -> u64 {
        self.lock().peak
    }
}

impl Ahead {
    /// The share, once the frame is decoded and weighs `bytes`.
    pub(crate) fn resize(&mut self, bytes: u64) {
        let mut state = self.budget.lock();
        state.ahead = state.ahead - self.bytes + bytes;
        state.peak = state.peak.max(state.held());
        self.bytes = bytes;
        self.budget.changed(state);
    }
}

impl Drop for Ahead {
    fn drop(&mut self) {
        let mut state = self.budget.lock();
        state.ahead -= self.bytes;
        self.budget.changed(state);
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let mut state = self.budget.lock();
        state.in_use -= self.bytes;
        self.budget.changed(state);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_share_waits_for_room_and_one_is_always_let_through() {
        let budget = Budget::new(100);
        // Larger than the whole budget: alone, it goes through.
        let big = budget.acquire(250, None, || false).expect("nothing held");
        // Another waits until `halted` says the run is over.
        assert!(budget.acquire(1, None, || true).is_none());
        drop(big);
        let a = budget.acquire(60, None, || false).expect("room");
        let b = budget
            .acquire(40, None, || false)
            .expect("room: exactly the budget");
        assert!(
            budget.acquire(1, None, || true).is_none(),
            "the budget is full"
        );
        drop(a);
        let c = budget.acquire(60, None, || false).expect("room again");
        assert_eq!(budget.peak(), 250);
        drop((b, c));
        assert_eq!(budget.state.lock().unwrap().in_use, 0);
    }

    fn held(budget: &Budget) -> (u64, u64) {
        let state = budget.lock();
        (state.in_use, state.ahead)
    }

    #[test]
    fn a_decode_ahead_needs_room_for_its_frame_and_the_turns_and_its_share_moves_on() {
        let budget = Budget::new(100);
        // Asked again, a decode without room would wait: it is told the run is over instead.
        let ahead_of = |bytes: u64, turn: u64| {
            let asked = std::cell::Cell::new(false);
            let look = || match asked.replace(true) {
                false => Look::Ahead { bytes, turn },
                true => Look::Halted,
            };
            match budget.start_decode(look) {
                Start::Ahead(share) => Some(share),
                Start::Never => None,
                Start::Now => panic!("not its turn"),
            }
        };
        let ahead = |bytes: u64| ahead_of(bytes, bytes);
        // The turn's decode starts whatever the budget; a stopped run's does not.
        let sent = budget.acquire(70, None, || false).expect("nothing held");
        assert!(matches!(budget.start_decode(|| Look::Turn), Start::Now));
        assert!(matches!(budget.start_decode(|| Look::Halted), Start::Never));
        drop(sent);
        // Room for the frame and for the turn's, whatever their sizes.
        assert!(ahead_of(10, 91).is_none());
        drop(ahead_of(10, 90).expect("10 + 90"));
        // Room for two frames of the same size: one ahead, one in turn.
        let mut first = ahead(50).expect("room for 2 × 50");
        assert_eq!(held(&budget), (0, 50));
        first.resize(30);
        assert_eq!(held(&budget), (0, 30));
        let second = ahead(35).expect("room for 2 × 35 beside 30");
        assert_eq!(held(&budget), (0, 65));
        // 35 left: no room for 2 × 18.
        assert!(ahead(18).is_none());
        assert_eq!(held(&budget), (0, 65));
        // The frames ahead do not keep the turn's frame back once nothing is sent on...
        let turn = budget.acquire(20, None, || true).expect("nothing sent on");
        assert_eq!(held(&budget), (20, 65));
        // ...and a frame decoded ahead takes its own share's place when sent.
        let first = budget
            .acquire(30, Some(first), || true)
            .expect("its own share");
        assert_eq!(held(&budget), (50, 35));
        assert_eq!(budget.peak(), 85);
        // A frame sent on waits while it would go over.
        assert!(budget.acquire(20, None, || true).is_none());
        drop((turn, first, second));
        assert_eq!(held(&budget), (0, 0));
        assert_eq!(
            Arc::strong_count(&budget),
            1,
            "every share let the budget go"
        );
    }

    #[test]
    fn a_decode_ahead_waits_for_room_or_its_turn_and_looks_again_when_told() {
        let budget = Budget::new(100);
        let sent = budget.acquire(60, None, || false).expect("nothing held");
        let turn = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (tx, rx) = std::sync::mpsc::channel();
        let waiter = {
            let (budget, turn) = (budget.clone(), turn.clone());
            std::thread::spawn(move || {
                budget.start_decode(|| {
                    let _ = tx.send(());
                    if turn.load(std::sync::atomic::Ordering::SeqCst) {
                        Look::Turn
                    } else {
                        // 30 and 30 are over the 40 left.
                        Look::Ahead {
                            bytes: 30,
                            turn: 30,
                        }
                    }
                })
            })
        };
        rx.recv().unwrap();
        turn.store(true, std::sync::atomic::Ordering::SeqCst);
        budget.turn_changed();
        assert!(matches!(waiter.join().unwrap(), Start::Now));
        // Told to wait (a size not known yet), it waits whatever the room, and goes once
        // told it may.
        drop(sent);
        let (tx, rx) = std::sync::mpsc::channel();
        let size = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let waiter = {
            let (budget, size) = (budget.clone(), size.clone());
            std::thread::spawn(move || {
                let start = budget.start_decode(|| {
                    let _ = tx.send(());
                    match size.load(std::sync::atomic::Ordering::SeqCst) {
                        0 => Look::Wait,
                        bytes => Look::Ahead { bytes, turn: bytes },
                    }
                });
                matches!(start, Start::Ahead(ref share) if share.bytes == 50)
            })
        };
        rx.recv().unwrap();
        assert_eq!(held(&budget), (0, 0), "nothing taken while waiting");
        size.store(50, std::sync::atomic::Ordering::SeqCst);
        budget.turn_changed();
        assert!(waiter.join().unwrap());
        assert_eq!(held(&budget), (0, 0), "the share went back");
    }

    #[test]
    fn a_waiting_share_goes_through_when_another_is_dropped_on_another_thread() {
        let budget = Budget::new(10);
        let first = budget.acquire(10, None, || false).expect("nothing held");
        let (tx, rx) = std::sync::mpsc::channel();
        let waiter = {
            let budget = budget.clone();
            std::thread::spawn(move || {
                tx.send(()).unwrap();
                budget.acquire(10, None, || false).is_some()
            })
        };
        rx.recv().unwrap();
        drop(first);
        assert!(waiter.join().unwrap());
    }
}

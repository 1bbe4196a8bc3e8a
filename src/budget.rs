//! The bytes of file frames in flight: a run's stages hold frames by count (a channel of
//! `in_flight` between each, a queue per encoder thread), which at 1080p is a few hundred MB
//! but for a huge animated canvas (a GIF's logical screen can be 65535×65535) is many GB. The
//! capture takes a [`Held`] share of the budget for each frame it sends and waits while the
//! frames still held take too much; the share goes back when the frame is dropped, wherever
//! that is (an encoder, the callback's caller, a frame policy's eviction).
//!
//! One frame is always let through, however large, so a single frame over the budget still
//! runs, alone.

use std::sync::{Arc, Condvar, Mutex, PoisonError};
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
    in_use: u64,
    peak: u64,
}

/// A frame's share of the budget, given back when dropped.
#[derive(Debug)]
pub(crate) struct Held {
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

    /// Takes `bytes`, waiting while shares held already take the budget (none held: it is
    /// taken at once, whatever its size). `None` when `halted` turns true while waiting.
    pub(crate) fn acquire(self: &Arc<Self>, bytes: u64, halted: impl Fn() -> bool) -> Option<Held> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        while state.in_use > 0 && state.in_use.saturating_add(bytes) > self.limit {
            if halted() {
                return None;
            }
            state = self
                .freed
                .wait_timeout(state, HALT_POLL)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        state.in_use += bytes;
        state.peak = state.peak.max(state.in_use);
        Some(Held {
            budget: self.clone(),
            bytes,
        })
    }

    /// The most bytes held at once so far.
    pub(crate) fn peak(&self) -> u64 {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .peak
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let mut state = self
            .budget
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        state.in_use -= self.bytes;
        drop(state);
        self.budget.freed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_share_waits_for_room_and_one_is_always_let_through() {
        let budget = Budget::new(100);
        // Larger than the whole budget: alone, it goes through.
        let big = budget.acquire(250, || false).expect("nothing held");
        // Another waits until `halted` says the run is over.
        assert!(budget.acquire(1, || true).is_none());
        drop(big);
        let a = budget.acquire(60, || false).expect("room");
        let b = budget
            .acquire(40, || false)
            .expect("room: exactly the budget");
        assert!(budget.acquire(1, || true).is_none(), "the budget is full");
        drop(a);
        let c = budget.acquire(60, || false).expect("room again");
        assert_eq!(budget.peak(), 250);
        drop((b, c));
        assert_eq!(budget.state.lock().unwrap().in_use, 0);
    }

    #[test]
    fn a_waiting_share_goes_through_when_another_is_dropped_on_another_thread() {
        let budget = Budget::new(10);
        let first = budget.acquire(10, || false).expect("nothing held");
        let (tx, rx) = std::sync::mpsc::channel();
        let waiter = {
            let budget = budget.clone();
            std::thread::spawn(move || {
                tx.send(()).unwrap();
                budget.acquire(10, || false).is_some()
            })
        };
        rx.recv().unwrap();
        drop(first);
        assert!(waiter.join().unwrap());
    }
}

//! The outcome of a `map_async`, and a wait for it that holds when several threads poll one
//! device.
//!
//! wgpu runs a mapping's callback on whichever thread's `Device::poll` finds the mapping ready,
//! after that poll has released its locks. So a thread whose own `poll(Wait)` for the
//! submission has returned can still find the callback not run yet: another thread polling the
//! same device (a second pipeline, or another test on a shared context) took it and has not
//! run it yet. [`MapSignal::settle`] sleeps on a condition variable until the callback has
//! run, wherever it runs.

use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// How long [`MapSignal::settle`] waits for a callback that some poll has already taken. It runs
/// within microseconds of that poll returning; the limit only turns a callback that never runs
/// (a wgpu bug) into an error instead of a hang.
pub(crate) const SETTLE_LIMIT: Duration = Duration::from_secs(30);

/// Where a buffer's mapping stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum MapState {
    /// Asked for (or never asked for): the callback has not run.
    #[default]
    Pending,
    /// Mapped and ready to read or write.
    Mapped,
    /// The callback reported an error (device lost, validation error).
    Failed,
}

/// A mapping's state, set by its `map_async` callback on whichever thread runs it.
#[derive(Debug, Default)]
pub(crate) struct MapSignal {
    state: Mutex<MapState>,
    changed: Condvar,
}

impl MapSignal {
    /// A signal that starts in `state` (`Mapped` for a buffer created mapped).
    pub(crate) fn new(state: MapState) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(state),
            changed: Condvar::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, MapState> {
        // The lock only guards a plain value, so a panic elsewhere cannot leave it torn.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The state now, without waiting.
    pub(crate) fn state(&self) -> MapState {
        *self.lock()
    }

    /// Sets the state and wakes every waiter.
    pub(crate) fn set(&self, state: MapState) {
        *self.lock() = state;
        self.changed.notify_all();
    }

    /// Starts mapping `slice`: the state is `Pending` until the callback runs, then `Mapped` or
    /// `Failed`.
    pub(crate) fn map(self: &Arc<Self>, slice: wgpu::BufferSlice<'_>, mode: wgpu::MapMode) {
        self.set(MapState::Pending);
        let signal = Arc::clone(self);
        slice.map_async(mode, move |result| {
            signal.set(if result.is_ok() {
                MapState::Mapped
            } else {
                MapState::Failed
            });
        });
    }

    /// The state once the callback has run, for a caller whose `poll(Wait)` for the
    /// submission the mapping waits on has returned: the callback has then been taken by that
    /// poll or by another thread's, and runs at once. `Pending` only after `limit`.
    pub(crate) fn settle(&self, limit: Duration) -> MapState {
        let guard = self.lock();
        let (guard, _) = self
            .changed
            .wait_timeout_while(guard, limit, |state| *state == MapState::Pending)
            .unwrap_or_else(PoisonError::into_inner);
        *guard
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settle_waits_for_a_callback_run_on_another_thread() {
        let signal = MapSignal::new(MapState::Pending);
        let setter = Arc::clone(&signal);
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            // Set only once the main thread is about to wait (or already waiting).
            rx.recv().expect("the test sends once");
            setter.set(MapState::Mapped);
        });
        tx.send(()).expect("the thread is alive");
        assert_eq!(signal.settle(SETTLE_LIMIT), MapState::Mapped);
        thread.join().expect("the setter does not panic");
    }

    #[test]
    fn settle_returns_a_failure_and_gives_up_on_a_callback_that_never_runs() {
        let failed = MapSignal::new(MapState::Pending);
        failed.set(MapState::Failed);
        assert_eq!(failed.settle(SETTLE_LIMIT), MapState::Failed);
        let never = MapSignal::new(MapState::Pending);
        assert_eq!(never.settle(Duration::from_millis(1)), MapState::Pending);
        assert_eq!(MapSignal::default().state(), MapState::Pending);
    }
}

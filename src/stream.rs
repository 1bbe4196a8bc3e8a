//! Streaming rules between stages: what a stage does with a frame when the next one is busy
//! (the frame policy), the counters that account for every frame, and the latency histogram.

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crossbeam_channel::{Receiver, SendError, Sender, TrySendError};

use crate::error::Error;

/// What a stage does with a new frame when the next stage is still busy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FramePolicy {
    /// Wait: every captured frame gives one output (files, unpaced patterns).
    #[default]
    Lossless,
    /// Drop the oldest waiting frame so the newest goes through (webcams, paced patterns:
    /// Gradio's latest-wins behaviour, without its growing lag). The GPU stage starts on the
    /// newest frame waiting (with a batch of 1), and a callback that is the run's only sink
    /// (no output files) takes the newest frame waiting: the older ones waiting with it are
    /// dropped.
    Latest,
    /// Drop the incoming frame and keep the ones already waiting.
    DropNew,
}

impl FramePolicy {
    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            FramePolicy::Lossless => "lossless",
            FramePolicy::Latest => "latest",
            FramePolicy::DropNew => "drop-new",
        }
    }
}

impl fmt::Display for FramePolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for FramePolicy {
    type Err = Error;
    /// Any case, spaces around ignored, as for modes and filters.
    fn from_str(s: &str) -> Result<Self, Error> {
        match s.trim().to_ascii_lowercase().as_str() {
            "lossless" => Ok(FramePolicy::Lossless),
            "latest" => Ok(FramePolicy::Latest),
            "drop-new" => Ok(FramePolicy::DropNew),
            _ => Err(Error::Usage(format!(
                "policy (--policy): unknown policy '{s}' (expected lossless, latest or drop-new)"
            ))),
        }
    }
}

/// One bounded channel seen from its sending stage, applying a frame policy. Messages that
/// are not droppable (end of stream, failures) are always sent blocking.
pub(crate) struct Link<T> {
    tx: Sender<T>,
    /// The same channel's receiving end, to drop the oldest message under `Latest` (only
    /// then: a receiver kept here would keep the channel open after its consumer is gone, and
    /// a blocking send would wait for it forever).
    rx: Option<Receiver<T>>,
    policy: FramePolicy,
}

/// What became of a message handed to [`Link::send`].
pub(crate) enum Sent<T> {
    /// Queued. Under `Latest`, an older message may have been evicted to make room.
    Queued { evicted: Option<T> },
    /// Not queued: `DropNew` found the channel full.
    Refused(T),
}

impl<T> Link<T> {
    pub(crate) fn new(tx: Sender<T>, rx: Receiver<T>, policy: FramePolicy) -> Self {
        let rx = (policy == FramePolicy::Latest).then_some(rx);
        Link { tx, rx, policy }
    }

    /// Sends a message that must not be dropped.
    pub(crate) fn send_blocking(&self, msg: T) -> Result<(), SendError<T>> {
        self.tx.send(msg)
    }

    /// Sends a frame under the link's policy. `Err` only when the receiver is gone.
    pub(crate) fn send(&self, msg: T) -> Result<Sent<T>, SendError<T>> {
        match self.policy {
            FramePolicy::Lossless => self.tx.send(msg).map(|()| Sent::Queued { evicted: None }),
            FramePolicy::DropNew => match self.tx.try_send(msg) {
                Ok(()) => Ok(Sent::Queued { evicted: None }),
                Err(TrySendError::Full(msg)) => Ok(Sent::Refused(msg)),
                Err(TrySendError::Disconnected(msg)) => Err(SendError(msg)),
            },
            FramePolicy::Latest => {
                // One sender per link: after one eviction there is room, unless the receiver
                // took a message meanwhile, which also makes room.
                let mut msg = msg;
                let mut evicted = None;
                loop {
                    match self.tx.try_send(msg) {
                        Ok(()) => return Ok(Sent::Queued { evicted }),
                        Err(TrySendError::Full(back)) => {
                            msg = back;
                            if let Some(Ok(old)) = self.rx.as_ref().map(Receiver::try_recv) {
                                evicted = Some(old);
                            }
                        }
                        Err(TrySendError::Disconnected(msg)) => return Err(SendError(msg)),
                    }
                }
            }
        }
    }
}

/// Counts of every frame's fate, shared by the stages.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub captured: AtomicU64,
    pub processed: AtomicU64,
    pub dropped_before_gpu: AtomicU64,
    pub dropped_before_sink: AtomicU64,
    pub dropped_by_interval: AtomicU64,
    pub dropped_after_stop: AtomicU64,
    pub delivered: AtomicU64,
    /// Frames processed that reached no output: their input failed, or their own frame file.
    pub failed: AtomicU64,
    /// File inputs with transparency converted to a mode without alpha.
    pub alpha_dropped: AtomicU64,
}

impl Counters {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// Frames a run dropped, by where and why. `captured = processed + before_gpu + by_interval`
/// and `processed = delivered + before_sink + after_stop +`
/// [`failed_frames`](crate::Stats::failed_frames).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Drops {
    /// At the capture → GPU link, by the frame policy: the stage that runs the ops (on the GPU
    /// or, with the CPU backend, on the CPU) was busy.
    pub before_gpu: u64,
    /// At the GPU → sink link, by the frame policy (encoding or the callback was busy).
    pub before_sink: u64,
    /// By `stream_every`: captured before the next tick, and dropped there, before decoding
    /// and processing (only the first frame captured at or after each tick goes on).
    pub by_interval: u64,
    /// Files' frames processed when the run stopped (the stop flag, the time limit) but not
    /// yet delivered or encoded: a stop ends a batch with the frames in flight, not with
    /// every frame decoded ahead of it. Also a stream's frames fed to its one GIF, WebP or
    /// npy file when that file fails, and those that come after (the failure stops the
    /// stream when no callback takes its frames).
    pub after_stop: u64,
}

impl Drops {
    /// All dropped frames.
    pub fn total(&self) -> u64 {
        self.before_gpu + self.before_sink + self.by_interval + self.after_stop
    }
}

/// Capture-to-sink latency percentiles.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Latency {
    /// The median, to within 4%: the upper edge of the histogram bucket it falls in (at most
    /// `max`).
    pub p50: Duration,
    /// The 99th percentile, to the same 4% as `p50`.
    pub p99: Duration,
    /// The largest latency, exact.
    pub max: Duration,
    /// Frames measured.
    pub count: u64,
}

/// A latency histogram in constant memory: buckets 4% wide from 1 µs to ~20 min, so a run of
/// any length keeps the same footprint.
#[derive(Debug, Clone)]
pub(crate) struct LatencyHistogram {
    buckets: Vec<u64>,
    max: Duration,
    count: u64,
}

const BUCKET_GROWTH: f64 = 1.04;
const BUCKETS: usize = 720;

impl Default for LatencyHistogram {
    fn default() -> Self {
        LatencyHistogram {
            buckets: vec![0; BUCKETS],
            max: Duration::ZERO,
            count: 0,
        }
    }
}

impl LatencyHistogram {
    fn bucket(d: Duration) -> usize {
        let micros = d.as_secs_f64() * 1e6;
        if micros <= 1.0 {
            return 0;
        }
        ((micros.ln() / BUCKET_GROWTH.ln()).ceil() as usize).min(BUCKETS - 1)
    }

    /// The upper edge of bucket `i`.
    fn edge(i: usize) -> Duration {
        Duration::from_secs_f64(BUCKET_GROWTH.powi(i as i32) / 1e6)
    }

    pub(crate) fn record(&mut self, d: Duration) {
        self.buckets[Self::bucket(d)] += 1;
        self.max = self.max.max(d);
        self.count += 1;
    }

    fn quantile(&self, q: f64) -> Duration {
        let rank = ((self.count as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Self::edge(i).min(self.max);
            }
        }
        self.max
    }

    pub(crate) fn summary(&self) -> Option<Latency> {
        (self.count > 0).then(|| Latency {
            p50: self.quantile(0.50),
            p99: self.quantile(0.99),
            max: self.max,
            count: self.count,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latest_evicts_the_oldest_and_drop_new_refuses_the_newest() {
        let (tx, rx) = crossbeam_channel::bounded(2);
        let latest = Link::new(tx.clone(), rx.clone(), FramePolicy::Latest);
        for k in 0..5 {
            let _ = latest.send(k).unwrap();
        }
        assert_eq!(rx.try_iter().collect::<Vec<_>>(), vec![3, 4]);

        let drop_new = Link::new(tx, rx.clone(), FramePolicy::DropNew);
        let mut refused = Vec::new();
        for k in 0..5 {
            if let Sent::Refused(k) = drop_new.send(k).unwrap() {
                refused.push(k);
            }
        }
        assert_eq!(rx.try_iter().collect::<Vec<_>>(), vec![0, 1]);
        assert_eq!(refused, vec![2, 3, 4]);
    }

    #[test]
    fn histogram_quantiles_are_within_one_bucket() {
        let mut h = LatencyHistogram::default();
        for ms in 1..=100u64 {
            h.record(Duration::from_millis(ms));
        }
        let s = h.summary().unwrap();
        assert_eq!(s.count, 100);
        assert_eq!(s.max, Duration::from_millis(100));
        let p50 = s.p50.as_secs_f64() * 1e3;
        assert!((50.0..=52.1).contains(&p50), "p50 {p50} ms");
        let p99 = s.p99.as_secs_f64() * 1e3;
        assert!((99.0..=100.0).contains(&p99), "p99 {p99} ms");
    }

    #[test]
    fn policies_parse_by_name() {
        assert_eq!(
            "latest".parse::<FramePolicy>().unwrap(),
            FramePolicy::Latest
        );
        assert_eq!(
            " Drop-New ".parse::<FramePolicy>().unwrap(),
            FramePolicy::DropNew
        );
        let err = "newest".parse::<FramePolicy>().unwrap_err();
        assert!(err.is_usage());
        assert!(err.to_string().contains("unknown policy 'newest'"), "{err}");
    }
}

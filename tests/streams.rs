//! Live streams through the pipeline: stream_every, time_limit, frame policies, accounting,
//! bounded lag and flat memory. Time is a manual clock or a count, never a sleep.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use shutter::source::live::{Clock, FrameGrabber, ManualClock, RawFormat, RawFrame};
use shutter::source::pattern::read_frame_number;
use shutter::{DeviceChoice, Error, FrameArray, FramePolicy, Pipeline, Source, Stats};

/// The frame's RGB array as RGBA bytes, for `read_frame_number`.
fn rgba_of(array: &FrameArray) -> (Vec<u8>, u32, u32) {
    let FrameArray::U8(rgb) = array else {
        panic!("RGB frames are u8");
    };
    let (h, w) = (rgb.shape()[0], rgb.shape()[1]);
    let bytes: Vec<u8> = rgb.iter().copied().collect();
    let rgba = bytes
        .chunks_exact(3)
        .flat_map(|p| [p[0], p[1], p[2], 255])
        .collect();
    (rgba, w as u32, h as u32)
}

fn assert_accounts_for_every_frame(stats: &Stats) {
    assert_eq!(
        stats.frames + stats.drops.before_gpu + stats.drops.by_interval,
        stats.captured,
        "processed + dropped at the capture = captured: {stats:?}"
    );
    assert_eq!(
        stats.delivered + stats.drops.before_sink + stats.drops.after_stop,
        stats.frames,
        "delivered + dropped after = processed: {stats:?}"
    );
}

/// Runs `pattern:320x240@60` for 3 s of manual-clock time with a 0.5 s interval and returns
/// the delivered frame numbers.
fn pattern_ticks(policy: FramePolicy, device: DeviceChoice) -> (Vec<u64>, Stats) {
    pattern_numbers(
        (60.0, Duration::from_millis(500), Duration::from_secs(3)),
        policy,
        device,
    )
}

/// Runs `pattern:320x240@FPS` for `limit` of manual-clock time with `interval` and returns the
/// delivered frame numbers.
fn pattern_numbers(
    (fps, interval, limit): (f64, Duration, Duration),
    policy: FramePolicy,
    device: DeviceChoice,
) -> (Vec<u64>, Stats) {
    let clock = Arc::new(ManualClock::new());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let stats = Pipeline::builder()
        .source(Source::Pattern {
            width: 320,
            height: 240,
            fps: Some(fps),
        })
        .clock(clock)
        .device(device)
        .policy(policy)
        .stream_every(interval)
        .time_limit(limit)
        .on_frame(move |frame| {
            let (rgba, w, h) = rgba_of(&frame.array());
            let n = read_frame_number(&rgba, w, h).ok_or("no frame number in the pattern")?;
            sink.lock().unwrap().push(n);
            Ok(())
        })
        .build()
        .unwrap()
        .run()
        .unwrap();
    let numbers = seen.lock().unwrap().clone();
    (numbers, stats)
}

#[test]
fn stream_every_half_second_delivers_the_frame_at_each_tick_of_a_3s_pattern() {
    let (numbers, stats) = pattern_ticks(FramePolicy::Lossless, DeviceChoice::Cpu);
    // 60 fps: the frame at tick t is number 60·t; the stream ends before t = 3 s.
    assert_eq!(numbers, vec![0, 30, 60, 90, 120, 150]);
    assert_eq!(stats.captured, 180);
    assert_eq!(stats.delivered, 6);
    assert_eq!(stats.drops.by_interval, 174);
    // The 174 are dropped as they are captured: only the 6 delivered are processed (before,
    // all 180 were converted and then thrown away at the sink).
    assert_eq!(stats.frames, 6);
    assert_accounts_for_every_frame(&stats);
}

#[test]
fn an_interval_the_frame_period_does_not_divide_takes_the_first_frame_at_or_after_each_tick() {
    // 100 fps and 35 ms: tick j is at 35·j ms, and the first frame at or after it is frame
    // ⌈3.5·j⌉. In floating point 210 / 35 is 5.999…, which let frame 22 through after frame
    // 21 in the interval from 210 ms (and likewise at 350, 420, … ms): 36 frames for 29 ticks.
    let (numbers, stats) = pattern_numbers(
        (100.0, Duration::from_millis(35), Duration::from_secs(1)),
        FramePolicy::Lossless,
        DeviceChoice::Cpu,
    );
    let expected: Vec<u64> = (0..=28u64).map(|j| (7 * j).div_ceil(2)).collect();
    assert_eq!(numbers, expected);
    assert_eq!(stats.captured, 100);
    assert_accounts_for_every_frame(&stats);
}

#[test]
fn fps_counts_the_frames_processed_and_delivered_fps_those_delivered() {
    // 12 frames through the ops in 2.5 s, 5 of them delivered (the others dropped before the
    // sink): 12 / 2.5 = 4.8 fps processed, 5 / 2.5 = 2 fps delivered.
    let stats = Stats {
        captured: 30,
        frames: 12,
        delivered: 5,
        elapsed: Duration::from_millis(2500),
        ..Stats::default()
    };
    assert_eq!(stats.fps(), 4.8);
    assert_eq!(stats.delivered_fps(), 2.0);
    // A run that took no measurable time has no rate rather than an infinite one.
    let instant = Stats {
        elapsed: Duration::ZERO,
        ..stats
    };
    assert_eq!((instant.fps(), instant.delivered_fps()), (0.0, 0.0));
}

#[test]
fn max_frames_counts_the_frames_an_interval_drops_as_captured() {
    // `--frames 25 --stream-every 0.1` on a 100 fps pattern stops after capturing 25 frames
    // (0..=24), the interval's drops among them: of those, the first at or after each 100 ms
    // tick goes on, frames 0, 10 and 20, each keeping its capture number as its `seq`.
    let clock = Arc::new(ManualClock::new());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let stats = Pipeline::builder()
        .source(Source::Pattern {
            width: 64,
            height: 48,
            fps: Some(100.0),
        })
        .clock(clock)
        .device(DeviceChoice::Cpu)
        .policy(FramePolicy::Lossless)
        .stream_every(Duration::from_millis(100))
        .max_frames(25)
        .on_frame(move |frame| {
            let (rgba, w, h) = rgba_of(&frame.array());
            let n = read_frame_number(&rgba, w, h).ok_or("no frame number in the pattern")?;
            sink.lock().unwrap().push((n, frame.meta.seq));
            Ok(())
        })
        .build()
        .unwrap()
        .run()
        .unwrap();
    assert_eq!(*seen.lock().unwrap(), [(0, 0), (10, 10), (20, 20)]);
    assert_eq!(
        (stats.captured, stats.drops.by_interval, stats.delivered),
        (25, 22, 3),
        "{stats:?}"
    );
    assert_accounts_for_every_frame(&stats);
}

#[test]
fn under_latest_at_most_one_frame_per_interval_goes_through() {
    let device = if common::gpu_or_skip("latest ticks").is_some() {
        DeviceChoice::Gpu
    } else {
        DeviceChoice::Cpu
    };
    let (numbers, stats) = pattern_ticks(FramePolicy::Latest, device);
    // Virtual time runs as fast as the machine: the policy may drop the frame at a tick, and
    // then the next frame through belongs to a later interval. Never two in one interval.
    let intervals: Vec<u64> = numbers.iter().map(|n| n / 30).collect();
    assert!(
        intervals.windows(2).all(|w| w[0] < w[1]),
        "one frame per interval, in order: {numbers:?}"
    );
    assert!(!numbers.is_empty() && numbers.len() <= 6, "{numbers:?}");
    assert!(numbers.iter().all(|&n| n < 180));
    assert_eq!(stats.captured, 180);
    assert_accounts_for_every_frame(&stats);
}

/// Small RGB frames, one per token: the sink hands out `RATIO` tokens per delivered frame, so
/// the source runs `RATIO` times faster than the sink, by count rather than by time.
struct TokenGrabber {
    produced: Arc<AtomicU64>,
    tokens: crossbeam_channel::Receiver<()>,
    clock: Arc<ManualClock>,
}

const RATIO: u64 = 10;

impl FrameGrabber for TokenGrabber {
    fn next_frame(&mut self) -> shutter::Result<Option<RawFrame>> {
        if self.tokens.recv().is_err() {
            return Ok(None);
        }
        let k = self.produced.fetch_add(1, Ordering::SeqCst);
        self.clock.advance(Duration::from_millis(1));
        let data = common::random_rgba(16, 8, k + 1)
            .chunks_exact(4)
            .flat_map(|p| [p[0], p[1], p[2]])
            .collect();
        Ok(Some(RawFrame {
            width: 16,
            height: 8,
            format: RawFormat::Rgb,
            data,
            timestamp: self.clock.now(),
        }))
    }

    fn describe(&self) -> String {
        "token grabber".into()
    }
}

/// Runs `frames` frames from a source `RATIO`× faster than the sink; returns, per delivered
/// frame, how many frames the source had produced after it (the lag, in frames).
fn run_slow_sink(policy: FramePolicy, frames: u64) -> (Vec<u64>, Stats) {
    run_slow_sink_with(Some(policy), None, frames)
}

/// [`run_slow_sink`] with the policy left to its default when `None`, and `stream_every`.
fn run_slow_sink_with(
    policy: Option<FramePolicy>,
    stream_every: Option<Duration>,
    frames: u64,
) -> (Vec<u64>, Stats) {
    let produced = Arc::new(AtomicU64::new(0));
    let clock = Arc::new(ManualClock::new());
    let (token_tx, token_rx) = crossbeam_channel::unbounded();
    // Enough to fill every queue once, so the source never waits on an idle sink.
    for _ in 0..64 {
        token_tx.send(()).unwrap();
    }
    let grabber = TokenGrabber {
        produced: produced.clone(),
        tokens: token_rx,
        clock: clock.clone(),
    };
    let lags = Arc::new(Mutex::new(Vec::new()));
    let record = lags.clone();
    let mut builder = Pipeline::builder()
        .source(Source::grabber(grabber))
        .clock(clock)
        .device(DeviceChoice::Cpu)
        .in_flight(2)
        .max_frames(frames);
    if let Some(policy) = policy {
        builder = builder.policy(policy);
    }
    if let Some(interval) = stream_every {
        builder = builder.stream_every(interval);
    }
    let stats = builder
        .on_frame(move |frame| {
            let lag = produced.load(Ordering::SeqCst) - 1 - frame.meta.seq;
            record.lock().unwrap().push(lag);
            for _ in 0..RATIO {
                let _ = token_tx.send(());
            }
            Ok(())
        })
        .build()
        .unwrap()
        .run()
        .unwrap();
    let lags = lags.lock().unwrap().clone();
    (lags, stats)
}

#[test]
fn a_slow_sink_under_latest_keeps_lag_bounded_and_lossless_drops_nothing() {
    let (lags, stats) = run_slow_sink(FramePolicy::Latest, 20_000);
    assert_accounts_for_every_frame(&stats);
    assert!(
        stats.drops.total() > 0,
        "a slow sink must cause drops: {stats:?}"
    );
    // Queues hold a few frames and the source can run at most 64 + RATIO frames ahead of the
    // sink (its tokens). Were lag to grow with the run, 20,000 frames at a 10:1 ratio would
    // take it into the thousands; it must stay under that fixed bound from start to end.
    let bound = RATIO * 8 + 64;
    let quarter = lags.len() / 4;
    let early = lags[..quarter].iter().copied().max().unwrap_or(0);
    let late = lags[lags.len() - quarter..]
        .iter()
        .copied()
        .max()
        .unwrap_or(0);
    eprintln!(
        "lag in frames: first quarter max {early}, last quarter max {late}, {} deliveries",
        lags.len()
    );
    let worst = lags.iter().copied().max().unwrap_or(0);
    assert!(worst <= bound, "lag reached {worst} frames (bound {bound})");

    let (lags, stats) = run_slow_sink(FramePolicy::Lossless, 2_000);
    assert_eq!(stats.drops.total(), 0);
    assert_eq!(stats.delivered, 2_000);
    assert_eq!(lags.len(), 2_000);
    assert_accounts_for_every_frame(&stats);
}

#[test]
fn a_stream_every_interval_makes_latest_the_default_so_frames_do_not_age() {
    // An unpaced closure defaults to lossless: its frames wait behind a slow callback. With
    // an interval (Gradio's `stream_every`), each frame delivered should be the newest, as a
    // paced source's is: the default is then latest, and the lag stays bounded.
    let (lags, stats) = run_slow_sink_with(None, Some(Duration::from_millis(1)), 5_000);
    assert_accounts_for_every_frame(&stats);
    assert_eq!(stats.drops.by_interval, 0, "a frame a tick: {stats:?}");
    assert!(
        stats.drops.before_gpu + stats.drops.before_sink > 0,
        "a slow callback must cause drops under latest: {stats:?}"
    );
    let worst = lags.iter().copied().max().unwrap_or(0);
    assert!(worst <= RATIO * 8 + 64, "lag reached {worst} frames");
    // Without the interval the closure stays lossless.
    let (_, stats) = run_slow_sink_with(None, None, 500);
    assert_eq!(
        (stats.drops.total(), stats.delivered),
        (0, 500),
        "{stats:?}"
    );
}

#[test]
fn the_longest_interval_delivers_the_first_frame_only_and_a_paced_closure_keeps_its_name() {
    // `stream_every(Duration::MAX)`: the next tick is past what a `Duration` holds, and
    // computing it panicked. And `with_fps` put its rate into the frames' name.
    use shutter::source::live::FuncGrabber;
    let clock = Arc::new(ManualClock::new());
    let grabber =
        FuncGrabber::from_frames((1..=3u64).map(|k| (4u32, 2u32, common::random_rgba(4, 2, k))))
            .with_clock(clock.clone())
            .with_fps(1000.0)
            .named("cam");
    let names = Arc::new(Mutex::new(Vec::new()));
    let (seen, started) = (names.clone(), names.clone());
    let stats = Pipeline::builder()
        .source(Source::grabber(grabber))
        .clock(clock)
        .device(DeviceChoice::Cpu)
        .stream_every(Duration::MAX)
        .on_event(move |event| {
            if let shutter::pipeline::Event::Started { names, .. } = event {
                started
                    .lock()
                    .unwrap()
                    .extend(names.iter().map(|n| format!("started {n}")));
            }
        })
        .on_frame(move |frame| {
            seen.lock().unwrap().push(frame.meta.name.to_string());
            Ok(())
        })
        .build()
        .unwrap()
        .run()
        .unwrap();
    assert_eq!(
        (stats.delivered, stats.drops.by_interval),
        (1, 2),
        "{stats:?}"
    );
    assert_accounts_for_every_frame(&stats);
    assert_eq!(*names.lock().unwrap(), ["started cam", "cam"]);
}

#[test]
fn drop_new_keeps_the_frames_already_waiting() {
    let (_, stats) = run_slow_sink(FramePolicy::DropNew, 5000);
    assert_accounts_for_every_frame(&stats);
    assert!(stats.drops.total() > 0);
}

#[test]
fn a_stop_flag_ends_the_stream_cleanly_and_completes_the_files() {
    let tmp = tempfile::TempDir::new().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let trigger = stop.clone();
    let out_dir = tmp.path().join("out");
    let stats = Pipeline::builder()
        .source(Source::Pattern {
            width: 32,
            height: 16,
            fps: None,
        })
        .device(DeviceChoice::Cpu)
        .stop_flag(stop)
        .output(
            shutter::pipeline::Output::Dir(out_dir.clone()),
            shutter::Format::Png,
        )
        .on_frame(move |frame| {
            if frame.meta.seq == 9 {
                trigger.store(true, Ordering::SeqCst);
            }
            Ok(())
        })
        .build()
        .unwrap()
        .run()
        .unwrap();
    assert!(stats.captured >= 10);
    assert_eq!(stats.written.len() as u64, stats.delivered);
    for path in &stats.written {
        let img = image::open(path).expect("every written file is complete");
        assert_eq!((img.width(), img.height()), (32, 16));
    }
}

/// A 5-frame animated GIF, each frame a different colour.
fn five_frame_gif(path: &std::path::Path) {
    let file = std::fs::File::create(path).unwrap();
    let mut enc = image::codecs::gif::GifEncoder::new(file);
    for k in 0..5u32 {
        let img = image::RgbaImage::from_fn(6, 4, |x, y| {
            image::Rgba([(x * 40 + k * 50) as u8, (y * 60) as u8, (k * 60) as u8, 255])
        });
        let delay = image::Delay::from_numer_denom_ms(40, 1);
        enc.encode_frame(image::Frame::from_parts(img, 0, 0, delay))
            .unwrap();
    }
}

#[test]
fn stream_every_is_refused_on_files_which_it_would_drop_without_failing() {
    let tmp = tempfile::TempDir::new().unwrap();
    let gif = tmp.path().join("anim.gif");
    five_frame_gif(&gif);
    for source in [Source::Path(gif.clone()), Source::Path(tmp.path().into())] {
        let built = Pipeline::builder()
            .source(source.clone())
            .stream_every(Duration::from_millis(100))
            .on_frame(|_frame| Ok(()))
            .build();
        match built.map(|_| ()) {
            Err(Error::Usage(msg)) => assert!(msg.starts_with("stream_every"), "{msg}"),
            other => panic!("{source:?}: {other:?}"),
        }
    }
    // The same file without an interval delivers all of its frames.
    let stats = Pipeline::builder()
        .source(Source::Path(gif))
        .device(DeviceChoice::Cpu)
        .on_frame(|_frame| Ok(()))
        .build()
        .unwrap()
        .run()
        .unwrap();
    assert_eq!(stats.delivered, 5);
}

#[test]
fn a_time_limit_does_not_wait_for_a_paced_frame_due_after_it() {
    use shutter::source::live::FuncGrabber;
    for device in [DeviceChoice::Cpu, DeviceChoice::Auto] {
        // The pattern at one frame per 5 s and a closure at one per 4 s, with a 1 s limit: the
        // manual clock moves only when a source waits, so it tells whether the run waited for
        // the second frame.
        let pattern = Source::Pattern {
            width: 32,
            height: 16,
            fps: Some(0.2),
        };
        let clock = Arc::new(ManualClock::new());
        let closure = Source::grabber(
            FuncGrabber::from_fn(|| Some(Ok((2u32, 2u32, vec![40u8; 16]))))
                .with_fps(0.25)
                .with_clock(clock.clone()),
        );
        for (source, clock) in [(pattern, Arc::new(ManualClock::new())), (closure, clock)] {
            let stats = Pipeline::builder()
                .source(source)
                .clock(clock.clone())
                .device(device)
                .time_limit(Duration::from_secs(1))
                .on_frame(|_frame| Ok(()))
                .build()
                .unwrap()
                .run()
                .unwrap();
            assert_eq!(stats.captured, 1, "{device:?}");
            assert!(
                clock.now() < Duration::from_secs(1),
                "{device:?}: the run waited until {:?}",
                clock.now()
            );
        }
    }
}

#[test]
fn a_live_source_is_held_to_the_pipelines_pixel_limit() {
    use shutter::source::DecodeLimits;
    use shutter::source::live::FuncGrabber;
    let limits = DecodeLimits {
        max_pixels: 100,
        ..DecodeLimits::default()
    };
    // A pattern's size is known up front: a usage error at build, before any frame.
    let pattern = Source::Pattern {
        width: 40,
        height: 20,
        fps: None,
    };
    let Err(err) = Pipeline::builder()
        .source(pattern)
        .limits(limits)
        .max_frames(2)
        .device(DeviceChoice::Cpu)
        .on_frame(|_frame| Ok(()))
        .build()
    else {
        panic!("a pattern past the limits was built");
    };
    assert!(matches!(err, Error::Usage(_)), "{err:?}");
    assert!(err.to_string().contains("pattern:40x20"), "{err}");
    // A closure's frames are checked as they come, and the error names the source.
    let small = (5u32, 5u32, vec![40u8; 100]);
    let big = (20u32, 10u32, vec![40u8; 800]);
    let mut frames = vec![small.clone(), big, small].into_iter();
    let closure = FuncGrabber::from_fn(move || frames.next().map(Ok));
    let delivered = Arc::new(AtomicU64::new(0));
    let seen = delivered.clone();
    let stats = Pipeline::builder()
        .source(Source::grabber(closure))
        .limits(limits)
        .device(DeviceChoice::Cpu)
        .on_frame(move |_frame| {
            seen.fetch_add(1, Ordering::Relaxed);
            Ok(())
        })
        .build()
        .unwrap()
        .run()
        .unwrap();
    let [err] = &stats.failures[..] else {
        panic!("one failure: {:?}", stats.failures);
    };
    match err {
        Error::Limits { input, reason } => {
            assert_eq!(input, "closure", "{err}");
            assert!(reason.contains("20×10"), "{err}");
        }
        other => panic!("expected Error::Limits, got {other:?}"),
    }
    assert_eq!(
        delivered.load(Ordering::Relaxed),
        1,
        "the frame before it was delivered"
    );
}

#[test]
fn a_time_limit_is_on_the_runs_clock_when_a_lossless_reader_slows_a_paced_source() {
    // A 10 fps pattern on a manual clock, read losslessly by a callback that takes 1 s of
    // that clock per frame: the source falls behind its schedule, and its frames keep their
    // scheduled stamps, 0.1 s apart. The limit is 2.5 s of the run's clock, which has passed
    // by the third frame delivered; on the frames' stamps alone it would take 25 frames.
    let clock = Arc::new(ManualClock::new());
    let reader_clock = clock.clone();
    let stats = Pipeline::builder()
        .source(Source::Pattern {
            width: 32,
            height: 24,
            fps: Some(10.0),
        })
        .clock(clock.clone())
        .device(DeviceChoice::Cpu)
        .policy(FramePolicy::Lossless)
        .in_flight(1)
        .time_limit(Duration::from_millis(2500))
        .on_frame(move |_frame| {
            reader_clock.advance(Duration::from_secs(1));
            Ok(())
        })
        .build()
        .unwrap()
        .run()
        .unwrap();
    // Three frames delivered, and those already on their way when the limit passed.
    assert!((3..10).contains(&stats.captured), "{stats:?}");
    assert_accounts_for_every_frame(&stats);
}

//! The library pipeline: callbacks receive every frame in input order as arrays, several frames
//! in flight give the same bytes as one, and errors stop or skip as documented.

mod common;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use shutter::pipeline::Output;
use shutter::{DeviceChoice, Error, Filter, Format, FrameArray, Ops, Pipeline, Source};
use tempfile::TempDir;

/// A noisy RGBA PNG of the given size (alpha varies, so dropping it is visible).
fn noisy_png(dir: &Path, name: &str, w: u32, h: u32, seed: u64) -> PathBuf {
    let path = dir.join(name);
    let img = image::RgbaImage::from_raw(w, h, common::random_rgba(w, h, seed)).unwrap();
    img.save(&path).unwrap();
    path
}

fn devices() -> Vec<DeviceChoice> {
    let mut out = vec![DeviceChoice::Cpu];
    if common::gpu_or_skip("pipeline").is_some() {
        out.push(DeviceChoice::Gpu);
    }
    out
}

#[test]
fn callback_gets_every_frame_in_input_order_with_reference_pixels() {
    let tmp = TempDir::new().unwrap();
    let sizes = [(1, 1), (3, 7), (64, 33), (17, 2), (40, 40), (5, 90)];
    let paths: Vec<PathBuf> = sizes
        .iter()
        .enumerate()
        .map(|(i, &(w, h))| noisy_png(tmp.path(), &format!("f{i}.png"), w, h, i as u64 + 1))
        .collect();
    let ops = Ops {
        mirror: true,
        filters: vec![Filter::SepiaNorm, Filter::Invert],
        ..Default::default()
    };
    for device in devices() {
        for in_flight in [1, 3] {
            let seen = Arc::new(Mutex::new(Vec::new()));
            let sink = seen.clone();
            let stats = Pipeline::builder()
                .sources(paths.iter().cloned().map(Source::Path))
                .mirror(true)
                .filters(ops.filters.clone())
                .device(device)
                .in_flight(in_flight)
                .on_frame(move |frame| {
                    sink.lock().unwrap().push((frame.meta.input, frame.array()));
                    Ok(())
                })
                .build()
                .unwrap()
                .run()
                .unwrap();
            assert_eq!(stats.frames, sizes.len() as u64);
            let seen = seen.lock().unwrap();
            for (i, (input, array)) in seen.iter().enumerate() {
                assert_eq!(*input, i, "{device:?}: frames out of order");
                let (w, h) = sizes[i];
                let FrameArray::U8(rgb) = array else {
                    panic!("RGB frames are u8 arrays, got {:?}", array.dtype());
                };
                assert_eq!(rgb.shape(), &[h as usize, w as usize, 3]);
                let mut want = common::random_rgba(w, h, i as u64 + 1);
                shutter::ops::cpu::apply(&ops, w, h, &mut want);
                let want_rgb: Vec<u8> = want
                    .chunks_exact(4)
                    .flat_map(|p| [p[0], p[1], p[2]])
                    .collect();
                assert_eq!(
                    rgb.iter().copied().collect::<Vec<u8>>(),
                    want_rgb,
                    "{device:?} in-flight {in_flight} frame {i}"
                );
            }
        }
    }
}

/// An error type of the caller's own, which `run` must hand back for a downcast.
#[derive(Debug, PartialEq)]
struct ClientGone(u32);

impl std::fmt::Display for ClientGone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "client {} went away", self.0)
    }
}

impl std::error::Error for ClientGone {}

#[test]
fn a_callback_error_stops_the_run_and_is_returned() {
    let tmp = TempDir::new().unwrap();
    let a = noisy_png(tmp.path(), "a.png", 4, 4, 1);
    let b = noisy_png(tmp.path(), "b.png", 4, 4, 2);
    let mut calls = 0;
    let result = Pipeline::builder()
        .source(Source::Path(a))
        .source(Source::Path(b))
        .device(DeviceChoice::Cpu)
        // A grace past what an `Instant` holds: waited for without a deadline (it panicked
        // adding it to now).
        .limit_grace(std::time::Duration::MAX)
        .on_frame(move |_frame| {
            calls += 1;
            if calls == 1 {
                Err(ClientGone(7).into())
            } else {
                Ok(())
            }
        })
        .build()
        .unwrap()
        .run();
    match result {
        Err(err @ Error::User { .. }) => {
            // The message names the input and frame, then gives the error's own.
            let a = tmp.path().join("a.png");
            let want = format!("on_frame ({}, frame 0): client 7 went away", a.display());
            assert_eq!(err.to_string(), want);
            let own = err
                .user_error()
                .and_then(|e| e.downcast_ref::<ClientGone>());
            assert_eq!(own, Some(&ClientGone(7)));
        }
        other => panic!("expected the callback's error, got {other:?}"),
    }
}

/// A callback's `?` takes errors of different types in one closure, and the one returned comes
/// back from the run as the user's error.
#[test]
fn a_callback_question_mark_takes_any_error_and_returns_it() {
    let tmp = TempDir::new().unwrap();
    let a = noisy_png(tmp.path(), "a.png", 5, 3, 3);
    let missing = tmp.path().join("no-such-dir").join("frame.png");
    let mut saved = 0;
    let result = Pipeline::builder()
        .source(a) // a PathBuf
        .device(DeviceChoice::Cpu)
        .build()
        .unwrap()
        .run_with(|frame| {
            let image = frame.to_image()?; // a shutter::Error
            image.save(&missing)?; // an image::ImageError
            std::fs::write(&missing, b"")?; // an io::Error
            saved += 1;
            Ok(())
        });
    assert_eq!(saved, 0);
    match result {
        Err(err @ Error::User { .. }) => {
            let own = err
                .user_error()
                .and_then(|e| e.downcast_ref::<image::ImageError>());
            assert!(
                matches!(own, Some(image::ImageError::IoError(e)) if e.kind() == std::io::ErrorKind::NotFound),
                "{err:?}"
            );
        }
        other => panic!("expected the callback's error, got {other:?}"),
    }
}

/// Runs `build` on a thread and returns its result, or fails the test if it does not return
/// within a minute (a hang, not a timing: a healthy run of these takes milliseconds).
fn run_or_hang(
    build: impl FnOnce() -> shutter::pipeline::PipelineBuilder + Send + 'static,
) -> Result<shutter::Stats, Error> {
    let (done, result) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(build().build().and_then(Pipeline::run));
    });
    result
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("the run never returned")
}

#[test]
fn a_callback_error_stops_long_and_endless_runs_on_every_policy_and_device() {
    use shutter::FramePolicy;
    use shutter::source::live::FuncGrabber;
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path().join("many");
    std::fs::create_dir(&dir).unwrap();
    for k in 0..12 {
        noisy_png(&dir, &format!("p{k:02}.png"), 5, 3, k);
    }
    for device in devices() {
        for policy in [
            FramePolicy::Lossless,
            FramePolicy::Latest,
            FramePolicy::DropNew,
        ] {
            for endless in [false, true] {
                let dir = dir.clone();
                let result = run_or_hang(move || {
                    let source = if endless {
                        let grabber =
                            FuncGrabber::from_fn(|| Some(Ok((3u32, 2u32, vec![7u8; 3 * 2 * 4]))));
                        Source::grabber(grabber)
                    } else {
                        Source::Path(dir)
                    };
                    let mut calls = 0;
                    let builder = Pipeline::builder()
                        .source(source)
                        .device(device)
                        .in_flight(1)
                        .on_frame(move |_frame| {
                            calls += 1;
                            if calls == 2 {
                                Err("enough".into())
                            } else {
                                Ok(())
                            }
                        });
                    // Files take only the lossless policy.
                    if endless {
                        builder.policy(policy)
                    } else {
                        builder
                    }
                });
                match result {
                    Err(Error::User { message, .. }) => {
                        assert!(
                            message.starts_with("on_frame (") && message.ends_with("): enough"),
                            "{message}"
                        );
                    }
                    other => panic!("{device:?} {policy:?} endless {endless}: {other:?}"),
                }
            }
        }
    }
}

#[test]
fn a_panicking_callback_unwinds_out_of_run_and_the_endless_source_stops() {
    use shutter::FramePolicy;
    use shutter::source::live::FuncGrabber;
    for device in devices() {
        for policy in [
            FramePolicy::Lossless,
            FramePolicy::Latest,
            FramePolicy::DropNew,
        ] {
            // The grabber owns `alive`: the receiver disconnects once the capture thread has
            // dropped it, which is when the endless source has stopped.
            let (alive, stopped) = std::sync::mpsc::channel::<()>();
            let grabber = FuncGrabber::from_fn(move || {
                let _alive = &alive;
                Some(Ok((3u32, 2u32, vec![7u8; 3 * 2 * 4])))
            });
            let pipeline = Pipeline::builder()
                .source(Source::grabber(grabber))
                .device(device)
                .policy(policy)
                .on_frame(|_frame| -> Result<(), shutter::BoxError> { panic!("callback panic") })
                .build()
                .unwrap();
            let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| pipeline.run()));
            let payload = unwound.expect_err("the callback's panic should unwind out of run");
            assert_eq!(payload.downcast_ref::<&str>(), Some(&"callback panic"));
            // A bound on a hang, not a timing: a stopped source disconnects at once.
            match stopped.recv_timeout(std::time::Duration::from_secs(60)) {
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {}
                other => panic!("{device:?} {policy:?}: the source still runs: {other:?}"),
            }
        }
    }
}

#[test]
fn a_panic_in_a_closure_source_goes_on_in_the_caller_with_its_message() {
    use shutter::source::live::FuncGrabber;
    for device in devices() {
        let mut calls = 0;
        let grabber = FuncGrabber::from_fn(move || {
            calls += 1;
            assert!(calls < 3, "grabber panic");
            Some(Ok((3u32, 2u32, vec![7u8; 3 * 2 * 4])))
        });
        let pipeline = Pipeline::builder()
            .source(Source::grabber(grabber))
            .device(device)
            .on_frame(|_frame| Ok(()))
            .build()
            .unwrap();
        let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| pipeline.run()));
        let payload = unwound.expect_err("the source's panic should reach the caller");
        let message = payload
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| payload.downcast_ref::<String>().map(String::as_str));
        assert_eq!(message, Some("grabber panic"), "{device:?}");
    }
}

#[test]
fn max_frames_counts_from_zero_on_live_sources_too() {
    use shutter::source::live::FuncGrabber;
    for max in [0, 1, 3] {
        let stats = run_or_hang(move || {
            let grabber = FuncGrabber::from_fn(|| Some(Ok((2u32, 2u32, vec![9u8; 16]))));
            Pipeline::builder()
                .source(Source::grabber(grabber))
                .device(DeviceChoice::Cpu)
                .max_frames(max)
                .on_frame(|_frame| Ok(()))
        })
        .unwrap();
        assert_eq!(
            (stats.captured, stats.delivered),
            (max, max),
            "max_frames({max})"
        );
    }
}

#[test]
fn wrong_length_frames_and_too_many_in_flight_are_usage_errors_on_both_backends() {
    use shutter::backend::Processor;
    use shutter::{Frame, FrameMeta};
    let gpu = common::gpu_or_skip("wrong_length");
    let ops = Ops::new(true, vec![Filter::Invert]);
    for ctx in [None, gpu] {
        let on_gpu = ctx.is_some();
        let mut processor = Processor::new(ctx.clone(), &ops, 1).unwrap();
        let mut frame = Frame::new(1, 1, vec![1, 2, 3, 255], false, FrameMeta::still(4, 0));
        (frame.width, frame.height) = (3, 7);
        let err = processor.schedule(frame).unwrap_err();
        assert!(
            matches!(&err, Error::Usage(msg) if msg.contains("frame 4") && msg.contains("84")),
            "gpu {on_gpu}: {err}"
        );
        assert_eq!(processor.pending(), 0);
        // The in-flight bound is the same on both backends.
        let over = shutter::pipeline::MAX_IN_FLIGHT + 1;
        match Processor::new(ctx, &ops, over) {
            Err(Error::Usage(msg)) => assert!(msg.contains("in_flight"), "gpu {on_gpu}: {msg}"),
            Err(other) => panic!("gpu {on_gpu}: {other}"),
            Ok(_) => panic!("gpu {on_gpu}: {over} frames in flight accepted"),
        }
    }
}

#[test]
fn files_and_callback_together_and_failures_are_listed_by_name() {
    let tmp = TempDir::new().unwrap();
    let good = noisy_png(tmp.path(), "good.png", 6, 5, 9);
    let bad = tmp.path().join("bad.png");
    std::fs::write(&bad, b"not a png at all").unwrap();
    let out_dir = tmp.path().join("out");
    let count = Arc::new(Mutex::new(0));
    let counter = count.clone();
    let stats = Pipeline::builder()
        .source(Source::Path(bad))
        .source(Source::Path(good))
        .device(DeviceChoice::Cpu)
        .output(Output::Dir(out_dir.clone()), Format::Png)
        .on_frame(move |_| {
            *counter.lock().unwrap() += 1;
            Ok(())
        })
        .build()
        .unwrap()
        .run()
        .unwrap();
    assert_eq!(*count.lock().unwrap(), 1);
    assert_eq!(stats.written, vec![out_dir.join("good.png")]);
    assert_eq!(stats.failures.len(), 1);
    assert!(stats.failures[0].to_string().contains("bad.png"));
    // Statistics can be kept (an app's state, a report) and still read: a copy has the
    // same failures, and an I/O error keeps the operating system's error behind it.
    let kept = stats.clone();
    assert_eq!(kept.written, stats.written);
    assert_eq!(kept.failures[0].to_string(), stats.failures[0].to_string());
    let io = Error::io(
        &out_dir,
        std::io::Error::from(std::io::ErrorKind::PermissionDenied),
    );
    match io.clone() {
        Error::Io { source, .. } => assert_eq!(source.kind(), std::io::ErrorKind::PermissionDenied),
        other => panic!("{other:?}"),
    }
    assert!(std::error::Error::source(&io).is_some());
}

/// An animated GIF of `frames` 24×16 noise frames, cut to `keep` of its bytes.
fn cut_gif(path: &Path, frames: u64, keep: f64) {
    let mut bytes = Vec::new();
    {
        let mut enc = image::codecs::gif::GifEncoder::new(&mut bytes);
        for k in 0..frames {
            let img = image::RgbaImage::from_raw(24, 16, common::random_rgba(24, 16, k)).unwrap();
            let delay = image::Delay::from_numer_denom_ms(40, 1);
            enc.encode_frame(image::Frame::from_parts(img, 0, 0, delay))
                .unwrap();
        }
    }
    bytes.truncate((bytes.len() as f64 * keep) as usize);
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn frames_of_inputs_that_fail_are_counted_failed_so_the_counts_add_up() {
    // An animation that fails part-way took its frames back from `delivered`, and they were
    // counted nowhere else: captured 2, processed 2, delivered 0, nothing dropped.
    let tmp = TempDir::new().unwrap();
    let inputs = tmp.path().join("in");
    std::fs::create_dir(&inputs).unwrap();
    cut_gif(&inputs.join("cut.gif"), 6, 0.7);
    noisy_png(&inputs, "good.png", 7, 5, 3);
    let add_up = |stats: &shutter::Stats| {
        assert_eq!(
            stats.captured,
            stats.frames + stats.drops.before_gpu + stats.drops.by_interval,
            "{stats:?}"
        );
        assert_eq!(
            stats.frames,
            stats.delivered
                + stats.failed_frames
                + stats.drops.before_sink
                + stats.drops.after_stop,
            "{stats:?}"
        );
    };
    // The animation as one file, and as a file per frame.
    for format in [Format::default(), Format::Png] {
        let out = tmp.path().join(format!("out-{}", format.extension()));
        let stats = Pipeline::builder()
            .source(Source::Path(inputs.clone()))
            .device(DeviceChoice::Cpu)
            .output(Output::Dir(out.clone()), format)
            .build()
            .unwrap()
            .run()
            .unwrap();
        assert_eq!(stats.failures.len(), 1, "{format:?}: {:?}", stats.failures);
        assert!(stats.failures[0].to_string().contains("cut.gif"));
        assert_eq!(stats.delivered, 1, "{format:?}: only good.png: {stats:?}");
        assert!(stats.failed_frames >= 1, "{format:?}: {stats:?}");
        assert_eq!(
            stats.frames,
            stats.failed_frames + 1,
            "{format:?}: {stats:?}"
        );
        add_up(&stats);
        assert_eq!(
            common::dir_names(&out),
            [format!("good.{}", format.extension())]
        );
    }

    // A live stream's frame file that cannot be written (a directory stands at its name)
    // fails alone: the stream goes on, and that frame is failed, not delivered.
    use shutter::source::live::FuncGrabber;
    let out = tmp.path().join("live");
    std::fs::create_dir_all(out.join("rec_00001.png").join("in the way")).unwrap();
    let grabber = FuncGrabber::from_frames(
        (1..=4u64).map(|seed| (6u32, 4u32, common::random_rgba(6, 4, seed))),
    )
    .named("rec");
    let stats = run_or_hang({
        let out = out.clone();
        move || {
            Pipeline::builder()
                .source(Source::grabber(grabber))
                .device(DeviceChoice::Cpu)
                .output(Output::Dir(out), Format::Png)
        }
    })
    .unwrap();
    assert_eq!(stats.failures.len(), 1, "{:?}", stats.failures);
    assert!(
        stats.failures[0].to_string().contains("rec_00001.png"),
        "{:?}",
        stats.failures
    );
    assert_eq!((stats.delivered, stats.failed_frames), (3, 1), "{stats:?}");
    assert_eq!(stats.written.len(), 3, "{stats:?}");
    add_up(&stats);
}

#[test]
fn inputs_a_stopped_run_never_started_are_counted_not_reached() {
    let tmp = TempDir::new().unwrap();
    let paths: Vec<PathBuf> = (0..5)
        .map(|k| noisy_png(tmp.path(), &format!("p{k}.png"), 4, 3, k))
        .collect();
    let run = |builder: shutter::pipeline::PipelineBuilder| {
        builder
            .sources(paths.iter().cloned().map(Source::Path))
            .device(DeviceChoice::Cpu)
            .on_frame(|_| Ok(()))
            .build()
            .unwrap()
            .run()
            .unwrap()
    };
    let all = run(Pipeline::builder());
    assert_eq!((all.frames, all.not_reached), (5, 0));
    let two = run(Pipeline::builder().max_frames(2));
    assert_eq!((two.frames, two.not_reached), (2, 3));
    // Stopped before it began (as after Ctrl-C): nothing processed, every input not reached.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let stopped = run(Pipeline::builder().stop_flag(stop));
    assert_eq!((stopped.frames, stopped.not_reached), (0, 5));
    assert!(stopped.failures.is_empty());
}

#[test]
fn building_without_sources_or_running_without_sinks_is_a_usage_error() {
    let no_source = Pipeline::builder().on_frame(|_| Ok(())).build();
    assert!(matches!(no_source, Err(Error::Usage(_))));
    // A pipeline with no output may still get its callback from `run_with`: `run` refuses it.
    let no_sink = Pipeline::builder()
        .source(Source::Path("x.png".into()))
        .device(DeviceChoice::Cpu)
        .build()
        .and_then(Pipeline::run);
    assert!(
        matches!(&no_sink, Err(Error::Usage(m)) if m.contains("nothing receives")),
        "{no_sink:?}"
    );
}

#[test]
fn run_with_calls_a_borrowing_callback_that_is_not_send_on_the_callers_thread() {
    let tmp = TempDir::new().unwrap();
    let paths: Vec<PathBuf> = (0..3)
        .map(|k| noisy_png(tmp.path(), &format!("{k}.png"), 5 + k, 3, u64::from(k)))
        .collect();
    let pipeline = || {
        Pipeline::builder()
            .sources(paths.iter().cloned().map(Source::Path))
            .device(DeviceChoice::Cpu)
            .build()
            .unwrap()
    };
    // Rc is neither Send nor 'static here: `on_frame` could not take this closure.
    let seen = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let caller = std::thread::current().id();
    let stats = pipeline()
        .run_with(|frame| {
            assert_eq!(std::thread::current().id(), caller);
            seen.borrow_mut().push(frame.width);
            Ok(())
        })
        .unwrap();
    assert_eq!(*seen.borrow(), [5, 6, 7]);
    assert_eq!(stats.delivered, 3);

    // Its error ends the run as an on_frame error does.
    let mut calls = 0;
    let err = pipeline()
        .run_with(|_| {
            calls += 1;
            Err("enough".into())
        })
        .unwrap_err();
    assert!(matches!(&err, Error::User { .. }), "{err:?}");
    assert_eq!(calls, 1);

    // With an on_frame callback too, which one to call is ambiguous.
    let both = Pipeline::builder()
        .source(Source::Path(paths[0].clone()))
        .on_frame(|_| Ok(()))
        .build()
        .unwrap()
        .run_with(|_| Ok(()));
    assert!(matches!(both, Err(Error::Usage(_))), "{both:?}");
}

#[test]
fn in_memory_sources_are_written_inside_the_output_directory_whatever_their_name() {
    let tmp = TempDir::new().unwrap();
    let png = noisy_png(tmp.path(), "src.png", 3, 2, 5);
    let data: std::sync::Arc<[u8]> = std::fs::read(&png).unwrap().into();
    let out = tmp.path().join("nested").join("out");
    let outside = tmp.path().join("nested").join("escaped.png");
    let names = [
        "../escaped".to_string(),
        tmp.path().join("absolute").display().to_string(),
        "sub/dir/upload.png".to_string(),
    ];
    let stats = Pipeline::builder()
        .sources(names.iter().map(|name| Source::Bytes {
            name: name.clone(),
            data: data.clone(),
        }))
        .device(DeviceChoice::Cpu)
        .output(Output::Dir(out.clone()), Format::Png)
        .build()
        .unwrap()
        .run()
        .unwrap();
    assert!(stats.failures.is_empty(), "{stats:?}");
    let mut written = stats.written.clone();
    written.sort();
    let mut expected: Vec<PathBuf> = ["absolute.png", "escaped.png", "upload.png"]
        .iter()
        .map(|f| out.join(f))
        .collect();
    expected.sort();
    assert_eq!(written, expected);
    assert!(!outside.exists());
    assert!(!tmp.path().join("absolute.png").exists());
}

#[test]
fn the_builder_refuses_out_of_range_qualities_and_a_file_named_for_another_format() {
    let tmp = TempDir::new().unwrap();
    let src = noisy_png(tmp.path(), "src.png", 3, 2, 9);
    let build = |output: Output, format: Format| {
        Pipeline::builder()
            .source(Source::Path(src.clone()))
            .output(output, format)
            .build()
            .map(|_| ())
    };
    let dir = || Output::Dir(tmp.path().join("out"));
    let webp = |quality| Format::Webp {
        quality,
        lossless: false,
    };
    for format in [
        Format::Jpeg { quality: 0 },
        Format::Jpeg { quality: 101 },
        Format::Jpeg { quality: 255 },
        webp(-5.0),
        webp(100.5),
        webp(1e9),
        webp(f32::NAN),
    ] {
        match build(dir(), format) {
            Err(Error::Usage(msg)) => assert!(msg.contains("quality"), "{format:?}: {msg}"),
            other => panic!("{format:?}: {other:?}"),
        }
    }
    for format in [
        Format::Jpeg { quality: 1 },
        Format::Jpeg { quality: 100 },
        webp(0.0),
        webp(100.0),
        // Lossless WebP has no quality to check.
        Format::Webp {
            quality: f32::NAN,
            lossless: true,
        },
    ] {
        build(dir(), format).unwrap_or_else(|e| panic!("{format:?}: {e}"));
    }

    let file = |name: &str| Output::File(tmp.path().join(name));
    match build(file("photo.jpg"), Format::Png) {
        Err(Error::Usage(msg)) => {
            assert!(msg.contains("photo.jpg") && msg.contains("png"), "{msg}");
        }
        other => panic!("photo.jpg as png: {other:?}"),
    }
    assert!(build(file("photo.PNG"), Format::Gif).is_err());
    for (name, format) in [
        ("photo.jpg", Format::Jpeg { quality: 90 }),
        ("photo.JPEG", Format::Jpeg { quality: 90 }),
        ("photo.tif", Format::Tiff),
        ("photo.PNG", Format::Png),
        // No extension, or one that names no format: the caller's choice.
        ("photo", Format::Png),
        ("photo.dat", Format::Npy),
    ] {
        build(file(name), format).unwrap_or_else(|e| panic!("{name} {format:?}: {e}"));
    }
    assert!(
        !tmp.path().join("out").exists()
            || std::fs::read_dir(tmp.path().join("out"))
                .unwrap()
                .next()
                .is_none(),
        "building writes nothing"
    );
}

#[test]
fn builder_errors_name_the_builder_setting() {
    use shutter::FramePolicy;
    let tmp = TempDir::new().unwrap();
    let src = noisy_png(tmp.path(), "src.png", 3, 2, 4);
    let base = || {
        Pipeline::builder()
            .source(Source::Path(src.clone()))
            .on_frame(|_frame| Ok(()))
    };
    let cases: [(shutter::pipeline::PipelineBuilder, &str); 5] = [
        (base().in_flight(0), "in_flight"),
        (base().batch(0), "batch"),
        (base().batch(65), "batch"),
        (base().policy(FramePolicy::Latest), "policy"),
        (
            base().stream_every(std::time::Duration::ZERO),
            "stream_every",
        ),
    ];
    for (builder, setting) in cases {
        match builder.build().map(|_| ()) {
            Err(Error::Usage(msg)) => assert!(msg.starts_with(setting), "{setting}: {msg}"),
            other => panic!("{setting}: {other:?}"),
        }
    }
}

#[test]
fn a_frame_that_arrives_after_the_stop_flag_is_not_taken() {
    use shutter::source::live::FuncGrabber;
    use std::sync::atomic::{AtomicBool, Ordering};
    for device in devices() {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let mut calls = 0;
        // The second frame comes after a Ctrl-C that arrived while the source was waiting.
        let grabber = FuncGrabber::from_fn(move || {
            calls += 1;
            if calls == 2 {
                flag.store(true, Ordering::Relaxed);
            }
            Some(Ok((3u32, 2u32, vec![calls as u8; 3 * 2 * 4])))
        });
        let stats = run_or_hang(move || {
            Pipeline::builder()
                .source(Source::grabber(grabber))
                .device(device)
                .stop_flag(stop)
                .on_frame(|_frame| Ok(()))
        })
        .unwrap();
        assert_eq!((stats.captured, stats.delivered), (1, 1), "{device:?}");
    }
}

#[test]
fn a_stop_ends_a_batch_without_encoding_the_frames_queued_behind_it() {
    use shutter::source::live::{Clock, ManualClock};
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::time::Duration;
    let tmp = TempDir::new().unwrap();
    let paths: Vec<PathBuf> = (0..12)
        .map(|k| noisy_png(tmp.path(), &format!("p{k:02}.png"), 40, 30, k))
        .collect();
    // Three triggers: the stop flag (Ctrl-C), the time limit passing (a manual clock moved
    // on by the callback), and the stop and abort flags together (Ctrl-C twice). Each fires
    // while the first frame is handed over, before its file is started: every frame decoded
    // ahead of it is dropped, no file is written.
    for trigger in ["stop", "clock", "abort"] {
        let by_clock = trigger == "clock";
        let out_dir = tmp.path().join(format!("out-{trigger}"));
        let stop = Arc::new(AtomicBool::new(false));
        let abort = Arc::new(AtomicBool::new(false));
        let clock = Arc::new(ManualClock::new());
        let (flag, time, second) = (stop.clone(), clock.clone(), abort.clone());
        let calls = Arc::new(AtomicU64::new(0));
        let seen = calls.clone();
        let stats = Pipeline::builder()
            .sources(paths.iter().cloned().map(Source::Path))
            .device(DeviceChoice::Cpu)
            .in_flight(4)
            .stop_flag(stop)
            .abort_flag(abort)
            .clock(clock)
            .time_limit(Duration::from_secs(1))
            .output(Output::Dir(out_dir.clone()), Format::Png)
            .on_frame(move |_| {
                seen.fetch_add(1, Ordering::Relaxed);
                if by_clock {
                    time.sleep_until(Duration::from_secs(2));
                } else {
                    flag.store(true, Ordering::Relaxed);
                    second.store(trigger == "abort", Ordering::Relaxed);
                }
                Ok(())
            })
            .build()
            .unwrap()
            .run()
            .unwrap();
        assert_eq!(calls.load(Ordering::Relaxed), 1, "{trigger}");
        assert!(stats.written.is_empty(), "{:?}", stats.written);
        assert!(!out_dir.exists() || std::fs::read_dir(&out_dir).unwrap().count() == 0);
        assert_eq!(stats.not_reached, 12, "{trigger}: {stats:?}");
        assert_eq!(stats.delivered, 1, "the callback's frame");
        if trigger != "abort" {
            // (An aborted run does not wait for the frames still on their way to the sink.)
            assert_eq!(
                stats.frames,
                stats.delivered + stats.drops.after_stop,
                "every processed frame accounted for: {stats:?}"
            );
        }
        assert!(stats.failures.is_empty());
    }
}

#[test]
fn a_stop_in_the_middle_of_an_animation_writes_the_frames_it_got() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let tmp = TempDir::new().unwrap();
    let gif = tmp.path().join("anim.gif");
    {
        let file = std::fs::File::create(&gif).unwrap();
        let mut enc = image::codecs::gif::GifEncoder::new(file);
        for k in 0..8u32 {
            let img = image::RgbaImage::from_fn(6, 5, |x, y| {
                image::Rgba([(x * 40 + k * 30) as u8, (y * 50) as u8, (k * 30) as u8, 255])
            });
            let delay = image::Delay::from_numer_denom_ms(40, 1);
            enc.encode_frame(image::Frame::from_parts(img, 0, 0, delay))
                .unwrap();
        }
    }
    for format in [Format::Npy, Format::Gif] {
        let out = tmp.path().join(format!("anim.{}", format.extension()));
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let stats = Pipeline::builder()
            .source(Source::Path(gif.clone()))
            .device(DeviceChoice::Cpu)
            .in_flight(2)
            .stop_flag(stop)
            .output(Output::File(out.clone()), format)
            .on_frame(move |frame| {
                if frame.meta.index == 2 {
                    flag.store(true, Ordering::Relaxed);
                }
                Ok(())
            })
            .build()
            .unwrap()
            .run()
            .unwrap();
        // The three frames delivered up to the stop are the file; the rest were dropped.
        assert_eq!(stats.delivered, 3, "{format:?}: {stats:?}");
        assert_eq!(stats.written, vec![out.clone()], "{format:?}");
        assert_eq!(stats.not_reached, 0, "{format:?}");
        assert!(stats.failures.is_empty(), "{:?}", stats.failures);
        assert_eq!(stats.frames, stats.delivered + stats.drops.after_stop);
        let bytes = std::fs::read(&out).unwrap();
        let frames = if format == Format::Npy {
            let header = String::from_utf8_lossy(&bytes[..128]).into_owned();
            assert!(header.contains("'shape': (3, 5, 6, 3)"), "{header}");
            3
        } else {
            use image::AnimationDecoder;
            let decoder = image::codecs::gif::GifDecoder::new(std::io::Cursor::new(bytes)).unwrap();
            decoder.into_frames().count()
        };
        assert_eq!(frames, 3, "{format:?}");
    }
}

#[test]
fn the_abort_flag_ends_a_run_whose_source_hangs_and_keeps_the_frames_it_got() {
    use shutter::source::live::FuncGrabber;
    use std::sync::atomic::{AtomicBool, Ordering};
    let tmp = TempDir::new().unwrap();
    for format in [Format::Npy, Format::Gif, Format::Png] {
        // Two frames, then a source that sends nothing more until the test lets it go.
        let (release, blocked) = std::sync::mpsc::channel::<()>();
        let mut sent = 0u8;
        let grabber = FuncGrabber::from_fn(move || {
            sent += 1;
            if sent <= 2 {
                return Some(Ok((8u32, 4u32, vec![sent * 60; 8 * 4 * 4])));
            }
            let _ = blocked.recv();
            None
        });
        let out_dir = tmp.path().join(format.extension());
        let (stop, abort) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicBool::new(false)),
        );
        let (on_stop, on_abort) = (stop.clone(), abort.clone());
        let stats = run_or_hang(move || {
            Pipeline::builder()
                .source(Source::grabber(grabber))
                .device(DeviceChoice::Cpu)
                .stop_flag(stop)
                .abort_flag(abort)
                .output(Output::Dir(out_dir), format)
                .on_frame(move |frame| {
                    // After the second frame: Ctrl-C, then Ctrl-C again.
                    if frame.meta.index == 1 {
                        on_stop.store(true, Ordering::Relaxed);
                        on_abort.store(true, Ordering::Relaxed);
                    }
                    Ok(())
                })
        })
        .unwrap();
        assert_eq!(stats.delivered, 2, "{format:?}");
        assert!(stats.failures.is_empty(), "{:?}", stats.failures);
        assert_eq!(stats.not_reached, 0, "{format:?}");
        let dir = tmp.path().join(format.extension());
        let mut names: Vec<String> = stats
            .written
            .iter()
            .map(|p| p.strip_prefix(&dir).unwrap().display().to_string())
            .collect();
        names.sort(); // frame files finish in any order
        match format {
            Format::Npy => {
                assert_eq!(names, ["stream.npy"]);
                let bytes = std::fs::read(dir.join("stream.npy")).unwrap();
                let header = String::from_utf8_lossy(&bytes[..128]).into_owned();
                assert!(header.contains("'shape': (2, 4, 8, 3)"), "{header}");
            }
            Format::Gif => assert_eq!(names, ["stream.gif"]),
            _ => assert_eq!(names, ["stream_00000.png", "stream_00001.png"]),
        }
        drop(release); // the capture thread ends
    }
}

/// Gradio's `time_limit` ends a stream on time: a live source blocked in its call (a stalled
/// camera) past the limit is given up on once nothing has come for the grace, and the run
/// ends with the frames it got, as after the abort flag.
#[test]
fn a_time_limit_ends_a_stream_whose_source_hangs_and_keeps_the_frames_it_got() {
    use shutter::source::live::{Clock, FuncGrabber, ManualClock};
    let tmp = TempDir::new().unwrap();
    let clock = Arc::new(ManualClock::new());
    let shared: Arc<dyn Clock> = clock.clone();
    let (release, blocked) = std::sync::mpsc::channel::<()>();
    let mut sent = 0u8;
    let grabber = FuncGrabber::from_fn(move || {
        sent += 1;
        if sent <= 2 {
            return Some(Ok((8u32, 4u32, vec![sent * 60; 8 * 4 * 4])));
        }
        // Past the limit, then nothing more until the test lets it go.
        clock.set(std::time::Duration::from_secs(10));
        let _ = blocked.recv();
        None
    })
    .with_clock(shared.clone());
    let out_dir = tmp.path().to_path_buf();
    let stats = run_or_hang(move || {
        Pipeline::builder()
            .source(Source::grabber(grabber))
            .clock(shared)
            .device(DeviceChoice::Cpu)
            .time_limit(std::time::Duration::from_secs(5))
            .output(Output::Dir(out_dir), Format::Npy)
    })
    .unwrap();
    assert_eq!(stats.delivered, 2);
    assert!(stats.failures.is_empty(), "{:?}", stats.failures);
    assert_eq!(stats.not_reached, 0);
    let bytes = std::fs::read(tmp.path().join("stream.npy")).unwrap();
    let header = String::from_utf8_lossy(&bytes[..128]).into_owned();
    assert!(header.contains("'shape': (2, 4, 8, 3)"), "{header}");
    drop(release); // the capture thread ends
}

#[test]
fn latency_is_measured_for_the_frames_delivered_and_no_others() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let tmp = TempDir::new().unwrap();
    let paths: Vec<PathBuf> = (0..12)
        .map(|k| noisy_png(tmp.path(), &format!("q{k:02}.png"), 160, 120, k))
        .collect();
    // No callback: a frame is delivered when its file is written. The first file written
    // stops the run, so frames decoded ahead are dropped, or their jobs skipped (GIFs of
    // noise, quantised by one encoder thread, queue up behind it).
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let stats = Pipeline::builder()
        .sources(paths.iter().cloned().map(Source::Path))
        .device(DeviceChoice::Cpu)
        .in_flight(4)
        .stop_flag(stop)
        .output(Output::Dir(tmp.path().join("out")), Format::Gif)
        .encoder_threads(1)
        .on_event(move |event| {
            if matches!(
                event,
                shutter::pipeline::Event::InputDone { error: None, .. }
            ) {
                flag.store(true, Ordering::Relaxed);
            }
        })
        .build()
        .unwrap()
        .run()
        .unwrap();
    let measured = stats.latency.map_or(0, |l| l.count);
    assert_eq!(measured, stats.delivered, "{stats:?}");
    assert_eq!(stats.delivered as usize, stats.written.len(), "{stats:?}");
    assert_eq!(stats.written.len() + stats.not_reached, 12, "{stats:?}");
}

/// An endless closure source of `w × h` noise frames, seeded 1, 2, 3, …
fn noise_stream(w: u32, h: u32) -> shutter::source::live::FuncGrabber {
    let mut seed = 0;
    shutter::source::live::FuncGrabber::from_fn(move || {
        seed += 1;
        Some(Ok((w, h, common::random_rgba(w, h, seed))))
    })
}

#[test]
fn a_stream_written_as_one_file_is_on_disk_while_it_runs_not_held_in_memory() {
    let (w, h, count) = (64u32, 48u32, 12usize);
    let frame_bytes = (w * h * 3) as usize;
    for device in devices() {
        let tmp = TempDir::new().unwrap();
        let dir = tmp.path().to_path_buf();
        let out = dir.join("rec.npy");
        let grabber = noise_stream(w, h);
        // With two encoder threads the writer's queue holds two frames and it takes two at a
        // time: at frame 10's callback frames 0–9 have been handed to it, at most two wait
        // and two are being written, so frames 0–5 at least are in the file.
        let seen = Arc::new(Mutex::new(None));
        let probe = (seen.clone(), dir.clone());
        let stats = Pipeline::builder()
            .source(Source::grabber(grabber))
            .device(device)
            .max_frames(count as u64)
            .encoder_threads(2)
            .output(Output::File(out.clone()), Format::Npy)
            .on_frame(move |frame| {
                if frame.meta.index == 10 {
                    let temp = common::dir_names(&probe.1)
                        .into_iter()
                        .find(|name| name.starts_with(".rec.npy.tmp."));
                    let len = temp.map(|name| std::fs::metadata(probe.1.join(name)).unwrap().len());
                    *probe.0.lock().unwrap() = Some(len);
                }
                Ok(())
            })
            .build()
            .unwrap()
            .run()
            .unwrap();
        let len = seen.lock().unwrap().expect("frame 10 was delivered");
        let len = len.expect("the file is being written during the stream") as usize;
        assert!(
            len >= 128 + 6 * frame_bytes,
            "{device:?}: {len} bytes at frame 10"
        );
        assert_eq!(stats.written, vec![out.clone()]);
        assert_eq!(
            common::dir_names(&dir),
            ["rec.npy"],
            "{device:?}: no temp file left"
        );
        let bytes = std::fs::read(&out).unwrap();
        let header_len = 10 + usize::from(u16::from_le_bytes([bytes[8], bytes[9]]));
        let header = String::from_utf8_lossy(&bytes[..header_len]).into_owned();
        assert!(
            header.contains(&format!("'shape': ({count}, {h}, {w}, 3)")),
            "{header}"
        );
        let expected: Vec<u8> = (1..=count as u64)
            .flat_map(|seed| {
                common::random_rgba(w, h, seed)
                    .chunks_exact(4)
                    .flat_map(|p| [p[0], p[1], p[2]])
                    .collect::<Vec<u8>>()
            })
            .collect();
        assert!(
            bytes[header_len..] == expected[..],
            "{device:?}: the frames in order"
        );
    }
}

/// An endless closure source of `w × h` RGBA frames: a noisy sprite over a transparent
/// background that jumps every other frame (its pixels turn transparent, so a GIF frame clears
/// part of the one before); in between, only a pixel far from it turns opaque, so that where
/// the sprite leaves is outside the part the frame before wrote. Every fifth frame is noise over
/// the whole canvas.
fn sprite_stream(w: u32, h: u32) -> shutter::source::live::FuncGrabber {
    let mut k = 0u32;
    shutter::source::live::FuncGrabber::from_fn(move || {
        k += 1;
        let seed = if k.is_multiple_of(5) { k } else { 1000 + k / 2 };
        let noise = common::random_rgba(w, h, u64::from(seed));
        let mut rgba = vec![0u8; noise.len()];
        let (x0, y0) = ((11 * (k / 2)) % (w - 6), (7 * (k / 2)) % (h - 5));
        for (i, (out, px)) in rgba
            .chunks_exact_mut(4)
            .zip(noise.chunks_exact(4))
            .enumerate()
        {
            let (x, y) = (i as u32 % w, i as u32 / w);
            let sprite = (x0..x0 + 6).contains(&x) && (y0..y0 + 5).contains(&y);
            let marker = !k.is_multiple_of(2) && i + 1 == (w * h) as usize;
            if k.is_multiple_of(5) || sprite || marker {
                out.copy_from_slice(&[px[0], px[1], px[2], 255]);
            }
        }
        Some(Ok((w, h, rgba)))
    })
}

#[test]
fn a_sequence_encoded_on_several_threads_as_it_comes_is_the_file_of_its_frames_one_by_one() {
    use shutter::ImageMode;
    use shutter::sink::sequence::SequenceWriter;
    let (w, h, count) = (37u32, 23u32, 17usize);
    let lossless = Format::Webp {
        quality: 80.0,
        lossless: true,
    };
    let lossy = Format::Webp {
        quality: 60.0,
        lossless: false,
    };
    for (format, threads) in [
        (Format::Gif, 1),
        (Format::Gif, 3),
        (lossless, 4),
        (lossy, 2),
    ] {
        let tmp = TempDir::new().unwrap();
        let out = tmp.path().join(format!("rec.{}", format.extension()));
        let delivered = Arc::new(Mutex::new(Vec::new()));
        let seen = delivered.clone();
        let stats = Pipeline::builder()
            .source(Source::grabber(sprite_stream(w, h)))
            .device(DeviceChoice::Cpu)
            .mode(ImageMode::Rgba)
            .max_frames(count as u64)
            .encoder_threads(threads)
            .output(Output::File(out.clone()), format)
            .on_frame(move |frame| {
                seen.lock().unwrap().push(frame.clone());
                Ok(())
            })
            .build()
            .unwrap()
            .run()
            .unwrap();
        assert_eq!(stats.written, vec![out.clone()], "{format:?}");
        let frames = delivered.lock().unwrap().clone();
        assert_eq!(frames.len(), count, "{format:?}");
        // The file of the frames pushed one by one.
        let mut writer = SequenceWriter::new(format, std::io::Cursor::new(Vec::new())).unwrap();
        for frame in &frames {
            writer.push(frame).unwrap();
        }
        let one_by_one = writer.finish().unwrap().into_inner();
        let file = std::fs::read(&out).unwrap();
        assert!(
            file == one_by_one,
            "{format:?} on {threads} threads: not the file of the frames in order"
        );
    }
}

#[test]
fn a_stream_whose_one_file_fails_stops_fails_once_and_leaves_no_file() {
    use shutter::source::live::FuncGrabber;
    // An endless source whose frames change size at the fourth: the file cannot be written,
    // and without a callback the run has nothing left to do, so it stops on its own.
    for format in [Format::Npy, Format::Gif] {
        let tmp = TempDir::new().unwrap();
        let dir = tmp.path().to_path_buf();
        let out = dir.join(format!("rec.{}", format.extension()));
        let mut k = 0;
        let grabber = FuncGrabber::from_fn(move || {
            k += 1;
            let w = if k <= 3 { 8 } else { 10 };
            Some(Ok((w, 6u32, common::random_rgba(w, 6, k))))
        });
        let stats = run_or_hang({
            let out = out.clone();
            move || {
                Pipeline::builder()
                    .source(Source::grabber(grabber))
                    .device(DeviceChoice::Cpu)
                    .output(Output::File(out), format)
            }
        })
        .unwrap();
        assert_eq!(stats.failures.len(), 1, "{format:?}: {:?}", stats.failures);
        let message = stats.failures[0].to_string();
        assert!(
            message.contains(&out.display().to_string()) && message.contains("frame 3 is 10×6"),
            "{message}"
        );
        assert!(stats.written.is_empty());
        // No frame reached a file: those fed to it, and those thrown away after the failure,
        // are dropped as after a stop.
        assert_eq!(stats.delivered, 0, "{stats:?}");
        assert_eq!(
            stats.frames,
            stats.drops.before_sink + stats.drops.after_stop,
            "{stats:?}"
        );
        assert!(stats.drops.after_stop >= 4, "{stats:?}");
        common::assert_nothing_in(&dir, &format!("{format:?}"));
    }
}

#[test]
fn a_callback_that_fails_or_panics_mid_stream_leaves_no_file_of_the_sequence() {
    for panics in [false, true] {
        let tmp = TempDir::new().unwrap();
        let dir = tmp.path().to_path_buf();
        let grabber = noise_stream(16, 8);
        let pipeline = Pipeline::builder()
            .source(Source::grabber(grabber))
            .device(DeviceChoice::Cpu)
            .output(Output::File(dir.join("rec.gif")), Format::Gif)
            .on_frame(move |frame| {
                if frame.meta.index == 5 {
                    assert!(!panics, "callback panic");
                    return Err("enough".into());
                }
                Ok(())
            })
            .build()
            .unwrap();
        let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| pipeline.run()));
        match run {
            Err(_) => assert!(panics),
            Ok(Err(Error::User { message, .. })) => {
                assert!(
                    !panics && message.ends_with("frame 5): enough"),
                    "{message}"
                );
            }
            Ok(other) => panic!("panics {panics}: {other:?}"),
        }
        // The sequence's temp file went with the run: nothing is left.
        common::assert_nothing_in(&dir, &format!("panics {panics}"));
    }
}

#[test]
fn build_refuses_what_the_cli_refuses() {
    use shutter::{Dither, ImageMode};
    let tmp = TempDir::new().unwrap();
    let png = noisy_png(tmp.path(), "in.png", 3, 2, 1);
    let builder = || {
        Pipeline::builder()
            .source(Source::Path(png.clone()))
            .device(DeviceChoice::Cpu)
    };
    let refused = |what: &str, result: Result<Pipeline, Error>, needle: &str| match result {
        Err(err) => assert!(
            err.is_usage() && err.to_string().contains(needle),
            "{what}: {err}"
        ),
        Ok(_) => panic!("{what}: built"),
    };
    refused(
        "an .apng file",
        builder()
            .output(Output::File(tmp.path().join("x.apng")), Format::Png)
            .build(),
        "apng",
    );
    for output in [Output::File("-".into()), Output::Dir("-".into())] {
        refused(
            "-",
            builder().output(output, Format::Png).build(),
            "standard output",
        );
    }
    refused(
        "a directory as a file",
        builder()
            .output(Output::File(tmp.path().to_path_buf()), Format::Png)
            .build(),
        "is a directory",
    );
    let callback = |_: &shutter::Frame| Ok(());
    refused(
        "a dithering for RGB",
        builder()
            .mode(ImageMode::Rgb)
            .dither(Dither::None)
            .on_frame(callback)
            .build(),
        "only modes 1 and P",
    );
    // A pattern out of range, known before any frame.
    for (width, height, fps, needle) in [
        (8, 64, None, "out of range"),
        (64, 64, Some(0.0), "pattern"),
        (16_384, 16_384, None, "--max-pixels"),
    ] {
        refused(
            "a pattern",
            Pipeline::builder()
                .source(Source::Pattern { width, height, fps })
                .device(DeviceChoice::Cpu)
                .on_frame(callback)
                .build(),
            needle,
        );
    }
    // The defaults, given explicitly, are no error.
    assert!(
        builder()
            .mode(ImageMode::P)
            .dither(Dither::None)
            .batch(1)
            .on_frame(callback)
            .build()
            .is_ok()
    );
    assert!(
        builder()
            .dither(Dither::default())
            .output(Output::File(tmp.path().join("out.png")), Format::Png)
            .build()
            .is_ok()
    );
    assert!(!tmp.path().join("-").exists());
}

#[test]
fn a_closure_frame_without_pixels_fails_by_name_and_writes_nothing() {
    use shutter::source::live::FuncGrabber;
    for (w, h) in [(0u32, 0u32), (0, 10), (10, 0)] {
        let tmp = TempDir::new().unwrap();
        let dir = tmp.path().to_path_buf();
        let mut k = 0;
        let grabber = FuncGrabber::from_fn(move || {
            k += 1;
            (k <= 1).then(|| Ok((w, h, vec![0u8; (w * h * 4) as usize])))
        })
        .named("empty");
        let seen = Arc::new(Mutex::new(0));
        let calls = seen.clone();
        let stats = run_or_hang(move || {
            Pipeline::builder()
                .source(Source::grabber(grabber))
                .device(DeviceChoice::Cpu)
                .output(Output::File(dir.join("rec.gif")), Format::Gif)
                .on_frame(move |_| {
                    *calls.lock().unwrap() += 1;
                    Ok(())
                })
        })
        .unwrap();
        assert_eq!(
            *seen.lock().unwrap(),
            0,
            "{w}×{h}: no frame reaches the callback"
        );
        assert_eq!(stats.failures.len(), 1, "{w}×{h}: {:?}", stats.failures);
        let message = stats.failures[0].to_string();
        assert!(
            message.contains("empty") && message.contains("no pixels"),
            "{w}×{h}: {message}"
        );
        assert!(common::dir_names(tmp.path()).is_empty());
    }
}

#[test]
fn runs_on_a_gpu_context_given_once_match_the_cpu() {
    let Some(ctx) = common::gpu_or_skip("runs_on_a_gpu_context_given_once_match_the_cpu") else {
        return;
    };
    let tmp = TempDir::new().unwrap();
    let png = noisy_png(tmp.path(), "in.png", 17, 5, 3);
    let run = |builder: shutter::pipeline::PipelineBuilder| {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        let stats = builder
            .source(Source::Path(png.clone()))
            .mirror(true)
            .filter(Filter::Sepia)
            .on_frame(move |frame| {
                let FrameArray::U8(rgb) = frame.array() else {
                    return Err("RGB is u8".into());
                };
                sink.lock().unwrap().extend(rgb.iter().copied());
                Ok(())
            })
            .build()
            .unwrap()
            .run()
            .unwrap();
        let bytes = seen.lock().unwrap().clone();
        (stats.backend, bytes)
    };
    let (cpu, expected) = run(Pipeline::builder().device(DeviceChoice::Cpu));
    assert_eq!(cpu, Some(shutter::backend::BackendKind::Cpu));
    let on_gpu = Some(shutter::backend::BackendKind::Gpu(ctx.info.name.clone()));
    for _ in 0..2 {
        let (backend, bytes) = run(Pipeline::builder()
            .gpu_context(ctx.clone())
            .device(DeviceChoice::Gpu));
        assert_eq!(backend, on_gpu);
        assert_eq!(bytes, expected);
    }
    // `device` decides with a given context as without one: Cpu never uses it, and Auto
    // takes the CPU over a software adapter (lavapipe), saying so.
    let (backend, bytes) = run(Pipeline::builder()
        .gpu_context(ctx.clone())
        .device(DeviceChoice::Cpu));
    assert_eq!(backend, Some(shutter::backend::BackendKind::Cpu));
    assert_eq!(bytes, expected);
    let fallbacks = Arc::new(Mutex::new(Vec::new()));
    let seen = fallbacks.clone();
    let (backend, bytes) =
        run(Pipeline::builder()
            .gpu_context(ctx.clone())
            .on_event(move |event| {
                if let shutter::pipeline::Event::CpuFallback { reason } = event {
                    seen.lock().unwrap().push(reason.to_string());
                }
            }));
    assert_eq!(bytes, expected);
    if ctx.is_software() {
        assert_eq!(backend, Some(shutter::backend::BackendKind::Cpu));
        let fallbacks = fallbacks.lock().unwrap();
        assert_eq!(fallbacks.len(), 1, "{fallbacks:?}");
        assert!(fallbacks[0].contains("software renderer"), "{fallbacks:?}");
    } else {
        assert_eq!(backend, on_gpu);
        assert!(fallbacks.lock().unwrap().is_empty());
    }
    // No context found at start-up (`GpuContext::new().ok()`): the run opens none. Auto runs
    // on the CPU, saying so; Gpu fails, as without an adapter.
    let fallbacks = Arc::new(Mutex::new(Vec::new()));
    let seen = fallbacks.clone();
    let (backend, bytes) = run(Pipeline::builder()
        .gpu_context(None)
        .on_event(move |event| {
            if let shutter::pipeline::Event::CpuFallback { reason } = event {
                seen.lock().unwrap().push(reason.to_string());
            }
        }));
    assert_eq!(backend, Some(shutter::backend::BackendKind::Cpu));
    assert_eq!(bytes, expected);
    assert_eq!(
        *fallbacks.lock().unwrap(),
        [
            "no GPU adapter found (the run was given no GPU context); use the CPU (--device cpu), \
          or install a Vulkan driver such as mesa-vulkan-drivers"
        ]
    );
    let err = Pipeline::builder()
        .source(Source::Path(png.clone()))
        .gpu_context(None)
        .device(DeviceChoice::Gpu)
        .on_frame(|_| Ok(()))
        .build()
        .unwrap()
        .run()
        .unwrap_err();
    assert!(matches!(err, Error::NoAdapter(_)), "{err:?}");
    let (backend, bytes) = run(Pipeline::builder()
        .gpu_context(None)
        .device(DeviceChoice::Cpu));
    assert_eq!(backend, Some(shutter::backend::BackendKind::Cpu));
    assert_eq!(bytes, expected);
}

#[test]
fn the_started_event_and_the_frames_name_each_input_a_frame_comes_from() {
    use shutter::pipeline::Event;
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path().join("in");
    std::fs::create_dir(&dir).unwrap();
    for (k, name) in ["b.png", "a.png", "c.png"].iter().enumerate() {
        noisy_png(&dir, name, 3 + k as u32, 2, k as u64);
    }
    let names = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (event_names, frame_names, frame_sink) = (names.clone(), names.clone(), seen.clone());
    // A missing file before the directory: it has no frames and no index.
    let stats = Pipeline::builder()
        .sources([
            Source::Path(tmp.path().join("missing.png")),
            Source::Path(dir),
        ])
        .device(DeviceChoice::Cpu)
        .on_event(move |event| {
            if let Event::Started { names, .. } = event {
                *event_names.lock().unwrap() = names.to_vec();
            }
        })
        .on_frame(move |frame| {
            let name = frame_names.lock().unwrap()[frame.meta.input].clone();
            assert_eq!(*frame.meta.name, name, "the frame's name is its input's");
            frame_sink.lock().unwrap().push((name, frame.width));
            Ok(())
        })
        .build()
        .unwrap()
        .run()
        .unwrap();
    assert_eq!(stats.failures.len(), 1);
    let seen = seen.lock().unwrap().clone();
    let by_file: Vec<(String, u32)> = seen
        .iter()
        .map(|(name, w)| {
            let file = Path::new(name)
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned();
            (file, *w)
        })
        .collect();
    // Each frame's input names its file: b.png is 3 wide, a.png 4, c.png 5.
    let mut by_file = by_file;
    by_file.sort();
    assert_eq!(
        by_file,
        [
            ("a.png".into(), 4),
            ("b.png".into(), 3),
            ("c.png".into(), 5)
        ]
    );
}

#[test]
fn a_named_closure_source_names_its_output_files() {
    use shutter::source::live::FuncGrabber;
    for (name, stem) in [
        (None, "stream"),
        (Some("my cam"), "my cam"),
        (Some("../up/cam.png"), "cam"),
    ] {
        let tmp = TempDir::new().unwrap();
        let out = tmp.path().join("out");
        let mut grabber = FuncGrabber::from_frames(
            (1..=2u64).map(|seed| (4u32, 3u32, common::random_rgba(4, 3, seed))),
        );
        if let Some(name) = name {
            grabber = grabber.named(name);
        }
        let names = Arc::new(Mutex::new(Vec::new()));
        let stats = run_or_hang({
            let (out, names) = (out.clone(), names.clone());
            move || {
                Pipeline::builder()
                    .source(Source::grabber(grabber))
                    .device(DeviceChoice::Cpu)
                    .output(Output::Dir(out), Format::Png)
                    .on_frame(move |frame| {
                        names.lock().unwrap().push(frame.meta.name.to_string());
                        Ok(())
                    })
            }
        })
        .unwrap();
        assert!(stats.failures.is_empty(), "{:?}", stats.failures);
        // Its frames carry its name.
        let want = name.unwrap_or("closure");
        assert_eq!(*names.lock().unwrap(), [want, want], "{name:?}");
        assert_eq!(
            common::dir_names(&out),
            [format!("{stem}_00000.png"), format!("{stem}_00001.png")],
            "{name:?}"
        );
    }
}

/// Gradio's `type="pil"` in Rust: `Frame::to_image` gives the result as an `image` buffer of
/// the mode's colour type, with the array's pixels (`1` as 0 and 255, `P` through its palette),
/// and a usage error naming the mode where `image` has no such type.
#[test]
fn to_image_gives_the_result_as_an_image_buffer_of_the_modes_colour_type() {
    use image::DynamicImage;
    use shutter::ImageMode;
    let tmp = TempDir::new().unwrap();
    // Alpha varies in the first (P quantises to an RGBA palette); the second is opaque RGB.
    let rgba = noisy_png(tmp.path(), "rgba.png", 13, 6, 7);
    let rgb = tmp.path().join("rgb.png");
    let pixels = common::random_rgba(9, 4, 8);
    let opaque: Vec<u8> = pixels
        .chunks_exact(4)
        .flat_map(|p| [p[0], p[1], p[2]])
        .collect();
    image::RgbImage::from_raw(9, 4, opaque)
        .unwrap()
        .save(&rgb)
        .unwrap();
    for mode in ImageMode::ALL {
        let mut seen = Vec::new();
        Pipeline::builder()
            .sources([Source::Path(rgba.clone()), Source::Path(rgb.clone())])
            .device(DeviceChoice::Cpu)
            .mode(mode)
            .build()
            .unwrap()
            .run_with(|frame| {
                let palette = frame.image.as_ref().and_then(|m| m.palette.clone());
                seen.push((frame.to_image(), frame.array(), palette));
                Ok(())
            })
            .unwrap();
        assert_eq!(seen.len(), 2, "{mode}");
        for (i, (image, array, palette)) in seen.into_iter().enumerate() {
            let (w, h) = if i == 0 { (13, 6) } else { (9, 4) };
            let bytes = |a: &FrameArray| match a {
                FrameArray::Bool(b) => b.iter().map(|&v| if v { 255 } else { 0 }).collect(),
                FrameArray::U8(v) => v.iter().copied().collect::<Vec<u8>>(),
                other => panic!("{mode}: {:?} array", other.dtype()),
            };
            let image = match mode {
                ImageMode::I
                | ImageMode::F
                | ImageMode::Cmyk
                | ImageMode::YCbCr
                | ImageMode::Lab
                | ImageMode::Hsv => {
                    let err = image.unwrap_err();
                    assert!(err.is_usage(), "{mode}: {err:?}");
                    assert!(err.to_string().contains(&format!("mode {mode} ")), "{err}");
                    continue;
                }
                _ => image.unwrap(),
            };
            assert_eq!((image.width(), image.height()), (w, h), "{mode}");
            let want = bytes(&array);
            match (mode, image) {
                (ImageMode::One | ImageMode::L, DynamicImage::ImageLuma8(got)) => {
                    assert_eq!(got.into_raw(), want, "{mode} frame {i}");
                }
                (ImageMode::Rgb, DynamicImage::ImageRgb8(got)) => {
                    assert_eq!(got.into_raw(), want, "{mode} frame {i}");
                }
                (ImageMode::Rgba, DynamicImage::ImageRgba8(got)) => {
                    assert_eq!(got.into_raw(), want, "{mode} frame {i}");
                }
                (ImageMode::P, DynamicImage::ImageRgb8(got)) => {
                    let Some(shutter::mode::Palette::Rgb(entries)) = palette else {
                        panic!("frame {i}: an RGB image from a palette of {palette:?}");
                    };
                    assert_eq!(i, 1, "the varied alpha needs an RGBA palette");
                    let expanded: Vec<u8> =
                        want.iter().flat_map(|&k| entries[usize::from(k)]).collect();
                    assert_eq!(got.into_raw(), expanded, "P frame {i}");
                }
                (ImageMode::P, DynamicImage::ImageRgba8(got)) => {
                    let Some(shutter::mode::Palette::Rgba(entries)) = palette else {
                        panic!("frame {i}: an RGBA image from a palette of {palette:?}");
                    };
                    assert_eq!(i, 0, "an opaque RGB source takes the WEB palette");
                    let expanded: Vec<u8> =
                        want.iter().flat_map(|&k| entries[usize::from(k)]).collect();
                    assert_eq!(got.into_raw(), expanded, "P frame {i}");
                }
                (mode, other) => panic!("{mode}: got {:?}", other.color()),
            }
        }
    }
    // A frame with no converted image gives its RGB pixels, as `array` does.
    let raw = shutter::Frame::new(
        2,
        1,
        vec![1, 2, 3, 4, 5, 6, 7, 8],
        true,
        shutter::FrameMeta::still(0, 0),
    );
    let Ok(DynamicImage::ImageRgb8(got)) = raw.to_image() else {
        panic!("not RGB: {:?}", raw.to_image());
    };
    assert_eq!(got.into_raw(), [1, 2, 3, 5, 6, 7]);
    // A P image built by hand without its palette: the palette is what is missing (it was
    // told that mode P has no `image` buffer type, which it has).
    let indices = shutter::mode::ModeImage {
        width: 2,
        height: 1,
        mode: ImageMode::P,
        data: shutter::mode::ModeData::U8(vec![0, 1]),
        palette: None,
    };
    let err = indices.to_image().unwrap_err().to_string();
    assert!(err.contains("no palette"), "{err}");
}

/// `array_view` is `array` without the copy: equal arrays in every mode, borrowed from the
/// frame's own buffer (mode `1` excepted, whose bools are made from its bytes).
#[test]
fn array_view_equals_array_in_every_mode_and_borrows_the_frames_pixels() {
    use shutter::{FrameArrayView, ImageMode, mode::ModeData};
    let tmp = TempDir::new().unwrap();
    let path = noisy_png(tmp.path(), "in.png", 11, 5, 3);
    for mode in ImageMode::ALL {
        let mut calls = 0;
        Pipeline::builder()
            .source(Source::Path(path.clone()))
            .device(DeviceChoice::Cpu)
            .mode(mode)
            .build()
            .unwrap()
            .run_with(|frame| {
                calls += 1;
                let view = frame.array_view();
                assert_eq!(view.to_owned(), frame.array(), "{mode}");
                assert_eq!(view.shape(), frame.array().shape(), "{mode}");
                assert_eq!(view.dtype(), mode.dtype(), "{mode}");
                let data = &frame.image.as_ref().expect("a mode was set").data;
                let borrowed = match (&view, data) {
                    (FrameArrayView::Bool(_), _) => return Ok(()),
                    (FrameArrayView::U8(v), ModeData::U8(d)) => v.as_ptr() == d.as_ptr(),
                    (FrameArrayView::I32(v), ModeData::I32(d)) => v.as_ptr() == d.as_ptr(),
                    (FrameArrayView::F32(v), ModeData::F32(d)) => v.as_ptr() == d.as_ptr(),
                    (view, _) => panic!("{mode}: a {:?} view of other data", view.dtype()),
                };
                assert!(borrowed, "{mode}: the view is a copy");
                Ok(())
            })
            .unwrap();
        assert_eq!(calls, 1, "{mode}");
    }
    // A frame with no converted image: its RGB channels, viewed in place.
    let rgba = common::random_rgba(6, 3, 9);
    let raw = shutter::Frame::new(6, 3, rgba, true, shutter::FrameMeta::still(0, 0));
    let FrameArrayView::U8(view) = raw.array_view() else {
        panic!("not u8");
    };
    assert_eq!(view.as_ptr(), raw.rgba.as_ptr());
    assert_eq!(FrameArray::U8(view.to_owned()), raw.array());
}

/// A frame's `Debug` names its buffers' sizes: printing a 4K frame must not print 33 million
/// numbers.
#[test]
fn a_frames_debug_names_its_buffer_sizes_not_their_bytes() {
    let mut seen = Vec::new();
    let tmp = TempDir::new().unwrap();
    let path = noisy_png(tmp.path(), "in.png", 64, 48, 5);
    Pipeline::builder()
        .source(Source::Path(path))
        .device(DeviceChoice::Cpu)
        .mode(shutter::ImageMode::P)
        .build()
        .unwrap()
        .run_with(|frame| {
            seen.push(format!("{frame:?}"));
            Ok(())
        })
        .unwrap();
    let [debug] = &seen[..] else {
        panic!("{seen:?}");
    };
    assert!(debug.len() < 1000, "{debug}");
    for part in [
        "width: 64",
        "height: 48",
        "rgba: [12288 bytes]",
        "ModeImage { mode: P, 64×48, [3072 elements], 256-entry palette }",
    ] {
        assert!(debug.contains(part), "{part} in {debug}");
    }
}

/// An input that could not be listed (a missing file, a directory of no images) is reported
/// done by the path its error names, so that a progress display can show which one failed.
#[test]
fn inputs_that_cannot_be_listed_are_reported_by_their_path() {
    let tmp = TempDir::new().unwrap();
    let missing = tmp.path().join("missing.png");
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let good = noisy_png(tmp.path(), "good.png", 4, 3, 1);
    let done = Arc::new(Mutex::new(Vec::new()));
    let seen = done.clone();
    let stats = Pipeline::builder()
        .sources([
            Source::Path(missing.clone()),
            Source::Path(empty.clone()),
            Source::Path(good.clone()),
        ])
        .device(DeviceChoice::Cpu)
        .on_event(move |event| {
            if let shutter::Event::InputDone { name, error } = event {
                seen.lock()
                    .unwrap()
                    .push((name.to_string(), error.is_some()));
            }
        })
        .on_frame(|_| Ok(()))
        .build()
        .unwrap()
        .run()
        .unwrap();
    assert_eq!(stats.failures.len(), 2);
    let mut done = done.lock().unwrap().clone();
    done.sort();
    let mut want = vec![
        (missing.display().to_string(), true),
        (empty.display().to_string(), true),
        (good.display().to_string(), false),
    ];
    want.sort();
    assert_eq!(done, want);
}

/// A request handler that decodes with `shutter::source` and processes with a `Processor`
/// gets the pipeline's bytes: `Frame::from(decoded)` keeps the mode the file opens in (here a
/// gray PNG, whose `P` is the gray ramp, not the WEB palette an RGB frame would take).
#[test]
fn a_decoded_frame_processed_alone_equals_the_pipelines_result() {
    use shutter::{FrameArrayView, ImageMode, backend::Processor};
    let tmp = TempDir::new().unwrap();
    let gray = image::GrayImage::from_fn(16, 5, |x, y| image::Luma([(x * 13 + y * 40) as u8]));
    let mut bytes = Vec::new();
    gray.write_to(
        &mut std::io::Cursor::new(&mut bytes),
        image::ImageFormat::Png,
    )
    .unwrap();
    let path = tmp.path().join("gray.png");
    std::fs::write(&path, &bytes).unwrap();
    for mode in [ImageMode::P, ImageMode::One, ImageMode::L, ImageMode::Cmyk] {
        let mut want = Vec::new();
        Pipeline::builder()
            .source(Source::Path(path.clone()))
            .device(DeviceChoice::Cpu)
            .mode(mode)
            .build()
            .unwrap()
            .run_with(|frame| {
                want.push(frame.array());
                Ok(())
            })
            .unwrap();
        let ops = Ops {
            mode: Some(mode),
            ..Ops::new(false, vec![])
        };
        let mut processor = Processor::new(None, &ops, 1).unwrap();
        assert!(!processor.is_gpu() && processor.gpu().is_none());
        let decoded = shutter::source::decode_bytes("request", bytes.clone(), &Default::default())
            .unwrap()
            .next()
            .unwrap()
            .unwrap();
        let frame = processor.process(shutter::Frame::from(decoded)).unwrap();
        assert_eq!([frame.array()], &want[..], "{mode}");
        if mode == ImageMode::P {
            let FrameArrayView::U8(indices) = frame.array_view() else {
                panic!("P is u8");
            };
            // The gray ramp: index = value.
            assert_eq!(indices[[1, 2]], 2 * 13 + 40);
        }
    }
}

/// The frames of files in flight take at most the byte budget, one frame at least: with a
/// budget under one frame they go through one at a time, counting the converted image too,
/// and the outputs are those of a run with the default budget.
#[test]
fn frames_in_flight_stay_within_the_byte_budget_and_give_the_same_outputs() {
    use shutter::ImageMode;
    let tmp = TempDir::new().unwrap();
    let inputs = tmp.path().join("in");
    std::fs::create_dir(&inputs).unwrap();
    let (w, h) = (64u64, 48u64);
    for i in 0..8 {
        noisy_png(&inputs, &format!("f{i}.png"), w as u32, h as u32, 40 + i);
    }
    let gif = common::anim_fixture("loop3.gif");
    std::fs::copy(&gif.path, inputs.join("anim.gif")).unwrap();
    let rgba_and_f = |pixels: u64| pixels * (4 + 4);
    let one_png = rgba_and_f(w * h);
    let one_gif = rgba_and_f(u64::from(gif.width) * u64::from(gif.height));
    for device in devices() {
        let run = |budget: Option<u64>, out: &Path| {
            let mut builder = Pipeline::builder()
                .sources([inputs.as_path()])
                .device(device)
                .mode(ImageMode::F)
                .output(Output::Dir(out.to_path_buf()), Format::Npy);
            if let Some(bytes) = budget {
                builder = builder.in_flight_bytes(bytes);
            }
            let stats = builder.build().unwrap().run().unwrap();
            assert!(stats.failures.is_empty(), "{:?}", stats.failures);
            assert_eq!(stats.written.len(), 9);
            stats.in_flight_peak_bytes
        };
        let unbounded = tmp.path().join(format!("default-{device:?}"));
        let default_peak = run(None, &unbounded);
        assert!(
            default_peak >= one_png.max(one_gif),
            "{device:?}: {default_peak}"
        );

        let one_at_a_time = tmp.path().join(format!("one-{device:?}"));
        assert_eq!(
            run(Some(1), &one_at_a_time),
            one_png.max(one_gif),
            "{device:?}: one frame at a time, the largest being the GIF's or a PNG's"
        );
        let three = tmp.path().join(format!("three-{device:?}"));
        let budget = 3 * one_png.max(one_gif);
        let peak = run(Some(budget), &three);
        assert!(peak <= budget, "{device:?}: {peak} > {budget}");
        for dir in [&one_at_a_time, &three] {
            for name in common::dir_names(&unbounded) {
                assert_eq!(
                    std::fs::read(dir.join(&name)).unwrap(),
                    std::fs::read(unbounded.join(&name)).unwrap(),
                    "{device:?}: {name}"
                );
            }
        }
    }
}

/// Files decoded ahead on several threads go on as one thread gives them: the same frames
/// in input order, an animation's frames between the stills around it, the broken inputs'
/// failures in order, the same files written; and within a budget of three frames.
#[test]
fn decoding_ahead_on_many_threads_gives_what_one_thread_gives() {
    let tmp = TempDir::new().unwrap();
    let inputs = tmp.path().join("in");
    std::fs::create_dir(&inputs).unwrap();
    let sizes = [
        (31, 17),
        (1, 1),
        (64, 48),
        (3, 7),
        (40, 40),
        (90, 5),
        (12, 12),
    ];
    for (i, &(w, h)) in sizes.iter().enumerate() {
        noisy_png(&inputs, &format!("f{i}.png"), w, h, 70 + i as u64);
    }
    std::fs::write(inputs.join("f2b.png"), b"not a png at all").unwrap();
    std::fs::write(inputs.join("f5b.gif"), b"GIF89a cut short").unwrap();
    let gif = common::anim_fixture("loop3.gif");
    std::fs::copy(&gif.path, inputs.join("f4b.gif")).unwrap();
    let frame_bytes = |w: u64, h: u64| w * h * (4 + 3);
    let largest = frame_bytes(64, 48).max(frame_bytes(gif.width.into(), gif.height.into()));
    for device in devices() {
        let run = |threads: usize, budget: Option<u64>| {
            let out = tmp.path().join(format!("{device:?}-{threads}-{budget:?}"));
            let seen = Arc::new(Mutex::new(Vec::new()));
            let sink = seen.clone();
            let mut builder = Pipeline::builder()
                .sources([inputs.as_path()])
                .device(device)
                .mirror(true)
                .filter(Filter::Sepia)
                .decode_threads(threads)
                .output(Output::Dir(out.clone()), Format::Png)
                .on_frame(move |frame| {
                    let name = frame.meta.name.to_string();
                    sink.lock()
                        .unwrap()
                        .push((name, frame.meta.index, frame.array()));
                    Ok(())
                });
            if let Some(bytes) = budget {
                builder = builder.in_flight_bytes(bytes);
            }
            let stats = builder.build().unwrap().run().unwrap();
            let failures: Vec<String> = stats.failures.iter().map(|e| e.to_string()).collect();
            let written: Vec<(String, Vec<u8>)> = common::dir_names(&out)
                .into_iter()
                .map(|name| (name.clone(), std::fs::read(out.join(&name)).unwrap()))
                .collect();
            let seen = std::mem::take(&mut *seen.lock().unwrap());
            (seen, failures, written, stats.in_flight_peak_bytes)
        };
        let (seen, failures, written, _) = run(1, None);
        let order: Vec<(String, usize)> = seen.iter().map(|(n, i, _)| (n.clone(), *i)).collect();
        let name = |file: &str| inputs.join(file).display().to_string();
        // By name: f2b.png after f2.png and f5b.gif after f5.png fail, and the animation
        // f4b.gif comes after f4.png.
        let mut want: Vec<(String, usize)> = ["f0", "f1", "f2", "f3", "f4"]
            .iter()
            .map(|stem| (name(&format!("{stem}.png")), 0))
            .collect();
        want.extend((0..gif.delays_ms.len()).map(|i| (name("f4b.gif"), i)));
        want.extend([(name("f5.png"), 0), (name("f6.png"), 0)]);
        assert_eq!(order, want, "{device:?}");
        assert_eq!(failures.len(), 2, "{device:?}: {failures:?}");
        assert!(failures[0].contains("f2b.png") && failures[1].contains("f5b.gif"));
        for (threads, budget) in [(6, None), (3, Some(3 * largest)), (8, Some(1))] {
            let (many, many_failures, many_written, peak) = run(threads, budget);
            assert_eq!(
                many, seen,
                "{device:?}: {threads} threads, budget {budget:?}"
            );
            assert_eq!(many_failures, failures, "{device:?}: {threads} threads");
            assert_eq!(many_written, written, "{device:?}: {threads} threads");
            if let Some(bytes) = budget {
                assert!(
                    peak <= bytes.max(largest),
                    "{device:?}: {threads} threads: {peak} > {bytes}"
                );
            }
        }
    }
}

/// Files decoded ahead are weighed by their headers: large images after small ones stay
/// within the budget, where an estimate from the small ones would let several large ones be
/// decoded ahead at once.
#[test]
fn large_files_after_small_ones_are_decoded_ahead_within_the_budget() {
    let tmp = TempDir::new().unwrap();
    let inputs = tmp.path().join("in");
    std::fs::create_dir(&inputs).unwrap();
    for i in 0..6 {
        noisy_png(&inputs, &format!("a{i}.png"), 2, 2, 90 + i);
        noisy_png(&inputs, &format!("b{i}.png"), 64, 64, 100 + i);
    }
    let large = 64 * 64 * (4 + 3);
    for budget in [large, 2 * large, 3 * large + 5] {
        let stats = Pipeline::builder()
            .sources([inputs.as_path()])
            .device(DeviceChoice::Cpu)
            .decode_threads(8)
            .in_flight_bytes(budget)
            .on_frame(|_| Ok(()))
            .build()
            .unwrap()
            .run()
            .unwrap();
        assert_eq!(stats.frames, 12);
        assert!(
            stats.in_flight_peak_bytes <= budget,
            "{} > {budget}",
            stats.in_flight_peak_bytes
        );
    }
}

#[test]
fn the_pipeline_and_its_parts_print_their_settings_for_debugging() {
    let builder = Pipeline::builder()
        .source(Source::Pattern {
            width: 16,
            height: 16,
            fps: None,
        })
        .device(DeviceChoice::Cpu)
        .in_flight(5)
        .on_frame(|_| Ok(()));
    let shown = format!("{builder:?}");
    for part in [
        "Pattern",
        "in_flight: 5",
        "on_frame: true",
        "on_event: false",
    ] {
        assert!(shown.contains(part), "{part} in {shown}");
    }
    let pipeline = builder.build().unwrap();
    assert!(format!("{pipeline:?}").starts_with("Pipeline(PipelineBuilder {"));
    let processor = shutter::Processor::new(None, &shutter::Ops::default(), 2).unwrap();
    assert!(format!("{processor:?}").contains("backend: \"cpu\""));
    let writer = shutter::sink::sequence::SequenceWriter::new(
        shutter::Format::Gif,
        std::io::Cursor::new(Vec::new()),
    )
    .unwrap();
    assert!(format!("{writer:?}").contains("frames: 0"));
}

/// In a callback, `frame.rgba` is the frame as captured, before the mirror, the filters and
/// the conversion, whatever the mode and the ops: also where the mode is converted from the
/// filtered RGBA on the CPU (`P`, `1` with dithering, a gray source's own conversions) and
/// where a `sepia-norm` follows another filter (its maximum is of that filter's result).
/// It was the filtered frame, or one half-way through the chain, in those cases.
#[test]
fn the_callbacks_rgba_is_the_frame_as_captured_in_every_mode() {
    use shutter::source::live::{FuncGrabber, RawFormat, RawFrame};
    use shutter::{Dither, ImageMode};
    use std::time::Duration;

    let (w, h) = (7u32, 5u32);
    let rgba: Vec<u8> = common::random_rgba(w, h, 41)
        .chunks_exact(4)
        .flat_map(|p| [p[0], p[1], p[2], p[3] | 1])
        .collect();
    let gray: Vec<u8> = (0..w * h).map(|i| (i * 37 % 251) as u8 + 2).collect();
    let tmp = TempDir::new().unwrap();
    let gray_png = tmp.path().join("gray.png");
    image::GrayImage::from_raw(w, h, gray.clone())
        .unwrap()
        .save(&gray_png)
        .unwrap();
    let gray_as_rgba: Vec<u8> = gray.iter().flat_map(|&v| [v, v, v, 255]).collect();

    let chains: [(bool, Vec<Filter>); 4] = [
        (true, vec![]),
        (false, vec![Filter::Invert]),
        (true, vec![Filter::Invert, Filter::SepiaNorm]),
        (false, vec![Filter::SepiaNorm, Filter::SepiaNorm]),
    ];
    let mut modes: Vec<(ImageMode, Dither)> = ImageMode::ALL
        .iter()
        .map(|&m| (m, Dither::FloydSteinberg))
        .collect();
    modes.push((ImageMode::One, Dither::None));
    let ctx = common::gpu_or_skip("the_callbacks_rgba_is_the_frame_as_captured");
    for device in devices() {
        for &(mode, dither) in &modes {
            for (mirror, filters) in &chains {
                for gray_source in [false, true] {
                    let source = if gray_source {
                        Source::Path(gray_png.clone())
                    } else {
                        let mut frames = vec![RawFrame {
                            width: w,
                            height: h,
                            format: RawFormat::Rgba,
                            data: rgba.clone(),
                            timestamp: Duration::ZERO,
                        }]
                        .into_iter();
                        Source::grabber(FuncGrabber::from_fn(move || {
                            frames.next().map(Ok::<_, shutter::BoxError>)
                        }))
                    };
                    let want = if gray_source { &gray_as_rgba } else { &rgba };
                    let case = format!(
                        "{device:?} mode {mode} {dither:?} mirror {mirror} {filters:?} gray \
                         {gray_source}"
                    );
                    let mut seen = 0;
                    Pipeline::builder()
                        .source(source)
                        .device(device)
                        .gpu_context(ctx.clone())
                        .mirror(*mirror)
                        .filters(filters.clone())
                        .mode(mode)
                        .dither(dither)
                        .build()
                        .unwrap()
                        .run_with(|frame| {
                            seen += 1;
                            assert!(frame.rgba == *want, "{case}: rgba is not as captured");
                            assert!(frame.image.is_some(), "{case}: no image");
                            Ok(())
                        })
                        .unwrap();
                    assert_eq!(seen, 1, "{case}");
                }
            }
        }
    }
}

/// A stop asked for in the callback on an animation's last frame, with its frames written as
/// frame files: the frame files written before the stop stay and the animation is reported
/// done (an `InputDone` event), or, with none written, it is not reached; the input after it
/// is not reached. Every input is one or the other; the animation was neither when its last
/// frame file was skipped after others were written.
#[test]
fn a_stop_on_an_animations_last_frame_reports_it_done_with_its_frames() {
    use shutter::Event;
    use std::sync::atomic::{AtomicBool, Ordering};

    let tmp = TempDir::new().unwrap();
    let png: Arc<[u8]> = std::fs::read(noisy_png(tmp.path(), "a.png", 4, 4, 3))
        .unwrap()
        .into();
    let mut gif = Vec::new();
    {
        let mut encoder = image::codecs::gif::GifEncoder::new(&mut gif);
        for k in 0..4u8 {
            let frame = image::RgbaImage::from_pixel(5, 3, image::Rgba([k * 60 + 10, 7, 9, 255]));
            encoder.encode_frame(image::Frame::new(frame)).unwrap();
        }
    }
    let out = tmp.path().join("out");
    let stop = Arc::new(AtomicBool::new(false));
    let stop_in_callback = stop.clone();
    let done = Arc::new(Mutex::new(Vec::new()));
    let events = done.clone();
    let stats = Pipeline::builder()
        .source(Source::Bytes {
            name: "a.png".into(),
            data: png.clone(),
        })
        .source(Source::Bytes {
            name: "anim.gif".into(),
            data: gif.into(),
        })
        .source(Source::Bytes {
            name: "b.png".into(),
            data: png,
        })
        .device(DeviceChoice::Cpu)
        .in_flight(1)
        .output(Output::Dir(out.clone()), Format::Png)
        .stop_flag(stop)
        .on_event(move |event| {
            if let Event::InputDone { name, error } = event {
                events
                    .lock()
                    .unwrap()
                    .push((name.to_string(), error.is_some()));
            }
        })
        .on_frame(move |frame| {
            if &*frame.meta.name == "anim.gif" && frame.meta.last {
                stop_in_callback.store(true, Ordering::SeqCst);
            }
            Ok(())
        })
        .build()
        .unwrap()
        .run()
        .unwrap();
    // Every input is done or not reached, once.
    let done = done.lock().unwrap().clone();
    assert_eq!(done.len() + stats.not_reached, 3, "{done:?} {stats:?}");
    assert_eq!(done[0], ("a.png".to_string(), false), "{stats:?}");
    let written = common::dir_names(&out);
    assert!(
        !written.iter().any(|name| name.starts_with('b')),
        "{written:?}"
    );
    assert!(
        !written.contains(&"anim_00003.png".to_string()),
        "{written:?}"
    );
    // The animation's frame files are encoded on threads that may not have started them
    // before the stop: it is done with those written, or not reached with none.
    let anim_files = written
        .iter()
        .filter(|name| name.starts_with("anim"))
        .count();
    if anim_files > 0 {
        assert_eq!(
            done.get(1),
            Some(&("anim.gif".to_string(), false)),
            "{stats:?}"
        );
        assert_eq!(stats.not_reached, 1, "{stats:?}");
    } else {
        assert_eq!(stats.not_reached, 2, "{done:?} {stats:?}");
    }
}

/// Past its time limit, a run whose source has ended waits for the frames still being
/// processed, however long they take: a frame whose processing outlasts the limit's grace
/// (1 ms here; a 2000×2000 frame dithered to `P`) is delivered, where the run gave up on it
/// as on a stalled source and returned `Ok` with nothing delivered. The source moves
/// the pipeline's clock past the limit as it ends, after its one frame.
#[test]
fn past_the_time_limit_a_slow_frame_of_an_ended_source_is_still_delivered() {
    use shutter::ImageMode;
    use shutter::source::live::{ManualClock, RawFormat, RawFrame};
    use std::time::Duration;

    let side = 2000u32;
    let clock = Arc::new(ManualClock::new());
    let source_clock = clock.clone();
    let mut frame = Some(RawFrame {
        width: side,
        height: side,
        format: RawFormat::Rgb,
        data: (0..side * side)
            .flat_map(|i| [(i % side) as u8, (i / side) as u8, (i % 251) as u8 | 1])
            .collect(),
        timestamp: Duration::ZERO,
    });
    let grabber = shutter::FuncGrabber::from_fn(move || match frame.take() {
        Some(frame) => Some(Ok::<_, shutter::BoxError>(frame)),
        None => {
            // Past the limit, as the source ends.
            source_clock.set(Duration::from_secs(2));
            None
        }
    })
    // Its frame stamped on the pipeline's clock, before the limit.
    .with_clock(clock.clone());
    let mut calls = 0;
    let stats = Pipeline::builder()
        .source(Source::grabber(grabber))
        .device(DeviceChoice::Cpu)
        .clock(clock)
        .filter(Filter::Sepia)
        .mode(ImageMode::P)
        .time_limit(Duration::from_secs(1))
        .limit_grace(Duration::from_millis(1))
        .build()
        .unwrap()
        .run_with(|frame| {
            calls += 1;
            assert_eq!(frame.array().shape(), [side as usize, side as usize]);
            Ok(())
        })
        .unwrap();
    assert_eq!(
        (calls, stats.delivered, stats.frames),
        (1, 1, 1),
        "{stats:?}"
    );
}

/// A callback's error is returned while the source is blocked in its call (a closure waiting
/// for frames that do not come, a stalled camera), once the limit's grace has passed: the run
/// waited for the source's call to return, for ever if it never did. The source's call ends
/// on its own later; the test releases it after the run has returned.
#[test]
fn a_callbacks_error_is_returned_while_the_source_is_blocked() {
    use std::time::Duration;

    let (release, blocked) = crossbeam_channel::bounded::<()>(0);
    let mut calls = 0;
    let grabber = shutter::FuncGrabber::from_fn(move || {
        calls += 1;
        if calls > 1 {
            // Blocks until the test releases it (or drops the sender).
            let _ = blocked.recv();
            return None;
        }
        Some(Ok::<_, shutter::BoxError>(image::RgbImage::from_pixel(
            4,
            3,
            image::Rgb([9, 80, 200]),
        )))
    });
    let (done_tx, done_rx) = crossbeam_channel::bounded(1);
    std::thread::spawn(move || {
        let result = Pipeline::builder()
            .source(Source::grabber(grabber))
            .device(DeviceChoice::Cpu)
            .limit_grace(Duration::from_millis(1))
            .build()
            .unwrap()
            .run_with(|_| Err("the client has gone".into()));
        let _ = done_tx.send(result.map(|stats| stats.delivered));
    });
    // A watchdog, not a synchronisation: the run returns long before it without the bug.
    let result = done_rx.recv_timeout(Duration::from_secs(60));
    drop(release);
    let result = result.expect("the run waited for the blocked source");
    let err = result.unwrap_err();
    assert!(err.to_string().contains("the client has gone"), "{err}");
}

/// Two runs into one new output directory, as a server creating a directory per session or
/// per day has: the first creates it, the second finds it, and the first, whose input failed,
/// removes it again as a run that wrote nothing does. The second still writes its frames.
#[test]
fn a_run_writes_into_an_output_directory_another_run_created_and_removed() {
    use std::sync::mpsc::channel;
    use std::time::Duration;
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path().join("day").join("session");
    let wait = Duration::from_secs(60);
    let (a_prepared, a_prepared_rx) = channel::<()>();
    let (b_prepared, b_prepared_rx) = channel::<()>();
    let (a_done, a_done_rx) = channel::<()>();
    let b_prepared_rx = Mutex::new(b_prepared_rx);
    let first = {
        let dir = dir.clone();
        std::thread::spawn(move || {
            Pipeline::builder()
                .source(Source::Bytes {
                    name: "bad".into(),
                    data: b"GIF89a, then nothing".to_vec().into(),
                })
                .device(DeviceChoice::Cpu)
                .output(Output::Dir(dir), Format::Png)
                .on_event(move |event| {
                    // Its input fails once its output directory exists; it ends, removing
                    // the directory, only once the second run has found it.
                    if let shutter::Event::InputDone { .. } = event {
                        a_prepared.send(()).unwrap();
                        b_prepared_rx.lock().unwrap().recv_timeout(wait).unwrap();
                    }
                })
                .build()
                .unwrap()
                .run()
                .unwrap()
        })
    };
    a_prepared_rx.recv_timeout(wait).unwrap();
    assert!(dir.is_dir());
    let mut sent = 0;
    let a_done_rx = Mutex::new(a_done_rx);
    let grabber = shutter::source::live::FuncGrabber::from_fn(move || {
        sent += 1;
        if sent == 1 {
            // Called once the run has prepared its outputs; the frame comes once the first
            // run has ended.
            b_prepared.send(()).unwrap();
            a_done_rx.lock().unwrap().recv_timeout(wait).unwrap();
        }
        (sent <= 2).then(|| Ok((4, 3, common::random_rgba(4, 3, sent))))
    });
    let second = {
        let dir = dir.clone();
        std::thread::spawn(move || {
            Pipeline::builder()
                .source(Source::grabber(grabber.named("good")))
                .device(DeviceChoice::Cpu)
                .output(Output::Dir(dir), Format::Png)
                .build()
                .unwrap()
                .run()
                .unwrap()
        })
    };
    let first = first.join().unwrap();
    assert_eq!((first.failures.len(), first.written.len()), (1, 0));
    assert!(!dir.exists(), "the first run left its empty directory");
    a_done.send(()).unwrap();
    let second = second.join().unwrap();
    assert!(second.failures.is_empty(), "{:?}", second.failures);
    let mut written = second.written.clone();
    written.sort(); // frame files finish in any order
    assert_eq!(
        written,
        vec![dir.join("good_00000.png"), dir.join("good_00001.png")]
    );
    assert!(dir.join("good_00001.png").is_file());
}

/// A source stuck in its call while the manual clock goes on, a second a tick, until the
/// test lets it go (after the run has given up on it).
fn stall(released: &std::sync::mpsc::Receiver<()>, clock: &shutter::source::live::ManualClock) {
    use std::sync::mpsc::RecvTimeoutError;
    use std::time::Duration;
    while let Err(RecvTimeoutError::Timeout) = released.recv_timeout(Duration::from_millis(5)) {
        clock.advance(Duration::from_secs(1));
    }
}

/// A live source that has sent nothing for the idle timeout (on the pipeline clock, as Gradio
/// closes a stream idle for 30 s) ends the run with what it delivered: its GIF is written with
/// those frames, and the source is left in its call. A source as slow, but never idle that
/// long, is not ended by it. The clock is a manual one, moved on by the source itself.
#[test]
fn a_source_idle_for_the_idle_timeout_ends_its_stream_with_what_it_delivered() {
    use shutter::source::live::{FuncGrabber, ManualClock};
    use std::time::Duration;
    let tmp = TempDir::new().unwrap();
    for stalls in [true, false] {
        let clock = Arc::new(ManualClock::new());
        let time = clock.clone();
        // Frame 3 reached the sink: a stall after it cannot race the frames before it.
        let (third_delivered, sink_has_three) = std::sync::mpsc::channel::<()>();
        let (release, blocked) = std::sync::mpsc::channel::<()>();
        let mut sent = 0u8;
        let grabber = FuncGrabber::from_fn(move || {
            sent += 1;
            // 29 s in each call: slow, but never idle for the 30 s.
            time.advance(Duration::from_secs(29));
            if sent <= 3 {
                let pixels = (0..6 * 4 * 4u32)
                    .map(|i| (i * 7 + u32::from(sent) * 50) as u8)
                    .collect();
                return Some(Ok((6u32, 4u32, pixels)));
            }
            if stalls {
                let _ = sink_has_three.recv();
                stall(&blocked, &time);
            }
            None
        });
        let out = tmp.path().join(format!("stalls-{stalls}.gif"));
        let to = out.clone();
        let mut seen = 0;
        let stats = run_or_hang(move || {
            Pipeline::builder()
                .source(Source::grabber(grabber))
                .device(DeviceChoice::Cpu)
                .clock(clock)
                .idle_timeout(Duration::from_secs(30))
                .output(Output::File(to), Format::Gif)
                .on_frame(move |_| {
                    seen += 1;
                    if seen == 3 {
                        let _ = third_delivered.send(());
                    }
                    Ok(())
                })
        })
        .unwrap();
        assert_eq!(stats.source_idle, stalls, "{stats:?}");
        assert_eq!((stats.captured, stats.delivered), (3, 3), "{stats:?}");
        assert!(stats.failures.is_empty(), "{:?}", stats.failures);
        assert_eq!(stats.written, vec![out.clone()]);
        let file = std::io::BufReader::new(std::fs::File::open(&out).unwrap());
        let decoder = image::codecs::gif::GifDecoder::new(file).unwrap();
        use image::AnimationDecoder;
        assert_eq!(decoder.into_frames().count(), 3, "stalls {stalls}");
        drop(release);
    }
}

/// After a stop (Ctrl-C), a source stuck in its call is given up on at the idle timeout as the
/// stop would have it: the run ends as stopped, not as idle.
#[test]
fn after_a_stop_the_idle_timeout_ends_the_run_as_stopped() {
    use shutter::source::live::{FuncGrabber, ManualClock};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;
    let clock = Arc::new(ManualClock::new());
    let time = clock.clone();
    let (release, blocked) = std::sync::mpsc::channel::<()>();
    let mut sent = 0u8;
    let grabber = FuncGrabber::from_fn(move || {
        sent += 1;
        if sent > 1 {
            stall(&blocked, &time);
            return None;
        }
        Some(Ok((
            3u32,
            2u32,
            (0..24).map(|i| i * 10 + 5).collect::<Vec<u8>>(),
        )))
    });
    let stop = Arc::new(AtomicBool::new(false));
    let on_stop = stop.clone();
    let stats = run_or_hang(move || {
        Pipeline::builder()
            .source(Source::grabber(grabber))
            .device(DeviceChoice::Cpu)
            .clock(clock)
            .idle_timeout(Duration::from_secs(30))
            .stop_flag(stop)
            .on_frame(move |_| {
                on_stop.store(true, Ordering::Relaxed);
                Ok(())
            })
    })
    .unwrap();
    assert!(!stats.source_idle, "{stats:?}");
    assert_eq!(stats.delivered, 1, "{stats:?}");
    assert!(stats.failures.is_empty(), "{:?}", stats.failures);
    drop(release);
}

/// A source waiting on the sink's own work is not idle: here a closure waits for the callback's
/// answer to frame 1, which takes 40 s (on the pipeline clock), then takes 20 s more to make
/// frame 2. Its call has lasted 60 s, but the sink has been back for 20 s only.
#[test]
fn a_source_waiting_for_a_slow_callback_is_not_idle() {
    use shutter::source::live::{FuncGrabber, ManualClock};
    use std::time::Duration;
    let clock = Arc::new(ManualClock::new());
    let (time, answering) = (clock.clone(), clock.clone());
    let (answer, answered) = std::sync::mpsc::channel::<()>();
    let mut sent = 0u8;
    let grabber = FuncGrabber::from_fn(move || {
        sent += 1;
        if sent == 2 {
            let _ = answered.recv();
            for _ in 0..20 {
                // Making the frame: a second of the clock per tick, while the sink waits.
                let _ = answered.recv_timeout(Duration::from_millis(5));
                time.advance(Duration::from_secs(1));
            }
        }
        (sent <= 2).then(|| {
            let pixels = (0..4 * 3 * 4u32).map(|i| (i * 11 + 7) as u8).collect();
            Ok((4u32, 3u32, pixels))
        })
    });
    let stats = run_or_hang(move || {
        Pipeline::builder()
            .source(Source::grabber(grabber))
            .device(DeviceChoice::Cpu)
            .clock(clock)
            .idle_timeout(Duration::from_secs(30))
            .on_frame(move |_| {
                answering.advance(Duration::from_secs(40));
                let _ = answer.send(());
                Ok(())
            })
    })
    .unwrap();
    assert!(!stats.source_idle, "{stats:?}");
    assert_eq!(stats.delivered, 2, "{stats:?}");
}

/// A run that gave up on a source blocked in its call (the abort flag, as a server gives up on
/// a stalled camera) leaves the capture thread waiting on that source, and nothing more: the
/// GPU stage ends, and its ring (its buffers, its share of a shared context) with it, and the
/// waiting capture holds no share of the context.
#[test]
fn an_aborted_run_whose_source_hangs_lets_go_of_its_gpu_stage() {
    use shutter::source::live::FuncGrabber;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::{Duration, Instant};
    let Some(ctx) =
        common::gpu_or_skip("an_aborted_run_whose_source_hangs_lets_go_of_its_gpu_stage")
    else {
        return;
    };
    let (release, blocked) = std::sync::mpsc::channel::<()>();
    let mut sent = 0u8;
    let grabber = FuncGrabber::from_fn(move || {
        sent += 1;
        if sent == 1 {
            return Some(Ok((8u32, 4u32, vec![90; 8 * 4 * 4])));
        }
        let _ = blocked.recv();
        None
    });
    let abort = Arc::new(AtomicBool::new(false));
    let on_abort = abort.clone();
    let run_ctx = ctx.clone();
    let stats = run_or_hang(move || {
        Pipeline::builder()
            .source(Source::grabber(grabber))
            .device(DeviceChoice::Gpu)
            .gpu_context(run_ctx)
            .abort_flag(abort)
            .on_frame(move |_| {
                on_abort.store(true, Ordering::Relaxed);
                Ok(())
            })
    })
    .unwrap();
    assert_eq!(stats.delivered, 1);
    // The context's holders once those that are ending have ended (a thread's exit is seen
    // only through what it drops: waited for, 30 s at most).
    let holders_settle_at = |holders: usize| {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Arc::strong_count(&ctx) > holders && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        Arc::strong_count(&ctx)
    };
    // The test alone: the GPU stage's shares go as it ends, and the capture, which waits in
    // the source, holds the context only weakly (it would convert a camera's YUV frames).
    assert_eq!(
        holders_settle_at(1),
        1,
        "the GPU stage or the waiting capture still holds the context"
    );
    drop(release);
}

//! Live streams from the command line: the pattern source with stream_every and time_limit,
//! a missing webcam, statistics as JSON, and bad stream flags.

mod common;

use common::{s, shutter, stderr};
use shutter::source::pattern::read_frame_number;
use tempfile::TempDir;

/// The value of a top-level numeric field in the one-line JSON statistics.
fn json_number(json: &str, key: &str) -> u64 {
    let at = json
        .find(&format!("\"{key}\":"))
        .unwrap_or_else(|| panic!("no {key} in {json}"))
        + key.len()
        + 3;
    json[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap_or_else(|_| panic!("{key} is not a number in {json}"))
}

#[test]
fn pattern_at_60fps_every_half_second_for_3s_writes_the_frame_of_each_tick() {
    let tmp = TempDir::new().unwrap();
    let out_dir = tmp.path().join("out");
    let out = shutter(&[
        "run",
        "pattern:320x240@60",
        "--stream-every",
        "0.5",
        "--time-limit",
        "3",
        "-o",
        s(&out_dir),
        "--format",
        "png",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let mut files: Vec<_> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    // At most one file per tick (6 in 3 s, 7 with the edges); a machine that stalls may see
    // fewer ticks in its 3 s of wall time, so only the first is certain (the exact ticks are
    // tested on a manual clock in tests/streams.rs).
    assert!(
        (1..=7).contains(&files.len()),
        "{} files: {files:?}",
        files.len()
    );
    let mut last = None;
    for (i, path) in files.iter().enumerate() {
        assert_eq!(
            path.file_name().unwrap().to_string_lossy(),
            format!("pattern_{i:05}.png")
        );
        let img = image::open(path).unwrap().to_rgba8();
        let n = read_frame_number(img.as_raw(), img.width(), img.height())
            .unwrap_or_else(|| panic!("{path:?} has no frame number"));
        // The frame at or after tick i, from tick i's interval or later, never earlier.
        assert!(n >= 30 * i as u64, "file {i} holds frame {n}");
        assert!(last.is_none_or(|l| n > l), "frames out of order");
        last = Some(n);
    }
    let json = String::from_utf8_lossy(&out.stdout);
    let captured = json_number(&json, "captured");
    let processed = json_number(&json, "processed");
    let delivered = json_number(&json, "delivered");
    let before_gpu = json_number(&json, "before_gpu");
    let before_sink = json_number(&json, "before_sink");
    let by_interval = json_number(&json, "by_interval");
    assert!(captured <= 180, "60 fps for 3 s: {captured} frames");
    assert_eq!(processed + before_gpu + by_interval, captured, "{json}");
    assert_eq!(delivered + before_sink, processed, "{json}");
    assert_eq!(delivered, files.len() as u64);
    assert!(json.contains("\"p99_ms\":"), "{json}");
}

#[test]
fn a_missing_webcam_is_one_line_exit_1_no_panic() {
    let tmp = TempDir::new().unwrap();
    let out = shutter(&["run", "webcam:7", "-o", s(&tmp.path().join("out"))]);
    let err = stderr(&out);
    if out.status.success() {
        // A machine with eight cameras: nothing to check here.
        return;
    }
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    let errors: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("shutter: error:"))
        .collect();
    assert_eq!(errors.len(), 1, "{err}");
    assert!(errors[0].contains("webcam:7"), "{err}");
    // With --json, stdout still holds the run's object, the failure in it.
    let out = shutter(&[
        "run",
        "webcam:7",
        "--json",
        "-o",
        s(&tmp.path().join("out")),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let json: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("one JSON object on stdout");
    let failures = json["failures"].as_array().expect("failures");
    assert_eq!(failures.len(), 1, "{json}");
    assert!(
        failures[0].as_str().is_some_and(|f| f.contains("webcam:7")),
        "{json}"
    );
    assert_eq!(json["delivered"], 0, "{json}");
}

#[test]
fn frames_limit_and_stats_account_for_an_unpaced_pattern() {
    let tmp = TempDir::new().unwrap();
    let out_dir = tmp.path().join("out");
    let out = shutter(&[
        "run",
        "pattern:64x32",
        "--frames",
        "25",
        // 0: no idle timeout (a webcam's default is 30 s).
        "--idle-timeout",
        "0",
        "--format",
        "npy",
        "--mirror",
        "--filter",
        "sepia",
        "-o",
        s(&out_dir),
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let json = String::from_utf8_lossy(&out.stdout);
    assert_eq!(json_number(&json, "captured"), 25);
    assert_eq!(json_number(&json, "delivered"), 25);
    // The pattern never went idle (--idle-timeout).
    assert!(json.contains("\"source_idle\":false"), "{json}");
    // npy holds many frames: one (25, 32, 64, 3) array.
    let bytes = std::fs::read(out_dir.join("pattern.npy")).unwrap();
    let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let header = std::str::from_utf8(&bytes[10..10 + header_len]).unwrap();
    assert!(header.contains("'shape': (25, 32, 64, 3)"), "{header}");
}

#[test]
fn bad_stream_flags_exit_2() {
    let tmp = TempDir::new().unwrap();
    let out_dir = tmp.path().join("out");
    let png = tmp.path().join("still.png");
    image::RgbImage::from_pixel(3, 2, image::Rgb([200, 90, 10]))
        .save(&png)
        .unwrap();
    for (args, named) in [
        (vec!["pattern:axb"], "pattern:axb"),
        // Files are all delivered: an interval would drop them without failing them.
        (vec![s(&png), "--stream-every", "0.5"], "--stream-every"),
        // Camera constraints on sources that are not cameras.
        (vec!["pattern:64x48", "--fps", "5"], "--fps"),
        (vec!["pattern", "--width", "1000"], "--width"),
        (vec![s(&png), "--height", "20"], "--height"),
        (vec!["pattern", "--policy", "newest"], "--policy"),
        (vec!["pattern", "--stream-every", "0"], "--stream-every"),
        (vec!["pattern", "--time-limit", "-1"], "--time-limit"),
        (vec!["pattern", "--idle-timeout", "-3"], "--idle-timeout"),
        (vec!["webcam:x"], "webcam:x"),
        // Known before any frame: a side the format cannot hold, and counts out of range
        // (`-1` taken as the flag's value, not as a flag).
        (vec!["pattern:16384x16"], "16383"),
        (
            vec!["pattern", "--frames", "-1"],
            "'--frames <N>': expected a whole number of 1 or more",
        ),
        (vec!["pattern", "--in-flight", "-2"], "--in-flight"),
        (vec!["pattern", "--quality", "-1"], "--quality"),
        (vec!["pattern", "--max-pixels", "0"], "--max-pixels"),
    ] {
        let mut full = vec!["run"];
        full.extend(args.iter().copied());
        full.extend(["-o", s(&out_dir)]);
        let out = shutter(&full);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(named), "{args:?}: {}", stderr(&out));
        assert!(!out_dir.exists());
    }
}

#[test]
fn batched_submissions_write_the_same_arrays_as_single_ones() {
    let tmp = TempDir::new().unwrap();
    let mut outputs = Vec::new();
    for batch in ["1", "4"] {
        let out_dir = tmp.path().join(format!("b{batch}"));
        let out = shutter(&[
            "run",
            "pattern:48x16",
            "--frames",
            "10",
            "--batch",
            batch,
            "--filter",
            "sepia-norm",
            "--mode",
            "HSV",
            "--format",
            "npy",
            "-o",
            s(&out_dir),
        ]);
        assert!(out.status.success(), "--batch {batch}: {}", stderr(&out));
        outputs.push(std::fs::read(out_dir.join("pattern.npy")).unwrap());
    }
    assert_eq!(outputs[0], outputs[1]);
}

#[cfg(unix)]
#[test]
fn sigterm_ends_a_stream_cleanly_like_ctrl_c() {
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};
    // `timeout` and service managers stop a process with SIGTERM: the stream must end as on
    // Ctrl-C (frames in flight finish, every file complete, the summary printed, exit 0),
    // not die mid-write.
    let tmp = TempDir::new().unwrap();
    let out_dir = tmp.path().join("out");
    let child = Command::new(env!("CARGO_BIN_EXE_shutter"))
        .args([
            "run",
            "pattern:64x48@20",
            "--format",
            "png",
            "--device",
            "cpu",
            "-o",
        ])
        .arg(&out_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start shutter");
    // The stream is running once its first file is there.
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::fs::read_dir(&out_dir).map_or(true, |mut d| d.next().is_none()) {
        assert!(Instant::now() < deadline, "no frame written in 60 s");
        std::thread::yield_now();
    }
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(killed.success());
    let out = child.wait_with_output().expect("wait for shutter");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("written"), "the summary: {err}");
    for entry in std::fs::read_dir(&out_dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        assert!(!name.starts_with('.'), "a temporary file was left: {name}");
        image::open(&path).unwrap_or_else(|e| panic!("{name} is not a whole PNG: {e}"));
    }
}

/// `shutter run - --json --device cpu EXTRA -o OUT` with its stdin a pipe the test writes to,
/// and its stdout and stderr piped.
fn run_on_piped_stdin(
    extra: &[&str],
    out: &std::path::Path,
) -> (std::process::Child, std::process::ChildStdin) {
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_shutter"))
        .args(["run", "-", "--json", "--device", "cpu"])
        .args(extra)
        .arg("-o")
        .arg(out)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start shutter");
    let stdin = child.stdin.take().expect("a piped stdin");
    (child, stdin)
}

/// Standard input is read in its turn only, never ahead: a run that stops before it
/// (`--frames 1`) ends without reading it, while the program feeding it is still running.
#[test]
fn standard_input_after_a_file_is_not_read_ahead_of_its_turn() {
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};
    let tmp = TempDir::new().unwrap();
    let png = tmp.path().join("a.png");
    image::RgbImage::from_fn(64, 48, |x, y| image::Rgb([x as u8 * 3, y as u8 * 5, 90]))
        .save(&png)
        .unwrap();
    let out = tmp.path().join("out");
    let mut child = Command::new(env!("CARGO_BIN_EXE_shutter"))
        .args([
            "run",
            png.to_str().unwrap(),
            "-",
            "--frames",
            "1",
            "--device",
            "cpu",
        ])
        .args(["--format", "npy", "-o", out.to_str().unwrap()])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start shutter");
    // Held open, with nothing written, until shutter has ended.
    let stdin = child.stdin.take().expect("a piped stdin");
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "shutter waited for standard input past the run's last frame"
        );
        std::thread::yield_now();
    };
    drop(stdin);
    assert!(status.success(), "{status:?}");
    assert!(out.join("a.npy").is_file());
}

/// `read(2)`'s number in `/proc/PID/task/TID/syscall`.
#[cfg(target_arch = "x86_64")]
const SYS_READ: u32 = 0;
#[cfg(target_arch = "aarch64")]
const SYS_READ: u32 = 63;

#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
#[test]
fn ctrl_c_while_stdin_is_read_is_an_interruption_not_a_broken_file() {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::process::Command;
    use std::time::{Duration, Instant};
    // In a terminal Ctrl-C reaches the program feeding stdin too, which dies: shutter then
    // reads data cut short. That is the interruption (exit 130), not a corrupt input.
    let tmp = TempDir::new().unwrap();
    let png = tmp.path().join("in.png");
    image::RgbImage::from_fn(64, 48, |x, y| image::Rgb([x as u8 * 3, y as u8 * 5, 90]))
        .save(&png)
        .unwrap();
    let bytes = std::fs::read(&png).unwrap();
    let (mut child, mut stdin) = run_on_piped_stdin(&[], &tmp.path().join("out"));
    stdin.write_all(&bytes[..bytes.len() / 2]).unwrap();
    // Signal only once a decode thread (`shutter-decode0`, ...) waits in read(2) on stdin
    // (fd 0), the handler being in place before the pipeline starts.
    let tasks = format!("/proc/{}/task", child.id());
    std::fs::read_to_string(format!("/proc/{}/syscall", child.id()))
        .expect("this test reads /proc/PID/syscall, which this system does not allow");
    let in_read_of_stdin = format!("{SYS_READ} 0x0 ");
    let deadline = Instant::now() + Duration::from_secs(60);
    let reading_stdin = || {
        std::fs::read_dir(&tasks)
            .into_iter()
            .flatten()
            .flatten()
            .any(|task| {
                let read =
                    |f: &str| std::fs::read_to_string(task.path().join(f)).unwrap_or_default();
                read("comm").starts_with("shutter-decode")
                    && read("syscall").starts_with(&in_read_of_stdin)
            })
    };
    while !reading_stdin() {
        assert!(
            Instant::now() < deadline,
            "shutter did not read stdin in 60 s"
        );
        std::thread::yield_now();
    }
    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    // The handler has run once it says so; then the feeding program "dies".
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut first = String::new();
    err.read_line(&mut first).unwrap();
    assert!(first.contains("stopping"), "{first}");
    drop(stdin);
    let mut rest = String::new();
    err.read_to_string(&mut rest).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{rest}");
    assert!(!rest.contains("error"), "{rest}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("the JSON object");
    assert_eq!(json["not_reached"], 1, "{json}");
    assert_eq!(json["failures"].as_array().map(Vec::len), Some(0), "{json}");
}

#[test]
fn a_time_limit_ends_a_run_whose_stdin_stays_open() {
    use std::io::Write;
    // A producer that sends a few bytes and then neither more nor EOF: the limit still ends
    // the run (shortly after it), the input not reached.
    let tmp = TempDir::new().unwrap();
    let (mut child, mut stdin) =
        run_on_piped_stdin(&["--time-limit", "0.2"], &tmp.path().join("out"));
    stdin.write_all(b"\x89PNG\r\n\x1a\n").unwrap();
    // stdin is held open until shutter has exited (or the test gives up on it).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("the run did not end within 60 s of its 0.2 s limit");
        }
        std::thread::yield_now();
    };
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert_eq!(status.code(), Some(0), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("the JSON object");
    assert_eq!(json["not_reached"], 1, "{json}");
    assert_eq!(json["written"].as_array().map(Vec::len), Some(0), "{json}");
}

// In this file, whose tests run shutter as a process: sweeping the temp files of every
// AtomicFile in this process touches no other test's.
#[test]
fn an_atomic_file_is_hidden_until_committed_and_its_temp_file_can_be_swept() {
    let tmp = TempDir::new().unwrap();
    let path = tmp.path().join("rec.npy");
    use shutter::sink::encode::{AtomicFile, remove_temp_files};
    use std::io::Write;
    let mut file = AtomicFile::create(&path).unwrap();
    file.file().write_all(b"partial").unwrap();
    let names = common::dir_names(tmp.path());
    assert_eq!(names.len(), 1);
    assert!(names[0].starts_with(".rec.npy.tmp."), "{names:?}");
    assert!(!path.exists());
    // Dropped without a commit: nothing is left.
    drop(file);
    assert!(common::dir_names(tmp.path()).is_empty());

    let mut file = AtomicFile::create(&path).unwrap();
    file.file().write_all(b"whole").unwrap();
    // A process exiting at once (a third Ctrl-C) sweeps the temp files of the files not done:
    // their commits then fail, naming the file.
    remove_temp_files();
    assert!(common::dir_names(tmp.path()).is_empty());
    let err = file.commit().unwrap_err();
    assert!(err.to_string().contains("rec.npy"), "{err}");
    assert!(common::dir_names(tmp.path()).is_empty());

    let mut file = AtomicFile::create(&path).unwrap();
    file.file().write_all(b"whole").unwrap();
    file.commit().unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"whole");
    assert_eq!(common::dir_names(tmp.path()), ["rec.npy"]);
}

/// `-o one.png` for a stream writes numbered files beside it, and the summary names them, not
/// a `one.png` that does not exist.
#[test]
fn the_summary_names_the_numbered_files_a_single_file_output_became() {
    let tmp = TempDir::new().unwrap();
    for (frames, named) in [
        ("1", "1 file written to {dir}/one_00000.png in"),
        (
            "3",
            "3 files written to {dir}/one_00000.png … {dir}/one_00002.png in",
        ),
    ] {
        let dir = tmp.path().join(format!("f{frames}"));
        let out = shutter(&[
            "run",
            "pattern:40x30",
            "--frames",
            frames,
            "--device",
            "cpu",
            "-o",
            s(&dir.join("one.png")),
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        let named = named.replace("{dir}", s(&dir));
        assert!(stderr(&out).contains(&named), "{named}\n{}", stderr(&out));
        assert!(!dir.join("one.png").exists());
    }
    // An output that is the file named keeps its name.
    let out = shutter(&[
        "run",
        "pattern:40x30",
        "--frames",
        "1",
        "--device",
        "cpu",
        "--format",
        "gif",
        "-o",
        s(&tmp.path().join("s.gif")),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!(
            "1 file written to {} in",
            s(&tmp.path().join("s.gif"))
        )),
        "{}",
        stderr(&out)
    );
    // A directory: the one file written in it, or the directory for several.
    let dir = tmp.path().join("dir.webp");
    std::fs::create_dir(&dir).unwrap();
    let out = shutter(&["run", "pattern:40x30", "--frames", "2", "-o", s(&dir)]);
    assert!(out.status.success(), "{}", stderr(&out));
    let named = format!("1 file written to {} in", s(&dir.join("pattern.webp")));
    assert!(stderr(&out).contains(&named), "{named}\n{}", stderr(&out));
    let out = shutter(&[
        "run",
        "pattern:40x30",
        "--frames",
        "2",
        "--format",
        "png",
        "-o",
        s(&dir),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let named = format!("2 files written to {} in", s(&dir));
    assert!(stderr(&out).contains(&named), "{named}\n{}", stderr(&out));
}

/// A stream written as webp (the default) is one animated WebP of the frames delivered.
#[test]
fn a_stream_to_webp_is_one_animated_webp_of_its_frames() {
    let tmp = TempDir::new().unwrap();
    let out_dir = tmp.path().join("out");
    let out = shutter(&[
        "run",
        "pattern:48x32",
        "--frames",
        "5",
        "--device",
        "cpu",
        "-o",
        s(&out_dir),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let names: Vec<_> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    assert_eq!(names, ["pattern.webp"]);
    let frames = common::decode_file(&out_dir.join("pattern.webp"), &Default::default()).unwrap();
    assert_eq!(frames.len(), 5);
    for frame in &frames {
        assert_eq!((frame.width, frame.height), (48, 32));
        assert!(
            frame.delay.is_some_and(|d| d.as_millis() >= 20),
            "{:?}",
            frame.delay
        );
    }
}

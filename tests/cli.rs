//! The `shutter run` command-line contract: outputs, names, exit codes, one-line errors, and
//! bad inputs that fail alone.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::{s, shutter, stderr};
use tempfile::TempDir;

/// A small, non-uniform RGB picture saved as `name` (format from the extension).
fn picture(dir: &Path, name: &str, w: u32, h: u32) -> PathBuf {
    let path = dir.join(name);
    image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([(x * 7 + y) as u8, (y * 11) as u8, (x * y) as u8 ^ 0x5a])
    })
    .save(&path)
    .expect("save test picture");
    path
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn assert_no_panic(out: &Output) {
    let err = stderr(out);
    assert!(!err.contains("panicked"), "panic in stderr: {err}");
}

#[test]
fn no_source_processes_the_builtin_default_image() {
    let tmp = TempDir::new().unwrap();
    let out_dir = tmp.path().join("out");
    let out = shutter(&["run", "-o", s(&out_dir), "--device", "cpu"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(files_in(&out_dir), vec!["shutter-default.webp"]);
    let img = image::open(out_dir.join("shutter-default.webp")).expect("decodes");
    assert_eq!((img.width(), img.height()), (640, 400));
    assert!(stderr(&out).contains("1 input, 1 frame, 0 failed"));
}

#[test]
fn mirror_and_sepia_from_the_cli_equal_the_cpu_reference() {
    let tmp = TempDir::new().unwrap();
    let src = picture(tmp.path(), "in.png", 13, 9);
    let dst = tmp.path().join("res.png");
    // `auto` takes the CPU over a software adapter such as lavapipe: `gpu` runs the GPU pass
    // wherever there is an adapter.
    let gpu = common::gpu_or_skip("mirror_and_sepia_from_the_cli").is_some();
    let devices: &[&str] = if gpu {
        &["cpu", "auto", "gpu"]
    } else {
        &["cpu", "auto"]
    };
    for &device in devices {
        let out = shutter(&[
            "run",
            s(&src),
            "-o",
            s(&dst),
            "--mirror",
            "--filter",
            "sepia,invert",
            "--device",
            device,
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        let got = image::open(&dst).unwrap().to_rgb8();
        let mut want = image::open(&src).unwrap().to_rgba8().into_raw();
        shutter::ops::cpu::apply(
            &shutter::Ops {
                mirror: true,
                filters: vec![shutter::Filter::Sepia, shutter::Filter::Invert],
                ..Default::default()
            },
            13,
            9,
            &mut want,
        );
        let want_rgb: Vec<u8> = want
            .chunks_exact(4)
            .flat_map(|p| [p[0], p[1], p[2]])
            .collect();
        assert_eq!(got.into_raw(), want_rgb, "device {device}");
    }
}

#[test]
fn a_batch_with_bad_inputs_writes_the_good_ones_and_exits_1() {
    let tmp = TempDir::new().unwrap();
    let inputs = tmp.path().join("in");
    std::fs::create_dir(&inputs).unwrap();
    picture(&inputs, "a_good.png", 8, 6);
    picture(&inputs, "z_good.jpg", 8, 6);
    let good_png = std::fs::read(inputs.join("a_good.png")).unwrap();
    std::fs::write(
        inputs.join("b_truncated.png"),
        &good_png[..good_png.len() / 2],
    )
    .unwrap();
    std::fs::write(inputs.join("c_random.png"), common::random_rgba(16, 16, 3)).unwrap();
    std::fs::write(inputs.join("d_empty.jpg"), b"").unwrap();
    std::fs::write(inputs.join("e_bad.svg"), b"<svg><rect width=").unwrap();
    let unknown = tmp.path().join("notes.xyz");
    std::fs::write(&unknown, b"hello").unwrap();
    let missing = tmp.path().join("missing.png");
    let out_dir = tmp.path().join("out");

    let out = shutter(&[
        "run",
        s(&inputs),
        s(&unknown),
        s(&missing),
        "-o",
        s(&out_dir),
        "--format",
        "png",
        "--device",
        "cpu",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_no_panic(&out);
    assert_eq!(files_in(&out_dir), vec!["a_good.png", "z_good.png"]);
    let err = stderr(&out);
    for bad in [
        "b_truncated.png",
        "c_random.png",
        "d_empty.jpg",
        "e_bad.svg",
        "notes.xyz",
        "missing.png",
    ] {
        let lines: Vec<&str> = err
            .lines()
            .filter(|l| l.starts_with("shutter: error:") && l.contains(bad))
            .collect();
        assert_eq!(lines.len(), 1, "one error line for {bad} in:\n{err}");
    }
    assert!(err.contains("8 inputs, 2 frames, 6 failed"), "{err}");
    // The content decides, not the extension (a PNG named `.xyz` is read): both are said.
    assert!(
        err.contains("notes.xyz: unsupported input: cannot tell the image format from the content, and '.xyz' is not an image extension"),
        "{err}"
    );
}

#[test]
fn each_bad_input_alone_fails_with_one_line_and_no_output() {
    let tmp = TempDir::new().unwrap();
    let good = picture(tmp.path(), "good.png", 8, 6);
    let good_png = std::fs::read(&good).unwrap();
    let good_jpg = std::fs::read(picture(tmp.path(), "good.jpg", 200, 150)).unwrap();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("truncated.png", good_png[..good_png.len() - 20].to_vec()),
        // Cut in the middle of the image data (the decoder alone would fill it with grey).
        (
            "truncated.jpg",
            good_jpg[..good_jpg.len() * 6 / 10].to_vec(),
        ),
        ("random.png", common::random_rgba(9, 9, 1)),
        ("empty.png", Vec::new()),
        ("unknown.xyz", b"GIF89a".to_vec()),
        ("notes.txt", b"not an image, whatever its name".to_vec()),
        (
            "malformed.svg",
            b"<svg width='10' height='10'><circle r=".to_vec(),
        ),
    ];
    for (name, bytes) in cases {
        let path = tmp.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let out_dir = tmp.path().join(format!("out-{}", name.replace('.', "-")));
        let out = shutter(&["run", s(&path), "-o", s(&out_dir), "--device", "cpu"]);
        assert_eq!(out.status.code(), Some(1), "{name}: {}", stderr(&out));
        assert_no_panic(&out);
        let errors: Vec<String> = stderr(&out)
            .lines()
            .filter(|l| l.starts_with("shutter: error:"))
            .map(str::to_string)
            .collect();
        assert_eq!(errors.len(), 1, "{name}: {errors:?}");
        assert!(errors[0].contains(name), "{name}: {}", errors[0]);
        // Not even the output directory the run created.
        assert!(
            !out_dir.exists(),
            "{name}: left {out_dir:?} with {:?}",
            files_in(&out_dir)
        );
    }
}

#[test]
fn a_gif_without_pixels_fails_naming_the_input() {
    // A 0×0 screen whose frame is 0×0 too: Pillow would hand back an empty image; an input
    // with nothing to show is a decode error, not an empty output.
    let tmp = TempDir::new().unwrap();
    let path = tmp.path().join("screen0.gif");
    let mut gif = b"GIF89a\0\0\0\0\x80\0\0\xff\0\0\0\0\0,".to_vec();
    gif.extend([0; 8]);
    gif.extend([0, 2, 2, 0x44, 0x01, 0, b';']);
    std::fs::write(&path, gif).unwrap();
    for out_name in ["o.npy", "o.png"] {
        let out_path = tmp.path().join(out_name);
        let out = shutter(&["run", s(&path), "-o", s(&out_path), "--device", "cpu"]);
        assert_eq!(out.status.code(), Some(1), "{out_name}: {}", stderr(&out));
        assert_no_panic(&out);
        let err = stderr(&out);
        assert!(
            err.contains("screen0.gif") && err.contains("no pixels"),
            "{err}"
        );
        assert!(!out_path.exists(), "{out_name} written");
    }
}

/// A GIF whose one 2×2 frame sits on a `w`×`h` screen: 70 bytes for any size.
fn gif_screen(dir: &Path, name: &str, w: u16, h: u16) -> PathBuf {
    let mut bytes = Vec::new();
    let frame = image::RgbaImage::from_fn(2, 2, |x, y| {
        image::Rgba([40 + 100 * x as u8, 30 + 90 * y as u8, 200, 255])
    });
    image::codecs::gif::GifEncoder::new(&mut bytes)
        .encode_frame(image::Frame::new(frame))
        .unwrap();
    bytes[6..8].copy_from_slice(&w.to_le_bytes());
    bytes[8..10].copy_from_slice(&h.to_le_bytes());
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// Runs `inputs` into `out_dir` as webp on the CPU, which must exit 1 (an input failed), and
/// gives what it printed on stderr.
fn run_failing_to_webp(inputs: &[&Path], out_dir: &Path) -> String {
    let mut args = vec!["run"];
    args.extend(inputs.iter().map(|p| s(p)));
    args.extend(["-o", s(out_dir), "--format", "webp", "--device", "cpu"]);
    let out = shutter(&args);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    stderr(&out)
}

#[test]
fn an_input_larger_than_the_output_format_holds_fails_by_its_header_alone() {
    let tmp = TempDir::new().unwrap();
    let wide = gif_screen(tmp.path(), "wide.gif", 16384, 3);
    let edge = gif_screen(tmp.path(), "edge.gif", 16383, 3);
    let small = picture(tmp.path(), "small.png", 5, 4);
    let out_dir = tmp.path().join("webp");
    let err = run_failing_to_webp(&[&wide, &edge, &small], &out_dir);
    // Named as the header gives it, before any pixel: the encoder would name the output.
    assert!(
        err.contains(
            "wide.gif: unsupported input: its 16384×3 frames cannot be written as webp, whose \
             sides are at most 16383 pixels; give another format (--format)"
        ),
        "{err}"
    );
    assert!(err.contains("3 inputs, 2 frames, 1 failed"), "{err}");
    assert_eq!(files_in(&out_dir), vec!["edge.webp", "small.webp"]);
    let edge_out = image::open(out_dir.join("edge.webp")).unwrap();
    assert_eq!((edge_out.width(), edge_out.height()), (16383, 3));

    // A format without that bound writes the whole screen.
    let png = tmp.path().join("wide.png");
    let out = shutter(&["run", s(&wide), "-o", s(&png), "--device", "cpu"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let wide_out = image::open(&png).unwrap();
    assert_eq!((wide_out.width(), wide_out.height()), (16384, 3));
}

/// Standard input and SVG have no header the decode-ahead workers read: they are checked as
/// their decode learns the size, before any pixel (the encoder would name the output).
#[test]
fn stdin_and_svg_inputs_larger_than_the_output_format_holds_fail_before_decoding() {
    let tmp = TempDir::new().unwrap();
    let wide = gif_screen(tmp.path(), "wide.gif", 16384, 3);
    let out_dir = tmp.path().join("out");
    let out = Command::new(env!("CARGO_BIN_EXE_shutter"))
        .args(["run", "-", "-o", s(&out_dir), "--format", "webp"])
        .args(["--device", "cpu"])
        .stdin(std::fs::File::open(&wide).unwrap())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("<stdin>: unsupported input: its 16384×3 frames cannot be written as webp"),
        "{err}"
    );
    assert!(files_in(&out_dir).is_empty());

    let svg = |name: &str, width: u32| {
        let path = tmp.path().join(name);
        std::fs::write(
            &path,
            format!(
                "<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='2'>\
                 <rect width='100%' height='100%' fill='#c83'/></svg>"
            ),
        )
        .unwrap();
        path
    };
    let (wide_svg, edge_svg) = (svg("wide.svg", 16384), svg("edge.svg", 16383));
    let err = run_failing_to_webp(&[&wide_svg, &edge_svg], &out_dir);
    assert!(
        err.contains("wide.svg: unsupported input: its 16384×2 frames cannot be written as webp"),
        "{err}"
    );
    assert_eq!(files_in(&out_dir), vec!["edge.webp"]);
}

/// A GIF frame may reach past the screen its header gives, growing the canvas (as Pillow
/// does): one that grows it past the output format's side fails before its pixels are read.
#[test]
fn a_gif_frame_growing_its_canvas_past_the_output_format_fails_before_its_pixels() {
    let tmp = TempDir::new().unwrap();
    // Screen 2×1, palette red, green, blue, white; frame 0 draws green, blue (LZW: clear, 1,
    // 2, end); frame 1 draws one red pixel at x = 16383 (clear, 0, end): a 16384×1 canvas.
    let mut gif = b"GIF89a".to_vec();
    gif.extend([2, 0, 1, 0, 0x81, 0, 0]);
    gif.extend([255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255]);
    gif.extend([b',', 0, 0, 0, 0, 2, 0, 1, 0, 0, 2, 2, 0x8C, 0x0A, 0]);
    gif.extend([
        b',', 0xFF, 0x3F, 0, 0, 1, 0, 1, 0, 0, 2, 2, 0x44, 0x01, 0, b';',
    ]);
    let path = tmp.path().join("grows.gif");
    std::fs::write(&path, gif).unwrap();
    let out_dir = tmp.path().join("webp");
    let err = run_failing_to_webp(&[&path], &out_dir);
    assert!(
        err.contains("grows.gif: unsupported input: its 16384×1 frames cannot be written as webp"),
        "{err}"
    );
    assert!(files_in(&out_dir).is_empty());
    // PNG frames hold it: frame 1 is the whole grown canvas.
    let png_dir = tmp.path().join("png");
    let out = shutter(&["run", s(&path), "-o", s(&png_dir), "--format", "png"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        files_in(&png_dir),
        vec!["grows_00000.png", "grows_00001.png"]
    );
    let last = image::open(png_dir.join("grows_00001.png")).unwrap();
    assert_eq!((last.width(), last.height()), (16384, 1));
}

#[test]
fn an_image_over_the_pixel_limit_is_refused() {
    let tmp = TempDir::new().unwrap();
    let big = picture(tmp.path(), "big.png", 40, 30);
    let out_dir = tmp.path().join("out");
    let out = shutter(&[
        "run",
        s(&big),
        "-o",
        s(&out_dir),
        "--max-pixels",
        "1000",
        "--device",
        "cpu",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("big.png") && err.contains("limit"), "{err}");
    assert!(files_in(&out_dir).is_empty());
}

#[test]
fn usage_errors_exit_2_and_write_nothing() {
    let tmp = TempDir::new().unwrap();
    let src = picture(tmp.path(), "in.png", 4, 4);
    let out_dir = tmp.path().join("out");
    let cases: [(&[&str], &str); 15] = [
        (&["--quality", "500"], "--quality"),
        (
            &["--in-flight-memory", "0"],
            "--in-flight-memory: must be at least 1 byte",
        ),
        (
            &["--in-flight-memory", "lots"],
            "--in-flight-memory: expected a size such as 512M",
        ),
        (
            &["--in-flight-memory", "-1G"],
            "--in-flight-memory: must be at least 1 byte",
        ),
        (&["--filter", "sepia,blurry"], "blurry"),
        (&["--format", "heic"], "heic"),
        (&["--device", "tpu"], "tpu"),
        (&["--format", "png", "--lossless"], "--lossless"),
        (&["--in-flight", "100000000"], "--in-flight"),
        (&["--batch", "100000000000"], "--batch"),
        (&["--frames", "0"], "--frames"),
        (&["-", "-"], "standard input"),
        (&["--in-flight", "0"], "--in-flight"),
        (
            &["--idle-timeout", "5"],
            "idle_timeout (--idle-timeout): applies to live sources",
        ),
        (
            &["--idle-timeout", "-1"],
            "--idle-timeout: -1 is not a positive",
        ),
    ];
    for (flags, named) in cases {
        let mut args = vec!["run", s(&src), "-o", s(&out_dir)];
        args.extend_from_slice(flags);
        let out = shutter(&args);
        assert_eq!(out.status.code(), Some(2), "{flags:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{flags:?}: {err}");
        assert!(err.contains(named), "{flags:?}: {err}");
        assert!(!out_dir.exists(), "{flags:?} created the output directory");
    }
    // A file name whose extension disagrees with --format, and an existing file as the
    // output directory (or under it).
    let plain = tmp.path().join("plain");
    std::fs::write(&plain, b"a file").unwrap();
    let named_png = tmp.path().join("y.png");
    // With a trailing `/`, creating the directory said "File exists (os error 17)", exit 1.
    let plain_slash = PathBuf::from(format!("{}/", s(&plain)));
    let under_slash = PathBuf::from(format!("{}/sub/", s(&plain)));
    for (out, flags, named) in [
        (&named_png, &["--format", "npy"][..], "--format says npy"),
        (&plain, &[][..], "plain is a file, not a directory"),
        (
            &plain.join("x.png"),
            &[][..],
            "plain is a file, not a directory",
        ),
        (&plain_slash, &[][..], "plain is a file, not a directory"),
        (&under_slash, &[][..], "plain is a file, not a directory"),
    ] {
        let mut args = vec!["run", s(&src), "-o", s(out), "--device", "cpu"];
        args.extend_from_slice(flags);
        let run = shutter(&args);
        assert_eq!(run.status.code(), Some(2), "{out:?}: {}", stderr(&run));
        assert!(stderr(&run).contains(named), "{out:?}: {}", stderr(&run));
    }
    assert!(!named_png.exists());
    assert_eq!(std::fs::read(&plain).unwrap(), b"a file");
    // `-o -` is not standard output, nor a directory named `-` (run where one would appear).
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_shutter"))
        .args(["run", s(&src), "-o", "-", "--device", "cpu"])
        .current_dir(tmp.path())
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(2), "{}", stderr(&run));
    assert!(stderr(&run).contains("--out -"), "{}", stderr(&run));
    assert!(run.stdout.is_empty());
    assert!(!tmp.path().join("-").exists());
}

#[test]
fn an_out_name_ending_in_a_slash_is_a_directory_even_with_an_image_extension() {
    let tmp = TempDir::new().unwrap();
    let src = picture(tmp.path(), "in.png", 4, 4);
    let dir = tmp.path().join("res.png");
    let out = shutter(&[
        "run",
        s(&src),
        "-o",
        &format!("{}/", dir.display()),
        "--device",
        "cpu",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(files_in(&dir), vec!["in.webp"]);
}

#[test]
fn an_unwritable_output_directory_is_an_error_naming_it() {
    let tmp = TempDir::new().unwrap();
    let src = picture(tmp.path(), "in.png", 4, 4);
    // A directory cannot be created under a regular file, even by root.
    let blocker = tmp.path().join("blocker");
    std::fs::write(&blocker, b"a file").unwrap();
    let out_dir = blocker.join("out");
    let out = shutter(&["run", s(&src), "-o", s(&out_dir), "--device", "cpu"]);
    // The argument's fault, as `-o blocker/x.png` is: exit 2.
    assert_eq!(out.status.code(), Some(2));
    assert_no_panic(&out);
    let err = stderr(&out);
    assert!(err.contains("blocker is a file, not a directory"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    // A directory the system refuses (nothing can be made in /proc, even by root): exit 1,
    // saying what could not be done, not the bare "No such file or directory".
    let out = shutter(&[
        "run",
        s(&src),
        "-o",
        "/proc/shutter-out/",
        "--device",
        "cpu",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("/proc/shutter-out/: cannot create the output directory"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn an_output_named_for_a_format_shutter_does_not_write_is_refused() {
    let tmp = TempDir::new().unwrap();
    let src = picture(tmp.path(), "in.png", 4, 4);
    for name in ["clip.apng", "x.SVG", "x.avif", "x.svgz", "x.icns", "x.jpx"] {
        let dst = tmp.path().join(name);
        let out = shutter(&["run", s(&src), "-o", s(&dst), "--device", "cpu"]);
        assert_eq!(out.status.code(), Some(2), "{name}: {}", stderr(&out));
        assert!(stderr(&out).contains(name), "{name}: {}", stderr(&out));
        assert!(
            !dst.exists(),
            "{name}: nothing is made, no directory either"
        );
    }
    // With a trailing slash it is a directory, as any name is.
    let dir = format!("{}/", tmp.path().join("frames.apng").display());
    let out = shutter(&["run", s(&src), "-o", &dir, "--device", "cpu"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(tmp.path().join("frames.apng/in.webp").exists());
}

#[test]
fn out_file_extension_picks_the_format() {
    let tmp = TempDir::new().unwrap();
    let src = picture(tmp.path(), "in.png", 10, 5);
    for (name, format) in [
        ("x.jpg", image::ImageFormat::Jpeg),
        ("x.bmp", image::ImageFormat::Bmp),
        ("x.tiff", image::ImageFormat::Tiff),
        ("x.webp", image::ImageFormat::WebP),
        ("x.jfif", image::ImageFormat::Jpeg),
        ("x.dib", image::ImageFormat::Bmp),
    ] {
        let dst = tmp.path().join(name);
        let out = shutter(&["run", s(&src), "-o", s(&dst), "--device", "cpu"]);
        assert!(out.status.success(), "{name}: {}", stderr(&out));
        let bytes = std::fs::read(&dst).unwrap();
        assert_eq!(image::guess_format(&bytes).unwrap(), format, "{name}");
    }
}

#[test]
fn stdin_is_read_with_dash() {
    let tmp = TempDir::new().unwrap();
    let src = picture(tmp.path(), "in.png", 6, 3);
    let out_dir = tmp.path().join("out");
    let out = Command::new(env!("CARGO_BIN_EXE_shutter"))
        .args([
            "run",
            "-",
            "-o",
            s(&out_dir),
            "--format",
            "png",
            "--device",
            "cpu",
        ])
        .stdin(std::fs::File::open(&src).unwrap())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let got = image::open(out_dir.join("stdin.png")).unwrap().to_rgb8();
    assert_eq!(got, image::open(&src).unwrap().to_rgb8());
}

#[test]
fn stdin_next_to_a_file_named_stdin_is_named_stdin() {
    let tmp = TempDir::new().unwrap();
    let piped = picture(tmp.path(), "piped.png", 6, 3);
    let file = picture(tmp.path(), "stdin.png", 4, 5);
    let out_dir = tmp.path().join("out");
    let out = Command::new(env!("CARGO_BIN_EXE_shutter"))
        .args(["run", "-", s(&file), "-o", s(&out_dir), "--format", "png"])
        .args(["--device", "cpu"])
        .stdin(std::fs::File::open(&piped).unwrap())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    // Not `<stdin>.png`: standard input has no file name to fall back on.
    assert_eq!(files_in(&out_dir), vec!["stdin.png", "stdin.png.png"]);
    assert_eq!(
        image::image_dimensions(out_dir.join("stdin.png")).unwrap(),
        (6, 3)
    );
}

fn animated_gif(path: &Path, frames: u32) {
    let file = std::fs::File::create(path).unwrap();
    let mut enc = image::codecs::gif::GifEncoder::new(file);
    for k in 0..frames {
        let img = image::RgbaImage::from_fn(5, 4, |x, y| {
            image::Rgba([(x * 40 + k * 60) as u8, (y * 50) as u8, (k * 80) as u8, 255])
        });
        let delay = image::Delay::from_numer_denom_ms(50 + 10 * k, 1);
        enc.encode_frame(image::Frame::from_parts(img, 0, 0, delay))
            .unwrap();
    }
}

#[test]
fn a_sequence_cut_to_one_frame_is_still_written_as_a_sequence() {
    let tmp = TempDir::new().unwrap();
    let gif = tmp.path().join("anim.gif");
    animated_gif(&gif, 3);
    let shape = |npy: &Path| {
        let bytes = std::fs::read(npy).unwrap();
        let header = String::from_utf8_lossy(&bytes[..128]).into_owned();
        let at = header.find("'shape': (").expect("a shape") + 10;
        header[at..at + header[at..].find(')').unwrap()].to_string()
    };
    // An animation or a stream stopped after one frame keeps its frame axis and numbering,
    // so code that loops over the frames gets one frame, not the image's rows.
    for (source, want) in [(s(&gif), "1, 4, 5, 3"), ("pattern:32x16", "1, 16, 32, 3")] {
        let npy = tmp.path().join("one.npy");
        let out = shutter(&[
            "run",
            source,
            "--frames",
            "1",
            "-o",
            s(&npy),
            "--device",
            "cpu",
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(shape(&npy), want, "{source}");
    }
    let out_dir = tmp.path().join("png");
    let out = shutter(&[
        "run",
        s(&gif),
        "--frames",
        "1",
        "--format",
        "png",
        "-o",
        s(&out_dir),
        "--device",
        "cpu",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(files_in(&out_dir), vec!["anim_00000.png"]);
    // A still is its own shape, and a one-frame GIF is a still.
    let still = tmp.path().join("still.gif");
    animated_gif(&still, 1);
    let npy = tmp.path().join("still.npy");
    let out = shutter(&["run", s(&still), "-o", s(&npy), "--device", "cpu"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(shape(&npy), "4, 5, 3");
}

#[test]
fn in_flight_memory_under_one_frame_takes_the_frames_one_at_a_time() {
    let tmp = TempDir::new().unwrap();
    let inputs = tmp.path().join("in");
    std::fs::create_dir(&inputs).unwrap();
    for k in 0..4 {
        picture(&inputs, &format!("p{k}.png"), 40, 30);
    }
    let run = |memory: &[&str], out: &Path| {
        let mut args = vec!["run", s(&inputs), "--format", "npy", "--json", "-o", s(out)];
        args.extend_from_slice(memory);
        let out = shutter(&args);
        assert!(out.status.success(), "{memory:?}: {}", stderr(&out));
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
        json["in_flight_peak_bytes"]
            .as_u64()
            .expect("in_flight_peak_bytes")
    };
    // A frame weighs its RGBA pixels and its RGB image: 40 × 30 × (4 + 3) bytes.
    let one_frame = 40 * 30 * 7;
    let default = tmp.path().join("default");
    assert!(run(&[], &default) >= one_frame);
    for size in ["1K", "1.5kib", "100"] {
        let out = tmp.path().join(format!("small-{size}"));
        assert_eq!(
            run(&["--in-flight-memory", size], &out),
            one_frame,
            "{size}"
        );
        for k in 0..4 {
            let name = format!("p{k}.npy");
            assert_eq!(
                std::fs::read(out.join(&name)).unwrap(),
                std::fs::read(default.join(&name)).unwrap()
            );
        }
    }
}

#[test]
fn an_animation_whose_frame_files_fail_is_one_failure() {
    let tmp = TempDir::new().unwrap();
    let gif = tmp.path().join("anim.gif");
    animated_gif(&gif, 6);
    let out_dir = tmp.path().join("out");
    // Directories where frames 1 to 4 would go: each of those writes fails.
    for k in 1..5 {
        std::fs::create_dir_all(out_dir.join(format!("anim_{k:05}.png"))).unwrap();
    }
    let out = shutter(&[
        "run",
        s(&gif),
        "--format",
        "png",
        "--in-flight",
        "4",
        "--json",
        "-o",
        s(&out_dir),
        "--device",
        "cpu",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(json["failures"].as_array().map(Vec::len), Some(1), "{json}");
    let errors = stderr(&out)
        .lines()
        .filter(|l| l.contains("error:"))
        .count();
    assert_eq!(errors, 1, "{}", stderr(&out));
    // All or nothing: frame 0, written first, is removed again.
    assert!(!out_dir.join("anim_00000.png").exists());
}

#[test]
fn an_animated_gif_keeps_every_frame_as_gif_and_splits_as_png() {
    let tmp = TempDir::new().unwrap();
    let src = tmp.path().join("anim.gif");
    animated_gif(&src, 3);

    let out_dir = tmp.path().join("gif");
    let out = shutter(&[
        "run",
        s(&src),
        "-o",
        s(&out_dir),
        "--format",
        "gif",
        "--device",
        "cpu",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(files_in(&out_dir), vec!["anim.gif"]);
    use image::AnimationDecoder;
    let dec = image::codecs::gif::GifDecoder::new(std::io::BufReader::new(
        std::fs::File::open(out_dir.join("anim.gif")).unwrap(),
    ))
    .unwrap();
    let frames = dec.into_frames().collect_frames().unwrap();
    assert_eq!(frames.len(), 3);
    let delays: Vec<u32> = frames
        .iter()
        .map(|f| {
            let (n, d) = f.delay().numer_denom_ms();
            n / d
        })
        .collect();
    assert_eq!(delays, vec![50, 60, 70]);

    let out_dir = tmp.path().join("png");
    let out = shutter(&[
        "run",
        s(&src),
        "-o",
        s(&out_dir),
        "--format",
        "png",
        "--device",
        "cpu",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        files_in(&out_dir),
        vec!["anim_00000.png", "anim_00001.png", "anim_00002.png"]
    );
}

#[test]
fn an_animated_webp_keeps_every_frame_and_delay_as_gif_and_splits_as_png() {
    let tmp = TempDir::new().unwrap();
    let fixture = common::anim_fixture("anim.webp");
    let out_dir = tmp.path().join("gif");
    let out = shutter(&[
        "run",
        s(&fixture.path),
        "-o",
        s(&out_dir),
        "--format",
        "gif",
        "--device",
        "cpu",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(files_in(&out_dir), vec!["anim.gif"]);
    use image::AnimationDecoder;
    let frames = image::codecs::gif::GifDecoder::new(std::io::BufReader::new(
        std::fs::File::open(out_dir.join("anim.gif")).unwrap(),
    ))
    .unwrap()
    .into_frames()
    .collect_frames()
    .unwrap();
    let delays: Vec<Option<u64>> = frames
        .iter()
        .map(|f| Some(std::time::Duration::from(f.delay()).as_millis() as u64))
        .collect();
    assert_eq!(delays, fixture.delays_ms);
    // Gradio's default RGB: Pillow's composited frames with alpha dropped (few colours, so
    // the GIF palette is exact).
    for (k, (frame, want)) in frames.iter().zip(fixture.frames()).enumerate() {
        let got: Vec<u8> = frame
            .buffer()
            .pixels()
            .flat_map(|p| [p[0], p[1], p[2]])
            .collect();
        let want: Vec<u8> = want
            .chunks_exact(4)
            .flat_map(|p| [p[0], p[1], p[2]])
            .collect();
        assert!(got == want, "frame {k}: pixels differ from Pillow's");
    }

    let out_dir = tmp.path().join("png");
    let out = shutter(&[
        "run",
        s(&fixture.path),
        "-o",
        s(&out_dir),
        "--format",
        "png",
        "--device",
        "cpu",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        files_in(&out_dir),
        vec![
            "anim_00000.png",
            "anim_00001.png",
            "anim_00002.png",
            "anim_00003.png"
        ]
    );
}

/// An animation written as webp (the default format) is one animated WebP: every frame as
/// Pillow composites it (exactly, lossless), its delays and its number of plays (GIF counts
/// repeats, WebP and APNG plays).
#[test]
fn an_animation_to_webp_is_one_animated_webp_with_its_frames_delays_and_plays() {
    let tmp = TempDir::new().unwrap();
    for (name, plays) in [
        ("loop3.gif", Some(4)),
        ("anim.webp", Some(3)),
        ("anim.png", Some(2)),
        ("composite.webp", None),
    ] {
        let fixture = common::anim_fixture(name);
        let stem = name.split('.').next().unwrap();
        let out_dir = tmp.path().join(format!("{name}-out"));
        let out = shutter(&[
            "run",
            s(&fixture.path),
            "-o",
            s(&out_dir),
            "--lossless",
            "--mode",
            "RGBA",
            "--device",
            "cpu",
        ]);
        assert!(out.status.success(), "{name}: {}", stderr(&out));
        assert_eq!(files_in(&out_dir), vec![format!("{stem}.webp")], "{name}");
        let frames =
            common::decode_file(&out_dir.join(format!("{stem}.webp")), &Default::default())
                .unwrap();
        assert_eq!(frames.len(), fixture.frames().len(), "{name}");
        let delays: Vec<Option<u64>> = frames
            .iter()
            .map(|f| f.delay.map(|d| d.as_millis() as u64))
            .collect();
        assert_eq!(delays, fixture.delays_ms, "{name}");
        let want_plays = plays.map_or(shutter::Plays::Forever, |n: u32| {
            shutter::Plays::Times(n.try_into().unwrap())
        });
        assert_eq!(frames[0].plays, Some(want_plays), "{name}");
        for (k, (got, want)) in frames.iter().zip(fixture.frames()).enumerate() {
            assert!(
                got.rgba == want,
                "{name} frame {k}: pixels differ from Pillow's"
            );
        }
    }
}

/// The NETSCAPE loop count of the GIF at `path` (`Finite(0)`: none, the GIF plays once).
fn gif_repeat(path: &Path) -> gif::Repeat {
    gif::DecodeOptions::new()
        .read_info(std::fs::File::open(path).unwrap())
        .unwrap()
        .repeat()
}

#[test]
fn a_gifs_loop_count_is_kept_and_other_animations_keep_their_plays() {
    let tmp = TempDir::new().unwrap();
    for (name, mode, repeat) in [
        ("once.gif", "RGB", gif::Repeat::Finite(0)),
        ("loop3.gif", "RGB", gif::Repeat::Finite(3)),
        ("loop3.gif", "P", gif::Repeat::Finite(3)),
        ("composite.webp", "RGB", gif::Repeat::Infinite),
        // Three plays: two repeats after the first.
        ("anim.webp", "RGB", gif::Repeat::Finite(2)),
        ("anim.png", "P", gif::Repeat::Finite(1)),
    ] {
        let fixture = common::anim_fixture(name);
        let out_file = tmp.path().join(format!("{name}.{mode}.gif"));
        let out = shutter(&[
            "run",
            s(&fixture.path),
            "-o",
            s(&out_file),
            "--mode",
            mode,
            "--device",
            "cpu",
        ]);
        assert!(out.status.success(), "{name}: {}", stderr(&out));
        assert_eq!(gif_repeat(&out_file), repeat, "{name} as {mode}");
    }
    assert_eq!(
        gif_repeat(&common::anim_fixture("once.gif").path),
        gif::Repeat::Finite(0),
        "the play-once input has no NETSCAPE extension"
    );
}

#[test]
fn an_animated_gif_cut_short_leaves_none_of_its_frame_files() {
    let tmp = TempDir::new().unwrap();
    let whole = tmp.path().join("whole.gif");
    animated_gif(&whole, 5);
    let bytes = std::fs::read(&whole).unwrap();
    // Cut inside the 4th frame's data, half-way to the 5th frame's control extension: three
    // frames decode, then the input fails.
    let frame_starts: Vec<usize> = bytes
        .windows(3)
        .enumerate()
        .filter(|(_, w)| *w == [0x21, 0xF9, 0x04])
        .map(|(i, _)| i)
        .collect();
    assert_eq!(
        frame_starts.len(),
        5,
        "one graphic control extension a frame"
    );
    let cut = tmp.path().join("cut.gif");
    std::fs::write(&cut, &bytes[..(frame_starts[3] + frame_starts[4]) / 2]).unwrap();

    for format in ["png", "bmp", "gif", "npy"] {
        let out_dir = tmp.path().join(format!("out-{format}"));
        let out = shutter(&[
            "run",
            s(&whole),
            s(&cut),
            "-o",
            s(&out_dir),
            "--format",
            format,
            "--device",
            "cpu",
            "--json",
        ]);
        assert_no_panic(&out);
        assert_eq!(out.status.code(), Some(1), "{format}: {}", stderr(&out));
        // Delivered counts the frames that reached a file: the whole GIF's 5, not the cut
        // one's 3 (a failed npy also counted one of them as dropped "after the stop").
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(json["delivered"], 5, "{format}: {json}");
        assert_eq!(json["dropped"]["total"], 0, "{format}: {json}");
        assert!(
            stderr(&out).contains("cut.gif"),
            "{format}: {}",
            stderr(&out)
        );
        // The whole GIF is written; nothing of the cut one, not even a temp file.
        let want: Vec<String> = if format == "gif" || format == "npy" {
            vec![format!("whole.{format}")]
        } else {
            (0..5).map(|k| format!("whole_{k:05}.{format}")).collect()
        };
        assert_eq!(files_in(&out_dir), want, "{format}");
    }
}

#[test]
fn npy_output_is_the_array_a_gradio_numpy_user_gets() {
    let tmp = TempDir::new().unwrap();
    let src = picture(tmp.path(), "x.png", 7, 3);
    let out_dir = tmp.path().join("out");
    let out = shutter(&[
        "run",
        s(&src),
        "-o",
        s(&out_dir),
        "--format",
        "npy",
        "--device",
        "cpu",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let bytes = std::fs::read(out_dir.join("x.npy")).unwrap();
    assert_eq!(&bytes[..6], b"\x93NUMPY");
    let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let header = std::str::from_utf8(&bytes[10..10 + header_len]).unwrap();
    assert!(header.contains("'descr': '|u1'"), "{header}");
    assert!(header.contains("'shape': (3, 7, 3)"), "{header}");
    let data = &bytes[10 + header_len..];
    assert_eq!(
        data,
        image::open(&src).unwrap().to_rgb8().as_raw().as_slice()
    );
}

#[test]
fn inputs_with_the_same_stem_do_not_overwrite_each_other() {
    let tmp = TempDir::new().unwrap();
    let a = picture(tmp.path(), "same.png", 4, 4);
    let b = picture(tmp.path(), "same.bmp", 5, 5);
    let out_dir = tmp.path().join("out");
    let out = shutter(&[
        "run",
        s(&a),
        s(&b),
        "-o",
        s(&out_dir),
        "--format",
        "png",
        "--device",
        "cpu",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(files_in(&out_dir), vec!["same.bmp.png", "same.png.png"]);
}

#[test]
fn an_input_named_like_another_inputs_frame_does_not_overwrite_it() {
    let tmp = TempDir::new().unwrap();
    let gif = tmp.path().join("anim.gif");
    animated_gif(&gif, 3);
    let single = picture(tmp.path(), "anim_00001.png", 2, 3);
    let out_dir = tmp.path().join("out");
    let out = shutter(&[
        "run",
        s(&gif),
        s(&single),
        "-o",
        s(&out_dir),
        "--format",
        "png",
        "--device",
        "cpu",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        files_in(&out_dir),
        vec![
            "anim_00000.png",
            "anim_00001.png",
            "anim_00001.png.png",
            "anim_00002.png"
        ]
    );
    // The GIF's second frame is the GIF's (5×4), the single picture is its own (2×3).
    let dims = |name: &str| image::image_dimensions(out_dir.join(name)).unwrap();
    assert_eq!(dims("anim_00001.png"), (5, 4));
    assert_eq!(dims("anim_00001.png.png"), (2, 3));
    assert!(stderr(&out).contains("4 files written"), "{}", stderr(&out));
}

#[test]
fn a_batch_cut_short_by_frames_says_how_many_inputs_it_did_not_reach() {
    let tmp = TempDir::new().unwrap();
    let inputs = tmp.path().join("in");
    std::fs::create_dir(&inputs).unwrap();
    for k in 0..4 {
        picture(&inputs, &format!("p{k}.png"), 3, 2);
    }
    let out_dir = tmp.path().join("out");
    let args = [
        "run",
        s(&inputs),
        "-o",
        s(&out_dir),
        "--frames",
        "1",
        "--json",
    ];
    let out = shutter(&[&args[..], &["--device", "cpu"]].concat());
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("0 failed, 3 not reached (--frames or --time-limit)"),
        "{}",
        stderr(&out)
    );
    let json = String::from_utf8_lossy(&out.stdout);
    assert!(json.contains("\"not_reached\":3"), "{json}");
    assert_eq!(files_in(&out_dir), vec!["p0.webp"]);
}

#[test]
fn device_auto_falls_back_to_the_cpu_and_says_so_while_gpu_fails() {
    let tmp = TempDir::new().unwrap();
    let src = picture(tmp.path(), "in.png", 4, 4);
    let out_dir = tmp.path().join("out");
    // WGPU_BACKEND set but empty enables no backend: no adapter can be found.
    let run = |device: &str| {
        Command::new(env!("CARGO_BIN_EXE_shutter"))
            .args(["run", s(&src), "-o", s(&out_dir), "--device", device])
            .env("WGPU_BACKEND", "")
            .output()
            .unwrap()
    };
    let auto = run("auto");
    assert!(auto.status.success(), "{}", stderr(&auto));
    assert!(
        stderr(&auto).contains("running on the CPU"),
        "{}",
        stderr(&auto)
    );
    let gpu = run("gpu");
    assert_eq!(gpu.status.code(), Some(1));
    assert_no_panic(&gpu);
    assert!(stderr(&gpu).contains("no GPU adapter"), "{}", stderr(&gpu));
}

#[test]
fn devices_lists_an_adapter_when_the_gpu_is_required() {
    let out = shutter(&["devices"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    if std::env::var("SHUTTER_REQUIRE_GPU").is_ok_and(|v| v == "1") {
        assert!(text.contains("gpu 0:"), "{text}");
        // The first adapter is the one `auto` picks, unless it is a software renderer.
        let first = text.lines().find(|l| l.starts_with("gpu 0:")).unwrap_or("");
        if first.contains(", Cpu]") {
            assert!(first.contains("auto runs on the CPU"), "{text}");
        } else {
            assert!(first.ends_with("(auto)"), "{text}");
        }
    } else {
        assert!(
            text.contains("gpu 0:") || text.contains("no GPU adapters"),
            "{text}"
        );
    }
}

#[test]
fn device_auto_prefers_the_cpu_to_a_software_adapter_and_says_why() {
    let tmp = TempDir::new().unwrap();
    let src = picture(tmp.path(), "in.png", 5, 3);
    let listed = shutter(&["devices"]);
    let text = String::from_utf8_lossy(&listed.stdout).to_string();
    let Some(first) = text.lines().find(|l| l.starts_with("gpu 0:")) else {
        // No adapter: the fallback test covers auto.
        assert!(!common::gpu_required(), "no adapter listed: {text}");
        return;
    };
    let software = first.contains(", Cpu]");
    for device in ["auto", "gpu"] {
        let out = shutter(&[
            "run",
            s(&src),
            "-o",
            s(&tmp.path().join(device)),
            "--device",
            device,
            "--json",
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stats: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
        let on_cpu = stats["backend"] == "CPU";
        assert_eq!(on_cpu, device == "auto" && software, "{device}: {stdout}");
        assert_eq!(
            stderr(&out).contains("is a software renderer"),
            device == "auto" && software,
            "{}",
            stderr(&out)
        );
    }
}

#[test]
fn a_headless_run_prints_no_wayland_errors() {
    // Without XDG_RUNTIME_DIR, Mesa's device-select layer made libwayland print
    // "error: XDG_RUNTIME_DIR is invalid or not set" twice on every run that opened Vulkan.
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_shutter"))
        .args([
            "run",
            "pattern:32x16",
            "--frames",
            "1",
            "--device",
            "auto",
            "-o",
        ])
        .arg(dir.path())
        .env_remove("XDG_RUNTIME_DIR")
        .env_remove("NODEVICE_SELECT")
        .stdin(Stdio::null())
        .output()
        .expect("run shutter");
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(!err.contains("XDG_RUNTIME_DIR"), "{err}");
    assert!(
        err.lines().all(|l| l.starts_with("shutter")),
        "every line is shutter's own: {err}"
    );
}

#[test]
fn an_unwritable_stdout_or_stderr_fails_cleanly_instead_of_panicking() {
    // `println!` panicked (exit 101) when `--json` met a full disk or a closed pipe, and
    // `eprintln!` did so for the summary even though the file had been written.
    let tmp = TempDir::new().unwrap();
    let src = picture(tmp.path(), "in.png", 5, 3);
    let full = || {
        std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .expect("open /dev/full")
    };
    let run = |json: bool, stdout: Stdio, stderr_to: Stdio, name: &str| {
        let dst = tmp.path().join(name);
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_shutter"));
        cmd.args(["run", s(&src), "--device", "cpu", "-o", s(&dst)]);
        if json {
            cmd.arg("--json");
        }
        let out = cmd
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr_to)
            .output()
            .expect("run shutter");
        (out, dst.exists())
    };

    // --json to a full stdout: the run fails with exit 1 and says why, in one line.
    let (out, written) = run(true, Stdio::from(full()), Stdio::piped(), "a.png");
    assert_no_panic(&out);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(written);
    assert!(
        stderr(&out).contains("shutter: error: cannot write to stdout"),
        "{}",
        stderr(&out)
    );

    // A full stderr: the run still succeeds (nothing on stdout to fail).
    let (out, written) = run(false, Stdio::piped(), Stdio::from(full()), "b.png");
    assert_eq!(out.status.code(), Some(0));
    assert!(written);

    // Both full, as `bench --json` with nowhere to print: a failure, not a panic (101).
    let (out, _) = run(true, Stdio::from(full()), Stdio::from(full()), "c.png");
    assert_eq!(out.status.code(), Some(1));

    // --help and --version that do not reach their reader fail too (clap said nothing and
    // exited 0); to a working stdout they succeed.
    for args in [&["--help"][..], &["--version"], &["run", "--help"]] {
        let printed = |stdout: Stdio| {
            Command::new(env!("CARGO_BIN_EXE_shutter"))
                .args(args)
                .stdin(Stdio::null())
                .stdout(stdout)
                .stderr(Stdio::piped())
                .output()
                .expect("run shutter")
        };
        let out = printed(Stdio::from(full()));
        assert_no_panic(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains("cannot write to stdout"), "{args:?}");
        let out = printed(Stdio::piped());
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        assert!(!out.stdout.is_empty(), "{args:?}");
    }
}

#[test]
fn control_characters_in_a_file_name_are_shown_escaped_not_sent_to_the_terminal() {
    // An escape sequence in a name reached stderr raw, recolouring the user's terminal.
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path().join("in");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("bad\u{1b}[31mred\u{7}.png"), b"not a png").unwrap();
    let out = shutter(&[
        "run",
        s(&dir),
        "-o",
        s(&tmp.path().join("out\u{1b}[2J")),
        "--device",
        "cpu",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(!err.contains(['\u{1b}', '\u{7}']), "{err:?}");
    assert!(err.contains("bad\\u{1b}[31mred\\u{7}.png"), "{err}");
    assert!(err.contains("out\\u{1b}[2J"), "{err}");
}

#[test]
fn an_output_never_overwrites_another_input_of_the_run() {
    // `run s -o s/`: `x.gif`'s first frame is `x_00000.png`, which is also an input, not yet
    // read. It was overwritten, then read as the GIF's frame, and the run exited 0.
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path().join("s");
    std::fs::create_dir(&dir).unwrap();
    animated_gif(&dir.join("x.gif"), 3);
    let still = picture(&dir, "x_00000.png", 5, 4);
    let before = std::fs::read(&still).unwrap();
    let out = shutter(&[
        "run",
        s(&dir),
        "-o",
        &format!("{}/", s(&dir)),
        "--format",
        "png",
        "--device",
        "cpu",
    ]);
    assert_no_panic(&out);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("it is another input of this run, which")
            && err.contains("x.gif's output would overwrite; ")
            && err.contains("x.gif is not written"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(&still).unwrap(),
        before,
        "the input is untouched"
    );
    // The GIF failed whole (none of its frame files is left); the still, named by its whole
    // file name next to the GIF's frame names, was written.
    assert_eq!(files_in(&dir), ["x.gif", "x_00000.png", "x_00000.png.png"]);
    let written = image::open(dir.join("x_00000.png.png")).unwrap().to_rgb8();
    assert_eq!(written, image::open(&still).unwrap().to_rgb8());

    // An input reached twice, through a link, is one file: each is written in its own place
    // (refused before, "a.png would overwrite this file, another input of this run").
    #[cfg(unix)]
    {
        let linked = tmp.path().join("l");
        std::fs::create_dir(&linked).unwrap();
        picture(&linked, "a.png", 4, 3);
        std::os::unix::fs::symlink("a.png", linked.join("b.png")).unwrap();
        let out = shutter(&[
            "run",
            s(&linked),
            "-o",
            &format!("{}/", s(&linked)),
            "--format",
            "png",
            "--device",
            "cpu",
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        assert_eq!(files_in(&linked), ["a.png", "b.png"]);
    }
}

#[test]
fn the_default_mode_says_when_it_drops_transparency() {
    // Gradio's default image_mode RGB drops alpha without a word (a complaint of its users);
    // shutter keeps the default and says so, once, when an input had any.
    let tmp = TempDir::new().unwrap();
    let rgba = |name: &str, alpha: u8| {
        let path = tmp.path().join(name);
        image::RgbaImage::from_fn(5, 4, |x, y| {
            let a = if x == 2 && y == 1 { alpha } else { 255 };
            image::Rgba([x as u8 * 40, y as u8 * 60, 90, a])
        })
        .save(&path)
        .unwrap();
        path
    };
    let clear = rgba("clear.png", 0);
    let opaque = rgba("opaque.png", 255);
    let plain = picture(tmp.path(), "plain.png", 5, 4);
    let run = |flags: &[&str]| {
        let out_dir = tmp.path().join("out");
        let mut args = vec!["run", s(&clear), s(&opaque), s(&plain), "-o", s(&out_dir)];
        args.extend_from_slice(&["--format", "png", "--device", "cpu"]);
        args.extend_from_slice(flags);
        let out = shutter(&args);
        assert_eq!(out.status.code(), Some(0), "{flags:?}: {}", stderr(&out));
        stderr(&out)
    };
    let err = run(&[]);
    assert!(
        err.contains("note: 1 input had transparency, which the default --mode RGB drops"),
        "{err}"
    );
    for flags in [
        &["--mode", "RGB"][..],
        &["--mode", "RGBA"],
        &["--mode", "P"],
    ] {
        let err = run(flags);
        assert!(!err.contains("transparency"), "{flags:?}: {err}");
    }
    // An explicit RGB still counts it, in the statistics.
    let out = shutter(&[
        "run",
        s(&clear),
        s(&opaque),
        "-o",
        s(&tmp.path().join("json")),
        "--mode",
        "RGB",
        "--json",
        "--device",
        "cpu",
    ]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["alpha_dropped"], 1, "{json}");
}

#[test]
#[cfg(unix)]
fn a_file_name_that_is_not_utf8_is_still_an_input() {
    // clap refused the whole command line: "invalid UTF-8 was detected in one or more
    // arguments", exit 2, nothing processed.
    use std::os::unix::ffi::OsStrExt;
    let tmp = TempDir::new().unwrap();
    let good = picture(tmp.path(), "good.png", 4, 3);
    let odd = tmp.path().join(std::ffi::OsStr::from_bytes(b"caf\xe9.png"));
    std::fs::copy(&good, &odd).unwrap();
    let out_dir = tmp.path().join("out");
    let out = Command::new(env!("CARGO_BIN_EXE_shutter"))
        .arg("run")
        .arg(&odd)
        .arg(&good)
        .args(["--format", "png", "--device", "cpu", "-o"])
        .arg(&out_dir)
        .stdin(Stdio::null())
        .output()
        .expect("run shutter");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // Output names are text: the byte that is not UTF-8 becomes U+FFFD.
    assert_eq!(files_in(&out_dir), ["caf\u{fffd}.png", "good.png"]);
}

#[test]
fn a_directory_without_images_fails_by_name_and_the_others_are_written() {
    // It was "0 inputs" and exit 0: a mistyped directory or an unmounted disk said nothing.
    let tmp = TempDir::new().unwrap();
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    std::fs::write(empty.join("notes.txt"), b"no image here").unwrap();
    let good = picture(tmp.path(), "good.png", 4, 3);
    let out_dir = tmp.path().join("out");
    let out = shutter(&[
        "run",
        s(&empty),
        s(&good),
        "-o",
        s(&out_dir),
        "--format",
        "png",
        "--device",
        "cpu",
    ]);
    assert_no_panic(&out);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("empty: unsupported input: the directory holds no image files"),
        "{err}"
    );
    assert_eq!(files_in(&out_dir), ["good.png"]);
}

#[test]
fn a_file_named_like_a_pattern_gets_a_hint_to_name_it_as_a_path() {
    let tmp = TempDir::new().unwrap();
    picture(tmp.path(), "pattern:1.png", 4, 3);
    let run = |arg: &str| {
        Command::new(env!("CARGO_BIN_EXE_shutter"))
            .args(["run", arg, "-o", "out/", "--device", "cpu"])
            .current_dir(tmp.path())
            .stdin(Stdio::null())
            .output()
            .expect("run shutter")
    };
    let out = run("pattern:1.png");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("for the file of that name, write ./pattern:1.png"),
        "{}",
        stderr(&out)
    );
    let out = run("./pattern:1.png");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(tmp.path().join("out/pattern:1.webp").exists());
}

/// A 1-bit gray PNG of `width` × `height` (a multiple of 8 wide) in diagonal stripes of
/// eight pixels: real pixel data, small once compressed.
fn striped_one_bit_png(width: u32, height: u32) -> Vec<u8> {
    use std::io::Write;
    let row_bytes = width as usize / 8;
    let mut raw = Vec::with_capacity((row_bytes + 1) * height as usize);
    for y in 0..height as usize {
        raw.push(0); // no filter
        raw.extend((0..row_bytes).map(|x| if (x + y / 8) % 2 == 0 { 0xFF } else { 0 }));
    }
    let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    zlib.write_all(&raw).unwrap();
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[1, 0, 0, 0, 0]); // 1-bit gray
    common::png_chunk(&mut png, b"IHDR", &ihdr);
    common::png_chunk(&mut png, b"IDAT", &zlib.finish().unwrap());
    common::png_chunk(&mut png, b"IEND", &[]);
    png
}

/// Rust aborts the whole process when an allocation fails. An image this process cannot
/// hold (here under `ulimit -v`) fails by name before its pixels are read, and the batch goes
/// on: a large image that fits is still written, whole.
#[test]
fn an_image_too_large_for_the_memory_fails_by_name_and_the_batch_goes_on() {
    let dir = TempDir::new().unwrap();
    // 400 megapixels: about 4.5 GiB at 12 bytes a pixel, over a 3 GB address space.
    let huge = dir.path().join("huge.png");
    std::fs::write(&huge, common::png_header_only(20_000, 20_000)).unwrap();
    // 36 megapixels: asked for up front too (432 MB), and within it.
    let large = dir.path().join("large.png");
    std::fs::write(&large, striped_one_bit_png(6_000, 6_000)).unwrap();
    let out_dir = dir.path().join("out");
    let out = Command::new("sh")
        .arg("-c")
        .arg("ulimit -v 3000000 && exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_shutter"))
        .args(["run", s(&huge), s(&large), "--device", "cpu"])
        .args([
            "--max-pixels",
            "400000000",
            "--mode",
            "L",
            "--format",
            "npy",
        ])
        .args(["-o", &format!("{}/", s(&out_dir))])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("huge.png: not enough memory: a 20000×20000 image takes about"),
        "{err}"
    );
    assert!(
        !err.contains("panicked") && !err.contains("memory allocation"),
        "{err}"
    );
    assert!(!out_dir.join("huge.npy").exists());
    let npy = std::fs::read(out_dir.join("large.npy")).unwrap();
    let pixels = &npy[npy.len() - 36_000_000..];
    for (x, y) in [(0, 0), (8, 0), (0, 8), (5_999, 5_999), (4_321, 1_234)] {
        let want = if (x / 8 + y / 8) % 2 == 0 { 255 } else { 0 };
        assert_eq!(pixels[y * 6_000 + x], want, "({x}, {y})");
    }
}

/// File names that are not UTF-8 (Latin-1 names on an old disk) keep their bytes in the
/// output names, as Python's surrogate escapes keep them for Pillow: `café` and `cafè`
/// used to become the same `caf\u{FFFD}` and be told apart by their whole names and a number.
#[cfg(unix)]
#[test]
fn output_names_keep_the_bytes_of_names_that_are_not_utf8() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let dir = TempDir::new().unwrap();
    let inputs = dir.path().join("in");
    std::fs::create_dir(&inputs).unwrap();
    let png = common::one_colour_png();
    for name in [&b"caf\xe9.png"[..], b"caf\xe8.png", b"\xff_00001.png"] {
        std::fs::write(inputs.join(OsStr::from_bytes(name)), &png).unwrap();
    }
    let out_dir = dir.path().join("out");
    let out = shutter(&[
        "run",
        s(&inputs),
        "--device",
        "cpu",
        "--format",
        "png",
        "-o",
        s(&out_dir),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let mut written: Vec<Vec<u8>> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().as_bytes().to_vec())
        .collect();
    written.sort();
    let want: Vec<&[u8]> = vec![b"caf\xe8.png", b"caf\xe9.png", b"\xff_00001.png"];
    assert_eq!(written, want);

    // The frames of an animation too: one file each, numbered after the raw stem.
    let anim = dir.path().join(OsStr::from_bytes(b"anim\xe9.gif"));
    animated_gif(&anim, 2);
    let seq_out = dir.path().join("seq");
    let out = Command::new(env!("CARGO_BIN_EXE_shutter"))
        .arg("run")
        .arg(&anim)
        .args(["--device", "cpu", "--format", "png", "-o", s(&seq_out)])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let mut written: Vec<Vec<u8>> = std::fs::read_dir(&seq_out)
        .unwrap()
        .map(|e| e.unwrap().file_name().as_bytes().to_vec())
        .collect();
    written.sort();
    let want: Vec<&[u8]> = vec![b"anim\xe9_00000.png", b"anim\xe9_00001.png"];
    assert_eq!(written, want);
}

/// A decoder that panics on a malformed file is caught: the file fails with one error line
/// naming it, no panic message, and the batch goes on.
#[test]
fn a_file_that_makes_a_decoder_panic_fails_with_one_line_and_the_batch_goes_on() {
    let dir = TempDir::new().unwrap();
    let bad = dir.path().join("bad.svg");
    std::fs::write(
        &bad,
        "<svg xmlns='http://www.w3.org/2000/svg' width='10' height='10'>\
         <g transform='scale(1e30)'><circle r='5'/></g></svg>",
    )
    .unwrap();
    let good = dir.path().join("good.png");
    std::fs::write(&good, common::one_colour_png()).unwrap();
    let out_dir = dir.path().join("out");
    let out = shutter(&[
        "run",
        s(&bad),
        s(&good),
        "--device",
        "cpu",
        "--format",
        "png",
        "-o",
        s(&out_dir),
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    let errors: Vec<&str> = err.lines().filter(|l| l.contains("error")).collect();
    assert_eq!(errors.len(), 1, "{err}");
    assert!(
        errors[0].contains("bad.svg: cannot decode the image: the decoder failed"),
        "{err}"
    );
    assert!(out_dir.join("good.png").exists());
    assert!(!out_dir.join("bad.png").exists());
}

//! How inputs are read before they are decoded: pipes and other files that are not regular
//! files, the sniffing of the content from its first bytes, and the cap on an input's size.

mod common;

use std::fs::{self, File};
use std::io::{Cursor, Write};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::thread;

use image::{ImageFormat, Rgb, RgbImage};
use shutter::Error;
use shutter::source::{self, DecodeLimits, Input};
use tempfile::TempDir;

use common::{decode_file, one_colour_png};

/// Runs `f` with the path of the read end of a pipe (`/dev/fd/N`, as `<(...)` gives) while a
/// thread writes `data` into it, then `repeat` times more (until the reader goes away);
/// returns `f`'s result and how many bytes were written.
fn with_pipe<T>(data: Vec<u8>, repeat: usize, f: impl FnOnce(PathBuf) -> T) -> (T, u64) {
    let (reader, mut writer) = std::io::pipe().expect("pipe");
    let path = PathBuf::from(format!("/dev/fd/{}", reader.as_raw_fd()));
    let feeder = thread::spawn(move || {
        let mut written = 0u64;
        for _ in 0..=repeat {
            if writer.write_all(&data).is_err() {
                break;
            }
            written += data.len() as u64;
        }
        written
    });
    let result = f(path);
    drop(reader); // a writer still writing gets EPIPE and stops
    (result, feeder.join().expect("feeder thread"))
}

#[test]
fn a_pipe_named_as_a_path_is_read_to_its_end() {
    let (frames, _) = with_pipe(one_colour_png(), 0, |path| {
        decode_file(&path, &DecodeLimits::default())
    });
    let frames = frames.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(frames.len(), 1);
    assert_eq!((frames[0].width, frames[0].height), (32, 24));
    assert_eq!(&frames[0].rgba[..4], &[1, 2, 3, 255]);
}

#[test]
fn a_pipe_over_the_size_cap_is_refused_naming_it_and_the_cap() {
    // A PNG signature, then more bytes than the smallest cap allows.
    let limits = DecodeLimits {
        max_pixels: 1000,
        ..DecodeLimits::default()
    };
    let cap = limits.max_input_bytes();
    assert_eq!(cap, 64 << 20);
    let mut chunk = one_colour_png();
    chunk.resize(1 << 20, 0);
    let (err, _) = with_pipe(chunk, 70, |path| {
        let name = path.display().to_string();
        (decode_file(&path, &limits).err(), name)
    });
    let (err, name) = err;
    let err = err.expect("an input over the cap is refused");
    let msg = err.to_string();
    assert!(matches!(err, Error::Limits { .. }), "{err:?}");
    assert!(
        msg.contains(&name) && msg.contains(&cap.to_string()),
        "{msg}"
    );
}

#[test]
fn a_pipe_of_no_image_is_refused_after_its_first_bytes() {
    // Endless zeros (as `/dev/zero`): refused without reading on; the writer stops when the
    // reader is gone, long before all it could write.
    let (err, written) = with_pipe(vec![0; 64 << 10], 512, |path| {
        decode_file(&path, &DecodeLimits::default()).err()
    });
    let err = err.expect("zeros are no image");
    assert!(matches!(err, Error::Unsupported { .. }), "{err:?}");
    assert!(written < 8 << 20, "{written} bytes were read");
}

#[test]
fn the_default_cap_holds_the_largest_image_the_limits_allow() {
    let limits = DecodeLimits::default();
    assert_eq!(limits.max_input_bytes(), limits.max_pixels * 8);
    assert!(limits.max_input_bytes() <= limits.max_alloc);
}

#[test]
fn a_file_whose_content_is_no_image_fails_before_it_is_read() {
    let dir = TempDir::new().expect("temp dir");
    // Sparse files: 200 MB of zeros cost no disk, and reading them would cost memory.
    for (name, format) in [
        ("zeros.jpg", "jpeg"),
        ("zeros.svg", "svg"),
        ("zeros.png", "png"),
    ] {
        let path = dir.path().join(name);
        File::create(&path)
            .and_then(|f| f.set_len(200 << 20))
            .expect("sparse file");
        let err = decode_file(&path, &DecodeLimits::default()).expect_err(name);
        let msg = err.to_string();
        assert!(
            matches!(&err, Error::Decode { format: f, reason, .. }
                if f == format && reason.contains("not") && reason.contains("data")),
            "{name}: {err:?}"
        );
        assert!(msg.contains(name), "{msg}");
    }
}

#[test]
fn a_file_over_the_size_cap_fails_before_it_is_read() {
    let dir = TempDir::new().expect("temp dir");
    let limits = DecodeLimits {
        max_pixels: 1000,
        ..DecodeLimits::default()
    };
    let path = dir.path().join("big.jpg");
    let mut file = File::create(&path).expect("create");
    file.write_all(&[0xFF, 0xD8, 0xFF, 0xE0])
        .and_then(|_| file.set_len(limits.max_input_bytes() + 1))
        .expect("sparse file");
    let err = decode_file(&path, &limits).expect_err("over the cap");
    let msg = err.to_string();
    assert!(matches!(err, Error::Limits { .. }), "{err:?}");
    assert!(msg.contains("big.jpg") && msg.contains("67108864"), "{msg}");
}

fn shutter_cmd(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_shutter"));
    cmd.args(args);
    cmd
}

#[test]
fn dev_stdin_given_as_a_path_reads_the_piped_image() {
    let dir = TempDir::new().expect("temp dir");
    let out_dir = dir.path().join("o");
    let out_arg = out_dir.to_str().expect("utf-8");
    let mut child = shutter_cmd(&[
        "run",
        "--device",
        "cpu",
        "/dev/stdin",
        "-o",
        out_arg,
        "--format",
        "png",
    ])
    .stdin(Stdio::piped())
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .expect("run shutter");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(&one_colour_png()).expect("write png");
    drop(stdin);
    let out = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let names: Vec<_> = fs::read_dir(&out_dir)
        .expect("output dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
    let got = image::open(out_dir.join(&names[0])).expect("output png");
    assert_eq!(got.to_rgb8().get_pixel(0, 0), &Rgb([1, 2, 3]));
}

#[test]
fn endless_stdin_of_no_image_is_refused_after_its_first_bytes() {
    let dir = TempDir::new().expect("temp dir");
    let out_arg = dir.path().join("o");
    let mut child = shutter_cmd(&[
        "run",
        "--device",
        "cpu",
        "-",
        "-o",
        out_arg.to_str().expect("utf-8"),
        "--format",
        "png",
    ])
    .stdin(Stdio::piped())
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .expect("run shutter");
    let mut stdin = child.stdin.take().expect("stdin");
    // Up to 64 MiB of zeros, stopping when shutter stops reading (it exits, the pipe breaks).
    let zeros = vec![0u8; 64 << 10];
    let mut written = 0u64;
    while written < 64 << 20 && stdin.write_all(&zeros).is_ok() {
        written += zeros.len() as u64;
    }
    drop(stdin);
    let out = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("<stdin>") && stderr.contains("cannot tell the image format"),
        "{stderr}"
    );
    assert!(written < 8 << 20, "shutter read {written} bytes of zeros");
}

#[test]
fn a_directory_lists_every_extension_pillow_gives_the_formats_shutter_reads() {
    let dir = TempDir::new().expect("temp dir");
    let png = one_colour_png();
    let mut jpeg = Vec::new();
    RgbImage::from_pixel(8, 8, Rgb([9, 9, 9]))
        .write_to(&mut Cursor::new(&mut jpeg), ImageFormat::Jpeg)
        .expect("encode jpeg");
    let mut bmp = Vec::new();
    RgbImage::from_pixel(8, 8, Rgb([9, 9, 9]))
        .write_to(&mut Cursor::new(&mut bmp), ImageFormat::Bmp)
        .expect("encode bmp");
    for (name, data) in [
        ("a.apng", &png),
        ("b.jpe", &jpeg),
        ("c.JFIF", &jpeg),
        ("d.dib", &bmp),
        ("e.txt", &png),
    ] {
        fs::write(dir.path().join(name), data).expect("write");
    }
    let inputs: Vec<Input> = source::expand(&[source::Source::Path(dir.path().to_path_buf())])
        .into_iter()
        .map(|i| i.unwrap_or_else(|e| panic!("{e}")))
        .collect();
    let names: Vec<_> = inputs.iter().map(|i| i.stem.as_str()).collect();
    assert_eq!(names, ["a", "b", "c", "d"]);
    for input in &inputs {
        let frames: Vec<_> = source::decode(input, &DecodeLimits::default())
            .and_then(Iterator::collect::<Result<Vec<_>, _>>)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(frames.len(), 1, "{}", input.name);
    }
}

#[test]
fn a_gzipped_svg_is_refused_as_compressed_svg_not_by_its_extension() {
    let dir = TempDir::new().expect("temp dir");
    // A gzip header, whatever follows: shutter reads no gzip.
    let gzip = [0x1F, 0x8B, 8, 0, 0, 0, 0, 0, 0, 3, 1, 2, 3, 4];
    for name in ["f.svgz", "f.svg", "f-plain"] {
        let path = dir.path().join(name);
        fs::write(&path, gzip).expect("write");
        let err = decode_file(&path, &DecodeLimits::default()).expect_err(name);
        let msg = err.to_string();
        assert!(matches!(err, Error::Unsupported { .. }), "{name}: {err:?}");
        assert!(
            msg.contains(name) && msg.contains("svgz") && msg.contains("decompress it first"),
            "{msg}"
        );
        assert!(!msg.contains("extension"), "{msg}");
    }
}

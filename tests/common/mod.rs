//! Helpers shared by the integration tests: seeded random frames and the GPU-or-skip rule.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;

use shutter::gpu::GpuContext;

/// A deterministic pseudo-random RGBA frame (xorshift64*), never all zeros, alpha varied too.
pub fn random_rgba(width: u32, height: u32, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let n = width as usize * height as usize * 4;
    let mut out = Vec::with_capacity(n + 8);
    while out.len() < n {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        out.extend_from_slice(&state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(n);
    out
}

/// `SHUTTER_REQUIRE_GPU=1` (as in CI): a missing adapter fails the tests.
pub fn gpu_required() -> bool {
    std::env::var("SHUTTER_REQUIRE_GPU").is_ok_and(|v| v == "1")
}

/// The GPU context for tests. Without an adapter the test is skipped (returns `None`) unless
/// `SHUTTER_REQUIRE_GPU=1`, as in CI, where it fails instead.
pub fn gpu_or_skip(test: &str) -> Option<Arc<GpuContext>> {
    match GpuContext::new() {
        Ok(ctx) => Some(ctx),
        Err(err) => {
            if gpu_required() {
                panic!("{test}: SHUTTER_REQUIRE_GPU=1 but no GPU adapter: {err}");
            }
            eprintln!("{test}: skipped, no GPU adapter: {err}");
            None
        }
    }
}

/// Runs the `shutter` binary built for these tests, with no standard input.
pub fn shutter(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_shutter"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run shutter")
}

/// A command's standard error as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A temporary path as a command-line argument.
pub fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

// ---- the golden set (Pillow's outputs copied into tests/data/golden, see its manifest.json) --

/// The folder of the golden files.
pub fn golden_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/golden")
}

/// The bytes of one golden file.
pub fn read_golden(name: &str) -> Vec<u8> {
    let path = golden_dir().join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The golden set's manifest.json.
pub fn golden_manifest() -> serde_json::Value {
    serde_json::from_slice(&read_golden("manifest.json")).expect("manifest.json is JSON")
}

/// A manifest entry's string field.
pub fn str_of<'a>(v: &'a serde_json::Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("manifest: '{key}' missing in {v}"))
}

/// A manifest entry's number field.
pub fn num_of(v: &serde_json::Value, key: &str) -> u32 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("manifest: '{key}' missing in {v}")) as u32
}

/// Every mode tag of the golden set (its `mirror` and `sepia` outputs belong to the ops tests).
pub const GOLDEN_MODE_TAGS: [&str; 13] = [
    "1",
    "L",
    "P",
    "RGB",
    "RGBA",
    "CMYK",
    "YCbCr",
    "LAB",
    "HSV",
    "I",
    "F",
    "1_nodither",
    "P_web_nodither",
];

/// One golden conversion of the manifest: the input (RGB inputs widened with A = 255), what to
/// ask for, and Pillow's answer.
pub struct GoldenCase {
    /// The output's id, `input__tag`.
    pub id: String,
    /// Its index in the manifest's outputs.
    pub seq: usize,
    pub mode: shutter::ImageMode,
    /// Floyd–Steinberg unless the tag ends in `nodither`.
    pub dither: shutter::Dither,
    pub width: u32,
    pub height: u32,
    pub rgba: Vec<u8>,
    pub has_alpha: bool,
    /// Pillow's bytes.
    pub expected: Vec<u8>,
    /// The manifest entry (palette file, tolerances).
    pub entry: serde_json::Value,
}

/// Every golden output whose tag (`1`, `P`, … and `1_nodither`, `P_web_nodither`) is in `tags`.
pub fn golden_cases(tags: &[&str]) -> Vec<GoldenCase> {
    let man = golden_manifest();
    let outputs = man["outputs"].as_array().expect("outputs is a list");
    let mut out = Vec::new();
    for (seq, e) in outputs.iter().enumerate() {
        let id = str_of(e, "id");
        let tag = id.split_once("__").map_or("", |(_, t)| t);
        if !tags.contains(&tag) {
            continue;
        }
        let input = &man["inputs"][str_of(e, "input")];
        let (width, height) = (num_of(input, "width"), num_of(input, "height"));
        let src = read_golden(str_of(input, "file"));
        let has_alpha = str_of(input, "mode") == "RGBA";
        let rgba = if has_alpha {
            src
        } else {
            src.chunks_exact(3)
                .flat_map(|p| [p[0], p[1], p[2], 255])
                .collect()
        };
        assert_eq!(rgba.len(), (width * height * 4) as usize, "{id}");
        out.push(GoldenCase {
            id: id.to_string(),
            seq,
            mode: str_of(e, "mode")
                .parse()
                .expect("manifest mode is a Pillow mode"),
            dither: if tag.ends_with("nodither") {
                shutter::Dither::None
            } else {
                shutter::Dither::FloydSteinberg
            },
            width,
            height,
            rgba,
            has_alpha,
            expected: read_golden(str_of(e, "file")),
            entry: e.clone(),
        });
    }
    assert!(!out.is_empty(), "no golden cases for {tags:?}");
    out
}

// ---- the animated fixtures (made with Pillow by tests/data/anim/make_anim.py) ----------------

/// One fixture of `tests/data/anim/` and Pillow's reading of it.
pub struct AnimFixture {
    pub path: std::path::PathBuf,
    pub width: u32,
    pub height: u32,
    /// Display time of each frame in ms (`None` where Pillow gives none: stills).
    pub delays_ms: Vec<Option<u64>>,
    /// Pillow's `info.get("loop")`.
    pub loop_count: Option<u64>,
    /// Each frame's mode as Pillow opens it (`P`, `RGB`, `RGBA`, …).
    pub modes: Vec<String>,
    /// Every frame as Pillow composites it, RGBA8, one after the other.
    pub rgba: Vec<u8>,
}

impl AnimFixture {
    /// The composited RGBA8 frames, each `width × height × 4` bytes.
    pub fn frames(&self) -> Vec<&[u8]> {
        let len = self.width as usize * self.height as usize * 4;
        self.rgba.chunks_exact(len).collect()
    }
}

/// The fixture `name` (`anim.webp`, `once.gif`, …) with Pillow's reading of it.
pub fn anim_fixture(name: &str) -> AnimFixture {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/anim");
    let read = |file: &str| {
        let path = dir.join(file);
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    };
    let manifest: serde_json::Value =
        serde_json::from_slice(&read("manifest.json")).expect("manifest.json is JSON");
    let entry = &manifest["fixtures"][name];
    let delays_ms = entry["durations_ms"]
        .as_array()
        .unwrap_or_else(|| panic!("manifest: no durations for {name}"))
        .iter()
        // APNG durations are floats (40.0), WebP and GIF ones integers; 0 is none too.
        .map(|d| d.as_f64().map(|ms| ms as u64).filter(|&ms| ms > 0))
        .collect();
    let fixture = AnimFixture {
        path: dir.join(name),
        width: num_of(entry, "width"),
        height: num_of(entry, "height"),
        delays_ms,
        loop_count: entry["loop"].as_u64(),
        modes: entry["modes"]
            .as_array()
            .unwrap_or_else(|| panic!("manifest: no modes for {name}"))
            .iter()
            .map(|m| m.as_str().unwrap_or_default().to_string())
            .collect(),
        rgba: read(str_of(entry, "rgba")),
    };
    assert_eq!(
        fixture.frames().len(),
        num_of(entry, "frames") as usize,
        "{name}: the .rgba file holds every frame"
    );
    fixture
}

/// The names in `dir` (hidden temp files included), sorted.
pub fn dir_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Asserts that `dir` holds nothing, hidden temp files included; `what` names the case.
pub fn assert_nothing_in(dir: &Path, what: &str) {
    let names = dir_names(dir);
    assert!(
        names.is_empty(),
        "{what}: {names:?} left in {}",
        dir.display()
    );
}

/// The CRC-32 of PNG chunks (and zlib's), bit by bit: for building chunks in tests.
pub fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A 32×24 PNG of one colour, (1, 2, 3).
pub fn one_colour_png() -> Vec<u8> {
    let mut out = Vec::new();
    image::RgbImage::from_pixel(32, 24, image::Rgb([1, 2, 3]))
        .write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .expect("encode png");
    out
}

/// Every frame of the file at `path`, decoded within `limits`.
pub fn decode_file(
    path: &Path,
    limits: &shutter::DecodeLimits,
) -> shutter::Result<Vec<shutter::source::DecodedFrame>> {
    shutter::source::decode(&shutter::source::Input::from_path(path), limits)?.collect()
}

/// Appends one PNG chunk (length, type, data, CRC) to `out`.
pub fn png_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let mut body = kind.to_vec();
    body.extend_from_slice(data);
    out.extend_from_slice(&body);
    out.extend_from_slice(&crc32(&body).to_be_bytes());
}

/// A PNG that declares `width` × `height` 8-bit RGB but holds (almost) no pixel data.
pub fn png_header_only(width: u32, height: u32) -> Vec<u8> {
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]); // 8-bit RGB
    png_chunk(&mut png, b"IHDR", &ihdr);
    png_chunk(&mut png, b"IDAT", &[0x78, 0x9C, 0x03, 0x00]);
    png_chunk(&mut png, b"IEND", &[]);
    png
}

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

/// The GPU context for tests. Without an adapter the test is skipped (returns `None`) unless
/// `SHUTTER_REQUIRE_GPU=1`, as in CI, where it fails instead.
pub fn gpu_or_skip(test: &str) -> Option<Arc<GpuContext>> {
    match GpuContext::new() {
        Ok(ctx) => Some(ctx),
        Err(err) => {
            if std::env::var("SHUTTER_REQUIRE_GPU").is_ok_and(|v| v == "1") {
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

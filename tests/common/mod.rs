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

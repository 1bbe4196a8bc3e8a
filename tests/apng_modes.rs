//! Animated PNGs convert from the mode Pillow keeps for their frames: `1` and `L` frames with
//! their tRNS value, `P` frames with the canvas's indices and the file's palette, `RGB` frames
//! with their tRNS colour. The files and Pillow's conversions come from
//! `tests/data/apng_modes/make_apng_modes.py`.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use shutter::{DeviceChoice, FrameArray, ImageMode, Pipeline, Source};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/apng_modes")
}

/// `np.asarray(im)` as bytes: bool as 0/255, I and F little-endian.
fn array_bytes(array: &FrameArray) -> Vec<u8> {
    match array {
        FrameArray::Bool(a) => a.iter().map(|&b| if b { 255 } else { 0 }).collect(),
        FrameArray::U8(a) => a.iter().copied().collect(),
        FrameArray::I32(a) => a.iter().flat_map(|v| v.to_le_bytes()).collect(),
        FrameArray::F32(a) => a.iter().flat_map(|v| v.to_le_bytes()).collect(),
    }
}

fn check(device: DeviceChoice) -> usize {
    let text = fs::read_to_string(dir().join("manifest.json")).expect("manifest");
    let manifest: serde_json::Value = serde_json::from_str(&text).expect("manifest JSON");
    let pillow = fs::read(dir().join("pillow.bin")).expect("pillow.bin");
    let slice = |v: &serde_json::Value| {
        let at = v[0].as_u64().expect("offset") as usize;
        let len = v[1].as_u64().expect("length") as usize;
        &pillow[at..at + len]
    };
    let mut checked = 0;
    let mut wrong = Vec::new();
    for file in manifest["files"].as_array().expect("files") {
        let name = file["file"].as_str().expect("file");
        let outputs = file["outputs"].as_array().expect("outputs");
        for mode_name in ["1", "L", "P", "RGB", "RGBA", "CMYK", "YCbCr", "I", "F"] {
            let mode: ImageMode = mode_name.parse().expect("a mode");
            let mut got = Vec::new();
            Pipeline::builder()
                .source(Source::Path(dir().join(name)))
                .device(device)
                .mode(mode)
                .build()
                .expect("build")
                .run_with(|frame| {
                    let palette = frame.image.as_ref().and_then(|i| i.palette.clone());
                    got.push((array_bytes(&frame.array()), palette));
                    Ok(())
                })
                .unwrap_or_else(|e| panic!("{name} {mode_name}: {e}"));
            let want: Vec<_> = outputs.iter().filter(|o| o["mode"] == mode_name).collect();
            assert_eq!(got.len(), want.len(), "{name}: frames");
            for (k, ((bytes, palette), want)) in got.iter().zip(&want).enumerate() {
                if bytes.as_slice() != slice(&want["bytes"]) {
                    wrong.push(format!("{name} → {mode_name}, frame {k}: pixels"));
                }
                if let Some(p) = want.get("palette") {
                    let ours = palette.as_ref().map(|p| p.as_bytes());
                    if ours != Some(slice(p)) {
                        wrong.push(format!("{name} → {mode_name}, frame {k}: palette"));
                    }
                }
                checked += 1;
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} differ from Pillow:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    checked
}

#[test]
fn apng_frames_convert_from_their_files_mode_as_pillow_does_on_the_cpu() {
    assert_eq!(
        check(DeviceChoice::Cpu),
        6 * 9 * 3,
        "6 files × 9 modes × 3 frames"
    );
}

#[test]
fn apng_frames_convert_from_their_files_mode_as_pillow_does_on_the_gpu() {
    if common::gpu_or_skip("apng_frames_convert_from_their_files_mode_as_pillow_does_on_the_gpu")
        .is_none()
    {
        return;
    }
    assert_eq!(check(DeviceChoice::Gpu), 6 * 9 * 3);
}

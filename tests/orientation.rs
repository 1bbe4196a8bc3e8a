//! Orientation as Gradio's `ImageOps.exif_transpose` applies it: EXIF first, the XMP packet's
//! `tiff:Orientation` when EXIF has no Orientation tag (JPEG, PNG and WebP), and every frame
//! of an animated WebP or APNG turned as a still is. The fixtures and Pillow's reading of them
//! come from `tests/data/orientation/make_orientation.py`.

use std::fs;
use std::path::{Path, PathBuf};

use shutter::source::{self, DecodeLimits, DecodedFrame, Input};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/orientation")
}

fn decode(path: &Path) -> Vec<DecodedFrame> {
    let input = Input::from_path(path);
    source::decode(&input, &DecodeLimits::default())
        .and_then(|frames| frames.collect::<Result<Vec<_>, _>>())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

struct Fixture {
    file: String,
    frames: usize,
    width: u32,
    height: u32,
    orientation: u64,
    plain: Option<String>,
    unturned: Option<String>,
}

fn fixtures() -> Vec<Fixture> {
    let text = fs::read_to_string(dir().join("manifest.json")).expect("manifest");
    let manifest: serde_json::Value = serde_json::from_str(&text).expect("manifest JSON");
    let entries = manifest["fixtures"].as_object().expect("fixtures");
    entries
        .values()
        .map(|f| Fixture {
            file: f["file"].as_str().expect("file").to_string(),
            frames: f["frames"].as_u64().expect("frames") as usize,
            width: f["width"].as_u64().expect("width") as u32,
            height: f["height"].as_u64().expect("height") as u32,
            orientation: f["orientation"].as_u64().expect("orientation"),
            plain: f.get("plain").and_then(|p| p.as_str()).map(str::to_string),
            unturned: f
                .get("unturned")
                .and_then(|p| p.as_str())
                .map(str::to_string),
        })
        .collect()
}

/// `rgba` (`width × height`) turned as Pillow's `exif_transpose` turns an image whose
/// orientation is `orientation`, written out from Pillow's `Transpose` methods; with its size.
fn pillow_turn(rgba: &[u8], width: u32, height: u32, orientation: u64) -> (Vec<u8>, u32, u32) {
    let (w, h) = (width as usize, height as usize);
    let sideways = matches!(orientation, 5..=8);
    let (out_w, out_h) = if sideways { (h, w) } else { (w, h) };
    let mut out = Vec::with_capacity(rgba.len());
    for y in 0..out_h {
        for x in 0..out_w {
            let (sx, sy) = match orientation {
                2 => (w - 1 - x, y),         // FLIP_LEFT_RIGHT
                3 => (w - 1 - x, h - 1 - y), // ROTATE_180
                4 => (x, h - 1 - y),         // FLIP_TOP_BOTTOM
                5 => (y, x),                 // TRANSPOSE
                6 => (y, h - 1 - x),         // ROTATE_270
                7 => (w - 1 - y, h - 1 - x), // TRANSVERSE
                8 => (w - 1 - y, x),         // ROTATE_90
                _ => (x, y),
            };
            let at = (sy * w + sx) * 4;
            out.extend_from_slice(&rgba[at..at + 4]);
        }
    }
    (out, out_w as u32, out_h as u32)
}

#[test]
fn fixtures_are_turned_as_exif_transpose_turns_them() {
    let all = fixtures();
    assert!(all.len() >= 18, "{} fixtures", all.len());
    let mut failures = Vec::new();
    for f in &all {
        let path = dir().join(&f.file);
        let frames = decode(&path);
        let sizes: Vec<(u32, u32)> = frames.iter().map(|fr| (fr.width, fr.height)).collect();
        if frames.len() != f.frames || sizes.iter().any(|&s| s != (f.width, f.height)) {
            failures.push(format!(
                "{}: {} frames of {sizes:?} (W×H), Pillow {} of {}×{} (orientation {})",
                f.file,
                frames.len(),
                f.frames,
                f.width,
                f.height,
                f.orientation
            ));
            continue;
        }
        if let Some(plain) = &f.plain {
            // Lossy: the same scan without metadata, turned here, is what must come out.
            let twin = decode(&dir().join(plain));
            let (want, w, h) =
                pillow_turn(&twin[0].rgba, twin[0].width, twin[0].height, f.orientation);
            assert_eq!((w, h), (f.width, f.height), "{plain}");
            if frames[0].rgba != want {
                failures.push(format!(
                    "{}: pixels are not the plain twin's, turned",
                    f.file
                ));
            }
        } else {
            let want = fs::read(dir().join(format!("{}.rgba", f.file))).expect("rgba");
            let got: Vec<u8> = frames.iter().flat_map(|fr| fr.rgba.clone()).collect();
            if got != want {
                failures.push(format!("{}: pixels differ from Pillow's", f.file));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The turn written out above is Pillow's: for every lossless fixture Pillow turned, it takes
/// Pillow's unturned frames to Pillow's turned ones (so the JPEG comparison rests on it).
#[test]
fn the_reference_turn_is_pillows() {
    let mut checked = 0;
    for f in fixtures() {
        let Some(unturned) = &f.unturned else {
            continue;
        };
        let before = fs::read(dir().join(unturned)).expect("unturned rgba");
        let after = fs::read(dir().join(format!("{}.rgba", f.file))).expect("rgba");
        let (w, h) = if matches!(f.orientation, 5..=8) {
            (f.height, f.width)
        } else {
            (f.width, f.height)
        };
        let frame_len = before.len() / f.frames;
        for (b, a) in before
            .chunks_exact(frame_len)
            .zip(after.chunks_exact(frame_len))
        {
            let (turned, tw, th) = pillow_turn(b, w, h, f.orientation);
            assert_eq!((tw, th), (f.width, f.height), "{}", f.file);
            assert_eq!(turned, a, "{}", f.file);
        }
        checked += 1;
    }
    assert!(checked >= 8, "{checked} fixtures checked");
}

/// GIF has no EXIF and Pillow reads no XMP from it: an animated GIF keeps its frames' size.
#[test]
fn animated_gif_is_never_turned() {
    let frames = decode(&dir().join("anim.gif"));
    assert_eq!(frames.len(), 3);
    assert!(frames.iter().all(|f| (f.width, f.height) == (7, 5)));
}

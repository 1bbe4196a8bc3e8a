//! A port of Gradio's `fake_diffusion` demo: a generator yields progressively less noisy
//! versions of a picture, one per "diffusion step", and each one is shown as it arrives.
//!
//! Here the generator is a closure behind [`FuncGrabber`], streamed through the pipeline like a
//! camera; the callback plays the part of Gradio's output image (it reports how much noise is
//! left, and writes each step as a PNG when an output directory is given).
//!
//! ```text
//! cargo run --example fake_diffusion -- [STEPS] [FPS] [OUT_DIR]
//! ```
//! STEPS defaults to 10; FPS (steps per second, Gradio's demo sleeps 1 s a step) to 4, and 0
//! streams as fast as possible.

use std::path::PathBuf;
use std::sync::Arc;

use ndarray::Array3;

use shutter::source::live::FuncGrabber;
use shutter::source::{self, DecodeLimits, Source};
use shutter::{DeviceChoice, FrameArray, Pipeline};

/// The picture being "diffused": shutter's built-in default image.
fn picture() -> shutter::Result<(u32, u32, Vec<u8>)> {
    let input = source::expand(&[Source::builtin_default()])
        .pop()
        .ok_or_else(|| shutter::Error::Usage("no built-in image".into()))??;
    let frame = source::decode(&input, &DecodeLimits::default())?
        .next()
        .ok_or_else(|| shutter::Error::Usage("the built-in image has no frame".into()))??;
    Ok((frame.width, frame.height, frame.rgba))
}

/// A small deterministic noise source (xorshift64*), so runs are repeatable.
struct Noise(u64);

impl Noise {
    fn next_byte(&mut self) -> u8 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8
    }
}

/// Step `step` of `steps`: the picture blended with noise, the noise weight falling from
/// (almost) 1 to 0 at the last step, as the (H, W, 3) array of floats from 0 to 1 that Gradio's
/// demo yields (`rng.random((600, 600, 3))`): shutter scales it to bytes as Gradio does.
fn noisy(
    clean: &[u8],
    (width, height): (u32, u32),
    step: u32,
    steps: u32,
    noise: &mut Noise,
) -> Array3<f32> {
    let weight = 1.0 - step as f32 / steps as f32;
    let values: Vec<f32> = clean
        .chunks_exact(4)
        .flat_map(|px| [px[0], px[1], px[2]])
        .map(|p| {
            let n = f32::from(noise.next_byte()) / 255.0;
            f32::from(p) / 255.0 * (1.0 - weight) + n * weight
        })
        .collect();
    Array3::from_shape_vec((height as usize, width as usize, 3), values).expect("3 values a pixel")
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let steps: u32 = match args.next() {
        Some(s) => s
            .parse()
            .map_err(|_| format!("STEPS: '{s}' is not a count"))?,
        None => 10,
    };
    let fps: f64 = match args.next() {
        Some(s) => s
            .parse()
            .map_err(|_| format!("FPS: '{s}' is not a number"))?,
        None => 4.0,
    };
    let out_dir = args.next().map(PathBuf::from);
    if steps == 0 {
        return Err("STEPS must be at least 1".into());
    }

    let (width, height, clean) = picture()?;
    let clean = Arc::new(clean);

    // The generator: Gradio's `for i in range(steps): yield image` as a closure.
    let generator = {
        let clean = Arc::clone(&clean);
        let mut noise = Noise(0x5EED);
        let mut step = 0;
        move || {
            step += 1;
            (step <= steps).then(|| Ok(noisy(&clean, (width, height), step, steps, &mut noise)))
        }
    };
    let mut grabber = FuncGrabber::from_fn(generator).named("fake diffusion");
    if fps > 0.0 {
        grabber = grabber.with_fps(fps);
    }

    if let Some(dir) = &out_dir {
        std::fs::create_dir_all(dir)?;
    }
    let mut delivered = 0u32;
    let stats = Pipeline::builder()
        .source(Source::grabber(grabber))
        .device(DeviceChoice::Auto)
        .on_frame(move |frame| {
            delivered += 1;
            // What the pipeline made of the frame (mirror, filters, mode: RGB by default), as
            // the (H, W, 3) array Gradio's numpy users get; `frame.rgba` is the frame as
            // captured.
            let FrameArray::U8(rgb) = frame.array() else {
                return Err("an RGB frame is u8".into());
            };
            let rgb: Vec<u8> = rgb.iter().copied().collect();
            let clean_rgb = clean.chunks_exact(4).flat_map(|px| [px[0], px[1], px[2]]);
            let error: u64 = rgb
                .iter()
                .zip(clean_rgb)
                .map(|(a, b)| u64::from(a.abs_diff(b)))
                .sum();
            let mean = error as f64 / rgb.len() as f64;
            println!("step {delivered:>3}: mean distance from the picture {mean:6.2}");
            if let Some(dir) = &out_dir {
                let path = dir.join(format!("step_{delivered:03}.png"));
                image::RgbImage::from_raw(frame.width, frame.height, rgb)
                    .ok_or("frame size mismatch")?
                    .save(&path)
                    .map_err(|err| format!("{}: {err}", path.display()))?;
            }
            Ok(())
        })
        .build()?
        .run()?;
    println!(
        "{} steps in {:.2} s on {}",
        stats.frames,
        stats.elapsed.as_secs_f64(),
        stats
            .backend
            .map_or_else(|| "no backend".to_string(), |b| b.to_string())
    );
    Ok(())
}

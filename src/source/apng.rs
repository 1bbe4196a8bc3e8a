//! APNG: each frame's raw pixels decoded by `png`, then composited exactly as Pillow's
//! `PngImagePlugin` shows them through `ImageSequence`, then `convert("RGBA")`.
//!
//! `image` composites APNGs by the specification (blend OVER in premultiplied terms, the
//! default image left out); Pillow does otherwise, so the frames are drawn here by its rules.
//! The canvas keeps the file's own samples (Pillow's mode: `1`, `L`, `LA`, `P`, `RGB` or
//! `RGBA`) and is converted to RGBA for each output frame:
//!
//! ```text
//! frames      : a default image (IDAT before any fcTL) is frame 0, then every fcTL frame,
//!               up to acTL's count (plus the default image)
//! frame 0     : a zero canvas (every sample 0), its rectangle replaced by the frame
//! frame k ≥ 1 : the canvas after frame k−1's disposal ("before") has the rectangle replaced
//!               by the frame's samples; with blend OVER, "before" then gets the frame pasted
//!               over it with the frame's alpha as mask, every sample (alpha too):
//!                   out = (in · a + out · (255 − a) + 128) · 257 >> 16   (Pillow's DIV255)
//!               a: the alpha sample (LA, RGBA), tRNS's alpha of the index (P), 0 for the
//!               tRNS colour else 255 (RGB), 255 (1, L: their tRNS colour is not a mask)
//! disposal    : NONE keeps the canvas; BACKGROUND fills the rectangle with zeros;
//!               PREVIOUS restores "before" (frame 0's PREVIOUS is BACKGROUND). After a
//!               blend OVER, Pillow's "before" is the blended canvas itself, so PREVIOUS
//!               keeps it
//! output      : the canvas as RGBA: P through its palette (black past its end) with tRNS
//!               alphas; 1, L and RGB at alpha 0 where a pixel equals the tRNS colour
//!               (compared with the stored sample: 0 or 255 for 1, scaled for 2- and 4-bit L)
//! ```
//!
//! Delays are `delay_num / delay_den` seconds (a denominator of 0 counts as 100); the default
//! image has none, shown as 0. The acTL's play count is carried as [`Plays`].
//!
//! 16-bit APNGs are not read here: they give their default image, as a still.

use std::io::{BufRead, Seek};
use std::num::NonZeroU32;
use std::time::Duration;

use super::{DecodeLimits, DecodedFrame, Frames, InputFormat};
use crate::error::{Error, Result};
use crate::frame::Plays;
use crate::mode::Palette;
use crate::mode::source::SourceMode;

/// Pillow's mode for the PNG's colour type, by the samples each pixel stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// `1`, `L` (a gray sample) or `P` (an index).
    Gray,
    Palette,
    GrayAlpha,
    Rgb,
    Rgba,
}

impl Mode {
    fn samples(self) -> usize {
        match self {
            Mode::Gray | Mode::Palette => 1,
            Mode::GrayAlpha => 2,
            Mode::Rgb => 3,
            Mode::Rgba => 4,
        }
    }
}

/// One frame's rectangle.
#[derive(Debug, Clone, Copy)]
struct Rect {
    x: usize,
    y: usize,
    width: usize,
    height: usize,
}

/// The frames of an APNG, decoded one by one as the caller asks for them.
struct Animation<R: BufRead + Seek> {
    name: String,
    reader: png::Reader<R>,
    width: usize,
    height: usize,
    mode: Mode,
    bit_depth: u8,
    /// PLTE entries (P).
    palette: Vec<[u8; 3]>,
    /// tRNS: alphas by index (P), or the colour key's samples (1, L, RGB).
    alphas: Vec<u8>,
    key: Option<Vec<u16>>,
    plays: Plays,
    /// Frames still to come, the default image included.
    remaining: u32,
    /// Every frame's raw samples, as `png` writes them (sized for the full canvas).
    buffer: Vec<u8>,
    canvas: Vec<u8>,
    /// The canvas before the previous frame was drawn (Pillow's `_prev_im`).
    before: Option<Vec<u8>>,
    /// The previous frame's rectangle and disposal.
    previous: Option<(Rect, png::DisposeOp)>,
    next: usize,
}

/// The frames of the APNG in `reader`, after its header has been read and its canvas checked
/// against `limits`.
///
/// # Errors
/// [`Error::Decode`] naming `name` for a malformed file, [`Error::Limits`] for a canvas over
/// `limits`, [`Error::Unsupported`] for 16-bit samples (the caller sends those to the still
/// reader).
pub(super) fn decode<R>(name: &str, reader: R, limits: &DecodeLimits) -> Result<Frames>
where
    R: BufRead + Seek + Send + 'static,
{
    let mut decoder = png::Decoder::new_with_limits(
        reader,
        png::Limits {
            bytes: usize::try_from(limits.max_alloc).unwrap_or(usize::MAX),
        },
    );
    decoder.set_transformations(png::Transformations::IDENTITY);
    // The ICC profile is not used; an oversized one would inflate up to the whole budget.
    decoder.set_ignore_iccp_chunk(true);
    let reader = decoder.read_info().map_err(|e| png_error(name, e))?;
    let info = reader.info();
    let (width, height) = (info.width, info.height);
    super::file::check_header(
        name,
        (width, height),
        u64::from(width) * u64::from(height) * 4,
        limits,
    )?;
    let mode = match info.color_type {
        png::ColorType::Grayscale => Mode::Gray,
        png::ColorType::Indexed => Mode::Palette,
        png::ColorType::GrayscaleAlpha => Mode::GrayAlpha,
        png::ColorType::Rgb => Mode::Rgb,
        png::ColorType::Rgba => Mode::Rgba,
    };
    let bit_depth = info.bit_depth as u8;
    if bit_depth == 16 {
        return Err(Error::Unsupported {
            input: name.to_string(),
            reason: "16-bit APNG frames are not composited".to_string(),
        });
    }
    let palette = info
        .palette
        .as_deref()
        .unwrap_or_default()
        .chunks_exact(3)
        .map(|c| [c[0], c[1], c[2]])
        .collect();
    let trns = info.trns.as_deref().unwrap_or_default();
    // `png` keeps a colour key as one byte a sample at 8 bits, else as 16-bit samples.
    let key = |samples: usize| -> Option<Vec<u16>> {
        if trns.len() == samples {
            Some(trns.iter().map(|&v| u16::from(v)).collect())
        } else {
            let pairs = trns.get(..samples * 2)?.chunks_exact(2);
            Some(pairs.map(|s| u16::from_be_bytes([s[0], s[1]])).collect())
        }
    };
    let (alphas, key) = match mode {
        Mode::Palette => (trns.to_vec(), None),
        // Pillow's `1` keys on its own samples: 255 for any non-zero colour.
        Mode::Gray if bit_depth == 1 => (
            Vec::new(),
            key(1).map(|k| vec![if k[0] == 0 { 0 } else { 255 }]),
        ),
        Mode::Gray => (Vec::new(), key(1)),
        Mode::Rgb => (Vec::new(), key(3)),
        _ => (Vec::new(), None),
    };
    let animation_control = info.animation_control;
    let default_image = info.frame_control.is_none();
    let count = animation_control.map_or(1, |a| a.num_frames);
    let plays = animation_control
        .and_then(|a| NonZeroU32::new(a.num_plays))
        .map_or(Plays::Forever, Plays::Times);
    let buffer = vec![0; reader.output_buffer_size().unwrap_or(0)];
    let (width, height) = (width as usize, height as usize);
    Ok(Box::new(Animation {
        name: name.to_string(),
        reader,
        width,
        height,
        mode,
        bit_depth,
        palette,
        alphas,
        key,
        plays,
        remaining: count.saturating_add(u32::from(default_image)),
        buffer,
        canvas: vec![0; width * height * mode.samples()],
        before: None,
        previous: None,
        next: 0,
    }))
}

/// `png`'s error as ours: limits are limits, anything else says the file is malformed.
fn png_error(name: &str, err: png::DecodingError) -> Error {
    match err {
        png::DecodingError::LimitsExceeded => Error::Limits {
            input: name.to_string(),
            reason: "the APNG needs more memory to decode than the allocation limit".to_string(),
        },
        png::DecodingError::IoError(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            decode_error(name, "the data ends early (truncated file)")
        }
        other => decode_error(name, super::file::one_line(&other.to_string())),
    }
}

fn decode_error(name: &str, reason: impl Into<String>) -> Error {
    Error::Decode {
        input: name.to_string(),
        format: InputFormat::Png.name().to_string(),
        reason: reason.into(),
    }
}

/// Pillow's `DIV255(in · a + out · (255 − a))`: the rounded quotient by 255.
fn blend(src: u8, dst: u8, alpha: u8) -> u8 {
    let a = u32::from(alpha);
    let v = u32::from(src) * a + u32::from(dst) * (255 - a) + 128;
    (((v >> 8) + v) >> 8) as u8
}

impl<R: BufRead + Seek> Animation<R> {
    /// The samples of one pixel of `row` (as `png` writes it) as Pillow stores them.
    fn unpack(&self, row: &[u8], width: usize, out: &mut Vec<u8>) {
        let bits = usize::from(self.bit_depth);
        if bits == 8 {
            out.extend_from_slice(&row[..width * self.mode.samples()]);
            return;
        }
        // 1, 2 and 4 bits: gray is scaled to 0–255 (Pillow's `1`, `L;2`, `L;4`), indices kept.
        let scale = match (self.mode, bits) {
            (Mode::Palette, _) => 1,
            (_, 1) => 255,
            (_, 2) => 85,
            _ => 17,
        };
        let mask = (1u16 << bits) - 1;
        let per_byte = 8 / bits;
        out.extend((0..width).map(|x| {
            let shift = 8 - bits * (x % per_byte + 1);
            (((u16::from(row[x / per_byte]) >> shift) & mask) * scale) as u8
        }));
    }

    /// The alpha a pixel of the frame pastes with under blend OVER.
    fn mask(&self, px: &[u8]) -> u8 {
        match self.mode {
            Mode::Rgba => px[3],
            Mode::GrayAlpha => px[1],
            Mode::Palette => self.alphas.get(usize::from(px[0])).copied().unwrap_or(255),
            Mode::Rgb => {
                let keyed = self
                    .key
                    .as_deref()
                    .is_some_and(|k| k.iter().zip(px).all(|(&k, &v)| k == u16::from(v)));
                if keyed { 0 } else { 255 }
            }
            Mode::Gray => 255,
        }
    }

    /// Decodes and composites the next frame.
    fn frame(&mut self) -> Result<DecodedFrame> {
        let name = self.name.clone();
        let samples = self.mode.samples();
        // The previous frame's disposal, then the canvas it leaves is "before".
        if let Some((rect, op)) = self.previous.take() {
            let before = self.before.take();
            let restore = match op {
                png::DisposeOp::None => None,
                png::DisposeOp::Background => Some(None),
                png::DisposeOp::Previous => Some(before.as_ref()),
            };
            if let Some(source) = restore {
                for y in rect.y..rect.y + rect.height {
                    let at = (y * self.width + rect.x) * samples;
                    let span = at..at + rect.width * samples;
                    match source {
                        Some(source) => self.canvas[span.clone()].copy_from_slice(&source[span]),
                        None => self.canvas[span].fill(0),
                    }
                }
            }
            self.before = Some(self.canvas.clone());
        }

        let output = self
            .reader
            .next_frame(&mut self.buffer)
            .map_err(|e| png_error(&name, e))?;
        let info = self.reader.info();
        // A default image outside the animation has no fcTL: full canvas, no delay.
        let control = info.frame_control;
        let rect = Rect {
            x: control.map_or(0, |c| c.x_offset as usize),
            y: control.map_or(0, |c| c.y_offset as usize),
            width: output.width as usize,
            height: output.height as usize,
        };
        if rect.x + rect.width > self.width || rect.y + rect.height > self.height {
            return Err(decode_error(
                &name,
                format!(
                    "frame {} ({}×{} at {}, {}) lies outside the {}×{} canvas",
                    self.next, rect.width, rect.height, rect.x, rect.y, self.width, self.height
                ),
            ));
        }
        // Interlaced frames come back with the full canvas's row stride.
        let stride = if info.interlaced {
            (self.width * samples * usize::from(self.bit_depth)).div_ceil(8)
        } else {
            output.line_size
        };
        let delay = control.map_or(Duration::ZERO, |c| {
            let den = if c.delay_den == 0 { 100 } else { c.delay_den };
            Duration::from_nanos(u64::from(c.delay_num) * 1_000_000_000 / u64::from(den))
        });
        let blend_over = control.is_some_and(|c| c.blend_op == png::BlendOp::Over);
        let dispose = control.map_or(png::DisposeOp::None, |c| c.dispose_op);

        let mut frame = Vec::with_capacity(rect.width * rect.height * samples);
        for row in self.buffer.chunks(stride.max(1)).take(rect.height) {
            self.unpack(row, rect.width, &mut frame);
        }
        if frame.len() != rect.width * rect.height * samples {
            return Err(decode_error(&name, format!("frame {} is short", self.next)));
        }
        let row_len = rect.width * samples;
        match self.before.take() {
            Some(mut before) if blend_over => {
                for y in 0..rect.height {
                    for x in 0..rect.width {
                        let px = &frame[y * row_len + x * samples..][..samples];
                        let a = self.mask(px);
                        let at = ((rect.y + y) * self.width + rect.x + x) * samples;
                        for (i, &s) in px.iter().enumerate() {
                            before[at + i] = blend(s, before[at + i], a);
                        }
                    }
                }
                // Pillow's canvas is now "before" itself: PREVIOUS will keep it.
                self.canvas.clone_from(&before);
                self.before = Some(before);
            }
            before => {
                self.before = before;
                for y in 0..rect.height {
                    let at = ((rect.y + y) * self.width + rect.x) * samples;
                    self.canvas[at..at + row_len]
                        .copy_from_slice(&frame[y * row_len..(y + 1) * row_len]);
                }
            }
        }
        // Frame 0's PREVIOUS is BACKGROUND: there is nothing before it.
        let dispose = match dispose {
            png::DisposeOp::Previous if self.next == 0 => png::DisposeOp::Background,
            op => op,
        };
        self.previous = Some((rect, dispose));

        let rgba = self.to_rgba();
        // An RGBA or LA file's frames are RGBA in Pillow, opaque ones too; the others have
        // alpha where a frame shows transparency.
        let has_alpha = matches!(self.mode, Mode::Rgba | Mode::GrayAlpha)
            || rgba.chunks_exact(4).any(|px| px[3] != 255);
        Ok(DecodedFrame {
            width: self.width as u32,
            height: self.height as u32,
            rgba,
            has_alpha,
            delay: Some(delay),
            source: self.source(),
            plays: Some(self.plays),
            icc_profile: None,
        })
    }

    /// The mode Pillow's frame is in, where conversions start from it (see
    /// [`crate::mode::source`]): `1` and `L` frames are gray (with their tRNS value), `P`
    /// frames keep the canvas's indices and the file's palette (with its tRNS alphas), `RGB`
    /// ones their tRNS colour; `LA` and `RGBA` frames are RGBA in Pillow.
    fn source(&self) -> SourceMode {
        let key = || -> Option<Vec<u8>> {
            self.key
                .as_deref()?
                .iter()
                .map(|&k| u8::try_from(k).ok())
                .collect()
        };
        match self.mode {
            Mode::Gray => key().map_or(SourceMode::Gray, |k| SourceMode::GrayKey(k[0])),
            Mode::Rgb => key().map_or(SourceMode::Color, |k| {
                SourceMode::ColorKey([k[0], k[1], k[2]])
            }),
            Mode::Palette => {
                let mut rgb = self.palette.clone();
                let largest = self.canvas.iter().max().map_or(0, |&i| usize::from(i));
                if rgb.len() <= largest {
                    rgb.resize(largest + 1, [0, 0, 0]);
                }
                let palette = if self.alphas.is_empty() {
                    Palette::Rgb(rgb)
                } else {
                    let alpha = |i: usize| self.alphas.get(i).copied().unwrap_or(255);
                    Palette::Rgba(
                        rgb.iter()
                            .enumerate()
                            .map(|(i, &[r, g, b])| [r, g, b, alpha(i)])
                            .collect(),
                    )
                };
                SourceMode::Palette {
                    indices: self.canvas.clone(),
                    palette,
                }
            }
            Mode::GrayAlpha | Mode::Rgba => SourceMode::Color,
        }
    }

    /// The canvas as RGBA, as Pillow's `convert("RGBA")` shows it.
    fn to_rgba(&self) -> Vec<u8> {
        let samples = self.mode.samples();
        let keyed = |px: &[u8]| {
            self.key.as_deref().is_some_and(|k| {
                k.len() == px.len() && k.iter().zip(px).all(|(&k, &v)| k == u16::from(v))
            })
        };
        self.canvas
            .chunks_exact(samples)
            .flat_map(|px| match self.mode {
                Mode::Rgba => [px[0], px[1], px[2], px[3]],
                Mode::GrayAlpha => [px[0], px[0], px[0], px[1]],
                Mode::Rgb => [px[0], px[1], px[2], if keyed(px) { 0 } else { 255 }],
                Mode::Gray => [px[0], px[0], px[0], if keyed(px) { 0 } else { 255 }],
                Mode::Palette => {
                    let index = usize::from(px[0]);
                    let [r, g, b] = self.palette.get(index).copied().unwrap_or_default();
                    [r, g, b, self.alphas.get(index).copied().unwrap_or(255)]
                }
            })
            .collect()
    }
}

impl<R: BufRead + Seek> Iterator for Animation<R> {
    type Item = Result<DecodedFrame>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        let item = self.frame();
        // Nothing follows an error.
        self.remaining = if item.is_ok() { self.remaining - 1 } else { 0 };
        self.next += 1;
        Some(item)
    }
}

//! Animated WebP: each frame's bitstream decoded by `image`, then composited onto the canvas
//! exactly as libwebp's `WebPAnimDecoder` (Pillow's reader) does.
//!
//! `image` composites WebP animations itself, but blends with its own rounding: a pixel of a
//! blended sub-frame can come out one level off libwebp's, even an opaque one. So the
//! container is read here and libwebp's rules are followed:
//!
//! ```text
//! key frame   = first frame
//!             | full-canvas frame without alpha, or that does not blend
//!             | previous frame disposed to background and (full-canvas or a key frame)
//! canvas      = key frame ? transparent : previous canvas after its disposal
//! rectangle   ← the frame's decoded pixels (replacing what was there)
//! blending    : unless key frame or "do not blend", each pixel with A < 255 becomes
//!               blend(pixel, previous canvas after disposal), except inside the rectangle
//!               that disposal cleared
//! blend(s, d) = s if A_s = 255;  d if A_s = 0;  else, with
//!               a = A_s + (A_d · (256 − A_s) >> 8),  scale = 2^24 / a,
//!               C = (C_s · A_s + C_d · (A_d · (256 − A_s) >> 8)) · scale >> 24,  A = a
//! disposal    : "to background" clears the frame's rectangle to transparent (0, 0, 0, 0);
//!               the file's background colour is ignored, as libwebp does
//! ```
//!
//! The ANIM chunk's loop count is of plays (0 for forever), as [`Plays`] counts them.
//!
//! The file's VP8X alpha flag decides whether the output has alpha: with it Pillow opens the
//! animation as RGBA (every frame, opaque ones too), without it as RGB, so every output pixel
//! is opaque.

use std::io::{Cursor, Read, Seek, SeekFrom};
use std::num::NonZeroU32;
use std::time::Duration;

use image::ImageDecoder;
use image::codecs::webp::WebPDecoder;

use super::file::{check_header, image_error, image_limits};
use super::{DecodeLimits, DecodedFrame, Frames, InputFormat};
use crate::error::{Error, Result};
use crate::frame::Plays;
use crate::mode::source::SourceMode;

/// Where one frame sits on the canvas and how it is drawn.
#[derive(Debug, Clone, Copy)]
struct Placement {
    x: usize,
    y: usize,
    width: usize,
    height: usize,
    /// Blend with the canvas below (else the frame's pixels replace it).
    blend: bool,
    /// Clear the frame's rectangle to transparent before the next frame.
    dispose: bool,
    /// The frame's bitstream has alpha (an ALPH chunk, or VP8L's alpha bit).
    has_alpha: bool,
}

/// The frames of an animated WebP, decoded one by one as the caller asks for them.
struct Animation<R> {
    name: String,
    reader: R,
    limits: DecodeLimits,
    width: usize,
    height: usize,
    /// The VP8X alpha flag: without it every output pixel is opaque.
    has_alpha: bool,
    /// Offset and length of each ANMF chunk's payload.
    frames: Vec<(u64, u32)>,
    plays: Plays,
    next: usize,
    /// The canvas after the previous frame's disposal, RGBA8.
    disposed: Vec<u8>,
    previous: Option<Placement>,
    previous_was_key: bool,
}

/// The frames of the animated WebP in `reader`, after its container has been read and its
/// canvas checked against `limits`.
///
/// # Errors
/// [`Error::Decode`] naming `name` for a malformed container, [`Error::Limits`] for a canvas
/// over `limits`.
pub(super) fn decode<R>(name: &str, mut reader: R, limits: &DecodeLimits) -> Result<Frames>
where
    R: Read + Seek + Send + 'static,
{
    let Container {
        width,
        height,
        has_alpha,
        plays,
        frames,
    } = read_container(&mut reader).map_err(|e| decode_error(name, e))?;
    let bytes = u64::from(width) * u64::from(height) * 4;
    check_header(name, (width, height), bytes, limits)?;
    if frames.is_empty() {
        return Err(decode_error(name, "the animated WebP has no frames"));
    }
    let (width, height) = (width as usize, height as usize);
    Ok(Box::new(Animation {
        name: name.to_string(),
        reader,
        limits: *limits,
        width,
        height,
        has_alpha,
        frames,
        plays,
        next: 0,
        disposed: vec![0; width * height * 4],
        previous: None,
        previous_was_key: false,
    }))
}

fn decode_error(name: &str, reason: impl Into<String>) -> Error {
    Error::Decode {
        input: name.to_string(),
        format: InputFormat::Webp.name().to_string(),
        reason: reason.into(),
    }
}

/// Reads `n` bytes at the reader's position, or says the data ends early.
fn read_bytes<R: Read>(reader: &mut R, n: u64) -> std::result::Result<Vec<u8>, String> {
    let mut out = Vec::new();
    reader
        .take(n)
        .read_to_end(&mut out)
        .map_err(|e| e.to_string())?;
    if out.len() as u64 == n {
        Ok(out)
    } else {
        Err("the data ends early (truncated file)".to_string())
    }
}

fn u24(b: &[u8]) -> u32 {
    u32::from(b[0]) | u32::from(b[1]) << 8 | u32::from(b[2]) << 16
}

/// What the chunks of a RIFF WebP container say about its animation.
struct Container {
    width: u32,
    height: u32,
    /// The VP8X alpha flag.
    has_alpha: bool,
    plays: Plays,
    /// Offset and length of each ANMF chunk's payload.
    frames: Vec<(u64, u32)>,
}

/// Reads the chunk headers of a RIFF WebP container (and the VP8X and ANIM chunks).
fn read_container<R: Read + Seek>(reader: &mut R) -> std::result::Result<Container, String> {
    let len = reader.seek(SeekFrom::End(0)).map_err(|e| e.to_string())?;
    reader.seek(SeekFrom::Start(0)).map_err(|e| e.to_string())?;
    let head = read_bytes(reader, 12)?;
    if &head[..4] != b"RIFF" || &head[8..] != b"WEBP" {
        return Err("not a RIFF WebP container".to_string());
    }
    let end = (u64::from(u32::from_le_bytes([head[4], head[5], head[6], head[7]])) + 8).min(len);
    let mut canvas = None;
    let mut plays = Plays::Forever;
    let mut frames = Vec::new();
    let mut at = 12u64;
    while at + 8 <= end {
        reader
            .seek(SeekFrom::Start(at))
            .map_err(|e| e.to_string())?;
        let header = read_bytes(reader, 8)?;
        let size = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        match &header[..4] {
            b"VP8X" if size >= 10 => {
                let vp8x = read_bytes(reader, 10)?;
                canvas = Some((
                    u24(&vp8x[4..]) + 1,
                    u24(&vp8x[7..]) + 1,
                    vp8x[0] & 0x10 != 0,
                ));
            }
            b"ANIM" if size >= 6 => {
                let anim = read_bytes(reader, 6)?;
                let count = u32::from(u16::from_le_bytes([anim[4], anim[5]]));
                plays = NonZeroU32::new(count).map_or(Plays::Forever, Plays::Times);
            }
            b"ANMF" => frames.push((at + 8, size)),
            _ => {}
        }
        at += 8 + u64::from(size) + u64::from(size & 1);
    }
    let (width, height, has_alpha) = canvas.ok_or("no VP8X chunk in an animated WebP")?;
    Ok(Container {
        width,
        height,
        has_alpha,
        plays,
        frames,
    })
}

/// One ANMF payload: where the frame goes, and its bitstream as a still WebP file.
fn read_frame(payload: &[u8]) -> std::result::Result<(Placement, u32, Vec<u8>), String> {
    let header = payload
        .get(..16)
        .ok_or("an ANMF chunk shorter than its header")?;
    let width = u24(&header[6..]) + 1;
    let height = u24(&header[9..]) + 1;
    let flags = header[15];
    let duration = u24(&header[12..]);
    // The frame's own chunks: ALPH (optional) and VP8, or VP8L; others are skipped.
    let (mut alph, mut image) = (None, None);
    let mut rest = &payload[16..];
    while rest.len() >= 8 && image.is_none() {
        let size = u32::from_le_bytes([rest[4], rest[5], rest[6], rest[7]]) as usize;
        let chunk = rest
            .get(..8 + size)
            .ok_or("a frame's chunk runs past its ANMF chunk")?;
        match &rest[..4] {
            b"ALPH" => alph = Some(chunk),
            b"VP8 " | b"VP8L" => image = Some(chunk),
            _ => {}
        }
        rest = rest.get(8 + size + (size & 1)..).unwrap_or_default();
    }
    let image = image.ok_or("an ANMF chunk without image data")?;
    let lossless = &image[..4] == b"VP8L";
    // VP8L: a signature byte, then 14 + 14 bits of size and the alpha bit.
    let vp8l_alpha = lossless && image.get(8 + 4).is_some_and(|b| b & 0x10 != 0);
    let alph = alph.filter(|_| !lossless);
    let mut body = Vec::new();
    if let Some(alph) = alph {
        body.extend_from_slice(b"VP8X");
        body.extend_from_slice(&10u32.to_le_bytes());
        body.extend_from_slice(&[0x10, 0, 0, 0]);
        body.extend_from_slice(&(width - 1).to_le_bytes()[..3]);
        body.extend_from_slice(&(height - 1).to_le_bytes()[..3]);
        push_chunk(&mut body, alph);
    }
    push_chunk(&mut body, image);
    let mut file = Vec::with_capacity(body.len() + 12);
    file.extend_from_slice(b"RIFF");
    file.extend_from_slice(&(body.len() as u32 + 4).to_le_bytes());
    file.extend_from_slice(b"WEBP");
    file.extend_from_slice(&body);
    let placement = Placement {
        x: u24(header) as usize * 2,
        y: u24(&header[3..]) as usize * 2,
        width: width as usize,
        height: height as usize,
        blend: flags & 0x02 == 0,
        dispose: flags & 0x01 != 0,
        has_alpha: alph.is_some() || vp8l_alpha,
    };
    Ok((placement, duration, file))
}

/// Appends a chunk (header and data), padded to an even length.
fn push_chunk(out: &mut Vec<u8>, chunk: &[u8]) {
    out.extend_from_slice(chunk);
    if chunk.len() % 2 == 1 {
        out.push(0);
    }
}

/// libwebp's `BlendPixelNonPremult`: `src` over `dst`, straight alpha (see the module comment).
fn blend(src: [u8; 4], dst: [u8; 4]) -> [u8; 4] {
    let src_a = u32::from(src[3]);
    if src_a == 0 {
        return dst;
    }
    let dst_factor_a = (u32::from(dst[3]) * (256 - src_a)) >> 8;
    let blend_a = src_a + dst_factor_a;
    let scale = (1u32 << 24) / blend_a;
    let channel = |i: usize| {
        let unscaled = u32::from(src[i]) * src_a + u32::from(dst[i]) * dst_factor_a;
        ((unscaled * scale) >> 24) as u8
    };
    [channel(0), channel(1), channel(2), blend_a as u8]
}

impl<R: Read + Seek> Animation<R> {
    /// Decodes and composites frame `self.next`.
    fn frame(&mut self, (offset, size): (u64, u32)) -> Result<DecodedFrame> {
        let name = self.name.clone();
        let err = |reason: String| decode_error(&name, reason);
        self.reader
            .seek(SeekFrom::Start(offset))
            .map_err(|e| err(e.to_string()))?;
        let payload = read_bytes(&mut self.reader, u64::from(size)).map_err(err)?;
        let (frame, duration, file) = read_frame(&payload).map_err(err)?;
        if frame.x + frame.width > self.width || frame.y + frame.height > self.height {
            return Err(err(format!(
                "frame {} ({}×{} at {}, {}) lies outside the {}×{} canvas",
                self.next, frame.width, frame.height, frame.x, frame.y, self.width, self.height
            )));
        }
        let pixels = self.decode_bitstream(&file, &frame)?;

        let full = |p: &Placement| p.width == self.width && p.height == self.height;
        let key = match self.previous {
            None => true,
            Some(_) if (!frame.has_alpha || !frame.blend) && full(&frame) => true,
            Some(previous) => previous.dispose && (full(&previous) || self.previous_was_key),
        };
        let mut canvas = if key {
            vec![0; self.disposed.len()]
        } else {
            self.disposed.clone()
        };
        for row in 0..frame.height {
            let from = row * frame.width * 4;
            let to = ((frame.y + row) * self.width + frame.x) * 4;
            canvas[to..to + frame.width * 4].copy_from_slice(&pixels[from..from + frame.width * 4]);
        }
        if frame.blend && !key {
            self.blend_rows(&mut canvas, &frame);
        }

        self.disposed.copy_from_slice(&canvas);
        if frame.dispose {
            for row in frame.y..frame.y + frame.height {
                let at = (row * self.width + frame.x) * 4;
                self.disposed[at..at + frame.width * 4].fill(0);
            }
        }
        self.previous = Some(frame);
        self.previous_was_key = key;

        if !self.has_alpha {
            canvas.chunks_exact_mut(4).for_each(|px| px[3] = 255);
        }
        Ok(DecodedFrame {
            width: self.width as u32,
            height: self.height as u32,
            rgba: canvas,
            // Pillow's mode, RGBA with the alpha flag (an opaque frame too), else RGB.
            has_alpha: self.has_alpha,
            delay: Some(Duration::from_millis(u64::from(duration))),
            plays: Some(self.plays),
            icc_profile: None,
            source: SourceMode::Color,
        })
    }

    /// The RGBA8 pixels of one frame's bitstream.
    fn decode_bitstream(&self, file: &[u8], frame: &Placement) -> Result<Vec<u8>> {
        let err = |e| image_error(&self.name, InputFormat::Webp, e);
        let mut decoder = WebPDecoder::new(Cursor::new(file)).map_err(err)?;
        decoder
            .set_limits(image_limits(&self.limits, true))
            .map_err(err)?;
        if decoder.dimensions() != (frame.width as u32, frame.height as u32) {
            return Err(decode_error(
                &self.name,
                format!(
                    "frame {} is {}×{} in its header but {}×{} in its image data",
                    self.next,
                    frame.width,
                    frame.height,
                    decoder.dimensions().0,
                    decoder.dimensions().1
                ),
            ));
        }
        let alpha = decoder.color_type().has_alpha();
        let mut pixels = vec![0; decoder.total_bytes() as usize];
        decoder.read_image(&mut pixels).map_err(err)?;
        Ok(if alpha {
            pixels
        } else {
            pixels
                .chunks_exact(3)
                .flat_map(|p| [p[0], p[1], p[2], 255])
                .collect()
        })
    }

    /// Blends the frame's translucent pixels over the canvas below, as libwebp does: below is
    /// the previous canvas after its disposal, and pixels inside the rectangle that disposal
    /// cleared are left as decoded.
    fn blend_rows(&self, canvas: &mut [u8], frame: &Placement) {
        let right = frame.x + frame.width;
        for y in frame.y..frame.y + frame.height {
            // libwebp's FindBlendRangeAtRow: the parts of the row left and right of the
            // cleared rectangle.
            let ranges = match self.previous.filter(|p| p.dispose) {
                Some(p)
                    if (p.y..p.y + p.height).contains(&y)
                        && frame.x < p.x + p.width
                        && p.x < right =>
                {
                    let cleared_right = p.x + p.width;
                    [
                        (frame.x, p.x.max(frame.x)),
                        (cleared_right.min(right), right),
                    ]
                }
                _ => [(frame.x, right), (0, 0)],
            };
            for (from, to) in ranges {
                for x in from..to {
                    let at = (y * self.width + x) * 4;
                    let px = |b: &[u8]| [b[at], b[at + 1], b[at + 2], b[at + 3]];
                    let src = px(canvas);
                    if src[3] != 255 {
                        let blended = blend(src, px(&self.disposed));
                        canvas[at..at + 4].copy_from_slice(&blended);
                    }
                }
            }
        }
    }
}

impl<R: Read + Seek> Iterator for Animation<R> {
    type Item = Result<DecodedFrame>;

    fn next(&mut self) -> Option<Self::Item> {
        let chunk = *self.frames.get(self.next)?;
        let item = self.frame(chunk);
        // Nothing follows an error.
        self.next = if item.is_ok() {
            self.next + 1
        } else {
            self.frames.len()
        };
        Some(item)
    }
}

//! `pattern[:WxH][@FPS]`: a moving synthetic test pattern that writes its own frame number into
//! its pixels, paced in real time on a [`Clock`] or produced as fast as the reader asks.
//!
//! The picture: eight 75 % colour bars over the top two thirds, a grey ramp below, a white box
//! moving along the ramp, and in the top-left corner an 8 × 8 grid of black/white cells that
//! holds the frame number. Every edge, the box and the cells sit on even pixel positions with
//! even sizes, so YUV 4:2:0 and 4:2:2 chroma subsampling loses nothing (the synthetic camera's
//! frames convert back to the picture up to rounding).
//!
//! The code ([`read_frame_number`]): row 0 is a sync byte, rows 1–6 the frame number (48 bits,
//! least significant byte first; numbers wrap at 2⁴⁸), row 7 a CRC-8 of rows 0–6. In each row,
//! column `c` is bit `c`; white is 1. Cells are `s × s` pixels, `s` = 2·clamp(min(W, H) / 32, 1, 4)
//! (8 px at 640×480, 4 px at 64×64), or 1 on frames smaller than 32 px a side. The reader
//! samples each cell's middle, so the number survives a PNG or JPEG round trip, YUV conversion,
//! mirroring (the grid is then read right to left at the top-right), inversion and the sepia and
//! grayscale filters.
//!
//! The command-line forms are parsed here too: [`parse_pattern`] and [`parse_webcam`].

use std::sync::Arc;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::source::live::{Clock, FrameGrabber, RawFormat, RawFrame};

/// Width of `pattern` without a size.
pub const DEFAULT_WIDTH: u32 = 640;
/// Height of `pattern` without a size.
pub const DEFAULT_HEIGHT: u32 = 480;
/// Smallest side a pattern may have (the code grid needs 8 × 8 pixels at least).
pub const MIN_SIDE: u32 = 16;
/// Largest side a pattern may have.
pub const MAX_SIDE: u32 = 16_384;
/// Highest rate a paced pattern accepts, in frames per second.
pub const MAX_FPS: f64 = 10_000.0;

/// Cells per side of the code grid.
const GRID: usize = 8;
/// Row 0 of the grid. It reads differently left-to-right and right-to-left, and differs from
/// its own inverse, so a mirrored or inverted grid is never mistaken for a plain one.
const SYNC: u8 = 0xD0;
/// Bits of the frame number the grid holds.
const NUMBER_BITS: u32 = 48;

/// The 75 % colour bars, left to right.
const BARS: [[u8; 3]; 8] = [
    [191, 191, 191],
    [191, 191, 0],
    [0, 191, 191],
    [0, 191, 0],
    [191, 0, 191],
    [191, 0, 0],
    [0, 0, 191],
    [16, 16, 16],
];

/// Side of one code cell in pixels for a `width` × `height` frame.
fn cell_size(width: u32, height: u32) -> usize {
    let side = width.min(height) as usize;
    if side >= 32 {
        2 * (side / 32).clamp(1, 4)
    } else {
        1
    }
}

/// CRC-8 (polynomial x⁸ + x² + x + 1) of `bytes`.
fn crc8(bytes: &[u8]) -> u8 {
    let mut crc = 0u8;
    for &byte in bytes {
        crc ^= byte;
        for _ in 0..8 {
            crc = if crc & 0x80 != 0 {
                (crc << 1) ^ 0x07
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// The eight rows of the code grid for `frame`.
fn code_rows(frame: u64) -> [u8; GRID] {
    let number = frame & ((1 << NUMBER_BITS) - 1);
    let mut rows = [0u8; GRID];
    rows[0] = SYNC;
    for (i, row) in rows[1..7].iter_mut().enumerate() {
        *row = (number >> (8 * i)) as u8;
    }
    rows[7] = crc8(&rows[..7]);
    rows
}

/// `x` rounded down to even.
fn even(x: usize) -> usize {
    x & !1
}

/// Renders frame number `frame` of a `width` × `height` pattern as RGBA8 (opaque).
///
/// The same picture every time for the same arguments. Sides below [`MIN_SIDE`] are drawn
/// as far as they go (the code needs 8 × 8 pixels to be readable).
///
/// # Panics
/// As `vec!` does, when `width × height × 4` bytes cannot be allocated: check the size
/// first ([`DecodeLimits::check`](crate::source::DecodeLimits::check)), as a run does.
pub fn render(width: u32, height: u32, frame: u64) -> Vec<u8> {
    let (w, h) = (width as usize, height as usize);
    let mut out = vec![0u8; w * h * 4];
    if w == 0 || h == 0 {
        return out;
    }
    let top = even(h * 2 / 3);
    // One row of bars, one of ramp, copied down.
    let mut bars_row = vec![0u8; w * 4];
    let mut ramp_row = vec![0u8; w * 4];
    for x in 0..w {
        let bar = (0..BARS.len())
            .rev()
            .find(|&i| x >= even(i * w / BARS.len()))
            .unwrap_or(0);
        let [r, g, b] = BARS[bar];
        bars_row[x * 4..x * 4 + 4].copy_from_slice(&[r, g, b, 255]);
        let v = (even(x) * 255 / (w - 1).max(1)) as u8;
        ramp_row[x * 4..x * 4 + 4].copy_from_slice(&[v, v, v, 255]);
    }
    for (y, row) in out.chunks_exact_mut(w * 4).enumerate() {
        row.copy_from_slice(if y < top { &bars_row } else { &ramp_row });
    }

    // The moving box: even size and position, two pixels a frame, wrapping.
    let side = even((w.min(h) / 6).max(2)).min(even(w)).min(even(h - top));
    if side >= 2 {
        let travel = w - side;
        let positions = (travel / 2 + 1) as u64;
        let x0 = 2 * (frame % positions) as usize;
        let y0 = top + even((h - top - side) / 2);
        // A red centre, its edges even too: from a quarter in to a quarter from the far side.
        let inset = even(side / 4).max(2);
        let centre = inset..side.saturating_sub(inset);
        for y in y0..y0 + side {
            for x in x0..x0 + side {
                let centre = centre.contains(&(y - y0)) && centre.contains(&(x - x0));
                let px = if centre {
                    [255, 0, 0, 255]
                } else {
                    [255, 255, 255, 255]
                };
                out[(y * w + x) * 4..(y * w + x) * 4 + 4].copy_from_slice(&px);
            }
        }
    }

    // The code grid in the top-left corner.
    let s = cell_size(width, height);
    for (r, byte) in code_rows(frame).into_iter().enumerate() {
        for c in 0..GRID {
            let v = if (byte >> c) & 1 == 1 { 255 } else { 0 };
            for y in r * s..((r + 1) * s).min(h) {
                for x in c * s..((c + 1) * s).min(w) {
                    out[(y * w + x) * 4..(y * w + x) * 4 + 4].copy_from_slice(&[v, v, v, 255]);
                }
            }
        }
    }
    out
}

/// Reads the frame number a pattern frame carries (see the module documentation), or `None`
/// when `rgba` holds no valid code: not a pattern, too damaged, or not `width * height * 4`
/// bytes. Works on the frame as rendered, after a PNG round trip, after lossy compression that
/// keeps black and white cells apart, mirrored, inverted, and through sepia or grayscale.
/// Numbers are returned modulo 2⁴⁸.
pub fn read_frame_number(rgba: &[u8], width: u32, height: u32) -> Option<u64> {
    let (w, h) = (width as usize, height as usize);
    let s = cell_size(width, height);
    if rgba.len() != w.checked_mul(h)?.checked_mul(4)? || GRID * s > w || GRID * s > h {
        return None;
    }
    // The middle of a cell: half its side (a single pixel for cells under 4 px).
    let margin = if s >= 4 { s / 4 } else { 0 };
    let lit = |x0: usize, y0: usize| -> bool {
        let mut sum = 0u32;
        let mut n = 0u32;
        for y in y0 + margin..y0 + s - margin {
            for x in x0 + margin..x0 + s - margin {
                let p = &rgba[(y * w + x) * 4..(y * w + x) * 4 + 3];
                sum += 299 * u32::from(p[0]) + 587 * u32::from(p[1]) + 114 * u32::from(p[2]);
                n += 1;
            }
        }
        sum >= 128 * 1000 * n
    };
    for mirrored in [false, true] {
        let mut rows = [0u8; GRID];
        for (r, row) in rows.iter_mut().enumerate() {
            for c in 0..GRID {
                let x0 = if mirrored { w - (c + 1) * s } else { c * s };
                if lit(x0, r * s) {
                    *row |= 1 << c;
                }
            }
        }
        for inverted in [false, true] {
            let rows = if inverted { rows.map(|b| !b) } else { rows };
            if rows[0] == SYNC && rows[7] == crc8(&rows[..7]) {
                let number = rows[1..7]
                    .iter()
                    .rev()
                    .fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
                return Some(number);
            }
        }
    }
    None
}

/// The moving test pattern as a [`FrameGrabber`]: RGBA frames numbered 0, 1, 2, … (or from
/// [`PatternGrabber::starting_at`]), endless.
///
/// With an FPS, frame `k` is due `k / fps` after the first frame was asked for: `next_frame`
/// sleeps on the clock until then and stamps the frame with that time. A reader that falls
/// behind gets the frames that are due at once, none skipped (timestamps stay on the schedule).
/// Without an FPS frames come as fast as they are asked for, stamped with the clock's `now`.
pub struct PatternGrabber {
    width: u32,
    height: u32,
    fps: Option<f64>,
    clock: Arc<dyn Clock>,
    first: u64,
    next: u64,
    start: Option<Duration>,
}

impl std::fmt::Debug for PatternGrabber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PatternGrabber")
            .field("width", &self.width)
            .field("height", &self.height)
            .field("fps", &self.fps)
            .field("next", &self.next)
            .finish_non_exhaustive()
    }
}

/// Checks a pattern's size and rate; `what` names the argument in the message.
pub(crate) fn check_pattern(what: &str, width: u32, height: u32, fps: Option<f64>) -> Result<()> {
    if !(MIN_SIDE..=MAX_SIDE).contains(&width) || !(MIN_SIDE..=MAX_SIDE).contains(&height) {
        return Err(Error::Usage(format!(
            "{what}: size {width}x{height} is out of range (each side {MIN_SIDE} to {MAX_SIDE})"
        )));
    }
    if let Some(fps) = fps
        && !(fps.is_finite() && fps > 0.0 && fps <= MAX_FPS)
    {
        return Err(Error::Usage(format!(
            "{what}: frame rate {fps} is out of range (above 0, at most {MAX_FPS})"
        )));
    }
    Ok(())
}

impl PatternGrabber {
    /// A `width` × `height` pattern, paced at `fps` frames per second on `clock` (`None`: as
    /// fast as possible).
    ///
    /// # Errors
    /// [`Error::Usage`] when a side is outside [`MIN_SIDE`]..=[`MAX_SIDE`] or `fps` is not a
    /// finite rate above 0 and at most [`MAX_FPS`].
    pub fn new(width: u32, height: u32, fps: Option<f64>, clock: Arc<dyn Clock>) -> Result<Self> {
        check_pattern("pattern", width, height, fps)?;
        Ok(PatternGrabber {
            width,
            height,
            fps,
            clock,
            first: 0,
            next: 0,
            start: None,
        })
    }

    /// Numbers the frames from `frame` instead of 0 (the schedule still starts at the first
    /// frame produced).
    pub fn starting_at(mut self, frame: u64) -> Self {
        self.first = frame;
        self.next = frame;
        self
    }

    /// The frame size.
    pub fn size(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    /// The pacing rate, if any.
    pub fn fps(&self) -> Option<f64> {
        self.fps
    }

    /// The number the next frame will carry.
    pub fn next_number(&self) -> u64 {
        self.next
    }

    /// Produces the next frame's number and timestamp, sleeping on the clock when paced.
    pub(crate) fn advance(&mut self) -> (u64, Duration) {
        if self.fps.is_some() {
            self.start.get_or_insert_with(|| self.clock.now());
        }
        let due = self.next_due();
        let k = self.next;
        self.next = self.next.wrapping_add(1);
        let timestamp = match due {
            Some(due) => {
                self.clock.sleep_until(due);
                due
            }
            None => self.clock.now(),
        };
        (k, timestamp)
    }
}

impl FrameGrabber for PatternGrabber {
    fn next_frame(&mut self) -> Result<Option<RawFrame>> {
        let (k, timestamp) = self.advance();
        Ok(Some(RawFrame {
            width: self.width,
            height: self.height,
            format: RawFormat::Rgba,
            data: render(self.width, self.height, k),
            timestamp,
        }))
    }

    fn describe(&self) -> String {
        match self.fps {
            Some(fps) => format!("pattern {}x{} @ {fps} fps", self.width, self.height),
            None => format!("pattern {}x{} (unpaced)", self.width, self.height),
        }
    }

    fn paced(&self) -> bool {
        self.fps.is_some()
    }

    fn next_due(&self) -> Option<Duration> {
        let (fps, start) = (self.fps?, self.start?);
        Some(crate::source::live::due(start, self.next - self.first, fps))
    }
}

/// The usage error for a bad `pattern` argument.
fn pattern_usage(spec: &str, reason: &str) -> Error {
    Error::Usage(format!(
        "source '{spec}': {reason} (expected pattern[:WxH][@FPS], e.g. pattern:640x480@30)"
    ))
}

/// Parses `pattern[:WxH][@FPS]` into (width, height, fps): `pattern` is 640×480 unpaced,
/// `pattern:320x240@60` is 320×240 at 60 frames per second; `x` may be `X`, FPS may be
/// fractional (`@29.97`).
///
/// # Errors
/// [`Error::Usage`] naming `spec` when it is not of that form, a side is outside
/// [`MIN_SIDE`]..=[`MAX_SIDE`], or the rate is not above 0 and at most [`MAX_FPS`].
pub fn parse_pattern(spec: &str) -> Result<(u32, u32, Option<f64>)> {
    let rest = spec
        .strip_prefix("pattern")
        .ok_or_else(|| pattern_usage(spec, "not a pattern source"))?;
    let (size, fps) = match rest.split_once('@') {
        Some((size, fps)) => (size, Some(fps)),
        None => (rest, None),
    };
    let (width, height) = if size.is_empty() {
        (DEFAULT_WIDTH, DEFAULT_HEIGHT)
    } else {
        let dims = size
            .strip_prefix(':')
            .ok_or_else(|| pattern_usage(spec, "unexpected text after 'pattern'"))?;
        let (w, h) = dims
            .split_once(['x', 'X'])
            .ok_or_else(|| pattern_usage(spec, &format!("size '{dims}' is not WxH")))?;
        let side = |text: &str| {
            text.parse::<u32>()
                .map_err(|_| pattern_usage(spec, &format!("size '{dims}' is not WxH")))
        };
        (side(w)?, side(h)?)
    };
    let fps = match fps {
        None => None,
        Some(text) => Some(
            text.parse::<f64>()
                .ok()
                .filter(|f| f.is_finite())
                .ok_or_else(|| {
                    pattern_usage(spec, &format!("frame rate '{text}' is not a number"))
                })?,
        ),
    };
    check_pattern(&format!("source '{spec}'"), width, height, fps)?;
    Ok((width, height, fps))
}

/// Parses `webcam[:INDEX]` into the camera index (`webcam` is 0).
///
/// # Errors
/// [`Error::Usage`] naming `spec` when it is not of that form.
pub fn parse_webcam(spec: &str) -> Result<usize> {
    let usage = |reason: &str| {
        Error::Usage(format!(
            "source '{spec}': {reason} (expected webcam[:INDEX], e.g. webcam:0)"
        ))
    };
    let rest = spec
        .strip_prefix("webcam")
        .ok_or_else(|| usage("not a webcam source"))?;
    if rest.is_empty() {
        return Ok(0);
    }
    let index = rest
        .strip_prefix(':')
        .ok_or_else(|| usage("unexpected text after 'webcam'"))?;
    if index.is_empty() || !index.bytes().all(|b| b.is_ascii_digit()) {
        return Err(usage(&format!("camera index '{index}' is not a number")));
    }
    index
        .parse::<usize>()
        .map_err(|_| usage(&format!("camera index '{index}' is too large")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_rows_are_checked_by_the_crc() {
        let rows = code_rows(0x1234_5678_9abc);
        assert_eq!(rows[0], SYNC);
        assert_eq!(rows[1], 0xbc);
        assert_eq!(rows[6], 0x12);
        assert_eq!(rows[7], crc8(&rows[..7]));
    }

    #[test]
    fn sync_byte_differs_from_its_mirror_and_inverse() {
        let reversed = SYNC.reverse_bits();
        assert!(SYNC != reversed && SYNC != !SYNC && SYNC != !reversed);
    }

    #[test]
    fn tiny_frames_still_carry_a_readable_code() {
        let rgba = render(16, 16, 77);
        assert_eq!(read_frame_number(&rgba, 16, 16), Some(77));
    }
}

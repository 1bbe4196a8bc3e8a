//! What is done to pixels, independent of the backend that does it: mirror and a chain of filters.
//!
//! Every filter is integer arithmetic on 8-bit channels, so the GPU kernel and the CPU
//! reference compute the same numbers bit for bit:
//!
//! ```text
//! mirror      out(x, y) = in(W-1-x, y)                                   (applied first)
//! sepia       n_c = Σ_k S[c][k]·v_k  with S = 1000 × the classic matrix
//!             out_c = min(255, rint(n_c / 1000))                         (rint: half to even)
//! sepia-norm  n_c as for sepia; N = max of n_c over the frame's pixels and R, G, B
//!             out_c = rint(255 · n_c / N)        (the Gradio demo: dot, /= max, ×255, rint)
//! grayscale   L = (19595·R + 38470·G + 7471·B + 0x8000) >> 16 → R = G = B = L  (Pillow "L")
//! invert      out_c = 255 − v_c
//! ```
//! Alpha passes through every filter unchanged. Against numpy's float64 evaluation the
//! results differ by at most 1 (only where n_c/1000 sits within a few ulp of a half).

pub mod cpu;
pub mod fast;

use std::fmt;
use std::str::FromStr;

use crate::error::Error;
use crate::mode::{Dither, ImageMode};

/// The classic sepia matrix ×1000 (rows: output R, G, B; columns: input R, G, B).
pub const SEPIA_1000: [[u32; 3]; 3] = [
    [393, 769, 189], // R' = .393R + .769G + .189B
    [349, 686, 168], // G' = .349R + .686G + .168B
    [272, 534, 131], // B' = .272R + .534G + .131B
];

/// A point-wise colour filter (sepia-norm also needs the frame's maximum: a reduction).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Filter {
    /// The classic sepia matrix, rounded and clamped to u8.
    Sepia,
    /// The Gradio sepia demo: float sepia divided by the frame's maximum, ×255, rounded.
    SepiaNorm,
    /// Pillow's `L` luma written to R, G and B.
    Grayscale,
    /// 255 − value on R, G, B; alpha kept.
    Invert,
}

impl Filter {
    /// Every filter, in the order `--help` lists them.
    pub const ALL: [Filter; 4] = [
        Filter::Sepia,
        Filter::SepiaNorm,
        Filter::Grayscale,
        Filter::Invert,
    ];

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Filter::Sepia => "sepia",
            Filter::SepiaNorm => "sepia-norm",
            Filter::Grayscale => "grayscale",
            Filter::Invert => "invert",
        }
    }
}

impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Filter {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let wanted = s.trim().to_ascii_lowercase();
        Filter::ALL
            .into_iter()
            .find(|f| f.name() == wanted || (wanted == "gray" && *f == Filter::Grayscale))
            .ok_or_else(|| {
                let names: Vec<_> = Filter::ALL.iter().map(|f| f.name()).collect();
                Error::Usage(format!(
                    "filter (--filter): unknown filter '{s}' (expected one of: {})",
                    names.join(", ")
                ))
            })
    }
}

/// The work done to every frame: an optional horizontal mirror, then filters in order, then
/// (when `mode` is set) Pillow's `convert(mode)` into [`Frame::image`](crate::Frame::image).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Ops {
    /// True to flip each frame left to right, before the filters.
    pub mirror: bool,
    /// The filters, applied in this order after the mirror.
    pub filters: Vec<Filter>,
    /// The `image_mode` to convert to, last. `None`: frames stay RGBA in `Frame::rgba`.
    pub mode: Option<ImageMode>,
    /// Dithering for modes `1` and `P` (ignored by the others).
    pub dither: Dither,
}

impl Ops {
    /// True when frames pass through unchanged.
    pub fn is_identity(&self) -> bool {
        !self.mirror && self.filters.is_empty() && self.mode.is_none()
    }

    /// Mirror and filters only (no mode conversion).
    pub fn new(mirror: bool, filters: Vec<Filter>) -> Self {
        Ops {
            mirror,
            filters,
            ..Ops::default()
        }
    }

    /// Parses a comma-separated filter list such as `sepia,invert`.
    ///
    /// # Errors
    /// [`Error::Usage`] naming the first unknown filter, or an empty name (`''`,
    /// `sepia,,invert`: an unset shell variable or a typo, not a request for no filter).
    pub fn parse_filters(list: &str) -> Result<Vec<Filter>, Error> {
        list.split(',')
            .map(|name| {
                if name.trim().is_empty() {
                    return Err(Error::Usage(format!(
                        "filter (--filter): empty filter name in '{list}' (expected names separated by commas)"
                    )));
                }
                Filter::from_str(name)
            })
            .collect()
    }
}

/// Round-half-to-even of `n / d` for `d > 0` (numpy's `rint` on the exact quotient).
#[inline]
pub fn div_rint(n: u32, d: u32) -> u32 {
    let q = n / d;
    let r = n % d;
    let twice = 2 * r;
    if twice > d || (twice == d && q & 1 == 1) {
        q + 1
    } else {
        q
    }
}

/// The three sepia sums `n_c = Σ S[c][k]·v_k` (×1000 of the float sepia value).
#[inline]
pub fn sepia_sums(r: u32, g: u32, b: u32) -> [u32; 3] {
    SEPIA_1000.map(|row| row[0] * r + row[1] * g + row[2] * b)
}

/// Pillow's `L` luma: `(19595 R + 38470 G + 7471 B + 0x8000) >> 16`.
#[inline]
pub fn luma(r: u32, g: u32, b: u32) -> u32 {
    (r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn div_rint_rounds_halves_to_even() {
        assert_eq!(div_rint(1500, 1000), 2);
        assert_eq!(div_rint(2500, 1000), 2);
        assert_eq!(div_rint(2501, 1000), 3);
        assert_eq!(div_rint(2499, 1000), 2);
        assert_eq!(div_rint(0, 7), 0);
    }

    #[test]
    fn filter_names_parse_and_unknown_names_are_usage_errors() {
        assert_eq!(
            Ops::parse_filters("sepia, invert").unwrap(),
            vec![Filter::Sepia, Filter::Invert]
        );
        let err = Ops::parse_filters("sepia,blurry").unwrap_err();
        assert!(err.is_usage());
        assert!(err.to_string().contains("blurry"), "{err}");
        for empty in ["", " ", "sepia,,invert", "sepia,"] {
            let err = Ops::parse_filters(empty).unwrap_err();
            assert!(
                err.is_usage() && err.to_string().contains("empty filter name"),
                "{err}"
            );
        }
    }

    #[test]
    fn white_is_sepia_clamped_and_luma_255() {
        // 255 × (.393 + .769 + .189) = 344.5 → clamped to 255; L of white is 255.
        assert_eq!(sepia_sums(255, 255, 255)[0], 344_505);
        assert_eq!(luma(255, 255, 255), 255);
    }
}

//! The CPU twin of the GPU YUV pass (`shaders/yuv.wgsl`): YUYV and NV12 camera frames to RGBA8,
//! and the reverse (RGBA8 to YUYV / NV12) that the synthetic camera uses to make test frames.
//!
//! The conversion is BT.601 with limited ("studio") range, the one webcam drivers and the
//! JPEG-in-AVI of MJPEG cameras use, in this integer form (the same in `shaders/yuv.wgsl`):
//!
//! ```text
//! C = Y − 16,  D = U − 128,  E = V − 128
//! R = clamp((298·C + 409·E + 128) >> 8, 0, 255)            ≈ 1.164·C + 1.596·E
//! G = clamp((298·C − 100·D − 208·E + 128) >> 8, 0, 255)    ≈ 1.164·C − 0.391·D − 0.813·E
//! B = clamp((298·C + 516·D + 128) >> 8, 0, 255)            ≈ 1.164·C + 2.018·D
//! ```
//! (`>>` is an arithmetic shift: floor division by 256.) Alpha is 255. Being integer on both
//! sides, the GPU and the CPU agree exactly.
//!
//! The reverse, used only to make test frames:
//! ```text
//! Y = ((66·R + 129·G + 25·B + 128) >> 8) + 16
//! U = ((−38·R − 74·G + 112·B + 128) >> 8) + 128
//! V = ((112·R − 94·G − 18·B + 128) >> 8) + 128
//! ```
//! with U and V taken from the mean RGB of the pixels that share them (2 for YUYV, 2×2 for NV12).
//!
//! Layouts: YUYV packs two pixels in four bytes `Y0 U Y1 V` (so the width must be even); NV12 is
//! a full-size Y plane followed by one interleaved `U V` plane at half width and half height
//! (so width and height must be even).

use crate::error::{Error, Result};

/// One pixel of BT.601 limited-range YUV as RGB (the formula at the top of this module).
#[inline]
pub fn yuv_to_rgb(y: u8, u: u8, v: u8) -> [u8; 3] {
    let c = 298 * (i32::from(y) - 16);
    let d = i32::from(u) - 128;
    let e = i32::from(v) - 128;
    let clamp = |x: i32| (x >> 8).clamp(0, 255) as u8;
    [
        clamp(c + 409 * e + 128),
        clamp(c - 100 * d - 208 * e + 128),
        clamp(c + 516 * d + 128),
    ]
}

/// One RGB pixel as BT.601 limited-range YUV (the reverse formula at the top of this module).
#[inline]
pub fn rgb_to_yuv(r: u8, g: u8, b: u8) -> [u8; 3] {
    let (r, g, b) = (i32::from(r), i32::from(g), i32::from(b));
    [
        (((66 * r + 129 * g + 25 * b + 128) >> 8) + 16) as u8,
        (((-38 * r - 74 * g + 112 * b + 128) >> 8) + 128) as u8,
        (((112 * r - 94 * g - 18 * b + 128) >> 8) + 128) as u8,
    ]
}

/// The error for a frame whose size or data does not fit its layout.
fn layout_error(format: &str, reason: String) -> Error {
    Error::Decode {
        input: "live frame".to_string(),
        format: format.to_string(),
        reason,
    }
}

/// Bytes of a `width` × `height` YUYV frame, after checking that the width is even and the
/// frame is not empty.
///
/// # Errors
/// [`Error::Decode`] for a zero or odd width, or a zero height.
pub fn yuyv_len(width: u32, height: u32) -> Result<usize> {
    if width == 0 || height == 0 {
        return Err(layout_error("yuyv", format!("{width}×{height} is empty")));
    }
    if !width.is_multiple_of(2) {
        return Err(layout_error(
            "yuyv",
            format!("width {width} is odd: YUYV packs pixels in pairs and needs an even width"),
        ));
    }
    Ok(width as usize * height as usize * 2)
}

/// Bytes of a `width` × `height` NV12 frame (Y plane plus half-size UV plane), after checking
/// that both sides are even and the frame is not empty.
///
/// # Errors
/// [`Error::Decode`] for a zero or odd width or height.
pub fn nv12_len(width: u32, height: u32) -> Result<usize> {
    if width == 0 || height == 0 {
        return Err(layout_error("nv12", format!("{width}×{height} is empty")));
    }
    if !width.is_multiple_of(2) || !height.is_multiple_of(2) {
        return Err(layout_error(
            "nv12",
            format!(
                "{width}×{height} has an odd side: NV12 shares chroma between 2×2 pixels and needs an even width and height"
            ),
        ));
    }
    let pixels = width as usize * height as usize;
    Ok(pixels + pixels / 2)
}

/// Checks that `data` holds at least `needed` bytes (drivers may pad a buffer; the excess is
/// ignored) and returns exactly those.
fn frame_bytes<'a>(
    format: &str,
    data: &'a [u8],
    needed: usize,
    size: (u32, u32),
) -> Result<&'a [u8]> {
    data.get(..needed).ok_or_else(|| {
        layout_error(
            format,
            format!(
                "{} bytes for a {}×{} frame, which needs {needed}",
                data.len(),
                size.0,
                size.1
            ),
        )
    })
}

/// Converts a YUYV frame to RGBA8 (`width * height * 4` bytes).
///
/// # Errors
/// [`Error::Decode`] for an odd or zero width, a zero height, or fewer than
/// `width * height * 2` bytes (extra bytes are ignored).
pub fn yuyv_to_rgba(width: u32, height: u32, data: &[u8]) -> Result<Vec<u8>> {
    let needed = yuyv_len(width, height)?;
    let data = frame_bytes("yuyv", data, needed, (width, height))?;
    let mut out = Vec::with_capacity(width as usize * height as usize * 4);
    for quad in data.chunks_exact(4) {
        let (y0, u, y1, v) = (quad[0], quad[1], quad[2], quad[3]);
        let [r, g, b] = yuv_to_rgb(y0, u, v);
        out.extend_from_slice(&[r, g, b, 255]);
        let [r, g, b] = yuv_to_rgb(y1, u, v);
        out.extend_from_slice(&[r, g, b, 255]);
    }
    Ok(out)
}

/// Converts an NV12 frame to RGBA8 (`width * height * 4` bytes).
///
/// # Errors
/// [`Error::Decode`] for an odd or zero side, or fewer than `width * height * 3 / 2` bytes
/// (extra bytes are ignored).
pub fn nv12_to_rgba(width: u32, height: u32, data: &[u8]) -> Result<Vec<u8>> {
    let needed = nv12_len(width, height)?;
    let data = frame_bytes("nv12", data, needed, (width, height))?;
    let (w, h) = (width as usize, height as usize);
    let (luma, chroma) = data.split_at(w * h);
    let mut out = Vec::with_capacity(w * h * 4);
    for (row, ys) in luma.chunks_exact(w).enumerate() {
        let uvs = &chroma[(row / 2) * w..(row / 2 + 1) * w];
        for (pair, uv) in ys.chunks_exact(2).zip(uvs.chunks_exact(2)) {
            for &y in pair {
                let [r, g, b] = yuv_to_rgb(y, uv[0], uv[1]);
                out.extend_from_slice(&[r, g, b, 255]);
            }
        }
    }
    Ok(out)
}

/// Mean of `n` values, rounded half up.
#[inline]
fn mean(sum: u32, n: u32) -> u8 {
    ((sum + n / 2) / n) as u8
}

/// Encodes an RGBA8 frame (alpha ignored) as YUYV: U and V from the mean RGB of each pixel pair.
///
/// # Errors
/// [`Error::Decode`] for an odd or zero width, a zero height, or `rgba` shorter than
/// `width * height * 4` bytes.
pub fn rgba_to_yuyv(width: u32, height: u32, rgba: &[u8]) -> Result<Vec<u8>> {
    let needed = yuyv_len(width, height)?;
    let rgba = frame_bytes("rgba", rgba, needed * 2, (width, height))?;
    let mut out = Vec::with_capacity(needed);
    for pair in rgba.chunks_exact(8) {
        let (p, q) = (&pair[..4], &pair[4..]);
        let y0 = rgb_to_yuv(p[0], p[1], p[2])[0];
        let y1 = rgb_to_yuv(q[0], q[1], q[2])[0];
        let avg = |c: usize| mean(u32::from(p[c]) + u32::from(q[c]), 2);
        let [_, u, v] = rgb_to_yuv(avg(0), avg(1), avg(2));
        out.extend_from_slice(&[y0, u, y1, v]);
    }
    Ok(out)
}

/// Encodes an RGBA8 frame (alpha ignored) as NV12: U and V from the mean RGB of each 2×2 block.
///
/// # Errors
/// [`Error::Decode`] for an odd or zero side, or `rgba` shorter than `width * height * 4` bytes.
pub fn rgba_to_nv12(width: u32, height: u32, rgba: &[u8]) -> Result<Vec<u8>> {
    let needed = nv12_len(width, height)?;
    let (w, h) = (width as usize, height as usize);
    let rgba = frame_bytes("rgba", rgba, w * h * 4, (width, height))?;
    let mut out = Vec::with_capacity(needed);
    out.extend(
        rgba.chunks_exact(4)
            .map(|p| rgb_to_yuv(p[0], p[1], p[2])[0]),
    );
    for y in (0..h).step_by(2) {
        for x in (0..w).step_by(2) {
            let mut sum = [0u32; 3];
            for (dy, dx) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
                let at = ((y + dy) * w + x + dx) * 4;
                for (c, s) in sum.iter_mut().enumerate() {
                    *s += u32::from(rgba[at + c]);
                }
            }
            let [_, u, v] = rgb_to_yuv(mean(sum[0], 4), mean(sum[1], 4), mean(sum[2], 4));
            out.extend_from_slice(&[u, v]);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn black_and_white_reference_levels_map_to_the_rgb_extremes() {
        assert_eq!(yuv_to_rgb(16, 128, 128), [0, 0, 0]);
        assert_eq!(yuv_to_rgb(235, 128, 128), [255, 255, 255]);
        assert_eq!(rgb_to_yuv(0, 0, 0), [16, 128, 128]);
        assert_eq!(rgb_to_yuv(255, 255, 255), [235, 128, 128]);
    }

    #[test]
    fn out_of_gamut_values_clamp_instead_of_wrapping() {
        assert_eq!(yuv_to_rgb(0, 0, 0), [0, 135, 0]);
        assert_eq!(yuv_to_rgb(255, 255, 255), [255, 125, 255]);
    }

    #[test]
    fn rgb_round_trips_within_three() {
        for r in (0..=255).step_by(17) {
            for g in (0..=255).step_by(15) {
                for b in (0..=255).step_by(5) {
                    let [y, u, v] = rgb_to_yuv(r, g, b);
                    let back = yuv_to_rgb(y, u, v);
                    for (a, b) in [r, g, b].iter().zip(back) {
                        assert!(a.abs_diff(b) <= 3, "{r},{g},{b} -> {back:?}");
                    }
                }
            }
        }
    }
}

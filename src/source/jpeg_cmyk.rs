//! Four-component JPEGs (CMYK and Adobe's YCCK), which Pillow opens as `CMYK`.
//!
//! `image` turns them into RGB, so a `--mode CMYK` of such a file would be the RGB → CMYK
//! conversion (no black at all) instead of the file's own inks. Here zune-jpeg (the decoder
//! `image` uses) hands over the four decoded planes as they are stored, and they are taken
//! as Pillow takes them through libjpeg:
//! - libjpeg turns YCCK into CMYK with its fixed-point YCbCr → RGB tables, stored as
//!   `255 − R`, `255 − G`, `255 − B` (K unchanged);
//! - Pillow reads every four-component JPEG as `CMYK;I` (Adobe's inverted inks), so each
//!   stored value `s` is the ink `255 − s`.
//!
//! The frame's RGB is Pillow's CMYK → RGB of those inks, and the inks ride along as
//! [`SourceMode::Cmyk`], as for a CMYK TIFF.

use image::metadata::Orientation;
use image::{DynamicImage, ImageBuffer};
use zune_jpeg::JpegDecoder;
use zune_jpeg::zune_core::bytestream::ZCursor;
use zune_jpeg::zune_core::colorspace::ColorSpace;
use zune_jpeg::zune_core::options::DecoderOptions;

use super::DecodeLimits;
use super::file::check_header;
use crate::error::{Error, Result};
use crate::mode::pixel::cmyk_to_rgb;
use crate::mode::source::SourceMode;

fn jpeg_error(name: &str, reason: impl std::fmt::Display) -> Error {
    Error::Decode {
        input: name.to_string(),
        format: "jpeg".to_string(),
        reason: super::file::one_line(&reason.to_string()),
    }
}

/// Decodes the four-component JPEG `data`, whose frame header (SOF marker) starts at
/// `frame_header`: its RGB (Pillow's CMYK → RGB), its EXIF orientation, and its inks
/// (unturned).
pub(super) fn decode(
    name: &str,
    data: &[u8],
    frame_header: usize,
    limits: &DecodeLimits,
) -> Result<(DynamicImage, Orientation, SourceMode)> {
    if !first_component_is_largest(data.get(frame_header..).unwrap_or_default()) {
        // zune-jpeg sizes its upsampling by the first component and misplaces the rows of the
        // others: every ink but K came out up to 253 levels off.
        return Err(Error::Unsupported {
            input: name.to_string(),
            reason: "a four-component JPEG whose first component is subsampled while a later \
                     one is not (not decoded correctly by zune-jpeg)"
                .to_string(),
        });
    }
    let options = DecoderOptions::default()
        .set_strict_mode(false)
        .set_max_width(limits.max_width as usize)
        .set_max_height(limits.max_height as usize);
    let mut decoder = JpegDecoder::new_with_options(ZCursor::new(data), options);
    decoder.decode_headers().map_err(|e| jpeg_error(name, e))?;
    let (width, height) = decoder
        .dimensions()
        .ok_or_else(|| jpeg_error(name, "no image size in the header"))?;
    let stored = decoder
        .input_colorspace()
        .filter(|c| matches!(c, ColorSpace::CMYK | ColorSpace::YCCK))
        .ok_or_else(|| jpeg_error(name, "not a four-component JPEG"))?;
    let (width, height) = (width as u32, height as u32);
    check_header(
        name,
        (width, height),
        u64::from(width) * u64::from(height) * 7,
        limits,
    )?;
    let orientation = decoder
        .exif()
        .and_then(|exif| Orientation::from_exif_chunk(exif))
        .unwrap_or(Orientation::NoTransforms);
    // The planes as stored: the same colour space out as in is a plain copy.
    decoder.set_options(decoder.options().jpeg_set_out_colorspace(stored));
    let samples = decoder.decode().map_err(|e| jpeg_error(name, e))?;
    let inks: Vec<[u8; 4]> = if stored == ColorSpace::YCCK {
        let table = YccTable::new();
        samples
            .chunks_exact(4)
            .map(|p| table.inks(p[0], p[1], p[2], p[3]))
            .collect()
    } else {
        samples
            .chunks_exact(4)
            .map(|p| [255 - p[0], 255 - p[1], 255 - p[2], 255 - p[3]])
            .collect()
    };
    let rgb = inks.iter().flat_map(|&p| cmyk_to_rgb(p)).collect();
    let image = ImageBuffer::from_raw(width, height, rgb)
        .map(DynamicImage::ImageRgb8)
        .ok_or_else(|| jpeg_error(name, "the decoded planes do not fill the image"))?;
    Ok((image, orientation, SourceMode::Cmyk(inks)))
}

/// Whether no component of the frame header `sof` (from its FF Cn marker) is sampled more
/// finely than the first, horizontally or vertically. A header too short to say counts as
/// yes: the decoder reports it.
fn first_component_is_largest(sof: &[u8]) -> bool {
    let count = sof.get(9).map_or(0, |&n| usize::from(n));
    let factors: Vec<u8> = (0..count)
        .map_while(|i| sof.get(11 + 3 * i).copied())
        .collect();
    let Some(&first) = factors.first() else {
        return true;
    };
    factors
        .iter()
        .all(|&f| f >> 4 <= first >> 4 && f & 15 <= first & 15)
}

/// libjpeg's YCbCr → RGB tables (`jdcolor.c`, 16 fraction bits), for its YCCK → CMYK.
struct YccTable {
    cr_r: [i32; 256],
    cb_b: [i32; 256],
    cr_g: [i32; 256],
    cb_g: [i32; 256],
}

impl YccTable {
    const SCALE: u32 = 16;

    fn new() -> YccTable {
        let fix = |v: f64| (v * f64::from(1u32 << Self::SCALE) + 0.5) as i32;
        let half = 1i32 << (Self::SCALE - 1);
        let mut t = YccTable {
            cr_r: [0; 256],
            cb_b: [0; 256],
            cr_g: [0; 256],
            cb_g: [0; 256],
        };
        for i in 0..256 {
            let x = i as i32 - 128;
            t.cr_r[i] = (fix(1.402) * x + half) >> Self::SCALE;
            t.cb_b[i] = (fix(1.772) * x + half) >> Self::SCALE;
            t.cr_g[i] = -fix(0.71414) * x;
            t.cb_g[i] = -fix(0.34414) * x + half;
        }
        t
    }

    /// The inks Pillow reads from a stored YCCK sample: libjpeg stores `255 − R` (clamped)
    /// and K as is, and `CMYK;I` inverts all four, so the ink is the clamped RGB and 255 − K.
    fn inks(&self, y: u8, cb: u8, cr: u8, k: u8) -> [u8; 4] {
        let (y, cb, cr) = (i32::from(y), usize::from(cb), usize::from(cr));
        let clamp = |v: i32| v.clamp(0, 255) as u8;
        [
            clamp(y + self.cr_r[cr]),
            clamp(y + ((self.cb_g[cb] + self.cr_g[cr]) >> Self::SCALE)),
            clamp(y + self.cb_b[cb]),
            255 - k,
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_subsampled_first_component_is_told_apart() {
        // FF C0, length, precision, height, width, 4 components of (id, HV, table).
        let sof = |factors: [u8; 4]| {
            let mut v = vec![0xFF, 0xC0, 0, 20, 8, 0, 16, 0, 16, 4];
            for (id, f) in factors.into_iter().enumerate() {
                v.extend([id as u8, f, 0]);
            }
            v
        };
        assert!(first_component_is_largest(&sof([0x11; 4])));
        assert!(first_component_is_largest(&sof([0x22, 0x11, 0x11, 0x22])));
        assert!(!first_component_is_largest(&sof([0x11, 0x11, 0x11, 0x22])));
        assert!(!first_component_is_largest(&sof([0x21, 0x12, 0x11, 0x11])));
        assert!(first_component_is_largest(&[0xFF, 0xC0, 0]));
    }

    #[test]
    fn neutral_chroma_gives_the_luma_as_every_ink() {
        let t = YccTable::new();
        for y in [0u8, 1, 77, 128, 254, 255] {
            assert_eq!(t.inks(y, 128, 128, 40), [y, y, y, 215]);
        }
    }

    #[test]
    fn the_tables_round_as_libjpeg_does() {
        let t = YccTable::new();
        // Cr = 255: 1.402 × 127 = 178.05 → 178; Cb = 0: 1.772 × −128 = −226.8 → −227.
        assert_eq!(t.cr_r[255], 178);
        assert_eq!(t.cb_b[0], -227);
        // Saturated chroma clamps instead of wrapping.
        assert_eq!(t.inks(200, 128, 255, 0)[0], 255);
        assert_eq!(t.inks(10, 0, 128, 0)[2], 0);
    }
}

//! Converting from the mode a file opens in, as Pillow does.
//!
//! Pillow converts an image from its own mode, and frames reach shutter as RGB(A) pixels. For
//! most pairs the two agree (checked against Pillow for every source mode and target below);
//! these are the pairs where they do not, and what Pillow computes there:
//!
//! ```text
//! 1, L, LA (gray)  → P      index v, palette the 256-level gray ramp (no WEB palette, no dither)
//!                  → CMYK   (0, 0, 0, 255 − v)
//!                  → YCbCr  (v, 128, 128)
//! I;16 (16-bit gray) the same on v clipped to 255, and
//!                  → I, F   the 16-bit sample itself
//! I, F (32-bit TIFF) the same on v clipped to 0–255 (F truncated), and
//!                  → I, F   the sample itself (F → I truncated toward zero; NaN, ±inf and
//!                           values out of range give i32::MIN)
//! L + tRNS value   → P      as L, the value's entry transparent
//! CMYK (TIFF)      → CMYK   the samples themselves (the pixels are Pillow's CMYK → RGB)
//! P, PA (palette)  → P      the file's own indices and palette (a copy)
//!                  → 1      255 iff the entry's L1000 ≥ 128000: a threshold, never dithered
//! RGB + tRNS key   → P      the WEB palette conversion of the RGB pixels (not RGBA's
//!                           quantize), the key colour's entry (appended when the palette
//!                           lacks it) transparent
//! ```
//!
//! A [`SourceMode`] travels with each frame ([`Frame::source`]); the pass runs its ops as
//! usual, and these pairs are finished on the CPU ([`convert`]). Filters make a new RGB image,
//! so after any filter the frame converts from its RGB(A) pixels; the mirror keeps the mode
//! (the planes are mirrored with the pixels).

use super::pixel::{bit_nodither, l_pixel};
use super::{Dither, ImageMode, ModeData, ModeImage, Palette};
use crate::error::{Error, Result};
use crate::frame::Frame;
use crate::ops::Ops;

/// The Pillow mode a frame's source opened in, where that matters to [`ImageMode`]
/// conversion (see the [module](self) docs).
#[derive(Debug, Clone, Default, PartialEq)]
pub enum SourceMode {
    /// RGB or RGBA ([`Frame::has_alpha`] says which), and everything decoded as such: cameras,
    /// patterns, GIF frames, CMYK JPEG.
    #[default]
    Color,
    /// Pillow's `1`, `L` or `LA` (gray PNG, JPEG, TIFF, or a BMP with a gray-ramp palette):
    /// R = G = B in every pixel.
    Gray,
    /// A gray PNG with a tRNS value: Pillow's `L` with a transparency value, which its `P`
    /// keeps as that entry's transparency.
    GrayKey(u8),
    /// Pillow's `I;16` (16-bit gray PNG or TIFF): the samples, row-major. The RGBA pixels
    /// hold them clipped to 255, as Pillow's conversions to 8 bits do.
    Gray16(Vec<u16>),
    /// A 16-bit gray PNG with a tRNS value of at most 255: Pillow's `I;16` with that
    /// transparency, which its conversions compare with the samples clipped to 8 bits (so 255
    /// matches every sample from 255 up). The RGBA pixels have alpha 0 where it matches, and
    /// its `P` keeps it as that entry's transparency.
    Gray16Key(Vec<u16>, u8),
    /// Pillow's `P` (a palette PNG or BMP): the indices, row-major, and the palette, with the
    /// file's transparency as RGBA entries.
    Palette {
        /// The palette index of each pixel, row-major.
        indices: Vec<u8>,
        /// The file's palette: RGB entries, or RGBA when the file gives them transparency
        /// (a PNG's tRNS).
        palette: Palette,
    },
    /// Pillow's `I` (a 32-bit integer TIFF): the samples, row-major. The RGBA pixels hold
    /// them clipped to 0–255, as Pillow's `I` → `L` does.
    Int32(Vec<i32>),
    /// Pillow's `F` (a 32-bit float TIFF): the samples, row-major. The RGBA pixels hold them
    /// truncated and clipped to 0–255, as Pillow's `F` → `L` does.
    Float32(Vec<f32>),
    /// Pillow's `CMYK` (a CMYK TIFF): the samples, row-major. The RGBA pixels hold Pillow's
    /// CMYK → RGB of them.
    Cmyk(Vec<[u8; 4]>),
    /// Pillow's `RGB` with a transparency colour (an 8-bit RGB PNG with a tRNS chunk): the
    /// RGBA pixels have alpha 0 where the colour is, as Pillow's `convert("RGBA")` gives.
    ColorKey([u8; 3]),
}

impl SourceMode {
    /// The transparency colour an image that opens as this source keeps through Pillow's
    /// `convert(mode)` (its `info["transparency"]`), as samples of `mode`: one for `L`,
    /// three for `RGB`. Pillow keeps an RGB or gray file's tRNS colour, a 16-bit gray one's in
    /// `L`, and a palette file's when one entry is transparent and the others opaque (its
    /// colour), each converted as a pixel is (`L` by [`l_pixel`]); other modes have none
    /// here (`P` holds it in its palette, `RGBA` as alpha). Filters make a new image, with no
    /// transparency colour: by then the source is [`SourceMode::Color`].
    pub fn transparency_key(&self, mode: ImageMode) -> Option<Vec<u8>> {
        let rgb = match self {
            SourceMode::ColorKey(key) => *key,
            SourceMode::GrayKey(key) => [*key; 3],
            // Pillow keeps the 16-bit file's key unconverted: its `RGB` cannot save it.
            SourceMode::Gray16Key(_, key) if mode == ImageMode::L => [*key; 3],
            SourceMode::Palette {
                palette: Palette::Rgba(entries),
                ..
            } => {
                let mut transparent = entries.iter().filter(|e| e[3] != 255);
                match (transparent.next(), transparent.next()) {
                    (Some(&[r, g, b, 0]), None) => [r, g, b],
                    _ => return None,
                }
            }
            _ => return None,
        };
        match mode {
            ImageMode::L => Some(vec![l_pixel(rgb[0], rgb[1], rgb[2])]),
            ImageMode::Rgb => Some(rgb.to_vec()),
            _ => None,
        }
    }

    /// True when Pillow's conversion of this source to `mode` differs from converting its
    /// RGB(A) pixels, so [`convert`] must do it.
    pub fn converts_itself(&self, mode: ImageMode) -> bool {
        use ImageMode::{Cmyk, F, I, One, P, YCbCr};
        match self {
            SourceMode::Color => false,
            SourceMode::Gray | SourceMode::GrayKey(_) => matches!(mode, P | Cmyk | YCbCr),
            SourceMode::Gray16(_)
            | SourceMode::Gray16Key(..)
            | SourceMode::Int32(_)
            | SourceMode::Float32(_) => {
                matches!(mode, P | Cmyk | YCbCr | I | F)
            }
            SourceMode::Palette { .. } => matches!(mode, P | One),
            SourceMode::ColorKey(_) => mode == P,
            SourceMode::Cmyk(_) => mode == Cmyk,
        }
    }

    /// Pillow's name for the mode (`RGB` stands for both RGB and RGBA here).
    pub fn name(&self) -> &'static str {
        match self {
            SourceMode::Color | SourceMode::ColorKey(_) => "RGB",
            SourceMode::Gray | SourceMode::GrayKey(_) => "L",
            SourceMode::Cmyk(_) => "CMYK",
            SourceMode::Gray16(_) | SourceMode::Gray16Key(..) => "I;16",
            SourceMode::Int32(_) => "I",
            SourceMode::Float32(_) => "F",
            SourceMode::Palette { .. } => "P",
        }
    }

    /// The length of the per-pixel plane this mode carries, if it has one.
    fn plane_len(&self) -> Option<usize> {
        match self {
            SourceMode::Gray16(samples) | SourceMode::Gray16Key(samples, _) => Some(samples.len()),
            SourceMode::Int32(samples) => Some(samples.len()),
            SourceMode::Float32(samples) => Some(samples.len()),
            SourceMode::Cmyk(samples) => Some(samples.len()),
            SourceMode::Palette { indices, .. } => Some(indices.len()),
            SourceMode::Color
            | SourceMode::Gray
            | SourceMode::GrayKey(_)
            | SourceMode::ColorKey(_) => None,
        }
    }
}

/// The gray ramp Pillow gives `L` → `P`: entry i is (i, i, i).
pub fn gray_palette() -> Palette {
    Palette::Rgb((0..=255u8).map(|v| [v, v, v]).collect())
}

/// Brings `frame.source` in line with what `ops` do to the pixels, before they are run:
/// after a filter the frame is RGB(A) ([`SourceMode::Color`]); the mirror mirrors the planes.
///
/// # Errors
/// [`Error::Usage`] naming the frame when a plane does not hold one value per pixel.
pub(crate) fn settle(frame: &mut Frame, ops: &Ops) -> Result<()> {
    if let Some(len) = frame.source.plane_len()
        && len != frame.pixels()
    {
        return Err(Error::Usage(format!(
            "frame {}: its {} source holds {len} values for {}×{} pixels",
            frame.meta.seq,
            frame.source.name(),
            frame.width,
            frame.height
        )));
    }
    if !ops.filters.is_empty() {
        frame.source = SourceMode::Color;
    } else if ops.mirror {
        let width = frame.width as usize;
        match &mut frame.source {
            SourceMode::Gray16(samples) | SourceMode::Gray16Key(samples, _) => {
                mirror_rows(samples, width);
            }
            SourceMode::Int32(samples) => mirror_rows(samples, width),
            SourceMode::Float32(samples) => mirror_rows(samples, width),
            SourceMode::Cmyk(samples) => mirror_rows(samples, width),
            SourceMode::Palette { indices, .. } => mirror_rows(indices, width),
            SourceMode::Color
            | SourceMode::Gray
            | SourceMode::GrayKey(_)
            | SourceMode::ColorKey(_) => {}
        }
    }
    Ok(())
}

fn mirror_rows<T>(plane: &mut [T], width: usize) {
    if width > 0 {
        plane.chunks_exact_mut(width).for_each(<[T]>::reverse);
    }
}

/// Pillow's conversion of `frame` from its source's own mode to `mode` (with `dither` where
/// that applies), or `None` when that equals converting its RGB(A) pixels
/// ([`SourceMode::converts_itself`] is false). `frame.rgba` holds the pixels after the ops,
/// and its planes have been mirrored with them.
///
/// # Panics
/// If `frame.rgba` does not hold `width × height × 4` bytes ([`Frame::new`] takes any
/// buffer; a run and [`Processor`](crate::backend::Processor) refuse such a frame).
pub fn convert(mode: ImageMode, dither: Dither, frame: &Frame) -> Option<ModeImage> {
    if !frame.source.converts_itself(mode) {
        return None;
    }
    if let SourceMode::ColorKey(key) = frame.source {
        return Some(keyed_palette(dither, frame, key));
    }
    let px: &[[u8; 4]] = bytemuck::cast_slice(&frame.rgba);
    let gray = || px.iter().map(|p| p[0]);
    let (data, palette) = match (&frame.source, mode) {
        (SourceMode::Gray16(samples) | SourceMode::Gray16Key(samples, _), ImageMode::I) => (
            ModeData::I32(samples.iter().map(|&v| i32::from(v)).collect()),
            None,
        ),
        (SourceMode::Gray16(samples) | SourceMode::Gray16Key(samples, _), ImageMode::F) => (
            ModeData::F32(samples.iter().map(|&v| f32::from(v)).collect()),
            None,
        ),
        (SourceMode::Int32(samples), ImageMode::I) => (ModeData::I32(samples.clone()), None),
        (SourceMode::Int32(samples), ImageMode::F) => (
            ModeData::F32(samples.iter().map(|&v| v as f32).collect()),
            None,
        ),
        (SourceMode::Float32(samples), ImageMode::I) => (
            ModeData::I32(samples.iter().map(|&v| f_to_i(v)).collect()),
            None,
        ),
        (SourceMode::Cmyk(samples), _) => (ModeData::U8(samples.concat()), None),
        (SourceMode::Float32(samples), ImageMode::F) => (ModeData::F32(samples.clone()), None),
        (SourceMode::Palette { indices, palette }, ImageMode::P) => {
            (ModeData::U8(indices.clone()), Some(palette.clone()))
        }
        (SourceMode::Palette { .. }, _) => (
            ModeData::U8(px.iter().map(|p| bit_nodither(p[0], p[1], p[2])).collect()),
            None,
        ),
        (SourceMode::GrayKey(key) | SourceMode::Gray16Key(_, key), ImageMode::P) => {
            let Palette::Rgb(ramp) = gray_palette() else {
                unreachable!("the gray ramp is RGB")
            };
            let entries = ramp
                .iter()
                .zip(0..)
                .map(|(&[r, g, b], i): (&[u8; 3], u16)| {
                    [r, g, b, if i == u16::from(*key) { 0 } else { 255 }]
                })
                .collect();
            (ModeData::U8(gray().collect()), Some(Palette::Rgba(entries)))
        }
        (_, ImageMode::P) => (ModeData::U8(gray().collect()), Some(gray_palette())),
        (_, ImageMode::Cmyk) => (
            ModeData::U8(gray().flat_map(|v| [0, 0, 0, 255 - v]).collect()),
            None,
        ),
        (_, _) => (
            ModeData::U8(gray().flat_map(|v| [v, 128, 128]).collect()),
            None,
        ),
    };
    Some(ModeImage {
        width: frame.width,
        height: frame.height,
        mode,
        data,
        palette,
    })
}

/// Pillow's F → I: truncated toward zero; NaN, infinities and values out of range give
/// `i32::MIN` (the C cast's result on x86, where Pillow's tests run).
fn f_to_i(v: f32) -> i32 {
    const LIMIT: f32 = 2_147_483_648.0; // 2^31, exact in f32
    if v.is_finite() && (-LIMIT..LIMIT).contains(&v) {
        v as i32
    } else {
        i32::MIN
    }
}

/// `P` from RGB with a transparency colour: the WEB conversion of the RGB pixels, and the
/// palette with the key's entry transparent (Pillow's `palette.getcolor(key)`: the first
/// entry of that colour, else a new one at the end).
fn keyed_palette(dither: Dither, frame: &Frame, key: [u8; 3]) -> ModeImage {
    let mut image = super::cpu::convert(
        ImageMode::P,
        dither,
        frame.width,
        frame.height,
        &frame.rgba,
        false,
    );
    let Some(Palette::Rgb(entries)) = &image.palette else {
        return image; // not reached: P from RGB has the WEB palette
    };
    let mut entries: Vec<[u8; 4]> = entries.iter().map(|&[r, g, b]| [r, g, b, 255]).collect();
    match entries.iter().position(|e| e[..3] == key) {
        Some(at) => entries[at][3] = 0,
        None => entries.push([key[0], key[1], key[2], 0]),
    }
    image.palette = Some(Palette::Rgba(entries));
    image
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::FrameMeta;
    use crate::ops::Filter;

    fn gray_frame(values: &[u8], width: u32, source: SourceMode) -> Frame {
        let rgba = values.iter().flat_map(|&v| [v, v, v, 255]).collect();
        let height = values.len() as u32 / width;
        let mut frame = Frame::new(width, height, rgba, false, FrameMeta::still(0, 0));
        frame.source = source;
        frame
    }

    #[test]
    fn gray_sources_convert_to_p_cmyk_and_ycbcr_from_the_gray_value() {
        let frame = gray_frame(&[0, 1, 127, 200], 2, SourceMode::Gray);
        let p = convert(ImageMode::P, Dither::FloydSteinberg, &frame).expect("L → P is its own");
        assert_eq!(p.data, ModeData::U8(vec![0, 1, 127, 200]));
        assert_eq!(p.palette.as_ref().map(Palette::len), Some(256));
        let cmyk =
            convert(ImageMode::Cmyk, Dither::FloydSteinberg, &frame).expect("L → CMYK is its own");
        assert_eq!(
            cmyk.as_bytes()[..8],
            [0, 0, 0, 255, 0, 0, 0, 254],
            "K = 255 − v, C = M = Y = 0"
        );
        let ycc = convert(ImageMode::YCbCr, Dither::FloydSteinberg, &frame)
            .expect("L → YCbCr is its own");
        assert_eq!(ycc.as_bytes()[6..], [127, 128, 128, 200, 128, 128]);
        for mode in [ImageMode::L, ImageMode::Rgb, ImageMode::I, ImageMode::One] {
            assert!(
                convert(mode, Dither::FloydSteinberg, &frame).is_none(),
                "{mode} from L is RGB's"
            );
        }
    }

    #[test]
    fn sixteen_bit_gray_keeps_its_samples_in_i_and_f() {
        let samples = vec![0, 300, 65535, 7];
        let frame = gray_frame(&[0, 255, 255, 7], 4, SourceMode::Gray16(samples));
        let i = convert(ImageMode::I, Dither::FloydSteinberg, &frame).expect("I;16 → I is its own");
        assert_eq!(i.data, ModeData::I32(vec![0, 300, 65535, 7]));
        let f = convert(ImageMode::F, Dither::FloydSteinberg, &frame).expect("I;16 → F is its own");
        assert_eq!(f.data, ModeData::F32(vec![0.0, 300.0, 65535.0, 7.0]));
        assert!(convert(ImageMode::L, Dither::FloydSteinberg, &frame).is_none());
    }

    #[test]
    fn palette_sources_keep_their_indices_and_threshold_to_1() {
        let palette = Palette::Rgb(vec![[0, 0, 0], [130, 130, 130], [120, 120, 120]]);
        let indices = vec![2, 1, 0, 1];
        let rgba = indices
            .iter()
            .flat_map(|&i| {
                let Palette::Rgb(p) = &palette else {
                    unreachable!()
                };
                let [r, g, b] = p[usize::from(i)];
                [r, g, b, 255]
            })
            .collect();
        let mut frame = Frame::new(2, 2, rgba, false, FrameMeta::still(0, 0));
        frame.source = SourceMode::Palette {
            indices: indices.clone(),
            palette: palette.clone(),
        };
        let p = convert(ImageMode::P, Dither::FloydSteinberg, &frame).expect("P → P is a copy");
        assert_eq!((p.data, p.palette), (ModeData::U8(indices), Some(palette)));
        let one =
            convert(ImageMode::One, Dither::FloydSteinberg, &frame).expect("P → 1 thresholds");
        assert_eq!(one.data, ModeData::U8(vec![0, 255, 0, 255]));
    }

    #[test]
    fn filters_make_the_frame_rgb_and_the_mirror_mirrors_the_planes() {
        let source = SourceMode::Gray16(vec![1, 2, 3, 4, 5, 6]);
        let mut frame = gray_frame(&[1, 2, 3, 4, 5, 6], 3, source);
        settle(&mut frame, &Ops::new(true, vec![])).expect("planes fit");
        assert_eq!(frame.source, SourceMode::Gray16(vec![3, 2, 1, 6, 5, 4]));
        settle(&mut frame, &Ops::new(false, vec![Filter::Invert])).expect("planes fit");
        assert_eq!(frame.source, SourceMode::Color);
    }

    #[test]
    fn a_plane_of_the_wrong_length_is_a_usage_error_naming_the_frame() {
        let mut frame = gray_frame(&[1, 2], 2, SourceMode::Gray16(vec![1]));
        let err = settle(&mut frame, &Ops::new(false, vec![])).unwrap_err();
        assert!(
            matches!(&err, Error::Usage(m) if m.contains("frame 0") && m.contains("I;16")),
            "{err}"
        );
    }
}

//! Pillow's `image_mode`: what `gradio.Image` hands a numpy user after `im.convert(mode)`.
//!
//! This module names the eleven modes, the array each one becomes (`np.asarray(im)`), and the
//! typed result of converting one frame ([`ModeImage`]). The arithmetic lives in [`pixel`]
//! (point-wise formulas, shared with the GPU twin), [`cpu`] (the reference converter and the
//! Floyd–Steinberg passes) and [`octree`] (RGBA → P). Every rule reproduces Pillow 13.0 bit for
//! bit (checked against Pillow on all 2^24 RGB colours), LAB excepted (±1, see below):
//!
//! ```text
//! L1000(R,G,B) = R·299 + G·587 + B·114                               (0 ..= 255000)
//! L      (R·19595 + G·38470 + B·7471 + 0x8000) >> 16                 (not L1000/1000)
//! I      the L value widened to i32
//! F      f32(L1000) / 1000.0f32, correctly rounded (the unrounded luma, not f32(L)).
//!        GPU note: L1000·0.001 is wrong for 152,184 values; exact with two fma:
//!        q = L·0.001; r = fma(−q, 1000, L); q = fma(r, 0.001, q)       (see pixel::f_value_fma)
//! 1      dither none: 255 iff L1000 ≥ 128000, else 0
//!        Floyd–Steinberg: v = clip8(L1000/1000 + (carry + err[x+1])/16)   (C division)
//!        white iff v > 128; one left-to-right pass per row, no serpentine
//! P      WEB palette: 226 entries, 0..=9 black, then a 6×6×6 cube of levels 0,51,…,255,
//!        red fastest: idx = 10 + lr + 6·lg + 36·lb.
//!        nearest entry: q = v & 0xFC; lvl = (2q + 51) / 102; idx 10 (black) becomes 0
//!        default: per-channel Floyd–Steinberg on that lookup; end-of-row quirk: the blue
//!        error goes into all three channels of err[W]
//! RGB    copy (alpha dropped, no compositing)
//! RGBA   A = 255 from RGB sources, kept from RGBA sources
//! CMYK   255−R, 255−G, 255−B, 0
//! YCbCr  T_c[v] = floor((c·64·v + 50000) / 100000) + (c < 0 && v > 0),  c = coef·1e5
//!        Y = (T_Y_R[R] + T_Y_G[G] + T_Y_B[B]) >> 6;  Cb, Cr: (Σ >> 6) + 128   (>> floors)
//! HSV    V = max; H = S = 0 if max == min; cr = f32(max − min);
//!        S = trunc(f64(f32(cr / max)) · 255); rc, gc, bc = f32((max − c) / cr);
//!        h = bc − gc (R max, checked first) | f32(2 + rc − bc in f64) (G max)
//!          | f32(4 + gc − rc in f64) (B max);  h = f32(fmod(h/6 + 1, 1) in f64);
//!        H = trunc(f64(h) · 255).  All-f32 is off by one on 72,036 colours: the GPU uses
//!        pixel::hsv_tables (H by max channel and the two gaps, S by (cr, max)).
//! LAB    LittleCMS sRGB → Lab (D50, perceptual). Here: analytic sRGB → linear → XYZ (D50,
//!        Bradford matrix) → Lab in f64, stored L = round(L*·255/100), a, b = round(a*), round(b*)
//!        as two's-complement bytes (np.asarray / tobytes form). Within ±1 of LittleCMS.
//!        The CPU uses pixel::lab_tables (table sums and Newton cube roots, the reference
//!        where a value is within 1e-9 of rounding), equal to pixel::lab_pixel on all colours.
//! RGBA source: alpha ignored by every mode but RGBA; `1` and P(dither) as from RGB, except
//!        P, which is Pillow's quantize(256) fast octree (RGBA palette, no dither): see octree.
//! ```
//!
//! Files that open in another mode (gray, palette, 16- and 32-bit gray, CMYK) convert from it
//! where Pillow's result differs from their RGB(A) pixels': see [`source`].

pub mod cpu;
pub mod octree;
pub mod pixel;
pub mod source;

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use image::{DynamicImage, ImageBuffer};
use ndarray::{ArrayD, ArrayViewD, IxDyn};

use crate::error::Error;

/// One of Pillow's image modes that `gradio.Image(image_mode=...)` accepts; `RGB` by
/// default, as in Gradio.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ImageMode {
    /// Bilevel: `bool` per pixel (stored here as 0 / 255 bytes, Pillow's in-memory form).
    One,
    /// 8-bit luma.
    L,
    /// 8-bit palette indices (WEB palette, or an octree palette for RGBA sources).
    P,
    /// 8-bit red, green, blue.
    #[default]
    Rgb,
    /// 8-bit red, green, blue, alpha.
    Rgba,
    /// 8-bit cyan, magenta, yellow, black (plain inversion, K = 0).
    Cmyk,
    /// 8-bit JFIF Y, Cb, Cr.
    YCbCr,
    /// 8-bit CIE L*a*b* (D50); a and b are two's-complement bytes.
    Lab,
    /// 8-bit hue, saturation, value.
    Hsv,
    /// 32-bit signed integer luma.
    I,
    /// 32-bit float luma (unrounded).
    F,
}

/// The element type of the array a numpy user gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dtype {
    /// numpy's `bool` (mode `1`).
    Bool,
    /// numpy's `uint8` (every mode but `1`, `I` and `F`).
    U8,
    /// numpy's `int32` (mode `I`).
    I32,
    /// numpy's `float32` (mode `F`).
    F32,
}

impl Dtype {
    /// numpy's name for the dtype (`bool`, `uint8`, `int32`, `float32`).
    pub fn numpy_name(self) -> &'static str {
        match self {
            Dtype::Bool => "bool",
            Dtype::U8 => "uint8",
            Dtype::I32 => "int32",
            Dtype::F32 => "float32",
        }
    }

    /// Bytes per element in [`ModeImage::as_bytes`] (`bool` is one byte, 0 or 255).
    pub fn size(self) -> usize {
        match self {
            Dtype::Bool | Dtype::U8 => 1,
            Dtype::I32 | Dtype::F32 => 4,
        }
    }
}

/// How much of the image one output pixel depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Locality {
    /// Only its own input pixel: one fused GPU pass.
    Pointwise,
    /// Its left neighbour and the row above (Floyd–Steinberg): serial or wavefront order.
    Neighbourhood,
    /// The whole image (RGBA → P builds its palette from a histogram of every pixel).
    Global,
}

impl ImageMode {
    /// Every mode, in the order `--help` lists them.
    pub const ALL: [ImageMode; 11] = [
        ImageMode::One,
        ImageMode::L,
        ImageMode::P,
        ImageMode::Rgb,
        ImageMode::Rgba,
        ImageMode::Cmyk,
        ImageMode::YCbCr,
        ImageMode::Lab,
        ImageMode::Hsv,
        ImageMode::I,
        ImageMode::F,
    ];

    /// The name exactly as Pillow spells it (`"1"`, `"YCbCr"`, `"LAB"`, …).
    pub fn name(self) -> &'static str {
        match self {
            ImageMode::One => "1",
            ImageMode::L => "L",
            ImageMode::P => "P",
            ImageMode::Rgb => "RGB",
            ImageMode::Rgba => "RGBA",
            ImageMode::Cmyk => "CMYK",
            ImageMode::YCbCr => "YCbCr",
            ImageMode::Lab => "LAB",
            ImageMode::Hsv => "HSV",
            ImageMode::I => "I",
            ImageMode::F => "F",
        }
    }

    /// Pillow's `getbands()`.
    pub fn band_names(self) -> &'static [&'static str] {
        match self {
            ImageMode::One => &["1"],
            ImageMode::L => &["L"],
            ImageMode::P => &["P"],
            ImageMode::Rgb => &["R", "G", "B"],
            ImageMode::Rgba => &["R", "G", "B", "A"],
            ImageMode::Cmyk => &["C", "M", "Y", "K"],
            ImageMode::YCbCr => &["Y", "Cb", "Cr"],
            ImageMode::Lab => &["L", "A", "B"],
            ImageMode::Hsv => &["H", "S", "V"],
            ImageMode::I => &["I"],
            ImageMode::F => &["F"],
        }
    }

    /// Number of channels per pixel.
    pub fn bands(self) -> usize {
        self.band_names().len()
    }

    /// Element type of `np.asarray(im)`.
    pub fn dtype(self) -> Dtype {
        match self {
            ImageMode::One => Dtype::Bool,
            ImageMode::I => Dtype::I32,
            ImageMode::F => Dtype::F32,
            _ => Dtype::U8,
        }
    }

    /// Shape of `np.asarray(im)`: `[H, W]` for one band, `[H, W, bands]` otherwise.
    pub fn shape(self, height: usize, width: usize) -> Vec<usize> {
        match self.bands() {
            1 => vec![height, width],
            n => vec![height, width, n],
        }
    }

    /// True when each output pixel depends only on its own input pixel, for an RGB source.
    /// `1` and `P` with Floyd–Steinberg are not; see [`ImageMode::locality`] for RGBA sources,
    /// where `P` is a whole-image operation whatever the dither.
    pub fn is_pointwise(self, dither: Dither) -> bool {
        !(self.takes_dither() && dither == Dither::FloydSteinberg)
    }

    /// What one output pixel depends on, given the dither and whether the source has alpha.
    pub fn locality(self, dither: Dither, has_alpha: bool) -> Locality {
        if self == ImageMode::P && has_alpha {
            Locality::Global
        } else if self.is_pointwise(dither) {
            Locality::Pointwise
        } else {
            Locality::Neighbourhood
        }
    }

    /// True for the modes Pillow dithers (`1` and `P`).
    pub fn takes_dither(self) -> bool {
        matches!(self, ImageMode::One | ImageMode::P)
    }

    /// The dither to use: `requested` if given and the mode takes one, Floyd–Steinberg (Pillow's
    /// default) if not given.
    ///
    /// # Errors
    /// [`Error::Usage`] when a dither is requested for a mode other than `1` or `P`.
    pub fn dither_for(self, requested: Option<Dither>) -> Result<Dither, Error> {
        match requested {
            Some(d) if !self.takes_dither() => Err(Error::Usage(format!(
                "dither {d} (--dither): only modes 1 and P are dithered, not '{self}'"
            ))),
            Some(d) => Ok(d),
            None => Ok(Dither::FloydSteinberg),
        }
    }
}

impl fmt::Display for ImageMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ImageMode {
    type Err = Error;

    /// Pillow's spelling (case-sensitive), or its all-lowercase form (`rgb`, `ycbcr`, `lab`).
    fn from_str(s: &str) -> Result<Self, Error> {
        let s = s.trim();
        ImageMode::ALL
            .into_iter()
            .find(|m| m.name() == s || m.name().to_ascii_lowercase() == s)
            .ok_or_else(|| {
                let names: Vec<_> = ImageMode::ALL.iter().map(|m| m.name()).collect();
                Error::Usage(format!(
                    "mode (--mode): unknown mode '{s}' (expected one of: {})",
                    names.join(", ")
                ))
            })
    }
}

/// Error diffusion for `1` and `P`, as Pillow's `dither=` argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Dither {
    /// Pillow's default: Floyd–Steinberg, one left-to-right pass per row.
    #[default]
    FloydSteinberg,
    /// `Image.Dither.NONE`: threshold (`1`) or nearest palette entry (`P`).
    None,
}

impl Dither {
    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Dither::FloydSteinberg => "fs",
            Dither::None => "none",
        }
    }
}

impl fmt::Display for Dither {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Dither {
    type Err = Error;

    /// `fs` (also `floyd-steinberg`, `floydsteinberg`) or `none`, any case.
    fn from_str(s: &str) -> Result<Self, Error> {
        match s.trim().to_ascii_lowercase().as_str() {
            "fs" | "floyd-steinberg" | "floydsteinberg" => Ok(Dither::FloydSteinberg),
            "none" => Ok(Dither::None),
            _ => Err(Error::Usage(format!(
                "dither (--dither): unknown dither '{s}' (expected one of: fs, none)"
            ))),
        }
    }
}

/// The converted pixels, row-major, bands interleaved (`H × W × bands` elements).
#[derive(Debug, Clone, PartialEq)]
pub enum ModeData {
    /// `1` (0 or 255 per pixel), L, P, RGB, RGBA, CMYK, YCbCr, LAB (tobytes form), HSV.
    U8(Vec<u8>),
    /// I.
    I32(Vec<i32>),
    /// F.
    F32(Vec<f32>),
}

impl ModeData {
    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            ModeData::U8(v) => v.len(),
            ModeData::I32(v) => v.len(),
            ModeData::F32(v) => v.len(),
        }
    }

    /// True when there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The palette of a `P` image, in Pillow's `getpalette(rawmode=palette.mode)` order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Palette {
    /// RGB entries (the 226-entry WEB palette of RGB sources).
    Rgb(Vec<[u8; 3]>),
    /// RGBA entries (the 256-entry octree palette of RGBA sources).
    Rgba(Vec<[u8; 4]>),
}

impl Palette {
    /// Pillow's `im.palette.mode`: `"RGB"` or `"RGBA"`.
    pub fn mode(&self) -> &'static str {
        match self {
            Palette::Rgb(_) => "RGB",
            Palette::Rgba(_) => "RGBA",
        }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        match self {
            Palette::Rgb(p) => p.len(),
            Palette::Rgba(p) => p.len(),
        }
    }

    /// True when the palette has no entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The entries flattened, as `getpalette(rawmode=mode)` returns them.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Palette::Rgb(p) => p.as_flattened(),
            Palette::Rgba(p) => p.as_flattened(),
        }
    }
}

/// `np.asarray(im)` for one converted frame: shape `[H, W]` or `[H, W, bands]`.
#[derive(Debug, Clone, PartialEq)]
pub enum FrameArray {
    /// Mode `1`: shape `[H, W]`.
    Bool(ArrayD<bool>),
    /// The 8-bit modes (L, P, RGB, RGBA, CMYK, YCbCr, LAB, HSV): `[H, W]` for L and P,
    /// `[H, W, bands]` for the others.
    U8(ArrayD<u8>),
    /// Mode `I`: shape `[H, W]`.
    I32(ArrayD<i32>),
    /// Mode `F`: shape `[H, W]`.
    F32(ArrayD<f32>),
}

impl FrameArray {
    /// The array's shape.
    pub fn shape(&self) -> &[usize] {
        match self {
            FrameArray::Bool(a) => a.shape(),
            FrameArray::U8(a) => a.shape(),
            FrameArray::I32(a) => a.shape(),
            FrameArray::F32(a) => a.shape(),
        }
    }

    /// The array's element type.
    pub fn dtype(&self) -> Dtype {
        match self {
            FrameArray::Bool(_) => Dtype::Bool,
            FrameArray::U8(_) => Dtype::U8,
            FrameArray::I32(_) => Dtype::I32,
            FrameArray::F32(_) => Dtype::F32,
        }
    }
}

/// `np.asarray(im)` for one converted frame, borrowed from it: no pixel is copied, except
/// for mode `1`, whose 0 / 255 bytes become `bool`s. See [`FrameArray`] for the owned one.
#[derive(Debug, Clone, PartialEq)]
pub enum FrameArrayView<'a> {
    /// Mode `1`: shape `[H, W]`, owned (made from the frame's 0 / 255 bytes).
    Bool(ArrayD<bool>),
    /// The 8-bit modes (L, P, RGB, RGBA, CMYK, YCbCr, LAB, HSV): `[H, W]` for L and P,
    /// `[H, W, bands]` for the others.
    U8(ArrayViewD<'a, u8>),
    /// Mode `I`: shape `[H, W]`.
    I32(ArrayViewD<'a, i32>),
    /// Mode `F`: shape `[H, W]`.
    F32(ArrayViewD<'a, f32>),
}

impl FrameArrayView<'_> {
    /// The array's shape.
    pub fn shape(&self) -> &[usize] {
        match self {
            FrameArrayView::Bool(a) => a.shape(),
            FrameArrayView::U8(a) => a.shape(),
            FrameArrayView::I32(a) => a.shape(),
            FrameArrayView::F32(a) => a.shape(),
        }
    }

    /// The array's element type.
    pub fn dtype(&self) -> Dtype {
        match self {
            FrameArrayView::Bool(_) => Dtype::Bool,
            FrameArrayView::U8(_) => Dtype::U8,
            FrameArrayView::I32(_) => Dtype::I32,
            FrameArrayView::F32(_) => Dtype::F32,
        }
    }

    /// The same array, owning its elements (standard layout).
    pub fn to_owned(&self) -> FrameArray {
        match self {
            FrameArrayView::Bool(a) => FrameArray::Bool(a.clone()),
            FrameArrayView::U8(a) => FrameArray::U8(a.as_standard_layout().into_owned()),
            FrameArrayView::I32(a) => FrameArray::I32(a.as_standard_layout().into_owned()),
            FrameArrayView::F32(a) => FrameArray::F32(a.as_standard_layout().into_owned()),
        }
    }
}

/// One frame converted to an [`ImageMode`].
#[derive(Debug, Clone, PartialEq)]
pub struct ModeImage {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// The mode converted to: it sets `data`'s element type and bands.
    pub mode: ImageMode,
    /// `H × W × bands` elements. `1` stores 0 / 255 bytes; LAB stores a and b as
    /// two's-complement bytes (what `np.asarray` shows, not `getpixel`'s +128 form).
    pub data: ModeData,
    /// The palette, for `P` only.
    pub palette: Option<Palette>,
}

impl ModeImage {
    /// Shape of `np.asarray(im)`.
    pub fn shape(&self) -> Vec<usize> {
        self.mode.shape(self.height as usize, self.width as usize)
    }

    /// The pixels in the golden files' layout: row-major interleaved, little-endian for I and F,
    /// one byte (0 or 255) per pixel for `1` (Pillow's in-memory form; `Image.tobytes()` would
    /// pack 8 pixels per byte), LAB's a and b as two's-complement bytes.
    pub fn as_bytes(&self) -> Cow<'_, [u8]> {
        match &self.data {
            ModeData::U8(v) => Cow::Borrowed(v),
            ModeData::I32(v) => Cow::Owned(v.iter().flat_map(|x| x.to_le_bytes()).collect()),
            ModeData::F32(v) => Cow::Owned(v.iter().flat_map(|x| x.to_le_bytes()).collect()),
        }
    }

    /// `Ok` when `data` holds `H × W × bands` values; else both counts and the size:
    /// `10 values where a 4×4 RGB image needs 48`.
    pub(crate) fn check_len(&self) -> Result<(), String> {
        let values = self.data.len();
        let needed = self
            .shape()
            .iter()
            .try_fold(1usize, |n, &side| n.checked_mul(side));
        if needed == Some(values) {
            return Ok(());
        }
        let needed = u128::from(self.width)
            * u128::from(self.height)
            * u128::try_from(self.mode.bands()).unwrap_or(u128::MAX);
        Err(format!(
            "{values} values where a {}×{} {} image needs {needed}",
            self.width, self.height, self.mode
        ))
    }

    /// The shape of the array this image gives: [`shape`](Self::shape), or one of no pixels
    /// (`(0, 0, bands)`) when `data` does not fill it.
    fn array_shape(&self) -> (IxDyn, bool) {
        match self.check_len() {
            Ok(()) => (IxDyn(&self.shape()), true),
            Err(_) => (IxDyn(&self.mode.shape(0, 0)), false),
        }
    }

    /// `np.asarray(im)` borrowed from this image: no copy, except `1`'s `bool`s. An image
    /// whose `data` does not hold `H × W × bands` values (one built by hand) gives an array of
    /// no pixels, shape (0, 0) or (0, 0, bands); [`to_image`](Self::to_image) says why.
    pub fn view(&self) -> FrameArrayView<'_> {
        let (shape, fits) = self.array_shape();
        // `check_len` matched the shape to the data, which a `Vec` holds (so within `isize`).
        let bad = "the data fills the shape checked";
        fn all<T>(v: &[T], fits: bool) -> &[T] {
            if fits { v } else { &[] }
        }
        match &self.data {
            ModeData::U8(v) if self.mode == ImageMode::One => {
                let bits = all(v, fits).iter().map(|&b| b != 0).collect();
                FrameArrayView::Bool(ArrayD::from_shape_vec(shape, bits).expect(bad))
            }
            ModeData::U8(v) => {
                FrameArrayView::U8(ArrayViewD::from_shape(shape, all(v, fits)).expect(bad))
            }
            ModeData::I32(v) => {
                FrameArrayView::I32(ArrayViewD::from_shape(shape, all(v, fits)).expect(bad))
            }
            ModeData::F32(v) => {
                FrameArrayView::F32(ArrayViewD::from_shape(shape, all(v, fits)).expect(bad))
            }
        }
    }

    /// `np.asarray(im)`, copying the pixels (no pixels where `data` does not fill the
    /// image, as with [`view`](Self::view)).
    pub fn to_array(&self) -> FrameArray {
        self.clone().into_array()
    }

    /// The image as an `image` crate buffer, the Rust peer of Gradio's `type="pil"`, for
    /// the modes `image` has a colour type for: `1` and `L` as [`DynamicImage::ImageLuma8`]
    /// (`1` as 0 and 255, as Pillow's `convert("L")` gives it), `RGB` and `RGBA` as
    /// `ImageRgb8` and `ImageRgba8`, and `P` with its palette applied (`ImageRgb8`, or
    /// `ImageRgba8` for an RGBA palette), as Pillow's `convert("RGB")` / `convert("RGBA")`
    /// gives it (an index past the palette is black, as in Pillow's padded palette).
    ///
    /// # Errors
    /// [`Error::Usage`] naming the mode for `I`, `F`, `CMYK`, `YCbCr`, `LAB` and `HSV`, which
    /// `image` has no buffer type for: [`to_array`](Self::to_array) holds them; naming both
    /// counts and the size when `data` does not hold `H × W × bands` values.
    pub fn to_image(&self) -> Result<DynamicImage, Error> {
        let (w, h) = (self.width, self.height);
        let ModeData::U8(data) = &self.data else {
            return Err(self.no_image_type());
        };
        self.check_len()
            .map_err(|why| Error::Usage(format!("the mode image has {why}")))?;
        let too_large = || Error::Usage(format!("{w}×{h} is too large for an `image` buffer"));
        Ok(match (self.mode, &self.palette) {
            (ImageMode::One | ImageMode::L, _) => DynamicImage::ImageLuma8(
                ImageBuffer::from_raw(w, h, data.clone()).ok_or_else(too_large)?,
            ),
            (ImageMode::Rgb, _) => DynamicImage::ImageRgb8(
                ImageBuffer::from_raw(w, h, data.clone()).ok_or_else(too_large)?,
            ),
            (ImageMode::Rgba, _) => DynamicImage::ImageRgba8(
                ImageBuffer::from_raw(w, h, data.clone()).ok_or_else(too_large)?,
            ),
            (ImageMode::P, Some(Palette::Rgb(entries))) => {
                let rgb = data
                    .iter()
                    .flat_map(|&i| entries.get(usize::from(i)).copied().unwrap_or([0; 3]))
                    .collect();
                DynamicImage::ImageRgb8(ImageBuffer::from_raw(w, h, rgb).ok_or_else(too_large)?)
            }
            (ImageMode::P, Some(Palette::Rgba(entries))) => {
                let rgba = data
                    .iter()
                    .flat_map(|&i| {
                        entries
                            .get(usize::from(i))
                            .copied()
                            .unwrap_or([0, 0, 0, 255])
                    })
                    .collect();
                DynamicImage::ImageRgba8(ImageBuffer::from_raw(w, h, rgba).ok_or_else(too_large)?)
            }
            (ImageMode::P, None) => {
                return Err(Error::Usage(
                    "the P image has no palette to give its indices colours: set its palette, \
                     or use the array of indices"
                        .into(),
                ));
            }
            _ => return Err(self.no_image_type()),
        })
    }

    fn no_image_type(&self) -> Error {
        Error::Usage(format!(
            "mode {} has no `image` buffer type (it holds 1, L, P, RGB and RGBA): \
             use the array instead",
            self.mode
        ))
    }

    /// `np.asarray(im)`, reusing the buffer (except `1`, which becomes `bool`); no pixels
    /// where `data` does not fill the image, as with [`view`](Self::view).
    pub fn into_array(self) -> FrameArray {
        let (shape, fits) = self.array_shape();
        let bad = "the data fills the shape checked";
        fn all<T>(v: Vec<T>, fits: bool) -> Vec<T> {
            if fits { v } else { Vec::new() }
        }
        match self.data {
            ModeData::U8(v) if self.mode == ImageMode::One => {
                let bits = all(v, fits).into_iter().map(|b| b != 0).collect();
                FrameArray::Bool(ArrayD::from_shape_vec(shape, bits).expect(bad))
            }
            ModeData::U8(v) => {
                FrameArray::U8(ArrayD::from_shape_vec(shape, all(v, fits)).expect(bad))
            }
            ModeData::I32(v) => {
                FrameArray::I32(ArrayD::from_shape_vec(shape, all(v, fits)).expect(bad))
            }
            ModeData::F32(v) => {
                FrameArray::F32(ArrayD::from_shape_vec(shape, all(v, fits)).expect(bad))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_in_pillow_spelling_and_lowercase_only() {
        for m in ImageMode::ALL {
            assert_eq!(m.name().parse::<ImageMode>().unwrap(), m);
            assert_eq!(
                m.name().to_ascii_lowercase().parse::<ImageMode>().unwrap(),
                m
            );
        }
        assert_eq!(" YCbCr ".parse::<ImageMode>().unwrap(), ImageMode::YCbCr);
        for bad in ["YCBCR", "Rgb", "xyz", "", "LA"] {
            let err = bad.parse::<ImageMode>().unwrap_err();
            assert!(err.is_usage());
            assert!(
                err.to_string()
                    .contains("(expected one of: 1, L, P, RGB, RGBA, CMYK, YCbCr, LAB, HSV, I, F)"),
                "{err}"
            );
        }
        assert!(
            "nope"
                .parse::<ImageMode>()
                .unwrap_err()
                .to_string()
                .contains("'nope'")
        );
    }

    #[test]
    fn shapes_and_dtypes_follow_numpy() {
        assert_eq!(ImageMode::One.shape(2, 3), vec![2, 3]);
        assert_eq!(ImageMode::One.dtype(), Dtype::Bool);
        assert_eq!(ImageMode::P.shape(2, 3), vec![2, 3]);
        assert_eq!(ImageMode::Lab.shape(2, 3), vec![2, 3, 3]);
        assert_eq!(ImageMode::Cmyk.shape(2, 3), vec![2, 3, 4]);
        assert_eq!(ImageMode::I.dtype(), Dtype::I32);
        assert_eq!(ImageMode::F.dtype().numpy_name(), "float32");
        assert_eq!(ImageMode::Hsv.dtype(), Dtype::U8);
    }

    #[test]
    fn dither_parses_and_applies_only_to_1_and_p() {
        assert_eq!("fs".parse::<Dither>().unwrap(), Dither::FloydSteinberg);
        assert_eq!("NONE".parse::<Dither>().unwrap(), Dither::None);
        assert!("ordered".parse::<Dither>().unwrap_err().is_usage());
        assert_eq!(
            ImageMode::P.dither_for(None).unwrap(),
            Dither::FloydSteinberg
        );
        assert_eq!(
            ImageMode::One.dither_for(Some(Dither::None)).unwrap(),
            Dither::None
        );
        assert_eq!(
            ImageMode::L.dither_for(None).unwrap(),
            Dither::FloydSteinberg
        );
        let err = ImageMode::L.dither_for(Some(Dither::None)).unwrap_err();
        assert!(err.is_usage() && err.to_string().contains("'L'"), "{err}");
    }

    #[test]
    fn locality_marks_dithering_and_rgba_palette() {
        assert!(ImageMode::Hsv.is_pointwise(Dither::FloydSteinberg));
        assert!(!ImageMode::One.is_pointwise(Dither::FloydSteinberg));
        assert!(ImageMode::P.is_pointwise(Dither::None));
        assert_eq!(ImageMode::P.locality(Dither::None, true), Locality::Global);
        assert_eq!(
            ImageMode::One.locality(Dither::FloydSteinberg, true),
            Locality::Neighbourhood
        );
    }

    #[test]
    fn one_becomes_bool_array_and_i32_bytes_are_little_endian() {
        let im = ModeImage {
            width: 2,
            height: 1,
            mode: ImageMode::One,
            data: ModeData::U8(vec![0, 255]),
            palette: None,
        };
        match im.to_array() {
            FrameArray::Bool(a) => assert_eq!(a.into_raw_vec_and_offset().0, vec![false, true]),
            other => panic!("{other:?}"),
        }
        let im = ModeImage {
            width: 1,
            height: 1,
            mode: ImageMode::I,
            data: ModeData::I32(vec![0x0102_0304]),
            palette: None,
        };
        assert_eq!(&*im.as_bytes(), &[4, 3, 2, 1]);
        assert_eq!(im.to_array().shape(), &[1, 1]);
    }
}

//! The host side of Pillow modes on the GPU: which conversions the fused kernel finishes with
//! (and their packed output layout), the lookup tables it reads, and turning the read-back
//! words into a [`ModeImage`].
//!
//! Per frame, a mode takes one of the [`Route`]s: point-wise modes are the last step of the
//! fused pass and come back packed (`shaders/modes.wgsl`); `1` and `P` with Floyd–Steinberg,
//! and `P` from an RGBA source (octree), come back as RGBA and are converted by
//! [`crate::mode::cpu`] when collected, exactly as the CPU processor does. `1` with
//! Floyd–Steinberg can instead run on the GPU in anti-diagonal waves (`shaders/dither.wgsl`),
//! off by default: on lavapipe, the only adapter it was measured on, the CPU after the GPU pass
//! was 2–3× faster (a CPU rasteriser: the figures do not transfer to a real GPU).

use std::fmt::Write as _;

use crate::mode::pixel::{D50_WHITE, SRGB_TO_XYZ_D50, hsv_tables, srgb_to_linear, web_palette};
use crate::mode::{Dither, ImageMode, Locality, ModeData, ModeImage, Palette};

/// How one frame's result comes back from the GPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    /// No mode: the filtered RGBA pixels, into `Frame::rgba`.
    Rgba,
    /// A point-wise mode, converted and packed on the GPU, into `Frame::image`.
    Packed,
    /// RGBA back into a buffer of its own, then [`crate::mode::cpu::convert_frame`] of it
    /// into `Frame::image`, `Frame::rgba` left as captured (Floyd–Steinberg, RGBA → P, a
    /// source that converts itself, and frames without pixels).
    RgbaThenCpu,
    /// `1` with Floyd–Steinberg in GPU wavefronts, packed like `1` without dither.
    GpuDither,
}

impl Route {
    /// The route of a frame with `has_alpha` and `pixels` under `mode` and `dither`.
    pub(crate) fn of(
        mode: Option<ImageMode>,
        dither: Dither,
        has_alpha: bool,
        pixels: usize,
    ) -> Self {
        match mode {
            None => Route::Rgba,
            Some(_) if pixels == 0 => Route::RgbaThenCpu,
            Some(m) if m.locality(dither, has_alpha) == Locality::Pointwise => Route::Packed,
            Some(_) => Route::RgbaThenCpu,
        }
    }
}

/// Which lookup table a packed mode reads at binding 4.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tables {
    None,
    /// [`hsv_tables`]: hue then saturation bytes, four to a word.
    Hsv,
    /// [`lab_table`]: double-float products and constants.
    Lab,
}

/// A mode the fused kernel converts to, and how its output is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PackedMode {
    pub mode: ImageMode,
    /// Bytes per pixel in `tobytes()` order: 1, 3 or 4.
    pub bytes_per_pixel: u32,
    pub tables: Tables,
}

impl PackedMode {
    /// The packed conversion for `mode` with `dither`, or `None` when it is not point-wise
    /// even for RGB sources (`1` and `P` with Floyd–Steinberg).
    pub(crate) fn of(mode: ImageMode, dither: Dither) -> Option<Self> {
        mode.is_pointwise(dither).then(|| Self::layout(mode))
    }

    /// The packed output of `mode` (also what the dithering kernel writes for `1`).
    pub(crate) fn layout(mode: ImageMode) -> Self {
        let tables = match mode {
            ImageMode::Hsv => Tables::Hsv,
            ImageMode::Lab => Tables::Lab,
            _ => Tables::None,
        };
        let bytes_per_pixel = (mode.bands() * mode.dtype().size()) as u32;
        PackedMode {
            mode,
            bytes_per_pixel,
            tables,
        }
    }

    /// The generated glue between the chain and `mode_main`: which `shaders/modes.wgsl`
    /// function converts a pixel, and which writes 4 converted pixels as words.
    pub(crate) fn wgsl(&self) -> String {
        let convert = match self.mode {
            ImageMode::One => "mode_1",
            ImageMode::L => "mode_l",
            ImageMode::P => "mode_p",
            ImageMode::Rgb => "mode_rgb",
            ImageMode::Rgba => "mode_rgba",
            ImageMode::Cmyk => "mode_cmyk",
            ImageMode::YCbCr => "mode_ycbcr",
            ImageMode::Lab => "mode_lab",
            ImageMode::Hsv => "mode_hsv",
            ImageMode::I => "mode_i",
            ImageMode::F => "mode_f",
        };
        let store = match (self.bytes_per_pixel, self.mode.dtype().size()) {
            (1, _) => "store_bytes1",
            (3, _) => "store_bytes3",
            (_, 1) => "store_bytes4",
            _ => "store_words",
        };
        let mut src = String::new();
        // Writing to a String cannot fail.
        let _ = writeln!(
            src,
            "fn convert_pixel(c: vec4<u32>) -> vec4<u32> {{\n    return {convert}(c);\n}}"
        );
        let _ = writeln!(
            src,
            "fn store_quad(quad: u32, v: array<vec4<u32>, 4>) {{\n    {store}(quad, v);\n}}"
        );
        src
    }

    /// Bytes of the mode's `tobytes()` for `pixels` pixels.
    pub(crate) fn image_bytes(&self, pixels: u64) -> u64 {
        pixels * u64::from(self.bytes_per_pixel)
    }

    /// The words binding 4 holds for this mode, or `None` when it reads no table.
    pub(crate) fn table_words(&self) -> Option<Vec<u32>> {
        match self.tables {
            Tables::None => None,
            Tables::Hsv => Some(hsv_words()),
            Tables::Lab => Some(lab_table()),
        }
    }
}

/// [`hsv_tables`] as words: `3 × 65536` hue bytes then `65536` saturation bytes, little-endian.
fn hsv_words() -> Vec<u32> {
    let t = hsv_tables();
    let bytes: Vec<u8> = t.hue.iter().chain(&t.sat).copied().collect();
    bytes
        .chunks(4)
        .map(|w| {
            w.iter()
                .rev()
                .fold(0u32, |acc, &b| (acc << 8) | u32::from(b))
        })
        .collect()
}

/// `x` as a double-float `(hi, lo)` of f32 bit patterns: `hi = f32(x)`, `lo = f32(x − hi)`.
fn split(x: f64) -> [u32; 2] {
    let hi = x as f32;
    let lo = (x - f64::from(hi)) as f32;
    [hi.to_bits(), lo.to_bits()]
}

/// The LAB table of `shaders/modes.wgsl`: `M[k][j]·lin(v) / W[k]` for XYZ row `k`, input channel
/// `j` and value `v` as double-floats at `((k·3 + j)·256 + v)·2`, then the double-floats
/// `1/(3δ²)`, `4/29`, `δ³` and `255/100`, all computed in f64 as `mode::pixel::lab_pixel` does.
pub(crate) fn lab_table() -> Vec<u32> {
    const DELTA: f64 = 6.0 / 29.0;
    let mut words = Vec::with_capacity(9 * 256 * 2 + 8);
    for (k, row) in SRGB_TO_XYZ_D50.iter().enumerate() {
        for m in row {
            for v in 0..=255u8 {
                words.extend(split(m * srgb_to_linear(v) / D50_WHITE[k]));
            }
        }
    }
    for c in [
        1.0 / (3.0 * DELTA * DELTA),
        4.0 / 29.0,
        DELTA * DELTA * DELTA,
        255.0 / 100.0,
    ] {
        words.extend(split(c));
    }
    words
}

/// The palette of `P` as the GPU packs it (from RGB sources): the WEB palette, as the CPU
/// converter gives RGB sources. Built once: `collect_with` lends it to every `P` frame.
pub(crate) fn gpu_palette() -> &'static Palette {
    static PALETTE: std::sync::OnceLock<Palette> = std::sync::OnceLock::new();
    PALETTE.get_or_init(|| Palette::Rgb(web_palette()))
}

/// The [`ModeImage`] of a `width × height` frame from the packed bytes read back (at least
/// `width × height × bytes_per_pixel` of them; the rest of the last word is ignored).
/// `P` gets the WEB palette, as the CPU converter gives RGB sources.
pub(crate) fn image_from_bytes(
    packed: &PackedMode,
    width: u32,
    height: u32,
    bytes: &[u8],
) -> ModeImage {
    let pixels = width as usize * height as usize;
    let bytes = &bytes[..packed.image_bytes(pixels as u64) as usize];
    let data = match packed.mode {
        ImageMode::I => {
            let mut v = vec![0i32; pixels];
            bytemuck::cast_slice_mut::<i32, u8>(&mut v).copy_from_slice(bytes);
            // The GPU wrote little-endian words; only a big-endian host needs to swap them.
            if cfg!(target_endian = "big") {
                v.iter_mut().for_each(|x| *x = i32::from_le(*x));
            }
            ModeData::I32(v)
        }
        ImageMode::F => {
            let mut v = vec![0f32; pixels];
            bytemuck::cast_slice_mut::<f32, u8>(&mut v).copy_from_slice(bytes);
            if cfg!(target_endian = "big") {
                v.iter_mut()
                    .for_each(|x| *x = f32::from_bits(u32::from_le(x.to_bits())));
            }
            ModeData::F32(v)
        }
        _ => ModeData::U8(bytes.to_vec()),
    };
    let palette = (packed.mode == ImageMode::P).then(|| gpu_palette().clone());
    ModeImage {
        width,
        height,
        mode: packed.mode,
        data,
        palette,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mode::pixel::lab_pixel;

    #[test]
    fn every_mode_but_dithered_1_and_p_packs_on_the_gpu() {
        for mode in ImageMode::ALL {
            let packed = PackedMode::of(mode, Dither::FloydSteinberg);
            assert_eq!(packed.is_some(), !mode.takes_dither(), "{mode}");
            let packed = PackedMode::of(mode, Dither::None).expect("all point-wise");
            let want = match mode {
                ImageMode::One | ImageMode::L | ImageMode::P => 1,
                ImageMode::Rgba | ImageMode::Cmyk | ImageMode::I | ImageMode::F => 4,
                _ => 3,
            };
            assert_eq!(packed.bytes_per_pixel, want, "{mode}");
            let store = match (want, mode.dtype().size()) {
                (1, _) => "store_bytes1(",
                (3, _) => "store_bytes3(",
                (_, 1) => "store_bytes4(",
                _ => "store_words(",
            };
            assert!(packed.wgsl().contains(store), "{mode}");
        }
    }

    #[test]
    fn rgba_sources_send_p_to_the_cpu_and_empty_frames_too() {
        let route = |mode, dither, alpha, px| Route::of(Some(mode), dither, alpha, px);
        assert_eq!(route(ImageMode::P, Dither::None, false, 4), Route::Packed);
        assert_eq!(
            route(ImageMode::P, Dither::None, true, 4),
            Route::RgbaThenCpu
        );
        assert_eq!(
            route(ImageMode::One, Dither::FloydSteinberg, false, 4),
            Route::RgbaThenCpu
        );
        assert_eq!(route(ImageMode::Lab, Dither::None, true, 4), Route::Packed);
        assert_eq!(
            route(ImageMode::L, Dither::None, true, 0),
            Route::RgbaThenCpu
        );
        assert_eq!(Route::of(None, Dither::None, true, 0), Route::Rgba);
    }

    /// Twin of `split` in `shaders/modes.wgsl` (Rust neither contracts nor reassociates).
    fn split(a: f32) -> (f32, f32) {
        let t = 4097.0 * a;
        let hi = t - (t - a);
        (hi, a - hi)
    }

    /// Twin of `two_prod` in `shaders/modes.wgsl`.
    fn two_prod(a: f32, b: f32) -> (f32, f32) {
        let p = a * b;
        let (ah, al) = split(a);
        let (bh, bl) = split(b);
        (p, ((ah * bh - p) + ah * bl + al * bh) + al * bl)
    }

    #[test]
    fn f_on_the_gpu_is_exact_for_every_luma_whether_or_not_the_driver_fuses() {
        for l1000 in 0..=255_000u32 {
            let l = l1000 as f32;
            let q = l * 0.001;
            let (hi, lo) = two_prod(q, 1000.0);
            assert_eq!(lo, q.mul_add(1000.0, -hi), "two_prod is exact: {l1000}");
            let r = (l - hi) - lo;
            let want = (l / 1000.0).to_bits();
            assert_eq!((q + r * 0.001).to_bits(), want, "unfused: {l1000}");
            assert_eq!(r.mul_add(0.001, q).to_bits(), want, "fused: {l1000}");
        }
    }

    #[test]
    fn hsv_words_hold_the_table_bytes_little_endian() {
        let words = hsv_words();
        let t = hsv_tables();
        assert_eq!(words.len(), (t.hue.len() + t.sat.len()) / 4);
        let byte = |i: usize| (words[i / 4] >> (8 * (i % 4))) as u8;
        for i in [0, 1, 2, 3, 77_777, t.hue.len() - 1] {
            assert_eq!(byte(i), t.hue[i], "hue {i}");
        }
        for i in [0, 5, 65_535] {
            assert_eq!(byte(t.hue.len() + i), t.sat[i], "sat {i}");
        }
    }

    #[test]
    fn lab_table_pairs_sum_to_the_f64_products() {
        let words = lab_table();
        assert_eq!(words.len(), 4608 + 8);
        let df = |i: usize| {
            f64::from(f32::from_bits(words[i])) + f64::from(f32::from_bits(words[i + 1]))
        };
        // Y of white is 1: the three Y products of 255 sum to it.
        let y = df((768 + 255) * 2) + df((768 + 256 + 255) * 2) + df((768 + 512 + 255) * 2);
        assert!((y - 1.0).abs() < 1e-6, "{y}");
        assert!((df(4608 + 6) - 2.55).abs() < 1e-15);
        assert_eq!(lab_pixel(255, 255, 255)[0], 255);
    }

    #[test]
    fn image_from_bytes_trims_the_last_word_and_reads_little_endian_floats() {
        let l = PackedMode::of(ImageMode::L, Dither::None).expect("point-wise");
        let im = image_from_bytes(&l, 3, 1, &[1, 2, 3, 0]);
        assert_eq!(im.data, ModeData::U8(vec![1, 2, 3]));
        let f = PackedMode::of(ImageMode::F, Dither::None).expect("point-wise");
        let im = image_from_bytes(&f, 1, 1, &0.299f32.to_le_bytes());
        assert_eq!(im.data, ModeData::F32(vec![0.299]));
        let p = PackedMode::of(ImageMode::P, Dither::None).expect("point-wise");
        let im = image_from_bytes(&p, 1, 1, &[15, 0, 0, 0]);
        assert_eq!(im.palette.map(|p| p.len()), Some(226));
    }
}

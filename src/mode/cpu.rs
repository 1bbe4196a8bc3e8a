//! The CPU reference converter: one RGBA8 frame to any [`ImageMode`], exactly as Pillow's
//! `im.convert(mode)`. Point-wise modes map [`super::pixel`] over the pixels (HSV through its
//! exact tables, [`super::pixel::HsvTables`]); `1` and `P` with Floyd–Steinberg run Pillow's
//! serial error diffusion; RGBA → P is [`super::octree`].

use super::octree;
use super::pixel::{
    bit_nodither, cmyk_pixel, f_pixel, hsv_tables, l_pixel, l1000, lab_tables, web_entry,
    web_index_nodither, web_palette, ycbcr_pixel,
};
use super::{Dither, ImageMode, ModeData, ModeImage, Palette};
use crate::frame::Frame;
use crate::ops::{Ops, fast};
use std::mem::MaybeUninit;

/// Converts one frame. `rgba` is `width × height` RGBA8 pixels, straight alpha; `has_alpha`
/// says whether the source was RGBA (Pillow mode `RGBA`) or RGB (A is then 255 and ignored).
/// `dither` matters only for `1` and `P`; RGBA sources always quantize `P` without dither.
///
/// # Panics
/// If `rgba.len() != width × height × 4` (a caller bug: frames guarantee the size).
pub fn convert(
    mode: ImageMode,
    dither: Dither,
    width: u32,
    height: u32,
    rgba: &[u8],
    has_alpha: bool,
) -> ModeImage {
    let (w, h) = (width as usize, height as usize);
    assert_eq!(
        rgba.len(),
        w * h * 4,
        "convert: {width}×{height} RGBA needs {} bytes",
        w * h * 4
    );
    if mode == ImageMode::Rgba && has_alpha {
        // The pixels as they are: one copy, not a map.
        return image(mode, has_alpha, width, height, ModeData::U8(rgba.to_vec()));
    }
    let px: &[[u8; 4]] = bytemuck::cast_slice(rgba);
    let data = match point_wise(mode, dither, has_alpha, ToValues(px)) {
        Some(data) => data,
        None => match mode {
            ImageMode::One => ModeData::U8(bilevel_fs(w, h, px)),
            ImageMode::P if has_alpha => {
                let (indices, pal) = octree::quantize(px, octree::MAX_COLORS);
                return ModeImage {
                    width,
                    height,
                    mode,
                    data: ModeData::U8(indices),
                    palette: Some(Palette::Rgba(pal)),
                };
            }
            // `P` from RGB with Floyd–Steinberg, the last mode `point_wise` leaves out.
            _ => ModeData::U8(web_fs(w, h, px)),
        },
    };
    image(mode, has_alpha, width, height, data)
}

/// A converted frame: `data` with the palette its mode has (the web palette for `P` from RGB;
/// `P` from RGBA is built with its own).
fn image(mode: ImageMode, has_alpha: bool, width: u32, height: u32, data: ModeData) -> ModeImage {
    let palette = (mode == ImageMode::P && !has_alpha).then(|| Palette::Rgb(web_palette()));
    ModeImage {
        width,
        height,
        mode,
        data,
        palette,
    }
}

/// The values of one band type, and the [`ModeData`] a `Vec` of them is.
trait Band: Copy + Send {
    fn data(values: Vec<Self>) -> ModeData;
}

impl Band for u8 {
    fn data(values: Vec<u8>) -> ModeData {
        ModeData::U8(values)
    }
}

impl Band for i32 {
    fn data(values: Vec<i32>) -> ModeData {
        ModeData::I32(values)
    }
}

impl Band for f32 {
    fn data(values: Vec<f32>) -> ModeData {
        ModeData::F32(values)
    }
}

/// What to do with a mode's point-wise map (one pixel in, its `N` values out).
trait WithMap {
    fn with<T: Band, const N: usize>(self, f: impl Fn([u8; 4]) -> [T; N] + Sync) -> ModeData;
}

/// Maps the pixels of a frame (already filtered).
struct ToValues<'a>(&'a [[u8; 4]]);

impl WithMap for ToValues<'_> {
    fn with<T: Band, const N: usize>(self, f: impl Fn([u8; 4]) -> [T; N] + Sync) -> ModeData {
        T::data(map(self.0, f))
    }
}

/// Filters a frame and maps it in the same pass ([`fast::apply_map`]).
struct FilterThenMap<'a> {
    ops: &'a Ops,
    width: u32,
    height: u32,
    rgba: &'a mut [u8],
}

impl WithMap for FilterThenMap<'_> {
    fn with<T: Band, const N: usize>(self, f: impl Fn([u8; 4]) -> [T; N] + Sync) -> ModeData {
        T::data(fast::apply_map(
            self.ops,
            self.width,
            self.height,
            self.rgba,
            f,
        ))
    }
}

/// Hands `m` the point-wise map of `mode`, or `None` for the conversions that look at more
/// than one pixel: dithered `1` and `P`, and `P` from RGBA (an octree over the whole frame).
fn point_wise<M: WithMap>(
    mode: ImageMode,
    dither: Dither,
    has_alpha: bool,
    m: M,
) -> Option<ModeData> {
    let plain = dither == Dither::None;
    Some(match mode {
        ImageMode::L => m.with(|[r, g, b, _]| [l_pixel(r, g, b)]),
        ImageMode::I => m.with(|[r, g, b, _]| [i32::from(l_pixel(r, g, b))]),
        ImageMode::F => m.with(|[r, g, b, _]| [f_pixel(r, g, b)]),
        ImageMode::One if plain => m.with(|[r, g, b, _]| [bit_nodither(r, g, b)]),
        ImageMode::P if plain && !has_alpha => m.with(|[r, g, b, _]| [web_index_nodither(r, g, b)]),
        ImageMode::One | ImageMode::P => return None,
        ImageMode::Rgb => m.with(|[r, g, b, _]| [r, g, b]),
        ImageMode::Rgba if has_alpha => m.with(|p| p),
        ImageMode::Rgba => m.with(|[r, g, b, _]| [r, g, b, 255]),
        ImageMode::Cmyk => m.with(|[r, g, b, _]| cmyk_pixel(r, g, b)),
        ImageMode::YCbCr => m.with(|[r, g, b, _]| ycbcr_pixel(r, g, b)),
        ImageMode::Hsv => {
            // The GPU's exact tables (equal to `hsv_pixel` on every colour): two lookups
            // instead of three divisions and f64 arithmetic a pixel.
            let tables = hsv_tables();
            m.with(|[r, g, b, _]| tables.pixel(r, g, b))
        }
        ImageMode::Lab => {
            // Tables and Newton steps instead of three `cbrt` and divisions; equal to
            // `lab_pixel` on every colour (falling back to it near a rounding boundary).
            let tables = lab_tables();
            m.with(|[r, g, b, _]| tables.pixel(r, g, b))
        }
    })
}

/// Applies `ops` to `frame` and converts it to `mode`, leaving `frame.rgba` as it was (the
/// frame as captured, as the GPU leaves it): for point-wise modes in one pass over the
/// pixels ([`fast::apply_map`]); for the others, filters a copy with [`fast::apply`] and
/// converts that. The same values as [`crate::ops::cpu::apply`] followed by
/// [`convert_frame`] (`tests/fast_cpu.rs`).
///
/// # Panics
/// As [`convert`], if `frame.rgba` does not hold `width × height × 4` bytes.
pub fn apply_and_convert(
    ops: &Ops,
    mode: ImageMode,
    dither: Dither,
    frame: &mut Frame,
) -> ModeImage {
    let (width, height, has_alpha) = (frame.width, frame.height, frame.has_alpha);
    if frame.source.converts_itself(mode) {
        // Pillow converts this source from its own mode (`L` → `CMYK`, `P` → `P`, ...).
        return convert_filtered(ops, mode, dither, frame);
    }
    let fused = FilterThenMap {
        ops,
        width,
        height,
        rgba: &mut frame.rgba,
    };
    match point_wise(mode, dither, has_alpha, fused) {
        Some(data) => image(mode, has_alpha, width, height, data),
        None => convert_filtered(ops, mode, dither, frame),
    }
}

/// [`convert_frame`] of `frame` after `ops`, which run on a copy of its pixels: `frame` is
/// left as it was.
fn convert_filtered(ops: &Ops, mode: ImageMode, dither: Dither, frame: &mut Frame) -> ModeImage {
    if !ops.mirror && ops.filters.is_empty() {
        return convert_frame(mode, dither, frame);
    }
    let mut filtered = frame.rgba.clone();
    fast::apply(ops, frame.width, frame.height, &mut filtered);
    with_pixels(frame, filtered, |frame| convert_frame(mode, dither, frame))
}

/// Runs `f` on `frame` holding `pixels` in place of its own, which it gets back after.
pub(crate) fn with_pixels<R>(frame: &mut Frame, pixels: Vec<u8>, f: impl FnOnce(&Frame) -> R) -> R {
    let own = std::mem::replace(&mut frame.rgba, pixels);
    let result = f(frame);
    frame.rgba = own;
    result
}

/// [`convert`] on a [`Frame`], or where Pillow converts the frame's source from its own mode
/// (a gray, 16-bit or palette file, [`super::source`]), that conversion.
///
/// # Panics
/// As [`convert`], if `frame.rgba` does not hold `width × height × 4` bytes.
pub fn convert_frame(mode: ImageMode, dither: Dither, frame: &Frame) -> ModeImage {
    if let Some(image) = super::source::convert(mode, dither, frame) {
        return image;
    }
    convert(
        mode,
        dither,
        frame.width,
        frame.height,
        &frame.rgba,
        frame.has_alpha,
    )
}

/// Pixels below which a point-wise conversion stays on one thread (starting a thread costs
/// about what converting this many pixels does).
const MIN_PIXELS_PER_THREAD: usize = 1 << 16;

/// Applies a point-wise function to every pixel, interleaving its `N` output bands; large
/// frames are split into one run of pixels per hardware thread. The output is written once,
/// straight into uninitialised memory (zeroing it first cost 5–25% of a 1080p conversion,
/// depending on the mode).
fn map<T, const N: usize>(px: &[[u8; 4]], f: impl Fn([u8; 4]) -> [T; N] + Sync) -> Vec<T>
where
    T: Copy + Send,
{
    let len = px.len() * N;
    let mut out: Vec<T> = Vec::with_capacity(len);
    let threads = crate::ops::fast::available_threads()
        .min(px.len() / MIN_PIXELS_PER_THREAD)
        .max(1);
    let run = |src: &[[u8; 4]], dst: &mut [MaybeUninit<T>]| {
        for (p, o) in src.iter().zip(dst.chunks_exact_mut(N)) {
            o.copy_from_slice(&f(*p).map(MaybeUninit::new));
        }
    };
    let spare = &mut out.spare_capacity_mut()[..len];
    if threads == 1 {
        run(px, spare);
    } else {
        let chunk = px.len().div_ceil(threads);
        std::thread::scope(|scope| {
            let mut parts = px.chunks(chunk).zip(spare.chunks_mut(chunk * N));
            let first = parts.next();
            for (src, dst) in parts {
                scope.spawn(|| run(src, dst));
            }
            if let Some((src, dst)) = first {
                run(src, dst);
            }
        });
    }
    // SAFETY: the capacity is `len`, and every element of `0..len` was written above: each
    // pixel writes its `N` values, the parts pair `chunk` pixels with `chunk × N` values,
    // and together they cover all `px.len()` pixels (a panic in `f` unwinds before this).
    unsafe { out.set_len(len) };
    out
}

/// Floyd–Steinberg weights are sixteenths: the carried sum is divided by this (C division,
/// truncating toward zero).
const FS_DENOM: i32 = 16;
/// `1`: a dithered luma strictly above this is white.
const FS_WHITE_ABOVE: i32 = 128;

/// One channel's Floyd–Steinberg bookkeeping along a row, as Pillow's `tobilevel` and
/// `topalette` keep it: `carry` holds 7·e of the previous pixel (plus what belongs to the
/// pixel below-right of it), `e0`/`e1` the partial sums for the row below.
#[derive(Debug, Clone, Copy, Default)]
struct Diffuse {
    carry: i32,
    e0: i32,
    e1: i32,
}

impl Diffuse {
    /// The input value plus the diffused error, clamped to 0..=255. `below` is `err[x+1]`.
    #[inline]
    fn value(&self, input: i32, below: i32) -> i32 {
        (input + (self.carry + below) / FS_DENOM).clamp(0, 255)
    }

    /// Spreads the error `e` of pixel `x`: 3e to `err[x]` (below-left of the next pixel), 5e
    /// and 1e into the pending sums, 7e carried to the right.
    #[inline]
    fn spread(&mut self, e: i32, err_x: &mut i32) {
        let d2 = e + e;
        let mut l = e + d2; // 3e
        *err_x = l + self.e0;
        l += d2; // 5e
        self.e0 = l + self.e1;
        self.e1 = e;
        self.carry = l + d2; // 7e
    }
}

/// Mode `1` with Floyd–Steinberg (Pillow's `tobilevel`): luma `L1000 / 1000` (truncated),
/// white iff the dithered value is above 128, one left-to-right pass per row.
pub fn bilevel_fs(width: usize, height: usize, px: &[[u8; 4]]) -> Vec<u8> {
    let mut out = Vec::with_capacity(width * height);
    if width == 0 {
        return out;
    }
    let mut errors = vec![0i32; width + 1];
    for row in px.chunks_exact(width).take(height) {
        let mut d = Diffuse::default();
        for (x, &[r, g, b, _]) in row.iter().enumerate() {
            let luma = (l1000(r, g, b) / 1000) as i32;
            let v = d.value(luma, errors[x + 1]);
            let o = if v > FS_WHITE_ABOVE { 255 } else { 0 };
            out.push(o as u8);
            d.spread(v - o, &mut errors[x]);
        }
        errors[width] = d.e0;
    }
    out
}

/// Mode `P` (WEB palette) with Floyd–Steinberg (Pillow's `topalette`): each channel diffuses
/// its own error against the chosen entry, the entry being [`web_index_nodither`] of the
/// dithered colour. Pillow's end-of-row quirk is kept: `err[W]` receives the blue channel's
/// pending sums in all three slots (`[e0_b, e1_b, e1_b]`).
pub fn web_fs(width: usize, height: usize, px: &[[u8; 4]]) -> Vec<u8> {
    let mut out = Vec::with_capacity(width * height);
    if width == 0 {
        return out;
    }
    let mut errors = vec![[0i32; 3]; width + 1];
    for row in px.chunks_exact(width).take(height) {
        let mut d = [Diffuse::default(); 3];
        for (x, &p) in row.iter().enumerate() {
            let v: [i32; 3] = std::array::from_fn(|k| d[k].value(p[k].into(), errors[x + 1][k]));
            let idx = web_index_nodither(v[0] as u8, v[1] as u8, v[2] as u8);
            out.push(idx);
            let entry = web_entry(idx);
            for k in 0..3 {
                d[k].spread(v[k] - i32::from(entry[k]), &mut errors[x][k]);
            }
        }
        errors[width] = [d[2].e0, d[2].e1, d[2].e1];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn point_wise_modes_split_across_threads_equal_row_by_row() {
        // 700 × 300 is over the threshold (split into one run per thread); one row is not.
        let (w, h) = (700u32, 300u32);
        let rgba: Vec<u8> = (0..w as usize * h as usize * 4)
            .map(|i| ((i / 4) * 37 + (i % 4) * 101 + i / 2800) as u8)
            .collect();
        for mode in ImageMode::ALL {
            if mode == ImageMode::P {
                continue; // RGBA sources quantize the whole frame (octree), not point-wise
            }
            let whole = convert(mode, Dither::None, w, h, &rgba, true);
            let joined: Vec<u8> = rgba
                .chunks(w as usize * 4)
                .flat_map(|row| {
                    let row = convert(mode, Dither::None, w, 1, row, true);
                    row.as_bytes().into_owned()
                })
                .collect();
            assert!(*whole.as_bytes() == joined[..], "{mode}");
        }
    }

    fn rgb(px: &[[u8; 3]]) -> Vec<u8> {
        px.iter().flat_map(|&[r, g, b]| [r, g, b, 255]).collect()
    }

    #[test]
    fn mid_grey_dithers_to_a_checker_of_black_and_white() {
        // 128 grey: 128 is not > 128 → black, error +128 pushes the next pixel white.
        let im = convert(
            ImageMode::One,
            Dither::FloydSteinberg,
            4,
            1,
            &rgb(&[[128; 3]; 4]),
            false,
        );
        assert_eq!(im.data, ModeData::U8(vec![0, 255, 0, 255]));
        let im = convert(
            ImageMode::One,
            Dither::None,
            4,
            1,
            &rgb(&[[128; 3]; 4]),
            false,
        );
        assert_eq!(im.data, ModeData::U8(vec![255; 4]));
    }

    #[test]
    fn one_error_reaches_the_next_row() {
        // Row 0: 100 → black, e = 100: 7e = 700 right, 5e = 500 below, 3e/1e elsewhere.
        let im = convert(
            ImageMode::One,
            Dither::FloydSteinberg,
            2,
            2,
            &rgb(&[[100; 3]; 4]),
            false,
        );
        // (0,0): 100 → 0, e=100. (1,0): 100 + 700/16 = 143 → 255, e = -112.
        // errors[0] = 3·100 + 0 = 300; errors[1] = 3·(-112) + (5·100 + 0) = 164; errors[2] = 5·(-112) + 100 = -460.
        // (0,1): 100 + (0 + 164)/16 = 110 → 0.  (1,1): 110 → e=110: 100 + (770 - 460)/16 = 119 → 0.
        assert_eq!(im.data, ModeData::U8(vec![0, 255, 0, 0]));
    }

    #[test]
    fn modes_keep_or_fill_alpha_and_drop_it_elsewhere() {
        let px = [10, 20, 30, 40];
        let im = convert(ImageMode::Rgba, Dither::None, 1, 1, &px, true);
        assert_eq!(&*im.as_bytes(), &[10, 20, 30, 40]);
        let im = convert(ImageMode::Rgba, Dither::None, 1, 1, &px, false);
        assert_eq!(&*im.as_bytes(), &[10, 20, 30, 255]);
        let im = convert(ImageMode::Rgb, Dither::None, 1, 1, &px, true);
        assert_eq!(&*im.as_bytes(), &[10, 20, 30]);
        let im = convert(ImageMode::Cmyk, Dither::None, 1, 1, &px, true);
        assert_eq!(&*im.as_bytes(), &[245, 235, 225, 0]);
    }

    #[test]
    fn p_from_rgb_uses_the_web_palette_and_from_rgba_an_octree() {
        let im = convert(ImageMode::P, Dither::None, 1, 1, &[255, 0, 0, 255], false);
        assert_eq!(im.data, ModeData::U8(vec![15]));
        assert_eq!(im.palette.as_ref().map(Palette::len), Some(226));
        let im = convert(
            ImageMode::P,
            Dither::FloydSteinberg,
            1,
            1,
            &[10, 200, 30, 0],
            true,
        );
        assert_eq!(im.data, ModeData::U8(vec![0]));
        let pal = im.palette.expect("P has a palette");
        assert_eq!(pal.mode(), "RGBA");
        assert_eq!(&pal.as_bytes()[..8], &[10, 200, 30, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn empty_frames_convert_to_empty_buffers() {
        for mode in ImageMode::ALL {
            let im = convert(mode, Dither::FloydSteinberg, 0, 3, &[], false);
            assert!(im.data.is_empty(), "{mode}");
            assert_eq!(im.shape()[..2], [3, 0]);
        }
    }
}

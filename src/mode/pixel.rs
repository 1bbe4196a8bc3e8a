//! Point-wise mode formulas: one RGB pixel in, one converted pixel out.
//!
//! Each function is the exact rule of `mode/mod.rs`, small enough to be mirrored line by line by
//! a WGSL twin and tested against it. The lookup tables a GPU needs (YCbCr, HSV) are built here
//! too, from the same formulas.

use std::sync::OnceLock;

use crate::ops::luma;

/// The `1` threshold on [`l1000`]: Pillow's `rgb2bit` gives 255 iff `L1000 >= 128000`.
pub const BIT_THRESHOLD_1000: u32 = 128_000;

/// Entries in Pillow's WEB palette: 10 black entries, then the 6×6×6 cube.
pub const WEB_ENTRIES: usize = 226;
/// Index of the first cube entry (0..=9 are black padding).
pub const WEB_CUBE_START: usize = 10;
/// Step between the cube's six levels 0, 51, …, 255.
pub const WEB_STEP: u8 = 51;

/// Pillow's `L()` macro: `R·299 + G·587 + B·114`, a luma ×1000 in `0..=255000`.
#[inline]
pub fn l1000(r: u8, g: u8, b: u8) -> u32 {
    u32::from(r) * 299 + u32::from(g) * 587 + u32::from(b) * 114
}

/// Mode `L` (and `I`): `(R·19595 + G·38470 + B·7471 + 0x8000) >> 16`.
#[inline]
pub fn l_pixel(r: u8, g: u8, b: u8) -> u8 {
    // At most 255: the weights sum to 65536.
    luma(r.into(), g.into(), b.into()) as u8
}

/// Mode `F`: `f32(L1000) / 1000.0f32`, correctly rounded (the CPU's plain f32 division).
#[inline]
pub fn f_pixel(r: u8, g: u8, b: u8) -> f32 {
    // L1000 <= 255000 < 2^24, so the conversion to f32 is exact.
    l1000(r, g, b) as f32 / 1000.0
}

/// Mode `F` the way a GPU without correctly rounded division gets it exactly:
/// `q = L·0.001; r = fma(−q, 1000, L); q = fma(r, 0.001, q)`. Equal to [`f_pixel`]'s
/// division for every `L1000` in `0..=255000` (tested); `L·0.001` alone is not (152,184 misses).
#[inline]
pub fn f_value_fma(l1000: u32) -> f32 {
    let l = l1000 as f32;
    let q = l * 0.001;
    let r = (-q).mul_add(1000.0, l);
    r.mul_add(0.001, q)
}

/// Pillow's CMYK → RGB: each of R, G, B is `(255 − K) − C·(255 − K)/255`, the product
/// divided by 255 with rounding (`MULDIV255`).
pub fn cmyk_to_rgb([c, m, y, k]: [u8; 4]) -> [u8; 3] {
    let not_k = 255 - u32::from(k);
    let muldiv255 = |v: u8| {
        let t = u32::from(v) * not_k + 128;
        ((t >> 8) + t) >> 8
    };
    [c, m, y].map(|v| (not_k - muldiv255(v)) as u8)
}

/// Mode `1` without dither: 255 iff `L1000 >= 128000`, else 0.
#[inline]
pub fn bit_nodither(r: u8, g: u8, b: u8) -> u8 {
    if l1000(r, g, b) >= BIT_THRESHOLD_1000 {
        255
    } else {
        0
    }
}

/// The WEB cube level (0..=5) Pillow's palette cache picks for one channel: the value is cut to
/// its 4-wide cache cell (`v & 0xFC`), then rounded to the nearest multiple of 51.
#[inline]
pub fn web_level(v: u8) -> u8 {
    let q = u32::from(v & 0xFC);
    ((2 * q + u32::from(WEB_STEP)) / (2 * u32::from(WEB_STEP))) as u8
}

/// Mode `P` (WEB palette) without dither: `idx = 10 + lr + 6·lg + 36·lb`, black → 0.
#[inline]
pub fn web_index_nodither(r: u8, g: u8, b: u8) -> u8 {
    let idx = WEB_CUBE_START as u32
        + u32::from(web_level(r))
        + 6 * u32::from(web_level(g))
        + 36 * u32::from(web_level(b));
    // Black is both entry 0 and entry 10; the lowest index wins the tie.
    if idx == WEB_CUBE_START as u32 {
        0
    } else {
        idx as u8
    }
}

/// The colour of WEB palette entry `idx` (black for 0..=9 and for indices past the palette).
#[inline]
pub fn web_entry(idx: u8) -> [u8; 3] {
    let i = usize::from(idx);
    if !(WEB_CUBE_START..WEB_ENTRIES).contains(&i) {
        return [0, 0, 0];
    }
    let c = i - WEB_CUBE_START;
    [c % 6, c / 6 % 6, c / 36].map(|l| l as u8 * WEB_STEP)
}

/// Pillow's WEB palette (`Image.Palette.WEB`): 226 RGB entries.
pub fn web_palette() -> Vec<[u8; 3]> {
    (0..WEB_ENTRIES).map(|i| web_entry(i as u8)).collect()
}

/// Mode `CMYK`: `255−R, 255−G, 255−B, 0` (no undercolour removal).
#[inline]
pub fn cmyk_pixel(r: u8, g: u8, b: u8) -> [u8; 4] {
    [255 - r, 255 - g, 255 - b, 0]
}

/// JFIF coefficients ×1e5 in table order: Y (R, G, B), Cb (R, G, B), Cr (R, G, B).
pub const YCBCR_COEF: [(&str, i64); 9] = [
    ("Y_R", 29900),
    ("Y_G", 58700),
    ("Y_B", 11400),
    ("Cb_R", -16874),
    ("Cb_G", -33126),
    ("Cb_B", 50000),
    ("Cr_R", 50000),
    ("Cr_G", -41869),
    ("Cr_B", -8131),
];

/// Fixed-point bits of the YCbCr tables: the sums are shifted right by this.
pub const YCBCR_SCALE: u32 = 6;

/// One of Pillow's `ConvertYCbCr.c` tables:
/// `T[v] = floor((c·64·v + 50000) / 100000) + (c < 0 && v > 0)`.
pub const fn ycbcr_table(c5: i64) -> [i32; 256] {
    let mut t = [0i32; 256];
    let mut v = 0;
    while v < 256 {
        let mut x = (c5 * (1 << YCBCR_SCALE) * v as i64 + 50_000).div_euclid(100_000);
        if c5 < 0 && v > 0 {
            x += 1;
        }
        t[v] = x as i32;
        v += 1;
    }
    t
}

const fn ycbcr_tables() -> [[i32; 256]; 9] {
    let mut all = [[0i32; 256]; 9];
    let mut k = 0;
    while k < 9 {
        all[k] = ycbcr_table(YCBCR_COEF[k].1);
        k += 1;
    }
    all
}

/// The nine YCbCr tables, in [`YCBCR_COEF`] order, built at compile time.
pub static YCBCR_TABLES: [[i32; 256]; 9] = ycbcr_tables();

/// Mode `YCbCr`: table sums `>> 6` (floor), +128 for Cb and Cr.
#[inline]
pub fn ycbcr_pixel(r: u8, g: u8, b: u8) -> [u8; 3] {
    let t = &YCBCR_TABLES;
    let (r, g, b) = (usize::from(r), usize::from(g), usize::from(b));
    let sum = |k: usize| (t[k][r] + t[k + 1][g] + t[k + 2][b]) >> YCBCR_SCALE;
    // The sums stay inside 0..=255 (Y) and -128..=127 (Cb, Cr): casts cannot wrap.
    [sum(0) as u8, (sum(3) + 128) as u8, (sum(6) + 128) as u8]
}

/// Mode `HSV` computed as Pillow's C does: f32 quotients, f64 where C promotes, truncation.
#[inline]
pub fn hsv_pixel(r: u8, g: u8, b: u8) -> [u8; 3] {
    // Pillow's fmod(x, 1.0), as x − trunc(x): the same value for every finite x (the
    // subtraction is exact: trunc(x) lies within a factor of 2 of x, or is 0), without the
    // software fmod that `%` on f64 calls.
    hsv_with(r, g, b, |x| x - x.trunc())
}

/// [`hsv_pixel`] with the hue's `fmod(x, 1.0)` step given.
#[inline(always)]
fn hsv_with(r: u8, g: u8, b: u8, fraction: impl Fn(f64) -> f64) -> [u8; 3] {
    let maxc = r.max(g).max(b);
    let minc = r.min(g).min(b);
    if maxc == minc {
        return [0, 0, maxc];
    }
    let cr = f32::from(maxc - minc);
    let s = cr / f32::from(maxc);
    let rc = f32::from(maxc - r) / cr;
    let gc = f32::from(maxc - g) / cr;
    let bc = f32::from(maxc - b) / cr;
    let h: f32 = if r == maxc {
        bc - gc
    } else if g == maxc {
        (2.0 + f64::from(rc) - f64::from(bc)) as f32
    } else {
        (4.0 + f64::from(gc) - f64::from(rc)) as f32
    };
    let h = fraction(f64::from(h) / 6.0 + 1.0) as f32;
    let to_byte = |x: f32| (f64::from(x) * 255.0).clamp(0.0, 255.0) as u8; // `as` truncates
    [to_byte(h), to_byte(s), maxc]
}

/// HSV lookup tables for a GPU (all-f32 arithmetic is off by one on 72,036 colours).
///
/// H depends only on which channel is the maximum (Pillow's order: R, then G, then B) and on
/// the gaps `u`, `v` from the maximum to the two other channels in RGB order
/// (R max: u = max−G, v = max−B; G max: u = max−R, v = max−B; B max: u = max−R, v = max−G),
/// since `cr = max(u, v)`. S depends only on `cr = max − min` and `max`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HsvTables {
    /// `3 × 256 × 256` hue bytes, indexed by [`HsvTables::hue_index`].
    pub hue: Vec<u8>,
    /// `256 × 256` saturation bytes, indexed by [`HsvTables::sat_index`].
    pub sat: Vec<u8>,
}

impl HsvTables {
    /// Builds both tables from [`hsv_pixel`] on one representative colour per entry
    /// (maximum 255, or `max` for S). Entries no colour reaches hold unused values.
    pub fn build() -> Self {
        let mut hue = vec![0u8; 3 * 256 * 256];
        for branch in 0..3usize {
            for u in 0..=255u8 {
                for v in 0..=255u8 {
                    let (a, b) = (255 - u, 255 - v);
                    let rgb = match branch {
                        0 => [255, a, b],
                        1 => [a, 255, b],
                        _ => [a, b, 255],
                    };
                    hue[Self::hue_index(branch, u, v)] = hsv_pixel(rgb[0], rgb[1], rgb[2])[0];
                }
            }
        }
        let mut sat = vec![0u8; 256 * 256];
        for cr in 0..=255u8 {
            for max in cr..=255u8 {
                sat[Self::sat_index(cr, max)] = hsv_pixel(max, max - cr, max - cr)[1];
            }
        }
        HsvTables { hue, sat }
    }

    /// Index into [`HsvTables::hue`]: `branch·65536 + u·256 + v` (branch 0 = R max, 1 = G, 2 = B).
    #[inline]
    pub fn hue_index(branch: usize, u: u8, v: u8) -> usize {
        (branch << 16) | (usize::from(u) << 8) | usize::from(v)
    }

    /// Index into [`HsvTables::sat`]: `cr·256 + max`.
    #[inline]
    pub fn sat_index(cr: u8, max: u8) -> usize {
        (usize::from(cr) << 8) | usize::from(max)
    }

    /// Mode `HSV` through the tables (what the GPU kernel does); equal to [`hsv_pixel`].
    #[inline]
    pub fn pixel(&self, r: u8, g: u8, b: u8) -> [u8; 3] {
        let maxc = r.max(g).max(b);
        let minc = r.min(g).min(b);
        if maxc == minc {
            return [0, 0, maxc];
        }
        let (branch, u, v) = if r == maxc {
            (0, maxc - g, maxc - b)
        } else if g == maxc {
            (1, maxc - r, maxc - b)
        } else {
            (2, maxc - r, maxc - g)
        };
        [
            self.hue[Self::hue_index(branch, u, v)],
            self.sat[Self::sat_index(maxc - minc, maxc)],
            maxc,
        ]
    }
}

/// The HSV tables, built once on first use (about 0.25 MB).
pub fn hsv_tables() -> &'static HsvTables {
    static TABLES: OnceLock<HsvTables> = OnceLock::new();
    TABLES.get_or_init(HsvTables::build)
}

/// sRGB → XYZ (D50) matrix, Bradford-adapted from D65 (ICC's sRGB colorants).
pub const SRGB_TO_XYZ_D50: [[f64; 3]; 3] = [
    [0.436_074_7, 0.385_064_9, 0.143_080_4],
    [0.222_504_5, 0.716_878_6, 0.060_616_9],
    [0.013_932_2, 0.097_104_5, 0.714_173_3],
];

/// The D50 white point (ICC PCS illuminant) that XYZ is divided by.
pub const D50_WHITE: [f64; 3] = [0.9642, 1.0, 0.8249];

/// sRGB decoding of one 8-bit value: `c/12.92` below 0.04045, else `((c+0.055)/1.055)^2.4`.
pub fn srgb_to_linear(v: u8) -> f64 {
    let c = f64::from(v) / 255.0;
    if c <= 0.04045 {
        c / 12.92
    } else {
        ((c + 0.055) / 1.055).powf(2.4)
    }
}

/// The 256 decoded sRGB values, computed once.
fn linear_table() -> &'static [f64; 256] {
    static TABLE: OnceLock<[f64; 256]> = OnceLock::new();
    TABLE.get_or_init(|| std::array::from_fn(|i| srgb_to_linear(i as u8)))
}

/// CIE Lab's companding: `cbrt(t)` above (6/29)³, else `t / (3·(6/29)²) + 4/29`.
fn lab_f(t: f64) -> f64 {
    const DELTA: f64 = 6.0 / 29.0;
    if t > DELTA * DELTA * DELTA {
        t.cbrt()
    } else {
        t / (3.0 * DELTA * DELTA) + 4.0 / 29.0
    }
}

/// Mode `LAB` (within ±1 of LittleCMS): `[round(L*·255/100), round(a*), round(b*)]`, a and b as
/// two's-complement bytes (the `np.asarray` form; `getpixel` shows them +128).
pub fn lab_pixel(r: u8, g: u8, b: u8) -> [u8; 3] {
    let lin = linear_table();
    let c = [
        lin[usize::from(r)],
        lin[usize::from(g)],
        lin[usize::from(b)],
    ];
    let m = &SRGB_TO_XYZ_D50;
    let f: [f64; 3] = std::array::from_fn(|k| {
        let xyz = m[k][0] * c[0] + m[k][1] * c[1] + m[k][2] * c[2];
        lab_f(xyz / D50_WHITE[k])
    });
    let l = 116.0 * f[1] - 16.0;
    let a = 500.0 * (f[0] - f[1]);
    let bb = 200.0 * (f[1] - f[2]);
    // Round half up and clamp in the +128-offset encoding, then flip the sign bit (0x80) of a
    // and b to get two's complement.
    let enc = |x: f64| (x + 0.5).floor().clamp(0.0, 255.0) as u8;
    [
        enc(l * 255.0 / 100.0),
        enc(a + 128.0) ^ 0x80,
        enc(bb + 128.0) ^ 0x80,
    ]
}

/// Mode `LAB` on the CPU, fast and equal to [`lab_pixel`] on every colour.
///
/// [`lab_pixel`] is the reference: f64 arithmetic as written, three `cbrt` calls and three
/// divisions a pixel. Here each `t_k = (Σ_j M[k][j]·lin(v_j)) / W[k]` is a sum of three table
/// entries `M[k][j]/W[k]·lin(v)` and `cbrt` is four Newton steps on `t^(-1/3)` (no division).
/// Both differ from the reference by a few units in the last place; after scaling the three
/// values differ by under 1e-12, far below [`LabTables::MARGIN`]. So wherever a value is more
/// than `MARGIN` from a rounding boundary both round to the same byte, and where one is not
/// (no colour is, but the guard does not rely on that) the pixel is recomputed with
/// [`lab_pixel`]. `lab_tables_equal_lab_pixel_on_every_colour` checks all 2^24 colours.
#[derive(Debug, Clone, PartialEq)]
pub struct LabTables {
    /// `t[k][j][v] = M[k][j] / W[k] · lin(v)` for XYZ row `k` and input channel `j`.
    t: [[[f64; 256]; 3]; 3],
}

impl LabTables {
    /// How close (in output units) a value may come to a rounding boundary before the pixel is
    /// recomputed with the reference.
    pub const MARGIN: f64 = 1e-9;

    /// The tables from [`SRGB_TO_XYZ_D50`], [`D50_WHITE`] and [`srgb_to_linear`].
    pub fn build() -> Self {
        let mut t = [[[0.0; 256]; 3]; 3];
        for (k, row) in SRGB_TO_XYZ_D50.iter().enumerate() {
            for (j, m) in row.iter().enumerate() {
                for (v, entry) in t[k][j].iter_mut().enumerate() {
                    *entry = m / D50_WHITE[k] * srgb_to_linear(v as u8);
                }
            }
        }
        LabTables { t }
    }

    /// Mode `LAB` for one colour; equal to [`lab_pixel`].
    #[inline]
    pub fn pixel(&self, r: u8, g: u8, b: u8) -> [u8; 3] {
        self.pixel_with_margin(r, g, b, Self::MARGIN)
    }

    /// [`LabTables::pixel`] with another margin (the tests widen it to exercise the fallback).
    #[inline]
    fn pixel_with_margin(&self, r: u8, g: u8, b: u8, margin: f64) -> [u8; 3] {
        const DELTA: f64 = 6.0 / 29.0;
        let f: [f64; 3] = std::array::from_fn(|k| {
            let [tr, tg, tb] = &self.t[k];
            let t = tr[usize::from(r)] + tg[usize::from(g)] + tb[usize::from(b)];
            if t > DELTA * DELTA * DELTA {
                cbrt_newton(t)
            } else {
                t * (1.0 / (3.0 * DELTA * DELTA)) + 4.0 / 29.0
            }
        });
        // The reference's values plus its rounding's 0.5: bytes are their floors.
        let x = [
            (116.0 * f[1] - 16.0) * 2.55 + 0.5,
            500.0 * (f[0] - f[1]) + 128.5,
            200.0 * (f[1] - f[2]) + 128.5,
        ];
        let mut out = [0u8; 3];
        for (o, x) in out.iter_mut().zip(x) {
            let floor = x.floor();
            if !(margin..=1.0 - margin).contains(&(x - floor)) {
                return lab_pixel(r, g, b);
            }
            *o = floor.clamp(0.0, 255.0) as u8;
        }
        [out[0], out[1] ^ 0x80, out[2] ^ 0x80]
    }
}

/// `t^(1/3)` for `t` in `(0.008, 1.1]` (LAB's range above `δ³`), within a few units in the last
/// place: an estimate of `t^(-1/3)` from the bits, four Newton steps `r·(4 − t·r³)/3` (each
/// squares the relative error: 3% → 1e-17), then `t·r²`.
#[inline]
fn cbrt_newton(t: f64) -> f64 {
    let mut r = f64::from_bits(0x553E_F0FF_289D_D796_u64.wrapping_sub(t.to_bits() / 3));
    let third = t * (1.0 / 3.0);
    for _ in 0..4 {
        // r·(4 − t·r³)/3 as 4/3·r − t/3·r⁴: four dependent operations a step instead of six.
        let r2 = r * r;
        r = r * (4.0 / 3.0) - third * (r2 * r2);
    }
    t * r * r
}

/// The LAB tables, built once on first use (18 KB).
pub fn lab_tables() -> &'static LabTables {
    static TABLES: OnceLock<LabTables> = OnceLock::new();
    TABLES.get_or_init(LabTables::build)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `hsv_pixel` as Pillow writes it (`fmod`), for every colour: `x − trunc(x)` in place of
    /// `fmod(x, 1.0)` changes no byte.
    #[test]
    fn hsv_equals_pillows_fmod_formula_on_every_colour() {
        // Rust's `%` on f64 is C's fmod.
        let pillow = |r, g, b| hsv_with(r, g, b, |x| x % 1.0);
        for rgb in 0..1u32 << 24 {
            let [r, g, b, _] = rgb.to_le_bytes();
            assert_eq!(hsv_pixel(r, g, b), pillow(r, g, b), "({r}, {g}, {b})");
        }
    }

    #[test]
    fn lab_tables_equal_lab_pixel_on_every_colour() {
        let tables = lab_tables();
        for rgb in 0..1u32 << 24 {
            let [r, g, b, _] = rgb.to_le_bytes();
            assert_eq!(tables.pixel(r, g, b), lab_pixel(r, g, b), "({r}, {g}, {b})");
        }
    }

    #[test]
    fn lab_tables_fall_back_to_the_reference_near_a_rounding_boundary() {
        // With the margin at 0.4 most values are "near" a boundary and take the fallback; the
        // bytes stay the reference's. A margin of 0.5 sends every pixel to the fallback.
        let tables = lab_tables();
        for rgb in (0..1u32 << 24).step_by(4099) {
            let [r, g, b, _] = rgb.to_le_bytes();
            for margin in [0.4, 0.5] {
                let got = tables.pixel_with_margin(r, g, b, margin);
                assert_eq!(got, lab_pixel(r, g, b), "({r}, {g}, {b}), margin {margin}");
            }
        }
    }

    #[test]
    fn cbrt_newton_is_within_four_ulps_on_labs_range() {
        let mut t = 0.008_856;
        while t < 1.1 {
            let (got, want) = (cbrt_newton(t), t.cbrt());
            assert!(
                (got - want).abs() <= 4.0 * f64::EPSILON * want,
                "cbrt({t}): {got} vs {want}"
            );
            t *= 1.000_37;
        }
    }

    #[test]
    fn l_rounds_with_16_bit_weights_and_f_keeps_the_fraction() {
        assert_eq!(l_pixel(255, 255, 255), 255);
        assert_eq!(l_pixel(200, 100, 50), 124); // (3919000 + 3847000 + 373550 + 32768) >> 16 = 124.7
        assert_eq!(l1000(200, 100, 50), 124_200);
        assert_eq!(f_pixel(200, 100, 50), 124.2f32);
        assert_eq!(f_pixel(1, 0, 0), 0.299f32);
    }

    #[test]
    fn f_fma_sequence_equals_the_division_for_every_luma() {
        for l in 0..=255_000u32 {
            assert_eq!(
                f_value_fma(l).to_bits(),
                (l as f32 / 1000.0).to_bits(),
                "L1000 {l}"
            );
        }
    }

    #[test]
    fn bit_threshold_is_at_l1000_128000() {
        assert_eq!(bit_nodither(128, 128, 128), 255); // exactly 128000
        assert_eq!(bit_nodither(127, 128, 128), 0);
        // Rounded L is 128 but L1000 < 128000.
        assert_eq!(l_pixel(254, 88, 0), 128);
        assert_eq!(bit_nodither(254, 88, 0), 0);
    }

    #[test]
    fn web_palette_has_black_padding_and_red_fastest_cube() {
        let pal = web_palette();
        assert_eq!(pal.len(), 226);
        assert!(pal[..11].iter().all(|c| *c == [0, 0, 0]));
        assert_eq!(pal[11], [51, 0, 0]);
        assert_eq!(pal[16], [0, 51, 0]);
        assert_eq!(pal[46], [0, 0, 51]);
        assert_eq!(pal[225], [255, 255, 255]);
        assert_eq!(web_index_nodither(0, 0, 0), 0);
        assert_eq!(web_index_nodither(255, 255, 255), 225);
        // 25 & 0xFC = 24 → level 0; 28 → level 1 (2·28+51 = 107 ≥ 102).
        assert_eq!(web_index_nodither(27, 0, 0), 0);
        assert_eq!(web_index_nodither(28, 0, 0), 11);
    }

    #[test]
    fn web_nodither_is_the_nearest_entry_to_the_cache_cell_corner() {
        let pal = web_palette();
        for v in 0..=255u8 {
            let q = i32::from(v & 0xFC);
            let best = (0..pal.len())
                .min_by_key(|&i| (i32::from(pal[i][0]) - q).pow(2))
                .unwrap_or(0);
            let got = web_index_nodither(v, 0, 0);
            assert_eq!(pal[usize::from(got)][0], pal[best][0], "v {v}");
        }
    }

    #[test]
    fn ycbcr_tables_match_hand_values() {
        assert_eq!(YCBCR_TABLES[0][1], 19); // 29900·64/1e5 = 19.136
        assert_eq!(YCBCR_TABLES[3][0], 0);
        assert_eq!(YCBCR_TABLES[3][1], -10); // floor(-1.0799 + 0.5) + 1
        assert_eq!(ycbcr_pixel(0, 0, 0), [0, 128, 128]);
        assert_eq!(ycbcr_pixel(255, 255, 255), [255, 128, 128]);
        assert_eq!(ycbcr_pixel(255, 0, 0), [76, 84, 255]); // Cb: (-2753 >> 6) + 128, floor
    }

    #[test]
    fn hsv_hand_values() {
        assert_eq!(hsv_pixel(0, 0, 0), [0, 0, 0]);
        assert_eq!(hsv_pixel(255, 0, 0), [0, 255, 255]);
        assert_eq!(hsv_pixel(0, 255, 0), [85, 255, 255]);
        assert_eq!(hsv_pixel(0, 0, 255), [170, 255, 255]);
        assert_eq!(hsv_pixel(255, 0, 1), [254, 255, 255]); // negative h wraps
        assert_eq!(hsv_pixel(7, 7, 7), [0, 0, 7]);
    }

    /// The CPU converts to HSV through these tables too, so they must equal the formula on
    /// every colour (under a second in a debug build).
    #[test]
    fn hsv_tables_equal_direct_path_on_every_colour() {
        let t = hsv_tables();
        for n in 0..1u32 << 24 {
            let [r, g, b, _] = n.to_le_bytes();
            assert_eq!(t.pixel(r, g, b), hsv_pixel(r, g, b), "({r}, {g}, {b})");
        }
    }

    #[test]
    fn lab_of_white_black_and_red() {
        assert_eq!(lab_pixel(0, 0, 0), [0, 0, 0]);
        let w = lab_pixel(255, 255, 255);
        assert_eq!(w[0], 255);
        assert!(w[1] as i8 == 0 && w[2] as i8 == 0, "{w:?}");
        // sRGB red in D50 Lab is about (54.3, 80.8, 69.9).
        let r = lab_pixel(255, 0, 0);
        assert!((i32::from(r[0]) - 138).abs() <= 1, "{r:?}");
        assert!((i32::from(r[1] as i8) - 81).abs() <= 1, "{r:?}");
        assert!((i32::from(r[2] as i8) - 70).abs() <= 1, "{r:?}");
    }
}

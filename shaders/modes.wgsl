// Pillow's point-wise `im.convert(mode)` as the last step of the fused pass, with the result
// packed in the mode's `tobytes()` layout so that only those bytes cross the bus. Each function
// is the twin of one in src/mode/pixel.rs and returns the pixel's bands in .x .y .z .w (one
// 32-bit word in .x for I and F); `mode_main` converts 4 consecutive pixels per invocation and
// writes BPP whole words (generated with the op list: `BPP`, `convert_pixel`, `store_quad`).
//
// Pixels arrive as vec4<u32> channels 0..=255 (R, G, B, A), after mirror and the filter chain.

// Lookup tables uploaded once per backend (src/gpu/modes.rs): HSV bytes or LAB double-floats.
@group(0) @binding(4) var<storage, read> tables: array<u32>;

// Pixels per invocation of `mode_main` (4 pixels fill a whole number of words for every BPP).
const QUAD: u32 = 4u;
// Invocations per workgroup of `mode_main` (a 1-D group; dispatched in 2-D when it is large).
const MODE_GROUP: u32 = 64u;

// ---- L, I, F, 1 ----------------------------------------------------------------------------

// L = (R·19595 + G·38470 + B·7471 + 0x8000) >> 16          (Pillow's ImagingConvert "L")
fn luma_l(c: vec4<u32>) -> u32 {
    return (c.x * 19595u + c.y * 38470u + c.z * 7471u + 0x8000u) >> 16u;
}

// L1000 = R·299 + G·587 + B·114  (0..=255000), the unrounded luma ×1000 of F and 1
fn luma_1000(c: vec4<u32>) -> u32 {
    return c.x * 299u + c.y * 587u + c.z * 114u;
}

// L: one byte.
fn mode_l(c: vec4<u32>) -> vec4<u32> {
    return vec4<u32>(luma_l(c), 0u, 0u, 0u);
}

// I = the L value widened to i32 (non-negative, so its bits are the u32's).
fn mode_i(c: vec4<u32>) -> vec4<u32> {
    return vec4<u32>(luma_l(c), 0u, 0u, 0u);
}

// F = f32(L1000) / 1000.0f32, correctly rounded. A GPU division is not correctly rounded and
// L·0.001 alone misses 152,184 values; exact for every L1000 (twin: pixel::f_value_fma):
//   q = L·0.001;  r = fma(−q, 1000, L);  q = fma(r, 0.001, q)
// WGSL lets `fma` round twice (lavapipe does, and then r = 0), so r is computed from the exact
// product q·1000 of `two_prod` instead: r = (L − p.hi) − p.lo, the same single rounding (L − p.hi
// is exact). The last step is exact whether or not the driver fuses q + r·0.001 (tested on the
// CPU for every L1000: gpu::modes::tests).
fn mode_f(c: vec4<u32>) -> vec4<u32> {
    let l = f32(luma_1000(c));
    let q = opaque(l * 0.001);
    let p = two_prod(q, 1000.0);
    let r = opaque(l - p.hi) - p.lo;
    return vec4<u32>(bitcast<u32>(q + r * 0.001), 0u, 0u, 0u);
}

// 1 without dither: 255 iff L1000 ≥ 128000, else 0               (twin: pixel::bit_nodither)
fn mode_1(c: vec4<u32>) -> vec4<u32> {
    return vec4<u32>(select(0u, 255u, luma_1000(c) >= 128000u), 0u, 0u, 0u);
}

// ---- P (WEB palette, no dither) -----------------------------------------------------------

// WEB level of one channel: q = v & 0xFC; level = (2q + 51) / 102        (pixel::web_level)
fn web_level(v: u32) -> u32 {
    return (2u * (v & 0xfcu) + 51u) / 102u;
}

// P = 10 + lr + 6·lg + 36·lb; index 10 (black) becomes 0        (pixel::web_index_nodither)
fn mode_p(c: vec4<u32>) -> vec4<u32> {
    let idx = 10u + web_level(c.x) + 6u * web_level(c.y) + 36u * web_level(c.z);
    return vec4<u32>(select(idx, 0u, idx == 10u), 0u, 0u, 0u);
}

// ---- RGB, RGBA, CMYK ----------------------------------------------------------------------

// RGB = R, G, B (alpha dropped, no compositing)
fn mode_rgb(c: vec4<u32>) -> vec4<u32> {
    return vec4<u32>(c.xyz, 0u);
}

// RGBA = R, G, B, A from RGBA sources; A = 255 from RGB sources
fn mode_rgba(c: vec4<u32>) -> vec4<u32> {
    return vec4<u32>(c.xyz, select(255u, c.w, params.has_alpha != 0u));
}

// CMYK = 255−R, 255−G, 255−B, 0                                   (pixel::cmyk_pixel)
fn mode_cmyk(c: vec4<u32>) -> vec4<u32> {
    return vec4<u32>(255u - c.x, 255u - c.y, 255u - c.z, 0u);
}

// ---- YCbCr --------------------------------------------------------------------------------

// One entry of Pillow's ConvertYCbCr.c tables (pixel::ycbcr_table), c5 = coefficient × 1e5:
//   T[v] = floor((c5·64·v + 50000) / 100000) + (c5 < 0 && v > 0)
// |c5·64·v| ≤ 58700·64·255 < 2^31, so i32 holds it; WGSL's `/` truncates, hence the floor fix.
fn ycbcr_term(c5: i32, v: u32) -> i32 {
    let n = c5 * 64 * i32(v) + 50000;
    var q = n / 100000;
    if (n < 0 && q * 100000 != n) {
        q -= 1;
    }
    return q + select(0, 1, c5 < 0 && v > 0u);
}

// Y  = (T(29900)[R] + T(58700)[G] + T(11400)[B]) >> 6
// Cb = ((T(−16874)[R] + T(−33126)[G] + T(50000)[B]) >> 6) + 128
// Cr = ((T(50000)[R] + T(−41869)[G] + T(−8131)[B]) >> 6) + 128     (`>>` on i32 floors)
fn mode_ycbcr(c: vec4<u32>) -> vec4<u32> {
    let y = (ycbcr_term(29900, c.x) + ycbcr_term(58700, c.y) + ycbcr_term(11400, c.z)) >> 6u;
    let cb = (ycbcr_term(-16874, c.x) + ycbcr_term(-33126, c.y) + ycbcr_term(50000, c.z)) >> 6u;
    let cr = (ycbcr_term(50000, c.x) + ycbcr_term(-41869, c.y) + ycbcr_term(-8131, c.z)) >> 6u;
    return vec4<u32>(u32(y), u32(cb + 128), u32(cr + 128), 0u);
}

// ---- HSV ----------------------------------------------------------------------------------

// Byte `i` of `tables` (four bytes per word, little-endian).
fn table_byte(i: u32) -> u32 {
    return (tables[i >> 2u] >> ((i & 3u) * 8u)) & 0xffu;
}

// Where the saturation table starts in `tables`: after 3 × 256 × 256 hue bytes.
const HSV_SAT: u32 = 196608u;

// HSV (Pillow's f32/f64 mix, off by one in all-f32 on 72,036 colours, so through the exact
// tables of pixel::HsvTables):
//   V = max;  max == min → H = S = 0;
//   H = hue[branch·65536 + u·256 + v]   branch: R max (checked first), G max, B max;
//       u, v: max minus the two other channels in RGB order
//   S = sat[(max − min)·256 + max]
fn mode_hsv(c: vec4<u32>) -> vec4<u32> {
    let maxc = max(c.x, max(c.y, c.z));
    let minc = min(c.x, min(c.y, c.z));
    if (maxc == minc) {
        return vec4<u32>(0u, 0u, maxc, 0u);
    }
    var at: u32;
    if (c.x == maxc) {
        at = ((maxc - c.y) << 8u) | (maxc - c.z);
    } else if (c.y == maxc) {
        at = 65536u | ((maxc - c.x) << 8u) | (maxc - c.z);
    } else {
        at = 131072u | ((maxc - c.x) << 8u) | (maxc - c.y);
    }
    let s = table_byte(HSV_SAT + (((maxc - minc) << 8u) | maxc));
    return vec4<u32>(table_byte(at), s, maxc, 0u);
}

// ---- LAB ----------------------------------------------------------------------------------
//
// LAB (pixel::lab_pixel, f64 there): lin = sRGB decoding; t_k = (Σ_j M[k][j]·lin_j) / W[k]
// (M: sRGB → XYZ D50, Bradford; W: the D50 white); f(t) = cbrt(t) if t > δ³ else
// t/(3δ²) + 4/29 (δ = 6/29); L* = 116·f_Y − 16, a* = 500·(f_X − f_Y), b* = 200·(f_Y − f_Z);
// bytes: floor(L*·255/100 + 0.5), floor(a* + 128 + 0.5) ^ 0x80, floor(b* + 128 + 0.5) ^ 0x80,
// each clamped to 0..=255 before the XOR (a, b as two's-complement bytes).
//
// f32 alone is some 1e-5 off before the rounding: enough to flip colours that sit near a
// rounding boundary. So this runs in double-float (hi + lo, ~48 bits): the CPU's f64 values are
// reproduced to about 1e-12, below their distance to a boundary for every one of the 2^24 RGB
// colours (tests/gpu_modes.rs checks them all). The tables hold M[k][j]·lin(v)/W[k]
// computed in f64 on the host and split into (hi, lo) f32 pairs:
//   tables[((k·3 + j)·256 + v)·2 + {0, 1}]   k: X, Y, Z;  j: R, G, B
//   tables[LAB_CONSTS + ...]: (hi, lo) of 1/(3δ²), 4/29, δ³, 255/100

// Where the LAB constants start: after 9 × 256 (hi, lo) pairs.
const LAB_CONSTS: u32 = 4608u;

// A double-float: the value is hi + lo, with |lo| ≤ ulp(hi) / 2.
struct Df {
    hi: f32,
    lo: f32,
}

// x, hidden from the driver's algebraic simplifier (params.zero is 0, but it cannot know), so
// that error-free transformations such as (a + b) − a are evaluated as written, not as b.
fn opaque(x: f32) -> f32 {
    return bitcast<f32>(bitcast<u32>(x) | params.zero);
}

// a + b exactly, as a double-float (Knuth's TwoSum).
fn two_sum(a: f32, b: f32) -> Df {
    let s = opaque(a + b);
    let bb = opaque(s - a);
    return Df(s, (a - (s - bb)) + (b - bb));
}

// a + b exactly when |a| ≥ |b| (Dekker's FastTwoSum).
fn fast_two_sum(a: f32, b: f32) -> Df {
    let s = opaque(a + b);
    return Df(s, b - (s - a));
}

// a split into two halves of 12 significant bits, hi + lo = a (Veltkamp, 4097 = 2^12 + 1):
// their products are exact in f32, so nothing below depends on `fma` being fused.
fn split(a: f32) -> Df {
    let t = opaque(4097.0 * a);
    let hi = t - opaque(t - a);
    return Df(hi, a - hi);
}

// a · b exactly, as a double-float (Dekker's TwoProduct). Every partial product is exact, so
// a driver contracting them into fma changes nothing; `opaque` keeps the sums in this order.
fn two_prod(a: f32, b: f32) -> Df {
    let p = opaque(a * b);
    let x = split(a);
    let y = split(b);
    let e1 = opaque(x.hi * y.hi - p);
    let e2 = opaque(e1 + x.hi * y.lo);
    let e3 = opaque(e2 + x.lo * y.hi);
    return Df(p, e3 + x.lo * y.lo);
}

fn df_add(a: Df, b: Df) -> Df {
    let s = two_sum(a.hi, b.hi);
    let t = two_sum(a.lo, b.lo);
    let u = fast_two_sum(s.hi, s.lo + t.hi);
    return fast_two_sum(u.hi, u.lo + t.lo);
}

fn df_sub(a: Df, b: Df) -> Df {
    return df_add(a, Df(-b.hi, -b.lo));
}

fn df_mul(a: Df, b: Df) -> Df {
    let p = two_prod(a.hi, b.hi);
    return fast_two_sum(p.hi, p.lo + (a.hi * b.lo + a.lo * b.hi));
}

fn df_mul_f(a: Df, b: f32) -> Df {
    let p = two_prod(a.hi, b);
    return fast_two_sum(p.hi, p.lo + a.lo * b);
}

// floor(a.hi + a.lo): when hi is an integer, lo (|lo| < 1/2) decides.
fn df_floor(a: Df) -> f32 {
    let f = floor(a.hi);
    if (f == a.hi) {
        return f + floor(a.lo);
    }
    return f;
}

// The (hi, lo) pair at `tables[i]`, `tables[i + 1]`.
fn table_df(i: u32) -> Df {
    return Df(bitcast<f32>(tables[i]), bitcast<f32>(tables[i + 1u]));
}

// t_k = X/Xw, Y/Yw or Z/Zw (k = 0, 1, 2) of one pixel.
fn lab_t(k: u32, c: vec4<u32>) -> Df {
    let row = k * 768u;
    let r = table_df((row + c.x) * 2u);
    let g = table_df((row + 256u + c.y) * 2u);
    let b = table_df((row + 512u + c.z) * 2u);
    return df_add(df_add(r, g), b);
}

// cbrt(t) for t > δ³: an f32 estimate refined by one f32 and one double-float Newton step,
// y ← y − (y³ − t) / (3y²) (quadratic: ~1e-7 → ~1e-14).
fn df_cbrt(t: Df) -> Df {
    var y = exp2(log2(t.hi) / 3.0);
    y = y - (y * y * y - t.hi) / (3.0 * y * y);
    let r = df_sub(df_mul_f(two_prod(y, y), y), t);
    return two_sum(y, -(r.hi + r.lo) / (3.0 * y * y));
}

// CIE Lab's companding f(t).
fn lab_f(t: Df) -> Df {
    let d3 = table_df(LAB_CONSTS + 4u);
    if (t.hi > d3.hi || (t.hi == d3.hi && t.lo > d3.lo)) {
        return df_cbrt(t);
    }
    return df_add(df_mul(t, table_df(LAB_CONSTS)), table_df(LAB_CONSTS + 2u));
}

// floor(v + 0.5) clamped to 0..=255.
fn lab_byte(v: Df) -> u32 {
    return u32(clamp(df_floor(df_add(v, Df(0.5, 0.0))), 0.0, 255.0));
}

fn mode_lab(c: vec4<u32>) -> vec4<u32> {
    let fx = lab_f(lab_t(0u, c));
    let fy = lab_f(lab_t(1u, c));
    let fz = lab_f(lab_t(2u, c));
    let l = df_mul(df_add(df_mul_f(fy, 116.0), Df(-16.0, 0.0)), table_df(LAB_CONSTS + 6u));
    let a = df_add(df_mul_f(df_sub(fx, fy), 500.0), Df(128.0, 0.0));
    let b = df_add(df_mul_f(df_sub(fy, fz), 200.0), Df(128.0, 0.0));
    return vec4<u32>(lab_byte(l), lab_byte(a) ^ 0x80u, lab_byte(b) ^ 0x80u, 0u);
}

// ---- packing: 4 converted pixels → BPP words of the mode's tobytes() layout ----------------

// 1, L, P: one byte per pixel, one word.
fn store_bytes1(quad: u32, v: array<vec4<u32>, 4>) {
    dst[quad] = v[0].x | (v[1].x << 8u) | (v[2].x << 16u) | (v[3].x << 24u);
}

// RGB, HSV, YCbCr, LAB: three bytes per pixel, twelve bytes in three words.
fn store_bytes3(quad: u32, v: array<vec4<u32>, 4>) {
    let at = quad * 3u;
    dst[at] = v[0].x | (v[0].y << 8u) | (v[0].z << 16u) | (v[1].x << 24u);
    dst[at + 1u] = v[1].y | (v[1].z << 8u) | (v[2].x << 16u) | (v[2].y << 24u);
    dst[at + 2u] = v[2].z | (v[3].x << 8u) | (v[3].y << 16u) | (v[3].z << 24u);
}

// RGBA, CMYK: four bytes per pixel, a word each.
fn store_bytes4(quad: u32, v: array<vec4<u32>, 4>) {
    for (var k = 0u; k < QUAD; k++) {
        dst[quad * QUAD + k] = pack_rgba(v[k]);
    }
}

// I, F: one little-endian 32-bit word per pixel.
fn store_words(quad: u32, v: array<vec4<u32>, 4>) {
    for (var k = 0u; k < QUAD; k++) {
        dst[quad * QUAD + k] = v[k].x;
    }
}

// Pixel `p` (flat index in the band) after mirror and the filter chain.
fn band_pixel(p: u32, width: u32) -> vec4<u32> {
    let row = p / width;
    var x = p % width;
    if (MIRROR) {
        x = width - 1u - x;
    }
    return chain(load(row * width + x), CHAIN_ALL);
}

// The mode pass: invocation `quad` converts the band's pixels 4·quad .. 4·quad + 3 (flat, so
// rows need not be multiples of 4) and writes their BPP words; pixels past the band's end are
// zeros in the last words, which the host trims. The dispatch is 2-D when a band needs more
// than 65,535 groups: quad = (y · groups across + x-group) · MODE_GROUP + lane.
@compute @workgroup_size(64)
fn mode_main(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    let width = params.width;
    let pixels = params.rows * width;
    let quad = gid.y * groups.x * MODE_GROUP + gid.x;
    let first = quad * QUAD;
    if (first >= pixels) {
        return;
    }
    var v: array<vec4<u32>, 4>;
    for (var k = 0u; k < QUAD; k++) {
        if (first + k < pixels) {
            v[k] = convert_pixel(band_pixel(first + k, width));
        }
    }
    store_quad(quad, v);
}

//! The CPU fast path: the same bytes as the reference in [`super::cpu`], computed with every
//! core and with integer arithmetic the compiler turns into SIMD.
//!
//! ```text
//! frame ──bands of rows, each thread taking the next free one──▶ per row, blocks of 64 pixels
//!   held as u32 (R in the low byte):
//!   gather (mirrored: read the row right to left) → filters in order → store   (one read, one write)
//!
//! sepia       out = min(255, rint(n / 1000)): n in f32 (exact below 2^24), one division,
//!             rounded half to even by adding 1.5 · 2^23                 (n ≤ 344,505)
//! sepia-norm  X = 2·255·n + N, D = 2N, t = ⌊X / D⌋ = X · M >> s with s = 28 + ⌈log₂ D⌉,
//!             M = ⌈2^s / D⌉ (per frame; exact for every X < 2^28, and X ≤ 511·N < 2^28)
//!             out = t − [t·D = X and t odd]                                 (half to even)
//!             N = the frame's largest R sum (393R + 769G + 189B dominates the G and B sums
//!             column by column, so it is the largest of the three)
//! grayscale   L = (19595R + 38470G + 7471B + 0x8000) >> 16;  out = L·0x010101 | alpha
//! invert      out = v ^ 0x00FFFFFF
//! ```
//! A sepia-norm needs the maximum over the whole frame before its first pixel: each one ends a
//! pass, whose threads also reduce that maximum while they write, so a chain costs one pass
//! per sepia-norm plus one. The mirror is a permutation, so a maximum taken before it is the
//! same; a chain that starts with sepia-norm reduces read-only first and mirrors in the pass
//! that writes.
//!
//! Mirrored rows are copied whole before they are overwritten; while a row is filtered the
//! next one is prefetched, so that the copy finds it in cache and reading the frame overlaps
//! the arithmetic. Unmirrored rows stream in order and the hardware prefetcher keeps up. A
//! pass that ends in a mode's map ([`apply_map`]) writes only the mode's values, so its rows
//! are never overwritten and the mirror reads them in place.
//!
//! Why `M` is exact: `M·D − 2^s < D ≤ 2^⌈log₂ D⌉ = 2^(s−28)`, so for `X < 2^28` the error
//! `X·(M·D − 2^s) / (D·2^s) < 1/D`, too small to carry `X/D` past the next integer. The
//! sepia rounding is checked exhaustively over its whole range by the unit tests, the
//! sepia-norm divisor at both sides of every step for every `N` a frame can have.

use std::mem::MaybeUninit;
use std::sync::{Mutex, OnceLock, PoisonError};

use super::{Filter, Ops, cpu};

/// Pixels a row is processed in at a time: 256 bytes, a few vector registers' worth, held in
/// L1 while every filter of the chain runs over it.
const BLOCK: usize = 64;

/// Pixels in the bands of rows that threads take one at a time (about 256 KB: a thread's
/// share of L2, and about 30 bands in a 1080p frame to balance the threads with).
const BAND_PIXELS: usize = 1 << 16;

/// Frames below this many pixels per thread run on fewer threads: starting a thread costs
/// about as much as filtering this many pixels.
const MIN_PIXELS_PER_THREAD: usize = 1 << 15;

/// The largest sepia sum: `(393 + 769 + 189) · 255` for a white pixel.
pub const SEPIA_SUM_MAX: u32 = 344_505;

/// How [`apply_with`] runs. [`Tuning::default`] uses every core and the widest SIMD the CPU
/// has; tests pin the thread count to split small frames, and turn AVX2 off to check the
/// portable code too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tuning {
    /// Threads at most (at least 1; also capped by the frame's rows and its size).
    pub threads: usize,
    /// Whether small frames still run on `threads` threads (tests: to split 3×7 frames).
    pub split_small_frames: bool,
    /// Use AVX2 where the CPU has it (x86-64 only; elsewhere the portable code runs).
    pub avx2: bool,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            threads: available_threads(),
            split_small_frames: false,
            avx2: true,
        }
    }
}

/// The machine's cores, asked once (the answer reads cgroup files on Linux).
pub fn available_threads() -> usize {
    static THREADS: OnceLock<usize> = OnceLock::new();
    *THREADS.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// Applies `ops` (mirror and filters; not the mode) to an RGBA8 frame of `width × height`
/// pixels, in place: byte for byte what [`cpu::apply`] gives, on every core.
pub fn apply(ops: &Ops, width: u32, height: u32, rgba: &mut [u8]) {
    apply_with(ops, width, height, rgba, Tuning::default());
}

/// [`apply`] with an explicit [`Tuning`].
///
/// A buffer whose length is not `width × height × 4` is handed to the reference, which defines
/// what such a call does (in debug builds it asserts).
pub fn apply_with(ops: &Ops, width: u32, height: u32, rgba: &mut [u8], tuning: Tuning) {
    let (w, h) = (width as usize, height as usize);
    if w.checked_mul(h).and_then(|n| n.checked_mul(4)) != Some(rgba.len()) {
        cpu::apply(ops, width, height, rgba);
        return;
    }
    if rgba.is_empty() || (!ops.mirror && ops.filters.is_empty()) {
        return;
    }
    run_chain::<u8, 4, InPlace>(ops, w, rgba, tuning, None);
}

/// Applies `ops` and maps every resulting pixel through `f` (a mode's point-wise conversion)
/// in the same pass, returning `f`'s `N` values a pixel, row by row: what [`apply`] followed
/// by mapping each pixel gives, reading the frame once instead of three times (read, write
/// back, read again). `rgba` is left as it was (a chain whose `sepia-norm` follows another
/// filter runs its passes on a copy).
///
/// A buffer whose length is not `width × height × 4` goes through [`cpu::apply`] and then
/// `f`, pixel by pixel.
pub fn apply_map<T, const N: usize>(
    ops: &Ops,
    width: u32,
    height: u32,
    rgba: &mut [u8],
    f: impl Fn([u8; 4]) -> [T; N] + Sync,
) -> Vec<T>
where
    T: Copy + Send,
{
    apply_map_with(ops, width, height, rgba, f, Tuning::default())
}

/// [`apply_map`] with an explicit [`Tuning`].
pub fn apply_map_with<T, const N: usize>(
    ops: &Ops,
    width: u32,
    height: u32,
    rgba: &mut [u8],
    f: impl Fn([u8; 4]) -> [T; N] + Sync,
    tuning: Tuning,
) -> Vec<T>
where
    T: Copy + Send,
{
    let (w, h) = (width as usize, height as usize);
    if w.checked_mul(h).and_then(|n| n.checked_mul(4)) != Some(rgba.len()) || rgba.is_empty() {
        let mut filtered = rgba.to_vec();
        cpu::apply(ops, width, height, &mut filtered);
        return filtered
            .chunks_exact(4)
            .flat_map(|p| f([p[0], p[1], p[2], p[3]]))
            .collect();
    }
    let len = w * h * N;
    let mut out: Vec<T> = Vec::with_capacity(len);
    // A pass before the last writes its result back (a filter before a `sepia-norm`, whose
    // maximum is of that result): it writes into a copy, so that `rgba` stays as it was.
    let mut scratch;
    let source = if writes_before_last_pass(ops) {
        scratch = rgba.to_vec();
        &mut scratch[..]
    } else {
        rgba
    };
    run_chain(
        ops,
        w,
        source,
        tuning,
        Some((&mut out.spare_capacity_mut()[..len], &f)),
    );
    // SAFETY: the capacity is `len`, and the chain's last pass wrote all of `0..len`: every
    // band of rows gets the part of `out` that lies under it, and every block of every row
    // writes its `N` values a pixel (a panic unwinds before this).
    unsafe { out.set_len(len) };
    out
}

/// True when a chain's pass before its last writes pixels back ([`run_chain`]): a
/// `sepia-norm` with any filter before it (a point filter, or another `sepia-norm`). The
/// mirror alone is deferred to the pass that writes, and a first `sepia-norm` only reads.
fn writes_before_last_pass(ops: &Ops) -> bool {
    ops.filters
        .iter()
        .rposition(|f| *f == Filter::SepiaNorm)
        .is_some_and(|last| last > 0)
}

/// The type of the map a chain without one is instantiated with (never called).
type InPlace = fn([u8; 4]) -> [u8; 4];

/// A mode's point-wise map and where its values go: `N` a pixel, row by row.
type Mapped<'a, T, F> = (&'a mut [MaybeUninit<T>], &'a F);

/// Runs the whole chain on a frame of `width`-pixel rows, one pass per `sepia-norm` plus one;
/// with `map`, the last pass writes through it instead of back into `rgba`.
fn run_chain<T, const N: usize, F>(
    ops: &Ops,
    width: usize,
    rgba: &mut [u8],
    tuning: Tuning,
    mut map: Option<Mapped<'_, T, F>>,
) where
    T: Copy + Send,
    F: Fn([u8; 4]) -> [T; N] + Sync,
{
    let h = rgba.len() / 4 / width;
    let threads = if tuning.split_small_frames {
        tuning.threads
    } else {
        tuning.threads.min(width * h / MIN_PIXELS_PER_THREAD)
    }
    .clamp(1, h);
    let pixels: &mut [[u8; 4]] = bytemuck::cast_slice_mut(rgba);
    let frame = Frame {
        width,
        threads,
        avx2: tuning.avx2 && has_avx2(),
    };

    let mut mirror_pending = ops.mirror;
    let mut norm: Option<u32> = None;
    let mut rest = &ops.filters[..];
    loop {
        let end = rest
            .iter()
            .position(|f| *f == Filter::SepiaNorm)
            .unwrap_or(rest.len());
        let point: Vec<Point> = rest[..end].iter().filter_map(|f| Point::of(*f)).collect();
        let reduce = end < rest.len();
        let changes_pixels = norm.is_some() || !point.is_empty();
        // A maximum is the same before and after the mirror: defer it to a pass that writes.
        let mirror = mirror_pending && (changes_pixels || !reduce);
        let pass = Pass {
            mirror,
            norm: norm.map(NormDivisor::new),
            point,
            reduce,
        };
        let max = frame.run(&pass, pixels, if reduce { None } else { map.take() });
        mirror_pending &= !mirror;
        if !reduce {
            return;
        }
        norm = Some(max);
        rest = &rest[end + 1..];
    }
}

/// A point-wise filter: what a block goes through between the reductions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Point {
    Sepia,
    Grayscale,
    Invert,
}

impl Point {
    /// `None` for sepia-norm, which is a reduction followed by [`NormDivisor`].
    fn of(filter: Filter) -> Option<Point> {
        match filter {
            Filter::Sepia => Some(Point::Sepia),
            Filter::Grayscale => Some(Point::Grayscale),
            Filter::Invert => Some(Point::Invert),
            Filter::SepiaNorm => None,
        }
    }
}

/// One pass over the frame: optional mirror, optional sepia-norm (with the frame's maximum
/// already known), point filters, and optionally the maximum R sum of the result.
struct Pass {
    mirror: bool,
    norm: Option<NormDivisor>,
    point: Vec<Point>,
    reduce: bool,
}

impl Pass {
    fn writes(&self) -> bool {
        self.mirror || self.norm.is_some() || !self.point.is_empty()
    }
}

/// The frame's shape and how it is split.
struct Frame {
    width: usize,
    threads: usize,
    avx2: bool,
}

impl Frame {
    /// Runs `pass` over all rows, split into bands of rows that the threads take in turn;
    /// returns the maximum R sum when the pass reduces (else 0). With `map`, the pixels go
    /// through it into its buffer instead of back into `pixels`.
    fn run<T, const N: usize, F>(
        &self,
        pass: &Pass,
        pixels: &mut [[u8; 4]],
        map: Option<Mapped<'_, T, F>>,
    ) -> u32
    where
        T: Copy + Send,
        F: Fn([u8; 4]) -> [T; N] + Sync,
    {
        let (mut out, f) = match map {
            Some((out, f)) => (out, Some(f)),
            None => (&mut [][..], None),
        };
        if self.threads <= 1 {
            return self.run_band(pass, Band::new(pixels, self.width, out, f));
        }
        let rows = pixels.len() / self.width;
        let band_rows = BAND_PIXELS
            .div_ceil(self.width)
            .min(rows.div_ceil(self.threads))
            .max(1);
        // Each band of pixels with the part of the output under it (none in place).
        let parts: Vec<_> = pixels
            .chunks_mut(band_rows * self.width)
            .map(|band| {
                let take = if f.is_some() { band.len() * N } else { 0 };
                let (part, after) = std::mem::take(&mut out).split_at_mut(take);
                out = after;
                (band, part)
            })
            .collect();
        let bands = Mutex::new(parts.into_iter());
        // Each thread takes the next band when it finishes one, so a core that another
        // process holds for a while delays only the band it is on, not half the frame.
        let work = || {
            let mut max = 0;
            loop {
                let band = bands.lock().unwrap_or_else(PoisonError::into_inner).next();
                let Some((band, part)) = band else { return max };
                max = max.max(self.run_band(pass, Band::new(band, self.width, part, f)));
            }
        };
        std::thread::scope(|scope| {
            let helpers: Vec<_> = (1..self.threads).map(|_| scope.spawn(work)).collect();
            let mut max = work();
            for helper in helpers {
                // A kernel does not panic; if one did, the panic is passed on unchanged.
                let band_max = helper
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
                max = max.max(band_max);
            }
            max
        })
    }

    fn run_band<T: Copy, const N: usize, F: Fn([u8; 4]) -> [T; N]>(
        &self,
        pass: &Pass,
        band: Band<'_, T, F>,
    ) -> u32 {
        #[cfg(target_arch = "x86_64")]
        if self.avx2 {
            // SAFETY: `self.avx2` is only true when the CPU reported AVX2 (`has_avx2`).
            return unsafe { run_band_avx2(pass, band) };
        }
        run_band_inline(pass, band, false)
    }
}

/// One band of rows for a kernel: its pixels (`width` a row) and, for a pass that ends in a
/// mode's map, the map and the part of the output under the band (`N` values a pixel).
struct Band<'a, T, F> {
    rows: &'a mut [[u8; 4]],
    width: usize,
    out: &'a mut [MaybeUninit<T>],
    map: Option<&'a F>,
}

impl<'a, T, F> Band<'a, T, F> {
    fn new(
        rows: &'a mut [[u8; 4]],
        width: usize,
        out: &'a mut [MaybeUninit<T>],
        map: Option<&'a F>,
    ) -> Self {
        Band {
            rows,
            width,
            out,
            map,
        }
    }
}

fn has_avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// The band kernel compiled for AVX2 (8 pixels a vector instead of SSE2's 4).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn run_band_avx2<T: Copy, const N: usize, F: Fn([u8; 4]) -> [T; N]>(
    pass: &Pass,
    band: Band<'_, T, F>,
) -> u32 {
    run_band_inline(pass, band, true)
}

/// Runs `pass` over the rows of `band` (`width` pixels each), writing back into `band`, or,
/// with `f`, through `f` into `out` (`N` values a pixel, `band` only read); every helper it
/// calls is inlined so that the AVX2 copy is AVX2 throughout.
/// `ssse3` says the caller was compiled for it (the AVX2 copy), so byte shuffles may be used.
#[inline(always)]
fn run_band_inline<T: Copy, const N: usize, F: Fn([u8; 4]) -> [T; N]>(
    pass: &Pass,
    band: Band<'_, T, F>,
    ssse3: bool,
) -> u32 {
    let Band {
        rows: band,
        width,
        out,
        map: f,
    } = band;
    if !pass.writes() && f.is_none() {
        return if pass.reduce { max_r_sum(band) } else { 0 };
    }
    let mut max = 0;
    // Rows written back are read whole first (the mirror is a gather); mapped ones are not
    // written, so the mirror reads them in place.
    let copy_rows = pass.mirror && f.is_none();
    let mut source = Vec::with_capacity(if copy_rows { width } else { 0 });
    let mut block = [0u32; BLOCK];
    let rows = band.len() / width;
    for y in 0..rows {
        let (row, next) = band[y * width..].split_at_mut(width);
        if copy_rows {
            source.clear();
            source.extend_from_slice(row);
        }
        for k in 0..width.div_ceil(BLOCK) {
            let x0 = k * BLOCK;
            let n = BLOCK.min(width - x0);
            if pass.mirror {
                // The next row, a block at a time, while this one is filtered (module doc).
                for line in next.get(x0..(x0 + n)).unwrap_or_default().chunks(16) {
                    prefetch(line);
                }
            }
            if pass.mirror {
                let rows_source = if copy_rows { &source[..] } else { &row[..] };
                let from = &rows_source[width - x0 - n..width - x0];
                for (b, p) in block.iter_mut().zip(from.iter().rev()) {
                    *b = u32::from_le_bytes(*p);
                }
            } else {
                for (b, p) in block.iter_mut().zip(row[x0..x0 + n].iter()) {
                    *b = u32::from_le_bytes(*p);
                }
            }
            if let Some(divisor) = pass.norm {
                sepia_norm_block(&mut block, divisor);
            }
            for point in &pass.point {
                match point {
                    Point::Sepia => sepia_block(&mut block),
                    Point::Grayscale => grayscale_block(&mut block),
                    Point::Invert => invert_block(&mut block),
                }
            }
            if pass.reduce {
                max = max.max(block[..n].iter().map(|&v| r_sum(v)).fold(0, u32::max));
            }
            match f {
                Some(f) => {
                    let at = (y * width + x0) * N;
                    store_mapped(f, &block[..n], &mut out[at..at + n * N], ssse3);
                }
                None => {
                    for (p, b) in row[x0..x0 + n].iter_mut().zip(block.iter()) {
                        *p = b.to_le_bytes();
                    }
                }
            }
        }
    }
    max
}

/// Writes `f` of each pixel of `block` into `out`, `N` values a pixel.
///
/// Modes of three bytes a pixel (RGB, YCbCr, HSV, LAB) are the common case (`image_mode`'s
/// default is RGB) and the slow one to store a pixel at a time: two scalar stores of 2 and 1
/// bytes each. Their values are put in a block of `u32` with a zero fourth byte and packed
/// four pixels (12 bytes) at a time instead; at 1080p that took mirror + sepia to RGB from
/// about 2.55 to 2.1 ms on one core.
#[inline(always)]
fn store_mapped<T: Copy, const N: usize, F: Fn([u8; 4]) -> [T; N]>(
    f: &F,
    block: &[u32],
    out: &mut [MaybeUninit<T>],
    ssse3: bool,
) {
    if N == 3 && std::mem::size_of::<T>() == 1 {
        let mut padded = [0u32; BLOCK];
        for (w, &v) in padded.iter_mut().zip(block) {
            let values = f(v.to_le_bytes());
            // SAFETY: `T` is one byte, so `[T; 3]` is three bytes, each a valid `u8`; the
            // bytes go back out as the same `T` values, only moved.
            let [a, b, c] = unsafe { std::mem::transmute_copy::<[T; N], [u8; 3]>(&values) };
            *w = u32::from_le_bytes([a, b, c, 0]);
        }
        // SAFETY: `T` is one byte with alignment 1, as `MaybeUninit<u8>` is.
        let bytes = unsafe {
            std::slice::from_raw_parts_mut(out.as_mut_ptr().cast::<MaybeUninit<u8>>(), out.len())
        };
        pack3(&padded, bytes, ssse3);
        return;
    }
    for (o, v) in out.chunks_exact_mut(N).zip(block) {
        o.copy_from_slice(&f(v.to_le_bytes()).map(MaybeUninit::new));
    }
}

/// Writes the low three bytes of the first `out.len() / 3` of `words` into `out`, in order.
#[inline(always)]
fn pack3(words: &[u32; BLOCK], out: &mut [MaybeUninit<u8>], ssse3: bool) {
    debug_assert!(out.len().is_multiple_of(3) && out.len() <= BLOCK * 3);
    // Four words make 12 bytes. They go into `packed` first, a whole group at a time (the
    // shuffle's 16-byte stores, 12 bytes apart, need 4 spare bytes at the end), and the bytes
    // wanted are then copied out.
    let mut packed = [0u8; BLOCK * 3 + 4];
    let groups = (out.len() / 3).div_ceil(4);
    #[cfg(target_arch = "x86_64")]
    if ssse3 {
        use std::arch::x86_64::{
            __m128i, _mm_loadu_si128, _mm_setr_epi8, _mm_shuffle_epi8, _mm_storeu_si128,
        };
        // SAFETY: `ssse3` is only true in code compiled for AVX2 (which includes SSSE3), run
        // on a CPU that has it. Group `g < BLOCK / 4` loads words `4g..4g + 4` of `words` and
        // stores 16 bytes at `12g`, which ends at most at `3 · BLOCK + 4`, inside `packed`.
        unsafe {
            let keep_three = _mm_setr_epi8(0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14, -1, -1, -1, -1);
            for g in 0..groups {
                let quad = _mm_loadu_si128(words.as_ptr().add(4 * g).cast::<__m128i>());
                let to = packed.as_mut_ptr().add(12 * g).cast::<__m128i>();
                _mm_storeu_si128(to, _mm_shuffle_epi8(quad, keep_three));
            }
        }
        write_bytes(out, &packed);
        return;
    }
    let _ = ssse3;
    for (g, p) in words.chunks_exact(4).take(groups).enumerate() {
        let three = [
            (p[0] & 0xFF_FFFF) | (p[1] << 24),
            ((p[1] >> 8) & 0xFFFF) | (p[2] << 16),
            ((p[2] >> 16) & 0xFF) | (p[3] << 8),
        ];
        for (k, w) in three.iter().enumerate() {
            let at = 12 * g + 4 * k;
            packed[at..at + 4].copy_from_slice(&w.to_le_bytes());
        }
    }
    write_bytes(out, &packed);
}

/// Fills `to` with the first `to.len()` bytes of `from` (a `memcpy` once compiled).
#[inline(always)]
fn write_bytes(to: &mut [MaybeUninit<u8>], from: &[u8]) {
    for (t, &b) in to.iter_mut().zip(from) {
        t.write(b);
    }
}

/// Asks the CPU to bring the cache line at `pixels` in (a hint: no effect on the result).
#[inline(always)]
fn prefetch(pixels: &[[u8; 4]]) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: SSE is part of x86-64, and a prefetch reads nothing the program sees (it
    // does not fault, whatever the address).
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
            pixels.as_ptr().cast(),
        );
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = pixels;
}

/// The sepia R sum of a packed pixel: `393R + 769G + 189B`, the largest of its three sums.
#[inline(always)]
fn r_sum(v: u32) -> u32 {
    let [r, g, b] = channels(v);
    393 * r + 769 * g + 189 * b
}

#[inline(always)]
fn max_r_sum(pixels: &[[u8; 4]]) -> u32 {
    pixels
        .iter()
        .map(|p| r_sum(u32::from_le_bytes(*p)))
        .fold(0, u32::max)
}

#[inline(always)]
fn channels(v: u32) -> [u32; 3] {
    [v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff]
}

/// `1.5 · 2^23`: adding it to an `f32` in `[0, 2^22)` rounds the sum to a whole number, half
/// to even, in the add itself; that number is then the low bits of the sum.
const ROUND_MAGIC: f32 = 12_582_912.0;

/// `rint(n / 1000)`, half to even, for `n ≤ SEPIA_SUM_MAX` (equal to `div_rint(n, 1000)`).
///
/// `n < 2^24` is exact in an `f32`, and the quotient is correctly rounded: a tie `k + ½` is
/// exact, and any other quotient is at least 0.001 from a half, far more than its rounding
/// error (below 2^-15 under 512), so the add rounds it the right way. One vector division
/// per 8 pixels replaces the multiply, shifts and tie test of the integer form.
#[inline(always)]
fn rint1000(n: u32) -> u32 {
    ((n as i32 as f32) / 1000.0 + ROUND_MAGIC)
        .to_bits()
        .wrapping_sub(ROUND_MAGIC.to_bits())
}

#[inline(always)]
fn sepia_block(block: &mut [u32; BLOCK]) {
    for v in block.iter_mut() {
        let [r, g, b] = channels(*v);
        let out_r = rint1000(393 * r + 769 * g + 189 * b).min(255);
        let out_g = rint1000(349 * r + 686 * g + 168 * b).min(255);
        // At most 239: (272 + 534 + 131) · 255 / 1000.
        let out_b = rint1000(272 * r + 534 * g + 131 * b);
        *v = out_r | out_g << 8 | out_b << 16 | (*v & 0xff00_0000);
    }
}

#[inline(always)]
fn grayscale_block(block: &mut [u32; BLOCK]) {
    for v in block.iter_mut() {
        let [r, g, b] = channels(*v);
        let l = (19_595 * r + 38_470 * g + 7_471 * b + 0x8000) >> 16;
        *v = (l * 0x01_0101) | (*v & 0xff00_0000);
    }
}

#[inline(always)]
fn invert_block(block: &mut [u32; BLOCK]) {
    for v in block.iter_mut() {
        *v ^= 0x00ff_ffff;
    }
}

/// `rint(255·n / N)` for the frame's maximum sum `N` as a multiply and a shift (see the module
/// comment); `N = 0` (a black frame) gives black, as the reference does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NormDivisor {
    /// The frame's maximum sum `N`.
    max: u32,
    /// `D = 2N`.
    d: u32,
    /// `M = ⌈2^s / D⌉ ≤ 2^29 + 1`.
    m: u32,
    /// `s = 28 + ⌈log₂ D⌉`.
    s: u32,
}

/// Every dividend `X = 2·255·n + N` with `n ≤ N ≤ SEPIA_SUM_MAX` is below `2^DIVIDEND_BITS`.
const DIVIDEND_BITS: u32 = 28;

impl NormDivisor {
    /// The divisor for a frame whose largest sepia sum is `max` (at most [`SEPIA_SUM_MAX`]).
    pub fn new(max: u32) -> Self {
        let d = 2 * max;
        if d == 0 {
            return NormDivisor { max, d, m: 0, s: 0 };
        }
        let log2_ceil = u32::BITS - (d - 1).leading_zeros();
        let s = DIVIDEND_BITS + log2_ceil;
        let m = (1u64 << s).div_ceil(u64::from(d));
        NormDivisor {
            max,
            d,
            m: m as u32,
            s,
        }
    }

    /// `⌊x / 2N⌋` for `x < 2^28` (0 when `N = 0`).
    #[inline(always)]
    pub fn floor_div(self, x: u32) -> u32 {
        ((u64::from(x) * u64::from(self.m)) >> self.s) as u32
    }

    /// `rint(255·n / N)`, half to even, for `n ≤ N` (0 when `N = 0`).
    #[inline(always)]
    pub fn rint_scaled(self, n: u32) -> u32 {
        let x = 510 * n + self.max;
        let t = self.floor_div(x);
        let tie = u32::from(t * self.d == x);
        t - (tie & t)
    }
}

#[inline(always)]
fn sepia_norm_block(block: &mut [u32; BLOCK], divisor: NormDivisor) {
    if divisor.max == 0 {
        for v in block.iter_mut() {
            *v &= 0xff00_0000;
        }
        return;
    }
    for v in block.iter_mut() {
        let [r, g, b] = channels(*v);
        let out_r = divisor.rint_scaled(393 * r + 769 * g + 189 * b);
        let out_g = divisor.rint_scaled(349 * r + 686 * g + 168 * b);
        let out_b = divisor.rint_scaled(272 * r + 534 * g + 131 * b);
        *v = out_r | out_g << 8 | out_b << 16 | (*v & 0xff00_0000);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::{SEPIA_1000, div_rint, sepia_sums};

    #[test]
    fn sepia_sum_max_is_white() {
        assert_eq!(sepia_sums(255, 255, 255)[0], SEPIA_SUM_MAX);
    }

    #[test]
    fn rint1000_equals_div_rint_for_every_sepia_sum() {
        for n in 0..=SEPIA_SUM_MAX {
            assert_eq!(rint1000(n), div_rint(n, 1000), "n = {n}");
        }
    }

    #[test]
    fn the_r_sum_is_the_largest_of_the_three() {
        // Column by column the R row dominates the G row, which dominates the B row.
        let [r, g, b] = SEPIA_1000;
        for k in 0..3 {
            assert!(r[k] >= g[k] && g[k] >= b[k], "column {k}");
        }
    }

    /// `floor_div` is monotone in `x`, as is `⌊x / D⌋`: agreeing on both sides of every step
    /// (`t·D − 1` and `t·D`) up to the largest dividend proves them equal on the whole range.
    #[test]
    fn norm_divisor_is_exact_for_every_frame_maximum() {
        for max in 1..=SEPIA_SUM_MAX {
            let div = NormDivisor::new(max);
            let d = 2 * max;
            let largest = 510 * max + max;
            assert!(largest < 1 << DIVIDEND_BITS);
            let mut t = 0u32;
            loop {
                let step = t * d;
                if step > largest {
                    break;
                }
                assert_eq!(div.floor_div(step), t, "max {max}, x = {step}");
                if step > 0 {
                    assert_eq!(
                        div.floor_div(step - 1),
                        t - 1,
                        "max {max}, x = {}",
                        step - 1
                    );
                }
                t += 1;
            }
            assert_eq!(div.floor_div(largest), largest / d, "max {max}");
        }
    }

    #[test]
    fn rint_scaled_equals_div_rint_for_every_sum_of_some_maxima() {
        for max in [
            1,
            2,
            3,
            7,
            1000,
            1001,
            65_535,
            65_536,
            200_001,
            SEPIA_SUM_MAX,
        ] {
            let div = NormDivisor::new(max);
            for n in 0..=max {
                assert_eq!(
                    div.rint_scaled(n),
                    div_rint(255 * n, max),
                    "max {max}, n {n}"
                );
            }
        }
    }
}

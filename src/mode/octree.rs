//! RGBA → P: Pillow's `quantize(256)` "fast octree" (`Quant.c` + `QuantOctree.c`), a
//! whole-image palette built from colour-cube histograms, no dither.
//!
//! ```text
//! 0. Every fully transparent pixel (A = 0) after the first takes the first one's R, G, B.
//! 1. Histograms: a fine cube of 3,4,3,3 bits (R,G,B,A: 8×16×8×8 buckets, index
//!    r<<10 | g<<6 | b<<3 | a of the top bits) and a coarse cube of 2,2,2,2 bits (4^4).
//!    Each bucket holds a pixel count and per-channel sums.
//! 2. n_coarse = used coarse buckets (at most N = 256); n_fine = N − n_coarse.
//! 3. Fine buckets sorted by count, descending, ties in bucket order (glibc's qsort is a
//!    stable merge sort). The first n_fine are subtracted from the coarse bucket holding
//!    their average colour. While that empties coarse buckets: n_coarse = used coarse
//!    buckets, n_fine = N − n_coarse, subtract the newly admitted fine buckets too.
//! 4. Palette buckets: the first n_coarse coarse buckets sorted the same way, then the first
//!    n_fine fine ones (empty buckets included when there are too few: colour 0,0,0,0).
//!    Entry colour = per-channel (int)(f32(sum) / f32(count)), clipped to 0..=255.
//! 5. Lookup: each coarse cell gets the index of the coarse entry whose average lies in it
//!    (lower index wins), every fine cell inherits its coarse parent's index, then each fine
//!    entry overwrites the fine cell of its average (lower index wins). Pixel → index of its
//!    fine cell. Empty fine entries all land in cell (0,0,0,0), as in Pillow.
//! ```
//! The palette always has N entries, RGBA.

/// The number of colours `convert("P")` asks `quantize` for.
pub const MAX_COLORS: usize = 256;

/// Bits of R, G, B, A in the fine cube (Pillow's `CUBE_LEVELS_ALPHA[0..4]`).
pub const FINE_BITS: [u32; 4] = [3, 4, 3, 3];
/// Bits of R, G, B, A in the coarse cube (Pillow's `CUBE_LEVELS_ALPHA[4..8]`).
pub const COARSE_BITS: [u32; 4] = [2, 2, 2, 2];

/// One histogram cell: how many pixels fell in it and the sums of their channels.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Bucket {
    count: u32,
    sum: [u64; 4],
}

impl Bucket {
    /// The mean colour as Pillow computes it: f32 division, truncation, clip to 0..=255;
    /// an empty bucket is (0, 0, 0, 0).
    fn average(&self) -> [u8; 4] {
        if self.count == 0 {
            return [0; 4];
        }
        let n = self.count as f32;
        // `as i32` truncates like C's (int); the clamp is Pillow's CLIP8.
        self.sum
            .map(|s| ((s as f32 / n) as i32).clamp(0, 255) as u8)
    }
}

/// A histogram over the top `bits[k]` bits of each of R, G, B, A.
#[derive(Debug, Clone)]
struct Cube {
    bits: [u32; 4],
    buckets: Vec<Bucket>,
}

impl Cube {
    fn new(bits: [u32; 4]) -> Self {
        let size = 1usize << bits.iter().sum::<u32>();
        Cube {
            bits,
            buckets: vec![Bucket::default(); size],
        }
    }

    /// The bucket index of a colour: channels' top bits concatenated, R most significant.
    fn offset(&self, p: [u8; 4]) -> usize {
        (0..4).fold(0usize, |off, k| {
            (off << self.bits[k]) | (u32::from(p[k]) >> (8 - self.bits[k])) as usize
        })
    }

    /// The lowest colour that falls in bucket `idx` (inverse of [`Cube::offset`]).
    fn corner(&self, mut idx: usize) -> [u8; 4] {
        let mut p = [0u8; 4];
        for k in (0..4).rev() {
            let b = self.bits[k];
            p[k] = ((idx & ((1 << b) - 1)) << (8 - b)) as u8;
            idx >>= b;
        }
        p
    }

    fn add(&mut self, p: [u8; 4]) {
        let i = self.offset(p);
        let bucket = &mut self.buckets[i];
        bucket.count += 1;
        for (s, &c) in bucket.sum.iter_mut().zip(&p) {
            *s += u64::from(c);
        }
    }

    fn used(&self) -> usize {
        self.buckets.iter().filter(|b| b.count > 0).count()
    }

    /// The buckets by count, descending; equal counts keep bucket order.
    fn sorted(&self) -> Vec<Bucket> {
        let mut v = self.buckets.clone();
        v.sort_by_key(|b| std::cmp::Reverse(b.count)); // stable
        v
    }

    /// Removes each non-empty bucket of `list` from the bucket holding its average colour.
    fn subtract(&mut self, list: &[Bucket]) {
        for sub in list.iter().filter(|b| b.count > 0) {
            let i = self.offset(sub.average());
            let m = &mut self.buckets[i];
            m.count = m.count.wrapping_sub(sub.count);
            for (s, &t) in m.sum.iter_mut().zip(&sub.sum) {
                *s = s.wrapping_sub(t);
            }
        }
    }
}

/// Quantizes RGBA pixels to `n_colors` palette entries (`quantize(n_colors)` on an RGBA image,
/// method FASTOCTREE). Returns one index per pixel and the RGBA palette (`n_colors` entries).
/// `n_colors` must be at most 256 for the indices to fit a byte.
pub fn quantize(px: &[[u8; 4]], n_colors: usize) -> (Vec<u8>, Vec<[u8; 4]>) {
    let pixels = unify_transparent(px);

    let mut fine = Cube::new(FINE_BITS);
    let mut coarse = Cube::new(COARSE_BITS);
    for &p in &pixels {
        // Adding to the coarse cube directly equals Pillow's summing of fine buckets into it.
        fine.add(p);
        coarse.add(p);
    }

    let mut n_coarse = coarse.used().min(n_colors);
    let mut n_fine = n_colors - n_coarse;
    let fine_sorted = fine.sorted();
    let take = |n: usize| n.min(fine_sorted.len());
    coarse.subtract(&fine_sorted[..take(n_fine)]);
    while n_coarse > coarse.used() {
        let already = n_fine;
        n_coarse = coarse.used();
        n_fine = n_colors - n_coarse;
        coarse.subtract(&fine_sorted[take(already)..take(n_fine)]);
    }

    let mut entries = coarse.sorted();
    entries.truncate(n_coarse);
    entries.extend_from_slice(&fine_sorted[..take(n_fine)]);
    entries.resize(n_colors, Bucket::default());
    let palette: Vec<[u8; 4]> = entries.iter().map(Bucket::average).collect();

    // Coarse lookup, expanded to the fine cells, then the fine entries on top.
    let mut coarse_lookup = vec![0usize; coarse.buckets.len()];
    for i in (0..n_coarse).rev() {
        coarse_lookup[coarse.offset(palette[i])] = i;
    }
    let mut lookup: Vec<usize> = (0..fine.buckets.len())
        .map(|f| coarse_lookup[coarse.offset(fine.corner(f))])
        .collect();
    for i in (n_coarse..n_colors).rev() {
        lookup[fine.offset(palette[i])] = i;
    }

    let indices = pixels
        .iter()
        .map(|&p| lookup[fine.offset(p)] as u8)
        .collect();
    (indices, palette)
}

/// Pillow's `ImagingQuantize` preprocessing: every pixel with A = 0 after the first takes the
/// first transparent pixel's R, G, B (its alpha stays 0).
fn unify_transparent(px: &[[u8; 4]]) -> Vec<[u8; 4]> {
    let mut first: Option<[u8; 3]> = None;
    px.iter()
        .map(|&[r, g, b, a]| {
            if a != 0 {
                return [r, g, b, a];
            }
            let [r, g, b] = *first.get_or_insert([r, g, b]);
            [r, g, b, 0]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cube_offsets_and_corners_invert() {
        let fine = Cube::new(FINE_BITS);
        assert_eq!(fine.buckets.len(), 8192);
        assert_eq!(fine.offset([255, 255, 255, 255]), 8191);
        assert_eq!(fine.offset([32, 0, 0, 0]), 1 << 10);
        assert_eq!(fine.offset([0, 16, 0, 0]), 1 << 6);
        for i in 0..fine.buckets.len() {
            assert_eq!(fine.offset(fine.corner(i)), i);
        }
    }

    #[test]
    fn average_truncates_like_c() {
        let b = Bucket {
            count: 3,
            sum: [2, 5, 765, 0],
        };
        assert_eq!(b.average(), [0, 1, 255, 0]);
    }

    #[test]
    fn later_transparent_pixels_copy_the_first_ones_colour() {
        let px = [[1, 2, 3, 0], [9, 9, 9, 255], [7, 8, 9, 0]];
        assert_eq!(
            unify_transparent(&px),
            vec![[1, 2, 3, 0], [9, 9, 9, 255], [1, 2, 3, 0]]
        );
    }

    #[test]
    fn few_colours_get_exact_entries_and_zero_padding() {
        let px = [[200, 10, 10, 255], [10, 200, 10, 255], [200, 10, 10, 255]];
        let (idx, pal) = quantize(&px, MAX_COLORS);
        assert_eq!(pal.len(), 256);
        // The two colours are in different coarse cells: both fine buckets are admitted,
        // empty the coarse cube, and the most frequent comes first.
        assert_eq!(pal[0], [200, 10, 10, 255]);
        assert_eq!(pal[1], [10, 200, 10, 255]);
        assert!(pal[2..].iter().all(|&c| c == [0; 4]));
        assert_eq!(idx, vec![0, 1, 0]);
    }
}

//! A GIF frame of RGBA pixels: the `gif` crate's `Frame::from_rgba_speed`, the same frame,
//! made faster where the pixels have at most 256 colours (a GIF's own frames, a sprite, a
//! test pattern). That function finds the colours with a `BTreeSet` and each pixel's index
//! with a `BTreeMap`, two tree walks a pixel; here a small hash table of the colours seen,
//! and the index of the pixel before, which the next one usually shares.

use std::borrow::Cow;

/// Slots of the colour table: a power of two over twice the 257 colours it may hold.
const SLOTS: usize = 1024;
/// A slot with no colour (colours are 32 bits).
const EMPTY: u64 = u64::MAX;

/// The GIF frame of `pixels` (RGBA, `width` × `height`), as
/// `gif::Frame::from_rgba_speed(width, height, pixels, speed)` makes it, and like it leaving
/// `pixels` with every alpha 255 but the transparent pixels', all given the first transparent
/// pixel's colour.
pub(crate) fn frame_from_rgba(
    width: u16,
    height: u16,
    pixels: &mut [u8],
    speed: i32,
) -> gif::Frame<'static> {
    let mut transparent: Option<[u8; 4]> = None;
    for px in pixels.chunks_exact_mut(4) {
        if px[3] != 0 {
            px[3] = 0xFF;
        } else if let Some(t) = transparent {
            px.copy_from_slice(&t);
        } else {
            transparent = Some([px[0], px[1], px[2], px[3]]);
        }
    }
    let Some(table) = Colours::of(pixels) else {
        // Over 256 colours: NeuQuant, as the gif crate does.
        let nq = color_quant::NeuQuant::new(speed, 256, pixels);
        return gif::Frame {
            width,
            height,
            buffer: Cow::Owned(
                pixels
                    .chunks_exact(4)
                    .map(|px| nq.index_of(px) as u8)
                    .collect(),
            ),
            palette: Some(nq.color_map_rgb()),
            transparent: transparent.map(|t| nq.index_of(&t) as u8),
            ..gif::Frame::default()
        };
    };
    gif::Frame {
        width,
        height,
        buffer: Cow::Owned(table.indices(pixels)),
        palette: Some(table.palette()),
        transparent: transparent.map(|t| table.index(u32::from_be_bytes(t))),
        ..gif::Frame::default()
    }
}

/// The colours of an image of at most 256, each with its index in their sorted order (the
/// order of the `gif` crate's palette: by red, green, blue, then alpha).
struct Colours {
    /// Colours as big-endian `u32` (so that their order is that of `(r, g, b, a)`), or
    /// [`EMPTY`].
    keys: Vec<u64>,
    /// Each slot's colour's index in the palette.
    indices: Vec<u8>,
    /// The colours, sorted.
    sorted: Vec<u32>,
}

impl Colours {
    /// The colours of `pixels`, or `None` when there are over 256.
    fn of(pixels: &[u8]) -> Option<Colours> {
        let mut table = Colours {
            keys: vec![EMPTY; SLOTS],
            indices: vec![0; SLOTS],
            sorted: Vec::with_capacity(257),
        };
        let mut last = None;
        for px in pixels.chunks_exact(4) {
            let colour = u32::from_be_bytes([px[0], px[1], px[2], px[3]]);
            if last == Some(colour) {
                continue;
            }
            last = Some(colour);
            let slot = table.slot(colour);
            if table.keys[slot] == EMPTY {
                if table.sorted.len() == 256 {
                    return None;
                }
                table.keys[slot] = u64::from(colour);
                table.sorted.push(colour);
            }
        }
        table.sorted.sort_unstable();
        for (index, &colour) in table.sorted.iter().enumerate() {
            let slot = table.slot(colour);
            table.indices[slot] = index as u8;
        }
        Some(table)
    }

    /// The slot of `colour`: its own, or the empty one where it would go.
    fn slot(&self, colour: u32) -> usize {
        let mut slot = (colour.wrapping_mul(0x9E37_79B1) >> 22) as usize & (SLOTS - 1);
        while self.keys[slot] != EMPTY && self.keys[slot] != u64::from(colour) {
            slot = (slot + 1) & (SLOTS - 1);
        }
        slot
    }

    /// The palette index of `colour`, one of the table's.
    fn index(&self, colour: u32) -> u8 {
        self.indices[self.slot(colour)]
    }

    /// Each pixel's palette index.
    fn indices(&self, pixels: &[u8]) -> Vec<u8> {
        let mut last: Option<(u32, u8)> = None;
        let mut out = Vec::with_capacity(pixels.len() / 4);
        for px in pixels.chunks_exact(4) {
            let colour = u32::from_be_bytes([px[0], px[1], px[2], px[3]]);
            let index = match last {
                Some((c, index)) if c == colour => index,
                _ => self.index(colour),
            };
            last = Some((colour, index));
            out.push(index);
        }
        out
    }

    /// The palette: the colours' red, green and blue, in order.
    fn palette(&self) -> Vec<u8> {
        self.sorted
            .iter()
            .flat_map(|c| {
                let [r, g, b, _] = c.to_be_bytes();
                [r, g, b]
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pixels of `colours` distinct colours (some transparent, with other colours under
    /// them), in runs and scattered.
    fn pixels(n: usize, colours: u32, seed: u32) -> Vec<u8> {
        let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
        let mut out = Vec::with_capacity(n * 4);
        while out.len() < n * 4 {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            let c = state % colours;
            let alpha = match c % 5 {
                0 => 0,
                2 => 128,
                _ => 255,
            };
            let px = [
                (c * 37) as u8,
                (c * 11 / 3) as u8,
                (c >> 2) as u8 ^ 0x5A,
                alpha,
            ];
            for _ in 0..(state >> 28) + 1 {
                out.extend_from_slice(&px);
            }
        }
        out.truncate(n * 4);
        out
    }

    #[test]
    fn the_frame_is_the_gif_crates_for_few_and_many_colours() {
        let cases: &[(u16, u16, u32)] = &[
            (1, 1, 1),
            (3, 7, 2),
            (64, 33, 40),
            (100, 50, 250),
            (160, 90, 300),
            (200, 100, 100_000),
        ];
        for &(w, h, colours) in cases {
            for seed in 1..4 {
                let n = usize::from(w) * usize::from(h);
                let mut ours = pixels(n, colours, seed);
                let mut theirs = ours.clone();
                let a = frame_from_rgba(w, h, &mut ours, 10);
                let b = gif::Frame::from_rgba_speed(w, h, &mut theirs, 10);
                let what = format!("{w}×{h}, {colours} colours, seed {seed}");
                assert_eq!(a.buffer, b.buffer, "{what}");
                assert_eq!(a.palette, b.palette, "{what}");
                assert_eq!(a.transparent, b.transparent, "{what}");
                assert_eq!(ours, theirs, "{what}: the pixels left");
            }
        }
    }

    #[test]
    fn opaque_white_first_gets_its_own_index() {
        // White's bytes are all 0xFF, as a "no pixel yet" marker's might be.
        let mut px = [255, 255, 255, 255, 0, 0, 0, 255, 255, 255, 255, 255].to_vec();
        let frame = frame_from_rgba(3, 1, &mut px, 1);
        assert_eq!(frame.buffer.to_vec(), [1, 0, 1]);
        assert_eq!(frame.palette, Some(vec![0, 0, 0, 255, 255, 255]));
    }

    #[test]
    fn exactly_256_colours_are_a_palette_and_257_are_quantised() {
        let distinct = |n: u32| -> Vec<u8> {
            (0..n)
                .flat_map(|c| [(c % 7 * 30) as u8, (c / 7 * 5) as u8, (c % 3) as u8, 255])
                .collect()
        };
        for n in [256, 257] {
            let mut ours = distinct(n);
            let mut theirs = ours.clone();
            let (w, h) = (n as u16, 1);
            let a = frame_from_rgba(w, h, &mut ours, 1);
            let b = gif::Frame::from_rgba_speed(w, h, &mut theirs, 1);
            assert_eq!((a.buffer, a.palette), (b.buffer, b.palette), "{n} colours");
        }
        let mut exact = distinct(256);
        let frame = frame_from_rgba(256, 1, &mut exact, 1);
        let indices: Vec<u8> = frame.buffer.to_vec();
        let mut seen = indices.clone();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), 256, "each colour its own index");
    }
}

//! The CPU reference backend: every op of [`super::Ops`], written plainly. It is the tests'
//! oracle for the GPU kernels and the fallback when no adapter exists. The formulas are the
//! ones at the top of `ops/mod.rs` and of `shaders/filters.wgsl`.

use super::{Filter, Ops, div_rint, luma, sepia_sums};

/// Applies `ops` to an RGBA8 frame of `width × height` pixels, in place.
pub fn apply(ops: &Ops, width: u32, height: u32, rgba: &mut [u8]) {
    let (w, h) = (width as usize, height as usize);
    debug_assert_eq!(rgba.len(), w * h * 4);
    if ops.mirror {
        mirror(w, h, rgba);
    }
    for filter in &ops.filters {
        match filter {
            Filter::Sepia => for_each_pixel(rgba, sepia_px),
            Filter::SepiaNorm => sepia_norm(rgba),
            Filter::Grayscale => for_each_pixel(rgba, |px| {
                let l = luma(px[0].into(), px[1].into(), px[2].into()) as u8;
                px[..3].fill(l);
            }),
            Filter::Invert => for_each_pixel(rgba, |px| {
                for c in &mut px[..3] {
                    *c = 255 - *c;
                }
            }),
        }
    }
}

/// Reverses every row: `out(x, y) = in(W-1-x, y)`.
pub fn mirror(width: usize, height: usize, rgba: &mut [u8]) {
    if width == 0 {
        return;
    }
    for row in rgba.chunks_exact_mut(width * 4).take(height) {
        let px: &mut [[u8; 4]] = bytemuck::cast_slice_mut(row);
        px.reverse();
    }
}

fn for_each_pixel(rgba: &mut [u8], mut f: impl FnMut(&mut [u8])) {
    for px in rgba.chunks_exact_mut(4) {
        f(px);
    }
}

fn sepia_px(px: &mut [u8]) {
    let n = sepia_sums(px[0].into(), px[1].into(), px[2].into());
    for (c, n) in px[..3].iter_mut().zip(n) {
        *c = div_rint(n, 1000).min(255) as u8;
    }
}

/// The largest sepia sum over the frame (the Gradio demo's `sepia_img.max()`, ×1000).
pub fn sepia_max(rgba: &[u8]) -> u32 {
    rgba.chunks_exact(4)
        .map(|px| {
            let n = sepia_sums(px[0].into(), px[1].into(), px[2].into());
            n[0].max(n[1]).max(n[2])
        })
        .max()
        .unwrap_or(0)
}

fn sepia_norm(rgba: &mut [u8]) {
    let max = sepia_max(rgba);
    for_each_pixel(rgba, |px| {
        let n = sepia_sums(px[0].into(), px[1].into(), px[2].into());
        for (c, n) in px[..3].iter_mut().zip(n) {
            // An all-black frame has max 0: numpy would give NaN; we give black.
            *c = if max == 0 {
                0
            } else {
                div_rint(255 * n, max) as u8
            };
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirror_reverses_pixels_not_bytes() {
        let mut px = vec![1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];
        mirror(3, 1, &mut px);
        assert_eq!(px, vec![9, 10, 11, 12, 5, 6, 7, 8, 1, 2, 3, 4]);
    }

    #[test]
    fn frames_without_pixels_go_through_every_op() {
        let ops = Ops {
            mirror: true,
            filters: vec![Filter::Sepia, Filter::SepiaNorm, Filter::Invert],
            ..Default::default()
        };
        for (w, h) in [(0, 4), (4, 0), (0, 0)] {
            let mut px = Vec::new();
            apply(&ops, w, h, &mut px);
            crate::ops::fast::apply(&ops, w, h, &mut px);
            assert!(px.is_empty());
        }
    }

    #[test]
    fn sepia_of_one_pixel_worked_by_hand() {
        // R=100, G=50, B=20: R' = 39.3+38.45+3.78 = 81.53 → 82; G' = 34.9+34.3+3.36 = 72.56 → 73;
        // B' = 27.2+26.7+2.62 = 56.52 → 57. Alpha stays 7.
        let mut px = vec![100, 50, 20, 7];
        apply(
            &Ops {
                mirror: false,
                filters: vec![Filter::Sepia],
                ..Default::default()
            },
            1,
            1,
            &mut px,
        );
        assert_eq!(px, vec![82, 73, 57, 7]);
    }

    #[test]
    fn sepia_norm_maps_the_brightest_channel_to_255() {
        let mut px = vec![100, 50, 20, 255, 10, 10, 10, 0];
        apply(
            &Ops {
                mirror: false,
                filters: vec![Filter::SepiaNorm],
                ..Default::default()
            },
            2,
            1,
            &mut px,
        );
        assert_eq!(px[0], 255);
        // 72.56 / 81.53 × 255 = 226.95 → 227
        assert_eq!(px[1], 227);
        assert_eq!(px[7], 0);
    }

    #[test]
    fn invert_and_grayscale_keep_alpha() {
        let mut px = vec![0, 128, 255, 9];
        apply(
            &Ops {
                mirror: false,
                filters: vec![Filter::Invert, Filter::Grayscale],
                ..Default::default()
            },
            1,
            1,
            &mut px,
        );
        // invert → (255, 127, 0); L = (255·19595 + 127·38470 + 0x8000) >> 16 = 9915183 >> 16 = 151
        assert_eq!(px, vec![151, 151, 151, 9]);
    }
}

//! Widening sources' pixels to RGBA8: RGB (JPEG, PNG, cameras), BGR and gray frames.
//!
//! Four pixels go into a 16-byte block that is stored at once; one byte store a pixel was
//! twice as slow (1080p RGB on the 2-core VM, min of 40: 1.05 ms against 1.93–3.11 ms for a
//! push a pixel and 2.2–3.1 ms for `image`'s `to_rgba8`).

/// The RGBA8 pixels of `src`, whose pixels are `S` bytes each (a partial pixel at the end is
/// ignored), each turned into four bytes by `px`.
pub(crate) fn widen<const S: usize>(src: &[u8], px: impl Fn(&[u8]) -> [u8; 4]) -> Vec<u8> {
    let pixels = src.len() / S;
    let mut out = vec![0u8; pixels * 4];
    let (blocks, tail) = out.split_at_mut(pixels / 4 * 16);
    for (dst, src) in blocks.chunks_exact_mut(16).zip(src.chunks_exact(4 * S)) {
        let mut block = [0u8; 16];
        for (d, s) in block.chunks_exact_mut(4).zip(src.chunks_exact(S)) {
            d.copy_from_slice(&px(s));
        }
        dst.copy_from_slice(&block);
    }
    let rest = &src[pixels / 4 * 4 * S..];
    for (d, s) in tail.chunks_exact_mut(4).zip(rest.chunks_exact(S)) {
        d.copy_from_slice(&px(s));
    }
    out
}

/// `buf`'s pixels of `S` bytes widened to RGBA8 in the same allocation, grown to four bytes a
/// pixel (a partial pixel at the end is dropped): a decoded frame then never needs its
/// narrow and its RGBA copy at once (a 13000×13000 RGB image: 676 MB instead of 1.18 GB).
/// Pixels are rewritten from the last, so none is overwritten before it is read; four at a
/// time go through a 16-byte block, as in [`widen`].
///
/// # Errors
/// When the allocation cannot grow: `buf` is dropped, so a caller can report it and go on.
pub(crate) fn widen_in_place<const S: usize>(
    mut buf: Vec<u8>,
    px: impl Fn(&[u8]) -> [u8; 4],
) -> Result<Vec<u8>, std::collections::TryReserveError> {
    const { assert!(S >= 1 && S <= 4) };
    let pixels = buf.len() / S;
    buf.truncate(pixels * S);
    buf.try_reserve_exact(pixels * (4 - S))?;
    buf.resize(pixels * 4, 0);
    let blocks = pixels / 4;
    for i in (blocks * 4..pixels).rev() {
        let mut p = [0u8; S];
        p.copy_from_slice(&buf[i * S..i * S + S]);
        buf[i * 4..i * 4 + 4].copy_from_slice(&px(&p));
    }
    let mut narrow = [[0u8; S]; 4];
    for b in (0..blocks).rev() {
        for (k, p) in narrow.iter_mut().enumerate() {
            let at = (b * 4 + k) * S;
            p.copy_from_slice(&buf[at..at + S]);
        }
        let mut block = [0u8; 16];
        for (d, p) in block.chunks_exact_mut(4).zip(&narrow) {
            d.copy_from_slice(&px(p));
        }
        buf[b * 16..b * 16 + 16].copy_from_slice(&block);
    }
    Ok(buf)
}

/// RGB → RGBA with A = 255.
pub(crate) fn rgb(src: &[u8]) -> Vec<u8> {
    widen::<3>(src, |p| [p[0], p[1], p[2], 255])
}

/// BGR → RGBA with A = 255.
pub(crate) fn bgr(src: &[u8]) -> Vec<u8> {
    widen::<3>(src, |p| [p[2], p[1], p[0], 255])
}

/// Gray → RGBA (R = G = B = the gray value, A = 255).
pub(crate) fn gray(src: &[u8]) -> Vec<u8> {
    widen::<1>(src, |p| [p[0], p[0], p[0], 255])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every length from no pixel to a few blocks and a tail, plus a partial pixel at the end.
    #[test]
    fn blocks_and_tails_equal_a_pixel_at_a_time() {
        for pixels in 0..=13usize {
            let src: Vec<u8> = (0..pixels * 3 + 2).map(|i| (i * 37 + 11) as u8).collect();
            let whole = &src[..pixels * 3];
            let want_rgb: Vec<u8> = whole
                .chunks_exact(3)
                .flat_map(|p| [p[0], p[1], p[2], 255])
                .collect();
            let want_bgr: Vec<u8> = whole
                .chunks_exact(3)
                .flat_map(|p| [p[2], p[1], p[0], 255])
                .collect();
            assert_eq!(rgb(&src), want_rgb, "{pixels} RGB pixels");
            assert_eq!(bgr(&src), want_bgr, "{pixels} BGR pixels");
            let want_gray: Vec<u8> = src[..pixels].iter().flat_map(|&v| [v, v, v, 255]).collect();
            assert_eq!(gray(&src[..pixels]), want_gray, "{pixels} gray pixels");
            let rgb_in_place = widen_in_place::<3>(src.clone(), |p| [p[0], p[1], p[2], 255]);
            assert_eq!(
                rgb_in_place.ok(),
                Some(want_rgb),
                "{pixels} RGB pixels in place"
            );
            let gray_in_place =
                widen_in_place::<1>(src[..pixels].to_vec(), |p| [p[0], p[0], p[0], 255]);
            assert_eq!(
                gray_in_place.ok(),
                Some(want_gray),
                "{pixels} gray pixels in place"
            );
            let want_la: Vec<u8> = src[..pixels * 2]
                .chunks_exact(2)
                .flat_map(|p| [p[0], p[0], p[0], p[1]])
                .collect();
            let la_in_place =
                widen_in_place::<2>(src[..pixels * 2 + 1].to_vec(), |p| [p[0], p[0], p[0], p[1]]);
            assert_eq!(
                la_in_place.ok(),
                Some(want_la),
                "{pixels} gray+alpha pixels in place"
            );
        }
    }
}

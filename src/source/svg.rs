//! SVG rasterisation with resvg: one RGBA8 frame, straight alpha, at the SVG's own size.
//!
//! resvg is built with `default-features = false`: there is **no text rendering** (`<text>`
//! elements are skipped: no fonts are loaded), no embedded raster images (`<image>` with PNG,
//! JPEG or GIF data is skipped) and no compressed `.svgz`. Shapes, paths, gradients, patterns,
//! clipping, masks and filters are rendered.
//!
//! **No file is read** but the SVG itself: an `<image>` or `<feImage>` whose `href` names a
//! path (`photo.png`, `/etc/passwd`, `/dev/zero`, a FIFO) is skipped, where usvg's default
//! resolver would read it whole, with no limit and no way to stop a read that never ends.
//! An SVG document embedded as a `data:` URL is rendered (it is part of the file).

use resvg::tiny_skia::{Pixmap, Transform};
use resvg::usvg;

use super::{DecodeLimits, DecodedFrame, Frames};
use crate::error::{Error, Result};
use crate::mode::source::SourceMode;

/// Rasterises the SVG document `data` (`name` is how messages refer to it); references to
/// other files are skipped (see the [module](self) docs).
///
/// The raster size is the SVG's own width and height rounded up, at least 1×1; it is checked
/// against `limits` before any pixel is allocated. resvg renders premultiplied alpha; the
/// pixels are demultiplied (each colour channel `c * 255 / alpha`, rounded) so that the frame
/// carries straight alpha like every other frame. `has_alpha` is always true.
///
/// # Errors
/// - [`Error::Decode`] (format `svg`) for data that is not a well-formed SVG document, or has no
///   valid size.
/// - [`Error::Limits`] when the size exceeds `limits`, or the document has more elements than
///   usvg accepts.
/// - [`Error::Unsupported`] for compressed SVG (svgz).
pub fn decode(name: &str, data: &[u8], limits: &DecodeLimits) -> Result<Frames> {
    decode_within(name, data, limits, None)
}

/// [`decode`], refusing a document larger than `max_side` holds before it is rasterised.
pub(crate) fn decode_within(
    name: &str,
    data: &[u8],
    limits: &DecodeLimits,
    max_side: super::MaxSide,
) -> Result<Frames> {
    let options = usvg::Options {
        resources_dir: None,
        image_href_resolver: usvg::ImageHrefResolver {
            resolve_data: usvg::ImageHrefResolver::default_data_resolver(),
            resolve_string: Box::new(|_, _| None),
        },
        ..usvg::Options::default()
    };
    let parse = |data: &[u8]| usvg::Tree::from_data(data, &options).map_err(|e| svg_error(name, e));
    let mut tree = parse(data)?;
    if most_octaves(&tree) > MAX_TURBULENCE_OCTAVES
        && let Some(fewer) = clamp_octaves(data)
    {
        tree = parse(&fewer)?;
    }
    check_filters(name, &tree)?;
    let size = tree.size();
    let width = raster_side(size.width());
    let height = raster_side(size.height());
    super::check_side(name, width, height, max_side)?;
    limits.check(name, width, height)?;
    let too_big = || Error::Limits {
        input: name.to_string(),
        reason: format!("{width}×{height} is too large to rasterise"),
    };
    let (w, h) = (
        u32::try_from(width).map_err(|_| too_big())?,
        u32::try_from(height).map_err(|_| too_big())?,
    );
    let mut pixmap = Pixmap::new(w, h).ok_or_else(too_big)?;
    resvg::render(&tree, Transform::identity(), &mut pixmap.as_mut());
    let mut rgba = pixmap.take();
    demultiply(&mut rgba);
    let frame = DecodedFrame {
        width: w,
        height: h,
        rgba,
        has_alpha: true,
        delay: None,
        source: SourceMode::Color,
        plays: None,
        icc_profile: None,
    };
    Ok(Box::new(std::iter::once(Ok(frame))))
}

/// The most octaves of an `feTurbulence` rendered. From the 31st each adds less than a
/// billionth of the first's amplitude, nothing an 8-bit pixel shows, and resvg gets them
/// wrong: each octave doubles the lattice coordinates, which overflow its integers (a
/// release build saturates them, and from about the 60th octave the sum runs away: 64
/// octaves turned a mid-gray noise almost white), and it computes every octave at every
/// pixel (4,294,967,296 on a 20×20 image would take about four days). A `numOctaves` of
/// more is rendered with this many, as an exact renderer would draw it.
pub const MAX_TURBULENCE_OCTAVES: u32 = 30;

/// The largest `numOctaves` of the document's `feTurbulence` filters.
fn most_octaves(tree: &usvg::Tree) -> u32 {
    use usvg::filter::Kind;
    let octaves = |kind: &Kind| match kind {
        Kind::Turbulence(turbulence) => turbulence.num_octaves(),
        _ => 0,
    };
    tree.filters()
        .iter()
        .flat_map(|filter| filter.primitives())
        .map(|primitive| octaves(primitive.kind()))
        .max()
        .unwrap_or(0)
}

/// `data` with every `numOctaves` attribute over [`MAX_TURBULENCE_OCTAVES`] set to it
/// (usvg's tree cannot be changed); `None` when there is none to change. Only a plain number
/// is read (`64`, `+64`, `64.0`, `6.4e1`), as usvg reads it; one written otherwise (with a
/// character reference, say) is left, and [`check_filters`] then refuses the document.
fn clamp_octaves(data: &[u8]) -> Option<Vec<u8>> {
    const NAME: &[u8] = b"numOctaves";
    let space = |b: u8| matches!(b, b' ' | b'\t' | b'\n' | b'\r');
    let mut out = Vec::with_capacity(data.len());
    let mut changed = false;
    let mut rest = data;
    while let Some(at) = rest.windows(NAME.len()).position(|w| w == NAME) {
        let after_name = at + NAME.len();
        out.extend_from_slice(&rest[..after_name]);
        let attribute = at > 0 && space(rest[at - 1]);
        rest = &rest[after_name..];
        // `= "value"`, spaces allowed around the `=`.
        let eq = rest.iter().take_while(|&&b| space(b)).count();
        if !attribute || rest.get(eq) != Some(&b'=') {
            continue;
        }
        let open = eq + 1 + rest[eq + 1..].iter().take_while(|&&b| space(b)).count();
        let Some(&quote @ (b'"' | b'\'')) = rest.get(open) else {
            continue;
        };
        let Some(len) = rest[open + 1..].iter().position(|&b| b == quote) else {
            continue;
        };
        let value = &rest[open + 1..open + 1 + len];
        let plain = value.iter().all(|&b| {
            b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.' | b'e' | b'E') || space(b)
        });
        let number = std::str::from_utf8(value)
            .ok()
            .filter(|_| plain)
            .and_then(|v| v.trim().parse::<f64>().ok());
        out.extend_from_slice(&rest[..=open]);
        rest = &rest[open + 1..];
        if number.is_some_and(|n| n.round() > f64::from(MAX_TURBULENCE_OCTAVES)) {
            out.extend_from_slice(MAX_TURBULENCE_OCTAVES.to_string().as_bytes());
            rest = &rest[len..];
            changed = true;
        }
    }
    out.extend_from_slice(rest);
    changed.then_some(out)
}

/// Refuses an `feTurbulence` of more than [`MAX_TURBULENCE_OCTAVES`] that
/// [`clamp_octaves`] could not bring down.
fn check_filters(name: &str, tree: &usvg::Tree) -> Result<()> {
    use usvg::filter::Kind;
    for filter in tree.filters() {
        for primitive in filter.primitives() {
            if let Kind::Turbulence(turbulence) = primitive.kind()
                && turbulence.num_octaves() > MAX_TURBULENCE_OCTAVES
            {
                return Err(Error::Limits {
                    input: name.to_string(),
                    reason: format!(
                        "an feTurbulence filter asks for {} octaves, more than the \
                         {MAX_TURBULENCE_OCTAVES} shutter renders, in a numOctaves it could \
                         not read as a plain number",
                        turbulence.num_octaves()
                    ),
                });
            }
        }
    }
    Ok(())
}

/// One side of the raster: the SVG length rounded up, at least 1 (saturating for huge sizes,
/// which the limits then reject).
fn raster_side(length: f32) -> u64 {
    let side = f64::from(length).ceil();
    if side.is_nan() || side < 1.0 {
        1
    } else if side >= u64::MAX as f64 {
        u64::MAX
    } else {
        side as u64
    }
}

/// Premultiplied RGBA8 to straight alpha, in place, rounding as tiny-skia's own
/// `PremultipliedColorU8::demultiply` does: `c / (a / 255) + 0.5`, truncated. Fully
/// transparent pixels become (0, 0, 0, 0); opaque ones are unchanged.
pub fn demultiply(rgba: &mut [u8]) {
    for px in rgba.chunks_exact_mut(4) {
        let a = px[3];
        if a == 255 {
            continue;
        }
        if a == 0 {
            px[..3].fill(0);
            continue;
        }
        let scale = f64::from(a) / 255.0;
        for c in &mut px[..3] {
            // `as u8` saturates: a malformed premultiplied value above alpha gives 255.
            *c = (f64::from(*c) / scale + 0.5) as u8;
        }
    }
}

fn svg_error(name: &str, err: usvg::Error) -> Error {
    let input = name.to_string();
    match err {
        usvg::Error::ElementsLimitReached => Error::Limits {
            input,
            reason: err.to_string(),
        },
        usvg::Error::SvgzFeatureNotEnabled | usvg::Error::MalformedGZip => Error::Unsupported {
            input,
            reason: "compressed SVG (svgz) is not supported; decompress it first".to_string(),
        },
        other => Error::Decode {
            input,
            format: "svg".to_string(),
            reason: super::file::one_line(&other.to_string()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demultiply_rounds_like_tiny_skia() {
        let mut px = [64, 0, 128, 128, 10, 20, 30, 255, 0, 0, 0, 0, 1, 1, 1, 3];
        demultiply(&mut px);
        assert_eq!(
            px,
            [128, 0, 255, 128, 10, 20, 30, 255, 0, 0, 0, 0, 85, 85, 85, 3]
        );
        for a in 1..=255u8 {
            for c in 0..=a {
                let mut p = [c, c, c, a];
                demultiply(&mut p);
                let expected = resvg::tiny_skia::PremultipliedColorU8::from_rgba(c, c, c, a)
                    .map(|p| p.demultiply().red());
                assert_eq!(Some(p[0]), expected, "c={c} a={a}");
            }
        }
    }

    #[test]
    fn clamp_octaves_rewrites_only_numoctaves_attributes_over_the_most() {
        let clamp =
            |svg: &str| clamp_octaves(svg.as_bytes()).map(|v| String::from_utf8(v).unwrap());
        assert_eq!(
            clamp("<a numOctaves='64'/><b\nnumOctaves = \" 1e9 \"/><c numOctaves='30'/>")
                .as_deref(),
            Some("<a numOctaves='30'/><b\nnumOctaves = \"30\"/><c numOctaves='30'/>")
        );
        for same in [
            "<a numOctaves='30'/>",
            "<a numOctaves='2.4e1'/>",
            "<a xnumOctaves='64'/>",
            "<desc>numOctaves='64'</desc>",
            "<a numOctaves='&#54;4'/>",
            "<a numOctaves='64",
            "<a numOctaves=64/>",
            "<a numOctaves",
        ] {
            assert_eq!(clamp(same), None, "{same}");
        }
    }

    #[test]
    fn raster_side_rounds_up() {
        assert_eq!(raster_side(10.0), 10);
        assert_eq!(raster_side(10.2), 11);
        assert_eq!(raster_side(0.3), 1);
        assert_eq!(raster_side(f32::NAN), 1);
    }

    #[test]
    fn malformed_svg_names_the_input() {
        let err = decode("bad.svg", b"<svg", &DecodeLimits::default())
            .err()
            .map(|e| (matches!(e, Error::Decode { .. }), e.to_string()));
        assert!(
            matches!(err, Some((true, ref m)) if m.contains("bad.svg")),
            "{err:?}"
        );
    }
}

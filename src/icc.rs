//! What an ICC profile's header says: the colour space of the data it describes, and whether
//! it is a profile an image may carry at all (ICC.1, 7.2). shutter converts no colours: a
//! profile goes from a file to its outputs only where it still describes their numbers.

use crate::mode::source::SourceMode;

/// The data colour space of RGB data (ICC.1, table 19).
pub(crate) const RGB: [u8; 4] = *b"RGB ";
/// Gray data.
pub(crate) const GRAY: [u8; 4] = *b"GRAY";
/// CMYK data.
pub(crate) const CMYK: [u8; 4] = *b"CMYK";

/// The data colour space of `icc`, when it is a profile an image may embed: a complete
/// header (128 bytes) of an input, display, output or colour space profile. Device links,
/// abstract and named-colour profiles describe no image's colours.
pub(crate) fn colour_space(icc: &[u8]) -> Option<[u8; 4]> {
    let header = icc.get(..128)?;
    matches!(&header[12..16], b"scnr" | b"mntr" | b"prtr" | b"spac")
        .then(|| [header[16], header[17], header[18], header[19]])
}

/// Whether `icc` describes a decoded frame's pixels: its colour space is the one the file
/// opened in (`source`), and, when `filtered`, RGB, where the filters work. A CMYK file's
/// profile does not describe its inks once a filter has turned them to RGB and back.
pub(crate) fn describes(icc: &[u8], source: &SourceMode, filtered: bool) -> bool {
    let opened = match source {
        SourceMode::Color | SourceMode::ColorKey(_) | SourceMode::Palette { .. } => RGB,
        SourceMode::Gray
        | SourceMode::GrayKey(_)
        | SourceMode::Gray16(_)
        | SourceMode::Gray16Key(..)
        | SourceMode::Int32(_)
        | SourceMode::Float32(_) => GRAY,
        SourceMode::Cmyk(_) => CMYK,
    };
    colour_space(icc) == Some(opened) && (!filtered || opened == RGB)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(class: &[u8; 4], space: &[u8; 4]) -> Vec<u8> {
        let mut icc = vec![0u8; 132];
        icc[12..16].copy_from_slice(class);
        icc[16..20].copy_from_slice(space);
        icc
    }

    #[test]
    fn only_image_profiles_with_a_whole_header_have_a_colour_space() {
        assert_eq!(colour_space(&profile(b"mntr", b"RGB ")), Some(RGB));
        assert_eq!(colour_space(&profile(b"prtr", b"CMYK")), Some(CMYK));
        assert_eq!(colour_space(&profile(b"link", b"RGB ")), None);
        assert_eq!(colour_space(&profile(b"abst", b"Lab ")), None);
        assert_eq!(colour_space(&profile(b"mntr", b"RGB ")[..127]), None);
    }

    #[test]
    fn a_profile_describes_frames_of_its_own_colour_space_that_no_filter_crossed() {
        let rgb = profile(b"mntr", b"RGB ");
        let cmyk = profile(b"prtr", b"CMYK");
        let gray = profile(b"mntr", b"GRAY");
        assert!(describes(&rgb, &SourceMode::Color, true));
        assert!(!describes(&cmyk, &SourceMode::Color, false));
        assert!(describes(&cmyk, &SourceMode::Cmyk(Vec::new()), false));
        assert!(!describes(&cmyk, &SourceMode::Cmyk(Vec::new()), true));
        assert!(describes(&gray, &SourceMode::Gray, false));
        assert!(!describes(&gray, &SourceMode::Gray, true));
        assert!(!describes(&rgb, &SourceMode::Gray, false));
    }
}

//! A file's orientation as Pillow's `Image.getexif()` finds it, for `ImageOps.exif_transpose`
//! (which Gradio applies to every file): the EXIF Orientation tag when the EXIF block has one,
//! whatever its value; otherwise the first `tiff:Orientation="N"` or `<tiff:Orientation>N` in
//! the file's XMP packet (Pillow's pattern `tiff:Orientation(="|>)([0-9])`, one digit).
//!
//! The metadata is found where Pillow looks for it:
//! - JPEG: the first `Exif\0\0` APP1 segment, the last `http://ns.adobe.com/xap/1.0/\0` APP1
//!   segment, among the markers before the scan;
//! - PNG: the last `eXIf` chunk and the last `tEXt` or uncompressed `iTXt` chunk with the
//!   keyword `XML:com.adobe.xmp`, before or after the image data (Pillow reads the chunks
//!   after it when the image is loaded, which `exif_transpose` does first); an APNG's chunks
//!   up to its second frame's `fcTL`. Compressed (`zTXt`, compressed `iTXt`) XMP is not read;
//! - WebP: the first `EXIF` and `XMP ` chunks, stills and animations alike.
//!
//! Unreadable metadata counts as none: the image is still read, as it is.

use std::io::{Read, Seek, SeekFrom};

use image::metadata::Orientation;

use super::InputFormat;

/// What a file's metadata says about its orientation.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct Found {
    /// The EXIF Orientation tag's value, when the EXIF block has the tag.
    pub exif: Option<u32>,
    /// The digit of the XMP packet's `tiff:Orientation`, when it has one.
    pub xmp: Option<u8>,
}

impl Found {
    /// The orientation `exif_transpose` applies: EXIF first, then XMP; a value other than
    /// 1 to 8 turns nothing.
    pub(super) fn orientation(self) -> Orientation {
        self.exif
            .or(self.xmp.map(u32::from))
            .and_then(|v| u8::try_from(v).ok())
            .and_then(Orientation::from_exif)
            .unwrap_or(Orientation::NoTransforms)
    }
}

/// The orientation metadata of the `format` file in `reader`, which is left at its start.
/// A malformed container ends the search with what was found before it.
///
/// # Errors
/// An I/O error when the reader cannot be put back at its start.
pub(super) fn scan<R: Read + Seek>(format: InputFormat, reader: &mut R) -> std::io::Result<Found> {
    reader.seek(SeekFrom::Start(0))?;
    let found = match format {
        InputFormat::Jpeg => jpeg(reader),
        InputFormat::Png => png(reader),
        InputFormat::Webp => webp(reader),
        _ => None,
    };
    reader.seek(SeekFrom::Start(0))?;
    Ok(found.unwrap_or_default())
}

/// Reads exactly `n` bytes, or `None` when the data ends first.
fn read_n<R: Read>(reader: &mut R, n: u64) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    reader.take(n).read_to_end(&mut out).ok()?;
    (out.len() as u64 == n).then_some(out)
}

/// Skips `n` bytes.
fn skip<R: Seek>(reader: &mut R, n: u64) -> Option<()> {
    let n = i64::try_from(n).ok()?;
    reader.seek(SeekFrom::Current(n)).ok().map(|_| ())
}

/// The largest PNG or WebP metadata chunk read for its orientation; a larger one is skipped,
/// not read into memory (Pillow refuses PNG text chunks over 1 MiB).
const METADATA_MAX: u64 = 16 << 20;

const XMP_JPEG: &[u8] = b"http://ns.adobe.com/xap/1.0/\0";
const XMP_KEYWORD: &[u8] = b"XML:com.adobe.xmp";

/// A JPEG's markers up to the scan. `None` only when nothing could be read.
fn jpeg<R: Read + Seek>(reader: &mut R) -> Option<Found> {
    let mut found = Found::default();
    let mut exif_seen = false;
    let soi = read_n(reader, 2)?;
    if soi != [0xFF, 0xD8] {
        return Some(found);
    }
    while let Some(byte) = read_n(reader, 1) {
        if byte[0] != 0xFF {
            break;
        }
        let Some(marker) = read_n(reader, 1).map(|m| m[0]) else {
            break;
        };
        match marker {
            0xFF => {
                // A fill byte: the marker follows.
                let _ = reader.seek(SeekFrom::Current(-1));
                continue;
            }
            0x01 | 0xD0..=0xD8 => continue, // no length
            0xD9 | 0xDA => break,           // end of image, start of scan
            _ => {}
        }
        let Some(len) = read_n(reader, 2).map(|l| u64::from(u16::from_be_bytes([l[0], l[1]])))
        else {
            break;
        };
        let Some(len) = len.checked_sub(2) else {
            break;
        };
        if marker != 0xE1 {
            if skip(reader, len).is_none() {
                break;
            }
            continue;
        }
        let Some(data) = read_n(reader, len) else {
            break;
        };
        if let Some(exif) = data.strip_prefix(b"Exif\0\0") {
            // Pillow appends later Exif segments to the first: its IFD0 is the first one's.
            if !exif_seen {
                exif_seen = true;
                found.exif = exif_orientation(exif);
            }
        } else if let Some(xmp) = data.strip_prefix(XMP_JPEG) {
            found.xmp = xmp_orientation(xmp); // the last segment wins, as in Pillow
        }
    }
    Some(found)
}

/// A PNG's chunks (an APNG's up to the `fcTL` after the image data). `None` only when nothing
/// could be read.
fn png<R: Read + Seek>(reader: &mut R) -> Option<Found> {
    let mut found = Found::default();
    let signature = read_n(reader, 8)?;
    if signature != b"\x89PNG\r\n\x1a\n" {
        return Some(found);
    }
    let mut after_data = false;
    while let Some(header) = read_n(reader, 8) {
        let len = u64::from(u32::from_be_bytes([
            header[0], header[1], header[2], header[3],
        ]));
        let kind = &header[4..8];
        match kind {
            b"IEND" => break,
            b"fcTL" if after_data => break,
            b"IDAT" => after_data = true,
            _ => {}
        }
        if matches!(kind, b"eXIf" | b"tEXt" | b"iTXt") && len <= METADATA_MAX {
            let Some(data) = read_n(reader, len) else {
                break;
            };
            match kind {
                b"eXIf" => found.exif = exif_orientation(&data),
                b"tEXt" => {
                    if let Some(text) = data
                        .strip_prefix(XMP_KEYWORD)
                        .and_then(|d| d.strip_prefix(b"\0"))
                    {
                        found.xmp = xmp_orientation(text);
                    }
                }
                _ => {
                    if let Some(text) = itxt_xmp(&data) {
                        found.xmp = xmp_orientation(text);
                    }
                }
            }
            if skip(reader, 4).is_none() {
                break;
            }
        } else if skip(reader, len + 4).is_none() {
            break;
        }
    }
    Some(found)
}

/// The text of an uncompressed `iTXt` chunk with the XMP keyword.
fn itxt_xmp(data: &[u8]) -> Option<&[u8]> {
    let rest = data.strip_prefix(XMP_KEYWORD)?.strip_prefix(b"\0")?;
    let (&compressed, rest) = rest.split_first()?;
    let (_method, rest) = rest.split_first()?;
    if compressed != 0 {
        return None;
    }
    let language_end = rest.iter().position(|&b| b == 0)?;
    let rest = &rest[language_end + 1..];
    let translated_end = rest.iter().position(|&b| b == 0)?;
    Some(&rest[translated_end + 1..])
}

/// A WebP's RIFF chunks. `None` only when nothing could be read.
fn webp<R: Read + Seek>(reader: &mut R) -> Option<Found> {
    let mut found = Found::default();
    let head = read_n(reader, 12)?;
    if &head[..4] != b"RIFF" || &head[8..] != b"WEBP" {
        return Some(found);
    }
    let (mut exif_seen, mut xmp_seen) = (false, false);
    while let Some(header) = read_n(reader, 8) {
        let len = u64::from(u32::from_le_bytes([
            header[4], header[5], header[6], header[7],
        ]));
        let padded = len + (len & 1);
        let kind = &header[..4];
        let wanted = ((kind == b"EXIF" && !exif_seen) || (kind == b"XMP " && !xmp_seen))
            && len <= METADATA_MAX;
        if !wanted {
            if skip(reader, padded).is_none() {
                break;
            }
            continue;
        }
        let Some(data) = read_n(reader, len) else {
            break;
        };
        if kind == b"EXIF" {
            exif_seen = true;
            found.exif = exif_orientation(data.strip_prefix(b"Exif\0\0").unwrap_or(&data));
        } else {
            xmp_seen = true;
            found.xmp = xmp_orientation(&data);
        }
        if skip(reader, padded - len).is_none() {
            break;
        }
    }
    Some(found)
}

/// The Orientation tag (0x0112) of the first IFD of a TIFF-structured EXIF block, when it has
/// one. A value Pillow would not turn by (a count other than 1, an odd type) reads as 0.
pub(super) fn exif_orientation(tiff: &[u8]) -> Option<u32> {
    let tiff = tiff.strip_prefix(b"Exif\0\0").unwrap_or(tiff);
    let big = match tiff.get(..4)? {
        b"MM\0*" => true,
        b"II*\0" => false,
        _ => return None,
    };
    let u16_at = |at: usize| -> Option<u16> {
        let b = tiff.get(at..at.checked_add(2)?)?;
        Some(if big {
            u16::from_be_bytes([b[0], b[1]])
        } else {
            u16::from_le_bytes([b[0], b[1]])
        })
    };
    let u32_at = |at: usize| -> Option<u32> {
        let b = tiff.get(at..at.checked_add(4)?)?;
        let b = [b[0], b[1], b[2], b[3]];
        Some(if big {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    };
    let ifd = usize::try_from(u32_at(4)?).ok()?;
    let count = usize::from(u16_at(ifd)?);
    (0..count).find_map(|i| {
        let entry = ifd.checked_add(2)?.checked_add(i.checked_mul(12)?)?;
        if u16_at(entry)? != 0x0112 {
            return None;
        }
        let (kind, n) = (u16_at(entry + 2)?, u32_at(entry + 4)?);
        Some(match (kind, n) {
            (1, 1) => u32::from(*tiff.get(entry + 8)?),
            (3, 1) => u32::from(u16_at(entry + 8)?),
            (4, 1) => u32_at(entry + 8)?,
            _ => 0,
        })
    })
}

/// The digit of the first `tiff:Orientation="N"` or `tiff:Orientation>N` in an XMP packet.
pub(super) fn xmp_orientation(xmp: &[u8]) -> Option<u8> {
    const KEY: &[u8] = b"tiff:Orientation";
    (0..xmp.len()).find_map(|at| {
        let rest = xmp[at..].strip_prefix(KEY)?;
        let rest = rest
            .strip_prefix(b"=\"")
            .or_else(|| rest.strip_prefix(b">"))?;
        rest.first()
            .filter(|d| d.is_ascii_digit())
            .map(|d| d - b'0')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xmp_forms_and_first_match() {
        assert_eq!(xmp_orientation(br#"<d tiff:Orientation="6"/>"#), Some(6));
        assert_eq!(
            xmp_orientation(b"<tiff:Orientation>8</tiff:Orientation>"),
            Some(8)
        );
        // Pillow takes one digit, the first match, and nothing but `="` or `>` after the key.
        assert_eq!(xmp_orientation(br#"tiff:Orientation="12""#), Some(1));
        assert_eq!(
            xmp_orientation(br#"tiff:Orientation='6' tiff:Orientation="3""#),
            Some(3)
        );
        assert_eq!(xmp_orientation(br#"tiff:Orientation="x""#), None);
        assert_eq!(xmp_orientation(b"tiff:Orientation"), None);
        assert_eq!(xmp_orientation(b""), None);
    }

    #[test]
    fn exif_tag_presence_and_value() {
        let ifd = |big: bool, tag: u16, kind: u16, count: u32, value: u16| {
            let mut out = Vec::new();
            let p16 = |v: u16| {
                if big {
                    v.to_be_bytes()
                } else {
                    v.to_le_bytes()
                }
            };
            let p32 = |v: u32| {
                if big {
                    v.to_be_bytes()
                } else {
                    v.to_le_bytes()
                }
            };
            out.extend_from_slice(if big { b"MM\0*" } else { b"II*\0" });
            out.extend_from_slice(&p32(8));
            out.extend_from_slice(&p16(1));
            out.extend_from_slice(&p16(tag));
            out.extend_from_slice(&p16(kind));
            out.extend_from_slice(&p32(count));
            out.extend_from_slice(&p16(value));
            out.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
            out
        };
        assert_eq!(exif_orientation(&ifd(true, 0x0112, 3, 1, 6)), Some(6));
        assert_eq!(exif_orientation(&ifd(false, 0x0112, 3, 1, 1)), Some(1));
        assert_eq!(exif_orientation(&ifd(false, 0x0131, 3, 1, 6)), None);
        assert_eq!(exif_orientation(&ifd(false, 0x0112, 3, 2, 6)), Some(0));
        let mut prefixed = b"Exif\0\0".to_vec();
        prefixed.extend(ifd(true, 0x0112, 3, 1, 8));
        assert_eq!(exif_orientation(&prefixed), Some(8));
        assert_eq!(exif_orientation(b"MM\0*\0\0\xff\xff"), None);
        assert_eq!(exif_orientation(b""), None);
    }

    #[test]
    fn exif_wins_over_xmp() {
        let found = |exif, xmp| Found { exif, xmp }.orientation();
        assert_eq!(found(Some(1), Some(6)), Orientation::NoTransforms);
        assert_eq!(found(Some(0), Some(6)), Orientation::NoTransforms);
        assert_eq!(found(None, Some(6)), Orientation::Rotate90);
        assert_eq!(found(None, Some(9)), Orientation::NoTransforms);
        assert_eq!(found(Some(3), None), Orientation::Rotate180);
        assert_eq!(found(None, None), Orientation::NoTransforms);
    }

    #[test]
    fn a_png_text_chunk_over_the_cap_is_skipped_not_read() {
        // PNG chunks with no CRC check here: (length, type, data, 4 bytes of CRC).
        let chunk = |kind: &[u8], data: &[u8]| {
            let mut out = (data.len() as u32).to_be_bytes().to_vec();
            out.extend_from_slice(kind);
            out.extend_from_slice(data);
            out.extend_from_slice(&[0; 4]);
            out
        };
        let text = |pad: usize| {
            let mut data = b"XML:com.adobe.xmp\0<d tiff:Orientation=\"6\"/>".to_vec();
            data.resize(data.len() + pad, b' ');
            chunk(b"tEXt", &data)
        };
        let png = |pad: usize| {
            let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
            out.extend(text(pad));
            out.extend(chunk(b"IEND", b""));
            std::io::Cursor::new(out)
        };
        let found = |pad| scan(InputFormat::Png, &mut png(pad)).unwrap().xmp;
        assert_eq!(found(0), Some(6));
        assert_eq!(found(METADATA_MAX as usize), None);
    }
}

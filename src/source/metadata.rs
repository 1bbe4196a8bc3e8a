//! What a file's metadata says beyond its pixels, read where Pillow reads it: the orientation
//! `ImageOps.exif_transpose` applies (which Gradio applies to every file) and the ICC colour
//! profile (Pillow's `info["icc_profile"]`).
//!
//! The orientation is Pillow's `Image.getexif()`'s: the EXIF Orientation tag when the EXIF
//! block has one, whatever its value; otherwise the first `tiff:Orientation="N"` or
//! `<tiff:Orientation>N` in the file's XMP packet (Pillow's pattern
//! `tiff:Orientation(="|>)([0-9])`, one digit).
//!
//! The metadata is found where Pillow looks for it:
//! - JPEG: the first `Exif\0\0` APP1 segment, the last `http://ns.adobe.com/xap/1.0/\0` APP1
//!   segment, among the markers before the scan; the `ICC_PROFILE\0` APP2 segments before the
//!   frame header, joined there in the order of their sequence numbers (none when their count
//!   is not the one they state);
//! - PNG: the last `eXIf` chunk, or without one the last `Raw profile type exif` text
//!   (ImageMagick's hexadecimal EXIF); the last `tEXt`, `zTXt` or `iTXt` chunk (compressed or
//!   not) with the keyword `XML:com.adobe.xmp`; before or after the image data (Pillow reads
//!   the chunks after it when the image is loaded, which `exif_transpose` does first); an
//!   APNG's chunks up to its second frame's `fcTL`. The ICC profile is the last `iCCP` chunk
//!   before the image data. Compressed text and profiles are inflated up to 16 MiB;
//! - WebP: the first `EXIF`, `XMP ` and `ICCP` chunks, stills and animations alike (`ICCP`
//!   only when the `VP8X` header's ICC flag is set, as libwebp reads it);
//! - TIFF: the first image's directory, classic TIFF or BigTIFF: its Orientation tag (which
//!   the decoder also reads), its XMP tag (700) and its ICC profile tag (34675).
//!
//! Unreadable metadata counts as none: the image is still read, as it is. GIF's and BMP's
//! ICC profiles are not read.

use std::borrow::Cow;
use std::io::{Read, Seek, SeekFrom};
use std::sync::Arc;

use image::metadata::Orientation;

use super::InputFormat;

/// What a file's metadata says about its orientation and colours.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct Found {
    /// The EXIF Orientation tag's value, when the EXIF block has the tag.
    pub exif: Option<u32>,
    /// The digit of the XMP packet's `tiff:Orientation`, when it has one.
    pub xmp: Option<u8>,
    /// The embedded ICC profile, as its bytes.
    pub icc: Option<Arc<[u8]>>,
}

impl Found {
    /// The orientation `exif_transpose` applies: EXIF first, then XMP; a value other than
    /// 1 to 8 turns nothing.
    pub(super) fn orientation(&self) -> Orientation {
        self.exif
            .or(self.xmp.map(u32::from))
            .and_then(|v| u8::try_from(v).ok())
            .and_then(Orientation::from_exif)
            .unwrap_or(Orientation::NoTransforms)
    }
}

/// The metadata of the `format` file in `reader`, which is left at its start. A malformed
/// container ends the search with what was found before it.
///
/// # Errors
/// An I/O error when the reader cannot be put back at its start.
pub(super) fn scan<R: Read + Seek>(format: InputFormat, reader: &mut R) -> std::io::Result<Found> {
    reader.seek(SeekFrom::Start(0))?;
    let found = match format {
        InputFormat::Jpeg => jpeg(reader),
        InputFormat::Png => png(reader),
        InputFormat::Webp => webp(reader),
        InputFormat::Tiff => tiff(reader),
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

/// The largest metadata block read: a PNG or WebP chunk, a TIFF tag's value, an inflated PNG
/// profile. A larger one is skipped, not read into memory (Pillow refuses PNG text chunks and
/// inflated profiles over 1 MiB; a JPEG's profile is at most 255 segments of 64 KiB).
const METADATA_MAX: u64 = 16 << 20;

const XMP_JPEG: &[u8] = b"http://ns.adobe.com/xap/1.0/\0";
const XMP_KEYWORD: &[u8] = b"XML:com.adobe.xmp";
const ICC_JPEG: &[u8] = b"ICC_PROFILE\0";

/// A JPEG's markers up to the scan. `None` only when nothing could be read.
fn jpeg<R: Read + Seek>(reader: &mut R) -> Option<Found> {
    let mut found = Found::default();
    let mut exif_seen = false;
    // The ICC segments' data after the identifier: sequence number, count, profile bytes.
    let mut icc_segments: Vec<Vec<u8>> = Vec::new();
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
        // A frame header (every SOF but DHT, JPG and DAC; DHP): Pillow joins the ICC
        // segments read so far there, and starts a new list that no later header may join.
        let frame_header = (matches!(marker, 0xC0..=0xCF) && !matches!(marker, 0xC4 | 0xC8 | 0xCC))
            || marker == 0xDE;
        if frame_header && !icc_segments.is_empty() {
            found.icc = jpeg_icc(std::mem::take(&mut icc_segments));
        }
        if marker != 0xE1 && marker != 0xE2 {
            if skip(reader, len).is_none() {
                break;
            }
            continue;
        }
        let Some(data) = read_n(reader, len) else {
            break;
        };
        if marker == 0xE2 {
            if let Some(segment) = data.strip_prefix(ICC_JPEG)
                && segment.len() >= 2
            {
                icc_segments.push(segment.to_vec());
            }
        } else if let Some(exif) = data.strip_prefix(b"Exif\0\0") {
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

/// A JPEG's ICC profile from its APP2 segments (each a sequence number, the count of
/// segments and a part of the profile), as Pillow joins them: sorted (by sequence number
/// first), and none unless the first one's count is the number of segments.
fn jpeg_icc(mut segments: Vec<Vec<u8>>) -> Option<Arc<[u8]>> {
    segments.sort();
    let count = usize::from(*segments.first()?.get(1)?);
    if count != segments.len() {
        return None;
    }
    let profile: Vec<u8> = segments
        .iter()
        .flat_map(|s| s[2..].iter().copied())
        .collect();
    (!profile.is_empty()).then(|| profile.into())
}

/// A PNG's chunks (an APNG's up to the `fcTL` after the image data). `None` only when nothing
/// could be read.
fn png<R: Read + Seek>(reader: &mut R) -> Option<Found> {
    let mut found = Found::default();
    let signature = read_n(reader, 8)?;
    if signature != b"\x89PNG\r\n\x1a\n" {
        return Some(found);
    }
    // Pillow's `info["exif"]` (an `eXIf` chunk, whatever its tags) comes first, ImageMagick's
    // "Raw profile type exif" text after it: each holds the tag's value when it has one.
    let (mut exif_chunk, mut raw_exif): (Option<Option<u32>>, Option<Option<u32>>) = (None, None);
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
        let wanted = matches!(kind, b"eXIf" | b"tEXt" | b"zTXt" | b"iTXt")
            || (kind == b"iCCP" && !after_data);
        if wanted && len <= METADATA_MAX {
            let Some(data) = read_n(reader, len) else {
                break;
            };
            match kind {
                b"eXIf" => exif_chunk = Some(exif_orientation(&data)),
                b"iCCP" => found.icc = png_icc(&data),
                _ => match png_text(kind, &data) {
                    Some((XMP_KEYWORD, text)) => found.xmp = xmp_orientation(&text),
                    Some((RAW_EXIF_KEYWORD, text)) => raw_exif = Some(raw_profile_exif(&text)),
                    _ => {}
                },
            }
            if skip(reader, 4).is_none() {
                break;
            }
        } else if skip(reader, len + 4).is_none() {
            break;
        }
    }
    found.exif = exif_chunk.or(raw_exif).flatten();
    Some(found)
}

/// ImageMagick's keyword for an EXIF block written as PNG text, which Pillow reads when the
/// file has no `eXIf` chunk.
const RAW_EXIF_KEYWORD: &[u8] = b"Raw profile type exif";

/// The keyword and text of a `tEXt`, `zTXt` or `iTXt` chunk, inflated when it is compressed
/// (to at most [`METADATA_MAX`] bytes, as [`png_icc`]); `None` for a chunk Pillow would not
/// read (an unknown compression method, a stream that does not inflate).
fn png_text<'a>(kind: &[u8], data: &'a [u8]) -> Option<(&'a [u8], Cow<'a, [u8]>)> {
    let keyword_end = data.iter().position(|&b| b == 0)?;
    let (keyword, rest) = (&data[..keyword_end], &data[keyword_end + 1..]);
    let text = match kind {
        b"tEXt" => Cow::Borrowed(rest),
        b"zTXt" => {
            let (&method, stream) = rest.split_first()?;
            if method != 0 {
                return None;
            }
            Cow::Owned(inflate(stream)?)
        }
        _ => {
            let (&compressed, rest) = rest.split_first()?;
            let (&method, rest) = rest.split_first()?;
            let language_end = rest.iter().position(|&b| b == 0)?;
            let rest = &rest[language_end + 1..];
            let translated_end = rest.iter().position(|&b| b == 0)?;
            let text = &rest[translated_end + 1..];
            match (compressed, method) {
                (0, _) => Cow::Borrowed(text),
                (_, 0) => Cow::Owned(inflate(text)?),
                _ => return None,
            }
        }
    };
    Some((keyword, text))
}

/// The Orientation tag of an EXIF block written as ImageMagick's raw profile text (a blank
/// line, the profile's name, its length, then hexadecimal lines), read as Pillow reads it:
/// the lines after the third joined and decoded as hexadecimal.
fn raw_profile_exif(text: &[u8]) -> Option<u32> {
    let hex: Vec<u8> = text
        .split(|&b| b == b'\n')
        .skip(3)
        .flatten()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    let digit = |b: u8| char::from(b).to_digit(16);
    let bytes = hex
        .chunks_exact(2)
        .map(|pair| Some((digit(pair[0])? * 16 + digit(pair[1])?) as u8))
        .collect::<Option<Vec<u8>>>()?;
    exif_orientation(&bytes)
}

/// The profile of an `iCCP` chunk (a name, a NUL, compression method 0 and the zlib stream),
/// inflated; none when it is larger than [`METADATA_MAX`] or does not inflate.
fn png_icc(data: &[u8]) -> Option<Arc<[u8]>> {
    let name_end = data.iter().position(|&b| b == 0)?;
    let (&method, stream) = data.get(name_end + 1..)?.split_first()?;
    if method != 0 {
        return None;
    }
    inflate(stream)
        .filter(|profile| !profile.is_empty())
        .map(Into::into)
}

/// A zlib stream inflated, when it inflates to at most [`METADATA_MAX`] bytes.
fn inflate(stream: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    flate2::read::ZlibDecoder::new(stream)
        .take(METADATA_MAX + 1)
        .read_to_end(&mut out)
        .ok()?;
    (out.len() as u64 <= METADATA_MAX).then_some(out)
}

/// A WebP's RIFF chunks. `None` only when nothing could be read.
fn webp<R: Read + Seek>(reader: &mut R) -> Option<Found> {
    let mut found = Found::default();
    let head = read_n(reader, 12)?;
    if &head[..4] != b"RIFF" || &head[8..] != b"WEBP" {
        return Some(found);
    }
    let (mut exif_seen, mut xmp_seen, mut icc_seen) = (false, false, false);
    // libwebp reads an ICCP chunk only when the VP8X header's ICC flag says there is one.
    let mut icc_flag = false;
    while let Some(header) = read_n(reader, 8) {
        let len = u64::from(u32::from_le_bytes([
            header[4], header[5], header[6], header[7],
        ]));
        let padded = len + (len & 1);
        let kind = &header[..4];
        let wanted = ((kind == b"EXIF" && !exif_seen)
            || (kind == b"XMP " && !xmp_seen)
            || (kind == b"ICCP" && !icc_seen && icc_flag)
            || kind == b"VP8X")
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
        match kind {
            b"EXIF" => {
                exif_seen = true;
                found.exif = exif_orientation(data.strip_prefix(b"Exif\0\0").unwrap_or(&data));
            }
            b"XMP " => {
                xmp_seen = true;
                found.xmp = xmp_orientation(&data);
            }
            b"VP8X" => icc_flag = data.first().is_some_and(|flags| flags & 0x20 != 0),
            _ => {
                icc_seen = true;
                found.icc = (!data.is_empty()).then(|| data.into());
            }
        }
        if skip(reader, padded - len).is_none() {
            break;
        }
    }
    Some(found)
}

/// The tags of a TIFF file's first directory read here: Orientation (the decoder turns by
/// it; its presence keeps XMP from turning), XMP and the ICC profile.
const TIFF_ORIENTATION_TAG: u16 = 0x0112;
const TIFF_XMP_TAG: u16 = 700;
const TIFF_ICC_TAG: u16 = 34675;

/// The first directory of a classic TIFF or a BigTIFF: its Orientation tag, the orientation
/// of its XMP packet (tag 700, which Pillow's `getexif` reads when the directory has no
/// Orientation tag) and its ICC profile (BYTE or UNDEFINED). `None` when the header cannot be
/// read; a directory cut short gives what was found before the cut.
fn tiff<R: Read + Seek>(reader: &mut R) -> Option<Found> {
    let head = read_n(reader, 16)?;
    let big_endian = match &head[..2] {
        b"MM" => true,
        b"II" => false,
        _ => return None,
    };
    let word = |b: &[u8]| -> u64 {
        let mut bytes = [0u8; 8];
        if big_endian {
            bytes[8 - b.len()..].copy_from_slice(b);
            u64::from_be_bytes(bytes)
        } else {
            bytes[..b.len()].copy_from_slice(b);
            u64::from_le_bytes(bytes)
        }
    };
    // Classic: 2-byte count, 12-byte entries (tag, type, 4-byte count, 4-byte value);
    // BigTIFF: 8-byte count, 20-byte entries with 8-byte count and value.
    let (ifd, count_len, field): (u64, u64, usize) = match word(&head[2..4]) {
        42 => (word(&head[4..8]), 2, 4),
        43 => (word(&head[8..16]), 8, 8),
        _ => return None,
    };
    reader.seek(SeekFrom::Start(ifd)).ok()?;
    let entries = word(&read_n(reader, count_len)?);
    let entry_len = 4 + 2 * field;
    let mut wanted = Vec::new();
    for _ in 0..entries.min(4096) {
        let Some(entry) = read_n(reader, entry_len as u64) else {
            break;
        };
        let tag = word(&entry[..2]) as u16;
        if matches!(tag, TIFF_ORIENTATION_TAG | TIFF_XMP_TAG | TIFF_ICC_TAG) {
            wanted.push(entry);
        }
    }
    let mut found = Found::default();
    for entry in wanted {
        let (tag, kind) = (word(&entry[..2]) as u16, word(&entry[2..4]));
        let count = word(&entry[4..4 + field]);
        let value = &entry[4 + field..];
        if tag == TIFF_ORIENTATION_TAG {
            found.exif = Some(match (kind, count) {
                (1 | 3 | 4, 1) => {
                    let size = [0, 1, 0, 2, 4][kind as usize];
                    u32::try_from(word(&value[..size])).unwrap_or(0)
                }
                _ => 0,
            });
            continue;
        }
        // The bytes of a BYTE or UNDEFINED value, in the entry or where it points.
        if !matches!(kind, 1 | 7) || count == 0 || count > METADATA_MAX {
            continue;
        }
        let bytes = if count <= field as u64 {
            value[..count as usize].to_vec()
        } else {
            match reader
                .seek(SeekFrom::Start(word(value)))
                .ok()
                .and_then(|_| read_n(reader, count))
            {
                Some(bytes) => bytes,
                None => continue,
            }
        };
        if tag == TIFF_XMP_TAG {
            found.xmp = xmp_orientation(&bytes);
        } else {
            found.icc = Some(bytes.into());
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
        let found = |exif, xmp| {
            Found {
                exif,
                xmp,
                icc: None,
            }
            .orientation()
        };
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
    #[test]
    fn a_png_profile_inflating_past_the_cap_is_dropped() {
        use std::io::Write;
        let chunk = |size: usize| {
            let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
            z.write_all(&vec![b'p'; size]).expect("deflate");
            let mut data = b"icc\0\0".to_vec();
            data.extend(z.finish().expect("deflate"));
            data
        };
        assert_eq!(png_icc(&chunk(300)).as_deref(), Some(&[b'p'; 300][..]));
        assert_eq!(png_icc(&chunk(METADATA_MAX as usize + 1)), None);
        let mut other_method = chunk(300);
        other_method[4] = 1;
        assert_eq!(png_icc(&other_method), None);
    }

    #[test]
    fn a_big_endian_tiff_gives_its_profile_tag() {
        // Header, a directory of two entries at 8 (ICC profile, then width), the profile at 38.
        let profile: Vec<u8> = (0..40).collect();
        let mut tiff = b"MM\0*".to_vec();
        tiff.extend(8u32.to_be_bytes());
        tiff.extend(2u16.to_be_bytes());
        for (tag, kind, count, value) in [(TIFF_ICC_TAG, 7u16, 40u32, 38u32), (256, 4, 1, 9)] {
            tiff.extend(tag.to_be_bytes());
            tiff.extend(kind.to_be_bytes());
            tiff.extend(count.to_be_bytes());
            tiff.extend(value.to_be_bytes());
        }
        tiff.extend(0u32.to_be_bytes());
        assert_eq!(tiff.len(), 38);
        tiff.extend(&profile);
        let found = scan(InputFormat::Tiff, &mut std::io::Cursor::new(tiff.clone())).unwrap();
        assert_eq!(found.icc.as_deref(), Some(&profile[..]));
        // A SHORT-typed tag is no profile.
        tiff[12..14].copy_from_slice(&3u16.to_be_bytes());
        let found = scan(InputFormat::Tiff, &mut std::io::Cursor::new(tiff)).unwrap();
        assert_eq!(found.icc, None);
    }

    #[test]
    fn jpeg_profile_segments_after_the_frame_header_are_not_joined() {
        let segment = |marker: u8, data: &[u8]| {
            let mut out = vec![0xFF, marker];
            out.extend(((data.len() + 2) as u16).to_be_bytes());
            out.extend_from_slice(data);
            out
        };
        let icc = |part: &[u8]| segment(0xE2, &[ICC_JPEG, &[1, 1], part].concat());
        let jpeg = |parts: &[Vec<u8>]| {
            let mut out = vec![0xFF, 0xD8];
            parts.iter().for_each(|p| out.extend(p));
            out.extend([0xFF, 0xDA, 0, 2]);
            std::io::Cursor::new(out)
        };
        let sof = segment(0xC0, &[8, 0, 1, 0, 1, 1, 1, 0x11, 0]);
        let found = |file: &[Vec<u8>]| scan(InputFormat::Jpeg, &mut jpeg(file)).unwrap().icc;
        assert_eq!(
            found(&[icc(b"abc"), sof.clone()]).as_deref(),
            Some(&b"abc"[..])
        );
        assert_eq!(
            found(&[icc(b"abc"), sof.clone(), icc(b"xyz")]).as_deref(),
            Some(&b"abc"[..])
        );
        assert_eq!(found(&[sof, icc(b"xyz")]), None);
    }

    #[test]
    fn a_webp_profile_is_read_only_with_the_vp8x_icc_flag() {
        let chunk = |kind: &[u8], data: &[u8]| {
            let mut out = kind.to_vec();
            out.extend((data.len() as u32).to_le_bytes());
            out.extend_from_slice(data);
            out
        };
        let webp = |flags: u8| {
            let mut body = b"WEBP".to_vec();
            body.extend(chunk(b"VP8X", &[flags, 0, 0, 0, 0, 0, 0, 0, 0, 0]));
            body.extend(chunk(b"ICCP", b"prof"));
            let mut out = b"RIFF".to_vec();
            out.extend((body.len() as u32).to_le_bytes());
            out.extend(body);
            std::io::Cursor::new(out)
        };
        let found = |flags| scan(InputFormat::Webp, &mut webp(flags)).unwrap().icc;
        assert_eq!(found(0x20).as_deref(), Some(&b"prof"[..]));
        assert_eq!(found(0x10), None);
    }

    #[test]
    fn jpeg_segments_join_by_sequence_number_when_their_count_holds() {
        let segment = |seq: u8, count: u8, data: &[u8]| [&[seq, count][..], data].concat();
        let joined = jpeg_icc(vec![segment(2, 2, b"cd"), segment(1, 2, b"ab")]);
        assert_eq!(joined.as_deref(), Some(&b"abcd"[..]));
        assert_eq!(
            jpeg_icc(vec![segment(1, 3, b"ab"), segment(2, 3, b"cd")]),
            None
        );
        assert_eq!(jpeg_icc(Vec::new()), None);
    }
}

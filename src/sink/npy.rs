//! Writing NumPy `.npy` files (format version 1.0): a header describing dtype and shape, then
//! the elements in C order.
//!
//! The layout: the magic `\x93NUMPY`, version bytes `1 0`, a little-endian u16 header length,
//! then the header, an ASCII Python dict such as
//! `{'descr': '|u1', 'fortran_order': False, 'shape': (480, 640, 3), }`, padded with spaces and
//! ended with `\n` so that the data starts at a multiple of 64 bytes.

/// An element type the writer knows: its NumPy dtype string and its little-endian bytes.
pub trait Element: Copy {
    /// NumPy's `descr` for this type (`|u1`, `|b1`, `<i4`, `<f4`).
    const DESCR: &'static str;

    /// Appends the little-endian bytes of every element of `data` to `out`.
    fn extend_bytes(data: &[Self], out: &mut Vec<u8>);
}

impl Element for u8 {
    const DESCR: &'static str = "|u1";
    fn extend_bytes(data: &[Self], out: &mut Vec<u8>) {
        out.extend_from_slice(data);
    }
}

impl Element for bool {
    const DESCR: &'static str = "|b1";
    fn extend_bytes(data: &[Self], out: &mut Vec<u8>) {
        out.extend(data.iter().map(|&b| u8::from(b)));
    }
}

impl Element for i32 {
    const DESCR: &'static str = "<i4";
    fn extend_bytes(data: &[Self], out: &mut Vec<u8>) {
        out.reserve(data.len() * 4);
        for v in data {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
}

impl Element for f32 {
    const DESCR: &'static str = "<f4";
    fn extend_bytes(data: &[Self], out: &mut Vec<u8>) {
        out.reserve(data.len() * 4);
        for v in data {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
}

/// The magic string every `.npy` file starts with.
pub const MAGIC: &[u8; 6] = b"\x93NUMPY";

/// The bytes before the data: magic, version 1.0, header length and the padded header dict for
/// a C-order array of dtype `descr` and the given `shape` (empty for a 0-d array).
///
/// # Errors
/// A message when the header would not fit version 1.0's 65,535-byte limit (thousands of
/// dimensions).
pub fn header(descr: &str, shape: &[usize]) -> Result<Vec<u8>, String> {
    header_at_least(descr, shape, 0)
}

/// [`header`], padded with more spaces where needed to take at least `min_len` bytes (still a
/// multiple of 64): a header rewritten in place once a count is known keeps the room the first
/// one took. NumPy reads the dict whatever its padding.
///
/// # Errors
/// As [`header`].
pub fn header_at_least(descr: &str, shape: &[usize], min_len: usize) -> Result<Vec<u8>, String> {
    let dims = match shape {
        [] => "()".to_string(),
        [n] => format!("({n},)"),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {dims}, }}");
    // Preamble (magic 6 + version 2 + length 2) + dict + padding + '\n' is a multiple of 64.
    let unpadded = (10 + dict.len() + 1).max(min_len);
    let padding = (64 - unpadded % 64) % 64 + unpadded - (10 + dict.len() + 1);
    dict.extend(std::iter::repeat_n(' ', padding));
    dict.push('\n');
    let len = u16::try_from(dict.len())
        .map_err(|_| format!("npy header of {} bytes is too long", dict.len()))?;
    let mut out = Vec::with_capacity(10 + dict.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    Ok(out)
}

/// A whole `.npy` file holding `data` (C order) with the given `shape`.
///
/// # Errors
/// A message when `data` does not hold exactly the product of `shape` elements, or the header
/// is too long.
pub fn to_bytes<T: Element>(shape: &[usize], data: &[T]) -> Result<Vec<u8>, String> {
    let mut out = header_checked::<T>(shape, data.len())?;
    let bytes = std::mem::size_of_val(data);
    out.try_reserve_exact(bytes)
        .map_err(|_| format!("not enough memory for its {bytes}-byte array"))?;
    T::extend_bytes(data, &mut out);
    Ok(out)
}

/// A `.npy` file whose data is the concatenation of `parts` (for example one slice per frame),
/// without first copying them into one buffer.
///
/// # Errors
/// As [`to_bytes`]: the parts together must hold exactly the product of `shape` elements.
pub fn concat_to_bytes<T: Element, P: AsRef<[T]>>(
    shape: &[usize],
    parts: &[P],
) -> Result<Vec<u8>, String> {
    let total = parts.iter().map(|p| p.as_ref().len()).sum();
    let mut out = header_checked::<T>(shape, total)?;
    for part in parts {
        T::extend_bytes(part.as_ref(), &mut out);
    }
    Ok(out)
}

fn header_checked<T: Element>(shape: &[usize], len: usize) -> Result<Vec<u8>, String> {
    let expected = shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| format!("shape {shape:?} is too large"))?;
    if expected != len {
        return Err(format!(
            "shape {shape:?} needs {expected} elements, got {len}"
        ));
    }
    let mut out = header(T::DESCR, shape)?;
    out.reserve(len * std::mem::size_of::<T>());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_is_padded_to_64() {
        for shape in [&[][..], &[5], &[2, 3], &[480, 640, 3], &[10, 1080, 1920, 3]] {
            let h = header("|u1", shape).unwrap();
            assert_eq!(h.len() % 64, 0, "{shape:?}");
            assert_eq!(&h[..8], b"\x93NUMPY\x01\x00");
            let len = u16::from_le_bytes([h[8], h[9]]) as usize;
            assert_eq!(len + 10, h.len());
            assert_eq!(h.last(), Some(&b'\n'));
        }
        let h = header("<f4", &[5]).unwrap();
        let text = std::str::from_utf8(&h[10..]).unwrap();
        assert!(text.starts_with("{'descr': '<f4', 'fortran_order': False, 'shape': (5,), }"));
    }

    #[test]
    fn a_header_given_room_keeps_it_and_stays_readable() {
        let natural = header("|u1", &[3, 48, 64, 3]).unwrap();
        let room = header("|u1", &[usize::MAX, 48, 64, 3]).unwrap().len() + 64;
        let padded = header_at_least("|u1", &[3, 48, 64, 3], room).unwrap();
        assert_eq!(padded.len(), room);
        assert_eq!(
            u16::from_le_bytes([padded[8], padded[9]]) as usize + 10,
            padded.len()
        );
        assert_eq!(padded.last(), Some(&b'\n'));
        // The same dict, only more spaces before the newline.
        let text = |h: &[u8]| {
            std::str::from_utf8(&h[10..])
                .unwrap()
                .trim_end()
                .to_string()
        };
        assert_eq!(text(&padded), text(&natural));
        // Room smaller than the header needs is no limit.
        assert_eq!(header_at_least("|u1", &[3, 48, 64, 3], 1).unwrap(), natural);
    }

    #[test]
    fn dtypes_write_little_endian() {
        fn data(file: &[u8]) -> &[u8] {
            &file[10 + usize::from(u16::from_le_bytes([file[8], file[9]]))..]
        }
        let out = to_bytes(&[2], &[1i32, -2]).unwrap();
        assert_eq!(data(&out), &[1, 0, 0, 0, 0xFE, 0xFF, 0xFF, 0xFF]);
        let out = to_bytes(&[2, 1], &[true, false]).unwrap();
        assert_eq!(data(&out), &[1, 0]);
        let out = to_bytes(&[1], &[1.0f32]).unwrap();
        assert_eq!(data(&out), &1.0f32.to_le_bytes());
        assert!(to_bytes(&[3], &[1u8, 2]).is_err());
        let out = concat_to_bytes::<u8, _>(&[2, 2], &[vec![1, 2], vec![3, 4]]).unwrap();
        assert_eq!(data(&out), &[1, 2, 3, 4]);
    }
}

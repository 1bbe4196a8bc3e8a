//! A PNG whose ICC profile (`iCCP`) inflates to far more than any profile needs: the `png`
//! crate inflates one up to its whole budget before it drops it, so that budget must not be
//! the whole allocation limit. Alone in its test binary: it measures the process's peak memory.

mod common;

use std::fs;

use shutter::source::DecodeLimits;
use tempfile::TempDir;

use common::{decode_file, one_colour_png};

/// Bits written least significant first, as deflate packs them.
#[derive(Default)]
struct Bits {
    out: Vec<u8>,
    acc: u32,
    count: u32,
}

impl Bits {
    fn put(&mut self, value: u32, count: u32) {
        self.acc |= value << self.count;
        self.count += count;
        while self.count >= 8 {
            self.out.push(self.acc as u8);
            self.acc >>= 8;
            self.count -= 8;
        }
    }

    /// A Huffman code, which goes most significant bit first.
    fn code(&mut self, value: u32, count: u32) {
        let reversed = (0..count).fold(0, |r, i| r | ((value >> i) & 1) << (count - 1 - i));
        self.put(reversed, count);
    }

    fn finish(mut self) -> Vec<u8> {
        if self.count > 0 {
            self.put(0, 8 - self.count);
        }
        self.out
    }
}

/// A zlib stream of `1 + 258 * runs` zero bytes: one fixed-Huffman block of a literal 0 and
/// `runs` copies of 258 bytes at distance 1 (13 bits each), then the Adler-32.
fn zlib_zeros(runs: usize) -> Vec<u8> {
    let mut bits = Bits::default();
    bits.put(1, 1); // the final block
    bits.put(1, 2); // of fixed Huffman codes
    bits.code(0x30, 8); // literal 0
    for _ in 0..runs {
        bits.code(0b1100_0101, 8); // length 258
        bits.put(0, 5); // distance 1
    }
    bits.put(0, 7); // end of block
    let len = 1 + 258 * runs as u64;
    let adler = ((len % 65_521) as u32) << 16 | 1;
    [&[0x78, 0x01][..], &bits.finish(), &adler.to_be_bytes()].concat()
}

/// `one_colour_png` with an `iCCP` chunk (after the header) whose profile inflates to
/// `1 + 258 * runs` bytes.
fn png_with_iccp(runs: usize) -> Vec<u8> {
    let png = one_colour_png();
    let mut data = b"icc\0\0".to_vec();
    data.extend(zlib_zeros(runs));
    let mut chunk = (data.len() as u32).to_be_bytes().to_vec();
    let start = chunk.len();
    chunk.extend_from_slice(b"iCCP");
    chunk.extend(data);
    let crc = common::crc32(&chunk[start..]);
    chunk.extend_from_slice(&crc.to_be_bytes());
    [&png[..33], &chunk[..], &png[33..]].concat()
}

#[cfg(target_os = "linux")]
fn peak_rss_bytes() -> u64 {
    let status = fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .expect("VmHWM");
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .expect("VmHWM in kB");
    kib * 1024
}

#[test]
#[cfg(target_os = "linux")]
fn an_icc_profile_bomb_does_not_take_the_allocation_limit() {
    let dir = TempDir::new().expect("temp dir");
    // 4 KiB of profile: read as before.
    let small = dir.path().join("icc.png");
    fs::write(&small, png_with_iccp(16)).expect("write");
    let frames = decode_file(&small, &DecodeLimits::default()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(&frames[0].rgba[..4], &[1, 2, 3, 255]);
    // 768 MiB of profile from 5 MB of file, under the default 2 GiB allocation limit: the
    // decoder gives up on the profile (as it does on any it cannot inflate) within its
    // budget, 64 MiB above the pixels, and the image decodes.
    let bomb = dir.path().join("iccp-bomb.png");
    fs::write(&bomb, png_with_iccp((768 << 20) / 258)).expect("write");
    let before = peak_rss_bytes();
    let frames = decode_file(&bomb, &DecodeLimits::default()).unwrap_or_else(|e| panic!("{e}"));
    let peak = peak_rss_bytes();
    assert_eq!(&frames[0].rgba[..4], &[1, 2, 3, 255]);
    assert!(
        peak < before.max(64 << 20) + (400 << 20),
        "peak memory went from {before} to {peak} bytes"
    );
}

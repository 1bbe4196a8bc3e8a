//! GIF: the file read block by block and its frames composited exactly as Pillow's
//! `GifImagePlugin` shows them through `ImageSequence`, then `convert("RGBA")`.
//!
//! `image` composites GIFs by the specification; Pillow does not, and the difference shows in
//! the colour under transparent pixels, in which colour a disposal paints, and in the canvas
//! size. The blocks are read here (as Pillow reads them) and only the LZW data is left to
//! `weezl`. Pillow's rules, per frame `k` with extent `E` (its image descriptor):
//!
//! ```text
//! blocks      : bytes other than '!' (extension), ',' (image) and ';' (trailer) are skipped;
//!               the end of the file or a trailer before an image ends the animation (no
//!               trailer, or junk after the last frame, is no error)
//! canvas size : the logical screen, grown to hold every extent met so far
//! palette     : the frame's local palette, else the global one; one whose entry i is
//!               (i, i, i) throughout counts as none (gray: index i shows as (i, i, i));
//!               indices past its end are black
//! disposal    : the GCE's method, kept from earlier frames while a frame gives 0
//! frame 0     : mode P (with a palette) or L; canvas filled with the transparent index
//!               (else 0), E written with every index; index t shows at alpha 0
//! frame k ≥ 1 : the previous frame's disposal is pasted first; then a P canvas becomes RGBA
//!               (when frame 0 had a transparent index, which shows at alpha 0) or RGB, once;
//!               E is drawn over the canvas except where the index is this frame's
//!               transparent one (an L canvas keeps L and takes the indices as gray)
//! disposal 2  : E filled with (rgb(t), alpha 0) where the frame has a transparent index t,
//!               else with rgb(background) (the screen's background index, else 0), opaque;
//!               an RGB canvas drops the alpha (the colour shows); in P and L, the index.
//!               rgb(c) is the frame's palette entry c, entry 0 past its end, (c, c, c)
//!               without a palette
//! disposal 3  : E restored to the canvas as it was before the frame; for frame 0, filled
//!               with the transparent index if there is one, else nothing
//! growth      : a canvas that grows after frame 0 is extended with (0, 0, 0, 0) when the
//!               frame has a transparent index, else with its palette's entry 0, opaque
//! ```
//!
//! LZW data that ends before it fills its frame is an error, as in Pillow ("image file is
//! truncated"); data past the last pixel is ignored. Frame delays are the GCE's, in units of
//! 10 ms (0 without one); the NETSCAPE2.0 extension before the first image gives the loop
//! count (repeats after the first play; without it the GIF plays once).
//!
//! Left out: a first frame without a palette followed by frames with one (Pillow then starts
//! a blank `P` canvas); such frames are drawn as gray here.

use std::io::{BufRead, Read};
use std::num::NonZeroU32;
use std::time::Duration;

use super::{DecodeLimits, DecodedFrame, Frames, InputFormat};
use crate::error::{Error, Result};
use crate::frame::Plays;
use crate::mode::source::SourceMode;

/// A palette as the file gives it: `(i, i, i)` entries throughout count as none (Pillow's
/// `_is_palette_needed`).
#[derive(Debug, Clone)]
struct Palette(Vec<[u8; 3]>);

impl Palette {
    /// The palette of `bytes` (3 a colour), `None` when it is the identity gray ramp.
    fn from_file(bytes: &[u8]) -> Option<Palette> {
        let colours: Vec<[u8; 3]> = bytes.chunks_exact(3).map(|c| [c[0], c[1], c[2]]).collect();
        let identity = colours
            .iter()
            .enumerate()
            .all(|(i, c)| c.iter().all(|&v| usize::from(v) == i));
        (!identity).then_some(Palette(colours))
    }

    /// The colour of a pixel's index: past the palette's end, black.
    fn pixel(&self, index: u8) -> [u8; 3] {
        self.0.get(usize::from(index)).copied().unwrap_or_default()
    }

    /// The colour a disposal paints for index `c` (Pillow's `_rgb`): past the end, entry 0.
    fn fill(&self, c: u8) -> [u8; 3] {
        self.0
            .get(usize::from(c))
            .or(self.0.first())
            .copied()
            .unwrap_or_default()
    }
}

/// The colour of index `c` in `palette`, or gray without one.
fn rgb(palette: Option<&Palette>, index: u8) -> [u8; 3] {
    palette.map_or([index; 3], |p| p.pixel(index))
}

/// Pillow's mode for the canvas: indices (P with a palette, L without), or colours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    P,
    L,
    Rgb,
    Rgba,
}

impl Mode {
    fn bytes_per_pixel(self) -> usize {
        match self {
            Mode::P | Mode::L => 1,
            Mode::Rgb | Mode::Rgba => 4,
        }
    }
}

/// A rectangle of the canvas: x, y, width, height.
#[derive(Debug, Clone, Copy)]
struct Extent {
    x: usize,
    y: usize,
    width: usize,
    height: usize,
}

/// What a frame leaves for the next one to paste over its extent before drawing.
#[derive(Debug, Clone)]
enum Disposal {
    /// One pixel value everywhere (an index in P and L, 4 bytes in RGB and RGBA).
    Fill(Extent, [u8; 4]),
    /// The extent's pixels as they were, in the canvas's layout.
    Restore(Extent, Vec<u8>),
}

/// One image descriptor and what came before it.
struct FrameHeader {
    extent: Extent,
    palette: Option<Palette>,
    transparent: Option<u8>,
    interlaced: bool,
    delay: Duration,
    /// The LZW minimum code size and the data of the image's sub-blocks.
    code_size: u8,
    data: Vec<u8>,
    /// The data ended (end of file) before its block terminator.
    cut: bool,
}

/// The frames of a GIF, read and composited one by one as the caller asks for them.
struct Animation<R> {
    name: String,
    reader: R,
    limits: DecodeLimits,
    /// The output's side limit: a canvas grown past it fails before its frame's pixels.
    max_side: super::MaxSide,
    width: usize,
    height: usize,
    global: Option<Palette>,
    /// The screen's background index, only with a global colour table.
    background: Option<u8>,
    plays: Plays,
    /// The GCE disposal method, kept while later frames give 0.
    disposal_method: u8,
    mode: Mode,
    canvas: Vec<u8>,
    /// Frame 0's palette, which a P canvas shows through.
    canvas_palette: Option<Palette>,
    /// Frame 0's transparent index while the canvas is P or L (Pillow's `info`).
    transparency: Option<u8>,
    disposal: Option<Disposal>,
    /// Frame 0, read with the header so that a file without frames fails at once.
    first: Option<FrameHeader>,
    next: usize,
    done: bool,
}

/// The frames of the GIF in `reader`, after its header and first image descriptor have been
/// read and the canvas checked against `limits` and `max_side`.
///
/// # Errors
/// [`Error::Decode`] naming `name` for a malformed header, a file without frames or a canvas
/// without pixels; [`Error::Limits`] for a canvas or frame over `limits`;
/// [`Error::Unsupported`] for a canvas larger than `max_side` (a later frame's fails as that
/// frame's item).
pub(super) fn decode<R>(
    name: &str,
    reader: R,
    limits: &DecodeLimits,
    max_side: super::MaxSide,
) -> Result<Frames>
where
    R: BufRead + Send + 'static,
{
    let mut reader = reader;
    let err = |reason: String| decode_error(name, reason);
    let screen = read_exact(&mut reader, 13).map_err(err)?;
    if !screen.starts_with(b"GIF87a") && !screen.starts_with(b"GIF89a") {
        return Err(err(
            "not a GIF file (no GIF87a or GIF89a signature)".to_string()
        ));
    }
    let flags = screen[10];
    let (global, background) = if flags & 0x80 != 0 {
        let table = read_exact(&mut reader, 3 << ((flags & 7) + 1)).map_err(err)?;
        (Palette::from_file(&table), Some(screen[11]))
    } else {
        (None, None)
    };
    let mut animation = Animation {
        name: name.to_string(),
        reader,
        limits: *limits,
        max_side,
        width: usize::from(u16::from_le_bytes([screen[6], screen[7]])),
        height: usize::from(u16::from_le_bytes([screen[8], screen[9]])),
        global,
        background,
        plays: Plays::Times(NonZeroU32::MIN),
        disposal_method: 0,
        mode: Mode::P,
        canvas: Vec::new(),
        canvas_palette: None,
        transparency: None,
        disposal: None,
        first: None,
        next: 0,
        done: false,
    };
    let first = animation
        .read_header(true)
        .map_err(err)?
        .ok_or_else(|| err("the GIF has no frames".to_string()))?;
    animation.grow_to(&first.extent);
    let (width, height) = (animation.width, animation.height);
    if width == 0 || height == 0 {
        return Err(err(format!(
            "the GIF has no pixels: its screen and first frame are {width}×{height}"
        )));
    }
    limits.check(name, width as u64, height as u64)?;
    super::check_side(name, width as u64, height as u64, max_side)?;
    animation.first = Some(first);
    Ok(Box::new(animation))
}

fn decode_error(name: &str, reason: impl Into<String>) -> Error {
    Error::Decode {
        input: name.to_string(),
        format: InputFormat::Gif.name().to_string(),
        reason: reason.into(),
    }
}

const TRUNCATED: &str = "the data ends early (truncated file)";

/// Reads `n` bytes, or says the data ends early.
fn read_exact<R: Read>(reader: &mut R, n: usize) -> std::result::Result<Vec<u8>, String> {
    let mut out = vec![0; n];
    reader.read_exact(&mut out).map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            TRUNCATED.to_string()
        } else {
            e.to_string()
        }
    })?;
    Ok(out)
}

/// One byte, `None` at the end of the file.
fn read_byte<R: Read>(reader: &mut R) -> std::result::Result<Option<u8>, String> {
    let mut byte = [0];
    match reader.read(&mut byte) {
        Ok(0) => Ok(None),
        Ok(_) => Ok(Some(byte[0])),
        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => read_byte(reader),
        Err(e) => Err(e.to_string()),
    }
}

/// One data sub-block: `None` for the terminator or the end of the file; a block cut by the
/// end of the file comes back short.
fn sub_block<R: Read>(reader: &mut R) -> std::result::Result<Option<Vec<u8>>, String> {
    match read_byte(reader)? {
        None | Some(0) => Ok(None),
        Some(n) => {
            let mut out = Vec::with_capacity(usize::from(n));
            (&mut *reader)
                .take(u64::from(n))
                .read_to_end(&mut out)
                .map_err(|e| e.to_string())?;
            Ok(Some(out))
        }
    }
}

/// Skips sub-blocks up to the terminator (or the end of the file).
fn skip_sub_blocks<R: Read>(reader: &mut R) -> std::result::Result<(), String> {
    while sub_block(reader)?.is_some() {}
    Ok(())
}

impl<R: BufRead> Animation<R> {
    /// Reads blocks up to the next image and its data, as Pillow's `_seek` does: `None` when
    /// the file ends, or has its trailer, first.
    fn read_header(&mut self, first: bool) -> std::result::Result<Option<FrameHeader>, String> {
        let reader = &mut self.reader;
        let mut transparent = None;
        let mut delay = Duration::ZERO;
        loop {
            let Some(byte) = read_byte(reader)? else {
                return Ok(None);
            };
            match byte {
                b';' => return Ok(None),
                b'!' => {
                    let label = read_byte(reader)?.ok_or(TRUNCATED)?;
                    let block = sub_block(reader)?;
                    match (label, block) {
                        (0xF9, Some(block)) => {
                            let gce = block
                                .get(..4)
                                .ok_or("a graphic control block under 4 bytes")?;
                            if gce[0] & 1 != 0 {
                                transparent = Some(gce[3]);
                            }
                            delay = Duration::from_millis(
                                u64::from(u16::from_le_bytes([gce[1], gce[2]])) * 10,
                            );
                            let method = (gce[0] >> 2) & 7;
                            if method != 0 {
                                self.disposal_method = method;
                            }
                        }
                        (0xFF, Some(block)) if first && block.starts_with(b"NETSCAPE2.0") => {
                            if let Some(loop_block) = sub_block(reader)?
                                && loop_block.len() >= 3
                                && loop_block[0] == 1
                            {
                                let repeats = u16::from_le_bytes([loop_block[1], loop_block[2]]);
                                self.plays = NonZeroU32::new(u32::from(repeats))
                                    .map_or(Plays::Forever, |n| Plays::Times(n.saturating_add(1)));
                            }
                        }
                        _ => {}
                    }
                    skip_sub_blocks(reader)?;
                }
                b',' => {
                    let descriptor = read_exact(reader, 9)?;
                    let word = |at: usize| {
                        usize::from(u16::from_le_bytes([descriptor[at], descriptor[at + 1]]))
                    };
                    let extent = Extent {
                        x: word(0),
                        y: word(2),
                        width: word(4),
                        height: word(6),
                    };
                    let flags = descriptor[8];
                    // A local table that is a gray ramp means "no palette" (not the global).
                    let palette = if flags & 0x80 != 0 {
                        let table = read_exact(reader, 3 << ((flags & 7) + 1))?;
                        Palette::from_file(&table)
                    } else {
                        self.global.clone()
                    };
                    let code_size = read_byte(reader)?.ok_or(TRUNCATED)?;
                    let mut data = Vec::new();
                    let mut cut = false;
                    loop {
                        match read_byte(reader)? {
                            None => {
                                cut = true;
                                break;
                            }
                            Some(0) => break,
                            Some(n) => {
                                let before = data.len();
                                (&mut *reader)
                                    .take(u64::from(n))
                                    .read_to_end(&mut data)
                                    .map_err(|e| e.to_string())?;
                                if data.len() - before < usize::from(n) {
                                    cut = true;
                                    break;
                                }
                            }
                        }
                    }
                    return Ok(Some(FrameHeader {
                        extent,
                        palette,
                        transparent,
                        interlaced: flags & 0x40 != 0,
                        delay,
                        code_size,
                        data,
                        cut,
                    }));
                }
                // Anything else between blocks is skipped a byte at a time.
                _ => {}
            }
        }
    }

    /// Grows the canvas size to hold `extent` (the pixels follow later).
    fn grow_to(&mut self, extent: &Extent) {
        self.width = self.width.max(extent.x + extent.width);
        self.height = self.height.max(extent.y + extent.height);
    }

    /// The frame's indices, row by row, de-interlaced.
    fn indices(&self, header: &FrameHeader) -> Result<Vec<u8>> {
        let err = |reason: String| decode_error(&self.name, reason);
        let Extent { width, height, .. } = header.extent;
        self.limits.check(&self.name, width as u64, height as u64)?;
        let mut out = vec![0; width * height];
        if out.is_empty() {
            return Ok(out);
        }
        if header.code_size > 12 {
            return Err(err(format!(
                "frame {} has an LZW code size of {}, more than 12",
                self.next, header.code_size
            )));
        }
        let mut lzw = weezl::decode::Decoder::new(weezl::BitOrder::Lsb, header.code_size);
        let (mut read, mut written) = (0, 0);
        while written < out.len() {
            let result = lzw.decode_bytes(&header.data[read..], &mut out[written..]);
            read += result.consumed_in;
            written += result.consumed_out;
            let stalled = result.consumed_in == 0 && result.consumed_out == 0;
            match result.status {
                _ if written == out.len() => break,
                Ok(weezl::LzwStatus::Ok) if !stalled => {}
                Ok(_) => {
                    let why = if header.cut {
                        TRUNCATED
                    } else {
                        "image file is truncated"
                    };
                    return Err(err(format!(
                        "frame {} ends after {written} of its {} pixels ({why})",
                        self.next,
                        out.len()
                    )));
                }
                Err(e) => {
                    return Err(err(format!("frame {}: broken LZW data ({e})", self.next)));
                }
            }
        }
        if header.interlaced {
            let mut rows = vec![0; out.len()];
            let order = (0..height)
                .step_by(8)
                .chain((4..height).step_by(8))
                .chain((2..height).step_by(4))
                .chain((1..height).step_by(2));
            for (from, to) in order.enumerate() {
                rows[to * width..(to + 1) * width]
                    .copy_from_slice(&out[from * width..(from + 1) * width]);
            }
            out = rows;
        }
        Ok(out)
    }

    /// Pastes `pixels` (the canvas's layout, `extent`'s size) over the canvas.
    fn paste(&mut self, extent: &Extent, pixels: &[u8]) {
        let bpp = self.mode.bytes_per_pixel();
        let row = extent.width * bpp;
        for y in 0..extent.height {
            let at = ((extent.y + y) * self.width + extent.x) * bpp;
            self.canvas[at..at + row].copy_from_slice(&pixels[y * row..(y + 1) * row]);
        }
    }

    /// The canvas's pixels under `extent`; outside the canvas, zeros (Pillow's `crop`).
    fn crop(&self, extent: &Extent) -> Vec<u8> {
        let bpp = self.mode.bytes_per_pixel();
        let mut out = vec![0; extent.width * extent.height * bpp];
        for y in 0..extent.height {
            let cy = extent.y + y;
            if cy >= self.height {
                break;
            }
            let inside = self.width.saturating_sub(extent.x).min(extent.width);
            if inside == 0 {
                break;
            }
            let from = (cy * self.width + extent.x) * bpp;
            out[y * extent.width * bpp..][..inside * bpp]
                .copy_from_slice(&self.canvas[from..from + inside * bpp]);
        }
        out
    }

    /// Applies the previous frame's disposal.
    fn dispose(&mut self) {
        match self.disposal.take() {
            Some(Disposal::Fill(extent, pixel)) => {
                let bpp = self.mode.bytes_per_pixel();
                let fill: Vec<u8> = pixel[..bpp]
                    .iter()
                    .copied()
                    .cycle()
                    .take(extent.width * extent.height * bpp)
                    .collect();
                self.paste(&extent, &fill);
            }
            Some(Disposal::Restore(extent, pixels)) => self.paste(&extent, &pixels),
            None => {}
        }
    }

    /// What this frame leaves to be pasted before the next one (Pillow works it out as it
    /// reads the frame, from the canvas before drawing).
    fn plan_disposal(&mut self, header: &FrameHeader, first: bool) {
        let extent = header.extent;
        let palette = header.palette.as_ref();
        let fill = |c: u8| palette.map_or([c; 3], |p| p.fill(c));
        let colours = matches!(self.mode, Mode::Rgb | Mode::Rgba);
        self.disposal = match self.disposal_method {
            2 => Some(Disposal::Fill(
                extent,
                match (self.transparency.or(header.transparent), colours) {
                    (Some(t), true) => {
                        let [r, g, b] = fill(t);
                        [r, g, b, 0]
                    }
                    (Some(t), false) => [t; 4],
                    (None, true) => {
                        let [r, g, b] = fill(self.background.unwrap_or(0));
                        [r, g, b, 255]
                    }
                    (None, false) => [self.background.unwrap_or(0); 4],
                },
            )),
            3 if !first => Some(Disposal::Restore(extent, self.crop(&extent))),
            3 => header.transparent.map(|t| Disposal::Fill(extent, [t; 4])),
            _ => None,
        };
    }

    /// Reads, decodes and composites the next frame; `None` at the end of the animation.
    fn frame(&mut self) -> Result<Option<DecodedFrame>> {
        let first = self.next == 0;
        let header = match self.first.take() {
            Some(header) => header,
            None => {
                let Some(header) = self
                    .read_header(false)
                    .map_err(|e| decode_error(&self.name, e))?
                else {
                    return Ok(None);
                };
                header
            }
        };
        let (old_width, old_height) = (self.width, self.height);
        self.grow_to(&header.extent);
        self.limits
            .check(&self.name, self.width as u64, self.height as u64)?;
        super::check_side(
            &self.name,
            self.width as u64,
            self.height as u64,
            self.max_side,
        )?;
        let indices = self.indices(&header)?;
        let extent = header.extent;

        if first {
            self.mode = if header.palette.is_some() {
                Mode::P
            } else {
                Mode::L
            };
            self.canvas = vec![header.transparent.unwrap_or(0); self.width * self.height];
            self.canvas_palette = header.palette.clone();
            self.plan_disposal(&header, true);
            self.paste(&extent, &indices);
            self.transparency = header.transparent;
        } else {
            // The previous frame's disposal goes onto the canvas at its old size.
            let (grown_width, grown_height) = (self.width, self.height);
            (self.width, self.height) = (old_width, old_height);
            self.dispose();
            if self.mode == Mode::P {
                self.canvas = self.to_colours();
                self.mode = if self.transparency.take().is_some() {
                    Mode::Rgba
                } else {
                    Mode::Rgb
                };
            }
            self.plan_disposal(&header, false);
            let grown = (grown_width, grown_height) != (old_width, old_height);
            if self.mode == Mode::L {
                if grown {
                    self.extend(grown_width, grown_height, 0, Mode::L);
                }
                for y in 0..extent.height {
                    for x in 0..extent.width {
                        let index = indices[y * extent.width + x];
                        if Some(index) != header.transparent {
                            self.canvas[(extent.y + y) * self.width + extent.x + x] = index;
                        }
                    }
                }
            } else {
                if grown {
                    let (pixel, mode) = match (header.transparent, header.palette.as_ref()) {
                        (Some(_), _) => (0, Mode::Rgba),
                        (None, palette) => {
                            let [r, g, b] = rgb(palette, 0);
                            (u32::from_le_bytes([r, g, b, 255]), Mode::Rgb)
                        }
                    };
                    self.extend(grown_width, grown_height, pixel, mode);
                }
                let palette = header.palette.as_ref();
                for y in 0..extent.height {
                    for x in 0..extent.width {
                        let index = indices[y * extent.width + x];
                        if Some(index) != header.transparent {
                            let [r, g, b] = rgb(palette, index);
                            let at = ((extent.y + y) * self.width + extent.x + x) * 4;
                            self.canvas[at..at + 4].copy_from_slice(&[r, g, b, 255]);
                        }
                    }
                }
            }
        }

        let rgba = match self.mode {
            Mode::P | Mode::L => self.to_colours(),
            Mode::Rgb => {
                let mut rgba = self.canvas.clone();
                rgba.chunks_exact_mut(4).for_each(|px| px[3] = 255);
                rgba
            }
            Mode::Rgba => self.canvas.clone(),
        };
        // After the first frame Pillow's mode is RGBA when the first had a transparent index,
        // however opaque the frame is; a P or L first frame has alpha where it shows some.
        let has_alpha = self.mode == Mode::Rgba || rgba.chunks_exact(4).any(|px| px[3] != 255);
        Ok(Some(DecodedFrame {
            width: self.width as u32,
            height: self.height as u32,
            rgba,
            has_alpha,
            delay: Some(header.delay),
            source: SourceMode::Color,
            plays: Some(self.plays),
            icc_profile: None,
        }))
    }

    /// A P or L canvas as RGBA: its palette's colours (gray for L), the transparent index at
    /// alpha 0.
    fn to_colours(&self) -> Vec<u8> {
        let palette = self
            .canvas_palette
            .as_ref()
            .filter(|_| self.mode == Mode::P);
        self.canvas
            .iter()
            .flat_map(|&index| {
                let [r, g, b] = rgb(palette, index);
                let alpha = if Some(index) == self.transparency {
                    0
                } else {
                    255
                };
                [r, g, b, alpha]
            })
            .collect()
    }

    /// Grows the canvas to `width` × `height` in `mode`, the old pixels at the top left and
    /// `pixel` (little-endian bytes; an index in L) around them.
    fn extend(&mut self, width: usize, height: usize, pixel: u32, mode: Mode) {
        let bpp = mode.bytes_per_pixel();
        let bytes = &pixel.to_le_bytes()[..bpp];
        let mut canvas: Vec<u8> = bytes
            .iter()
            .copied()
            .cycle()
            .take(width * height * bpp)
            .collect();
        let row = self.width * bpp;
        for y in 0..self.height {
            canvas[y * width * bpp..][..row].copy_from_slice(&self.canvas[y * row..(y + 1) * row]);
        }
        (self.canvas, self.width, self.height, self.mode) = (canvas, width, height, mode);
    }
}

impl<R: BufRead> Iterator for Animation<R> {
    type Item = Result<DecodedFrame>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let item = self.frame().transpose();
        // Nothing follows an error or the end.
        self.done = !matches!(item, Some(Ok(_)));
        self.next += 1;
        item
    }
}

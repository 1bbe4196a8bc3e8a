"""Makes the source-mode fixtures and Pillow's conversions of them (tests/source_modes.rs).

Pillow converts a gray, 16-bit or palette file from its own mode; these files are small
images in those modes, with a gray+alpha TIFF, a premultiplied RGBA TIFF (which Pillow
un-premultiplies), 32-bit TIFFs (`I`, `F`, one turned by its Orientation tag, which
ImageOps.exif_transpose applies first, as Gradio does), RGB PNGs with a tRNS colour (`RGB`
with transparency in Pillow), palette BMPs (`L`, `1` or `P` by their palette), a CMYK TIFF,
palette TIFFs, and files Pillow cannot write, made by hand: 16-bit premultiplied RGBA TIFF,
16-bit gray+alpha PNG, gray and 16-bit RGB PNGs with tRNS values, a 16-bit WhiteIsZero
TIFF, a 4-bit palette TIFF, OS/2 2.x BMPs, 16-bit and 1-bit gray PNGs with tRNS values, a
16-bit CMYK TIFF, 16-bit BMPs, 2- and 4-bit gray TIFFs. For each file, mode and mirror (ImageOps.mirror first, or not),
`pillow.bin` holds `np.asarray(im.convert(mode))` as Gradio's numpy users get it (bool as
0/255 bytes, I and F little-endian) and, for P, `getpalette()` (RGBA entries when the image
has transparency); `manifest.json` gives each one's offset and length, shape and dtype.

Run from this directory with Pillow 13 and numpy: `python make_sources.py`.
"""

import json
import struct
import warnings
import zlib

import numpy as np
from PIL import Image, ImageOps

W, H = 13, 7
MODES = ["1", "L", "P", "RGB", "RGBA", "CMYK", "YCbCr", "LAB", "HSV", "I", "F"]
rng = np.random.default_rng(20261128)


def gray8():
    v = rng.integers(0, 256, (H, W), dtype=np.uint8)
    v[0, :4] = [0, 1, 254, 255]
    v[1, :3] = [127, 128, 129]
    return v


def fixtures():
    yield "gray.png", Image.fromarray(gray8(), "L"), {}
    yield "gray_alpha.png", Image.fromarray(np.dstack([gray8(), gray8()]), "LA"), {}
    yield "bilevel.png", Image.fromarray(gray8() > 100), {}
    v16 = rng.integers(0, 65536, (H, W)).astype("<u2")
    v16[0, :6] = [0, 1, 255, 256, 300, 65535]
    v16[1, :] = rng.integers(0, 256, W)  # a row Pillow's 8-bit conversions keep
    yield "gray16.png", Image.frombytes("I;16", (W, H), v16.tobytes()), {}
    yield "gray16.tif", Image.frombytes("I;16", (W, H), v16.tobytes()), {}
    # A tRNS value above 255: Pillow compares it with the samples clipped to 8 bits, so it
    # matches none (`image` would compare the 16-bit samples).
    yield "gray16_trns.png", Image.frombytes("I;16", (W, H), v16.tobytes()), {
        "transparency": int(v16[0, 4])
    }
    yield "gray_alpha.tif", Image.fromarray(np.dstack([gray8(), gray8()]), "LA"), {}
    rgba = rng.integers(0, 256, (H, W, 4), dtype=np.uint8)
    rgba[0, :3, 3] = [0, 255, 1]
    yield "rgba_premultiplied.tif", Image.fromarray(rgba, "RGBA"), {"associated": True}
    # 32-bit TIFFs open as I and F: below 0, above 255, fractions; one turned by its tag.
    i32 = rng.integers(-300, 70000, (H, W)).astype(np.int32)
    i32[0, :6] = [-1, 0, 1, 255, 256, 2**31 - 1]
    yield "int32.tif", Image.fromarray(i32, "I"), {}
    f32 = (rng.standard_normal((H, W)) * 200 + 100).astype(np.float32)
    f32[0, :6] = [-0.5, 0.4, 0.6, 1.5, 254.99, 1e9]
    f32[1, :4] = [np.nan, np.inf, -np.inf, 3e9]  # I: i32::MIN (x86's cast), L: 0, 255, 0, 255
    yield "float32.tif", Image.fromarray(f32, "F"), {}
    yield "float32_turned.tif", Image.fromarray(f32, "F"), {"tiffinfo": {274: 6}}
    # CMYK TIFF: Pillow keeps CMYK, and its RGB rounds (255 - K) - C(255 - K)/255.
    yield "cmyk.tif", Image.fromarray(rng.integers(0, 256, (H, W, 4), dtype=np.uint8), "CMYK"), {}
    # 16-bit premultiplied RGBA: Pillow un-premultiplies the high bytes.
    rgba16 = rng.integers(0, 65536, (H, W, 4)).astype("<u2")
    rgba16[..., :3] = np.minimum(rgba16[..., :3], rgba16[..., 3:])
    yield "rgba16_premultiplied.tif", None, {"raw_tiff": (4, 16, 2, rgba16.tobytes(), 1)}
    # PNGs Pillow cannot write: 16-bit gray+alpha (which it opens as RGBA), 4-bit gray with a
    # tRNS value (compared with the samples scaled to 8 bits: 0 matches, 15 would not), 16-bit
    # RGB with a tRNS colour (compared with the 8-bit high bytes).
    la16 = rng.integers(0, 65536, (H, W, 2)).astype(">u2")
    yield "gray_alpha16.png", None, {"raw_png": (16, 4, [r.tobytes() for r in la16], None)}
    g4 = rng.integers(0, 16, (H, W)).astype(np.uint8)
    g4 = np.pad(g4, ((0, 0), (0, 1)))[:, : W + 1]
    rows4 = [bytes((r[i] << 4) | r[i + 1] for i in range(0, W, 2)) for r in g4]
    yield "gray4_trns.png", None, {"raw_png": (4, 0, rows4, struct.pack(">H", 0))}
    rgb16 = rng.integers(0, 65536, (H, W, 3)).astype(">u2")
    rgb16[0, :3] = [[0xAB00, 0x1200, 0x3400], [0xAB55, 0x1211, 0x3499], [0xAB, 0x12, 0x34]]
    key = struct.pack(">HHH", 0xAB, 0x12, 0x34)
    yield "rgb16_trns.png", None, {"raw_png": (16, 2, [r.tobytes() for r in rgb16], key)}
    # 8-bit gray with a tRNS value: Pillow's P keeps it as that entry's transparency.
    gk = gray8()
    yield "gray_trns.png", Image.fromarray(gk, "L"), {"transparency": int(gk[0, 3])}
    # A palette PNG turned by its EXIF orientation: exif_transpose keeps it P.
    pt = Image.fromarray(rng.integers(0, 12, (H, W), dtype=np.uint8), "L").convert("P")
    pt.putpalette(rng.integers(0, 256, 36, dtype=np.uint8).tolist())
    turned = Image.Exif()
    turned[274] = 6
    yield "palette_turned.png", pt, {"exif": turned.tobytes()}
    # BMP palettes: a gray ramp opens as L (two entries black, white: 1), any other as P.
    yield "gray.bmp", Image.fromarray(gray8(), "L"), {}
    yield "bilevel.bmp", Image.fromarray(gray8() > 100), {}
    pb = Image.fromarray(rng.integers(0, 64, (H, W), dtype=np.uint8), "L").convert("P")
    pb.putpalette(rng.permutation(256 * 256 * 256)[:64].astype(">u4").view(np.uint8)
                  .reshape(64, 4)[:, 1:].flatten().tolist())  # 64 distinct colours
    yield "palette.bmp", pb, {}
    rgb = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    rgb[0, :2] = [[10, 20, 30], [51, 102, 0]]
    # A tRNS colour on RGB: Pillow's `RGB` with transparency, not RGBA.
    yield "rgb_key.png", Image.fromarray(rgb), {"transparency": (10, 20, 30)}
    yield "rgb_key_web.png", Image.fromarray(rgb), {"transparency": (51, 102, 0)}
    p = Image.fromarray(rng.integers(0, 200, (H, W), dtype=np.uint8), "L").convert("P")
    pal = rng.integers(0, 256, (200, 3), dtype=np.uint8)
    pal[7] = pal[3]  # a duplicate entry: indices, not colours, are kept
    pal[8] = [128, 128, 128]
    pal[9] = [127, 128, 128]  # either side of the `1` threshold
    p.putpalette(pal.flatten().tolist())
    yield "palette.png", p, {}
    p4 = Image.fromarray(rng.integers(0, 16, (H, W), dtype=np.uint8), "L").convert("P")
    p4.putpalette(rng.integers(0, 256, 48, dtype=np.uint8).tolist())
    trns = bytes(rng.integers(0, 256, 16, dtype=np.uint8))
    yield "palette4_trns.png", p4, {"bits": 4, "transparency": trns}
    # TIFFs: a 16-bit WhiteIsZero one (Pillow keeps the stored values as I;16, where it
    # inverts narrower ones), and palette ones (P, the ColorMap's high bytes): Pillow's own
    # 8-bit one, and a hand-made 4-bit one whose ColorMap has low bytes Pillow drops.
    w16 = rng.integers(0, 65536, (H, W)).astype("<u2")
    w16[0, :4] = [0, 255, 256, 65535]
    yield "gray16_white_is_zero.tif", None, {"raw_tiff": (1, 16, 0, w16.tobytes(), None)}
    pt8 = Image.fromarray(rng.integers(0, 200, (H, W), dtype=np.uint8), "L").convert("P")
    pt8.putpalette(rng.integers(0, 256, 600, dtype=np.uint8).tolist())
    yield "palette.tif", pt8, {}
    i4 = np.pad(rng.integers(0, 16, (H, W)).astype(np.uint8), ((0, 0), (0, 1)))
    rows4 = b"".join(bytes((r[i] << 4) | r[i + 1] for i in range(0, W, 2)) for r in i4)
    cmap = (rng.integers(0, 65536, 48)).tolist()
    yield "palette4.tif", None, {"raw_tiff": (1, 4, 3, rows4, None, [(320, 3, cmap)])}
    # OS/2 2.x BMPs (a 64-byte info header, which Pillow reads as a Windows one): palette
    # and 24-bit, Pillow's BMPs with the header widened by hand.
    po = Image.fromarray(rng.integers(0, 40, (H, W), dtype=np.uint8), "L").convert("P")
    po.putpalette(rng.integers(0, 256, 120, dtype=np.uint8).tolist())
    yield "os2_palette.bmp", po, {"os2": True}
    rgb_os2 = Image.fromarray(rng.integers(0, 256, (H, W, 3), dtype=np.uint8))
    yield "os2_rgb.bmp", rgb_os2, {"os2": True}
    # tRNS values on 16-bit and 1-bit gray PNGs. Pillow compares an I;16 value with the
    # samples clipped to 8 bits (so 255 matches every sample from 255 up), and reads a 1-bit
    # file's key 1 as 255 (white).
    k16 = rng.integers(0, 65536, (H, W)).astype("<u2")
    k16[1, :] = rng.integers(0, 256, W)
    k16[0, :4] = [0, 7, 255, 256]
    k16[2, :3] = 7
    yield "gray16_trns7.png", Image.frombytes("I;16", (W, H), k16.tobytes()), {"transparency": 7}
    yield "gray16_trns255.png", Image.frombytes("I;16", (W, H), k16.tobytes()), {
        "transparency": 255
    }
    b1 = np.pad(rng.integers(0, 2, (H, W)).astype(np.uint8), ((0, 0), (0, 8 - W % 8)))
    rows1 = [np.packbits(r).tobytes() for r in b1]
    yield "bilevel_trns.png", None, {"raw_png": (1, 0, rows1, struct.pack(">H", 1))}
    # A 16-bit CMYK TIFF: Pillow's CMYK of the high bytes.
    c16 = rng.integers(0, 65536, (H, W, 4)).astype("<u2")
    c16[0, :3] = [[0, 0, 0, 0], [65535, 0, 0, 0], [0x12FF, 0x1300, 0x80, 0xFFFF]]
    yield "cmyk16.tif", None, {"raw_tiff": (4, 16, 5, c16.tobytes(), None)}
    # 16-bit BMPs, which Pillow cannot write: 5-5-5 (no masks) and 5-6-5 (BITFIELDS). Pillow
    # widens a channel of n bits as v * 255 // (2^n - 1).
    v555 = rng.integers(0, 1 << 15, (H, W)).astype("<u2")
    v555[0, :4] = [0, 0x7FFF, 0x0001, 0x0421]
    yield "rgb555.bmp", None, {"raw_bmp": (v555, None)}
    v565 = rng.integers(0, 1 << 16, (H, W)).astype("<u2")
    v565[0, :4] = [0, 0xFFFF, 0x0001, 0x0821]
    yield "rgb565.bmp", None, {"raw_bmp": (v565, (0xF800, 0x07E0, 0x001F))}
    # 2- and 4-bit gray TIFFs, which Pillow opens as L scaled (x 85, x 17; WhiteIsZero
    # inverted first), and neither image nor tiff reads.
    for bits, photometric, name in ((4, 1, "gray4.tif"), (2, 0, "gray2_white_is_zero.tif")):
        per = 8 // bits
        v = rng.integers(0, 1 << bits, (H, W)).astype(np.uint8)
        v[0, : min(W, 1 << bits)] = np.arange(1 << bits)[:W]
        v = np.pad(v, ((0, 0), (0, (-W) % per)))
        packed = b"".join(
            bytes(sum(int(r[i + j]) << (8 - bits * (j + 1)) for j in range(per))
                  for i in range(0, len(r), per))
            for r in v
        )
        yield name, None, {"raw_tiff": (1, bits, photometric, packed, None)}
    # Palette BMPs whose palette repeats a colour, so only the file's own indices tell the
    # entries apart: Pillow's 8-bit BMP of a WEB-palette image (its unused entries all black),
    # and hand-made 4-bit (top-down) and 1-bit ones.
    web = Image.fromarray(rng.integers(0, 256, (H, W, 3), dtype=np.uint8)).convert("P")
    yield "palette_web.bmp", web, {}
    pal4 = rng.integers(0, 256, (16, 3), dtype=np.uint8)
    pal4[9] = pal4[2]
    pal4[10] = [128, 128, 128]
    pal4[11] = [127, 128, 128]  # either side of the `1` threshold
    i4 = rng.integers(0, 16, (H, W)).astype(np.uint8)
    i4[0, :4] = [2, 9, 10, 11]
    yield "palette4_repeat.bmp", None, {"raw_palette_bmp": (4, pal4, i4, True)}
    pal1 = np.array([[200, 30, 40], [200, 30, 40]], np.uint8)
    yield "palette1_repeat.bmp", None, {
        "raw_palette_bmp": (1, pal1, rng.integers(0, 2, (H, W)).astype(np.uint8), False)
    }
    # 16-bit keys above 255, which Pillow compares by their low byte: gray 300 with the 8-bit
    # (clipped) samples, so it matches 44; RGB (0x1FF, 0x2AB, 0x30C) with the high bytes.
    g300 = rng.integers(0, 65536, (H, W)).astype(">u2")
    g300[0, :4] = [44, 300, 65535, 0x2C2C]
    g300[1, :] = rng.integers(0, 256, W)
    yield "gray16_trns300.png", None, {
        "raw_png": (16, 0, [r.tobytes() for r in g300], struct.pack(">H", 300))
    }
    r16 = rng.integers(0, 65536, (H, W, 3)).astype(">u2")
    r16[0, :3] = [[0xFF00, 0xAB00, 0x0C00], [0xFF12, 0xAB34, 0x0C56], [0x1FF, 0x2AB, 0x30C]]
    yield "rgb16_trns_wide.png", None, {
        "raw_png": (16, 2, [r.tobytes() for r in r16], struct.pack(">3H", 0x1FF, 0x2AB, 0x30C))
    }


def raw_palette_bmp(path, width, height, bits, palette, indices, top_down):
    """A palette BMP of 1 or 4 bits a pixel written by hand (Pillow writes 8 bits), rows
    bottom-up or, with a negative height, top-down."""
    per = 8 // bits
    stride = (width * bits + 31) // 32 * 4
    rows = [
        bytes(
            sum(int(r[i + j]) << (8 - bits * (j + 1)) for j in range(per) if i + j < width)
            for i in range(0, width, per)
        ).ljust(stride, b"\0")
        for r in indices
    ]
    data = b"".join(rows if top_down else rows[::-1])
    table = b"".join(bytes([b, g, r, 0]) for r, g, b in palette)
    offset = 14 + 40 + len(table)
    header = struct.pack("<IiiHHIIiiII", 40, width, -height if top_down else height, 1, bits,
                         0, len(data), 2835, 2835, len(palette), 0)
    with open(path, "wb") as f:
        f.write(b"BM" + struct.pack("<IHHI", offset + len(data), 0, 0, offset) + header
                + table + data)


def as_os2_v2(path):
    """Widens a Windows BMP's 40-byte info header to OS/2 2.x's 64 bytes (24 zero bytes
    after the shared 40), moving the pixel offset and file size on by as much."""
    data = bytearray(open(path, "rb").read())
    assert data[14:18] == struct.pack("<I", 40)
    size, offset = struct.unpack_from("<I", data, 2)[0], struct.unpack_from("<I", data, 10)[0]
    out = data[:14] + struct.pack("<I", 64) + data[18:54] + bytes(24) + data[54:]
    struct.pack_into("<I", out, 2, size + 24)
    struct.pack_into("<I", out, 10, offset + 24)
    open(path, "wb").write(out)


def with_associated_alpha(path):
    """Rewrites an RGBA TIFF's ExtraSamples from 2 (unassociated) to 1 (associated alpha):
    Pillow cannot write premultiplied TIFFs, and reads them as RGBa, un-premultiplied."""
    data = bytearray(open(path, "rb").read())
    assert data[:4] == b"II*\0"
    ifd = struct.unpack_from("<I", data, 4)[0]
    for k in range(struct.unpack_from("<H", data, ifd)[0]):
        entry = ifd + 2 + 12 * k
        if struct.unpack_from("<H", data, entry)[0] == 338:
            struct.pack_into("<H", data, entry + 8, 1)
    open(path, "wb").write(data)


def raw_png(path, width, height, bits, color_type, rows, trns=None):
    """A PNG written by hand, for what Pillow cannot write (16-bit LA, 4-bit gray, 16-bit
    RGB with a tRNS colour). `rows` are the packed scanlines, without filter bytes."""
    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))
    ihdr = struct.pack(">IIBBBBB", width, height, bits, color_type, 0, 0, 0)
    idat = zlib.compress(b"".join(b"\0" + bytes(r) for r in rows))
    extra = chunk(b"tRNS", trns) if trns is not None else b""
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + extra + chunk(b"IDAT", idat)
                + chunk(b"IEND", b""))


def raw_tiff(path, width, height, samples, bits, photometric, data, extra_samples=None,
             more_tags=()):
    """An uncompressed little-endian TIFF in one strip, written by hand (Pillow cannot write
    16-bit premultiplied RGBA, 16-bit WhiteIsZero or 4-bit palette TIFFs)."""
    tags = [(256, 4, [width]), (257, 4, [height]), (258, 3, [bits] * samples),
            (259, 3, [1]), (262, 3, [photometric]), (273, 4, [0]), (277, 3, [samples]),
            (278, 4, [height]), (279, 4, [len(data)])] + list(more_tags)
    if extra_samples is not None:
        tags.append((338, 3, [extra_samples]))
    ifd_size = 2 + 12 * len(tags) + 4
    out_of_line = bytearray()
    # After the IFD and the values that do not fit in an entry (SHORTs: 2 bytes each).
    data_at = 8 + ifd_size + sum(2 * len(v) for _, _, v in tags if 2 * len(v) > 4)
    entries = b""
    for tag, kind, values in sorted(tags):
        fmt = "<H" if kind == 3 else "<I"
        if tag == 273:
            values = [data_at]
        packed = b"".join(struct.pack(fmt, v) for v in values)
        if len(packed) <= 4:
            entries += struct.pack("<HHI", tag, kind, len(values)) + packed.ljust(4, b"\0")
        else:
            entries += struct.pack("<HHII", tag, kind, len(values), 8 + ifd_size + len(out_of_line))
            out_of_line += packed
    assert 8 + ifd_size + len(out_of_line) == data_at
    with open(path, "wb") as f:
        f.write(b"II*\0" + struct.pack("<IH", 8, len(tags)) + entries + b"\0" * 4
                + bytes(out_of_line) + data)


def raw_bmp(path, width, height, pixels, masks):
    """A 16-bit BMP written by hand, bottom-up: 5-5-5 without masks (BI_RGB), or with the
    three colour masks after the 40-byte header (BI_BITFIELDS)."""
    stride = (width * 2 + 3) // 4 * 4
    rows = b"".join(r.tobytes().ljust(stride, b"\0") for r in pixels[::-1])
    extra = struct.pack("<3I", *masks) if masks else b""
    offset = 14 + 40 + len(extra)
    header = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 16, 3 if masks else 0,
                         len(rows), 2835, 2835, 0, 0)
    with open(path, "wb") as f:
        f.write(b"BM" + struct.pack("<IHHI", offset + len(rows), 0, 0, offset) + header
                + extra + rows)


def pillow_bytes(im):
    a = np.asarray(im)
    if a.dtype == bool:
        a = a.astype(np.uint8) * 255
    return a.astype(a.dtype.newbyteorder("<")).tobytes(), list(a.shape), str(a.dtype)


def palette_bytes(im):
    """getpalette() of a P result, as RGBA entries when it has transparency."""
    trns = im.info.get("transparency")
    if isinstance(trns, int) and trns >= len(im.getpalette()) // 3:
        trns = None  # I;16's key (300 here) is carried over as is, and names no entry
    if trns is None:  # RGB, or RGBA for quantize()'s palette of an RGBA image
        return bytes(im.getpalette(rawmode=im.palette.mode)), im.palette.mode
    if isinstance(trns, int):
        trns = bytes([255] * trns + [0])
    entries = np.array(im.getpalette(rawmode="RGBA"), np.uint8).reshape(-1, 4)
    entries[: len(trns), 3] = np.frombuffer(trns, np.uint8)[: len(entries)]
    return entries.tobytes(), "RGBA"


warnings.simplefilter("ignore")
manifest = {"width": W, "height": H, "files": []}
blob = bytearray()


def put(data):
    blob.extend(data)
    return [len(blob) - len(data), len(data)]


for name, im, save in fixtures():
    associated = save.pop("associated", False)
    os2 = save.pop("os2", False)
    if "raw_png" in save:
        bits, color_type, rows, trns = save["raw_png"]
        raw_png(name, W, H, bits, color_type, rows, trns)
    elif "raw_palette_bmp" in save:
        raw_palette_bmp(name, W, H, *save["raw_palette_bmp"])
    elif "raw_bmp" in save:
        pixels, masks = save["raw_bmp"]
        raw_bmp(name, W, H, pixels, masks)
    elif "raw_tiff" in save:
        samples, bits, photometric, data, extra, *more = save["raw_tiff"]
        raw_tiff(name, W, H, samples, bits, photometric, data, extra, *more)
    else:
        im.save(name, **save)
    if associated:
        with_associated_alpha(name)
    if os2:
        as_os2_v2(name)
    src = ImageOps.exif_transpose(Image.open(name))
    src.load()
    entry = {"file": name, "pillow_mode": src.mode, "outputs": []}
    for mirror in (False, True):
        base = ImageOps.mirror(src) if mirror else src
        for mode in MODES:
            out = base.convert(mode)
            data, shape, dtype = pillow_bytes(out)
            item = {"mode": mode, "mirror": mirror, "shape": shape, "dtype": dtype,
                    "bytes": put(data)}
            if mode == "P":
                pal, pal_mode = palette_bytes(out)
                item["palette"], item["palette_mode"] = put(pal), pal_mode
            entry["outputs"].append(item)
    manifest["files"].append(entry)

with open("pillow.bin", "wb") as f:
    f.write(blob)
with open("manifest.json", "w") as f:  # one output a line
    files = ",\n".join(
        f'  {{"file": "{e["file"]}", "pillow_mode": "{e["pillow_mode"]}", "outputs": [\n'
        + ",\n".join("   " + json.dumps(o) for o in e["outputs"])
        + "]}"
        for e in manifest["files"]
    )
    f.write(f'{{"width": {W}, "height": {H}, "files": [\n{files}\n]}}\n')

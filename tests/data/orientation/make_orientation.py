"""Makes the orientation fixtures in this folder with Pillow, and Pillow's reading of them.

Run from this folder with Pillow 13 and numpy:

    python make_orientation.py

Gradio opens every file with Pillow and applies `ImageOps.exif_transpose`, whose orientation
comes from `getexif()`: the EXIF Orientation tag when the EXIF block has one (whatever its
value), otherwise the first `tiff:Orientation="N"` / `<tiff:Orientation>N` in the XMP packet
(JPEG APP1 `http://ns.adobe.com/xap/1.0/`, PNG `XML:com.adobe.xmp` text chunk, WebP `XMP `
chunk). Each fixture is small (odd sizes, so that a turn shows in the dimensions) with pixels
that differ everywhere.

For each fixture it writes the file and `<file>.rgba`: every frame as Pillow reads it
(`ImageSequence`, `.convert("RGBA")`) turned as `exif_transpose` turns the first frame,
N x H x W x 4 bytes, row-major, no header. The script checks that this turn is what
`exif_transpose` gives for the first frame. A lossless fixture that is turned also has
`<file>.unturned.rgba`, its frames before the turn, to check a reader's turn against Pillow's.
The manifest gives each fixture's frame count,
turned size and the orientation Pillow applied. JPEG fixtures are lossy, so each has a twin
`<file>.plain.jpg` with the same scan and no metadata: a reader's pixels of the fixture must be
its pixels of the twin, turned.
"""

import hashlib
import io
import json
import struct
import sys
import zlib

import numpy as np
import PIL
from PIL import Image, ImageOps, ImageSequence, PngImagePlugin

W, H = 7, 5
ORIENTATION = 274


def xmp(value, element=False):
    desc = (
        f'<rdf:Description xmlns:tiff="http://ns.adobe.com/tiff/1.0/">'
        f"<tiff:Orientation>{value}</tiff:Orientation></rdf:Description>"
        if element
        else f'<rdf:Description xmlns:tiff="http://ns.adobe.com/tiff/1.0/" '
        f'tiff:Orientation="{value}"/>'
    )
    return (
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
        'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        f"{desc}</rdf:RDF></x:xmpmeta>"
    ).encode()


def exif(value):
    ex = Image.Exif()
    ex[ORIENTATION] = value
    return ex


def frames(n, seed, mode="RGB"):
    rng = np.random.default_rng(seed)
    bands = len(mode)
    out = []
    for _ in range(n):
        a = rng.integers(0, 256, (H, W, bands), dtype=np.uint8)
        if mode == "RGBA":
            a[..., 3] = a[..., 3] | 0x80
        out.append(Image.fromarray(a, mode))
    return out


def png_chunk(kind, data):
    return (
        struct.pack(">I", len(data))
        + kind
        + data
        + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def png_chunks(data):
    at = 8
    while at < len(data):
        (n,) = struct.unpack(">I", data[at : at + 4])
        yield data[at + 4 : at + 8], data[at : at + 12 + n]
        at += 12 + n


def png_move_after_idat(data, kind):
    """The PNG `data` with its `kind` chunks moved to just before IEND."""
    moved = [c for k, c in png_chunks(data) if k == kind]
    rest = [c for k, c in png_chunks(data) if k != kind]
    return data[:8] + b"".join(rest[:-1] + moved + rest[-1:])


def save(im, fmt, extra, **kw):
    buf = io.BytesIO()
    if extra:
        im[0].save(buf, fmt, save_all=True, append_images=im[1:], **kw)
    else:
        im[0].save(buf, fmt, **kw)
    return buf.getvalue()


def itxt(value, element=False):
    info = PngImagePlugin.PngInfo()
    info.add_itxt("XML:com.adobe.xmp", xmp(value, element).decode())
    return info


def text(value):
    info = PngImagePlugin.PngInfo()
    info.add_text("XML:com.adobe.xmp", xmp(value).decode())
    return info


def compressed(value, kind):
    """XMP in a zTXt chunk, or a compressed iTXt one."""
    info = PngImagePlugin.PngInfo()
    if kind == "zTXt":
        info.add_text("XML:com.adobe.xmp", xmp(value).decode(), zip=True)
    else:
        info.add_itxt("XML:com.adobe.xmp", xmp(value).decode(), zip=True)
    return info


def raw_profile(value):
    """EXIF as ImageMagick writes it into PNG text: a zTXt "Raw profile type exif" of a
    blank line, the name, the length, then the bytes in hexadecimal lines of 72 digits."""
    block = exif(value).tobytes()
    digits = block.hex()
    lines = [digits[i : i + 72] for i in range(0, len(digits), 72)]
    info = PngImagePlugin.PngInfo()
    body = "\nexif\n%8d\n" % len(block) + "\n".join(lines) + "\n"
    info.add_text("Raw profile type exif", body, zip=True)
    return info


def fixtures():
    rgb1 = frames(1, 1)
    rgba1 = frames(1, 2, "RGBA")
    rgb3 = frames(3, 3)
    rgba3 = frames(3, 4, "RGBA")
    out = {}
    # JPEG: XMP only, both forms; EXIF 1 wins over XMP 6; EXIF without the tag does not.
    jpg = dict(quality=95)
    out["xmp6.jpg"] = save(rgb1, "JPEG", False, xmp=xmp(6), **jpg)
    out["xmp8_element.jpg"] = save(rgb1, "JPEG", False, xmp=xmp(8, True), **jpg)
    out["exif1_xmp6.jpg"] = save(rgb1, "JPEG", False, exif=exif(1), xmp=xmp(6), **jpg)
    other = Image.Exif()
    other[0x0131] = "shutter"  # Software, no Orientation
    out["exif_other_xmp5.jpg"] = save(
        rgb1, "JPEG", False, exif=other, xmp=xmp(5), **jpg
    )
    # PNG: iTXt, tEXt, iTXt after IDAT, EXIF 1 over XMP 7.
    out["xmp6.png"] = save(rgba1, "PNG", False, pnginfo=itxt(6))
    out["xmp3_text.png"] = save(rgb1, "PNG", False, pnginfo=text(3))
    out["xmp7_element_late.png"] = png_move_after_idat(
        save(rgb1, "PNG", False, pnginfo=itxt(7, True)), b"iTXt"
    )
    out["exif1_xmp7.png"] = save(rgb1, "PNG", False, exif=exif(1), pnginfo=itxt(7))
    # PNG: compressed XMP (zTXt, iTXt); ImageMagick's raw EXIF text, which an eXIf chunk
    # overrides.
    out["xmp6_ztxt.png"] = save(rgb1, "PNG", False, pnginfo=compressed(6, "zTXt"))
    out["xmp8_itxt_zip.png"] = save(rgb1, "PNG", False, pnginfo=compressed(8, "iTXt"))
    out["raw_exif6.png"] = save(rgb1, "PNG", False, pnginfo=raw_profile(6))
    out["exif1_raw_exif6.png"] = save(
        rgb1, "PNG", False, exif=exif(1), pnginfo=raw_profile(6)
    )
    # TIFF: XMP (tag 700) turns a file whose directory has no Orientation tag only.
    out["xmp6.tif"] = save(rgb1, "TIFF", False, tiffinfo={700: xmp(6)})
    out["orientation1_xmp6.tif"] = save(
        rgb1, "TIFF", False, tiffinfo={ORIENTATION: 1, 700: xmp(6)}
    )
    # WebP still (lossless): XMP only; EXIF 1 over XMP 6.
    out["xmp5.webp"] = save(rgba1, "WEBP", False, xmp=xmp(5), lossless=True)
    out["exif1_xmp6.webp"] = save(
        rgb1, "WEBP", False, exif=exif(1), xmp=xmp(6), lossless=True
    )
    # Animations: EXIF, XMP, and EXIF 1 over XMP.
    out["exif6_anim.webp"] = save(rgb3, "WEBP", True, exif=exif(6), lossless=True)
    out["xmp8_anim.webp"] = save(rgba3, "WEBP", True, xmp=xmp(8), lossless=True)
    out["exif1_xmp6_anim.webp"] = save(
        rgb3, "WEBP", True, exif=exif(1), xmp=xmp(6), lossless=True
    )
    out["exif6_anim.png"] = save(rgb3, "PNG", True, exif=exif(6))
    out["exif3_anim.png"] = save(rgba3, "PNG", True, exif=exif(3))
    out["xmp8_anim.png"] = save(rgb3, "PNG", True, pnginfo=itxt(8))
    out["exif1_xmp6_anim.png"] = save(
        rgb3, "PNG", True, exif=exif(1), pnginfo=itxt(6)
    )
    # GIF has no EXIF, and Pillow reads no XMP from it: an animated GIF is never turned.
    out["anim.gif"] = save(rgb3, "GIF", True)
    return out


METHODS = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def plain_jpeg(data):
    """`data` without its APP1 segments: the same scan, no EXIF nor XMP."""
    out = bytearray(data[:2])
    at = 2
    while True:
        marker = data[at + 1]
        (n,) = struct.unpack(">H", data[at + 2 : at + 4])
        if marker != 0xE1:
            out += data[at : at + 2 + n]
        at += 2 + n
        if marker == 0xDA:
            return bytes(out + data[at:])


def main():
    manifest = {
        "generator": "make_orientation.py",
        "pillow_version": PIL.__version__,
        "numpy_version": np.__version__,
        "python_version": sys.version.split()[0],
        "layout": "<file>.rgba: frames x height x width x RGBA, row-major, no header",
        "fixtures": {},
    }
    for name, data in fixtures().items():
        with open(name, "wb") as f:
            f.write(data)
        im = Image.open(io.BytesIO(data))
        orientation = im.getexif().get(ORIENTATION, 1)
        method = METHODS.get(orientation)
        first = ImageOps.exif_transpose(im).convert("RGBA")
        im = Image.open(io.BytesIO(data))
        turned, unturned = [], []
        # Pillow's TIFF plugin turns a still as it loads it (`exif_transpose` in place).
        loads_turned = name.endswith(".tif")
        for frame in ImageSequence.Iterator(im):
            rgba = frame.convert("RGBA")
            unturned.append(np.asarray(rgba))
            turned.append(rgba.transpose(method) if method and not loads_turned else rgba)
        assert np.array_equal(np.asarray(first), np.asarray(turned[0])), name
        arr = np.stack([np.asarray(t) for t in turned])
        with open(name + ".rgba", "wb") as f:
            f.write(arr.tobytes())
        entry = {
            "file": name,
            "frames": len(turned),
            "width": turned[0].width,
            "height": turned[0].height,
            "orientation": orientation,
            "rgba": name + ".rgba",
            "sha256": hashlib.sha256(data).hexdigest(),
        }
        if method is not None and not name.endswith(".jpg") and not loads_turned:
            with open(name + ".unturned.rgba", "wb") as f:
                f.write(np.stack(unturned).tobytes())
            entry["unturned"] = name + ".unturned.rgba"
        if name.endswith(".jpg"):
            plain = name[: -len(".jpg")] + ".plain.jpg"
            with open(plain, "wb") as f:
                f.write(plain_jpeg(data))
            entry["plain"] = plain
        manifest["fixtures"][name] = entry
        print(name, entry["frames"], entry["width"], entry["height"], orientation)
    with open("manifest.json", "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()

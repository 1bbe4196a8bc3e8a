"""Makes the animated fixtures in this folder with Pillow, and Pillow's reading of them.

Run from this folder with Pillow 13 and numpy:

    python make_anim.py

For each fixture it writes the file and `<file>.rgba`: every frame as Pillow composites it
(`ImageSequence`, `.convert("RGBA")`), N x H x W x 4 bytes, row-major, no header. The
manifest gives each fixture's size, frame count, delays in ms (`info["duration"]`),
`info.get("loop")` (null when Pillow reports none, as for a GIF that plays once) and each
frame's mode as Pillow opens it.

`composite.webp` is assembled here from lossless frames Pillow encodes, so that it holds what
Pillow's own writer rarely chooses: translucent sub-frames blended over translucent pixels,
frames disposed to the background next to and under later ones, a key frame after a
full-canvas disposal, and a background colour (opaque red) that readers must ignore.

The frames are 7x5 and differ everywhere: frame 1 is partly transparent (alpha 0 to 240),
frame 2 changes a 3x2 patch of frame 1 only (so the writers store a sub-frame and the reader
must composite it over frame 1's translucent pixels), frame 3 is opaque again.
"""

import hashlib
import io
import json
import struct
import sys

import numpy as np
import PIL
from PIL import Image, ImageSequence

W, H = 7, 5


def frames():
    y, x = np.mgrid[0:H, 0:W]
    out = []
    for i in range(4):
        rgba = np.zeros((H, W, 4), np.uint8)
        rgba[..., 0] = (x * 37 + y * 11 + i * 90) % 256
        rgba[..., 1] = (x * 13 + y * 53 + i * 40) % 256
        rgba[..., 2] = (255 - x * 20 - y * 30 - i * 25) % 256
        rgba[..., 3] = 255
        out.append(rgba)
    out[1][..., 3] = np.where(x < 2, 255, (x * 40 + y * 30 - 80).clip(0, 240))
    out[2] = out[1].copy()
    out[2][1:3, 4:7, :3] = [[[250, 20, 5]]]
    out[2][1:3, 4:7, 3] = 255
    return [Image.fromarray(a, "RGBA") for a in out]


def opaque_frames():
    """The frames without alpha, few colours, for the GIFs (whose palette is then exact)."""
    return [f.convert("RGB") for f in frames()]


DELAYS = [40, 130, 70, 250]


def vp8l(image):
    """The VP8L chunk (header included) of `image` saved as a still lossless WebP."""
    buf = io.BytesIO()
    image.save(buf, "WEBP", lossless=True, exact=True)
    data = buf.getvalue()
    at = 12
    while at < len(data):
        size = struct.unpack("<I", data[at + 4 : at + 8])[0]
        if data[at : at + 4] == b"VP8L":
            return data[at : at + 8 + size] + b"\0" * (size & 1)
        at += 8 + size + (size & 1)
    raise ValueError("no VP8L chunk")


def chunk(kind, payload):
    return kind + struct.pack("<I", len(payload)) + payload + b"\0" * (len(payload) & 1)


def u24(v):
    return struct.pack("<I", v)[:3]


def composite_webp():
    """A 9x7 animation of hand-placed frames: (x, y, w, h, blend, dispose, duration)."""
    cw, ch = 9, 7
    plan = [
        (0, 0, 9, 7, True, False, 30),
        (2, 2, 4, 3, True, True, 60),
        (4, 2, 5, 4, True, False, 90),
        (0, 0, 3, 3, False, True, 20),
        (0, 0, 9, 7, True, True, 50),
        (6, 4, 2, 2, True, False, 80),
    ]
    frames = []
    for i, (x, y, w, h, blend, dispose, ms) in enumerate(plan):
        yy, xx = np.mgrid[0:h, 0:w]
        a = np.zeros((h, w, 4), np.uint8)
        a[..., 0] = (xx * 53 + yy * 17 + i * 71) % 256
        a[..., 1] = (xx * 19 + yy * 67 + i * 29) % 256
        a[..., 2] = (200 - xx * 23 + yy * 31 + i * 13) % 256
        a[..., 3] = (xx * 61 + yy * 43 + i * 37) % 256
        if i == 5:
            a[..., 3] = 255
        if i == 3:
            a[..., 3] = np.where((xx + yy) % 3 == 0, 0, 255)
        flags = (0 if blend else 2) | (1 if dispose else 0)
        header = u24(x // 2) + u24(y // 2) + u24(w - 1) + u24(h - 1) + u24(ms) + bytes([flags])
        frames.append(chunk(b"ANMF", header + vp8l(Image.fromarray(a, "RGBA"))))
    vp8x = bytes([0x10 | 0x02, 0, 0, 0]) + u24(cw - 1) + u24(ch - 1)
    anim = bytes([0, 0, 255, 255]) + struct.pack("<H", 0)  # BGRA: opaque red, loop forever
    body = b"WEBP" + chunk(b"VP8X", vp8x) + chunk(b"ANIM", anim) + b"".join(frames)
    with open("composite.webp", "wb") as f:
        f.write(b"RIFF" + struct.pack("<I", len(body)) + body)


def lzw(indices, bits):
    """GIF image data for `indices`: LZW codes that never grow past bits + 1 (a clear code
    every 2**bits - 2 pixels), in sub-blocks, with the minimum code size byte first."""
    clear = 1 << bits
    codes, run = [clear], 0
    for i in indices:
        if run == clear - 2:
            codes.append(clear)
            run = 0
        codes.append(i)
        run += 1
    codes.append(clear + 1)
    acc = nbits = 0
    out = bytearray()
    for c in codes:
        acc |= c << nbits
        nbits += bits + 1
        while nbits >= 8:
            out.append(acc & 255)
            acc >>= 8
            nbits -= 8
    if nbits:
        out.append(acc & 255)
    blocks = b"".join(bytes([len(out[i : i + 255])]) + out[i : i + 255] for i in range(0, len(out), 255))
    return bytes([bits]) + blocks + b"\0"


def table(colours):
    """A colour table and its size bits (2**(bits+1) entries)."""
    bits = max(1, (len(colours) - 1).bit_length()) - 1
    padded = colours + [(0, 0, 0)] * ((2 << bits) - len(colours))
    return bytes(v for c in padded for v in c), bits


def hand_gif(screen, global_colours, frames, background=0, trailer=b";"):
    """A GIF from hand-placed frames: dicts of x, y, w, h, indices, and optionally
    transparent, disposal, colours (a local table), interlaced, delay (10 ms units)."""
    gct, gbits = table(global_colours)
    out = b"GIF89a" + struct.pack("<HHBBB", *screen, 0x80 | gbits, background, 0) + gct
    out += b"!\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00"
    for f in frames:
        t = f.get("transparent")
        flags = f.get("disposal", 0) << 2 | (t is not None)
        out += b"!\xf9\x04" + struct.pack("<BHB", flags, f.get("delay", 5), t or 0) + b"\0"
        rows = [f["indices"][r * f["w"] : (r + 1) * f["w"]] for r in range(f["h"])]
        if f.get("interlaced"):
            h = f["h"]
            order = [*range(0, h, 8), *range(4, h, 8), *range(2, h, 4), *range(1, h, 2)]
            rows = [rows[r] for r in order]
        descriptor = 0x40 if f.get("interlaced") else 0
        local = b""
        if "colours" in f:
            local, lbits = table(f["colours"])
            descriptor |= 0x80 | lbits
        out += b"," + struct.pack("<HHHHB", f["x"], f["y"], f["w"], f["h"], descriptor) + local
        out += lzw([i for row in rows for i in row], 3)
    return out + trailer


def gif_fixtures():
    """GIFs that only Pillow's own compositing reads as Pillow does."""
    # Pillow's writer, RGBA frames with disposal 2: each frame gets its own palette and its
    # own transparent index, and a disposed area takes that frame's transparent colour.
    y, x = np.mgrid[0:H, 0:W]
    rgba = []
    for i in range(4):
        a = np.zeros((H, W, 4), np.uint8)
        a[..., 0] = (x * 60 + i * 70) % 256
        a[..., 1] = (y * 50 + i * 40) % 256
        a[..., 2] = 90 + i * 30
        a[..., 3] = 255
        a[(x + y + i) % 4 == 0, 3] = 0
        a[:, : i + 1, 3] = 0
        rgba.append(Image.fromarray(a, "RGBA"))
    rgba[0].save(
        "palettes.gif", save_all=True, append_images=rgba[1:], duration=[50, 60, 70, 80],
        loop=0, disposal=2,
    )
    grey = [(200, 100, 50), (10, 20, 30), (90, 250, 40), (0, 0, 255), (255, 255, 255),
            (120, 0, 120), (30, 200, 200), (250, 250, 0)]
    red = [(255, 0, 0), (0, 128, 0), (64, 64, 192), (240, 240, 240)]
    def ramp(w, h, k):
        return [(c + r * 2 + k) % 8 for r in range(h) for c in range(w)]
    # Sub-frames restored to the previous canvas (disposal 3), a transparent index that
    # differs between frames, an interlaced frame, a local palette, a disposal method kept
    # from an earlier frame (0 means "as before" to Pillow), and a first frame placed at
    # (2, 1) on the 7x5 screen, which grows the canvas to 9x6 (filled with index 3).
    frames = [
        dict(x=2, y=1, w=7, h=5, indices=ramp(7, 5, 0), transparent=3, delay=4),
        dict(x=1, y=1, w=3, h=3, indices=ramp(3, 3, 1), transparent=5, disposal=3, delay=6),
        dict(x=3, y=0, w=4, h=5, indices=ramp(4, 5, 2), disposal=2, interlaced=True, delay=8),
        dict(x=2, y=2, w=3, h=2, indices=[0, 1, 2, 3, 1, 0], colours=red, transparent=1),
        dict(x=5, y=3, w=4, h=3, indices=ramp(4, 3, 5), transparent=0, disposal=3, delay=3),
        dict(x=0, y=0, w=2, h=2, indices=[1, 2, 3, 4], delay=2),
    ]
    with open("restore.gif", "wb") as f:
        f.write(hand_gif((7, 5), grey, frames, background=2))
    # No trailer, and junk after the last frame: Pillow reads every frame.
    opaque = [dict(x=0, y=0, w=5, h=3, indices=ramp(5, 3, k), delay=k + 1) for k in range(3)]
    with open("untrailed.gif", "wb") as f:
        f.write(hand_gif((5, 3), grey, opaque, trailer=b"\x00\x77"))
    # A first frame with a transparent index, then opaque frames over the whole screen:
    # Pillow's later frames are RGBA (as the first had transparency), though every pixel is
    # opaque, and convert from RGBA (P by quantising, not the WEB palette).
    later = [dict(x=0, y=0, w=5, h=3, indices=ramp(5, 3, 0), transparent=3, delay=5)] + [
        dict(x=0, y=0, w=5, h=3, indices=ramp(5, 3, k), disposal=1, delay=5) for k in (1, 2)
    ]
    with open("opaque_later.gif", "wb") as f:
        f.write(hand_gif((5, 3), grey, later))


def apng_fixtures():
    """APNGs whose frames Pillow composites its own way."""
    y, x = np.mgrid[0:H, 0:W]
    out = []
    for i in range(5):
        a = np.zeros((H, W, 4), np.uint8)
        a[..., 0] = (x * 41 + i * 60) % 256
        a[..., 1] = (y * 47 + i * 25) % 256
        a[..., 2] = (x * y * 13 + i * 90) % 256
        a[..., 3] = (x * 30 + y * 20 + i * 45) % 256
        a[y < i % 3, 3] = 255
        out.append(Image.fromarray(a, "RGBA"))
    # Translucent frames blended OVER translucent ones, with every dispose op between them.
    out[0].save(
        "over.png", save_all=True, append_images=out[1:], duration=[30, 40, 50, 60, 70],
        loop=0, blend=[0, 1, 1, 0, 1], disposal=[0, 1, 2, 1, 2],
    )
    # A default image that is not part of the animation: Pillow shows it as frame 0.
    out[0].save(
        "default.png", save_all=True, append_images=out[1:4], duration=[20, 30, 40, 50],
        loop=1, default_image=True, blend=[0, 1, 1, 1], disposal=[0, 2, 0, 0],
    )


def write_all():
    composite_webp()
    rgba = frames()
    rgba[0].save(
        "anim.webp",
        save_all=True,
        append_images=rgba[1:],
        duration=DELAYS,
        loop=3,
        lossless=True,
    )
    rgba[0].save(
        "anim.png",
        format="PNG",
        save_all=True,
        append_images=rgba[1:],
        duration=DELAYS,
        loop=2,
    )
    rgb = opaque_frames()
    rgb[0].save("once.gif", save_all=True, append_images=rgb[1:], duration=DELAYS)
    rgb[0].save(
        "loop3.gif", save_all=True, append_images=rgb[1:], duration=DELAYS, loop=3
    )
    # Palette frames with a transparent index, disposed to the background: Pillow fills the
    # canvas and the disposed areas with that index's colour at alpha 0.
    indices = [(np.indices((H, W)).sum(0) * (i + 2)) % 5 for i in range(3)]
    pal = [Image.fromarray(a.astype(np.uint8), "P") for a in indices]
    for p in pal:
        p.putpalette([200, 100, 50, 10, 20, 30, 90, 250, 40, 0, 0, 255, 255, 255, 255])
    pal[0].save(
        "transparent.gif", save_all=True, append_images=pal[1:], duration=DELAYS[:3],
        transparency=0, disposal=2,
    )
    gif_fixtures()
    apng_fixtures()
    # A still WebP and PNG: these stay on the still path.
    rgba[1].save("still.webp", lossless=True)
    rgba[1].save("still.png")


def describe(name):
    with Image.open(name) as im:
        loop = im.info.get("loop")
        composited, delays, modes = [], [], []
        for frame in ImageSequence.Iterator(im):
            # convert() loads the frame, which is when WebP sets its duration.
            composited.append(np.asarray(frame.convert("RGBA")))
            delays.append(frame.info.get("duration"))
            modes.append(frame.mode)
        data = np.stack(composited).tobytes()
        with open(name + ".rgba", "wb") as f:
            f.write(data)
        return {
            "file": name,
            "format": im.format,
            "width": im.width,
            "height": im.height,
            "frames": len(composited),
            "durations_ms": delays,
            "modes": modes,
            "loop": loop,
            "rgba": name + ".rgba",
            "sha256": hashlib.sha256(open(name, "rb").read()).hexdigest(),
        }


def main():
    write_all()
    names = [
        "anim.webp", "composite.webp", "anim.png", "once.gif", "loop3.gif", "transparent.gif",
        "still.webp", "still.png", "palettes.gif", "restore.gif", "untrailed.gif", "over.png",
        "default.png", "opaque_later.gif",
    ]
    manifest = {
        "generator": "make_anim.py",
        "pillow_version": PIL.__version__,
        "numpy_version": np.__version__,
        "python_version": sys.version.split()[0],
        "layout": "<file>.rgba: frames x height x width x RGBA, row-major, no header",
        "fixtures": {name: describe(name) for name in names},
    }
    with open("manifest.json", "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()

"""Pillow's view of four-component JPEGs (tests/jpeg_cmyk.rs).

`cmyk.jpg` is written here by Pillow (CMYK, every component at full resolution, Adobe's
inverted inks). `ycck.jpg` and `cmyk_subsampled.jpg` are jpeg-encoder's, written by
`cargo test --test jpeg_cmyk -- --ignored` (Pillow cannot write YCCK). For each of cmyk.jpg and
ycck.jpg this writes `NAME.cmyk`, `np.asarray(Image.open(NAME))` (Pillow opens both as CMYK),
and `NAME.rgb`, `np.asarray(im.convert("RGB"))`, as raw bytes.

Run from this directory with Pillow 13 and numpy: `python make_jpeg_cmyk.py`.
"""

import numpy as np
from PIL import Image

W, H = 29, 19
rng = np.random.default_rng(20261128)
y, x = np.mgrid[0:H, 0:W]
ramps = np.dstack([x * 8, y * 12, (x + y) * 5, x * y]) % 256
inks = ((ramps + rng.integers(0, 16, (H, W, 4))) % 256).astype(np.uint8)
Image.fromarray(inks, "CMYK").save("cmyk.jpg", quality=90)

for name in ["cmyk.jpg", "ycck.jpg"]:
    with Image.open(name) as im:
        assert im.mode == "CMYK", (name, im.mode)
        np.asarray(im).tofile(name + ".cmyk")
        np.asarray(im.convert("RGB")).tofile(name + ".rgb")

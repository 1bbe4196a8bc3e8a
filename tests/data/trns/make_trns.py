"""Makes the transparency-colour fixtures in this folder with Pillow, and Pillow's outputs.

Run from this folder with Pillow 13 and numpy:

    python make_trns.py

A PNG's tRNS chunk gives an RGB or gray image a transparency colour, and a palette image one
transparent entry (or an alpha per entry). Pillow keeps it as `info["transparency"]` through
`convert` to L and RGB (converted as a pixel is) and writes it when it saves: PNG as tRNS,
GIF as the transparent index, WebP by turning an L image into RGBA. For each input and each of
L and RGB, the manifest records what Pillow's PNG says (`png_trns`: the samples, or null) and
which pixels are transparent in Pillow's GIF and lossless WebP (`gif`, `webp`: row-major 0/1
masks), or "error" where Pillow cannot save the image.
"""

import io
import json

import numpy as np
import PIL
from PIL import Image

W, H = 7, 5


def inputs():
    rng = np.random.default_rng(5)
    rgb = Image.fromarray(rng.integers(0, 256, (H, W, 3), dtype=np.uint8), "RGB")
    rgb.putpixel((1, 1), (10, 20, 30))
    rgb.putpixel((4, 2), (10, 20, 30))
    gray = Image.fromarray(rng.integers(0, 256, (H, W), dtype=np.uint8), "L")
    gray.putpixel((2, 2), 77)
    palette = rgb.convert("P")
    # Entry 3 used by two pixels, so that its colour shows where it is transparent.
    index = np.asarray(palette).copy()
    index[0, 0] = index[3, 5] = 3
    palette = Image.fromarray(index, "P")
    palette.putpalette(rgb.convert("P").getpalette())
    wide = Image.fromarray(rng.integers(0, 300, (H, W)).astype(np.uint16))
    wide.putpixel((3, 1), 77)
    out = {}

    def save(name, image, **options):
        buf = io.BytesIO()
        image.save(buf, "PNG", **options)
        out[name] = buf.getvalue()

    save("rgb_key.png", rgb, transparency=(10, 20, 30))
    save("gray_key.png", gray, transparency=77)
    save("palette_one.png", palette, transparency=3)
    save("palette_alphas.png", palette, transparency=bytes([255] * 3 + [0, 255, 128] + [255] * 250))
    save("gray16_key.png", wide, transparency=77)
    return out


def mask(data):
    image = Image.open(io.BytesIO(data)).convert("RGBA")
    return [int(a < 255) for a in np.asarray(image)[..., 3].ravel()]


def main():
    manifest = {"pillow": PIL.__version__, "cases": []}
    for name, data in inputs().items():
        with open(name, "wb") as f:
            f.write(data)
        for mode in ("L", "RGB"):
            case = {"input": name, "mode": mode}
            converted = Image.open(io.BytesIO(data)).convert(mode)
            for fmt, options in (("png", {}), ("gif", {}), ("webp", {"lossless": True})):
                buf = io.BytesIO()
                try:
                    converted.save(buf, fmt.upper(), **options)
                except (ValueError, TypeError, OSError):
                    case[fmt] = "error"
                    continue
                if fmt == "png":
                    trns = Image.open(io.BytesIO(buf.getvalue())).info.get("transparency")
                    case["png_trns"] = (
                        None if trns is None else list(trns) if isinstance(trns, tuple) else [trns]
                    )
                    case[fmt] = mask(buf.getvalue())
                else:
                    case[fmt] = mask(buf.getvalue())
            manifest["cases"].append(case)
    with open("manifest.json", "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()

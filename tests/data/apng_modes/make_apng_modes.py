"""Makes animated PNGs in the modes Pillow keeps for their frames, and Pillow's conversions.

Run from this folder with Pillow 13 and numpy:

    python make_apng_modes.py

Pillow composites an APNG's frames in the file's own mode: `1`, `L` and `RGB` frames keep the
file's tRNS value, `P` frames the canvas's indices and the file's palette (with its tRNS
alphas). Each file here has three 9x5 frames, the later ones pasted over the earlier (blend
OVER) or replacing them (blend SOURCE). For each file and mode, `pillow.bin` holds
`np.asarray(frame.convert(mode))` of every frame in turn (bool as 0/255 bytes, I and F
little-endian) and, for P, each frame's palette as `getpalette()` gives it (RGBA entries when
the frame has a transparency); `manifest.json` gives offsets and shapes.
"""

import json
import warnings

import numpy as np
from PIL import Image, ImageSequence

W, H = 9, 5
MODES = ["1", "L", "P", "RGB", "RGBA", "CMYK", "YCbCr", "I", "F"]
rng = np.random.default_rng(20261128)
PALETTE = rng.integers(0, 256, 120, dtype=np.uint8).tolist()
PALETTE[15:18] = PALETTE[9:12]  # entries 3 and 5 share a colour: indices, not colours, count


def frames(mode):
    out = []
    for _ in range(3):
        if mode == "L":
            a = rng.integers(0, 256, (H, W), dtype=np.uint8)
            a[0, :3] = [77, 0, 255]
            out.append(Image.fromarray(a, "L"))
        elif mode == "RGB":
            a = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
            a[0, 0] = [10, 20, 30]
            out.append(Image.fromarray(a, "RGB"))
        elif mode == "P":
            a = rng.integers(0, 40, (H, W), dtype=np.uint8)
            a[0, :2] = [3, 5]
            im = Image.fromarray(a, "P")
            im.putpalette(PALETTE)
            out.append(im)
        else:
            out.append(Image.fromarray(rng.integers(0, 2, (H, W)).astype(bool)))
    return out


def fixtures():
    alphas = bytes([255, 255, 255, 0, 255, 128] + [255] * 34)
    yield "l_key_over.png", frames("L"), {"transparency": 77, "blend": 1}
    yield "rgb_key_over.png", frames("RGB"), {"transparency": (10, 20, 30), "blend": 1}
    yield "p_source.png", frames("P"), {"blend": 0}
    yield "p_one_over.png", frames("P"), {"transparency": 3, "blend": 1}
    yield "p_alphas_over.png", frames("P"), {"transparency": alphas, "blend": 1}
    yield "bilevel.png", frames("1"), {"blend": 0}


def array_bytes(im):
    a = np.asarray(im)
    if a.dtype == bool:
        a = a.astype(np.uint8) * 255
    return a.astype(a.dtype.newbyteorder("<")).tobytes(), list(a.shape), str(a.dtype)


def palette_bytes(im):
    trns = im.info.get("transparency")
    if trns is None:
        return bytes(im.getpalette(rawmode=im.palette.mode)), im.palette.mode
    if isinstance(trns, int):
        trns = bytes([255] * trns + [0])
    entries = np.array(im.getpalette(rawmode="RGBA"), np.uint8).reshape(-1, 4)
    entries[: len(trns), 3] = np.frombuffer(trns, np.uint8)[: len(entries)]
    return entries.tobytes(), "RGBA"


def main():
    warnings.simplefilter("ignore")
    blob = bytearray()

    def put(data):
        blob.extend(data)
        return [len(blob) - len(data), len(data)]

    manifest = {"files": []}
    for name, images, options in fixtures():
        images[0].save(name, save_all=True, append_images=images[1:], duration=50, **options)
        entry = {"file": name, "pillow_mode": Image.open(name).mode, "outputs": []}
        for mode in MODES:
            for k, frame in enumerate(ImageSequence.Iterator(Image.open(name))):
                out = frame.convert(mode)
                data, shape, dtype = array_bytes(out)
                item = {"mode": mode, "frame": k, "shape": shape, "dtype": dtype,
                        "bytes": put(data)}
                if mode == "P":
                    pal, pal_mode = palette_bytes(out)
                    item["palette"], item["palette_mode"] = put(pal), pal_mode
                entry["outputs"].append(item)
        manifest["files"].append(entry)
    with open("pillow.bin", "wb") as f:
        f.write(blob)
    with open("manifest.json", "w") as f:
        json.dump(manifest, f, indent=0)
        f.write("\n")


if __name__ == "__main__":
    main()

"""Makes the ICC profile fixtures in this folder with Pillow, and checks Pillow's reading.

Run from this folder with Pillow 13:

    python make_icc.py

Pillow keeps a file's ICC profile as `info["icc_profile"]` (JPEG APP2 `ICC_PROFILE` segments
joined by sequence number, the PNG `iCCP` chunk inflated, the WebP `ICCP` chunk, the TIFF tag
34675) and `convert` keeps it. The profiles here:

- `srgb.icc`: Pillow's (LittleCMS's) sRGB profile, dated 2026-01-01;
- `gray.icc`, `cmyk.icc`: a 128-byte ICC header and an empty tag table, for the gray and CMYK
  data colour spaces. Nothing here applies a profile: what matters is the header's colour
  space, which decides where a profile fits;
- `large.icc`: `srgb.icc` padded to 70,000 bytes, more than one JPEG segment holds.

`manifest.json` names, for each fixture, the profile file Pillow reads from it (null for
none), the mode Pillow opens it in and its frame count; the script checks each reading.
"""

import io
import json
import struct

import numpy as np
import PIL
from PIL import Image, ImageCms

W, H = 7, 5


def header_only(space, device_class):
    """A 128-byte ICC v4 header with no tags: size, CMM, version, class, colour space, PCS,
    'acsp', the D50 illuminant."""
    size = 128 + 4
    header = bytearray(128)
    struct.pack_into(">I", header, 0, size)
    header[4:8] = b"none"
    header[8:12] = bytes([4, 0x30, 0, 0])
    header[12:16] = device_class
    header[16:20] = space
    header[20:24] = b"XYZ "
    header[36:40] = b"acsp"
    struct.pack_into(">iii", header, 68, 0x0000F6D6, 0x00010000, 0x0000D32D)
    return bytes(header) + struct.pack(">I", 0)


def pixels(mode, seed):
    rng = np.random.default_rng(seed)
    bands = len(Image.new(mode, (1, 1)).getbands())
    data = rng.integers(0, 256, size=(H, W, bands), dtype=np.uint8)
    if bands == 1:
        data = data[:, :, 0]
    return Image.fromarray(data, mode)


def jpeg_segments(data):
    """The offsets and lengths of a JPEG's APP2 ICC_PROFILE segments (marker included)."""
    out, at = [], 2
    while at + 4 <= len(data) and data[at] == 0xFF:
        marker = data[at + 1]
        if marker == 0xDA:
            break
        length = struct.unpack(">H", data[at + 2 : at + 4])[0]
        if marker == 0xE2 and data[at + 4 : at + 16] == b"ICC_PROFILE\0":
            out.append((at, 2 + length))
        at += 2 + length
    return out


def main():
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    # LittleCMS stamps the creation time into the header: a fixed one keeps reruns identical.
    srgb = srgb[:24] + struct.pack(">6H", 2026, 1, 1, 0, 0, 0) + srgb[36:]
    gray = header_only(b"GRAY", b"mntr")
    cmyk = header_only(b"CMYK", b"prtr")
    large = srgb + bytes(70_000 - len(srgb))
    profiles = {"srgb.icc": srgb, "gray.icc": gray, "cmyk.icc": cmyk, "large.icc": large}
    for name, data in profiles.items():
        with open(name, "wb") as f:
            f.write(data)

    rgb = pixels("RGB", 1)
    fixtures = {}

    def save(name, image, profile, **options):
        image.save(name, icc_profile=profiles[profile], **options)
        fixtures[name] = profile

    save("rgb.png", rgb, "srgb.icc")
    save("rgb.jpg", rgb, "srgb.icc", quality=95)
    save("rgb.webp", rgb, "srgb.icc", lossless=True)
    save("rgb.tif", rgb, "srgb.icc")
    save("rgb_big.tif", rgb, "srgb.icc", big_tiff=True)
    save("rgba.png", pixels("RGBA", 2), "srgb.icc")
    save("gray.png", pixels("L", 3), "gray.icc")
    save("cmyk.jpg", pixels("CMYK", 4), "cmyk.icc", quality=95)
    # A profile of another colour space than the pixels': Pillow keeps it as it is.
    save("rgb_cmyk.png", rgb, "cmyk.icc")
    save("large.jpg", rgb, "large.icc", quality=95)

    # The two segments of large.jpg swapped: Pillow joins them by sequence number.
    data = open("large.jpg", "rb").read()
    (a, a_len), (b, b_len) = jpeg_segments(data)
    assert a + a_len == b
    swapped = data[:a] + data[b : b + b_len] + data[a : a + a_len] + data[b + b_len :]
    open("large_swapped.jpg", "wb").write(swapped)
    fixtures["large_swapped.jpg"] = "large.icc"
    # Both segments saying there are three: Pillow reads no profile.
    wrong = bytearray(data)
    for at, _ in jpeg_segments(data):
        wrong[at + 4 + 12 + 1] = 3
    open("large_wrong_count.jpg", "wb").write(bytes(wrong))
    fixtures["large_wrong_count.jpg"] = None

    frames = [pixels("RGB", 10 + k) for k in range(3)]
    for name in ("anim.webp", "anim.png"):
        frames[0].save(
            name,
            save_all=True,
            append_images=frames[1:],
            duration=100,
            lossless=True,
            icc_profile=srgb,
        )
        fixtures[name] = "srgb.icc"

    manifest = {"pillow": PIL.__version__, "fixtures": {}}
    for name, profile in fixtures.items():
        image = Image.open(name)
        got = image.info.get("icc_profile")
        want = profiles[profile] if profile else None
        assert got == want, (name, len(got or b""), len(want or b""))
        manifest["fixtures"][name] = {
            "profile": profile,
            "mode": image.mode,
            "frames": getattr(image, "n_frames", 1),
        }
    with open("manifest.json", "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()

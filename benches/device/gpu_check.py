"""Correctness on the lent GPU: every mode and filter, GPU against CPU, on odd sizes and 1080p.

    python3 benches/device/gpu_check.py [--shutter BIN] [--work DIR] [--sizes 1x1,3x7,...]

CI checks both backends against Pillow's golden files, but on lavapipe, not on a hardware GPU,
whose compiler may contract or reorder float arithmetic differently. This writes a directory
of RGBA PNGs with random pixels (partly transparent; the sizes the engineering standards ask
for: 1x1, 3x7, 1366x768, 1920x1080, 4K), runs `shutter run DIR --format npy` with
`--device gpu` and with `--device cpu` for every mode, with no ops and with mirror + sepia, and
for the other filters in RGB, and compares the arrays: equal, or within 1 for LAB (a and b as
the signed bytes they are), as the golden tests allow. Prints one line a case and a verdict;
exits 1 when a case differs beyond that. Needs numpy only (the PNGs are written by hand), so
it runs on the device machine's own python.
"""

import argparse
import os
import shutil
import struct
import subprocess
import sys
import zlib

import numpy as np

MODES = ["1", "L", "P", "RGB", "RGBA", "CMYK", "YCbCr", "LAB", "HSV", "I", "F"]


def write_png(path, rgba):
    """An 8-bit RGBA PNG of `rgba` (H, W, 4), every row filter 0."""
    h, w, _ = rgba.shape
    raw = b"".join(b"\x00" + rgba[y].tobytes() for y in range(h))

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    head = struct.pack(">IIBBBBB", w, h, 8, 6, 0, 0, 0)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", head))
        f.write(chunk(b"IDAT", zlib.compress(raw, 1)) + chunk(b"IEND", b""))


def inputs(work, sizes):
    """The PNGs: random pixels, a quarter of the alpha values below 255 (a tenth 0)."""
    src = os.path.join(work, "in")
    os.makedirs(src)
    rng = np.random.default_rng(7)
    for w, h in sizes:
        rgba = rng.integers(0, 256, (h, w, 4), dtype=np.uint8)
        alpha = rgba[..., 3]
        alpha[rng.random((h, w)) < 0.75] = 255
        alpha[rng.random((h, w)) < 0.1] = 0
        # Never all one value (a 1x1 frame is one pixel, but not a zero one).
        rgba[0, 0] = [200, 100, 50, 255]
        write_png(os.path.join(src, f"r{w}x{h}.png"), rgba)
    return src


def run(shutter, src, out, device, flags):
    cmd = [shutter, "run", src, "--format", "npy", "--device", device, "-o", out + "/", *flags]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: exit {done.returncode}: {done.stderr.strip()}")
    return {name: np.load(os.path.join(out, name)) for name in sorted(os.listdir(out))}


def compare(mode, gpu, cpu):
    """(verdict, detail) for one case: the arrays of every input."""
    worst, off = 0, 0
    for name in cpu:
        a, b = gpu.get(name), cpu[name]
        if a is None or a.shape != b.shape or a.dtype != b.dtype:
            return "DIFFERENT", f"{name}: {None if a is None else (a.shape, a.dtype)} vs {(b.shape, b.dtype)}"
        if np.array_equal(a, b):
            continue
        if mode == "LAB":
            x, y = a.astype(np.int16), b.astype(np.int16)
            x[..., 1:] = a[..., 1:].view(np.int8)
            y[..., 1:] = b[..., 1:].view(np.int8)
            d = np.abs(x - y)
        else:
            d = np.abs(a.astype(np.float64) - b.astype(np.float64))
        worst = max(worst, float(d.max()))
        off += int((d > 0).sum())
    if worst == 0:
        return "equal", ""
    if mode == "LAB" and worst <= 1:
        return "within 1", f"{off} samples off by 1"
    return "DIFFERENT", f"{off} samples differ, by up to {worst:g}"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--shutter", default="target/release/shutter")
    parser.add_argument("--work", default="target/device-run/gpu-check")
    parser.add_argument("--sizes", default="1x1,3x7,1366x768,1920x1080,3840x2160")
    args = parser.parse_args()
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",")]
    shutil.rmtree(args.work, ignore_errors=True)
    src = inputs(args.work, sizes)
    cases = [(m, []) for m in MODES]
    cases += [(m, ["--mirror", "--filter", "sepia"]) for m in MODES]
    cases += [("RGB", ["--filter", f]) for f in ("sepia-norm", "grayscale", "invert")]
    cases += [("RGB", ["--mirror", "--filter", "invert,grayscale,sepia"])]
    bad = 0
    for k, (mode, ops) in enumerate(cases):
        flags = ["--mode", mode, *ops]
        arrays = {}
        for device in ("gpu", "cpu"):
            out = os.path.join(args.work, f"out{k}-{device}")
            try:
                arrays[device] = run(args.shutter, src, out, device, flags)
            except (RuntimeError, subprocess.TimeoutExpired) as e:
                arrays[device] = None
                print(f"gpu-check {' '.join(flags)}: {device} failed: {e}")
        if arrays["gpu"] is None or arrays["cpu"] is None:
            bad += 1
            continue
        verdict, detail = compare(mode, arrays["gpu"], arrays["cpu"])
        bad += verdict == "DIFFERENT"
        print(f"gpu-check {' '.join(flags)}: {verdict} {detail}".rstrip())
        shutil.rmtree(os.path.join(args.work, f"out{k}-gpu"))
        shutil.rmtree(os.path.join(args.work, f"out{k}-cpu"))
    sides = ", ".join(f"{w}x{h}" for w, h in sizes)
    print(f"gpu-check: {len(cases)} cases on {sides}: {len(cases) - bad} agree, {bad} differ or failed")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()

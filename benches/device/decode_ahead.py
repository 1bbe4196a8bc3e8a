#!/usr/bin/env python3
"""Decoding ahead on many cores: a directory of 1080p PNGs to npy with one decode thread (which
still decodes one input ahead, beside the capture) and with the default (the cores, at most
8), in one run, alternating; `SHUTTER_DECODE_THREADS` sets the count.

    python3 benches/device/decode_ahead.py --shutter target/release/shutter --work DIR

Needs numpy only (the device machine has no network). The PNGs are photo-like (gradients
and noise; `gpu_check.write_png`, unfiltered at zlib level 1), so that decoding one takes
about what a photo's does; npy output keeps the encoders out of the way, so the run is bound
by decoding where decoding is serial.
Prints one line per run and the ratio of the medians.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gpu_check import write_png  # noqa: E402


def photo(w, h, k, rng):
    """A photo-like RGBA frame (opaque): smooth gradients that differ per frame, and noise."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    rgb = np.stack(
        [
            (x * (k + 1) / 7 + y / 3) % 256,
            (y * 0.7 + k * 13 + np.sin(x / 40.0) * 30) % 256,
            ((x + y) / 12 + k * 20) % 256,
        ],
        -1,
    )
    rgb = np.clip(rgb + rng.normal(0, 6, rgb.shape), 0, 255).astype(np.uint8)
    alpha = np.full((h, w, 1), 255, np.uint8)
    return np.concatenate([rgb, alpha], -1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shutter", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--files", type=int, default=48)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    src = os.path.join(args.work, "png")
    os.makedirs(src, exist_ok=True)
    rng = np.random.default_rng(3)
    for k in range(args.files):
        path = os.path.join(src, f"p{k:03d}.png")
        write_png(path, photo(1920, 1080, k, rng))
    out = os.path.join(args.work, "npy")
    env = dict(os.environ, XDG_RUNTIME_DIR=os.environ.get("XDG_RUNTIME_DIR", "/tmp"))
    times = {"1": [], "default": []}
    for _ in range(args.runs):
        for threads in ("1", "default"):
            shutil.rmtree(out, ignore_errors=True)
            run_env = dict(env)
            if threads != "default":
                run_env["SHUTTER_DECODE_THREADS"] = threads
            start = time.perf_counter()
            done = subprocess.run(
                [args.shutter, "run", src, "--format", "npy", "--device", "cpu", "-o", out],
                env=run_env,
                capture_output=True,
                text=True,
            )
            seconds = time.perf_counter() - start
            if done.returncode != 0:
                print(f"decode threads {threads}: failed: {done.stderr.strip()[-300:]}")
                return 1
            times[threads].append(seconds)
            print(f"decode threads {threads}: {args.files} PNGs in {seconds:.2f} s")
    shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(src, ignore_errors=True)
    one, many = statistics.median(times["1"]), statistics.median(times["default"])
    print(
        f"decode ahead, {os.cpu_count()} cores: median {one:.2f} s with 1 decode thread, "
        f"{many:.2f} s with the default: {one / many:.2f}x"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

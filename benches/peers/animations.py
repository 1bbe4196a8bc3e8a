"""Animated WebP and GIF output: file size, time and fidelity of shutter against Pillow.

    target/peers-venv/bin/python benches/peers/animations.py [--shutter BIN] [--baseline BIN]

Makes three 30-frame 320x240 APNG clips in target/peers/anim (shutter's test pattern, a red
ball crossing a still gradient, and a sprite crossing a transparent canvas, written in RGBA
mode, `--mode RGBA`), writes each as lossy WebP, lossless WebP and GIF with shutter
(and with a second binary, --baseline, to compare two versions) and with Pillow's `save_all`
(libwebp's WebPAnimEncoder; Pillow's GIF writer), three runs each, and prints a table: the
file's size, the times of the three runs, and the PSNR of the frames (as Pillow reads them)
against the clip's. Needs numpy and Pillow (benches/peers/run.sh --setup-only installs them).
"""

import argparse
import os
import subprocess
import time

import numpy as np
from PIL import Image, ImageDraw

W, H, N, MS = 320, 240, 30, 33


def make_clips(shutter, work):
    """The three clips, as APNG files, and the mode each is written in."""
    npy = os.path.join(work, "pattern.npy")
    subprocess.run(
        [shutter, "run", f"pattern:{W}x{H}", "--frames", str(N), "--mode", "RGB", "-o", npy],
        check=True,
        capture_output=True,
    )
    pattern = [Image.fromarray(a) for a in np.load(npy)]
    yy, xx = np.mgrid[0:H, 0:W]
    gradient = np.dstack([xx * 255 // W, yy * 255 // H, np.full_like(xx, 128)]).astype(np.uint8)
    ball = []
    for k in range(N):
        im = Image.fromarray(gradient)
        x = 10 + k * 9
        ImageDraw.Draw(im).ellipse([x, 100, x + 40, 140], fill=(250, 40, 40))
        ball.append(im)
    sprite = []
    for k in range(N):
        im = Image.new("RGBA", (W, H), (0, 0, 0, 0))
        x, y = 10 + k * 9, 60 + (k % 10) * 8
        draw = ImageDraw.Draw(im)
        draw.ellipse([x, y, x + 48, y + 48], fill=(250, 40, 40, 255), outline=(20, 20, 20, 255))
        draw.rectangle([x + 16, y + 16, x + 32, y + 32], fill=(40, 40, 250, 255))
        sprite.append(im)
    clips = {}
    for name, frames, mode in (("pattern", pattern, "RGB"), ("ball", ball, "RGB"), ("sprite", sprite, "RGBA")):
        path = os.path.join(work, f"{name}.png")
        frames[0].save(path, save_all=True, append_images=frames[1:], duration=MS, loop=0)
        clips[name] = (path, mode)
    return clips


def frames_of(path, mode):
    """The frames as Pillow reads them, in `mode`; RGBA with the colour of transparent pixels
    cleared (it is not shown)."""
    im = Image.open(path)
    out = []
    for i in range(getattr(im, "n_frames", 1)):
        im.seek(i)
        a = np.asarray(im.convert(mode)).astype(np.float64)
        if mode == "RGBA":
            a[a[..., 3] == 0] = 0
        out.append(a)
    return out


def psnr(got, want):
    values = []
    for a, b in zip(got, want):
        mse = ((a - b) ** 2).mean()
        values.append(99.0 if mse == 0 else 10 * np.log10(255**2 / mse))
    return np.mean(values), min(values)


def shutter_writes(binary, lossless, mode):
    def write(clip, out):
        cmd = [binary, "run", clip, "-o", out, "--mode", mode] + (["--lossless"] if lossless else [])
        subprocess.run(cmd, check=True, capture_output=True)

    return write


def pillow_writes(lossless, mode):
    def write(clip, out):
        im = Image.open(clip)
        frames = []
        for i in range(im.n_frames):
            im.seek(i)
            frames.append(im.convert(mode))
        extra = {"lossless": lossless} if out.endswith(".webp") else {}
        frames[0].save(out, save_all=True, append_images=frames[1:], duration=MS, loop=0, **extra)

    return write


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--shutter", default="target/release/shutter")
    parser.add_argument("--baseline", help="a second shutter binary, to compare two versions")
    parser.add_argument("--work", default="target/peers/anim")
    args = parser.parse_args()
    os.makedirs(args.work, exist_ok=True)
    clips = make_clips(args.shutter, args.work)
    writers = [("shutter", args.shutter)] + ([("baseline", args.baseline)] if args.baseline else [])
    print("| clip | format | writer | size | seconds (3 runs) | PSNR mean / min dB |")
    print("|---|---|---|---|---|---|")
    for name, (clip, mode) in clips.items():
        want = frames_of(clip, mode)
        for fmt, lossless in (("webp", False), ("webp", True), ("gif", False)):
            label = f"{fmt}{' lossless' if lossless else ''}"
            runs = [(who, shutter_writes(binary, lossless, mode)) for who, binary in writers]
            runs.append(("pillow", pillow_writes(lossless, mode)))
            for who, write in runs:
                out = os.path.join(args.work, f"{name}.{who}.{label.replace(' ', '_')}.{fmt}")
                times = []
                for _ in range(3):
                    start = time.perf_counter()
                    write(clip, out)
                    times.append(time.perf_counter() - start)
                mean, low = psnr(frames_of(out, mode), want)
                seconds = " ".join(f"{t:.3f}" for t in times)
                size = os.path.getsize(out) / 1000
                print(f"| {name} | {label} | {who} | {size:.1f} KB | {seconds} | {mean:.1f} / {low:.1f} |")


if __name__ == "__main__":
    main()

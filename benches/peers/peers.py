"""Shutter and its peers on the same frames, in one run: fps and ratios.

Peers: the Gradio sepia demo's numpy code (mirror + dot + divide by max), OpenCV flip +
transform, ffmpeg's hflip + colorchannelmixer (sepia) on raw frames, Pillow's convert for a
mode, PyTorch CUDA (pinned round trip) when a GPU is present, and a Pillow + numpy loop over a
directory of JPEGs -> sepia -> lossy webp q80. Shutter:
`shutter bench --json` for its stages and `shutter run` on the same JPEG directory.

The frames are shutter's own synthetic frames (`shutter::bench::synthetic_frames`),
recomputed here with numpy; `check_frames_match_shutter` pins pixel values that a unit test
in src/bench.rs pins too. Run through benches/peers/run.sh, which makes the virtualenv.
"""

import argparse
import datetime
import io
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import PIL
from PIL import Image

SIZES = {"720p": (1280, 720), "1080p": (1920, 1080), "1440p": (2560, 1440), "4k": (3840, 2160)}
# The classic sepia matrix (rows: output R, G, B), as in the Gradio demo.
SEP = np.array([[0.393, 0.769, 0.189], [0.349, 0.686, 0.168], [0.272, 0.534, 0.131]])
DISTINCT_FRAMES = 4


def synthetic_frames(w, h, count):
    """shutter::bench::synthetic_frames: (h, w, 4) uint8 RGBA frames, opaque."""
    x = np.arange(w, dtype=np.uint32)[None, :]
    y = np.arange(h, dtype=np.uint32)[:, None]
    frames = []
    with np.errstate(over="ignore"):
        for k in range(count):
            def noise(salt):
                v = (x * np.uint32(0x9E3779B1)) ^ (y * np.uint32(0x85EBCA77)) ^ np.uint32(
                    ((k * 4 + salt) * 0xC2B2AE3D) & 0xFFFFFFFF
                )
                v ^= v >> np.uint32(15)
                v = v * np.uint32(0x2C1B3C6D)
                return (v >> np.uint32(28)).astype(np.int32) - 8

            r = ((x.astype(np.int64) + k * w // 7) % w) * 255 // w
            g = y.astype(np.int64) * 255 // h
            b = ((x.astype(np.int64) // 8 + y.astype(np.int64) // 8 + k * 5) % 32) * 8
            rgba = np.empty((h, w, 4), np.uint8)
            for c, base in enumerate((r, g, b)):
                rgba[..., c] = np.clip(np.broadcast_to(base, (h, w)) + noise(c), 1, 255)
            rgba[..., 3] = 255
            frames.append(rgba)
    return frames


def check_frames_match_shutter():
    """The pixels pinned by src/bench.rs's `synthetic_frame_pixels_are_pinned`."""
    f = synthetic_frames(33, 9, DISTINCT_FRAMES)
    got = [f[0][0, 0].tolist(), f[1][4, 17].tolist(), f[3][8, 32].tolist()]
    got.append([int(a.astype(np.int64).sum()) for a in f])
    want = PINNED
    if got != want:
        sys.exit(f"peers.py: synthetic frames differ from shutter's: {got} != {want}")


PINNED = [[1, 1, 3, 255], [165, 108, 63, 255], [103, 231, 159, 255], [149901, 161473, 173258, 185530]]


def timings(f, n, warmup=1):
    """Runs f(k) warmup times untimed, then n timed times; returns ms stats."""
    for k in range(warmup):
        f(k)
    ts = []
    for k in range(n):
        t = time.perf_counter()
        f(warmup + k)
        ts.append((time.perf_counter() - t) * 1e3)
    ts.sort()
    q = lambda p: ts[round((len(ts) - 1) * p)]
    return {"median_ms": q(0.5), "p10_ms": q(0.1), "p90_ms": q(0.9), "samples": len(ts)}


def shutter_bench(shutter, size, *args):
    cmd = [shutter, "bench", "--size", size, "--json", *args]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    report = json.loads(out.stdout)
    report["command"] = " ".join(["shutter", *cmd[1:]])
    return report


def row(report, key):
    for r in report["rows"]:
        if r["key"] == key:
            return r
    return None


def ffmpeg_exe():
    """An ffmpeg binary: the system's, else imageio-ffmpeg's static build; None without."""
    exe = shutil.which("ffmpeg")
    if exe:
        return exe
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError):
        return None


FFMPEG_FRAMES = 64


# ffmpeg's mirror + sepia: hflip, then colorchannelmixer with the sepia matrix.
FFMPEG_SEPIA = "hflip,colorchannelmixer=" + ":".join(f"{v}" for row in SEP for v in (*row, 0))


def ffmpeg_peer(exe, rgb, work, vf):
    """ffmpeg's filter graph `vf` on raw RGB frames, as a user would run it: rawvideo in, the
    filters (their default threads), the null muxer out. Per frame = (time for FFMPEG_FRAMES
    frames - time for DISTINCT_FRAMES frames) / the difference, which takes out the process
    start; median of 3 pairs. With vf "null" it is ffmpeg's own frame I/O."""
    h, w = rgb[0].shape[:2]
    raw = work / f"frames_{w}x{h}.rgb"
    raw.parent.mkdir(parents=True, exist_ok=True)
    with open(raw, "wb") as f:
        for a in rgb:
            f.write(a.tobytes())

    def run(loops):
        cmd = [exe, "-v", "error", "-nostdin", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s",
               f"{w}x{h}", "-stream_loop", str(loops), "-i", str(raw), "-vf", vf, "-f", "null", "-"]
        t = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        return (time.perf_counter() - t) * 1e3

    loops = FFMPEG_FRAMES // DISTINCT_FRAMES - 1
    run(0)  # warm-up: page cache, the binary
    per_frame = sorted((run(loops) - run(0)) / (FFMPEG_FRAMES - DISTINCT_FRAMES) for _ in range(3))
    version = subprocess.run([exe, "-version"], capture_output=True, text=True).stdout.split("\n")[0]
    return {"median_ms": per_frame[1], "p10_ms": per_frame[0], "p90_ms": per_frame[2],
            "samples": 3, "version": version, "filter": vf}


def kernel_peers(w, h, have_torch, work):
    frames = synthetic_frames(w, h, DISTINCT_FRAMES)
    rgb = [np.ascontiguousarray(f[..., :3]) for f in frames]
    bgr = [np.ascontiguousarray(f[..., 2::-1]) for f in frames]
    res = {}

    def demo(k):  # the Gradio demo's code, with the webcam mirror
        s = rgb[k % DISTINCT_FRAMES][:, ::-1].dot(SEP.T)
        s /= s.max()
        return s

    res["numpy_demo_sepia_norm_mirror"] = timings(demo, 5)
    # OpenCV on BGR: the matrix with rows and columns reversed.
    m = SEP[::-1, ::-1].copy()
    res["opencv_flip_transform"] = timings(
        lambda k: cv2.transform(cv2.flip(bgr[k % DISTINCT_FRAMES], 1), m), 20
    )
    exe = ffmpeg_exe()
    if exe:
        res["ffmpeg_hflip_colorchannelmixer"] = ffmpeg_peer(exe, rgb, work, FFMPEG_SEPIA)
        res["ffmpeg_rawvideo_io"] = ffmpeg_peer(exe, rgb, work, "null")
    ims = [Image.fromarray(a) for a in rgb]
    for mode in ("L", "HSV"):
        res[f"pillow_convert_{mode}"] = timings(lambda k: ims[k % DISTINCT_FRAMES].convert(mode), 10)
    res["pillow_webp_q80_encode"] = timings(
        lambda k: ims[k % DISTINCT_FRAMES].save(io.BytesIO(), "webp", quality=80), 3
    )
    res["pillow_png_encode"] = timings(lambda k: ims[k % DISTINCT_FRAMES].save(io.BytesIO(), "png"), 3)
    if have_torch:
        res.update(torch_peers(frames))
    return res


def torch_peers(frames):
    import torch

    res = {}
    S = torch.tensor(SEP.T, dtype=torch.float32, device="cuda")
    hp = [torch.from_numpy(f.copy()).pin_memory() for f in frames]
    op = torch.empty_like(hp[0]).pin_memory()
    n = hp[0].numel()
    dev = torch.empty(n, dtype=torch.uint8, device="cuda")

    def copy_rt(k):
        dev.copy_(hp[k % DISTINCT_FRAMES].view(-1), non_blocking=True)
        op.view(-1).copy_(dev, non_blocking=True)
        torch.cuda.synchronize()

    res["pcie_copy_roundtrip_pinned"] = timings(copy_rt, 50, warmup=5)

    def torch_rt(k):
        d = hp[k % DISTINCT_FRAMES].to("cuda", non_blocking=True)
        f = d[..., :3].float().flip(1) @ S
        o = torch.cat([f.clamp(0, 255).round().to(torch.uint8), d[..., 3:].flip(1)], -1)
        op.copy_(o, non_blocking=True)
        torch.cuda.synchronize()

    res["torch_cuda_sepia_mirror_roundtrip_pinned"] = timings(torch_rt, 50, warmup=5)
    return res


def directory_peers(shutter, w, h, files, work):
    """JPEG directory -> sepia -> lossy webp q80: Pillow + numpy loop vs `shutter run`."""
    src = work / f"jpegs_{w}x{h}"
    src.mkdir(parents=True, exist_ok=True)
    frames = synthetic_frames(w, h, DISTINCT_FRAMES)
    for i in range(files):
        path = src / f"frame_{i:04d}.jpg"
        if not path.exists():
            Image.fromarray(np.ascontiguousarray(frames[i % DISTINCT_FRAMES][..., :3])).save(
                path, "jpeg", quality=90
            )
    paths = sorted(src.glob("*.jpg"))[:files]
    res = {"files": len(paths), "size": f"{w}x{h}"}

    out = work / "out_pillow"
    out.mkdir(exist_ok=True)
    t = time.perf_counter()
    for p in paths:
        a = np.asarray(Image.open(p).convert("RGB"))
        s = np.clip(np.rint(a @ SEP.T), 0, 255).astype(np.uint8)  # shutter's `sepia`
        Image.fromarray(s).save(out / (p.stem + ".webp"), "webp", quality=80)
    secs = time.perf_counter() - t
    res["pillow_numpy_loop"] = {"seconds": secs, "fps": len(paths) / secs}

    for device in ("cpu", "auto"):
        out = work / f"out_shutter_{device}"
        cmd = [shutter, "run", str(src), "--filter", "sepia", "--format", "webp", "--quality",
               "80", "-o", str(out), "--device", device]
        t = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True)
        secs = time.perf_counter() - t
        if done.returncode != 0:
            res[f"shutter_run_{device}"] = {"error": done.stderr.strip()[-500:]}
            continue
        res[f"shutter_run_{device}"] = {
            "seconds": secs,
            "fps": len(paths) / secs,
            "command": " ".join(["shutter", *cmd[1:]]),
            "stderr": done.stderr.strip().splitlines()[-1:],
        }
    # Same pixels: shutter's integer sepia vs numpy's rint (±1 at most), on a PNG so that both
    # start from the same decoded pixels; and how far the two JPEG decoders are apart.
    png = work / "check.png"
    Image.open(paths[0]).convert("RGB").save(png)
    a = np.asarray(Image.open(png))
    want = np.clip(np.rint(a @ SEP.T), 0, 255).astype(np.int16)
    npy = work / "check.npy"
    subprocess.run([shutter, "run", str(png), "--filter", "sepia", "-o", str(npy), "--device",
                    "cpu"], check=True, capture_output=True)
    res["max_abs_diff_vs_numpy_sepia"] = int(np.abs(np.load(npy).astype(np.int16) - want).max())
    subprocess.run([shutter, "run", str(paths[0]), "-o", str(npy), "--device", "cpu"], check=True,
                   capture_output=True)
    res["max_abs_diff_jpeg_decoders"] = int(np.abs(np.load(npy).astype(np.int16) - a).max())
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shutter", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--sizes", default="1080p", help="comma-separated: 720p,1080p,4k")
    ap.add_argument("--files", type=int, default=16, help="JPEGs in the directory test")
    ap.add_argument("--dir-size", default="1080p")
    args = ap.parse_args()
    work = Path(args.work)
    check_frames_match_shutter()

    have_torch = False
    try:
        import torch

        have_torch = torch.cuda.is_available()
    except ImportError:
        torch = None
    cpu_model = ""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    git = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    result = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": {
            "cpu": cpu_model,
            "cores": os.cpu_count(),
            "platform": platform.platform(),
            "load_average_start": os.getloadavg(),
        },
        "versions": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "opencv": cv2.__version__,
            "opencv_threads": cv2.getNumThreads(),
            "pillow": PIL.__version__,
            "torch": getattr(torch, "__version__", None) if have_torch else None,
            "shutter_commit": git.stdout.strip() or None,
        },
        "sizes": {},
    }

    for size in args.sizes.split(","):
        w, h = SIZES[size.lower()]
        print(f"== {size} ({w}x{h}): peers ...", file=sys.stderr)
        peers = kernel_peers(w, h, have_torch, work)
        if "ffmpeg_hflip_colorchannelmixer" in peers:
            result["versions"]["ffmpeg"] = peers["ffmpeg_hflip_colorchannelmixer"]["version"]
        print(f"== {size}: shutter bench ...", file=sys.stderr)
        sepia = shutter_bench(args.shutter, size, "--ops", "mirror,sepia", "--device", "both")
        norm = shutter_bench(args.shutter, size, "--ops", "mirror,sepia-norm", "--device", "cpu")
        gray = shutter_bench(args.shutter, size, "--ops", "none", "--mode", "L", "--device", "cpu")
        result["sizes"][size] = {"peers": peers, "shutter": {"mirror_sepia": sepia,
                                                            "mirror_sepia_norm": norm,
                                                            "mode_L": gray}}

    w, h = SIZES[args.dir_size.lower()]
    print(f"== directory of {args.files} JPEGs {w}x{h} -> sepia -> webp q80 ...", file=sys.stderr)
    result["directory"] = directory_peers(args.shutter, w, h, args.files, work)
    result["machine"]["load_average_end"] = os.getloadavg()
    (work / "results.json").write_text(json.dumps(result, indent=1))
    (work / "results.md").write_text(markdown(result))
    report(result)
    print(f"\nwritten: {work / 'results.json'}, {work / 'results.md'}")


def markdown(result):
    """The tables of PERFORMANCE.md, from one run."""
    sizes = list(result["sizes"])
    mpx = {s: SIZES[s.lower()][0] * SIZES[s.lower()][1] / 1e6 for s in sizes}
    out = []

    def ms_of(size, bench, key):
        r_ = row(result["sizes"][size]["shutter"][bench], key)
        return r_["median_ms"] if r_ else None

    def peer(size, key):
        v = result["sizes"][size]["peers"].get(key)
        return v["median_ms"] if v else None

    n = result["sizes"][sizes[0]]["shutter"]["mirror_sepia"]["in_flight"]
    lines = [
        ("numpy: the Gradio demo (mirror, dot, / max), RGB", lambda s: peer(s, "numpy_demo_sepia_norm_mirror")),
        ("OpenCV: flip + transform, BGR u8", lambda s: peer(s, "opencv_flip_transform")),
        ("ffmpeg: hflip + colorchannelmixer (sepia), rgb24", lambda s: peer(s, "ffmpeg_hflip_colorchannelmixer")),
        ("ffmpeg: the same command with no filter (its frame I/O)", lambda s: peer(s, "ffmpeg_rawvideo_io")),
        ("PyTorch CUDA, pinned round trip", lambda s: peer(s, "torch_cuda_sepia_mirror_roundtrip_pinned")),
        ("shutter: memcpy of one RGBA frame", lambda s: ms_of(s, "mirror_sepia", "memcpy")),
        ("shutter: CPU reference, mirror+sepia (1 thread)", lambda s: ms_of(s, "mirror_sepia", "cpu.ops.reference")),
        ("shutter: **CPU fast, mirror+sepia**", lambda s: ms_of(s, "mirror_sepia", "cpu.ops.fast")),
        ("shutter: CPU fast, mirror+sepia-norm (the demo's op)", lambda s: ms_of(s, "mirror_sepia_norm", "cpu.ops.fast")),
        ("shutter: GPU round trip, mirror+sepia, 1 in flight", lambda s: ms_of(s, "mirror_sepia", "gpu.round_trip.in_flight_1")),
        (f"shutter: GPU round trip, mirror+sepia, {n} in flight", lambda s: ms_of(s, "mirror_sepia", f"gpu.round_trip.in_flight_{n}")),
        (f"shutter: GPU round trip, mirror+sepia, no host copy, {n} in flight",
         lambda s: ms_of(s, "mirror_sepia", f"gpu.round_trip.in_place.in_flight_{n}")),
        (f"shutter: GPU round trip, mirror+sepia, RGB up at 3 B/px, {n} in flight",
         lambda s: ms_of(s, "mirror_sepia", f"gpu.round_trip.rgb.in_flight_{n}")),
        (f"shutter: GPU round trip, mirror+sepia, RGB up at 3 B/px, no host copy, {n} in flight",
         lambda s: ms_of(s, "mirror_sepia", f"gpu.round_trip.in_place.rgb.in_flight_{n}")),
        ("shutter: GPU pass alone, mirror+sepia", lambda s: ms_of(s, "mirror_sepia", "gpu.pass")),
        ("shutter: GPU pass alone, mirror+sepia, RGB input", lambda s: ms_of(s, "mirror_sepia", "gpu.pass.rgb")),
        ("shutter: end to end to a callback (RGB), CPU", lambda s: ms_of(s, "mirror_sepia", "e2e.cpu")),
        ("shutter: end to end to a callback (RGB), GPU", lambda s: ms_of(s, "mirror_sepia", "e2e.gpu")),
    ]
    out.append("| per frame, median | " + " | ".join(sizes) + " |")
    out.append("|---|" + "---:|" * len(sizes))
    for label, f in lines:
        vals = [f(s) for s in sizes]
        if all(v is None for v in vals):
            continue
        cells = [f"{v:.2f} ms ({1000 / v:,.0f} fps)" if v else "–" for v in vals]
        out.append(f"| {label} | " + " | ".join(cells) + " |")

    out.append("")
    out.append("| ratio (same run) | " + " | ".join(sizes) + " | target |")
    out.append("|---|" + "---:|" * len(sizes) + "---|")

    def best(s):
        return min(v for v in (ms_of(s, "mirror_sepia", "cpu.ops.fast"),
                               ms_of(s, "mirror_sepia", f"gpu.round_trip.in_flight_{n}")) if v)

    ratios = [
        ("best backend mirror+sepia vs numpy demo", lambda s: peer(s, "numpy_demo_sepia_norm_mirror") / best(s), "≥ 20×"),
        ("CPU fast mirror+sepia-norm vs numpy demo (same op)",
         lambda s: peer(s, "numpy_demo_sepia_norm_mirror") / ms_of(s, "mirror_sepia_norm", "cpu.ops.fast"), ""),
        ("best backend mirror+sepia vs OpenCV flip + transform", lambda s: peer(s, "opencv_flip_transform") / best(s), "≥ 1×"),
        ("best backend mirror+sepia vs ffmpeg hflip + colorchannelmixer",
         lambda s: peer(s, "ffmpeg_hflip_colorchannelmixer") / best(s), ""),
        ("CPU fast vs CPU reference (mirror+sepia)",
         lambda s: ms_of(s, "mirror_sepia", "cpu.ops.reference") / ms_of(s, "mirror_sepia", "cpu.ops.fast"), ""),
        ("mode L convert vs Pillow `convert('L')`", lambda s: peer(s, "pillow_convert_L") / ms_of(s, "mode_L", "mode.L"), ""),
        ("webp q80 encode vs Pillow's", lambda s: peer(s, "pillow_webp_q80_encode") / ms_of(s, "mirror_sepia", "encode.webp"), ""),
    ]
    rt = f"gpu.round_trip.in_flight_{n}"
    in_place = f"gpu.round_trip.in_place.in_flight_{n}"
    ratios += [
        ("GPU round trip vs PyTorch CUDA pinned",
         lambda s: peer(s, "torch_cuda_sepia_mirror_roundtrip_pinned") / ms_of(s, "mirror_sepia", rt), "> 1×"),
        ("GPU round trip vs pinned PCIe copy bound",
         lambda s: peer(s, "pcie_copy_roundtrip_pinned") / ms_of(s, "mirror_sepia", rt), "≥ 0.65×"),
        ("GPU round trip, no host copy, vs PyTorch CUDA pinned",
         lambda s: peer(s, "torch_cuda_sepia_mirror_roundtrip_pinned") / ms_of(s, "mirror_sepia", in_place), ""),
        ("GPU round trip, no host copy, vs pinned PCIe copy bound",
         lambda s: peer(s, "pcie_copy_roundtrip_pinned") / ms_of(s, "mirror_sepia", in_place), ""),
    ]

    def ratio_cell(f, s):
        try:
            return f"{f(s):.2f}×"
        except (TypeError, ZeroDivisionError):  # a row or peer this run lacks (no CUDA)
            return None

    for label, f, target in ratios:
        cells = [ratio_cell(f, s) for s in sizes]
        if all(c is None for c in cells):
            continue
        out.append(f"| {label} | " + " | ".join(c or "–" for c in cells) + f" | {target} |")

    out.append("")
    out.append("| cost per megapixel (ms / Mpx) | " + " | ".join(sizes) + " |")
    out.append("|---|" + "---:|" * len(sizes))
    for label, key, bench in [
        ("memcpy", "memcpy", "mirror_sepia"),
        ("CPU fast, mirror+sepia", "cpu.ops.fast", "mirror_sepia"),
        ("CPU fast, mirror+sepia-norm", "cpu.ops.fast", "mirror_sepia_norm"),
        (f"GPU round trip, {n} in flight", f"gpu.round_trip.in_flight_{n}", "mirror_sepia"),
        ("mode RGB convert", "mode.RGB", "mirror_sepia"),
        ("encode webp q80", "encode.webp", "mirror_sepia"),
        ("end to end, CPU", "e2e.cpu", "mirror_sepia"),
        ("end to end, GPU", "e2e.gpu", "mirror_sepia"),
    ]:
        vals = [ms_of(s, bench, key) for s in sizes]
        if all(v is None for v in vals):
            continue
        out.append(f"| {label} | " + " | ".join(f"{v / mpx[s]:.2f}" if v else "–"
                                                  for v, s in zip(vals, sizes)) + " |")

    for s in sizes:
        rep = result["sizes"][s]["shutter"]["mirror_sepia"]
        out.append("")
        out.append(f"Every stage at {s} (`{rep['command']}`):")
        out.append("")
        out.append("| stage | on | median ms | p10 | p90 | fps | n |")
        out.append("|---|---|---:|---:|---:|---:|---:|")
        for r_ in rep["rows"]:
            out.append(f"| {r_['label']} | {r_['backend']} | {r_['median_ms']:.3f} | {r_['p10_ms']:.3f}"
                       f" | {r_['p90_ms']:.3f} | {r_['fps']:,.1f} | {r_['samples']} |")
        for key in ("pillow_convert_L", "pillow_convert_HSV", "pillow_webp_q80_encode", "pillow_png_encode"):
            v = result["sizes"][s]["peers"][key]
            out.append(f"| peer: {key.replace('_', ' ')} | – | {v['median_ms']:.3f} | {v['p10_ms']:.3f}"
                       f" | {v['p90_ms']:.3f} | {1000 / v['median_ms']:,.1f} | {v['samples']} |")

    d = result["directory"]
    base = d["pillow_numpy_loop"]["fps"]
    out.append("")
    out.append(f"Directory of {d['files']} JPEGs ({d['size']}) → sepia → lossy webp q80, wall time:")
    out.append("")
    out.append("| | s | fps | vs Pillow + numpy |")
    out.append("|---|---:|---:|---:|")
    out.append(f"| Pillow + numpy loop | {d['pillow_numpy_loop']['seconds']:.2f} | {base:.2f} | 1.00× |")
    for device in ("cpu", "auto"):
        r_ = d[f"shutter_run_{device}"]
        if "fps" in r_:
            out.append(f"| `shutter run --device {device}` | {r_['seconds']:.2f} | {r_['fps']:.2f}"
                       f" | {r_['fps'] / base:.2f}× |")
    m = result["machine"]
    out.append("")
    out.append(f"Run {result['date']} on {m['cpu']} ({m['cores']} cores), load average "
               f"{m['load_average_start'][0]:.2f} at the start, {m['load_average_end'][0]:.2f} at the end; "
               f"{json.dumps(result['versions'])}.")
    return "\n".join(out) + "\n"


def report(result):
    m = result["machine"]
    print(f"# {result['date']}  {m['cpu']}, {m['cores']} cores; load {m['load_average_start']}"
          f" -> {m['load_average_end']}")
    print(f"# {json.dumps(result['versions'])}")
    for size, r in result["sizes"].items():
        peers, sh = r["peers"], r["shutter"]
        gpu = sh["mirror_sepia"].get("gpu")
        print(f"\n## {size}  (GPU: {gpu or 'none'})")
        print(f"{'what':<58} {'median ms':>10} {'fps':>9}")
        lines = []
        for key, v in peers.items():
            lines.append((f"peer: {key}", v["median_ms"]))
        for name, rep in sh.items():
            for r_ in rep["rows"]:
                if r_["key"].startswith(("cpu.ops", "gpu.round", "mode.", "e2e.", "memcpy")):
                    lines.append((f"shutter [{name}]: {r_['label']}", r_["median_ms"]))
        for label, ms in lines:
            print(f"{label[:58]:<58} {ms:>10.3f} {1000 / ms:>9.1f}")

        def ms(rep, key):
            r_ = row(rep, key)
            return r_["median_ms"] if r_ else None

        fast = ms(sh["mirror_sepia"], "cpu.ops.fast")
        norm = ms(sh["mirror_sepia_norm"], "cpu.ops.fast")
        gpu_rt = ms(sh["mirror_sepia"], f"gpu.round_trip.in_flight_{sh['mirror_sepia']['in_flight']}")
        best = min(v for v in (fast, gpu_rt) if v)
        demo = peers["numpy_demo_sepia_norm_mirror"]["median_ms"]
        ocv = peers["opencv_flip_transform"]["median_ms"]
        print("\nratios (higher is better for shutter):")
        print(f"  best backend mirror+sepia vs numpy demo:       {demo / best:8.1f}x   (target >= 20)")
        print(f"  CPU fast mirror+sepia-norm vs numpy demo:      {demo / norm:8.1f}x   (same op)")
        print(f"  best backend mirror+sepia vs OpenCV:           {ocv / best:8.2f}x   (target >= 1)")
        if "ffmpeg_hflip_colorchannelmixer" in peers:
            ff = peers["ffmpeg_hflip_colorchannelmixer"]["median_ms"]
            print(f"  best backend mirror+sepia vs ffmpeg:           {ff / best:8.2f}x")
        lmode = ms(sh["mode_L"], "mode.L")
        print(f"  mode L convert vs Pillow convert('L'):         "
              f"{peers['pillow_convert_L']['median_ms'] / lmode:8.2f}x")
        webp = ms(sh["mirror_sepia"], "encode.webp")
        print(f"  webp q80 encode vs Pillow's:                   "
              f"{peers['pillow_webp_q80_encode']['median_ms'] / webp:8.2f}x")
        if "torch_cuda_sepia_mirror_roundtrip_pinned" in peers and gpu_rt:
            t = peers["torch_cuda_sepia_mirror_roundtrip_pinned"]["median_ms"]
            b = peers["pcie_copy_roundtrip_pinned"]["median_ms"]
            print(f"  GPU round trip vs PyTorch CUDA pinned:         {t / gpu_rt:8.2f}x   (target > 1)")
            print(f"  GPU round trip vs pinned PCIe copy bound:      {b / gpu_rt:8.2%}   (target >= 65%)")
            in_place = ms(sh["mirror_sepia"],
                          f"gpu.round_trip.in_place.in_flight_{sh['mirror_sepia']['in_flight']}")
            if in_place:
                print(f"  no host copy: vs PyTorch CUDA pinned:          {t / in_place:8.2f}x")
                print(f"  no host copy: vs pinned PCIe copy bound:       {b / in_place:8.2%}")
            rgb_rt = ms(sh["mirror_sepia"],
                        f"gpu.round_trip.rgb.in_flight_{sh['mirror_sepia']['in_flight']}")
            if rgb_rt:
                print(f"  RGB up at 3 B/px: vs the RGBA round trip:      {gpu_rt / rgb_rt:8.2f}x")
    d = result["directory"]
    print(f"\n## directory: {d['files']} JPEGs {d['size']} -> sepia -> webp q80 "
          f"(max |shutter - numpy sepia| = {d['max_abs_diff_vs_numpy_sepia']}; the JPEG decoders"
          f" differ by up to {d['max_abs_diff_jpeg_decoders']})")
    base = d["pillow_numpy_loop"]["fps"]
    print(f"  Pillow + numpy loop:   {base:7.2f} fps")
    for device in ("cpu", "auto"):
        r_ = d[f"shutter_run_{device}"]
        if "fps" in r_:
            print(f"  shutter run --device {device:<4} {r_['fps']:7.2f} fps  {r_['fps'] / base:5.2f}x"
                  f"   (target >= 2)")
        else:
            print(f"  shutter run --device {device}: failed: {r_['error']}")


if __name__ == "__main__":
    main()

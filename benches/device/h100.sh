#!/usr/bin/env bash
# The prepared device run of issue 5: shutter's GPU path and its peers (PyTorch CUDA pinned,
# OpenCV, numpy, Pillow) on a lent NVIDIA machine, in one call of the `device` tool.
#
# That machine has no Rust and no network, but it has python3 with numpy, Pillow, OpenCV and a
# CUDA PyTorch. Here, before the call, once per session:
#
#   cargo build --release --locked
#   mkdir -p .gl /tmp/amd64/partial
#   o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
#   apt-get $o update && (cd .gl && apt-get $o download libvulkan1)
#
# Then the call (about 5 minutes of device time with the machine's start):
#
#   run(command="bash benches/device/h100.sh", carry=[".gl", "target/release/shutter"],
#       timeout_s=540)
#
# Two files come back in $OUT (the tool returns at most 8): summary.txt (the machine, the GPU
# check's verdict, the bench table, the peers' report with its ratios) and results.tar.gz
# (every JSON report and log).
# Copy what PERFORMANCE.md cites into the repo. Locally, `OUT=/tmp/x SHUTTER_DEVICE_DRY=1
# SHUTTER_DEVICE_SIZES=720p bash benches/device/h100.sh` runs the same steps on whatever
# adapter this machine has, without touching the system (no dpkg, no ldconfig).
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-target/device-out}
sizes=${SHUTTER_DEVICE_SIZES:-1080p 4k}
work=target/device-run
rm -rf "$work"
mkdir -p "$OUT" "$work"
bin=${SHUTTER_BIN:-target/release/shutter}

if [[ -z "${SHUTTER_DEVICE_DRY:-}" ]]; then
    # The Vulkan loader (the machine has NVIDIA's driver and ICD, not the loader).
    for f in .gl/*.deb; do dpkg -x "$f" /; done
    ldconfig
    icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
    if [[ -f $icd ]]; then
        export VK_DRIVER_FILES=$icd
    fi
fi
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp}

{
    date -Is
    nvidia-smi -L 2>&1 || true
    nproc
    "$bin" --version
    "$bin" devices 2>&1
} | tee "$work/device.txt"

# Round trips (RGBA, and RGB uploaded at 3 bytes a pixel), upload methods, the GPU pass alone and
# the copy bound, at 1080p and 4K; more frames in flight as a scan (the GPU thread's host copies
# overlap the GPU's work).
for size in $sizes; do
    for n in 3 6; do
        echo "== shutter bench $size, $n in flight" >&2
        timeout 90 "$bin" bench --size "$size" --device gpu --in-flight "$n" \
            --json >"$work/bench-$size-$n.json" 2>>"$work/bench.log" \
            || echo "bench $size $n failed: $?" | tee -a "$work/device.txt"
    done
done
# The ring's host copies on 1, 4, 8 and 16 threads (the default is 8 on 16 cores).
for t in 1 4 16; do
    echo "== shutter bench 1080p, 3 in flight, SHUTTER_COPY_THREADS=$t" >&2
    SHUTTER_COPY_THREADS=$t timeout 60 "$bin" bench --size "${sizes%% *}" --device gpu \
        --json >"$work/bench-copy-threads-$t.json" 2>>"$work/bench.log" \
        || echo "bench copy threads $t failed: $?" | tee -a "$work/device.txt"
done
first=${sizes%% *}
timeout 90 "$bin" bench --size "$first" --device both 2>>"$work/bench.log" \
    | tee "$work/bench-$first.txt"

# Correctness on this GPU, which CI never sees (it runs on lavapipe): every mode and filter,
# GPU against CPU, on 1x1, 3x7, 1366x768, 1080p and 4K (numpy only). Its verdict goes into the
# summary with any case that is not equal; every line is in the tarball.
timeout -k 5 240 "${SHUTTER_PEERS_PYTHON:-python3}" benches/device/gpu_check.py \
    --shutter "$bin" --work "$work/gpu-check" >"$work/gpu-check.txt" 2>&1
status=$?
[[ $status -eq 124 ]] && echo "gpu-check: stopped after 240 s" >>"$work/gpu-check.txt"
rm -rf "$work/gpu-check"
grep -v ': equal$' "$work/gpu-check.txt" | tee -a "$work/device.txt"

# The peers in the same run, with the machine's own python (no venv: no network there).
SHUTTER_PEERS_PYTHON=${SHUTTER_PEERS_PYTHON:-python3} SHUTTER_BIN="$bin" timeout 240 \
    benches/peers/run.sh --sizes "${sizes// /,}" --files 16 2>&1 | tee "$work/peers.txt"
cp target/peers/results.json target/peers/results.md "$work/" 2>/dev/null

# Decoding ahead on this machine's cores: 1080p PNGs -> npy, one decode thread and the default.
timeout -k 5 90 "${SHUTTER_PEERS_PYTHON:-python3}" benches/device/decode_ahead.py \
    --shutter "$bin" --work "$work/decode-ahead" >"$work/decode-ahead.txt" 2>&1 \
    || echo "decode-ahead failed or stopped: $?" >>"$work/decode-ahead.txt"
rm -rf "$work/decode-ahead"
cat "$work/device.txt" "$work/bench-$first.txt" "$work/peers.txt" "$work/decode-ahead.txt" \
    >"$OUT/summary.txt"
tar czf "$OUT/results.tar.gz" -C target device-run
exit 0

#!/usr/bin/env bash
# Runs shutter and its peers (the Gradio demo's numpy sepia, OpenCV, ffmpeg, Pillow, PyTorch CUDA
# when a GPU is present) on the same frames in one invocation, and prints fps and ratios.
#
#   benches/peers/run.sh [--sizes 720p,1080p,4k] [--files 16] [--dir-size 1080p] [--setup-only]
#
# Creates its own virtual environment under target/peers-venv (numpy, pillow,
# opencv-python-headless, imageio-ffmpeg for a static ffmpeg when the system has none; torch
# only when nvidia-smi sees a GPU), builds the release binary if
# it is missing, and writes the results to target/peers/results.json and results.md (the
# tables of PERFORMANCE.md). On a machine without network, SHUTTER_PEERS_PYTHON=python3 uses
# that interpreter's packages instead of the venv, and SHUTTER_BIN names a prebuilt binary.
set -euo pipefail
cd "$(dirname "$0")/../.."

if [[ -n "${SHUTTER_PEERS_PYTHON:-}" ]]; then
    # A machine without network (a lent GPU machine): its own python with the packages.
    if [[ "${1:-}" == "--setup-only" ]]; then
        exit 0
    fi
    mkdir -p target/peers
    exec "$SHUTTER_PEERS_PYTHON" benches/peers/peers.py --shutter "${SHUTTER_BIN:-target/release/shutter}" \
        --work target/peers "$@"
fi

venv=target/peers-venv
if [[ ! -x "$venv/bin/python" ]]; then
    python3 -m venv "$venv"
fi
want=(numpy pillow opencv-python-headless imageio-ffmpeg)
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    want+=(torch)
fi
if ! "$venv/bin/python" -c "import numpy, PIL, cv2, imageio_ffmpeg" >/dev/null 2>&1 \
    || { [[ " ${want[*]} " == *" torch "* ]] && ! "$venv/bin/python" -c "import torch" >/dev/null 2>&1; }; then
    "$venv/bin/python" -m pip install --quiet --upgrade pip
    "$venv/bin/python" -m pip install --quiet "${want[@]}"
fi
if [[ "${1:-}" == "--setup-only" ]]; then
    exit 0
fi

if [[ ! -x target/release/shutter ]]; then
    cargo build --release --locked
fi
mkdir -p target/peers
exec "$venv/bin/python" benches/peers/peers.py --shutter target/release/shutter --work target/peers "$@"

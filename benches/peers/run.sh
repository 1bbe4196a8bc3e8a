#!/usr/bin/env bash
# Runs shutter and its peers (the Gradio demo's numpy sepia, OpenCV, Pillow, PyTorch CUDA when
# a GPU is present) on the same frames in one invocation, and prints fps and ratios.
#
#   benches/peers/run.sh [--size 1080p] [--files 16] [--setup-only]
#
# Creates its own virtual environment under target/peers-venv (numpy, pillow,
# opencv-python-headless; torch only when nvidia-smi sees a GPU), builds the release binary if
# it is missing, and writes the results to target/peers/results.json.
set -euo pipefail
cd "$(dirname "$0")/../.."

venv=target/peers-venv
if [[ ! -x "$venv/bin/python" ]]; then
    python3 -m venv "$venv"
fi
want=(numpy pillow opencv-python-headless)
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    want+=(torch)
fi
if ! "$venv/bin/python" -c "import numpy, PIL, cv2" >/dev/null 2>&1 \
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

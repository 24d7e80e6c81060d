#!/usr/bin/env bash
# Idempotent set-up: system packages for headless Qt/OpenGL (when root and missing), a
# virtual environment at .venv, the CPU build of torch where no GPU is present, and the
# project with its test dependencies.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=.venv

debian_packages=(xvfb xauth libgl1-mesa-dri libglx-mesa0 libegl1 libxkbcommon-x11-0
  libxcb-cursor0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-randr0
  libxcb-render-util0 libxcb-shape0 libxcb-xinerama0 libxcb-xkb1 libfontconfig1 libdbus-1-3)
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  missing=()
  for p in "${debian_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "installing system packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
fi

[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
# pip compiles every installed module on one core (40 of the 100 s of a fresh set-up on 2
# cores); compileall on all cores afterwards takes 24 s (leaving it to the first imports
# made the tests 60 s slower)
pip=("$VENV/bin/python" -m pip --disable-pip-version-check -q)
install=("${pip[@]}" install --no-compile)
if ! "$VENV/bin/python" -c "import torch" 2>/dev/null; then
  if command -v nvidia-smi >/dev/null && nvidia-smi >/dev/null 2>&1; then
    "${install[@]}" torch
  else
    # the CPU build: a bare 'torch' would pull a multi-GB CUDA build
    "${install[@]}" "torch==2.13.0"
  fi
fi
stamp="$VENV/.installed-$(sha1sum pyproject.toml | cut -c1-12)"
if [ ! -f "$stamp" ]; then
  "${install[@]}" -e ".[testing]"
  "$VENV/bin/python" -m compileall -q -j 0 "$VENV/lib" >/dev/null 2>&1 || true
  "$VENV/bin/python" -c "import napari_cellseg, torch, napari"
  rm -f "$VENV"/.installed-* && touch "$stamp"
fi

#!/usr/bin/env bash
# Installs what jepa needs on Debian (12 "bookworm" or newer) if it is missing. Idempotent; needs
# root or sudo. Used by the README's quick start and by .ci/run.
#   build + tests:  cmake g++ libeigen3-dev libboost-test-dev xtensor-dev libxsimd-dev
#                   nlohmann-json3-dev libopenblas-dev libopenblas0-pthread libstb-dev
#                   FFmpeg's libraries (libav*-dev, video input) and the ffmpeg CLI (test videos)
#   optional (--torch): python3-torch python3-numpy, for the PyTorch baselines in benchmarks/ and
#                   for regenerating test fixtures with tools/make_encoder_fixtures.py
set -euo pipefail
pkgs=(cmake g++ make libeigen3-dev libboost-test-dev xtensor-dev libxsimd-dev nlohmann-json3-dev
      libopenblas-dev libopenblas0-pthread libstb-dev
      libavformat-dev libavcodec-dev libswscale-dev libavutil-dev ffmpeg pkg-config)
if [[ "${1:-}" == "--torch" ]]; then pkgs+=(python3-torch python3-numpy); fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  echo "jepa: all dependencies are installed"
  exit 0
fi
echo "jepa: installing ${missing[*]}"
SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "jepa: dependencies installed"

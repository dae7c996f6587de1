#!/usr/bin/env bash
# Installs what jepa needs on Debian (12 "bookworm" or newer) if it is missing. Idempotent; needs
# root or sudo. Used by the README's quick start and by .ci/run.
#   build + tests:  cmake g++ libeigen3-dev libboost-test-dev xtensor-dev libxsimd-dev
#                   nlohmann-json3-dev libdnnl-dev (oneDNN: the CPU GEMM provider) libopenblas-dev
#                   libopenblas0-pthread libstb-dev
#                   FFmpeg's libraries (libav*-dev, video input) and the ffmpeg CLI (test videos)
#                   openmpi-bin libopenmpi-dev (data-parallel training and its 2-rank tests)
#   package and docs tests: doxygen (apt), Conan 2 (PyPI, `python3 -m pip install conan`)
#   optional (--torch): python3-torch python3-numpy, for the PyTorch baselines in benchmarks/ and
#                   for regenerating test fixtures with tools/make_encoder_fixtures.py
set -euo pipefail
pkgs=(cmake g++ make libeigen3-dev libboost-test-dev xtensor-dev libxsimd-dev nlohmann-json3-dev
      libdnnl-dev libopenblas-dev libopenblas0-pthread libstb-dev
      libavformat-dev libavcodec-dev libswscale-dev libavutil-dev ffmpeg pkg-config doxygen
      openmpi-bin libopenmpi-dev)
if [[ "${1:-}" == "--torch" ]]; then pkgs+=(python3-torch python3-numpy); fi
need_conan=0
if ! command -v conan >/dev/null 2>&1 && [[ ! -x "$HOME/.local/bin/conan" ]]; then
  need_conan=1
  python3 -m pip --version >/dev/null 2>&1 || pkgs+=(python3-pip)
fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  echo "jepa: all apt dependencies are installed"
else
  echo "jepa: installing ${missing[*]}"
  SUDO=""
  if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  echo "jepa: dependencies installed"
fi
# Conan 2 for the package_conan test (tests/package/): from PyPI into the user's Python; Debian's own
# Python is "externally managed" (PEP 668) and needs --break-system-packages. Not fatal: without
# conan that one test reports itself skipped.
if ((need_conan)); then
  echo "jepa: installing conan (PyPI)"
  python3 -m pip install --quiet "conan>=2,<3" 2>/dev/null ||
    python3 -m pip install --quiet --break-system-packages "conan>=2,<3" ||
    echo "jepa: could not install conan; the package_conan test will be skipped"
fi

#!/usr/bin/env bash
# Installs the Debian packages Decoupled needs, only those missing; uses sudo when not root.
# Usage: scripts/install-deps.sh [extra-package ...]
set -euo pipefail
# The last three: the AArch64 C library, crt files and libgcc, and qemu-user, with which make test
# cross-compiles the NEON kernels (toolchain clang and ld.lld) and runs them (Tests/kernels-cross).
packages=(pkg-config libhdf5-dev libopenblas-dev libdnnl-dev python3-h5py python3-numpy gnuplot-nox dataset-fashion-mnist slurm-wlm munge chromium
          libc6-dev-arm64-cross libgcc-12-dev-arm64-cross qemu-user "$@")
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing Debian packages: ${missing[*]}"
sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "error: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
    sudo_cmd=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq </dev/null
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null

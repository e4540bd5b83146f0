#!/usr/bin/env bash
# Builds datasets/fashion-mnist-small.h5, the small dataset shipped with the repository so the
# default job runs with nothing else installed: a stratified subset of Fashion-MNIST with 1000
# training and 200 test images of each of the 10 classes (10000 + 2000), uint8, chunked + gzip,
# drawn with seed 0 by `decoupled data import fashion-mnist` (so the selection is reproducible:
# the same source files and seed give the same samples).
#
# Source: the Debian package dataset-fashion-mnist (/usr/share/datasets/fashion-mnist), or the
# directory given as the first argument (IDX files, .gz or not, as published by Zalando).
#
# Usage: scripts/datasets/make-fashion-mnist-small.sh [FASHION_MNIST_DIR] [DECOUPLED_BINARY]
set -euo pipefail
cd "$(dirname "$0")/../.."
src="${1:-/usr/share/datasets/fashion-mnist}"
bin="${2:-}"
if [ -z "$bin" ]; then
    swift build -c release --product decoupled >&2
    bin="$(swift build -c release --show-bin-path)/decoupled"
fi
"$bin" data import fashion-mnist --source "$src" \
    --train-per-class 1000 --test-per-class 200 --seed 0 \
    --layout chunked+gzip --gzip-level 9 \
    --output datasets/fashion-mnist-small.h5
"$bin" data inspect datasets/fashion-mnist-small.h5 >/dev/null
# Independent check with h5py: the file is readable outside the project and balanced.
/usr/bin/python3 - <<'PY'
import h5py, numpy as np
with h5py.File("datasets/fashion-mnist-small.h5", "r") as f:
    for split, per in (("train", 1000), ("test", 200)):
        y = f[split + "/y"][()]
        assert f[split + "/x"].shape == (10 * per, 784), f[split + "/x"].shape
        assert (np.bincount(y, minlength=10) == per).all(), np.bincount(y)
    assert int(f.attrs["num_classes"]) == 10
print("datasets/fashion-mnist-small.h5: ok")
PY

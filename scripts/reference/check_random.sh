#!/bin/sh
# Fresh random PyTorch cases against our replay (scripts/reference/README.md, "Random cases").
#
#   scripts/reference/check_random.sh [-n N] [-s SEED] [-o DIR] [-- SWIFT_TEST_OPTIONS...]
#
# Draws N cases (default 20) with SEED (default: a random one, printed so a failure can be
# reproduced), runs them with torch into DIR (default: a new temporary directory) via
# make_fixtures.py --random, then runs ConformanceTests with DECOUPLED_EXTRA_FIXTURES=DIR:
# every step of every case must match within 1e-6 of the tensor's scale, with the best
# kernel path and the scalar reference. Needs torch, numpy and h5py in $PYTHON (default
# /work/venv-ref/bin/python if it exists, else python3); CI does not run this.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
n=20
seed=""
out=""
while [ $# -gt 0 ]; do
    case "$1" in
        -n) n=$2; shift 2 ;;
        -s) seed=$2; shift 2 ;;
        -o) out=$2; shift 2 ;;
        --) shift; break ;;
        -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
        *) echo "check_random.sh: unknown argument '$1' (see --help)" >&2; exit 64 ;;
    esac
done
case "$n" in ''|*[!0-9]*|0) echo "check_random.sh: -n expects a positive integer, got '$n'" >&2; exit 64 ;; esac
if [ -z "$seed" ]; then
    seed=$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')
fi
case "$seed" in ''|*[!0-9]*) echo "check_random.sh: -s expects a non-negative integer, got '$seed'" >&2; exit 64 ;; esac
if [ -z "${PYTHON:-}" ]; then
    if [ -x /work/venv-ref/bin/python ]; then PYTHON=/work/venv-ref/bin/python; else PYTHON=python3; fi
fi
[ -n "$out" ] || out=$(mktemp -d "${TMPDIR:-/tmp}/decoupled-random.XXXXXX")

echo "== $n random PyTorch cases, seed $seed, into $out"
"$PYTHON" "$here/make_fixtures.py" --random "$n" --seed "$seed" --out "$out"
echo "== replaying them (ConformanceTests, DECOUPLED_EXTRA_FIXTURES=$out)"
cd "$repo"
DECOUPLED_EXTRA_FIXTURES="$out" swift test --filter ConformanceTests "$@"
echo "== all $n random cases (seed $seed) match"

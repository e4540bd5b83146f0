#!/usr/bin/env bash
# Installs or removes Decoupled under a prefix (`make install` / `make uninstall` call it).
#
#   scripts/install.sh install   DEST BINARY PLUGIN_LIBRARY...
#   scripts/install.sh uninstall DEST
#
# DEST is $(DESTDIR)$(PREFIX). The layout is the one the binary looks for relative to its
# own location (Sources/DecoupledCore/InstallLayout.swift):
#   DEST/bin/decoupled
#   DEST/lib/decoupled/plugins/*.so        the external plugins
#   DEST/share/decoupled/examples/         experiment configs, sweep and replay specs
#   DEST/share/decoupled/datasets/         the shipped Fashion-MNIST subset (and the full set
#                                          when `make data` made it), datasets/README.md
#   DEST/share/decoupled/scripts/bench/    the PyTorch and h5py benchmark scripts (and
#                                          scripts/reference/deepobs_quadratic.py, which
#                                          torch_train.py imports for quadratic_deep)
# Every installed file is listed (relative to DEST) in DEST/share/decoupled/installed-files,
# which `uninstall` reads, so it removes exactly what was installed and nothing a user added.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { echo "usage: $0 install DEST BINARY PLUGIN_LIBRARY... | $0 uninstall DEST" >&2; exit 2; }
[ $# -ge 2 ] || usage
action=$1 dest=$2
shift 2
[ -n "$dest" ] || { echo "error: empty destination prefix" >&2; exit 2; }
manifest="$dest/share/decoupled/installed-files"

case "$action" in
install)
    [ $# -ge 1 ] || usage
    binary=$1
    shift
    [ -x "$binary" ] || { echo "error: $binary is not an executable (build it first: make release)" >&2; exit 1; }
    [ $# -ge 1 ] || { echo "error: no plugin libraries given (build them first: make plugins)" >&2; exit 1; }
    installed=()
    put() { # MODE SOURCE RELATIVE-TARGET
        [ -f "$2" ] || { echo "error: $2 not found" >&2; exit 1; }
        install -D -m "$1" "$2" "$dest/$3"
        installed+=("$3")
    }
    put 755 "$binary" bin/decoupled
    for lib in "$@"; do put 644 "$lib" "lib/decoupled/plugins/$(basename "$lib")"; done
    for f in examples/*.toml; do put 644 "$f" "share/decoupled/$f"; done
    for f in datasets/README.md datasets/fashion-mnist-small.h5 scripts/bench/*.py scripts/reference/deepobs_quadratic.py; do put 644 "$f" "share/decoupled/$f"; done
    # The full Fashion-MNIST only when `make data` made it (about 55 MB).
    if [ -f datasets/fashion-mnist.h5 ]; then put 644 datasets/fashion-mnist.h5 share/decoupled/datasets/fashion-mnist.h5; fi
    printf '%s\n' "${installed[@]}" share/decoupled/installed-files >"$manifest"
    echo "installed ${#installed[@]} files under $dest (list: $manifest)"
    ;;
uninstall)
    [ $# -eq 0 ] || usage
    [ -f "$manifest" ] || { echo "error: $manifest not found: nothing installed under $dest by make install" >&2; exit 1; }
    count=0
    while IFS= read -r rel; do
        case "$rel" in ''|/*|*..*) echo "error: $manifest: refusing the entry '$rel'" >&2; exit 1 ;; esac
        if [ -e "$dest/$rel" ] || [ -L "$dest/$rel" ]; then rm -f -- "$dest/$rel"; count=$((count + 1)); fi
    done <"$manifest"
    # Directories the installation made, only once empty (a user's own plugins stay).
    for d in share/decoupled/scripts/bench share/decoupled/scripts/reference share/decoupled/scripts share/decoupled/datasets share/decoupled/examples \
             share/decoupled lib/decoupled/plugins lib/decoupled; do
        rmdir -- "$dest/$d" 2>/dev/null || true
    done
    echo "removed $count files under $dest"
    ;;
*) usage ;;
esac

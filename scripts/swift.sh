#!/usr/bin/env bash
# Runs `swift ARGS...` (the Makefile's builds) with one kind of SwiftPM warning dropped: "found N
# file(s) which are unhandled" about files inside a dependency's checkout (.build*/checkouts/),
# e.g. the CMakeLists.txt in swift-distributed-tracing's source folders, which Hummingbird
# brings in. Only that package's manifest could exclude them; our own package's warnings, and
# every other line, pass through unchanged. The exit status is swift's.
set -o pipefail
"${SWIFT:-swift}" "$@" 2>&1 | awk '
    function flush() { if (n && keep) for (i = 1; i <= n; i++) print held[i]; n = 0; keep = 0 }
    /^warning: .*: found [0-9]+ file\(s\) which are unhandled; / { flush(); held[++n] = $0; next }
    n && /^    / { held[++n] = $0; if ($0 !~ /\/\.build[^\/]*\/checkouts\//) keep = 1; next }
    { flush(); print; fflush() }
    END { flush() }'

#!/usr/bin/env bash
# Re-captures the golden cases (root needed): each case is a real run of a workload under
# `observer run`, reduced to what `observer analyze` reads (events.bin, preflight.json) plus the
# expected classification.json and report.txt. Run from the repository root after
# `cargo build --release -p observer`; review the diff of the expected files before committing.
set -euo pipefail
root=$(pwd)
obs="$root/target/release/observer"
bin=$(mktemp -d)
for w in threads va_probe segv_readonly; do cc -O2 -pthread -o "$bin/$w" "tests/workloads/$w.c"; done
capture() { # case, observer args...
    local case=$1; shift
    local tmp; tmp=$(mktemp -d)
    # A minimal environment keeps the preflight small and free of the machine's secrets.
    env -i PATH=/usr/bin:/bin "$obs" run -q --out "$tmp/run" "$@" || true
    mkdir -p "tests/data/$case"
    cp "$tmp/run/events.bin" "$tmp/run/preflight.json" "$tmp/run/classification.json" "$tmp/run/report.txt" "tests/data/$case/"
    rm -rf "$tmp"
}
capture data-limit -- prlimit --data=41943040 "$bin/threads" 8
capture as-limit -- prlimit --as=62914560 "$bin/threads" 8
cg=/sys/fs/cgroup/pids/observer-golden; mkdir -p $cg; echo 4 > $cg/pids.max
capture pids-cgroup --cgroup $cg -- "$bin/threads" 16 hold
rmdir $cg
capture va-probe -- "$bin/va_probe"
capture segfault -- "$bin/segv_readonly"
capture exit-nonzero -- sh -c 'exit 3'
capture sibling-kill -- sh -c 'sleep 30 & v=$!; env kill -KILL $v; wait $v; exit 0'
rm -rf "$bin"

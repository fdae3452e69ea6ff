#!/usr/bin/env bash
# A brief fuzz run of every target in fuzz/ (CI's "fuzz briefly" step; issues 12 and 13), on
# stable Rust: the targets are built with the coverage flags cargo-fuzz passes (fuzz/README.md)
# and each libFuzzer binary runs for SECONDS (default 30) from an empty corpus in a scratch
# folder, plus the target's committed seeds (fuzz/seeds/TARGET/, when there are any).
# Long runs: `cargo +nightly fuzz run TARGET` (fuzz/README.md).
# Exit status: 0 when no target crashed, hung or leaked out of its sandbox; else 1, with the
# target named and libFuzzer's crash file kept under fuzz/artifacts/TARGET/.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds="${1:-30}"
host=x86_64-unknown-linux-gnu
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing"
cargo build --release --target "$host" --bins
targets=$(sed -n 's/^name = "\(.*\)"$/\1/p' Cargo.toml | grep -v '^strata-fuzz$')
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
failed=()
for t in $targets; do
    mkdir -p "$scratch/$t" "artifacts/$t"
    seeds=()
    [ -d "seeds/$t" ] && seeds=("seeds/$t")
    if "target/$host/release/$t" -max_total_time="$seconds" -timeout=10 -artifact_prefix="artifacts/$t/" \
        "$scratch/$t" "${seeds[@]}" >"$scratch/$t.log" 2>&1; then
        echo "fuzz $t: $(grep -o 'Done [0-9]* runs in [0-9]* second(s)' "$scratch/$t.log" || echo done), no crash"
    else
        tail -20 "$scratch/$t.log"
        echo "fuzz $t: FAILED (crash input in fuzz/artifacts/$t/)"
        failed+=("$t")
    fi
done
[ ${#failed[@]} -eq 0 ]

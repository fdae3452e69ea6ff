#!/usr/bin/env bash
# The README's test command: installs what the tests need (scripts/install-deps.sh), builds the
# Debian test guest when build/guest lacks it (scripts/build-guest.sh; the snapshot and lockstep
# tests boot it), then runs the whole test suite and the full TestFloat run, both with the `ci`
# profile. Arguments go to `cargo test` (for example `--no-fail-fast`).
# Exit status: 0 when everything passed; 1 when a package is missing and cannot be installed
# (the message names it) or any test fails.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
if [ ! -f build/guest/vmlinuz ] || [ ! -f build/guest/initramfs-marker.cpio.gz ] || [ ! -f build/guest/modules ] || [ ! -f build/guest/root.qcow2 ]; then
    scripts/install-deps.sh --guest
    scripts/build-guest.sh build/guest
fi
# Issue 14: the i386 guest (conformance/tests/i386_boot.rs boots it).
if [ ! -f build/guest-i386/vmlinuz ] || [ ! -f build/guest-i386/vmlinuz-686 ] || [ ! -f build/guest-i386/initramfs-marker.cpio.gz ]; then
    scripts/install-deps.sh --guest
    scripts/build-guest.sh --i386 build/guest-i386
fi
cargo test --workspace --profile ci "$@"
cargo run --profile ci -p testfloat

#!/usr/bin/env bash
# Boots the Debian test guest (scripts/build-guest.sh) on tier 0 to its marker line and a clean
# power-off, and prints the boot timeline. Exit status 0 only if the marker was seen and strata
# exited 0. Usage: scripts/boot-test.sh STRATA_BINARY [GUEST_DIR]
set -euo pipefail
strata=$(realpath "$1")
guest=$(realpath -m "${2:-build/guest}")
[ -f "$guest/vmlinuz" ] || "$(dirname "$0")/build-guest.sh" "$guest"
marker=$(cat "$guest/marker")
serial=$(mktemp)
trap 'rm -f "$serial"' EXIT
set +e
"$strata" run --kernel "$guest/vmlinuz" --initrd "$guest/initramfs-marker.cpio.gz" \
    --append "console=ttyS0 quiet" --mem 256M --serial "file:$serial" --marker "$marker" \
    --timeline --timeline-json "$guest/timeline.json" --timeline-svg "$guest/timeline.svg" 2> "$guest/boot.log"
status=$?
set -e
grep -v '^strata-trace' "$guest/boot.log" | grep -E 'time \(ms\)|machine ready|kernel loaded|first instruction|first serial|Run /init|marker:|power-off|reset|triple|limit' || true
if grep -q "$marker" "$serial" && [ "$status" = 0 ]; then
    echo "boot: marker reached, clean power-off"
else
    echo "boot: FAILED (exit $status); serial output:"; tail -40 "$serial"; tail -20 "$guest/boot.log"
    exit 1
fi

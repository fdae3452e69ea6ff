#!/usr/bin/env bash
# Boots the Debian test guest (scripts/build-guest.sh) on tier 0 to its marker line and a clean
# power-off, and prints the boot timeline. Exit status 0 only if the marker was seen, strata
# exited 0, the power-off went through ACPI S5, and the kernel's console log (warnings and errors
# only: the guest boots with "quiet") has none of the platform complaints a real PC does not
# cause: an unknown CPU vendor, "mce: Unable to init", an ACPI error or a missing RSDP.
# Usage: scripts/boot-test.sh STRATA_BINARY [GUEST_DIR]
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
complaints=$(grep -E "vendor_id .* unknown|Your system may be unstable|mce: Unable to init|ACPI BIOS Error|ACPI Error|RSDP was not found|unchecked MSR access" "$serial" || true)
if [ -n "$complaints" ]; then
    echo "boot: FAILED: the kernel complained about the platform:"; echo "$complaints"
    exit 1
fi
if ! grep -q "power-off (ACPI S5)" "$guest/boot.log"; then
    echo "boot: FAILED: the guest's power-off did not go through ACPI S5"; tail -20 "$guest/boot.log"
    exit 1
fi
if grep -q "$marker" "$serial" && [ "$status" = 0 ]; then
    echo "boot: marker reached, power-off through ACPI S5, no platform complaint in the kernel log"
else
    echo "boot: FAILED (exit $status); serial output:"; tail -40 "$serial"; tail -20 "$guest/boot.log"
    exit 1
fi

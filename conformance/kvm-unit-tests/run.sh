#!/usr/bin/env bash
# Runs kvm-unit-tests' x86-64 single-CPU tests under Strata and under QEMU TCG, and prints a
# PASS/FAIL/SKIP table with one column per VMM.
#
# Usage: conformance/kvm-unit-tests/run.sh SUITE_DIR [TEST...]
#   SUITE_DIR: a built kvm-unit-tests tree (./configure --arch=x86_64 && make), never part of
#   this project. TESTs: names from its x86/unittests.cfg (default: all of them).
# Environment: STRATA (default target/ci/strata), QEMU (default qemu-system-x86_64, "none" to
#   run Strata only), TIMEOUT (overrides each test's timeout), LOGDIR (default
#   target/kvm-unit-tests-logs: each run's output, NAME.strata.log / NAME.qemu.log), BIOS (the
#   BIOS image Strata boots each test through, with QEMU's multiboot_dma.bin option ROM, as QEMU
#   always does; default Debian's /usr/share/seabios/bios-256k.bin when installed; "none":
#   Strata's direct Multiboot load, faster, but `realmode` then waits for the PIT set-up SeaBIOS
#   does).
#
# What the suite's own runner (run_tests.sh, scripts/runtime.bash, x86/run) does, done here the
# same way: read each [section] of x86/unittests.cfg (file, smp, test_args, qemu_params /
# extra_params, arch, groups, accel, check, timeout); keep x86-64 tests with one CPU; skip
# `nodefault` groups, accel=kvm tests (ACCEL=tcg), and tests whose `check` files do not hold the
# value; pass an environment file (the suite's -initrd) with ERRATA_FORCE=y as it does under
# TCG; run under `timeout`; map the exit status as qemu_fixup_return_code does: 1 (isa-debug-exit
# value 0) is PASS, 77 ((38 << 1) | 1, report_summary's "all skipped") is SKIP, 124 is a
# timeout, anything else FAIL, and print the test's SUMMARY line.
#
# Strata gets the same kernel, arguments and environment (`strata run --kernel x86/NAME.flat
# --append ARGS --initrd ENV --device pc-testdev --device pci-testdev --device isa-debug-exit,iobase=0xf4,iosize=0x4`);
# of the QEMU parameters it takes -m (as --mem) and the CPU vendor of -cpu (GenuineIntel or an
# Intel model: --cpu broadwell; max: --cpu sapphirerapids; otherwise its default AMD k8); CPU feature flags and other
# devices are not translated (Strata's CPU reports what it implements).
set -u

if [ $# -lt 1 ] || [ -z "${1:-}" ]; then
    echo "kvm-unit-tests: SKIP: no suite given (usage: $0 SUITE_DIR [TEST...]; build kvm-unit-tests beside the project first)"
    exit 0
fi
SUITE=$(cd "$1" && pwd) || { echo "kvm-unit-tests: $1: no such directory" >&2; exit 1; }
shift
CFG="$SUITE/x86/unittests.cfg"
[ -f "$CFG" ] || { echo "kvm-unit-tests: $CFG not found (is $SUITE a built kvm-unit-tests tree?)" >&2; exit 1; }
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
STRATA=${STRATA:-$ROOT/target/ci/strata}
QEMU=${QEMU:-qemu-system-x86_64}
if [ -z "${BIOS+set}" ]; then
    BIOS=/usr/share/seabios/bios-256k.bin
    [ -f "$BIOS" ] || BIOS=none
fi
[ "$BIOS" = none ] && BIOS=
LOGDIR=${LOGDIR:-$ROOT/target/kvm-unit-tests-logs}
mkdir -p "$LOGDIR"
[ -x "$STRATA" ] || { echo "kvm-unit-tests: $STRATA not found (cargo build --profile ci -p strata)" >&2; exit 1; }
ONLY=" $* "

# The suite's environment file, as scripts/arch-run.bash builds it for ACCEL=tcg.
ENVF="$LOGDIR/env"
{
    echo "TARGET=qemu"
    echo "QEMU_ACCEL=tcg"
    if [ "$QEMU" != none ]; then
        v=$("$QEMU" -version | head -1)
        echo "QEMU_VERSION_STRING=$v"
        IFS='[ .]' read -r _ _ _ maj min mic _ <<<"$v"
        echo "QEMU_MAJOR=$maj"; echo "QEMU_MINOR=$min"; echo "QEMU_MICRO=$mic"
    fi
    echo "KERNEL_VERSION_STRING=$(uname -r)"
    echo "ERRATA_FORCE=y"
} >"$ENVF"

# Maps an exit status (and the log) to PASS/FAIL/SKIP with the SUMMARY line, as runtime.bash.
verdict() { # status serial-log stderr-log vmm
    local ret=$1 log=$2 err=$3 vmm=$4 summary
    summary=$(tail -5 "$log" | grep -a '^SUMMARY: ' | sed 's/^SUMMARY: /(/;s/\r\{0,1\}$/)/')
    # Status 1 can be the VMM's own error (both exit 1 on a bad command line), not the test's
    # success. QEMU: anything but warnings on stderr, as qemu_fixup_return_code. Strata prints
    # diagnostics there (an instruction it raised #UD for), so for it: no guest output at all.
    if [ "$ret" = 1 ]; then
        if { [ "$vmm" = qemu ] && grep -qvi warning "$err"; } || { [ "$vmm" = strata ] && [ ! -s "$log" ]; }; then
            echo "FAIL ($(head -1 "$err" | cut -c1-60))"
            return
        fi
    fi
    case $ret in
        1) echo "PASS $summary" ;;
        77) echo "SKIP $summary" ;;
        124) echo "FAIL (timeout)" ;;
        *) echo "FAIL $summary" ;;
    esac
}

# Strata's options for a test's QEMU parameters.
strata_params() {
    local p=($1) i out=()
    for ((i = 0; i < ${#p[@]}; i++)); do
        case ${p[i]} in
            -m)
                # QEMU's -m counts MiB when no suffix is given; Strata's --mem wants one.
                local m=${p[i + 1]}
                [[ $m =~ ^[0-9]+$ ]] && m=${m}M
                out+=(--mem "$m"); i=$((i + 1)) ;;
            -cpu)
                case ${p[i + 1]} in
                    # QEMU's "max" under TCG offers SMAP, PKU and PKS: Strata's newest model.
                    max | max,*) out+=(--cpu sapphirerapids) ;;
                    *GenuineIntel* | IvyBridge* | Skylake*) out+=(--cpu broadwell) ;;
                esac
                i=$((i + 1)) ;;
            -machine | -M | -device | -overcommit) i=$((i + 1)) ;;
        esac
    done
    echo "${out[@]}"
}

run_one() { # name file smp test_args params timeout
    local name=$1 kernel=$SUITE/x86/$2 args=$4 params=$5 tmo=${TIMEOUT:-$6}
    local qlog="$LOGDIR/$name.qemu.log" slog="$LOGDIR/$name.strata.log" s q ret
    local qerr="$LOGDIR/$name.qemu.err" serr="$LOGDIR/$name.strata.err"
    # shellcheck disable=SC2046
    timeout -k 1s --foreground "$tmo" "$STRATA" run --kernel "$kernel" ${args:+--append "$args"} \
        --initrd "$ENVF" --device pc-testdev --device pci-testdev --device isa-debug-exit,iobase=0xf4,iosize=0x4 \
        ${BIOS:+--bios "$BIOS"} $(strata_params "$params") </dev/null >"$slog" 2>"$serr"
    ret=$?
    s=$(verdict $ret "$slog" "$serr" strata)
    if [ "$QEMU" = none ]; then
        q="-"
    else
        # shellcheck disable=SC2086
        eval timeout -k 1s --foreground "$tmo" "$QEMU" --no-reboot -nodefaults -device pc-testdev \
            -device isa-debug-exit,iobase=0xf4,iosize=0x4 -display none -serial stdio \
            -device pci-testdev -machine accel=tcg -kernel "$kernel" -smp 1 $params \
            ${args:+-append "\"$args\""} -initrd "$ENVF" </dev/null >"$qlog" 2>"$qerr"
        ret=$?
        q=$(verdict $ret "$qlog" "$qerr" qemu)
    fi
    printf '| %-28s | %-24s | %-24s |\n' "$name" "$s" "$q"
}

skip_row() {
    printf '| %-28s | %-24s | %-24s |\n' "$1" "SKIP ($2)" "SKIP ($2)"
}

consider() { # name file smp test_args params arch groups accel check timeout
    local name=$1 file=$2 smp=$3 args=$4 params=$5 arch=$6 groups=$7 accel=$8 check=$9 tmo=${10}
    [ -z "$name" ] && return
    [ "$ONLY" != "  " ] && [[ $ONLY != *" $name "* ]] && return
    [ -n "$arch" ] && [ "$arch" != x86_64 ] && return
    # Single-CPU tests only ($MAX_SMP-style expressions are evaluated with one CPU).
    smp=$(MAX_SMP=1 eval echo "\$(( ${smp:-1} ))" 2>/dev/null || echo "$smp")
    [ "$smp" != 1 ] && return
    [[ " $groups " == *" nodefault "* ]] && { skip_row "$name" "nodefault"; return; }
    [ -n "$accel" ] && [ "$accel" != tcg ] && { skip_row "$name" "$accel only"; return; }
    local c
    for c in $check; do
        if [ ! -f "${c%%=*}" ] || [ "$(cat "${c%%=*}")" != "${c#*=}" ]; then
            skip_row "$name" "check ${c%%=*}"; return
        fi
    done
    run_one "$name" "$file" "$smp" "$args" "$params" "$tmo"
}

printf '| %-28s | %-24s | %-24s |\n' test Strata "QEMU TCG"
printf '|%s|%s|%s|\n' "------------------------------" "--------------------------" "--------------------------"
name="" file="" smp="" args="" params="" arch="" groups="" accel="" check="" tmo=90s
while IFS= read -r line || [ -n "$line" ]; do
    if [[ $line =~ ^\[(.*)\]$ ]]; then
        consider "$name" "$file" "$smp" "$args" "$params" "$arch" "$groups" "$accel" "$check" "$tmo"
        name=${BASH_REMATCH[1]} file="" smp="" args="" params="" arch="" groups="" accel="" check="" tmo=90s
    elif [[ $line =~ ^file\ *=\ *(.*)$ ]]; then file=${BASH_REMATCH[1]}
    elif [[ $line =~ ^smp\ *=\ *(.*)$ ]]; then smp=${BASH_REMATCH[1]}
    elif [[ $line =~ ^test_args\ *=\ *(.*)$ ]]; then args=$(eval echo "${BASH_REMATCH[1]}")
    elif [[ $line =~ ^(extra_params|qemu_params)\ *=\ *(.*)$ ]]; then params=${BASH_REMATCH[2]}
    elif [[ $line =~ ^arch\ *=\ *(.*)$ ]]; then arch=${BASH_REMATCH[1]}
    elif [[ $line =~ ^groups\ *=\ *(.*)$ ]]; then groups=${BASH_REMATCH[1]}
    elif [[ $line =~ ^accel\ *=\ *(.*)$ ]]; then accel=${BASH_REMATCH[1]}
    elif [[ $line =~ ^check\ *=\ *(.*)$ ]]; then check=${BASH_REMATCH[1]}
    elif [[ $line =~ ^timeout\ *=\ *(.*)$ ]]; then tmo=${BASH_REMATCH[1]}
    fi
done <"$CFG"
consider "$name" "$file" "$smp" "$args" "$params" "$arch" "$groups" "$accel" "$check" "$tmo"

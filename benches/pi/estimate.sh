#!/usr/bin/env bash
# A Raspberry Pi estimate without a Pi (issue 20): guest instructions per analysis stage of
# one track, counted under qemu-user with benches/pi/insn_count.c, for the arm64 build (as a
# Cortex-A72, the Pi 4's core, and a Cortex-A76, the Pi 5's) and the x86-64 build; this
# machine's CPU time for the same commands natively; and from them files per hour on a Pi.
#
#   benches/pi/estimate.sh FILE [ARM64_BINARY (target/aarch64-unknown-linux-gnu/box/playlista)]
#
# Stages, each the difference of two runs (`inspect` given the file once and twice, so
# process start and model load drop out): the fast features (decoding included), full mode
# with a budget of 1 patch and of 2 (their difference: the front end and the network for one
# patch). Needs qemu-user, a C compiler and the aarch64 runtime (/usr/aarch64-linux-gnu).
set -euo pipefail
cd "$(dirname "$0")/../.."
file=$(realpath "$1")
arm=${2:-target/aarch64-unknown-linux-gnu/box/playlista}
x86=target/release/playlista
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cc -shared -fPIC -O2 -o "$work/insn_count.so" benches/pi/insn_count.c

count() { # count QEMU_ARGS... -- PLAYLISTA_ARGS...: guest instructions
  local q=()
  while [ "$1" != "--" ]; do q+=("$1"); shift; done
  shift
  "${q[@]}" -plugin "$work/insn_count.so" "$@" 2>&1 >/dev/null |
    sed -n 's/^guest instructions: //p'
}
cpu() { # PLAYLISTA_ARGS...: CPU seconds natively (user + system), median of 3
  for _ in 1 2 3; do
    /usr/bin/time -f "%U %S" "$x86" "$@" 2>&1 >/dev/null | tail -1 | awk '{print $1 + $2}'
  done | sort -n | sed -n 2p
}
per_track_cpu() { # PLAYLISTA_ARGS...: native CPU seconds per track (5 copies minus 1)
  echo "($(cpu "$@" "$file" "$file" "$file" "$file" "$file") - $(cpu "$@" "$file")) / 4" | bc -l
}
stage() { # RUNNER...: per-track instructions of fast, full/1, full/2 (once and twice, minus)
  local r=("$@") out=()
  for args in "inspect" "inspect --full --embedding_coverage 1" \
    "inspect --full --embedding_coverage 2"; do
    # shellcheck disable=SC2086
    local one two
    one=$(count "${r[@]}" $args "$file")
    two=$(count "${r[@]}" $args "$file" "$file")
    out+=($((two - one)))
  done
  echo "${out[@]}"
}

seconds=$("$x86" inspect --json "$file" | python3 -c 'import json,sys; print(json.load(sys.stdin)["duration_s"])')
read -r a72_fast a72_one a72_two < <(stage qemu-aarch64 -L /usr/aarch64-linux-gnu -cpu cortex-a72 -- "$arm")
read -r a76_fast a76_one a76_two < <(stage qemu-aarch64 -L /usr/aarch64-linux-gnu -cpu cortex-a76 -- "$arm")
# -cpu max: AVX2 and FMA, so tract takes the kernels it takes natively here.
read -r x86_fast x86_one x86_two < <(stage qemu-x86_64 -cpu max -- "$x86")
t_fast=$(per_track_cpu inspect)
t_two=$(per_track_cpu inspect --full --embedding_coverage 2)
mhz=$(grep -m1 "cpu MHz" /proc/cpuinfo | awk '{print $4}')

python3 - "$seconds" "$mhz" "$t_fast" "$t_two" \
  "$a72_fast" "$a72_one" "$a72_two" "$a76_fast" "$a76_one" "$a76_two" \
  "$x86_fast" "$x86_one" "$x86_two" <<'PY'
import sys
secs, mhz, t_fast, t_two = map(float, sys.argv[1:5])
c = list(map(float, sys.argv[5:]))
arch = {"arm64 (A72)": c[0:3], "arm64 (A76)": c[3:6], "x86-64": c[6:9]}
PATCHES = 9.5           # mean patches a track runs (examples/embedding_bench.rs)
TRACK = 240.0           # a 4-minute track, as the original's performance table counts
def per_track(fast, one, two):
    patch = two - one                       # front end + network, one patch
    rest_full = one - patch - fast          # timbre (and what else scales with the audio)
    scale = TRACK / secs
    return {"fast": fast * scale, "timbre": rest_full * scale, "patch": patch,
            "full": (fast + rest_full) * scale + PATCHES * patch}
print(f"track: {secs:.1f} s of audio; per-track figures scaled to {TRACK:.0f} s, "
      f"{PATCHES} patches")
print(f"{'build':<12} {'fast Minsn':>11} {'timbre Minsn':>13} {'patch Minsn':>12} {'full Minsn':>11}")
rows = {}
for name, (fast, one, two) in arch.items():
    r = per_track(fast, one, two)
    rows[name] = r
    print(f"{name:<12} {r['fast']/1e6:>11.0f} {r['timbre']/1e6:>13.0f} {r['patch']/1e6:>12.1f} "
          f"{r['full']/1e6:>11.0f}")
x = rows["x86-64"]
ips = (x["fast"] * secs / TRACK) / t_fast if t_fast > 0 else float("nan")
ipc = ips / (mhz * 1e6)
print(f"this machine: {ips/1e9:.2f} G x86 insn/s on the fast stage ({t_fast:.2f} s CPU), "
      f"IPC {ipc:.2f} at {mhz:.0f} MHz; full mode with 2 patches: {t_two:.2f} s CPU")
# Pi cores: clock and the range of instructions per cycle assumed for this code (A72: a
# 3-wide out-of-order core, 0.8-1.4 on DSP and GEMM loops; A76: 4-wide, 1.2-2.0).
pis = {"Pi 4 (4x A72, 1.8 GHz)": ("arm64 (A72)", 1.8e9, 0.8, 1.4, 4),
       "Pi 5 (4x A76, 2.4 GHz)": ("arm64 (A76)", 2.4e9, 1.2, 2.0, 4)}
for pi, (build, hz, lo, hi, cores) in pis.items():
    r = rows[build]
    for mode in ("fast", "full"):
        for workers in (2, cores):
            slow = 3600 * workers / (r[mode] / (hz * lo))
            fast = 3600 * workers / (r[mode] / (hz * hi))
            print(f"{pi}: {mode} mode, {workers} workers: {slow:,.0f}-{fast:,.0f} files/hour "
                  f"(4-minute tracks)")
PY

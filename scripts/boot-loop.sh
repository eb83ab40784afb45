#!/usr/bin/env bash
# Boots one image N times in a row with `pimg boot --json` and prints each boot's verdict and
# wall time, the stalls (first boots pimg retried) and failures, and the time distribution:
# the check that a boot verdict does not fail at random.
#
#   scripts/boot-loop.sh IMAGE [N] [pimg boot options...]     (N defaults to 20)
#
# Example: scripts/boot-loop.sh out/rpi0.img 20 --machine raspi0
set -euo pipefail
[ $# -ge 1 ] || { sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
image=$1
n=${2:-20}
shift $(($# >= 2 ? 2 : 1))
root=$(cd "$(dirname "$0")/.." && pwd)
pimg=${PIMG:-$root/target/release/pimg}
[ -x "$pimg" ] || (cd "$root" && cargo build --release --locked --quiet)
command -v jq >/dev/null || { echo "boot-loop.sh: needs jq (apt-get install jq)" >&2; exit 2; }
times=() stalls=0 failed=0
for i in $(seq "$n"); do
    r=$("$pimg" boot "$image" --json "$@" 2>/dev/null || true)
    wall=$(jq -r '.wall_ms // empty' <<<"$r")
    fail=$(jq -r '.failure // empty' <<<"$r")
    retry=$(jq -r '.retried_after // empty' <<<"$r")
    [ -n "$retry" ] && stalls=$((stalls + 1))
    if [ -n "$fail" ] || [ -z "$wall" ]; then
        failed=$((failed + 1))
        printf 'boot %2d: FAILED %s%s\n' "$i" "${fail:-no report}" "${retry:+ (after a stall: $retry)}"
    else
        times+=("$wall")
        printf 'boot %2d: ok in %.1f s%s\n' "$i" "$(awk -v m="$wall" 'BEGIN{print m/1000}')" "${retry:+ (booted twice: $retry)}"
    fi
done
printf 'boots: %d, passed: %d, failed: %d, stalled first boots (retried): %d\n' \
    "$n" $((n - failed)) "$failed" "$stalls"
if [ ${#times[@]} -gt 0 ]; then
    printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1/1000} END {
        printf "wall time of passing boots: min %.1f s, median %.1f s, max %.1f s\n", a[1], a[int((NR+1)/2)], a[NR] }'
fi
[ "$failed" = 0 ]

#!/usr/bin/env bash
# Runs virtmem's `ops` benchmarks and prints the virtmem/raw ratio of every pair, from
# criterion's median point estimates (target/criterion/<group>/<fn>/new/estimates.json).
#
#   scripts/bench-ratios.sh                  # run everything once, then print the table
#   scripts/bench-ratios.sh --rounds 3       # run 3 times; report the median of the per-round
#                                            # ratios (steadier on a noisy machine)
#   scripts/bench-ratios.sh query10k         # other arguments go to criterion (a filter here)
#   scripts/bench-ratios.sh --report-only    # only print the table from the last run
#
# threads2: scaling = 2-thread throughput / 1-thread throughput = 2 × t(1t) / t(2t), where one
# iteration is one alloc64k cycle on each thread; the goal is scaling(virtmem)/scaling(raw) ≥ 0.9.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

rounds=1
run=1
args=()
while (($#)); do
    case "$1" in
        --rounds) rounds="$2"; shift 2 ;;
        --report-only) run=0; shift ;;
        *) args+=("$1"); shift ;;
    esac
done

command -v jq >/dev/null || { echo "bench-ratios: jq is needed to read criterion's JSON" >&2; exit 1; }
crit="${CARGO_TARGET_DIR:-$root/target}/criterion"

# Median point estimate in ns of <group>/<fn>, or empty if that benchmark has not run.
median() {
    local f="$crit/$1/$2/new/estimates.json"
    if [[ -f "$f" ]]; then jq -r '.median.point_estimate' "$f"; fi
}

pairs=(alloc64k:1.15 query10k:4 protect_toggle:1.10 reserve1t:2)

# One line per figure of the last run: "<key> <value>", key = <group>.{v,r,ratio} or threads2.*.
collect() {
    local p g v r
    for p in "${pairs[@]}"; do
        g="${p%%:*}"
        v="$(median "$g" virtmem)" r="$(median "$g" raw)"
        [[ -n "$v" && -n "$r" ]] || continue
        awk -v g="$g" -v v="$v" -v r="$r" 'BEGIN { print g ".v", v; print g ".r", r; print g ".ratio", v / r }'
    done
    local v1 v2 r1 r2
    v1="$(median threads2 virtmem_1t)" v2="$(median threads2 virtmem_2t)"
    r1="$(median threads2 raw_1t)" r2="$(median threads2 raw_2t)"
    if [[ -n "$v1" && -n "$v2" && -n "$r1" && -n "$r2" ]]; then
        awk -v v1="$v1" -v v2="$v2" -v r1="$r1" -v r2="$r2" 'BEGIN {
            sv = 2 * v1 / v2; sr = 2 * r1 / r2
            print "threads2.v1", v1; print "threads2.v2", v2; print "threads2.r1", r1; print "threads2.r2", r2
            print "threads2.sv", sv; print "threads2.sr", sr; print "threads2.ratio", sv / sr
            print "threads2.c1", v1 / r1; print "threads2.c2", v2 / r2 }'
    fi
}

figures="$(mktemp)"
trap 'rm -f "$figures"' EXIT
if ((run)); then
    for ((i = 1; i <= rounds; i++)); do
        ((rounds == 1)) || echo "=== round $i of $rounds ===" >&2
        if ! cargo bench -p virtmem --bench ops -- "${args[@]}"; then
            echo "bench-ratios: cargo bench failed in round $i" >&2
            ((i > 1)) || exit 1
            break
        fi
        collect >>"$figures"
    done
else
    collect >>"$figures"
fi

# Median over rounds of <key>, and the list of per-round values of <key>.
med() {
    awk -v k="$1" '$1 == k { print $2 }' "$figures" | sort -g |
        awk '{ x[++n] = $1 } END { if (n) printf "%.3f", (n % 2) ? x[(n + 1) / 2] : (x[n / 2] + x[n / 2 + 1]) / 2 }'
}
each() { awk -v k="$1" '$1 == k { printf "%s%.3f", (n++ ? " " : ""), $2 }' "$figures"; }
ok() { awk -v v="$1" -v g="$3" -v op="$2" 'BEGIN { r = (op == "<=") ? (v <= g) : (v >= g); print r ? "yes" : "NO" }'; }

n="$(awk '$1 ~ /\.ratio$/ { c[$1]++ } END { m = 0; for (k in c) if (c[k] > m) m = c[k]; print m }' "$figures")"
echo
[[ "$n" -gt 1 ]] && echo "medians over $n rounds (per-round ratios in brackets)"
printf '%-15s %14s %14s %8s %8s %5s\n' group virtmem raw ratio goal met
printf '%-15s %14s %14s %8s %8s %5s\n' --------------- -------------- -------------- -------- -------- -----
for p in "${pairs[@]}"; do
    g="${p%%:*}" goal="${p##*:}"
    ratio="$(med "$g.ratio")"
    if [[ -z "$ratio" ]]; then
        printf '%-15s %14s\n' "$g" "(not run)"
        continue
    fi
    printf '%-15s %11.1f ns %11.1f ns %8s %8s %5s' "$g" "$(med "$g.v")" "$(med "$g.r")" \
        "$ratio" "<= $goal" "$(ok "$ratio" "<=" "$goal")"
    [[ "$n" -gt 1 ]] && printf '  [%s]' "$(each "$g.ratio")"
    echo
done

if [[ -n "$(med threads2.ratio)" ]]; then
    printf '\nthreads2 (ns per iteration = one alloc64k cycle on each thread)\n'
    printf '%-15s %14s %14s %8s\n' "" "1 thread" "2 threads" scaling
    printf '%-15s %11.1f ns %11.1f ns %8s\n' virtmem "$(med threads2.v1)" "$(med threads2.v2)" "$(med threads2.sv)"
    printf '%-15s %11.1f ns %11.1f ns %8s\n' raw "$(med threads2.r1)" "$(med threads2.r2)" "$(med threads2.sr)"
    sratio="$(med threads2.ratio)"
    printf 'scaling ratio virtmem/raw: %s (goal >= 0.9: %s)' "$sratio" "$(ok "$sratio" ">=" 0.9)"
    [[ "$n" -gt 1 ]] && printf '  [%s]' "$(each threads2.ratio)"
    printf '\ncycle ratio virtmem/raw: 1 thread %s, 2 threads %s\n' "$(med threads2.c1)" "$(med threads2.c2)"
else
    printf '\nthreads2: (not run)\n'
fi

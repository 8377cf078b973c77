#!/usr/bin/env bash
# Runs virtmem's `fault` benchmarks (write watch and guard pages, crates/virtmem/benches/fault.rs)
# and prints the virtmem/raw ratio of every pair, from criterion's median point estimates
# (target/criterion/<group>/<fn>/new/estimates.json).
#
#   scripts/bench-fault-ratios.sh                 # run everything once, then print the table
#   scripts/bench-fault-ratios.sh --rounds 3      # run 3 times; report the median of the
#                                                 # per-round ratios (steadier on a noisy machine)
#   scripts/bench-fault-ratios.sh guard_hit       # other arguments go to criterion (a filter here)
#   scripts/bench-fault-ratios.sh --report-only   # only print the table from the last run
#
# Two ratios per group: `ratio`, from criterion's estimates (virtmem measured, then raw), and
# `inter`, from the interleaved cross-check the benchmark prints after each group (the two
# sides alternated ten times; median of the per-round ratios), which drifts in machine speed
# move much less. `met` judges `inter` when there is one, else `ratio`. With --rounds N every
# figure is the median over the rounds.
#
# One iteration is one write (ww_write, ww_signal_write), one GetWriteWatch with RESET over
# 256 MiB with every 100th page dirty (ww_scan_reset, ww_signal_scan_reset), or one guard-page
# hit (guard_hit). The kernel-path groups (ww_*) are skipped, with a note, where the kernel or
# the permissions allow no asynchronous userfaultfd write-protection + PAGEMAP_SCAN.
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

command -v jq >/dev/null || { echo "bench-fault-ratios: jq is needed to read criterion's JSON" >&2; exit 1; }
crit="${CARGO_TARGET_DIR:-$root/target}/criterion"

# Median point estimate in ns of <group>/<fn>, or empty if that benchmark has not run.
median() {
    local f="$crit/$1/$2/new/estimates.json"
    if [[ -f "$f" ]]; then jq -r '.median.point_estimate' "$f"; fi
}

# <group>:<goal>; goal "-" means none is set (the ratio is reported only).
pairs=(ww_write:1.15 ww_scan_reset:1.15 ww_signal_write:1.15 ww_signal_scan_reset:1.15 guard_hit:-)

# One line per figure of a run: "<key> <value>", key = <group>.{v,r,ratio}. Only groups whose
# both sides ran in this round count: a stale estimate from an earlier run is not picked up.
collect() {
    local since="$1" p g v r fv fr
    for p in "${pairs[@]}"; do
        g="${p%%:*}"
        fv="$crit/$g/virtmem/new/estimates.json" fr="$crit/$g/raw/new/estimates.json"
        [[ -f "$fv" && -f "$fr" ]] || continue
        if [[ -n "$since" ]] && ! [[ "$fv" -nt "$since" && "$fr" -nt "$since" ]]; then
            continue
        fi
        v="$(median "$g" virtmem)" r="$(median "$g" raw)"
        awk -v g="$g" -v v="$v" -v r="$r" 'BEGIN { print g ".v", v; print g ".r", r; print g ".ratio", v / r }'
    done
}

# The interleaved cross-check's lines of a run's output, as figures: <group>.{iv,ir,iratio}.
interleaved() {
    awk '$1 == "interleaved" && $3 == "virtmem" && $5 == "raw" && $7 == "ratio" {
        print $2 ".iv", $4; print $2 ".ir", $6; print $2 ".iratio", $8 }' "$1"
}

figures="$(mktemp)"
stamp="$(mktemp)"
log="$(mktemp)"
trap 'rm -f "$figures" "$stamp" "$log"' EXIT
# The last run's cross-check lines are kept next to criterion's estimates for --report-only.
last="$crit/fault-interleaved.txt"
if ((run)); then
    for ((i = 1; i <= rounds; i++)); do
        ((rounds == 1)) || echo "=== round $i of $rounds ===" >&2
        touch "$stamp"
        if ! cargo bench -p virtmem --bench fault -- "${args[@]}" | tee "$log"; then
            echo "bench-fault-ratios: cargo bench failed in round $i" >&2
            ((i > 1)) || exit 1
            break
        fi
        collect "$stamp" >>"$figures"
        interleaved "$log" >>"$figures"
        # Replace this run's groups in the kept lines, keep the others' (a filtered run).
        { grep '^interleaved ' "$log" || true
          if [[ -f "$last" ]]; then
              awk 'NR == FNR { if ($1 == "interleaved") seen[$2] = 1; next } !($2 in seen)' "$log" "$last"
          fi
        } >"$last.new"
        mv "$last.new" "$last"
    done
else
    collect "" >>"$figures"
    [[ -f "$last" ]] && interleaved "$last" >>"$figures"
fi

# Median over rounds of <key>, and the list of per-round values of <key>.
med() {
    awk -v k="$1" '$1 == k { print $2 }' "$figures" | sort -g |
        awk '{ x[++n] = $1 } END { if (n) printf "%.3f", (n % 2) ? x[(n + 1) / 2] : (x[n / 2] + x[n / 2 + 1]) / 2 }'
}
each() { awk -v k="$1" '$1 == k { printf "%s%.3f", (n++ ? " " : ""), $2 }' "$figures"; }
ok() { awk -v v="$1" -v g="$2" 'BEGIN { print (v <= g) ? "yes" : "NO" }'; }

n="$(awk '$1 ~ /\.ratio$/ { c[$1]++ } END { m = 0; for (k in c) if (c[k] > m) m = c[k]; print m }' "$figures")"
echo
[[ "$n" -gt 1 ]] && echo "medians over $n rounds (per-round ratios in brackets)"
printf '%-21s %14s %14s %8s %8s %8s %5s\n' group virtmem raw ratio inter goal met
printf '%-21s %14s %14s %8s %8s %8s %5s\n' --------------------- -------------- -------------- -------- -------- -------- -----
for p in "${pairs[@]}"; do
    g="${p%%:*}" goal="${p##*:}"
    ratio="$(med "$g.ratio")" inter="$(med "$g.iratio")"
    if [[ -z "$ratio" && -z "$inter" ]]; then
        printf '%-21s %14s\n' "$g" "(not run)"
        continue
    fi
    judged="${inter:-$ratio}"
    if [[ "$goal" == "-" ]]; then
        goal_s="-" met="-"
    else
        goal_s="<= $goal" met="$(ok "$judged" "$goal")"
    fi
    v="$(med "$g.v")" r="$(med "$g.r")"
    printf '%-21s %11.1f ns %11.1f ns %8s %8s %8s %5s' "$g" "${v:-0}" "${r:-0}" \
        "${ratio:--}" "${inter:--}" "$goal_s" "$met"
    [[ "$n" -gt 1 ]] && printf '  [%s | %s]' "$(each "$g.ratio")" "$(each "$g.iratio")"
    echo
done

#!/usr/bin/env bash
# Runs virtmem's `ops` and `sections` benchmarks and prints the ratio of every pair in one
# table, from criterion's median point estimates
# (target/criterion/<group>/<fn>/new/estimates.json).
#
#   scripts/bench-ratios.sh                  # run everything once, then print the table
#   scripts/bench-ratios.sh --rounds 3       # run 3 times; report the median of the per-round
#                                            # ratios (steadier on a noisy machine)
#   scripts/bench-ratios.sh --bench sections # only this benchmark file (repeatable; default:
#                                            # ops, sections and heap)
#   scripts/bench-ratios.sh query10k         # other arguments go to criterion (a filter here)
#   scripts/bench-ratios.sh --report-only    # only print the table from the last run
#
# Two ratios per group: `ratio`, from criterion's estimates (one side measured, then the
# other), and `inter`, from the interleaved cross-check that both benchmarks print after each
# group but threads2 (`interleaved <group> <side> <ns> <reference> <ns> ratio <r>`: the two
# sides alternated ten times, median of the per-round ratios; benches/common/mod.rs), which
# drifts in machine speed move much less. `met` judges `inter` when there is one, else `ratio`.
# With --rounds N every figure is the median over the rounds.
#
# query1m (VirtualQuery among 10^6 live reservations) also times its setup and teardown once
# per run against the raw counterparts, and measures virtmem's bookkeeping per reservation;
# the rows reserve1m and release1m (seconds, no goal) and meta_per_alloc (bytes, goal <= 256)
# come from the lines it prints:
#   reserve1m virtmem <s> s raw <s> s ratio <r>
#   release1m virtmem <s> s raw <s> s ratio <r>
#   meta_per_alloc <bytes> B
# or, where the 10^6 reservations cannot be made, `query1m: skipped (<why>)`.
#
# threads2: scaling = 2-thread throughput / 1-thread throughput = 2 × t(1t) / t(2t), where one
# iteration is one alloc64k cycle on each thread; the goal is scaling(virtmem)/scaling(raw) ≥ 0.9.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

rounds=1
run=1
benches=()
args=()
while (($#)); do
    case "$1" in
        --rounds) rounds="$2"; shift 2 ;;
        --report-only) run=0; shift ;;
        --bench) benches+=("$2"); shift 2 ;;
        *) args+=("$1"); shift ;;
    esac
done
((${#benches[@]})) || benches=(ops sections heap)

command -v jq >/dev/null || { echo "bench-ratios: jq is needed to read criterion's JSON" >&2; exit 1; }
crit="${CARGO_TARGET_DIR:-$root/target}/criterion"

# Median point estimate in ns of <group>/<fn>, or empty if that benchmark has not run.
median() {
    local f="$crit/$1/$2/new/estimates.json"
    if [[ -f "$f" ]]; then jq -r '.median.point_estimate' "$f"; fi
}

# <group>:<goal>[:<side>:<reference>]; the ratio is side/reference (default virtmem/raw); goal
# "-" means none is set (the ratio is reported only). A row's name is the group, or
# group/side when the side is not `virtmem`.
pairs=(
    alloc64k:1.10 query10k:2 query1m:1.0 protect_toggle:1.05 reserve1t:2
    view64k:1.15 section_create:1.2
    query_view:-:view:private query_view:-:writecopy:private
    # Heaps (issue 16, benches/heap.rs): against glibc malloc/free in the same run.
    heap16:1.0:virtmem:malloc heap64:1.0:virtmem:malloc heap256:1.0:virtmem:malloc
    heap64_2t:1.0:virtmem:malloc heap1m:1.2:virtmem:malloc heap64_fixed:1.0:virtmem:malloc
    heap_batch_proc:-:virtmem:malloc heap_batch_fixed:-:virtmem:malloc
    heap_batch_mid:-:virtmem:malloc heap_fragmented:-:virtmem:malloc
)

# Splits a pair into the globals g (group), goal, side, ref and row (the row's name).
split_pair() {
    local IFS=:
    read -r g goal side ref <<<"$1"
    side="${side:-virtmem}" ref="${ref:-raw}"
    row="$g"
    [[ "$side" == virtmem ]] || row="$g/$side"
}

# One line per figure of a run: "<key> <value>", key = <row>.{v,r,ratio} or threads2.*. Only
# figures whose both sides ran in this round count (files newer than $1, when given): a stale
# estimate from an earlier run is not picked up.
collect() {
    local since="$1" p fv fr v r
    for p in "${pairs[@]}"; do
        split_pair "$p"
        fv="$crit/$g/$side/new/estimates.json" fr="$crit/$g/$ref/new/estimates.json"
        [[ -f "$fv" && -f "$fr" ]] || continue
        if [[ -n "$since" ]] && ! [[ "$fv" -nt "$since" && "$fr" -nt "$since" ]]; then
            continue
        fi
        v="$(median "$g" "$side")" r="$(median "$g" "$ref")"
        awk -v k="$row" -v v="$v" -v r="$r" 'BEGIN { print k ".v", v; print k ".r", r; print k ".ratio", v / r }'
    done
    local v1 v2 r1 r2
    v1="$(median threads2 virtmem_1t)" v2="$(median threads2 virtmem_2t)"
    r1="$(median threads2 raw_1t)" r2="$(median threads2 raw_2t)"
    if [[ -n "$v1" && -n "$v2" && -n "$r1" && -n "$r2" ]]; then
        if [[ -n "$since" ]] && ! [[ "$crit/threads2/virtmem_2t/new/estimates.json" -nt "$since" ]]; then
            return
        fi
        awk -v v1="$v1" -v v2="$v2" -v r1="$r1" -v r2="$r2" 'BEGIN {
            sv = 2 * v1 / v2; sr = 2 * r1 / r2
            print "threads2.v1", v1; print "threads2.v2", v2; print "threads2.r1", r1; print "threads2.r2", r2
            print "threads2.sv", sv; print "threads2.sr", sr; print "threads2.ratio", sv / sr
            print "threads2.c1", v1 / r1; print "threads2.c2", v2 / r2 }'
    fi
}

# The interleaved cross-check's lines of a run's output, as figures: <row>.{iv,ir,iratio}.
interleaved() {
    awk '$1 == "interleaved" && $7 == "ratio" {
        row = ($3 == "virtmem") ? $2 : $2 "/" $3
        print row ".iv", $4; print row ".ir", $6; print row ".iratio", $8 }' "$1"
}

# query1m's one-off lines of a run's output, as figures: reserve1m.{sv,sr,sratio},
# release1m.{sv,sr,sratio}, meta_per_alloc.b.
oneoff() {
    awk '($1 == "reserve1m" || $1 == "release1m") && $2 == "virtmem" && $5 == "raw" && $8 == "ratio" {
            print $1 ".sv", $3; print $1 ".sr", $6; print $1 ".sratio", $9 }
         $1 == "meta_per_alloc" && $3 == "B" { print "meta_per_alloc.b", $2 }' "$1"
}

# The lines of a run's output that are kept for --report-only, and the group each belongs to.
kept='$1 == "interleaved" || $1 == "reserve1m" || $1 == "release1m" || $1 == "meta_per_alloc" || $1 == "query1m:"'
group_of='function group_of() { return ($1 == "interleaved") ? $2 : "query1m" }'

figures="$(mktemp)"
stamp="$(mktemp)"
log="$(mktemp)"
trap 'rm -f "$figures" "$stamp" "$log"' EXIT
# The last run's cross-check lines are kept next to criterion's estimates for --report-only.
last="$crit/ratios-interleaved.txt"
if ((run)); then
    for ((i = 1; i <= rounds; i++)); do
        ((rounds == 1)) || echo "=== round $i of $rounds ===" >&2
        touch "$stamp"
        : >"$log"
        for b in "${benches[@]}"; do
            if ! cargo bench -p virtmem --bench "$b" -- "${args[@]}" | tee -a "$log"; then
                echo "bench-ratios: cargo bench --bench $b failed in round $i" >&2
                ((i > 1)) || exit 1
                break 2
            fi
        done
        collect "$stamp" >>"$figures"
        interleaved "$log" >>"$figures"
        oneoff "$log" >>"$figures"
        # Replace this run's groups in the kept lines, keep the others' (a filtered run).
        mkdir -p "$crit"
        { awk "$kept" "$log"
          if [[ -f "$last" ]]; then
              awk "$group_of"' NR == FNR { if ('"$kept"') seen[group_of()] = 1; next }
                   !(group_of() in seen)' "$log" "$last"
          fi
        } >"$last.new"
        mv "$last.new" "$last"
    done
else
    collect "" >>"$figures"
    if [[ -f "$last" ]]; then
        interleaved "$last" >>"$figures"
        oneoff "$last" >>"$figures"
    fi
fi
# Why query1m did not run, if it said so (in the last run that had it).
skipped1m=""
if [[ -f "$last" ]]; then
    skipped1m="$(awk '$1 == "query1m:" { sub(/^query1m: /, ""); s = $0 } END { print s }' "$last")"
fi

# Median over rounds of <key>, and the list of per-round values of <key>.
med() {
    awk -v k="$1" '$1 == k { print $2 }' "$figures" | sort -g |
        awk '{ x[++n] = $1 } END { if (n) printf "%.3f", (n % 2) ? x[(n + 1) / 2] : (x[n / 2] + x[n / 2 + 1]) / 2 }'
}
each() { awk -v k="$1" '$1 == k { printf "%s%.3f", (n++ ? " " : ""), $2 }' "$figures"; }
ok() { awk -v v="$1" -v g="$3" -v op="$2" 'BEGIN { r = (op == "<=") ? (v <= g) : (v >= g); print r ? "yes" : "NO" }'; }

n="$(awk '$1 ~ /ratio$/ { c[$1]++ } END { m = 0; for (k in c) if (c[k] > m) m = c[k]; print m }' "$figures")"
echo
[[ "$n" -gt 1 ]] && echo "medians over $n rounds (per-round ratios in brackets: criterion | interleaved)"
printf '%-20s %14s %14s %8s %8s %8s %5s\n' group virtmem raw ratio inter goal met
printf '%-20s %14s %14s %8s %8s %8s %5s\n' -------------------- -------------- -------------- -------- -------- -------- -----
# The rows of query1m's one-off figures: reserve1m and release1m in seconds (no goal), then
# meta_per_alloc in bytes (goal <= 256).
oneoff_rows() {
    local k ratio v r m
    for k in reserve1m release1m; do
        ratio="$(med "$k.sratio")"
        [[ -n "$ratio" ]] || continue
        v="$(med "$k.sv")" r="$(med "$k.sr")"
        printf '%-20s %12.3f s %12.3f s %8s %8s %8s %5s' "$k" "$v" "$r" "$ratio" - - -
        [[ "$n" -gt 1 ]] && printf '  [%s]' "$(each "$k.sratio")"
        echo
    done
    m="$(med meta_per_alloc.b)"
    if [[ -n "$m" ]]; then
        printf '%-20s %12.1f B %14s %8s %8s %8s %5s' meta_per_alloc "$m" "" - - "<= 256" "$(ok "$m" "<=" 256)"
        [[ "$n" -gt 1 ]] && printf '  [%s]' "$(each meta_per_alloc.b)"
        echo
    fi
}

for p in "${pairs[@]}"; do
    split_pair "$p"
    ratio="$(med "$row.ratio")" inter="$(med "$row.iratio")"
    if [[ -z "$ratio" && -z "$inter" ]]; then
        if [[ "$row" == query1m && -n "$skipped1m" ]]; then
            printf '%-20s %s\n' "$row" "$skipped1m"
        else
            printf '%-20s %14s\n' "$row" "(not run)"
        fi
        [[ "$row" == query1m ]] && oneoff_rows
        continue
    fi
    judged="${inter:-$ratio}"
    if [[ "$goal" == "-" ]]; then
        goal_s="-" met="-"
    else
        goal_s="<= $goal" met="$(ok "$judged" "<=" "$goal")"
    fi
    v="$(med "$row.v")" r="$(med "$row.r")"
    printf '%-20s %11.1f ns %11.1f ns %8s %8s %8s %5s' "$row" "${v:-0}" "${r:-0}" \
        "${ratio:--}" "${inter:--}" "$goal_s" "$met"
    [[ "$n" -gt 1 ]] && printf '  [%s | %s]' "$(each "$row.ratio")" "$(each "$row.iratio")"
    echo
    [[ "$row" == query1m ]] && oneoff_rows
done
echo "(query_view: virtmem = VirtualQuery of a view (view) or of a FILE_MAP_COPY view (writecopy), raw = of private memory)"
echo "(reserve1m, release1m: 10^6 64 KiB reservations made / released once, seconds; meta_per_alloc: resident anonymous bytes per reservation)"

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

#!/usr/bin/env bash
# Scaling of data-parallel CPU training on this machine: 1 and 2 MPI ranks (docs/benchmarks.md).
#   benchmarks/bench_data_parallel.sh [BUILD_DIR] [bench_data_parallel options, e.g. --frames 8 --res 96 --steps 6]
# Runs bench_data_parallel (built when an MPI is found) in five configurations and prints a table:
#   weak scaling     the per-rank batch b is fixed: the global batch grows with the ranks
#   strong scaling   the global batch is fixed: each rank takes 1/R of it
# efficiency = clips/s of R ranks / (R × clips/s of 1 rank with the same per-rank batch) — 1.0 is
# perfect scaling. Each rank runs one OpenMP thread (ranks × threads ≤ cores), except the reference
# row that gives one process both cores through OpenMP.
set -euo pipefail
build="${1:-build}"
shift || true
bin="$build/benchmarks/bench_data_parallel"
[[ -x "$bin" ]] || { echo "bench_data_parallel.sh: $bin not found (configure with MPI and build bench_data_parallel)" >&2; exit 2; }
launcher=(mpirun --bind-to none)
if mpirun --version 2>/dev/null | grep -q "Open MPI"; then launcher+=(--oversubscribe --allow-run-as-root); fi
b=2
rows=()
run() {  # threads ranks per_rank_batch label [extra]
  local t=$1 r=$2 pb=$3 label=$4; shift 4
  local line
  line=$(OMP_NUM_THREADS=$t OPENBLAS_NUM_THREADS=$t "${launcher[@]}" -np "$r" "$bin" --batch-per-rank "$pb" \
         --label "$label" "$@" | grep '^ROW')
  rows+=("$line")
}
run 1 1 $b     "1 rank  (base, b=$b)"  "$@"
run 1 2 $b     "2 ranks (weak)"        "$@"
run 1 2 $b     "2 ranks, no overlap"   "$@" --no-overlap
run 1 1 $((2*b)) "1 rank  (base, b=$((2*b)))" "$@"
run 2 1 $((2*b)) "1 rank x 2 threads"  "$@"
printf '%s\n' "${rows[@]}" | awk -v b=$b '
  function get(k,   i, kv) { for (i = 2; i <= NF; ++i) { split($i, kv, "="); if (kv[1] == k) return kv[2] } return "" }
  { n++; lab[n] = $0; sub(/^.* label=/, "", lab[n]);
    r[n] = get("ranks"); t[n] = get("threads"); g[n] = get("global_batch"); ms[n] = get("step_ms");
    c[n] = get("clips_per_s"); cpu[n] = get("cpu_ms_per_clip"); w[n] = get("reduce_wait_ms"); bk[n] = get("buckets");
    e[n] = get("early"); p = get("params") }
  END {
    for (i = 1; i <= n; ++i) {
      if (r[i] == 1 && g[i] == b && t[i] == 1) { base = c[i]; cbase = cpu[i] }
      if (r[i] == 1 && g[i] == 2 * b && t[i] == 1) { base2 = c[i]; cbase2 = cpu[i] }
    }
    printf "| configuration | ranks x threads | global batch | step (ms) | clips/s | wall efficiency | CPU ms / clip (vs 1 rank) | reduce wait (ms) | buckets overlapped |\n"
    printf "|---|---|---|---|---|---|---|---|---|\n"
    for (i = 1; i <= n; ++i) {
      eff = "—"; cr = ""
      if (r[i] > 1) {
        eff = sprintf("%.2f weak, %.2f strong", c[i] / (r[i] * base), c[i] / (r[i] * base2))
        cr = sprintf(" (%.2f)", cpu[i] / cbase)
      } else if (t[i] > 1) {
        eff = sprintf("%.2f (threads)", c[i] / (t[i] * base2)); cr = sprintf(" (%.2f)", cpu[i] / cbase2)
      }
      printf "| %s | %s x %s | %s | %.0f | %.2f | %s | %.0f%s | %s | %s |\n", lab[i], r[i], t[i], g[i], ms[i], c[i], eff,
             cpu[i], cr, (r[i] > 1 ? sprintf("%.1f", w[i]) : "—"), (r[i] > 1 ? e[i] "/" bk[i] : "—")
    }
    printf "\n%d parameters. weak: per-rank batch %d; strong: global batch %d split over the ranks. wall efficiency =\n", p, b, 2 * b
    printf "clips/s / (ranks x clips/s of 1 rank x 1 thread with the same per-rank (weak) or global (strong) batch).\n"
    printf "CPU ms / clip counts every rank and thread; in brackets vs 1 rank with the same per-rank batch (ranks)\n"
    printf "or the same global batch (threads): the work data parallelism adds, whatever else shares the cores.\n"
  }'

#!/usr/bin/env bash
# Builds every fuzz target (libFuzzer + AddressSanitizer) and runs each for a bounded time
# from its committed seed corpus; then replays FuzzTesting/FailCases/<Target>/*.
#
#   FuzzTesting/run.sh [TARGET...]          (default: every target)
#   FUZZ_SECONDS=60      seconds per target
#   FUZZ_CONFIG=release  or debug (see README.md for what each costs here)
#   FUZZ_BUILD_PATH=...  the scratch path of the build (default FuzzTesting/.build)
#   FUZZ_JOBS=N          swift build -j N
#   FUZZ_RUNS=N          stop each target after N inputs (libFuzzer's -runs; FUZZ_SECONDS stays a cap):
#                        with FUZZ_SEED, the run is the same on every machine, however fast
#   FUZZ_SEED=N          libFuzzer's -seed (default: a random seed, printed). With a seed the run is
#                        reproducible: Swift's hashing is made deterministic too, so the same seed
#                        on the same commit mutates the same inputs in the same order, and a run of
#                        S seconds replays the first part of any longer run with that seed.
#
# Fails on any crash, trap, sanitizer report, hang (> 10 s on one input) or RSS > 512 MiB, and
# when a target did not really fuzz (libFuzzer's "Done N runs" line is missing). The inputs
# that failed are kept in FuzzTesting/Findings/<Target>/; add them to FailCases/ (and a unit
# test) once the parser is fixed.
set -euo pipefail
cd "$(dirname "$0")"
seconds=${FUZZ_SECONDS:-60}
config=${FUZZ_CONFIG:-release}
build_path=${FUZZ_BUILD_PATH:-.build}
all=(FuzzQCOW2 FuzzVMDK FuzzVMDKDescriptor FuzzVHD FuzzVHDX FuzzOVA FuzzPartitions FuzzNTFS FuzzRegistry FuzzRegistryEdit FuzzJournal FuzzFrame FuzzVMX FuzzDelta FuzzNBD FuzzXML)
targets=("$@")
[ $# -gt 0 ] || targets=("${all[@]}")

# ASan keeps freed memory in a quarantine (256 MiB by default) to catch use after free; that alone
# would bring a target near the 512 MiB RSS limit, so it is smaller here. Leak checks are off:
# a leak is not what these targets look for.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:quarantine_size_mb=64}
# A Swift trap (an overflow, a bad index) goes to libFuzzer's handler, which prints the trap and the
# Swift line; Swift's own backtracer would run inside ASan and end in an unrelated ASan report.
export SWIFT_BACKTRACE=enable=no
# Dictionary and Set order must not change between runs, or a seed would not reproduce a run.
export SWIFT_DETERMINISTIC_HASHING=1
seed=${FUZZ_SEED:-$(( (RANDOM << 15 | RANDOM) + 1 ))}
jobs=()
[ -n "${FUZZ_JOBS:-}" ] && jobs=(-j "$FUZZ_JOBS")
start=$(date +%s)
swift build -c "$config" --scratch-path "$build_path" "${jobs[@]}" \
  -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library 2>&1 | tail -3
bin=$(swift build -c "$config" --scratch-path "$build_path" --show-bin-path)
echo "fuzz: built ${#targets[@]} targets ($config) in $(($(date +%s) - start)) s; seed $seed (FUZZ_SEED=$seed reproduces this run)"

failed=0
summary=()
for t in "${targets[@]}"; do
  corpus=Corpus/$t
  [ -d "$corpus" ] || { echo "fuzz: $t has no corpus at $corpus" >&2; failed=1; continue; }
  work=$(mktemp -d)
  # Fuzz a copy of the corpus: new inputs libFuzzer finds stay out of the checkout.
  cp -r "$corpus"/. "$work"/
  findings=Findings/$t
  mkdir -p "$findings"
  log=$(mktemp)
  status=0
  runs_arg=()
  [ -n "${FUZZ_RUNS:-}" ] && runs_arg=(-runs="$FUZZ_RUNS")
  "$bin/$t" "$work" -max_total_time="$seconds" -seed="$seed" "${runs_arg[@]}" \
    -rss_limit_mb=512 -timeout=10 -print_final_stats=1 -artifact_prefix="$findings/" >"$log" 2>&1 || status=$?
  runs=$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$log" | tail -1)
  stats=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$stats")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$stats")
  execs=$(sed -n 's/^stat::average_exec_per_sec: *\([0-9]*\)/\1/p' "$log")
  if [ "$status" -ne 0 ] || [ -z "$runs" ]; then
    echo "fuzz: $t FAILED (exit $status${runs:+, $runs runs}); the end of its log:" >&2
    grep -m3 -E 'Swift runtime failure|ERROR: (AddressSanitizer|libFuzzer)' "$log" >&2 || true
    tail -40 "$log" >&2
    ls "$findings" >&2 || true
    failed=1
    summary+=("$(printf '%-20s FAILED (exit %s)' "$t" "$status")")
  else
    rmdir "$findings" 2>/dev/null || true
    summary+=("$(printf '%-20s %10s runs  %7s exec/s  cov %6s  ft %6s' "$t" "$runs" "${execs:-?}" "${cov:-?}" "${ft:-?}")")
  fi
  rm -rf "$work" "$log"
done

# Inputs that once crashed a target must not crash it again.
for t in "${targets[@]}"; do
  [ -d "FailCases/$t" ] || continue
  cases=(FailCases/"$t"/*)
  [ -e "${cases[0]}" ] || continue
  if "$bin/$t" -rss_limit_mb=512 -timeout=10 "${cases[@]}" >/dev/null 2>&1; then
    summary+=("$(printf '%-20s replayed %d fail cases' "$t" "${#cases[@]}")")
  else
    echo "fuzz: $t crashes again on a FailCases input: $bin/$t FailCases/$t/*" >&2
    failed=1
  fi
done
rmdir Findings 2>/dev/null || true

echo "fuzz: ${seconds} s per target ($config):"
printf '  %s\n' "${summary[@]}"
echo "fuzz: total $(($(date +%s) - start)) s"
exit $failed

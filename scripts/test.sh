#!/usr/bin/env bash
# Builds tcbscope and runs every test. This is the README's test command and
# what CI runs (.ci/run). Tests needing root or BPF skip with a reason when
# those are missing.
#
# 1. ASan+UBSan build (clang: it compiles this code twice as fast as gcc at
#    -O0, and its warnings are errors too): unit and e2e tests (memory errors
#    fail the run).
# 2. libFuzzer (clang): each parser fuzzed for TCBSCOPE_FUZZ_SECONDS (15)
#    from the corpus in tests/fuzz/corpus; any crash fails the run.
# 3. The regular build (Release, warnings are errors): the unit tests, the
#    benchmarks' short run, deploy/, and of the e2e tests, which all ran in
#    step 1, those labelled "release" (tests/e2e/CMakeLists.txt says which
#    and why). Its ctest summary is the last thing printed. It compiles
#    through ccache with the Dockerfile build stage's flags, so deploy_test's
#    build of that stage (deploy/docker/build.sh, into build-docker/) reuses
#    its objects instead of compiling everything a fourth time.
# TCBSCOPE_SKIP_SANITIZE=1 skips steps 1 and 2 for a quick local run; step 3
# then runs every e2e test.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh test
jobs="$(nproc)"
sanitize=$([[ ${TCBSCOPE_SKIP_SANITIZE:-0} == 1 ]] && echo OFF || echo ON)
fuzz_seconds="${TCBSCOPE_FUZZ_SECONDS:-15}"

if [[ $sanitize == ON ]]; then
  echo "== sanitizer build (ASan+UBSan): unit and e2e tests (at ${SECONDS} s)"
  CC=clang CXX=clang++ cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DTCBSCOPE_SANITIZE=ON -DTCBSCOPE_BUILD_BENCH=OFF \
    -DTCBSCOPE_WERROR=ON >/dev/null
  cmake --build build-asan -j"$jobs" 2>&1 | { grep -Ev '^\[ *[0-9]+%\]' || true; }
  # A small quarantine: the e2e tests bound the agent's memory, and ASan's
  # default 256 MiB of freed-but-held blocks would be counted as the agent's.
  # Leaks in other projects' libraries are listed, with reasons, in
  # tests/lsan_suppressions.txt.
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:quarantine_size_mb=16 \
    LSAN_OPTIONS="suppressions=$PWD/tests/lsan_suppressions.txt" \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir build-asan -L 'unit|e2e' --output-on-failure -j"$jobs" --timeout 600

  echo "== fuzzing (libFuzzer, $fuzz_seconds s per parser; at ${SECONDS} s)"
  CC=clang CXX=clang++ cmake -S . -B build-fuzz -DTCBSCOPE_FUZZ=ON -DTCBSCOPE_BUILD_BENCH=OFF \
    -DTCB_FUZZ_SECONDS="$fuzz_seconds" >/dev/null
  cmake --build build-fuzz -j"$jobs" --target filter_fuzzer host_port_fuzzer inet_diag_fuzzer counters_fuzzer tcb_batch_fuzzer \
    2>&1 | { grep -Ev '^\[ *[0-9]+%\]' || true; }
  if ! ctest --test-dir build-fuzz -L fuzz -V -j"$jobs" --timeout 600 > build-fuzz/fuzz.log 2>&1; then
    grep -E 'ERROR|SUMMARY|Test +#|tests passed' build-fuzz/fuzz.log
    echo "fuzzing found a crash: see build-fuzz/fuzz.log and build-fuzz/tests/fuzz/crash-*"
    exit 1
  fi
  # "N: Test command: .../NAME_fuzzer ..." then "N: stat::number_of_executed_units: X"
  awk '/Test command:/ { split($0, a, ": "); n = a[1]; sub(/.*\//, "", $4); name[n] = $4 }
       /number_of_executed_units/ { split($0, a, ": "); print "  " name[a[1]] ": " $NF " executions, no crash" }
       /tests passed/' build-fuzz/fuzz.log
fi

echo "== build (Release, -Werror) and its tests (at ${SECONDS} s)"
# CMake takes a new build directory's compiler launcher from these. base_dir
# makes ccache hash paths under the tree relatively, so build/ and
# build-docker/ (siblings) make the same hashes.
if command -v ccache >/dev/null; then
  export CMAKE_C_COMPILER_LAUNCHER=ccache CMAKE_CXX_COMPILER_LAUNCHER=ccache
  export CCACHE_DIR="$PWD/build-ccache" CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=1
fi
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DTCBSCOPE_WERROR=ON -DTCBSCOPE_BUILD_TESTS=ON -DTCBSCOPE_BUILD_BENCH=ON \
  -DTCBSCOPE_ALL_E2E_TESTS="$([[ $sanitize == ON ]] && echo OFF || echo ON)" >/dev/null
cmake --build build -j"$jobs" 2>&1 | { grep -Ev '^\[ *[0-9]+%\]' || true; }
ctest --test-dir build --output-on-failure -j"$jobs" --timeout 900

#!/usr/bin/env bash
# The container's build stage (deploy/docker/Dockerfile), also run by CI:
# installs the build packages, builds Release, installs both binaries under
# OUT/usr/local/bin and lists in OUT/runtime-packages the Debian packages that
# own every shared library they load (what the runtime stage installs).
# Warnings are errors: the stage's compiler is the Debian release's own, the
# one CI builds with, and a warning there is a bug to see, not to ship.
#
#   deploy/docker/build.sh OUT [BUILD_DIR]
set -euo pipefail
out="${1:?usage: deploy/docker/build.sh OUT [BUILD_DIR]}"
build="${2:-build-docker}"
cd "$(dirname "$0")/../.."
scripts/install-deps.sh build
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DTCBSCOPE_WERROR=ON -DTCBSCOPE_BUILD_TESTS=OFF -DTCBSCOPE_BUILD_BENCH=OFF \
  >/dev/null
cmake --build "$build" -j"$(nproc)" --target tcbscope tcbscope-agent 2>&1 | { grep -Ev '^\[ *[0-9]+%\]' || true; }
install -D -m 0755 "$build/agent/tcbscope-agent" "$out/usr/local/bin/tcbscope-agent"
install -D -m 0755 "$build/client/tcbscope" "$out/usr/local/bin/tcbscope"
strip "$out/usr/local/bin/tcbscope-agent" "$out/usr/local/bin/tcbscope"
# The owner of each library, looked up by its real path and, on merged-/usr
# systems, by the /lib path dpkg may have recorded instead: every candidate
# path in one dpkg -S call (each call reads dpkg's whole database).
libs=$(for bin in "$out"/usr/local/bin/*; do ldd "$bin" | awk '/=> \// {print $3}'; done | sort -u)
candidates=()
for lib in $libs; do
  real=$(readlink -f "$lib")
  candidates+=("$lib" "$real" "${real#/usr}" "/usr${real}")
done
# "pkg[:arch][, pkg...]: /path" for each path dpkg knows; the rest are not
# found (dpkg then exits 1, which is expected here).
owners=$(dpkg -S "${candidates[@]}" 2>/dev/null || true)
for lib in $libs; do
  real=$(readlink -f "$lib")
  found=""
  for p in "$lib" "$real" "${real#/usr}" "/usr${real}"; do
    found=$(awk -v p="$p" -F': ' '!/^diversion/ && $2 == p {print $1; exit}' <<<"$owners" | cut -d, -f1 | cut -d: -f1)
    [[ -n $found ]] && break
  done
  [[ -n $found ]] || { echo "build.sh: no Debian package owns $lib" >&2; exit 1; }
  echo "$found"
done | sort -u > "$out/runtime-packages"
[[ -s "$out/runtime-packages" ]] || { echo "build.sh: no runtime packages found" >&2; exit 1; }
echo "built into $out: $(ls "$out/usr/local/bin" | tr '\n' ' ')"
echo "runtime packages: $(tr '\n' ' ' < "$out/runtime-packages")"

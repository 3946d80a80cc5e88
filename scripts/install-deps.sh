#!/usr/bin/env bash
# Installs the Debian packages tcbscope builds and tests with, if any is missing.
# Usage: scripts/install-deps.sh [build|test|bench]   (test and bench include build)
set -euo pipefail
what="${1:-build}"
pkgs=(cmake g++ make pkg-config libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
      libabsl-dev libmnl-dev libcli11-dev clang bpftool libbpf-dev libgtest-dev libgmock-dev libbenchmark-dev libssl-dev iproute2)
case "$what" in
  build) ;;
  test|bench) pkgs+=(nftables libxml2-utils python3 procps openssl ethtool libclang-rt-14-dev systemd python3-yaml ccache) ;;
  *) echo "install-deps: unknown set '$what' (build, test or bench)" >&2; exit 2 ;;
esac
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "install-deps: missing Debian packages: ${missing[*]} (run as root, or install them)" >&2
    exit 1
  fi
  echo "install-deps: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

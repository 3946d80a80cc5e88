#!/usr/bin/env bash
# The main job: tcbscope end to end. As root (network namespaces available):
# two lab hosts with an agent each, three connections between them — one
# healthy, one whose receiver stopped reading, one made half-open — and
# `tcbscope correlate` explaining both ends of each; then `tcbscope diagnose`
# on a port whose SYNs h2 drops. Otherwise the same idea on loopback: one
# agent, `tcbscope correlate localhost localhost` and a diagnosis.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh build
command -v python3 >/dev/null || { apt-get update -qq && apt-get install -y -qq python3 >/dev/null; }
cmake -S . -B build >/dev/null
cmake --build build -j"$(nproc)" --target tcbscope tcbscope-agent 2>&1 | { grep -Ev '^\[ *[0-9]+%\]' || true; }
cli=build/client/tcbscope
run() { echo; echo "\$ $*"; "$@" || true; }

work=$(mktemp -d)
pids=()
lab=deploy/lab/tcbscope-lab
export TCBSCOPE_LAB_PREFIX=tcbsdemo
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [[ -n "${lab_up:-}" ]] && "$lab" down >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT

wait_ready() { for _ in $(seq 200); do grep -q ready "$1" 2>/dev/null && return 0; sleep 0.05; done; cat "$1" >&2; return 1; }

if [[ $(id -u) -eq 0 ]] && ip netns list >/dev/null 2>&1 && command -v nft >/dev/null; then
  "$lab" down >/dev/null 2>&1 || true
  "$lab" up 2 >/dev/null
  lab_up=1
  "$lab" agent h1 --allow-probe --probe-allow 198.51.100.0/24 >/dev/null
  "$lab" agent h2 >/dev/null
  "$lab" exec h2 python3 deploy/demo/lab_peers.py server >"$work/server.out" 2>&1 &
  pids+=($!)
  wait_ready "$work/server.out"
  "$lab" exec h1 python3 deploy/demo/lab_peers.py client 198.51.100.2 >"$work/client.out" 2>&1 &
  pids+=($!)
  wait_ready "$work/client.out"
  # Make the idle connection half-open: B drops everything on port 9090 and
  # aborts its end; its reset is dropped, so A never hears of it.
  "$lab" fault h2 drop-all --port 9090
  "$lab" exec h2 ss -K state established sport = :9090 >/dev/null 2>&1
  echo "== two lab hosts: A = 198.51.100.1 (h1), B = 198.51.100.2 (h2), an agent on each"
  echo "   h1 opened three connections to h2: healthy (:8080), receiver not reading (:8081),"
  echo "   and one to :9090 that h2 then aborted behind a firewall rule (half-open)."
  run "$lab" exec h1 "$cli" list 198.51.100.1 198.51.100.2 "( dport = :8080 or dport = :8081 or dport = :9090 or sport = :8080 or sport = :8081 or sport = :9090 )"
  run "$lab" exec h1 "$cli" correlate 198.51.100.1 198.51.100.2
  echo
  echo "== now h2 drops every SYN to :8080 (existing connections go on): why can't h1 connect?"
  "$lab" fault h2 drop-syn --port 8080
  run "$lab" exec h1 "$cli" diagnose 198.51.100.1 198.51.100.2:8080 --probe
else
  echo "== not root (or no network namespaces): the loopback version"
  build/agent/tcbscope-agent --listen 127.0.0.1:0 --port-file "$work/port" --allow-probe --probe-allow 127.0.0.0/8 \
    2>"$work/agent.log" &
  pids+=($!)
  for _ in $(seq 100); do [[ -s "$work/port" ]] && break; sleep 0.05; done
  agent="127.0.0.1:$(cat "$work/port")"
  python3 deploy/demo/peers.py --ready "$work/ready" >"$work/peers.txt" </dev/null &
  pids+=($!)
  for _ in $(seq 200); do [[ -s "$work/ready" ]] && break; sleep 0.05; done
  cat "$work/peers.txt"
  run "$cli" info "$agent"
  run "$cli" list "$agent" -i "dst 127.0.0.1"
  run "$cli" correlate "$agent" "$agent"
  run "$cli" diagnose "$agent" 127.0.0.1:9 --agent-port-b "${agent##*:}" --probe
fi
echo
echo "Each pair of rows is one connection seen from both ends. The findings say what the"
echo "difference means; docs/findings.md explains each code, the evidence and what to do;"
echo "docs/diagnose.md explains each diagnose verdict, how it is decided and its limits."

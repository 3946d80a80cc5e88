#!/usr/bin/env bash
# The main job: builds tcbscope, starts an agent, opens a few connections in
# telling states, and shows them through the agent with `tcbscope list -i`,
# `tcbscope list -p` and `tcbscope info`. Everything stays on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh build
command -v python3 >/dev/null || { apt-get update -qq && apt-get install -y -qq python3 >/dev/null; }
cmake -S . -B build >/dev/null
cmake --build build -j"$(nproc)" --target tcbscope tcbscope-agent 2>&1 | { grep -Ev '^\[ *[0-9]+%\]' || true; }

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

build/agent/tcbscope-agent --listen 127.0.0.1:0 --port-file "$work/port" 2>"$work/agent.log" &
pids+=($!)
for _ in $(seq 100); do [[ -s "$work/port" ]] && break; sleep 0.05; done
[[ -s "$work/port" ]] || { cat "$work/agent.log" >&2; exit 1; }
agent="127.0.0.1:$(cat "$work/port")"

python3 deploy/demo/peers.py --ready "$work/ready" >"$work/peers.txt" </dev/null &
pids+=($!)
for _ in $(seq 200); do [[ -s "$work/ready" ]] && break; sleep 0.05; done

run() { echo; echo "\$ $*"; "$@" || true; }
echo "== the connections this demo opened:"
cat "$work/peers.txt"
run build/client/tcbscope info "$agent"
run build/client/tcbscope list "$agent" -i "dst 127.0.0.1 and not dport = :${agent##*:} and not sport = :${agent##*:}"
run build/client/tcbscope list "$agent" -l -p "src 127.0.0.1"
run build/client/tcbscope counters "$agent"
echo
echo "Read it like ss: the not-reading receiver's Recv-Q is full and its sender's Send-Q is"
echo "backed up; the listener with backlog 2 holds 3 un-accepted connections; the half-closed"
echo "pair sits in FIN-WAIT-2 / CLOSE-WAIT because one application never called close()."

#!/usr/bin/env bash
# The lab script itself: hosts, addresses, each fault's effect, clear, status,
# and that `down` leaves nothing behind (also when a check fails).
# Exit 0 pass, 77 skip (not root / no ip netns / no nft), 1 fail.
set -uo pipefail
lab="$(cd "$(dirname "$0")/../../deploy/lab" && pwd)/tcbscope-lab"
[[ $(id -u) -eq 0 ]] || { echo "SKIP: needs root to create network namespaces"; exit 77; }
ip netns list >/dev/null 2>&1 || { echo "SKIP: ip netns is not available"; exit 77; }
command -v nft >/dev/null || { echo "SKIP: nft is not installed"; exit 77; }
command -v python3 >/dev/null || { echo "SKIP: python3 is not installed"; exit 77; }
export TCBSCOPE_LAB_PREFIX="l$$"
p="$TCBSCOPE_LAB_PREFIX"
fails=0
check() { if "${@:2}"; then echo "ok   $1"; else echo "FAIL $1"; fails=$((fails + 1)); fi; }
cleanup() { "$lab" down >/dev/null 2>&1; }
trap cleanup EXIT

# A listener in h2 on $1 that reads each connection to its end and answers
# "k" (background), and a client in h1 that connects (and, given N, sends N
# bytes and waits for the "k"): prints connected / refused / timeout / error.
listen() { ip netns exec "$p-h2" python3 -c "
import socket, sys, threading
fam = socket.AF_INET6 if ':' in sys.argv[1] else socket.AF_INET
s = socket.socket(fam); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(16)
def drain(c):
    while c.recv(65536): pass
    c.sendall(b'k'); c.close()  # everything arrived
while True:
    c, _ = s.accept(); threading.Thread(target=drain, args=(c,), daemon=True).start()
" "$1" "$2" & }
try() { ip netns exec "$p-h1" timeout 10 python3 -c "
import socket, sys
fam = socket.AF_INET6 if ':' in sys.argv[1] else socket.AF_INET
s = socket.socket(fam); s.settimeout(1.5)
try:
    s.connect((sys.argv[1], int(sys.argv[2])))
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    if n:
        s.sendall(b'x' * n); s.shutdown(socket.SHUT_WR); s.settimeout(3); s.recv(1)
    print('connected')
except ConnectionRefusedError: print('refused')
except (socket.timeout, TimeoutError): print('timeout')
except Exception as e: print('error', e)
" "$@"; }

export -f try
export p
if command -v setpriv >/dev/null; then
  check "not root is refused clearly" bash -c "setpriv --reuid=65534 --regid=65534 --clear-groups '$lab' status 2>&1 | grep -q 'needs root'"
fi
check "bad usage exits 2" bash -c "'$lab' bogus >/dev/null 2>&1; [[ \$? -eq 2 ]]"
check "up 3" "$lab" up 3
check "up twice is refused" bash -c "! '$lab' up 2 >/dev/null 2>&1"
check "three hosts and a bridge namespace" bash -c "[[ \$(ip netns list | grep -c '^$p-') -eq 4 ]]"
check "nothing added to the root namespace" bash -c "! ip -br link | grep -Eq '^h[0-9]+|veth0'"
check "IPv4 addresses" bash -c "ip -n $p-h3 -br addr show veth0 | grep -q '198.51.100.3/24'"
check "IPv6 addresses" bash -c "ip -n $p-h3 -br addr show veth0 | grep -q '2001:db8::3/64'"
listen 198.51.100.2 5001; listen 2001:db8::2 5002; listen 198.51.100.2 7411
# Until all three listen (python's start can take seconds on a loaded CI
# host; half a second's sleep once left the first check refused).
for _ in $(seq 100); do
  [[ $(ip netns exec "$p-h2" ss -Htln '( sport = :5001 or sport = :5002 or sport = :7411 )' | wc -l) -eq 3 ]] && break
  sleep 0.1
done
check "h1 -> h2 over IPv4" bash -c "[[ \$(try 198.51.100.2 5001) == connected ]]"
check "h1 -> h2 over IPv6" bash -c "[[ \$(try 2001:db8::2 5002) == connected ]]"
check "h1 -> h2 carries 200 KB" bash -c "[[ \$(try 198.51.100.2 5001 200000) == connected ]]"

"$lab" fault h2 drop-syn
check "drop-syn: connect times out" bash -c "[[ \$(try 198.51.100.2 5001) == timeout ]]"
check "drop-syn: the agent port is spared" bash -c "[[ \$(try 198.51.100.2 7411) == connected ]]"
check "status shows the fault" bash -c "'$lab' status | grep -q 'drop-syn'"
"$lab" clear h2
check "clear restores" bash -c "[[ \$(try 198.51.100.2 5001) == connected ]]"

"$lab" fault h2 reject-rst
check "reject-rst: connection refused" bash -c "[[ \$(try 198.51.100.2 5001) == refused ]]"
"$lab" clear h2
"$lab" fault h2 drop-synack
check "drop-synack: connect times out" bash -c "[[ \$(try 198.51.100.2 5001) == timeout ]]"
"$lab" clear h2
"$lab" fault h2 drop-all
check "drop-all: IPv4 times out" bash -c "[[ \$(try 198.51.100.2 5001) == timeout ]]"
check "drop-all: IPv6 times out" bash -c "[[ \$(try 2001:db8::2 5002) == timeout ]]"
check "drop-all: the agent port is spared" bash -c "[[ \$(try 198.51.100.2 7411) == connected ]]"
"$lab" clear h2
"$lab" fault h2 drop-larger-than 1000
check "drop-larger-than: the handshake passes" bash -c "[[ \$(try 198.51.100.2 5001) == connected ]]"
check "drop-larger-than: full-size segments never arrive" bash -c "[[ \$(try 198.51.100.2 5001 200000) == timeout ]]"
"$lab" clear h2
"$lab" fault h2 drop-all --port 5001
check "--port limits a fault to one port" bash -c "[[ \$(try 198.51.100.2 5001) == timeout && \$(try 2001:db8::2 5002) == connected ]]"
check "faults stay inside their host" bash -c "! nft list tables 2>/dev/null | grep -q tcbscope_lab"

kill $(jobs -p) 2>/dev/null; wait 2>/dev/null
check "down" "$lab" down
check "down leaves no namespace" bash -c "! ip netns list | grep -q '^$p-'"
check "down leaves no state" bash -c "[[ ! -e /run/tcbscope-lab/$p ]]"
check "down twice is fine" "$lab" down
echo "lab script: $fails checks failed"
[[ $fails -eq 0 ]]

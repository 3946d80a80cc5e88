#!/usr/bin/env bash
# Makes a throwaway CA, an agent certificate and a client certificate with
# openssl, for trying tcbscope with TLS and mutual TLS. Not for production:
# the keys are unencrypted and the CA signs anything this script is told.
#
#   deploy/tls/make-test-pki.sh DIR [AGENT_NAME_OR_IP...]
#
# Then:
#   tcbscope-agent --listen 198.51.100.1:7411 --tls-cert DIR/agent.pem --tls-key DIR/agent.key --client-ca DIR/ca.pem
#   tcbscope --tls-ca DIR/ca.pem --tls-cert DIR/client.pem --tls-key DIR/client.key info 198.51.100.1
set -euo pipefail
[[ $# -ge 1 ]] || { echo "usage: $0 DIR [AGENT_NAME_OR_IP...]" >&2; exit 2; }
dir="$1"; shift
names=("$@")
[[ ${#names[@]} -gt 0 ]] || names=(localhost 127.0.0.1)
command -v openssl >/dev/null || { echo "make-test-pki: needs openssl" >&2; exit 2; }
mkdir -p "$dir"
chmod 700 "$dir"
key=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
san=""
for n in "${names[@]}"; do
  if [[ "$n" =~ ^[0-9.]+$ || "$n" == *:* ]]; then san+="IP:$n,"; else san+="DNS:$n,"; fi
done
san="${san%,}"
openssl req -x509 "${key[@]}" -keyout "$dir/ca.key" -out "$dir/ca.pem" -days 30 -subj "/CN=tcbscope test CA" 2>/dev/null
leaf() {  # NAME CN EXTENSIONS
  printf '%b\n' "$3" > "$dir/$1.ext"
  openssl req "${key[@]}" -keyout "$dir/$1.key" -out "$dir/$1.csr" -subj "/CN=$2" 2>/dev/null
  openssl x509 -req -in "$dir/$1.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial \
    -out "$dir/$1.pem" -days 30 -extfile "$dir/$1.ext" 2>/dev/null
  rm -f "$dir/$1.csr" "$dir/$1.ext"
}
leaf agent "tcbscope-agent" "subjectAltName=$san\nextendedKeyUsage=serverAuth"
leaf client "tcbscope-client" "extendedKeyUsage=clientAuth"
chmod 600 "$dir"/*.key
echo "made $dir/{ca,agent,client}.{pem,key} (agent names: ${names[*]})"

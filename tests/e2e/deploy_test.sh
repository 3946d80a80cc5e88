#!/usr/bin/env bash
# Validates deploy/ without systemd running, a cluster or a Docker engine:
#  - the systemd unit and its drop-in pass `systemd-analyze verify`;
#  - the Kubernetes manifest parses and has what the agent needs (host network
#    and PID, exactly the capabilities, TLS from a Secret, gRPC readiness);
#  - the Dockerfile's build stage (deploy/docker/build.sh) builds both
#    binaries, they run, and every runtime package it lists exists in apt.
# Exit 77 (skip) only when a validator is missing.
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v systemd-analyze >/dev/null || { echo "skip: no systemd-analyze"; exit 77; }
py=/usr/bin/python3
[[ -x $py ]] && $py -c 'import yaml' 2>/dev/null || py=python3
$py -c 'import yaml' 2>/dev/null || { echo "skip: no python3 yaml module (python3-yaml)"; exit 77; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

echo "== deploy/docker/build.sh (the Dockerfile's build stage)"
grep -q '^RUN deploy/docker/build.sh /out$' deploy/docker/Dockerfile || fail "the Dockerfile no longer runs deploy/docker/build.sh"
deploy/docker/build.sh "$work/out" "${TCBSCOPE_DOCKER_BUILD_DIR:-build-docker}"
"$work/out/usr/local/bin/tcbscope-agent" --help | grep -q -- '--listen' || fail "the built agent does not run"
"$work/out/usr/local/bin/tcbscope" --help | grep -q 'correlate' || fail "the built CLI does not run"
while read -r pkg; do
  # Captured first: grep -q would stop reading early, and pipefail would
  # count apt-cache's broken pipe as the package missing.
  policy=$(apt-cache policy "$pkg")
  [[ $policy =~ Candidate:\ [0-9] ]] || fail "runtime package $pkg has no install candidate"
done < "$work/out/runtime-packages"
grep -qx 'libbpf1' "$work/out/runtime-packages" || fail "libbpf1 missing from the runtime packages"

echo "== systemd-analyze verify"
mkdir -p "$work/unit/tcbscope-agent.service.d"
sed "s|/usr/local/bin/tcbscope-agent|$work/out/usr/local/bin/tcbscope-agent|g" deploy/systemd/tcbscope-agent.service \
  > "$work/unit/tcbscope-agent.service"
sed "s|/usr/local/bin/tcbscope-agent|$work/out/usr/local/bin/tcbscope-agent|g" deploy/systemd/all-netns.conf \
  > "$work/unit/tcbscope-agent.service.d/all-netns.conf"
out=$(SYSTEMD_LOG_LEVEL=warning systemd-analyze verify --man=no "$work/unit/tcbscope-agent.service" 2>&1 || true)
echo "$out" | grep -v -e 'Failed to open /sys' -e 'transient' -e '^$' | grep . && fail "systemd-analyze verify: $out"
# The capabilities are exactly the features' (and SYS_ADMIN only in the drop-in).
caps=$(grep '^AmbientCapabilities=' deploy/systemd/tcbscope-agent.service | cut -d= -f2)
[[ $caps == "CAP_BPF CAP_PERFMON CAP_SYS_PTRACE CAP_DAC_READ_SEARCH" ]] || fail "unit capabilities: $caps"
for opt in NoNewPrivileges=yes ProtectSystem=strict ProtectHome=yes PrivateTmp=yes DynamicUser=yes; do
  grep -qx "$opt" deploy/systemd/tcbscope-agent.service || fail "unit lacks $opt"
done

echo "== kubernetes manifest"
$py - deploy/k8s/tcbscope-agent.yaml <<'PY'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
kinds = {d["kind"]: d for d in docs}
assert set(kinds) == {"DaemonSet", "Service"}, kinds.keys()
ds = kinds["DaemonSet"]
assert ds["apiVersion"] == "apps/v1"
pod = ds["spec"]["template"]["spec"]
assert ds["spec"]["selector"]["matchLabels"].items() <= ds["spec"]["template"]["metadata"]["labels"].items()
assert pod["hostNetwork"] is True and pod["hostPID"] is True
(c,) = pod["containers"]
sc = c["securityContext"]
assert sc["capabilities"]["drop"] == ["ALL"]
assert sorted(sc["capabilities"]["add"]) == sorted(["BPF", "PERFMON", "SYS_PTRACE", "DAC_READ_SEARCH", "SYS_ADMIN"])
assert sc["allowPrivilegeEscalation"] is False and sc["readOnlyRootFilesystem"] is True
assert "privileged" not in sc or sc["privileged"] is False
args = c["args"]
for flag in ("--tls-cert=", "--tls-key=", "--client-ca=", "--health-listen="):
    assert any(a.startswith(flag) for a in args), flag
health = [a for a in args if a.startswith("--health-listen=")][0].rsplit(":", 1)[1]
assert str(c["readinessProbe"]["grpc"]["port"]) == health, "readiness probes the health port"
secret_vols = {v["name"] for v in pod["volumes"] if "secret" in v}
assert any(m["name"] in secret_vols for m in c["volumeMounts"])
svc = kinds["Service"]
assert svc["spec"]["selector"] == ds["spec"]["selector"]["matchLabels"]
assert svc["spec"]["ports"][0]["port"] == 7411
print("manifest ok")
PY
# The flags the manifest and the units pass exist in the agent.
help=$("$work/out/usr/local/bin/tcbscope-agent" --help)
for flag in --health-listen --all-netns --tls-cert --tls-key --client-ca --listen; do
  grep -q -- "$flag" <<<"$help" || fail "the agent has no $flag (used by deploy/)"
done
echo "deploy ok"

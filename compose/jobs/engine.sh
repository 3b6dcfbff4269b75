#!/usr/bin/env bash
# Start Podman's Docker-compatible API service for container jobs, as
# ../shared/reference/container-engine.md prescribes: runc (crun fails on these hybrid
# cgroups) and no default ulimits (Podman's defaults are refused here). Idempotent.
set -euo pipefail
SOCK=${MLP_PODMAN_SOCK:-/run/podman/podman.sock}

if ! command -v podman >/dev/null || ! command -v runc >/dev/null || ! command -v debootstrap >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman runc debootstrap >/dev/null
fi
mkdir -p /etc/containers "$(dirname "$SOCK")"
if [ ! -f /etc/containers/containers.conf ] || ! grep -q 'runtime = "runc"' /etc/containers/containers.conf; then
    printf '[containers]\ndefault_ulimits = []\n[engine]\nruntime = "runc"\n' > /etc/containers/containers.conf
fi
if ! curl -fsS --unix-socket "$SOCK" http://d/_ping >/dev/null 2>&1; then
    # From /: conmon writes files such as `oom` (an OOM-killed container) into the
    # service's working directory, which must not be a checkout.
    (cd / && nohup podman system service --time=0 "unix://$SOCK" >/var/log/podman-service.log 2>&1 &)
    for _ in $(seq 50); do curl -fsS --unix-socket "$SOCK" http://d/_ping >/dev/null 2>&1 && break; sleep 0.2; done
fi
curl -fsS --unix-socket "$SOCK" http://d/_ping >/dev/null
echo "container engine answering at unix://$SOCK"

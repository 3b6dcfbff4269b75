#!/usr/bin/env bash
# Build the container jobs' base image from Debian packages (no registry to pull from):
# a minbase bookworm rootfs with Python and the usual ML stack, imported into Podman.
# About 3 minutes; skipped when the image exists. MLflow is not packaged by Debian, so
# jobs in this image track through the small client the executor mounts (jobs/shim).
set -euo pipefail
IMAGE=${1:-localhost/mlp-python:bookworm}
if podman image exists "$IMAGE"; then
    echo "$IMAGE exists"
    exit 0
fi
mirror=$(grep -m1 '^URIs:' /etc/apt/sources.list.d/debian.sources 2>/dev/null | awk '{print $2}')
mirror=${mirror:-http://deb.debian.org/debian}
rootfs=$(mktemp -d)
trap 'rm -rf "$rootfs"' EXIT
debootstrap --variant=minbase \
    --include=python3,python3-numpy,python3-sklearn,python3-pandas,python3-joblib,ca-certificates \
    bookworm "$rootfs" "$mirror"
rm -rf "$rootfs"/var/cache/apt/archives/*.deb
tar -C "$rootfs" -c . | podman import --change 'CMD ["python3"]' - "$IMAGE"
echo "built $IMAGE"

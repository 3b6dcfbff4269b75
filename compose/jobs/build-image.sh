#!/usr/bin/env bash
# Build the container jobs' base image from Debian packages (no registry to pull from):
# a minbase bookworm rootfs with Python and the usual ML stack, plus the MLflow client
# (mlflow-skinny, from PyPI: Debian does not package it), imported into Podman.
# About 4 minutes; skipped when the image exists.
set -euo pipefail
IMAGE=${1:-localhost/mlp-python:bookworm-mlflow}
MLFLOW_VERSION=3.17.2
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
# The client goes in from outside with pip's cross-install options (bookworm's python
# is 3.11, manylinux wheels only), into the path the image's python3 reads for local
# packages; no pip, compiler or network inside the image. Packages Debian already
# provides there (numpy, pandas...) are not mlflow-skinny's dependencies.
python3 -m pip install --quiet --no-cache-dir --disable-pip-version-check --no-warn-conflicts \
    --target "$rootfs/usr/local/lib/python3.11/dist-packages" \
    --python-version 3.11 --implementation cp --abi cp311 \
    --platform manylinux2014_x86_64 --platform manylinux_2_28_x86_64 --only-binary=:all: \
    "mlflow-skinny==$MLFLOW_VERSION"
chroot "$rootfs" python3 -c "import mlflow; print('mlflow', mlflow.__version__, 'in the image')"
tar -C "$rootfs" -c . | podman import --change 'CMD ["python3"]' - "$IMAGE"
echo "built $IMAGE"

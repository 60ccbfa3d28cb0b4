#!/usr/bin/env bash
# Make a base image without a container registry: a minimal Debian (debootstrap, from this
# machine's configured Debian mirror) with Python from Debian's packages, imported into podman.
#
#   images/base-debian.sh [TAG]     # default TAG: localhost/llmstep-base:bookworm
#
# Skips the work when the image already exists. Needs root, debootstrap and podman.
set -euo pipefail
tag="${1:-localhost/llmstep-base:bookworm}"
if podman image exists "$tag"; then echo "base image $tag exists"; exit 0; fi
suite="$(. /etc/os-release && echo "$VERSION_CODENAME")"
mirror="$(grep -rhoE '^(URIs:[[:space:]]*|deb[[:space:]]+)[^[:space:]]+debian/?' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null \
  | grep -v security | head -1 | awk '{print $NF}' || true)"
[ -n "$mirror" ] || { echo "images/base-debian.sh: no Debian mirror in the apt sources" >&2; exit 2; }
rootfs="$(mktemp -d)"
trap 'rm -rf "$rootfs"' EXIT
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates "$suite" "$rootfs" "$mirror" >/dev/null
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/usr/share/doc \
  "$rootfs"/usr/share/man "$rootfs"/usr/share/locale "$rootfs"/usr/share/info
tar -C "$rootfs" -c . | podman import --change 'CMD ["/bin/sh"]' - "$tag" >/dev/null
echo "base image $tag imported"

#!/usr/bin/env bash
# Build the llmstep step image (run from anywhere; the build context is the repository root).
#
#   images/build.sh [--engine podman|docker] [--tag TAG] [--base IMAGE] [--wheelhouse] [--extra-ca FILE]
#
#   --engine      container CLI (default: podman if installed, else docker)
#   --tag         image name (default: llmstep:<version>, what llmstep.compile uses)
#   --base        base image with python3 3.11 and its venv module (default: python:3.11-slim)
#   --wheelhouse  download the wheels here first and install them with pip --no-index inside
#                 the build, so the build itself needs no registry access
#   --extra-ca    a PEM CA bundle to trust inside the image (TLS-intercepting proxies)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
version="$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/pyproject.toml" | head -1)"
engine="$(command -v podman >/dev/null && echo podman || echo docker)"
tag="llmstep:$version"; base=""; wheelhouse=0; extra_ca=""
while [ $# -gt 0 ]; do
  case "$1" in
    --engine) engine="$2"; shift 2;;
    --tag) tag="$2"; shift 2;;
    --base) base="$2"; shift 2;;
    --wheelhouse) wheelhouse=1; shift;;
    --extra-ca) extra_ca="$2"; shift 2;;
    -h|--help) sed -n '2,13p' "$0"; exit 0;;
    *) echo "images/build.sh: unknown option $1 (see --help)" >&2; exit 2;;
  esac
done
command -v "$engine" >/dev/null || { echo "images/build.sh: $engine is not installed" >&2; exit 2; }

args=(--build-arg "VERSION=$version" -f "$root/images/Dockerfile" -t "$tag")
[ -n "$base" ] && args+=(--build-arg "BASE=$base")
rm -rf "$root/images/ca/extra.pem"
if [ -n "$extra_ca" ]; then
  cp "$extra_ca" "$root/images/ca/extra.pem"
  args+=(--build-arg "EXTRA_CA=ca/extra.pem")
fi
if [ "$wheelhouse" = 1 ]; then
  # The image's Python must match this one (3.11): the wheels are built for it.
  # Offline when the wheelhouse already holds every requirement and llmstep's build backend (a
  # rebuild reaches no index); the index only for what is missing.
  wh="$root/images/wheelhouse"
  python3 -m pip wheel -q --no-index --find-links "$wh" --wheel-dir "$wh" -r "$root/images/requirements-step.txt" 2>/dev/null \
    || python3 -m pip wheel -q --wheel-dir "$wh" -r "$root/images/requirements-step.txt" "setuptools>=68"
  python3 -m pip wheel -q --no-deps --no-index --find-links "$wh" --wheel-dir "$wh" "$root" 2>/dev/null \
    || python3 -m pip wheel -q --no-deps --wheel-dir "$wh" "$root"
  args+=(--build-arg WHEELHOUSE=1)
fi
"$engine" build "${args[@]}" "$root"
# The image's modules (the list the build wrote) as its label io.llmstep.modules, which compile reads to
# warn about a step that imports a module the image lacks; a label cannot take a value the build
# computes, so it is a second, instant build.
ctr="$("$engine" create "$tag")"
modules="$("$engine" cp "$ctr:/opt/llmstep/modules.txt" - | tar -xO | paste -sd, -)"
"$engine" rm "$ctr" >/dev/null
labelctx="$(mktemp -d)"; trap 'rm -rf "$labelctx"' EXIT
printf 'FROM %s\nLABEL io.llmstep.modules="%s"\n' "$tag" "$modules" > "$labelctx/Containerfile"
"$engine" build -q -f "$labelctx/Containerfile" -t "$tag" "$labelctx" >/dev/null
echo "built $tag"

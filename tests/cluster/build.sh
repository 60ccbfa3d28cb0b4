#!/usr/bin/env bash
# Build the Kubernetes control plane and kubelet for the test cluster from Debian's source
# package, and cache the binaries outside the repository:
#
#   tests/cluster/build.sh            # prints the bin directory; reuses a cached build
#
# The source comes from `apt-get source kubernetes` against this machine's configured Debian
# mirror (checksums verified by apt), with a private apt configuration that adds only deb-src
# lines: no global apt file is changed. Kubernetes 1.20 vendors modern-go/reflect2 1.0.1, which
# crashes under Go >= 1.18 on the first custom-resource write; it is replaced by Debian's 1.0.2
# before building. `make WHAT=...` runs the code generators that a plain `go build` would skip.
# The pause (sandbox) image is compiled from the source package's own build/pause C file.
set -euo pipefail
cache="${LLMSTEP_K8S_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/llmstep/k8s}"
need=(dpkg-source go jq rsync gcc)
missing=()
for tool in "${need[@]}"; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if [ ! -d /usr/share/gocode/src/github.com/modern-go/reflect2 ] || [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq dpkg-dev golang-go jq rsync gcc libc6-dev golang-github-modern-go-reflect2-dev >/dev/null
fi

apt_dir="$cache/apt"
mkdir -p "$apt_dir/lists/partial"
grep -rhE '^(URIs:|deb[[:space:]])' /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list 2>/dev/null \
  | grep -v security | grep -oE '(https?|file)://[^[:space:]]+' | head -1 > "$apt_dir/mirror" || true
mirror="$(cat "$apt_dir/mirror")"
[ -n "$mirror" ] || { echo "tests/cluster/build.sh: no Debian mirror in the apt sources" >&2; exit 2; }
suite="$(. /etc/os-release && echo "$VERSION_CODENAME")"
echo "deb-src $mirror $suite main" > "$apt_dir/sources.list"
apt_opts=(-o APT::Sandbox::User=root -o "Dir::Etc::SourceList=$apt_dir/sources.list" -o "Dir::Etc::SourceParts=/dev/null" -o "Dir::State::Lists=$apt_dir/lists")
apt-get "${apt_opts[@]}" update -qq
version="$(apt-cache "${apt_opts[@]}" showsrc kubernetes | sed -n 's/^Version: //p' | head -1)"
[ -n "$version" ] || { echo "tests/cluster/build.sh: no kubernetes source package in $mirror $suite" >&2; exit 2; }
out="$cache/$version"
bins=(kube-apiserver kube-controller-manager kube-scheduler kubelet)
if [ -x "$out/bin/kubelet" ] && [ -x "$out/bin/pause" ] && [ -x "$out/bin/kube-apiserver" ]; then
  echo "$out/bin"; exit 0
fi

work="$cache/src"
rm -rf "$work" && mkdir -p "$work"
(cd "$work" && apt-get "${apt_opts[@]}" source -qq kubernetes >/dev/null 2>&1)
src="$(find "$work" -maxdepth 1 -mindepth 1 -type d | head -1)"
rm -rf "$src/vendor/github.com/modern-go/reflect2"
cp -r /usr/share/gocode/src/github.com/modern-go/reflect2 "$src/vendor/github.com/modern-go/reflect2"
rm -f "$src/vendor/github.com/modern-go/reflect2/go.mod"
(cd "$src" && make WHAT="cmd/kube-apiserver cmd/kube-controller-manager cmd/kube-scheduler cmd/kubelet" >&2)
mkdir -p "$out/bin"
for b in "${bins[@]}"; do cp "$src/_output/bin/$b" "$out/bin/"; done
gcc -Os -static -o "$out/bin/pause" "$src/build/pause/linux/pause.c"
rm -rf "$work"
echo "$out/bin"

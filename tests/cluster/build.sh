#!/usr/bin/env bash
# Build the test cluster's programs from their published Go modules and cache them outside the
# repository, one folder per component and version:
#
#   tests/cluster/build.sh kubernetes   # prints the bin folder; reuses a cached build
#   tests/cluster/build.sh etcd | argo | versitygw | tekton | tkn
#
# Nothing upstream is copied into the repository: each build runs in a scratch module in the
# cache. Two builds at once never share a scratch folder (one lock per component), and a
# finished build appears only once complete (built into a temporary folder, then renamed).
#
# Kubernetes: k8s.io/kubernetes's go.mod replaces its k8s.io/* staging modules with ./staging
# paths that the module zip lacks, so a plain `go install` fails; the scratch module requires
# k8s.io/kubernetes and replaces each staging module with its published v0.x twin. The version
# variables are set as Kubernetes' own build sets them, so the API server reports v1.34.x
# (Tekton refuses older servers). The pause (sandbox) image binary is compiled from the module's
# build/pause C file.
#
# etcd: Debian bookworm's 3.4.23 predates the watch progress notifications that the v1.34 API
# server's cache needs ("Too large resource version"), so etcd v3.6 is built the same way.
#
# Argo: the argo CLI embeds the UI's files (ui/dist/app); Argo's Makefile creates a placeholder
# when the UI is not built, and so does this script, in a scratch copy of the module (which also
# gets back a symlink that the module zip lacks).
#
# Tekton Pipelines v1.15.0 is the first release whose module has no replace lines, so the
# controller, the webhook and the per-pod binaries build against its own go.mod (from a scratch
# module that requires it, as the proxy may refuse the version list `go install` asks for). The tkn CLI's module
# (v0.46.0, the newest the proxy serves) has one replace line, so it is built from a scratch
# module that repeats it.
set -euo pipefail
K8S_VERSION=v1.34.4
ARGO_VERSION=v4.0.5
VERSITYGW_VERSION=v1.8.0
ETCD_VERSION=v3.6.6
TEKTON_VERSION=v1.15.0
TKN_VERSION=v0.46.0

cache="${LLMSTEP_CLUSTER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/llmstep/cluster}"
mkdir -p "$cache"
export GOFLAGS=-mod=mod CGO_ENABLED=0
export GOPATH="${GOPATH:-$(go env GOPATH)}"

component="${1:?usage: build.sh kubernetes|etcd|argo|versitygw|tekton|tkn}"
case "$component" in
  kubernetes) version=$K8S_VERSION ;;
  etcd) version=$ETCD_VERSION ;;
  argo) version=$ARGO_VERSION ;;
  versitygw) version=$VERSITYGW_VERSION ;;
  tekton) version=$TEKTON_VERSION ;;
  tkn) version=$TKN_VERSION ;;
  *) echo "build.sh: unknown component '$component' (kubernetes, etcd, argo, versitygw, tekton, tkn)" >&2; exit 2 ;;
esac
out="$cache/$component-$version"
if [ -f "$out/.complete" ]; then echo "$out/bin"; exit 0; fi

exec 9>"$cache/.lock-$component"
flock 9
if [ -f "$out/.complete" ]; then echo "$out/bin"; exit 0; fi
work="$cache/work-$component-$version"
rm -rf "$work" "$out.partial"
mkdir -p "$work" "$out.partial/bin"
cd "$work"

build_kubernetes() {
  local v=$1 minor
  minor="$(echo "$v" | cut -d. -f2)"
  go mod download -json "k8s.io/kubernetes@$v" >/dev/null
  local moddir gomod
  moddir="$(go env GOMODCACHE)/k8s.io/kubernetes@$v"
  gomod="$(go env GOMODCACHE)/cache/download/k8s.io/kubernetes/@v/$v.mod"
  {
    printf 'module llmstep.test/kubernetes\n\ngo 1.24.0\n\nrequire k8s.io/kubernetes %s\n\n' "$v"
    grep -oE '^\s+k8s.io/[a-z-]+ => \./staging' "$gomod" | awk -v s="v0.${minor}.${v##*.}" '{print "replace " $1 " => " $1 " " s}'
  } > go.mod
  printf '//go:build tools\n\npackage tools\n\nimport (\n' > tools.go
  for cmd in kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl; do
    printf '\t_ "k8s.io/kubernetes/cmd/%s"\n' "$cmd" >> tools.go
  done
  printf ')\n' >> tools.go
  go mod tidy -e >&2
  local ld="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld="$ld -X $pkg.gitVersion=$v -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
  done
  go build -trimpath -ldflags "$ld" -o "$out.partial/bin/" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kubectl >&2
  gcc -Os -static -o "$out.partial/bin/pause" "$moddir/build/pause/linux/pause.c"
}

build_etcd() {
  # go.etcd.io/etcd/server/v3 replaces its sibling modules with ../ paths as well; a scratch
  # module that requires the server builds it against their published versions.
  printf 'module llmstep.test/etcd\n\ngo 1.24.0\n\nrequire go.etcd.io/etcd/server/v3 %s\n' "$1" > go.mod
  printf '//go:build tools\n\npackage tools\n\nimport _ "go.etcd.io/etcd/server/v3"\n' > tools.go
  go mod tidy -e >&2
  go build -trimpath -ldflags "-s -w" -o "$out.partial/bin/etcd" go.etcd.io/etcd/server/v3 >&2
}

build_argo() {
  local v=$1 moddir
  go mod download -json "github.com/argoproj/argo-workflows/v4@$v" >/dev/null
  moddir="$(go env GOMODCACHE)/github.com/argoproj/argo-workflows/v4@$v"
  # The module cache is read-only (and a build overlay may not add files beneath it), so the CLI
  # is built from a scratch copy of the module with the placeholder added.
  cp -r "$moddir" src && chmod -R u+w src && mkdir -p src/ui/dist/app && touch src/ui/dist/app/placeholder
  # The repository's signal_linux.go is a symlink to signal_darwin.go, and module zips leave
  # symlinks out, so argoexec does not build from the zip alone; the link is made again here.
  [ -e src/workflow/executor/osspecific/signal_linux.go ] || ln -s signal_darwin.go src/workflow/executor/osspecific/signal_linux.go
  local ld="-s -w -X github.com/argoproj/argo-workflows/v4.version=$v"
  (cd src && go build -trimpath -ldflags "$ld" -o "$out.partial/bin/" ./cmd/workflow-controller ./cmd/argoexec ./cmd/argo) >&2
  # The CRDs this version installs, kept beside the binaries (tests compare them with tests/data).
  mkdir -p "$out.partial/crds"
  cp "$moddir"/manifests/base/crds/full/argoproj.io_*.yaml "$out.partial/crds/"
}

build_versitygw() {
  GOBIN="$out.partial/bin" go install -trimpath -ldflags "-s -w" "github.com/versity/versitygw/cmd/versitygw@$1" >&2
}

build_tekton() {
  local v=$1 moddir cmd cmds=(controller webhook entrypoint nop workingdirinit sidecarlogresults)
  # `go install pkg@version` would work, but it asks the proxy for the module's version list (for
  # deprecations), which a filtered proxy may refuse; a scratch module needs only the version itself.
  printf 'module llmstep.test/tekton\n\ngo 1.26\n\nrequire github.com/tektoncd/pipeline %s\n' "$v" > go.mod
  { printf '//go:build tools\n\npackage tools\n\nimport (\n'
    for cmd in "${cmds[@]}"; do printf '\t_ "github.com/tektoncd/pipeline/cmd/%s"\n' "$cmd"; done
    printf ')\n'; } > tools.go
  go mod tidy -e >&2
  for cmd in "${cmds[@]}"; do
    go build -trimpath -ldflags "-s -w" -o "$out.partial/bin/$cmd" "github.com/tektoncd/pipeline/cmd/$cmd" >&2
  done
  # The release's CRDs, webhook configurations and ConfigMaps, kept beside the binaries.
  go mod download -json "github.com/tektoncd/pipeline@$v" >/dev/null
  moddir="$(go env GOMODCACHE)/github.com/tektoncd/pipeline@$v"
  mkdir -p "$out.partial/config"
  cp -r "$moddir"/config/. "$out.partial/config/"
  chmod -R u+w "$out.partial/config"
}

build_tkn() {
  printf 'module llmstep.test/tkn\n\ngo 1.26\n\nrequire github.com/tektoncd/cli %s\n\n' "$1" > go.mod
  # the one replace line of the CLI's own go.mod (a module with replace lines cannot be go installed)
  printf 'replace github.com/alibabacloud-go/cr-20160607 => github.com/vdemeester/cr-20160607 v1.0.1\n' >> go.mod
  printf '//go:build tools\n\npackage tools\n\nimport _ "github.com/tektoncd/cli/cmd/tkn"\n' > tools.go
  go mod tidy -e >&2
  go build -trimpath -ldflags "-s -w -X github.com/tektoncd/cli/pkg/cmd/version.clientVersion=${1#v}" \
    -o "$out.partial/bin/tkn" github.com/tektoncd/cli/cmd/tkn >&2
}

"build_$component" "$version"
touch "$out.partial/.complete"
rm -rf "$out"
mv "$out.partial" "$out"
cd /
rm -rf "$work"
echo "$out/bin"

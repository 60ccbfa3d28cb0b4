# Source this to run podman on machines without systemd or CAP_SYS_RESOURCE (CI, sandboxes):
#
#   . images/podman-env.sh [DIR]
#
# It writes its own containers.conf and storage.conf into DIR (default: ~/.cache/llmstep/podman)
# and points podman at them with CONTAINERS_CONF / CONTAINERS_STORAGE_CONF; no global config is
# touched. The settings: runc as the runtime, the cgroupfs cgroup manager (no systemd), the
# overlay storage driver, and a runc wrapper that drops the OCI rlimits: without
# CAP_SYS_RESOURCE runc cannot set them on the container process ("error setting rlimit").
llmstep_podman_dir="${1:-${XDG_CACHE_HOME:-$HOME/.cache}/llmstep/podman}"
mkdir -p "$llmstep_podman_dir"
cat > "$llmstep_podman_dir/runc-no-rlimits" <<'WRAP'
#!/bin/sh
bundle=""; prev=""
for a in "$@"; do
  [ "$prev" = "--bundle" ] && bundle="$a"
  case "$a" in --bundle=*) bundle="${a#--bundle=}";; esac
  prev="$a"
done
if [ -n "$bundle" ] && [ -f "$bundle/config.json" ]; then
  python3 -c 'import json, sys
p = sys.argv[1]; c = json.load(open(p)); c.get("process", {}).pop("rlimits", None); json.dump(c, open(p, "w"))' "$bundle/config.json"
fi
exec runc "$@"
WRAP
chmod +x "$llmstep_podman_dir/runc-no-rlimits"
cat > "$llmstep_podman_dir/containers.conf" <<CONF
[engine]
runtime = "llmstep-runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
[engine.runtimes]
llmstep-runc = ["$llmstep_podman_dir/runc-no-rlimits"]
CONF
cat > "$llmstep_podman_dir/storage.conf" <<CONF
[storage]
driver = "overlay"
runroot = "$llmstep_podman_dir/run"
graphroot = "$llmstep_podman_dir/storage"
CONF
export CONTAINERS_CONF="$llmstep_podman_dir/containers.conf"
export CONTAINERS_STORAGE_CONF="$llmstep_podman_dir/storage.conf"

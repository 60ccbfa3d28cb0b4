"""A real single-node Kubernetes on loopback for the test suite, from Debian's packages.

    python tests/cluster/cluster.py start   # prints the kubeconfig path; state in $LLMSTEP_K8S_STATE
    python tests/cluster/cluster.py stop

etcd, kube-apiserver (token auth, RBAC), kube-controller-manager, kube-scheduler, containerd and
kubelet, all bound to 127.0.0.1. Pods use hostNetwork or a loopback-only CNI network, so nothing
is created in the host's network namespace. Every registry a test image can name resolves to a
local endpoint that answers "not found", so a pull fails for real without leaving the machine.
Everything started is stopped by PID; mounts, cgroups and changed sysctls are cleaned up.
Pods without hostNetwork get an eth0 (a lone bridge device) inside their own network namespace
(tests/cluster/netns-only-cni): an address the runtime needs, and no route anywhere.

This VM's quirks live in the configs written here (never in global ones): cgroupfs cgroups,
``restrict_oom_score_adj`` (no CAP_SYS_RESOURCE), the node named ``127.0.0.1`` (kubelet refuses
``--node-ip=127.0.0.1``), and ``AWS_EC2_METADATA_DISABLED`` so kubelet's credential provider never
reaches for a cloud metadata address.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

HERE = Path(__file__).resolve().parent
STATE = Path(os.environ.get("LLMSTEP_K8S_STATE", "/tmp/llmstep-k8s"))
TOKEN = "llmstep-test-admin-token"
SYSCTLS = ("vm/overcommit_memory", "kernel/panic", "kernel/panic_on_oops", "kernel/keys/root_maxkeys",
           "kernel/keys/root_maxbytes")  # fmt: skip
# Registries an image reference can name in the tests: Docker's default for short names, and the
# ones Kubernetes and common images use. containerd 1.6 has no catch-all hosts.toml.
REGISTRIES = ("docker.io", "registry-1.docker.io", "registry.k8s.io", "k8s.gcr.io", "gcr.io", "quay.io", "ghcr.io")
PAUSE_IMAGE = "localhost/llmstep-pause:3.4"


class ClusterError(RuntimeError):
    """The cluster could not start; the message carries the failing component's log tail."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class NotFoundRegistry:
    """A local registry endpoint that answers every request with 404."""

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _missing(self):
                body = json.dumps({"errors": [{"code": "NAME_UNKNOWN", "message": "repository name not known to registry"}]}).encode()
                self.send_response(404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_HEAD = do_POST = _missing  # noqa: N815

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


class Cluster:
    def __init__(self, bin_dir: Path, state: Path = STATE) -> None:
        self.bin = bin_dir
        self.state = state
        self.procs: dict[str, subprocess.Popen] = {}
        self.kubeconfig = state / "kubeconfig"
        self.pause_like = PAUSE_IMAGE
        self.step_image = ""

    # ------------------------------------------------------------------ start

    def start(self, timeout: float = 120) -> Path:
        if self.state.exists():
            self.stop()
            shutil.rmtree(self.state, ignore_errors=True)
        self.state.mkdir(parents=True)
        (self.state / "logs").mkdir()
        self._save_sysctls()
        self.registry = NotFoundRegistry()
        self.ports = {name: free_port() for name in ("etcd", "etcd-peer", "apiserver", "kubelet", "healthz")}
        self._certs()
        self._start("etcd", [
            "etcd", "--data-dir", str(self.state / "etcd"), "--name", "llmstep",
            "--listen-client-urls", f"http://127.0.0.1:{self.ports['etcd']}",
            "--advertise-client-urls", f"http://127.0.0.1:{self.ports['etcd']}",
            "--listen-peer-urls", f"http://127.0.0.1:{self.ports['etcd-peer']}",
            "--initial-advertise-peer-urls", f"http://127.0.0.1:{self.ports['etcd-peer']}",
            "--initial-cluster", f"llmstep=http://127.0.0.1:{self.ports['etcd-peer']}",
        ])  # fmt: skip
        self._start("kube-apiserver", [
            str(self.bin / "kube-apiserver"), "--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1",
            "--secure-port", str(self.ports["apiserver"]), "--etcd-servers", f"http://127.0.0.1:{self.ports['etcd']}",
            "--token-auth-file", str(self.state / "tokens.csv"), "--authorization-mode", "Node,RBAC",
            "--client-ca-file", str(self.state / "ca.crt"),
            "--tls-cert-file", str(self.state / "apiserver.crt"), "--tls-private-key-file", str(self.state / "apiserver.key"),
            "--service-account-key-file", str(self.state / "sa.pub"),
            "--service-account-signing-key-file", str(self.state / "sa.key"),
            "--service-account-issuer", "https://kubernetes.default.svc",
            "--service-cluster-ip-range", "10.96.0.0/24", "--allow-privileged=true",
            "--kubelet-client-certificate", str(self.state / "admin.crt"), "--kubelet-client-key", str(self.state / "admin.key"),
            "--kubelet-preferred-address-types", "Hostname,InternalIP",
        ])  # fmt: skip
        self._write_kubeconfig()
        self._wait("kube-apiserver", self._apiserver_ready, timeout)
        self._start("kube-controller-manager", [
            str(self.bin / "kube-controller-manager"), "--kubeconfig", str(self.kubeconfig), "--bind-address", "127.0.0.1",
            "--leader-elect=false", "--service-account-private-key-file", str(self.state / "sa.key"),
            "--root-ca-file", str(self.state / "ca.crt"), "--use-service-account-credentials",
            "--controllers", "*,-nodeipam,-service,-route,-cloud-node-lifecycle", "--port", "0",
            "--secure-port", str(free_port()),
        ])  # fmt: skip
        self._start("kube-scheduler", [
            str(self.bin / "kube-scheduler"), "--kubeconfig", str(self.kubeconfig), "--leader-elect=false",
            "--bind-address", "127.0.0.1", "--port", "0", "--secure-port", str(free_port()),
        ])  # fmt: skip
        self._containerd()
        self._wait("containerd", lambda: (self.state / "containerd.sock").exists(), 30)
        self._import_pause()
        self._kubelet()
        self._wait("kubelet", self._node_ready, timeout)
        return self.kubeconfig

    def _start(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> None:
        log = open(self.state / "logs" / f"{name}.log", "ab")  # noqa: SIM115 - lives with the process
        self.procs[name] = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            env=env or {"PATH": os.environ["PATH"]}, start_new_session=True)  # fmt: skip
        (self.state / "pids").mkdir(exist_ok=True)
        (self.state / "pids" / name).write_text(str(self.procs[name].pid))

    def _wait(self, name: str, ready, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for proc_name, proc in self.procs.items():
                if proc.poll() is not None:
                    raise ClusterError(f"{proc_name} exited ({proc.returncode}):\n{_tail(self.state / 'logs' / f'{proc_name}.log')}")
            try:
                if ready():
                    return
            except Exception:  # noqa: BLE001 - not ready yet
                pass
            time.sleep(0.5)
        raise ClusterError(f"{name} not ready after {timeout:.0f} s:\n{_tail(self.state / 'logs' / f'{name}.log')}")

    def _certs(self) -> None:
        s = self.state
        (s / "tokens.csv").write_text(
            f'{TOKEN},admin,admin,"system:masters"\n'
            f'{TOKEN}-node,system:node:127.0.0.1,node-127.0.0.1,"system:nodes"\n'
        )

        def ssl(*args: str) -> None:
            subprocess.run(["openssl", *args], check=True, capture_output=True)

        ssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=llmstep-test-ca",
            "-keyout", str(s / "ca.key"), "-out", str(s / "ca.crt"))  # fmt: skip
        for name, subject, san in (("apiserver", "/CN=kube-apiserver", "IP:127.0.0.1,DNS:localhost,DNS:kubernetes,IP:10.96.0.1"),
                                   ("admin", "/O=system:masters/CN=admin", None),
                                   ("kubelet", "/CN=127.0.0.1", "IP:127.0.0.1,DNS:localhost")):  # fmt: skip
            ssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", subject, "-keyout", str(s / f"{name}.key"), "-out", str(s / f"{name}.csr"))
            ext = s / f"{name}.ext"
            ext.write_text(f"subjectAltName={san}\n" if san else "basicConstraints=CA:FALSE\n")
            ssl("x509", "-req", "-in", str(s / f"{name}.csr"), "-CA", str(s / "ca.crt"), "-CAkey", str(s / "ca.key"),
                "-CAcreateserial", "-days", "2", "-extfile", str(ext), "-out", str(s / f"{name}.crt"))  # fmt: skip
        ssl("genrsa", "-out", str(s / "sa.key"), "2048")
        ssl("rsa", "-in", str(s / "sa.key"), "-pubout", "-out", str(s / "sa.pub"))

    def _kubeconfig(self, token: str) -> dict:
        return {
            "apiVersion": "v1", "kind": "Config", "current-context": "llmstep-test",
            "clusters": [{"name": "llmstep-test", "cluster": {"server": f"https://127.0.0.1:{self.ports['apiserver']}",
                                                             "certificate-authority": str(self.state / "ca.crt")}}],
            "users": [{"name": "user", "user": {"token": token}}],
            "contexts": [{"name": "llmstep-test", "context": {"cluster": "llmstep-test", "user": "user"}}],
        }  # fmt: skip

    def _write_kubeconfig(self) -> None:
        self.kubeconfig.write_text(json.dumps(self._kubeconfig(TOKEN)))
        (self.state / "kubelet.kubeconfig").write_text(json.dumps(self._kubeconfig(f"{TOKEN}-node")))

    def _api(self, path: str) -> dict:
        import ssl
        import urllib.request

        ctx = ssl.create_default_context(cafile=str(self.state / "ca.crt"))
        req = urllib.request.Request(f"https://127.0.0.1:{self.ports['apiserver']}{path}",
                                     headers={"Authorization": f"Bearer {TOKEN}"})  # fmt: skip
        with urllib.request.urlopen(req, context=ctx, timeout=5) as resp:  # noqa: S310 - loopback only
            return json.loads(resp.read() or b"{}")

    def _apiserver_ready(self) -> bool:
        import ssl
        import urllib.request

        ctx = ssl.create_default_context(cafile=str(self.state / "ca.crt"))
        req = urllib.request.Request(f"https://127.0.0.1:{self.ports['apiserver']}/readyz",
                                     headers={"Authorization": f"Bearer {TOKEN}"})  # fmt: skip
        with urllib.request.urlopen(req, context=ctx, timeout=5) as resp:  # noqa: S310 - loopback only
            return resp.status == 200

    def _node_ready(self) -> bool:
        node = self._api("/api/v1/nodes/127.0.0.1")
        return any(c["type"] == "Ready" and c["status"] == "True" for c in node.get("status", {}).get("conditions", []))

    def _containerd(self) -> None:
        s = self.state
        certs = s / "certs.d"
        for registry in REGISTRIES:
            (certs / registry).mkdir(parents=True, exist_ok=True)
            (certs / registry / "hosts.toml").write_text(
                f'server = "http://127.0.0.1:{self.registry.port}"\n\n'
                f'[host."http://127.0.0.1:{self.registry.port}"]\n  capabilities = ["pull", "resolve"]\n'
            )
        cni, cni_bin = s / "cni", s / "cni-bin"
        cni.mkdir()
        cni_bin.mkdir()
        (cni_bin / "loopback").symlink_to("/usr/lib/cni/loopback")
        shutil.copy(HERE / "netns-only-cni", cni_bin / "netns-only")
        (cni / "10-netns-only.conflist").write_text(json.dumps({
            "cniVersion": "0.4.0", "name": "llmstep-netns-only", "plugins": [{"type": "netns-only"}],
        }))  # fmt: skip
        (s / "containerd.toml").write_text(f"""version = 2
root = "{s}/containerd/root"
state = "{s}/containerd/state"
[grpc]
  address = "{s}/containerd.sock"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE_IMAGE}"
  restrict_oom_score_adj = true
  disable_apparmor = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{cni_bin}"
    conf_dir = "{cni}"
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "{certs}"
""")
        self._start("containerd", ["containerd", "--config", str(s / "containerd.toml")])

    def ctr(self, *args: str, input_bytes: bytes | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(["ctr", "--address", str(self.state / "containerd.sock"), "-n", "k8s.io", *args],
                              input=input_bytes, capture_output=True, check=True)  # fmt: skip

    def _import_pause(self) -> None:
        """The sandbox image: the source package's pause binary in a one-layer image."""
        from image_archive import single_binary_image

        self.ctr("images", "import", "-", input_bytes=single_binary_image(self.bin / "pause", PAUSE_IMAGE, "/pause"))

    def import_image(self, archive: Path) -> None:
        """Import a docker/OCI archive (podman save) into the cluster's containerd."""
        self.ctr("images", "import", "--all-platforms", str(archive))

    def _kubelet(self) -> None:
        s = self.state
        (s / "kubelet.yaml").write_text(json.dumps({
            "apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration",
            "address": "127.0.0.1", "port": self.ports["kubelet"], "readOnlyPort": 0,
            "healthzBindAddress": "127.0.0.1", "healthzPort": self.ports["healthz"],
            "cgroupDriver": "cgroupfs", "failSwapOn": False, "staticPodPath": "",
            "authentication": {"anonymous": {"enabled": False}, "webhook": {"enabled": True},
                               "x509": {"clientCAFile": str(s / "ca.crt")}},
            "authorization": {"mode": "AlwaysAllow"},
            "tlsCertFile": str(s / "kubelet.crt"), "tlsPrivateKeyFile": str(s / "kubelet.key"),
            "evictionHard": {"memory.available": "100Mi", "nodefs.available": "1%", "imagefs.available": "1%"},
            "imageGCHighThresholdPercent": 100, "serializeImagePulls": False,
            "cgroupsPerQOS": True, "enforceNodeAllocatable": [], "protectKernelDefaults": False,
            "resolvConf": "", "clusterDomain": "cluster.local",
        }))  # fmt: skip
        env = {"PATH": os.environ["PATH"], "AWS_EC2_METADATA_DISABLED": "true"}
        self._start("kubelet", [
            str(self.bin / "kubelet"), "--config", str(s / "kubelet.yaml"), "--kubeconfig", str(s / "kubelet.kubeconfig"),
            "--container-runtime", "remote", "--container-runtime-endpoint", f"unix://{s}/containerd.sock",
            "--hostname-override", "127.0.0.1", "--root-dir", str(s / "kubelet"),
            "--cert-dir", str(s / "kubelet-pki"), "--register-node=true", "--v", "1",
        ], env=env)  # fmt: skip

    # ------------------------------------------------------------------ stop

    def stop(self) -> None:
        """Stop everything this cluster started, in an order that lets nothing come back: the
        kubelet first (it would restart pods), then the pods' processes, the containerd shims,
        and the rest; then unmount, remove cgroups and restore sysctls."""
        pids_dir = self.state / "pids"
        pids = {p.name: int(p.read_text()) for p in pids_dir.iterdir()} if pids_dir.is_dir() else {}
        for name in ("kubelet", "kube-scheduler", "kube-controller-manager"):
            if pids.get(name):
                _kill_group(pids[name])
        self._kill_pod_processes()
        self._stop_shims()
        for name in ("containerd", "kube-apiserver", "etcd"):
            if pids.get(name):
                _kill_group(pids[name])
        self._unmount()
        self._remove_cgroups()
        self._restore_sysctls()
        if hasattr(self, "registry"):
            self.registry.server.shutdown()

    def _kill_pod_processes(self) -> None:
        """Every process in a pod's cgroup (cgroupfs: under kubepods in each hierarchy)."""
        pids: set[int] = set()
        for procs in Path("/sys/fs/cgroup").glob("*/kubepods/**/cgroup.procs"):
            try:
                pids |= {int(p) for p in procs.read_text().split()}
            except OSError:
                continue
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def _stop_shims(self) -> None:
        """containerd-shim processes outlive containerd: stop the ones this cluster started."""
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if "containerd-shim" in cmdline and str(self.state) in cmdline:
                try:
                    os.kill(int(proc.name), signal.SIGKILL)
                except ProcessLookupError:
                    pass

    def _unmount(self) -> None:
        mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
        for target in sorted((m for m in mounts if m.startswith(str(self.state))), key=len, reverse=True):
            subprocess.run(["umount", "-l", target], capture_output=True)

    def _remove_cgroups(self) -> None:
        root = Path("/sys/fs/cgroup")
        for hierarchy in root.iterdir() if root.is_dir() else []:
            for name in ("kubepods", "kubepods.slice"):
                base = hierarchy / name
                if base.is_dir():
                    for folder in sorted((p for p in base.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
                        try:
                            folder.rmdir()
                        except OSError:
                            pass
                    try:
                        base.rmdir()
                    except OSError:
                        pass

    def _save_sysctls(self) -> None:
        saved = {}
        for key in SYSCTLS:
            path = Path("/proc/sys") / key
            if path.exists():
                saved[key] = path.read_text().strip()
        (self.state / "sysctls.json").write_text(json.dumps(saved))

    def _restore_sysctls(self) -> None:
        path = self.state / "sysctls.json"
        if not path.exists():
            return
        for key, value in json.loads(path.read_text()).items():
            try:
                (Path("/proc/sys") / key).write_text(value)
            except OSError:
                pass


def _kill_group(pid: int) -> None:
    for sig, grace in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pid, sig)
        except (ProcessLookupError, PermissionError):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                return
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
            time.sleep(0.1)


def build() -> Path:
    """Build (or reuse) the binaries; return their folder."""
    out = subprocess.run([str(HERE / "build.sh")], capture_output=True, text=True)
    if out.returncode != 0:
        raise ClusterError(f"building Kubernetes failed:\n{out.stderr[-4000:]}")
    return Path(out.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    cluster = Cluster(build())
    if sys.argv[1:] == ["start"]:
        print(cluster.start())
        print("running; stop with: python tests/cluster/cluster.py stop", file=sys.stderr)
        signal.pause()
    elif sys.argv[1:] == ["stop"]:
        cluster.stop()
    else:
        print(__doc__)
        sys.exit(2)

"""A real single-node Kubernetes with Argo Workflows and Tekton Pipelines on loopback, for the test suite.

    python tests/cluster/cluster.py start   # builds what is missing; last line: export KUBECONFIG=PATH
    python tests/cluster/cluster.py stop    # stops everything it started, by PID
    python tests/cluster/cluster.py status  # what runs, and where the logs are
    python tests/cluster/cluster.py images  # rebuild the step image from the checkout, into the node

Kubernetes v1.34 (kube-apiserver with token auth and RBAC, kube-controller-manager,
kube-scheduler, kubelet), etcd v3.6 and Debian's containerd; the Argo Workflows controller and Argo Server
(v4.0) as host processes, as Argo's own e2e set-up runs them; the Tekton Pipelines controller and
webhook (v1.15) as host processes too, and the tkn CLI (tests/cluster/tekton.py); versitygw as the
S3 artifact repository. Every program is built from its published Go module by tests/cluster/build.sh and
cached outside the repository. Everything listens on 127.0.0.1 (Argo's fixed health port, the
Argo Server, and Tekton's webhook, probe and profiling ports, which have no bind-address option,
listen on all of the host's addresses, which nothing outside reaches).

Network rule: nothing here contacts an address beyond 127.0.0.0/8. Workflow pods use the host's
network (the controller's ``workflowDefaults``, so the documents stay as users get them) and the
Argo executor reaches the API server at 127.0.0.1 (the controller's ``executor.env``, which wins
over the service variables the kubelet injects); the API server's certificate names 127.0.0.1.
Pods without hostNetwork get an eth0 (a lone bridge device) inside their own network namespace
(tests/cluster/netns-only-cni): an address the runtime needs, and no route anywhere. Every
registry a test image can name resolves to a local endpoint that answers "not found", so a pull
fails for real without leaving the machine.

This VM's quirks live in the configs written here (never in global ones): cgroupfs cgroups on a
hybrid cgroup v1 host (``failCgroupV1: false``; Kubernetes 1.35 refuses it),
``restrict_oom_score_adj`` (no CAP_SYS_RESOURCE), the node named ``127.0.0.1``, and
``AWS_EC2_METADATA_DISABLED`` so no credential provider reaches for a cloud metadata address.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
STATE = Path(os.environ.get("LLMSTEP_K8S_STATE", "/tmp/llmstep-k8s"))
TOKEN = "llmstep-test-admin-token"
SYSCTLS = (
    "vm/overcommit_memory",
    "kernel/panic",
    "kernel/panic_on_oops",
    "kernel/keys/root_maxkeys",
    "kernel/keys/root_maxbytes",
)
# Registries an image reference can name in the tests: Docker's default for short names, and the
# ones Kubernetes and common images use. containerd 1.6 has no catch-all hosts.toml.
REGISTRIES = ("docker.io", "registry-1.docker.io", "registry.k8s.io", "k8s.gcr.io", "gcr.io", "quay.io", "ghcr.io")
PAUSE_IMAGE = "localhost/llmstep-pause:3.10"
COMPONENTS = ("kubernetes", "etcd", "argo", "versitygw", "tekton", "tkn")


class ClusterError(RuntimeError):
    """The cluster could not start; the message carries the failing component's log tail."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def build(component: str) -> Path:
    """Build (or reuse) one component's programs; return their bin folder."""
    out = subprocess.run([str(HERE / "build.sh"), component], capture_output=True, text=True)
    if out.returncode != 0:
        raise ClusterError(f"building {component} failed:\n{out.stderr[-4000:]}")
    return Path(out.stdout.strip().splitlines()[-1])


class Cluster:
    def __init__(self, state: Path = STATE, bins: dict[str, Path] | None = None) -> None:
        self.state = state
        self.bins = bins or {}
        self.given_bins = bins is not None  # else start() asks build.sh, never trusting an older state's bins.json
        self.procs: dict[str, subprocess.Popen] = {}
        self.kubeconfig = state / "kubeconfig"
        self.step_image = ""
        self.ports: dict[str, int] = {}
        if (state / "ports.json").exists():
            self.ports = json.loads((state / "ports.json").read_text())
            self.bins = {k: Path(v) for k, v in json.loads((state / "bins.json").read_text()).items()}
            self.step_image = (state / "step-image").read_text() if (state / "step-image").exists() else ""

    def running(self) -> bool:
        """A cluster started earlier (``cluster.py start``) is up: its API server answers and
        its Argo controller lives."""
        pid = self.state / "pids" / "workflow-controller"
        if not self.ports or not pid.exists() or not Path(f"/proc/{pid.read_text()}").exists():
            return False
        try:
            return self._apiserver_ready()
        except OSError:
            return False

    def bin(self, component: str, name: str) -> str:
        return str(self.bins[component] / name)

    @property
    def gateway_url(self) -> str:
        """The cluster's OpenAI-compatible model gateway (an echoing stand-in on loopback)."""
        return f"http://127.0.0.1:{self.ports['gateway']}/v1"

    @property
    def argo_server_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['argo-server']}"

    def s3_object(self, key: str) -> bytes:
        """An object of the artifact repository, read from versitygw's posix backend."""
        import argo

        return (self.state / "s3" / argo.BUCKET / key).read_bytes()

    @property
    def env(self) -> dict[str, str]:
        """The environment for kubectl and argo against this cluster."""
        path = f"{self.bins['kubernetes']}:{self.bins['argo']}:{self.bins['tkn']}:{os.environ.get('PATH', '')}"
        return {**os.environ, "PATH": path, "KUBECONFIG": str(self.kubeconfig)}

    # ------------------------------------------------------------------ start

    def start(self, timeout: float = 120) -> Path:
        for component in COMPONENTS:
            if not self.given_bins or component not in self.bins:
                self.bins[component] = build(component)  # the cached build for this cache and version
        if self.state.exists():
            self.stop()
            shutil.rmtree(self.state, ignore_errors=True)
        self.state.mkdir(parents=True)
        (self.state / "logs").mkdir()
        self._save_sysctls()
        self.ports = {
            name: free_port()
            for name in (
                "etcd",
                "etcd-peer",
                "apiserver",
                "kubelet",
                "healthz",
                "registry",
                "s3",
                "argo-server",
                "gateway",
                "tekton-webhook",
                "tekton-probes",
            )
        }
        (self.state / "ports.json").write_text(json.dumps(self.ports))
        (self.state / "bins.json").write_text(json.dumps({k: str(v) for k, v in self.bins.items()}))
        self._start(
            "registry",
            [sys.executable, str(HERE / "registry.py"), str(self.ports["registry"])],
            env={"PATH": os.environ["PATH"]},
        )
        self._start(
            "model-gateway",
            [sys.executable, str(ROOT / "tests" / "openai_server.py"), str(self.ports["gateway"])],
            env={"PATH": os.environ["PATH"]},
        )
        self._certs()
        self._start(
            "etcd",
            [
                self.bin("etcd", "etcd"),
                "--data-dir",
                str(self.state / "etcd"),
                "--name",
                "llmstep",
                "--listen-client-urls",
                f"http://127.0.0.1:{self.ports['etcd']}",
                "--advertise-client-urls",
                f"http://127.0.0.1:{self.ports['etcd']}",
                "--listen-peer-urls",
                f"http://127.0.0.1:{self.ports['etcd-peer']}",
                "--initial-advertise-peer-urls",
                f"http://127.0.0.1:{self.ports['etcd-peer']}",
                "--initial-cluster",
                f"llmstep=http://127.0.0.1:{self.ports['etcd-peer']}",
            ],
        )
        self._start(
            "kube-apiserver",
            [
                self.bin("kubernetes", "kube-apiserver"),
                "--bind-address",
                "127.0.0.1",
                "--advertise-address",
                "127.0.0.1",
                "--secure-port",
                str(self.ports["apiserver"]),
                "--etcd-servers",
                f"http://127.0.0.1:{self.ports['etcd']}",
                "--token-auth-file",
                str(self.state / "tokens.csv"),
                "--authorization-mode",
                "Node,RBAC",
                "--client-ca-file",
                str(self.state / "ca.crt"),
                "--tls-cert-file",
                str(self.state / "apiserver.crt"),
                "--tls-private-key-file",
                str(self.state / "apiserver.key"),
                "--service-account-key-file",
                str(self.state / "sa.pub"),
                "--service-account-signing-key-file",
                str(self.state / "sa.key"),
                "--service-account-issuer",
                "https://kubernetes.default.svc",
                "--service-cluster-ip-range",
                "10.96.0.0/24",
                "--allow-privileged=true",
                "--kubelet-client-certificate",
                str(self.state / "admin.crt"),
                "--kubelet-client-key",
                str(self.state / "admin.key"),
                "--kubelet-preferred-address-types",
                "Hostname,InternalIP",
            ],
        )
        self._write_kubeconfig()
        self._wait("kube-apiserver", self._apiserver_ready, timeout)
        self._start(
            "kube-controller-manager",
            [
                self.bin("kubernetes", "kube-controller-manager"),
                "--kubeconfig",
                str(self.kubeconfig),
                "--bind-address",
                "127.0.0.1",
                "--secure-port",
                str(free_port()),
                "--leader-elect=false",
                "--service-account-private-key-file",
                str(self.state / "sa.key"),
                "--root-ca-file",
                str(self.state / "ca.crt"),
                "--use-service-account-credentials",
                "--controllers",
                "*,-node-ipam-controller,-service-lb-controller,-node-route-controller,"
                "-cloud-node-lifecycle-controller",
            ],
        )
        self._start(
            "kube-scheduler",
            [
                self.bin("kubernetes", "kube-scheduler"),
                "--kubeconfig",
                str(self.kubeconfig),
                "--leader-elect=false",
                "--bind-address",
                "127.0.0.1",
                "--secure-port",
                str(free_port()),
            ],
        )
        self._containerd()
        self._wait("containerd", lambda: (self.state / "containerd.sock").exists(), 30)
        self._import_pause()
        self._kubelet()
        self._wait("kubelet", self._node_ready, timeout)
        import argo

        import tekton

        argo.install(self)
        tekton.install(self)
        tekton.prepare_namespace(self, "default")
        return self.kubeconfig

    def _start(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> None:
        log = open(self.state / "logs" / f"{name}.log", "ab")  # lives with the process
        self.procs[name] = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env or {"PATH": os.environ["PATH"]},
            start_new_session=True,
        )
        (self.state / "pids").mkdir(exist_ok=True)
        (self.state / "pids" / name).write_text(str(self.procs[name].pid))

    def _wait(self, name: str, ready, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for proc_name, proc in self.procs.items():
                if proc.poll() is not None:
                    raise ClusterError(
                        f"{proc_name} exited ({proc.returncode}):\n{tail(self.state / 'logs' / f'{proc_name}.log')}"
                    )
            try:
                if ready():
                    return
            except Exception:  # not ready yet
                pass
            time.sleep(0.5)
        raise ClusterError(f"{name} not ready after {timeout:.0f} s:\n{tail(self.state / 'logs' / f'{name}.log')}")

    def _certs(self) -> None:
        s = self.state
        (s / "tokens.csv").write_text(
            f'{TOKEN},admin,admin,"system:masters"\n{TOKEN}-node,system:node:127.0.0.1,node-127.0.0.1,"system:nodes"\n'
        )

        def ssl(*args: str) -> None:
            subprocess.run(["openssl", *args], check=True, capture_output=True)

        ssl(
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=llmstep-test-ca",
            "-keyout",
            str(s / "ca.key"),
            "-out",
            str(s / "ca.crt"),
        )
        for name, subject, san in (
            ("apiserver", "/CN=kube-apiserver", "IP:127.0.0.1,DNS:localhost,DNS:kubernetes,IP:10.96.0.1"),
            ("admin", "/O=system:masters/CN=admin", None),
            ("kubelet", "/CN=127.0.0.1", "IP:127.0.0.1,DNS:localhost"),
        ):
            ssl(
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-subj",
                subject,
                "-keyout",
                str(s / f"{name}.key"),
                "-out",
                str(s / f"{name}.csr"),
            )
            ext = s / f"{name}.ext"
            ext.write_text(f"subjectAltName={san}\n" if san else "basicConstraints=CA:FALSE\n")
            ssl(
                "x509",
                "-req",
                "-in",
                str(s / f"{name}.csr"),
                "-CA",
                str(s / "ca.crt"),
                "-CAkey",
                str(s / "ca.key"),
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                str(ext),
                "-out",
                str(s / f"{name}.crt"),
            )
        ssl("genrsa", "-out", str(s / "sa.key"), "2048")
        ssl("rsa", "-in", str(s / "sa.key"), "-pubout", "-out", str(s / "sa.pub"))

    def kubeconfig_for(self, token: str, namespace: str | None = None) -> dict:
        context = {"cluster": "llmstep-test", "user": "user"}
        if namespace:
            context["namespace"] = namespace
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "current-context": "llmstep-test",
            "clusters": [
                {
                    "name": "llmstep-test",
                    "cluster": {
                        "server": f"https://127.0.0.1:{self.ports['apiserver']}",
                        "certificate-authority": str(self.state / "ca.crt"),
                    },
                }
            ],
            "users": [{"name": "user", "user": {"token": token}}],
            "contexts": [{"name": "llmstep-test", "context": context}],
        }

    def _write_kubeconfig(self) -> None:
        self.kubeconfig.write_text(json.dumps(self.kubeconfig_for(TOKEN)))
        (self.state / "kubelet.kubeconfig").write_text(json.dumps(self.kubeconfig_for(f"{TOKEN}-node")))

    def _get(self, path: str) -> bytes:
        import ssl
        import urllib.request

        ctx = ssl.create_default_context(cafile=str(self.state / "ca.crt"))
        req = urllib.request.Request(
            f"https://127.0.0.1:{self.ports['apiserver']}{path}", headers={"Authorization": f"Bearer {TOKEN}"}
        )
        with urllib.request.urlopen(req, context=ctx, timeout=30) as resp:  # loopback only
            return resp.read()

    def api(self, path: str) -> dict:
        return json.loads(self._get(path) or b"{}")

    def _apiserver_ready(self) -> bool:
        return self._get("/readyz") == b"ok"

    def _node_ready(self) -> bool:
        node = self.api("/api/v1/nodes/127.0.0.1")
        return any(c["type"] == "Ready" and c["status"] == "True" for c in node.get("status", {}).get("conditions", []))

    def kubectl(self, *args: str, input_text: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
        out = subprocess.run(
            [self.bin("kubernetes", "kubectl"), *args], input=input_text, capture_output=True, text=True, env=self.env
        )
        if check and out.returncode != 0:
            raise ClusterError(f"kubectl {' '.join(args)}: {out.stderr.strip()[-3000:]}")
        return out

    def _containerd(self) -> None:
        s = self.state
        certs = s / "certs.d"
        for registry in REGISTRIES:
            (certs / registry).mkdir(parents=True, exist_ok=True)
            (certs / registry / "hosts.toml").write_text(
                f'server = "http://127.0.0.1:{self.ports["registry"]}"\n\n'
                f'[host."http://127.0.0.1:{self.ports["registry"]}"]\n  capabilities = ["pull", "resolve"]\n'
            )
        cni, cni_bin = s / "cni", s / "cni-bin"
        cni.mkdir()
        cni_bin.mkdir()
        (cni_bin / "loopback").symlink_to("/usr/lib/cni/loopback")
        shutil.copy(HERE / "netns-only-cni", cni_bin / "netns-only")
        (cni / "10-netns-only.conflist").write_text(
            json.dumps({"cniVersion": "0.4.0", "name": "llmstep-netns-only", "plugins": [{"type": "netns-only"}]})
        )
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
        return subprocess.run(
            ["ctr", "--address", str(self.state / "containerd.sock"), "-n", "k8s.io", *args],
            input=input_bytes,
            capture_output=True,
            check=True,
        )

    def _import_pause(self) -> None:
        """The sandbox image: the Kubernetes module's pause binary in a one-layer image."""
        from image_archive import single_binary_image

        self.ctr(
            "images",
            "import",
            "-",
            input_bytes=single_binary_image(self.bins["kubernetes"] / "pause", PAUSE_IMAGE, "/pause"),
        )

    def import_image(self, archive: Path, *names: str) -> None:
        """Import a docker archive (podman save) into the cluster's containerd, under ``names`` too."""
        out = self.ctr("images", "import", "--all-platforms", str(archive))
        imported = [line.split()[1] for line in out.stdout.decode().splitlines() if line.startswith("unpacking ")]
        for name in names:
            if imported and imported[0] != name:
                subprocess.run(
                    ["ctr", "--address", str(self.state / "containerd.sock"), "-n", "k8s.io", "images", "rm", name],
                    capture_output=True,
                )
                self.ctr("images", "tag", imported[0], name)

    def _kubelet(self) -> None:
        s = self.state
        (s / "kubelet.yaml").write_text(
            json.dumps(
                {
                    "apiVersion": "kubelet.config.k8s.io/v1beta1",
                    "kind": "KubeletConfiguration",
                    "address": "127.0.0.1",
                    "port": self.ports["kubelet"],
                    "readOnlyPort": 0,
                    "healthzBindAddress": "127.0.0.1",
                    "healthzPort": self.ports["healthz"],
                    "containerRuntimeEndpoint": f"unix://{s}/containerd.sock",
                    "cgroupDriver": "cgroupfs",
                    "failSwapOn": False,
                    "failCgroupV1": False,
                    "staticPodPath": "",
                    "authentication": {
                        "anonymous": {"enabled": False},
                        "webhook": {"enabled": True},
                        "x509": {"clientCAFile": str(s / "ca.crt")},
                    },
                    "authorization": {"mode": "AlwaysAllow"},
                    "tlsCertFile": str(s / "kubelet.crt"),
                    "tlsPrivateKeyFile": str(s / "kubelet.key"),
                    "evictionHard": {"memory.available": "100Mi", "nodefs.available": "1%", "imagefs.available": "1%"},
                    "imageGCHighThresholdPercent": 100,
                    "serializeImagePulls": False,
                    "cgroupsPerQOS": True,
                    "enforceNodeAllocatable": [],
                    "protectKernelDefaults": False,
                    "resolvConf": "",
                    "clusterDomain": "cluster.local",
                    "maxPods": 250,
                }
            )
        )
        env = {"PATH": os.environ["PATH"], "AWS_EC2_METADATA_DISABLED": "true"}
        self._start(
            "kubelet",
            [
                self.bin("kubernetes", "kubelet"),
                "--config",
                str(s / "kubelet.yaml"),
                "--kubeconfig",
                str(s / "kubelet.kubeconfig"),
                "--hostname-override",
                "127.0.0.1",
                "--root-dir",
                str(s / "kubelet"),
                "--cert-dir",
                str(s / "kubelet-pki"),
                "--register-node=true",
                "--v",
                "1",
            ],
            env=env,
        )

    # ------------------------------------------------------------------ stop

    def stop(self) -> None:
        """Stop everything this cluster started, in an order that lets nothing come back: the
        controllers and the kubelet first (they would restart pods), then the pods' processes,
        the containerd shims, and the rest; then unmount, remove cgroups and restore sysctls."""
        pids_dir = self.state / "pids"
        pids = {p.name: int(p.read_text()) for p in pids_dir.iterdir()} if pids_dir.is_dir() else {}
        for name in (
            "argo-server",
            "workflow-controller",
            "tekton-controller",
            "kubelet",
            "kube-scheduler",
            "kube-controller-manager",
        ):
            if pids.get(name):
                _kill_group(pids[name])
        self._kill_pod_processes()
        self._stop_shims()
        for name, pid in pids.items():
            if name not in ("kube-apiserver", "etcd"):
                _kill_group(pid)
        for name in ("kube-apiserver", "etcd"):
            if pids.get(name):
                _kill_group(pids[name])
        self._unmount()
        self._remove_cgroups()
        self._restore_sysctls()
        if pids_dir.is_dir():
            shutil.rmtree(pids_dir, ignore_errors=True)

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
                    for folder in sorted(
                        (p for p in base.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True
                    ):
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


def main(argv: list[str]) -> int:
    sys.path.insert(0, str(HERE))
    if argv == ["start"]:
        cluster = Cluster()
        try:
            kubeconfig = cluster.start()
        except ClusterError as exc:
            print(f"cluster.py: the test cluster did not start: {exc}", file=sys.stderr)
            cluster.stop()
            return 1
        print(f"logs: {cluster.state / 'logs'}; stop with: python tests/cluster/cluster.py stop", file=sys.stderr)
        print(f"export KUBECONFIG={kubeconfig}")
        return 0
    if argv == ["images"]:  # rebuild the step image from the checkout into a running cluster
        import argo

        argo.images(Cluster())
        return 0
    if argv == ["stop"]:
        Cluster().stop()
        return 0
    if argv == ["status"]:
        cluster = Cluster()
        for pid_file in sorted((cluster.state / "pids").glob("*")):
            alive = Path(f"/proc/{pid_file.read_text()}").exists()
            print(
                f"{pid_file.name:24} {'running' if alive else 'stopped'}  {cluster.state / 'logs' / (pid_file.name + '.log')}"
            )
        return 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""KubernetesRunnable without a cluster: the Pod it would create, and the step's log records
that the client reads back (the real step entrypoint, run as a process)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from chains import openai_chain, qa_chain
from kube_fake import kubeconfig as kube_kubeconfig

import llmstep
from llmstep.cluster.kube import INPUT_ENV, PAYLOAD_ENV
from llmstep.contract import RECORD


def _env(manifest):
    return {e["name"]: e for e in manifest["spec"]["containers"][0]["env"]}


def test_pod_manifest_runs_the_step_with_only_the_declared_secret_keys():
    from langchain_openai import ChatOpenAI

    key = "sk-must-never-reach-the-pod-spec-1234"
    runner = llmstep.KubernetesRunnable(
        ChatOpenAI(model="gpt-4o-mini", api_key=key),
        image="registry.example/llmstep:1",
        namespace="ml",
        secret="team-llm",
        timeout=90,
    )
    manifest = runner.pod_manifest({"question": "costs $(HOME)?"})
    text = json.dumps(manifest)
    assert key not in text
    spec = manifest["spec"]
    [container] = spec["containers"]
    assert container["image"] == "registry.example/llmstep:1" and spec["restartPolicy"] == "Never"
    assert container["command"][:4] == ["llmstep", "exec", "--data-dir", "/llmstep"]
    assert "--log-records" in container["command"] and "--stream" not in container["command"]
    env = _env(manifest)
    assert env["OPENAI_API_KEY"] == {
        "name": "OPENAI_API_KEY",
        "valueFrom": {"secretKeyRef": {"name": "team-llm", "key": "OPENAI_API_KEY"}},
    }
    assert set(env) == {PAYLOAD_ENV, INPUT_ENV, "OPENAI_API_KEY"}
    payload = json.loads(env[PAYLOAD_ENV]["value"])
    assert payload["runnable"] == "langchain_openai.chat_models.base.ChatOpenAI" and "pickle" not in payload
    assert "$(" not in env[INPUT_ENV]["value"]  # Kubernetes would expand $(HOME) in an env value
    assert llmstep.serde.loads_value(env[INPUT_ENV]["value"]) == {"question": "costs $(HOME)?"}
    assert manifest["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "llmstep"
    assert manifest["metadata"]["generateName"].startswith("llmstep-chatopenai-")
    assert spec["activeDeadlineSeconds"] == 90 and spec["automountServiceAccountToken"] is False
    assert container["securityContext"]["readOnlyRootFilesystem"] is True


def test_a_runnable_that_cannot_be_serialized_is_refused_up_front():
    from langchain_core.runnables import RunnableLambda

    with pytest.raises(llmstep.CompileError, match="allow_pickle=True"):
        llmstep.KubernetesRunnable(RunnableLambda(lambda x: x))


def test_pod_spec_extras_merge_over_llmsteps():
    runner = llmstep.KubernetesRunnable(
        qa_chain(),
        pod_spec={"hostNetwork": True, "nodeSelector": {"gpu": "a100"}},
        resources={"limits": {"memory": "256Mi"}},
    )
    manifest = runner.pod_manifest({"question": "x"}, stream=True)
    assert manifest["spec"]["hostNetwork"] is True and manifest["spec"]["nodeSelector"] == {"gpu": "a100"}
    assert manifest["spec"]["containers"][0]["resources"] == {"limits": {"memory": "256Mi"}}
    assert manifest["spec"]["containers"][0]["command"][-1] == "--stream"
    assert "OPENAI_API_KEY" not in _env(manifest)  # the offline chain declares no key


def _step(manifest, tmp_path, extra_env=None):
    """Run the Pod's command as a process, with the Pod's plain env values (what the kubelet does)."""
    container = manifest["spec"]["containers"][0]
    env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    argv = [sys.executable, "-m", "llmstep", *container["command"][1:]]
    argv[argv.index("--data-dir") + 1] = str(tmp_path / "data")
    return subprocess.run(
        argv, env={"PATH": os.environ["PATH"], **env, **(extra_env or {})}, capture_output=True, text=True, timeout=120
    )


def _records(stdout):
    return [json.loads(line[len(RECORD) :]) for line in stdout.splitlines() if line.startswith(RECORD)]


def test_the_step_writes_chunk_and_output_records_to_its_log(tmp_path):
    runner = llmstep.KubernetesRunnable(qa_chain())
    out = _step(runner.pod_manifest({"question": "stream me"}, stream=True), tmp_path)
    assert out.returncode == 0, out.stderr
    records = _records(out.stdout)
    chunks = [llmstep.serde.loads_value(r["value"]) for r in records if r["kind"] == "chunk"]
    assert len(chunks) > 2 and "".join(chunks) == "offline answer: stream me"
    assert (
        records[-1]["kind"] == "output"
        and llmstep.serde.loads_value(records[-1]["value"]) == "offline answer: stream me"
    )


def test_a_failed_step_writes_an_error_record_with_its_exit_code(tmp_path):
    runner = llmstep.KubernetesRunnable(openai_chain())
    out = _step(runner.pod_manifest({"question": "x"}), tmp_path)  # no OPENAI_API_KEY in the env
    assert out.returncode == 3
    [record] = _records(out.stdout)
    assert record["kind"] == "error" and record["exit_code"] == 3 and "OPENAI_API_KEY" in record["message"]


def test_pod_refusals_say_what_pods_need():
    from llmstep.cluster.kube import POD_HINTS
    from llmstep.cluster.transports import api_error

    class Refusal:
        status, body = 404, json.dumps({"message": 'namespaces "nope" not found'})

    err = api_error(Refusal(), "creating a pod for ChatOpenAI in namespace nope", POD_HINTS)
    assert "does the namespace exist" in str(err) and 'namespaces "nope" not found' in str(err)
    assert "CRD" not in str(err)  # not the Workflow wording


@pytest.mark.parametrize(
    ("message", "verdict"),
    [
        ("failed to sync secret cache: timed out waiting for the condition", None),
        ("failed to sync configmap cache: timed out waiting for the condition", None),
        (
            "couldn't find key OPENAI_API_KEY in Secret default/llm-credentials",
            "CreateContainerConfigError: couldn't find key OPENAI_API_KEY in Secret default/llm-credentials",
        ),
        ('secret "llm-credentials" not found', 'CreateContainerConfigError: secret "llm-credentials" not found'),
    ],
)
def test_a_loaded_kubelets_passing_config_error_is_waited_out_not_reported(message, verdict):
    """A busy kubelet first says it could not sync its Secret cache, and retries; only the message
    that names what is missing means the Pod cannot start."""
    from llmstep.cluster.kube import _cannot_start

    waiting = {"reason": "CreateContainerConfigError", "message": message}
    status = {"containerStatuses": [{"state": {"waiting": waiting}}], "conditions": []}  # as the API server sends it
    assert _cannot_start(status) == verdict


def test_a_long_input_reaches_the_pod_as_arguments_not_one_variable(tmp_path):
    """One environment variable holds at most 128 KiB (a pod with a longer one never starts): a
    long input goes in the command, in parts, each an argument Linux takes."""
    from langchain_core.runnables import RunnableLambda

    from llmstep.contract import MAX_ARG_STRLEN
    from llmstep.local.process import exec_refusal

    value = {"question": "$(LLMSTEP_PAYLOAD) é🦜 " * 20_000}
    runner = llmstep.KubernetesRunnable(RunnableLambda(lambda d: len(d["question"])), allow_pickle=True)
    manifest = runner.pod_manifest(value)
    container = manifest["spec"]["containers"][0]
    assert _env(manifest)[INPUT_ENV]["value"] == "" and "--input-parts" in container["command"]
    assert all(len(arg.encode()) < MAX_ARG_STRLEN for arg in container["command"])
    assert exec_refusal(container["command"], {e["name"]: e["value"] for e in container["env"] if "value" in e}) == ""
    out = _step(manifest, tmp_path)
    assert out.returncode == 0, out.stderr
    [record] = _records(out.stdout)
    assert llmstep.serde.loads_value(record["value"]) == len(value["question"])


# ---------------------------------------------------------------- calls against the stand-in API


def _kubelet(tmp_path):
    """Plays the kubelet for the stand-in: runs the created Pod's step as a process, with the
    Pod's env, and serves what it printed as the Pod's log."""

    def run(cluster, pod, manifest):
        out = _step(manifest, tmp_path / pod.metadata.name)
        cluster.logs[(pod.metadata.name, "main")] = out.stdout
        pod.status.phase = "Succeeded" if out.returncode == 0 else "Failed"

    return run


def test_pods_run_in_the_kubeconfig_contexts_namespace_as_kubectl_uses_it(tmp_path, monkeypatch):
    from kube_fake import FakeKubeClient

    cluster = FakeKubeClient()
    cluster.on_create = _kubelet(tmp_path)
    kubeconfig = kube_kubeconfig(tmp_path, "team-a")
    runner = llmstep.KubernetesRunnable(qa_chain(), client=cluster.client(), kubeconfig=kubeconfig)
    assert runner.invoke({"question": "where"}) == "offline answer: where"
    assert [ns for ns, _ in cluster.created] == ["team-a"] and cluster.deleted[0][0] == "team-a"
    other = llmstep.KubernetesRunnable(qa_chain(), client=cluster.client(), kubeconfig=kubeconfig, context="other")
    assert other.invoke({"question": "there"}) == "offline answer: there" and cluster.created[-1][0] == "other-ns"
    monkeypatch.setenv("KUBECONFIG", kubeconfig)  # as kubectl reads it
    assert llmstep.KubernetesRunnable(qa_chain(), client=cluster.client()).namespace == "team-a"
    given = llmstep.KubernetesRunnable(qa_chain(), client=cluster.client(), namespace="mine")
    assert given.invoke({"question": "x"}) == "offline answer: x" and cluster.created[-1][0] == "mine"
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "none"))
    assert llmstep.KubernetesRunnable(qa_chain(), client=cluster.client()).namespace == "default"


def _vanish(cluster, pod):
    del cluster.pods[pod.metadata.name]
    cluster.deleted.append((pod.metadata.namespace, pod.metadata.name))


@pytest.mark.parametrize("when", ["while-pending", "before-its-log"])
def test_a_pod_deleted_mid_call_is_an_llmstep_error_naming_it(tmp_path, when):
    from kube_fake import FakeKubeClient

    cluster = FakeKubeClient()
    if when == "while-pending":
        cluster.after_read = lambda c, pod: _vanish(c, pod) if pod.status.phase == "Pending" else None
    else:
        kubelet = _kubelet(tmp_path)

        def run_then_vanish(c, pod, manifest):
            kubelet(c, pod, manifest)
            c.after_read = lambda c2, p: _vanish(c2, p)  # read once (Succeeded), then gone before the log

        cluster.on_create = run_then_vanish
    runner = llmstep.KubernetesRunnable(qa_chain(), client=cluster.client(), namespace="team-a", poll=0.01)
    with pytest.raises(llmstep.SubmissionError) as err:
        runner.invoke({"question": "x"})
    name = cluster.created[0][1]["metadata"]["generateName"]
    assert f"pod team-a/{name}" in str(err.value) and "is gone: it was deleted while the call waited" in str(err.value)
    with pytest.raises(llmstep.SubmissionError, match="is gone"):
        list(runner.stream({"question": "x"}))


def test_an_api_server_gone_mid_call_is_an_llmstep_error(tmp_path):
    from kube_fake import FakeKubeClient

    cluster = FakeKubeClient()
    cluster.after_read = lambda c, pod: setattr(c, "unreachable", True)
    runner = llmstep.KubernetesRunnable(qa_chain(), client=cluster.client(), namespace="ns", poll=0.01)
    with pytest.raises(llmstep.SubmissionError, match=r"waiting for pod ns/.*cannot reach the Kubernetes API server"):
        runner.invoke({"question": "x"})


# ---------------------------------------------------------------- calls against llmstep.cluster.fake


def _kubelet_cluster(tmp_path):
    """A FakeCluster that plays the kubelet: a created Pod's step runs as a process and its output
    becomes the Pod's log; a streaming Pod is left Running, as it is while its log is followed."""
    from llmstep.cluster.fake import FakeCluster

    class Kubelet(FakeCluster):
        def create(self, namespace, body):
            pod = super().create(namespace, body)
            name = pod["metadata"]["name"]
            out = _step(body, tmp_path / name)
            self.set_log(name, out.stdout, namespace=namespace)
            streaming = "--stream" in body["spec"]["containers"][0]["command"]
            phase = "Running" if streaming else "Succeeded" if out.returncode == 0 else "Failed"
            self.set_status("Pod", name, {"phase": phase}, namespace=namespace)
            return pod

    return Kubelet()


def test_a_call_through_the_fake_creates_reads_and_deletes_its_pod(tmp_path):
    cluster = _kubelet_cluster(tmp_path)
    runner = llmstep.KubernetesRunnable(qa_chain(), transport=cluster, poll=0.01)
    assert runner.invoke({"question": "fake"}) == "offline answer: fake"
    assert [r.verb for r in cluster.requests] == ["create", "get", "log", "delete"]
    assert cluster.requests[0].namespace == "default" and cluster.find("Pod") == []  # deleted
    assert "".join(runner.stream({"question": "chunks"})) == "offline answer: chunks"
    assert "follow" in [r.verb for r in cluster.requests] and cluster.find("Pod") == []
    failing = llmstep.KubernetesRunnable(openai_chain(), transport=cluster, namespace="ml", poll=0.01)
    with pytest.raises(llmstep.CredentialsError, match="exit code 3"):
        failing.invoke({"question": "x"})  # no OPENAI_API_KEY in the pod
    assert cluster.find("Pod", namespace="ml") == []


def test_a_pod_that_cannot_start_fails_at_once_with_its_warning_events():
    from llmstep.cluster.fake import FakeCluster

    class PullFails(FakeCluster):
        def create(self, namespace, body):
            pod = super().create(namespace, body)
            waiting = {"reason": "ErrImagePull", "message": "pull access denied for nope"}
            self.set_status(
                "Pod",
                pod["metadata"]["name"],
                {"phase": "Pending", "containerStatuses": [{"name": "main", "state": {"waiting": waiting}}]},
                namespace=namespace,
            )
            for kind, name in (
                ("Warning", pod["metadata"]["name"]),
                ("Normal", pod["metadata"]["name"]),
                ("Warning", "other"),
            ):
                super().create(
                    namespace,
                    {
                        "kind": "Event",
                        "metadata": {"generateName": "e-"},
                        "type": kind,
                        "involvedObject": {"name": name},
                        "reason": f"{kind}Reason",
                        "message": "m",
                    },
                )
            return pod

    cluster = PullFails()
    runner = llmstep.KubernetesRunnable(qa_chain(), transport=cluster, timeout=60, poll=0.01)
    with pytest.raises(llmstep.SubmissionError, match="cannot start: ErrImagePull: pull access denied for nope") as err:
        runner.invoke({"question": "x"})
    assert str(err.value).endswith("events: WarningReason: m") and cluster.find("Pod") == []


def test_a_refused_pod_names_its_step_and_what_pods_need():
    from llmstep.cluster.fake import FakeCluster

    cluster = FakeCluster()
    cluster.refuse("create", "Pod", 404, 'namespaces "nope" not found')
    runner = llmstep.KubernetesRunnable(qa_chain(), transport=cluster, namespace="nope")
    with pytest.raises(llmstep.SubmissionError) as err:
        runner.invoke({"question": "x"})
    assert str(err.value).startswith(f"{runner.step.display}: creating the Pod in namespace nope")
    assert "does the namespace exist" in str(err.value) and 'namespaces "nope" not found' in str(err.value)

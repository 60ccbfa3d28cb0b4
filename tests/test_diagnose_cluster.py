"""Diagnosis against the real test cluster: real failures on a real node, real events and logs.

Opt in with `pytest -m cluster` (CI runs it); see tests/cluster/.
"""

from __future__ import annotations

import time

import pytest

from llmstep.diagnose import Redactor
from llmstep.diagnose.evidence import Collector

pytestmark = pytest.mark.cluster
NS = "diagnose"
PLANTED = "sk-planted-secret-0123456789abcdefghij"


@pytest.fixture(scope="module")
def api(k8s):
    from kubernetes import client, config

    config.load_kube_config(str(k8s.kubeconfig))
    core = client.CoreV1Api()
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=NS)))
    core.create_namespaced_secret(NS, client.V1Secret(metadata=client.V1ObjectMeta(name="app"),
                                                      string_data={"API_KEY": PLANTED}))  # fmt: skip
    return client


def _wait(predicate, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(1)
    raise AssertionError(f"not reached in {timeout} s")


def _collect(api, target):
    evidence = Collector(api, NS, tail=20).collect(target)
    return evidence, evidence.render(Redactor())


def _container(api, image, command=None, **kwargs):
    env = [api.V1EnvVar(name="API_TOKEN", value=PLANTED),
           api.V1EnvVar(name="FROM_SECRET", value_from=api.V1EnvVarSource(
               secret_key_ref=api.V1SecretKeySelector(name="app", key="API_KEY")))]  # fmt: skip
    return api.V1Container(name="app", image=image, command=command, env=env, **kwargs)


def test_deployment_with_an_image_that_cannot_be_pulled(api):
    labels = {"app": "web"}
    api.AppsV1Api().create_namespaced_deployment(NS, api.V1Deployment(
        metadata=api.V1ObjectMeta(name="web"),
        spec=api.V1DeploymentSpec(replicas=1, selector=api.V1LabelSelector(match_labels=labels),
                                  template=api.V1PodTemplateSpec(metadata=api.V1ObjectMeta(labels=labels),
                                                                 spec=api.V1PodSpec(containers=[_container(api, "invalid")]))),
    ))  # fmt: skip
    _, text = _wait(lambda: (lambda e, t: (e, t) if "ImagePullBackOff" in t or "ErrImagePull" in t else None)(*_collect(api, "deployment/web")))
    assert "Deployment web" in text and "ReplicaSet web-" in text
    assert "waiting (ErrImagePull" in text or "waiting (ImagePullBackOff" in text
    assert 'Failed to pull image "invalid"' in text or "Back-off pulling image \"invalid\"" in text
    assert PLANTED not in text


def test_crash_looping_pod_with_logs_in_order(api, k8s):
    script = ("import os, sys; print('starting worker'); print('token=' + os.environ['FROM_SECRET']); "
              "print('fatal: cannot connect to db:5432'); sys.exit(2)")  # fmt: skip
    api.CoreV1Api().create_namespaced_pod(NS, api.V1Pod(
        metadata=api.V1ObjectMeta(name="worker"),
        spec=api.V1PodSpec(restart_policy="Always", containers=[_container(api, k8s.step_image, ["python3", "-c", script])])))  # fmt: skip
    evidence, text = _wait(lambda: (lambda e, t: (e, t) if "CrashLoopBackOff" in t and "previous instance" in t else None)(
        *_collect(api, "pod/worker")), timeout=150)  # fmt: skip
    assert "exit code 2" in text
    log = next(lines for title, lines in evidence.sections if "previous instance" in title)
    assert log.index("starting worker") < log.index("fatal: cannot connect to db:5432")
    events = next(lines for title, lines in evidence.sections if title.startswith("events of pod worker"))
    assert any("BackOff" in line for line in events)
    assert PLANTED not in text and "token=[REDACTED]" in text


def test_oom_killed_job(api, k8s):
    hog = "b = []\nwhile True:\n    b.append(bytearray(10 * 1024 * 1024))\n"
    api.BatchV1Api().create_namespaced_job(NS, api.V1Job(
        metadata=api.V1ObjectMeta(name="hog"),
        spec=api.V1JobSpec(backoff_limit=0, template=api.V1PodTemplateSpec(spec=api.V1PodSpec(
            restart_policy="Never", containers=[_container(api, k8s.step_image, ["python3", "-c", hog],
                                                           resources=api.V1ResourceRequirements(limits={"memory": "64Mi"}))])))))  # fmt: skip
    _, text = _wait(lambda: (lambda e, t: (e, t) if "OOMKilled" in t else None)(*_collect(api, "job/hog")))
    assert "terminated (OOMKilled, exit code 137" in text and "Job hog" in text


def _failing_pod(api, k8s, name, labels, annotations, message):
    api.CoreV1Api().create_namespaced_pod(NS, api.V1Pod(
        metadata=api.V1ObjectMeta(name=name, labels=labels, annotations=annotations),
        spec=api.V1PodSpec(restart_policy="Never", containers=[_container(
            api, k8s.step_image, ["python3", "-c", f"print({message!r}); raise SystemExit(1)"])])))  # fmt: skip
    _wait(lambda: (api.CoreV1Api().read_namespaced_pod(name, NS).status.container_statuses or [None])[0] and
          api.CoreV1Api().read_namespaced_pod(name, NS).status.container_statuses[0].state.terminated)  # fmt: skip


def test_failed_argo_workflow_with_two_failed_nodes(api, k8s):
    nodes = {}
    for i, template in enumerate(("chatopenai", "stroutputparser")):
        node_id = f"qa-abc-{1000 + i}"
        _failing_pod(api, k8s, f"qa-abc-{template}-{1000 + i}", {"workflows.argoproj.io/workflow": "qa-abc"},
                     {"workflows.argoproj.io/node-id": node_id}, f"{template} step failed: upstream 503")  # fmt: skip
        nodes[node_id] = {"id": node_id, "name": f"qa-abc.{template}", "displayName": template.upper(), "type": "Pod",
                          "templateName": template, "phase": "Failed", "message": "Error (exit code 1)",
                          "outputs": {"exitCode": "1"}}  # fmt: skip
    workflow = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow", "metadata": {"name": "qa-abc"},
                "spec": {"entrypoint": "main", "templates": [{"name": "main", "container": {"image": "x"}}]},
                "status": {"phase": "Failed", "message": "child 'qa-abc-1000' failed", "nodes": nodes}}  # fmt: skip
    api.CustomObjectsApi().create_namespaced_custom_object("argoproj.io", "v1alpha1", NS, "workflows", workflow)
    _, text = _collect(api, "workflow/qa-abc")
    assert "phase: Failed, message: child 'qa-abc-1000' failed" in text
    assert "failed node CHATOPENAI (template chatopenai): Failed, exit code 1" in text
    assert "failed node STROUTPUTPARSER (template stroutputparser)" in text
    assert "chatopenai step failed: upstream 503" in text and "stroutputparser step failed: upstream 503" in text
    assert PLANTED not in text


def test_failed_tekton_pipelinerun(api, k8s):
    _failing_pod(api, k8s, "qa-run-chatopenai-pod", {}, {}, "openai.AuthenticationError: 401")
    custom = api.CustomObjectsApi()
    failed = [{"type": "Succeeded", "status": "False", "reason": "Failed", "message": "Tasks Completed: 2 (Failed: 1)"}]
    custom.create_namespaced_custom_object("tekton.dev", "v1", NS, "pipelineruns", {
        "apiVersion": "tekton.dev/v1", "kind": "PipelineRun", "metadata": {"name": "qa-run"},
        "spec": {"pipelineRef": {"name": "qa"}}, "status": {"conditions": failed}})  # fmt: skip
    custom.create_namespaced_custom_object("tekton.dev", "v1", NS, "taskruns", {
        "apiVersion": "tekton.dev/v1", "kind": "TaskRun",
        "metadata": {"name": "qa-run-chatopenai", "labels": {"tekton.dev/pipelineRun": "qa-run"}},
        "spec": {"taskRef": {"name": "llmstep-run"}},
        "status": {"podName": "qa-run-chatopenai-pod",
                   "conditions": [{"type": "Succeeded", "status": "False", "reason": "Failed", "message": "step exec exited 1"}],
                   "steps": [{"name": "exec", "terminated": {"exitCode": 1, "reason": "Error"}}]}})  # fmt: skip
    _, text = _collect(api, "pipelinerun/qa-run")
    assert "condition Succeeded=False (Failed: Tasks Completed: 2 (Failed: 1))" in text
    assert "taskrun qa-run-chatopenai" in text and "step exec: Error, exit code 1" in text
    assert "openai.AuthenticationError: 401" in text and PLANTED not in text


def test_missing_target_and_rbac_refusal_are_clear(api, k8s):
    from llmstep.errors import DiagnosisError

    with pytest.raises(DiagnosisError, match="not found"):
        Collector(api, NS).collect("deployment/nope")

"""Diagnosis against the real test cluster: real failures on a real node, real events and logs.

Opt in with `pytest -m cluster` (CI runs it); see tests/cluster/.
"""

from __future__ import annotations

import time

import pytest
from conftest import kube_api

from llmstep.diagnose import Redactor
from llmstep.diagnose.collector import Collector

pytestmark = pytest.mark.cluster
NS = "diagnose"
PLANTED = "sk-planted-secret-0123456789abcdefghij"


@pytest.fixture(scope="module")
def api(k8s):
    client = kube_api(k8s, NS)
    core = client.CoreV1Api()
    core.create_namespaced_secret(
        NS, client.V1Secret(metadata=client.V1ObjectMeta(name="app"), string_data={"API_KEY": PLANTED})
    )
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
    env = [
        api.V1EnvVar(name="API_TOKEN", value=PLANTED),
        api.V1EnvVar(
            name="FROM_SECRET",
            value_from=api.V1EnvVarSource(secret_key_ref=api.V1SecretKeySelector(name="app", key="API_KEY")),
        ),
    ]
    return api.V1Container(name="app", image=image, command=command, env=env, **kwargs)


def test_deployment_with_an_image_that_cannot_be_pulled(api):
    labels = {"app": "web"}
    api.AppsV1Api().create_namespaced_deployment(
        NS,
        api.V1Deployment(
            metadata=api.V1ObjectMeta(name="web"),
            spec=api.V1DeploymentSpec(
                replicas=1,
                selector=api.V1LabelSelector(match_labels=labels),
                template=api.V1PodTemplateSpec(
                    metadata=api.V1ObjectMeta(labels=labels),
                    spec=api.V1PodSpec(containers=[_container(api, "invalid")]),
                ),
            ),
        ),
    )
    _, text = _wait(
        lambda: (
            lambda e, t: (
                (e, t)
                if ("waiting (ImagePullBackOff" in t or "waiting (ErrImagePull" in t) and "Failed to pull image" in t
                else None
            )
        )(*_collect(api, "deployment/web"))
    )
    assert "Deployment web" in text and "ReplicaSet web-" in text
    assert "waiting (ErrImagePull" in text or "waiting (ImagePullBackOff" in text
    assert 'Failed to pull image "invalid"' in text or 'Back-off pulling image "invalid"' in text
    assert PLANTED not in text


def _previous_log(evidence):
    """The lines of the previous instance's log section, once it holds the crashed run's output."""
    logs = [lines for title, lines in evidence.sections if "previous instance" in title]
    return logs[0] if logs and any("fatal: cannot connect" in line for line in logs[0]) else None


def test_crash_looping_pod_with_logs_in_order(api, k8s):
    script = (
        "import os, sys; print('starting worker'); print('token=' + os.environ['FROM_SECRET']); "
        "print('fatal: cannot connect to db:5432'); sys.exit(2)"
    )
    api.CoreV1Api().create_namespaced_pod(
        NS,
        api.V1Pod(
            metadata=api.V1ObjectMeta(name="worker"),
            spec=api.V1PodSpec(
                restart_policy="Always", containers=[_container(api, k8s.step_image, ["python3", "-c", script])]
            ),
        ),
    )
    # the kubelet serves the previous instance's log a moment after the section can first be read
    evidence, text = _wait(
        lambda: (lambda e, t: (e, t) if "CrashLoopBackOff" in t and _previous_log(e) else None)(
            *_collect(api, "pod/worker")
        ),
        timeout=150,
    )
    assert "exit code 2" in text
    log = _previous_log(evidence)
    assert log.index("starting worker") < log.index("fatal: cannot connect to db:5432")
    events = next(lines for title, lines in evidence.sections if title.startswith("events of pod worker"))
    assert any("BackOff" in line for line in events)
    assert PLANTED not in text and "token=[REDACTED]" in text


def test_oom_killed_job(api, k8s):
    hog = "b = []\nwhile True:\n    b.append(bytearray(10 * 1024 * 1024))\n"
    api.BatchV1Api().create_namespaced_job(
        NS,
        api.V1Job(
            metadata=api.V1ObjectMeta(name="hog"),
            spec=api.V1JobSpec(
                backoff_limit=0,
                template=api.V1PodTemplateSpec(
                    spec=api.V1PodSpec(
                        restart_policy="Never",
                        containers=[
                            _container(
                                api,
                                k8s.step_image,
                                ["python3", "-c", hog],
                                resources=api.V1ResourceRequirements(limits={"memory": "64Mi"}),
                            )
                        ],
                    )
                ),
            ),
        ),
    )
    _, text = _wait(lambda: (lambda e, t: (e, t) if "OOMKilled" in t else None)(*_collect(api, "job/hog")))
    assert "terminated (OOMKilled, exit code 137" in text and "Job hog" in text


def test_failed_argo_workflow_with_two_failed_nodes(api, k8s):
    """A Workflow the real controller ran, with two failing branches, diagnosed from its status,
    its pods' logs and their events."""
    from argo_cluster import wait_phase
    from conftest import argo_namespace
    from langchain_core.runnables import RunnableLambda

    import llmstep

    def upstream_503(x):
        print("chatopenai step failed: upstream 503")
        raise SystemExit(1)

    def parser_503(x):
        print("stroutputparser step failed: upstream 503")
        raise SystemExit(1)

    argo_namespace(k8s, NS)
    chain = {
        "ChatOpenAI": RunnableLambda(upstream_503, name="ChatOpenAI"),
        "StrOutputParser": RunnableLambda(parser_503, name="StrOutputParser"),
    } | RunnableLambda(lambda d: d)
    run = llmstep.compile(chain, name="qa-abc", allow_pickle=True).submit({"question": "x"}, namespace=NS, client=api)
    wf = wait_phase(api, run.name, namespace=NS)
    assert wf["status"]["phase"] == "Failed"
    _, text = _collect(api, f"workflow/{run.name}")
    assert "phase: Failed" in text  # Argo v4 leaves status.message empty when a child failed
    # a parallel branch's step is named <key>-<runnable>
    assert "failed node ChatOpenAI-ChatOpenAI (template chatopenai-chatopenai): Failed, exit code 1" in text
    assert "failed node StrOutputParser-StrOutputParser (template stroutputparser-stroutputparser): Failed" in text
    assert "chatopenai step failed: upstream 503" in text and "stroutputparser step failed: upstream 503" in text
    assert PLANTED not in text


def test_missing_target_and_rbac_refusal_are_clear(api, k8s):
    from llmstep.cli.diagnose import collect
    from llmstep.errors import DiagnosisError

    with pytest.raises(DiagnosisError, match="not found"):
        collect(api, NS, "deployment/nope")


def _diagnose_kubeconfig(api, k8s, tmp_path):
    """A kubeconfig for the llmstep-diagnose ServiceAccount, with the RBAC of workflows/."""
    import json

    import yaml
    from conftest import ROOT

    for doc in yaml.safe_load_all((ROOT / "workflows" / "llmstep-diagnose-rbac.yaml").read_text()):
        kind = doc["kind"]
        if kind == "ServiceAccount":
            api.CoreV1Api().create_namespaced_service_account(NS, doc)
        elif kind == "Role":
            api.RbacAuthorizationV1Api().create_namespaced_role(NS, doc)
        else:
            api.RbacAuthorizationV1Api().create_namespaced_role_binding(NS, doc)
    token = k8s.kubectl("create", "token", "llmstep-diagnose", "-n", NS).stdout.strip()  # the TokenRequest API
    config = json.loads(k8s.kubeconfig.read_text())
    config["users"][0]["user"] = {"token": token}
    config["contexts"][0]["context"]["namespace"] = NS
    path = tmp_path / "diagnose.kubeconfig"
    path.write_text(json.dumps(config))
    return path, token


def test_cli_with_least_privilege_rbac(api, k8s, tmp_path):
    from conftest import run_cli

    kubeconfig, token = _diagnose_kubeconfig(api, k8s, tmp_path)

    def crash_looping():  # between two restarts the pod is briefly Running with no log yet
        result = run_cli("diagnose", "pod/worker", "--kubeconfig", str(kubeconfig), "--dry-run")
        assert result.returncode == 0, result.stderr
        return (
            result
            if "CrashLoopBackOff" in result.stdout and "fatal: cannot connect to db:5432" in result.stdout
            else None
        )

    result = _wait(crash_looping)
    assert PLANTED not in result.stdout and token not in result.stdout
    denied = run_cli(
        "diagnose", "deployment/web", "--kubeconfig", str(kubeconfig), "--dry-run", "--api-key-secret", "app/API_KEY"
    )  # the Role grants nothing on Secrets
    assert denied.returncode == 0  # a dry run needs no key
    refused = run_cli("diagnose", "deployment/web", "--kubeconfig", str(kubeconfig), "--api-key-secret", "app/API_KEY")
    assert refused.returncode == 1 and "cannot read the key from Secret app/API_KEY" in refused.stderr
    assert "Forbidden" in refused.stderr or "forbidden" in refused.stderr

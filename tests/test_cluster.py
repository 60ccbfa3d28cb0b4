"""The test cluster itself: a real API server, scheduler and kubelet producing real failures.

Opt in with `pytest -m cluster` (CI runs it after the fast suite); see tests/cluster/.
"""

from __future__ import annotations

import time

import pytest
import yaml
from chains import qa_chain
from conftest import kube_api

import llmstep

pytestmark = pytest.mark.cluster
NS = "default"


@pytest.fixture(scope="module")
def api(k8s):
    return kube_api(k8s)


def _wait(predicate, timeout=90, every=0.5):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"condition not met in {timeout} s (last: {last!r})")


def _pod(api, name, container, restart="Never", **spec):
    return api.V1Pod(
        metadata=api.V1ObjectMeta(name=name),
        spec=api.V1PodSpec(restart_policy=restart, host_network=True, containers=[container], **spec),
    )


def _state(api, name):
    pod = api.CoreV1Api().read_namespaced_pod(name, NS)
    statuses = pod.status.container_statuses or []
    return pod, (statuses[0] if statuses else None)


def _events(api, name):
    events = api.CoreV1Api().list_namespaced_event(NS, field_selector=f"involvedObject.name={name}").items
    return [(e.reason, e.message) for e in events]


def test_node_is_ready_and_a_pod_runs_to_completion(api, k8s):
    core = api.CoreV1Api()
    node = core.read_node("127.0.0.1")
    assert any(c.type == "Ready" and c.status == "True" for c in node.status.conditions)
    started = time.monotonic()
    core.create_namespaced_pod(
        NS,
        _pod(
            api,
            "hello",
            api.V1Container(name="main", image=k8s.step_image, command=["python3", "-c", "print('hello from a pod')"]),
        ),
    )
    _, status = _wait(lambda: (lambda p, s: (p, s) if s and s.state.terminated else None)(*_state(api, "hello")))
    assert status.state.terminated.exit_code == 0 and time.monotonic() - started < 60
    assert "hello from a pod" in core.read_namespaced_pod_log("hello", NS)


def test_api_server_accepts_generated_workflow_and_rejects_a_broken_one(api):
    custom = api.CustomObjectsApi()
    doc = llmstep.compile(qa_chain()).to_dict()
    created = custom.create_namespaced_custom_object("argoproj.io", "v1alpha1", NS, "workflows", doc)
    assert created["metadata"]["name"].startswith(doc["metadata"]["generateName"])
    broken = yaml.safe_load(yaml.safe_dump(doc))
    broken["spec"]["templates"][1]["container"]["image"] = 5
    with pytest.raises(api.exceptions.ApiException) as err:
        custom.create_namespaced_custom_object("argoproj.io", "v1alpha1", NS, "workflows", broken)
    assert err.value.status == 422 and "image" in err.value.body


def test_api_server_accepts_every_generated_argo_document(api):
    from conftest import ROOT

    custom = api.CustomObjectsApi()
    doc = llmstep.compile(qa_chain(), on_failure=llmstep.Diagnose(lang="Japanese")).to_dict()
    custom.create_namespaced_custom_object("argoproj.io", "v1alpha1", NS, "workflows", doc)
    for path in sorted((ROOT / "workflows").glob("*.yaml")):
        for item in yaml.safe_load_all(path.read_text()):
            plural = {"Workflow": "workflows", "WorkflowTemplate": "workflowtemplates"}.get(item["kind"])
            if plural:
                custom.create_namespaced_custom_object("argoproj.io", "v1alpha1", NS, plural, item)


def test_image_that_cannot_be_pulled_gives_real_events(api):
    apps = api.AppsV1Api()
    labels = {"app": "bad-image"}
    apps.create_namespaced_deployment(
        NS,
        api.V1Deployment(
            metadata=api.V1ObjectMeta(name="bad-image"),
            spec=api.V1DeploymentSpec(
                replicas=1,
                selector=api.V1LabelSelector(match_labels=labels),
                template=api.V1PodTemplateSpec(
                    metadata=api.V1ObjectMeta(labels=labels),
                    spec=api.V1PodSpec(host_network=True, containers=[api.V1Container(name="app", image="invalid")]),
                ),
            ),
        ),
    )

    def waiting_reason():
        pods = api.CoreV1Api().list_namespaced_pod(NS, label_selector="app=bad-image").items
        for pod in pods:
            for status in pod.status.container_statuses or []:
                if status.state.waiting and status.state.waiting.reason in ("ErrImagePull", "ImagePullBackOff"):
                    return pod.metadata.name, status.state.waiting.reason
        return None

    name, reason = _wait(waiting_reason)
    assert reason in ("ErrImagePull", "ImagePullBackOff")
    events = _wait(lambda: [e for e in _events(api, name) if e[0] == "Failed"])
    assert any("invalid" in message for _, message in events)


def test_failing_container_reports_exit_code_and_logs(api, k8s):
    core = api.CoreV1Api()
    core.create_namespaced_pod(
        NS,
        _pod(
            api,
            "exit-one",
            api.V1Container(
                name="main",
                image=k8s.step_image,
                command=["python3", "-c", "print('about to fail'); raise SystemExit(1)"],
            ),
        ),
    )
    _, status = _wait(lambda: (lambda p, s: (p, s) if s and s.state.terminated else None)(*_state(api, "exit-one")))
    assert status.state.terminated.exit_code == 1
    assert "about to fail" in core.read_namespaced_pod_log("exit-one", NS)


def test_crash_loop_with_previous_logs(api, k8s):
    core = api.CoreV1Api()
    core.create_namespaced_pod(
        NS,
        _pod(
            api,
            "crasher",
            api.V1Container(
                name="main",
                image=k8s.step_image,
                command=["python3", "-c", "print('crashing now'); raise SystemExit(3)"],
            ),
            restart="Always",
        ),
    )

    def looping():
        _, status = _state(api, "crasher")
        return (
            status
            if status
            and status.restart_count >= 1
            and status.state.waiting
            and status.state.waiting.reason == "CrashLoopBackOff"
            else None
        )

    status = _wait(looping, timeout=120)
    assert status.last_state.terminated.exit_code == 3
    assert "crashing now" in core.read_namespaced_pod_log("crasher", NS, previous=True)


def test_missing_secret_key_is_create_container_config_error(api, k8s):
    core = api.CoreV1Api()
    core.create_namespaced_secret(
        NS, api.V1Secret(metadata=api.V1ObjectMeta(name="llm-credentials-test"), string_data={"OTHER": "x"})
    )
    env = [
        api.V1EnvVar(
            name="OPENAI_API_KEY",
            value_from=api.V1EnvVarSource(
                secret_key_ref=api.V1SecretKeySelector(name="llm-credentials-test", key="OPENAI_API_KEY")
            ),
        )
    ]
    core.create_namespaced_pod(NS, _pod(api, "no-key", api.V1Container(name="main", image=k8s.step_image, env=env)))

    def names_the_key():  # under load the kubelet first says "failed to sync secret cache: timed out ..."
        _, status = _state(api, "no-key")
        waiting = status.state.waiting if status else None
        return (
            waiting
            if waiting
            and waiting.reason == "CreateContainerConfigError"
            and "OPENAI_API_KEY" in (waiting.message or "")
            else None
        )

    waiting = _wait(names_the_key, timeout=120)
    assert waiting.message == "couldn't find key OPENAI_API_KEY in Secret default/llm-credentials-test"


def test_memory_limit_gives_oom_killed(api, k8s):
    core = api.CoreV1Api()
    hog = "b = []\nwhile True:\n    b.append(bytearray(10 * 1024 * 1024))\n"
    core.create_namespaced_pod(
        NS,
        _pod(
            api,
            "hog",
            api.V1Container(
                name="main",
                image=k8s.step_image,
                command=["python3", "-c", hog],
                resources=api.V1ResourceRequirements(limits={"memory": "64Mi"}),
            ),
        ),
    )
    _, status = _wait(lambda: (lambda p, s: (p, s) if s and s.state.terminated else None)(*_state(api, "hog")))
    assert status.state.terminated.reason == "OOMKilled"


def test_installed_tekton_objects_are_the_releases_with_only_the_listed_changes(k8s):
    """The CRDs and webhook configurations on the cluster are the release's config/ files; the
    one change is the webhook's port (tests/cluster/tekton.py lists why), and the webhook filled
    in what knative fills in (caBundle, rules)."""
    import tekton

    cfg = tekton.config_dir(k8s)
    port = k8s.ports["tekton-webhook"]
    for path in sorted((cfg / "300-crds").glob("*.yaml")):
        for release in yaml.safe_load_all(path.read_text()):
            name = release["metadata"]["name"]
            installed = k8s.api(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")
            assert [v["name"] for v in installed["spec"]["versions"]] == [
                v["name"] for v in release["spec"]["versions"]
            ]
            for mine, theirs in zip(installed["spec"]["versions"], release["spec"]["versions"], strict=True):
                assert mine["schema"] == theirs["schema"], name
            if path.name in tekton.CONVERTED_CRDS:
                service = installed["spec"]["conversion"]["webhook"]["clientConfig"]["service"]
                assert service["port"] == port and service["name"] == "tekton-pipelines-webhook"
                assert installed["spec"]["conversion"]["webhook"]["clientConfig"]["caBundle"]
    hooks = [d for d in yaml.safe_load_all((cfg / "500-webhooks.yaml").read_text()) if d and "webhooks" in d]
    assert len(hooks) == 3
    for release in hooks:
        kind = release["kind"].lower() + "s"
        installed = k8s.api(f"/apis/admissionregistration.k8s.io/v1/{kind}/{release['metadata']['name']}")
        [hook] = installed["webhooks"]
        assert hook["failurePolicy"] == "Fail" and hook["clientConfig"]["service"]["port"] == port
        assert hook["clientConfig"]["caBundle"] and hook["rules"]
    service = k8s.api(f"/api/v1/namespaces/{tekton.NAMESPACE}/services/tekton-pipelines-webhook")
    assert service["spec"]["type"] == "ExternalName" and service["spec"]["externalName"] == "127.0.0.1"
    info = k8s.api(f"/api/v1/namespaces/{tekton.NAMESPACE}/configmaps/pipelines-info")
    assert info["data"]["version"] == tekton.TEKTON_VERSION


def test_installed_argo_crds_are_the_upstream_ones_unmodified(k8s):
    """tests/data/crds holds Argo's own CRDs of the version the cluster runs, byte for byte as the
    module publishes them (manifests/base/crds/full), and each is installed."""
    import argo

    upstream = k8s.bins["argo"].parent / "crds"
    names = sorted(p.name for p in upstream.glob("argoproj.io_*.yaml"))
    assert len(names) == 8
    for name in names:
        ours = (
            argo.CRDS
            / f"argo-workflows-{argo.ARGO_VERSION}-{name.removeprefix('argoproj.io_').removesuffix('.yaml')}.crd.yaml"
        )
        assert ours.read_bytes() == (upstream / name).read_bytes(), name
        crd = yaml.safe_load(ours.read_text())["metadata"]["name"]
        assert (
            k8s.kubectl("get", "crd", crd, "-o", "name").stdout.strip()
            == f"customresourcedefinition.apiextensions.k8s.io/{crd}"
        )

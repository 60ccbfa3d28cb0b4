"""KubernetesRunnable on the real test cluster: each call is a real Pod running the step image
built from this checkout; the result comes back through the Pod's log. Every test also checks
that no Pod is left behind, whatever the outcome.

Opt in with `pytest -m cluster`; see tests/cluster/.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from chains import qa_prompt
from conftest import as_from_a_terminal, kube_api
from langchain_core.output_parsers import StrOutputParser
from langchain_core.runnables import RunnableLambda

import llmstep
from llmstep.offline import OfflineChatModel

pytestmark = pytest.mark.cluster
NS = "kube-runnable"


@pytest.fixture(scope="module")
def api(k8s):
    return kube_api(k8s, NS)


@pytest.fixture
def runner(api, k8s):
    def make(runnable, **kwargs):
        return llmstep.KubernetesRunnable(
            runnable, image=kwargs.pop("image", k8s.step_image), namespace=NS, client=api, **kwargs
        )

    yield make
    _no_pods_left(api)


def _no_pods_left(api, within: float = 20):
    deadline = time.monotonic() + within
    while True:
        pods = api.CoreV1Api().list_namespaced_pod(NS, label_selector="app.kubernetes.io/managed-by=llmstep").items
        if not pods:
            return
        assert time.monotonic() < deadline, f"pods left behind: {[p.metadata.name for p in pods]}"
        time.sleep(0.5)


def test_invoke_runs_in_a_pod_inside_an_ordinary_chain(runner):
    chain = qa_prompt() | runner(OfflineChatModel()) | StrOutputParser()
    assert chain.invoke({"question": "in a pod?"}) == "offline answer: in a pod?"


def test_batch_runs_pods_concurrently_and_keeps_input_order(runner):
    model = runner(OfflineChatModel(latency=1.0), max_concurrency=3)
    started = time.monotonic()
    out = model.batch([f"q{i}" for i in range(3)])
    elapsed = time.monotonic() - started
    assert [m.content for m in out] == ["offline answer: q0", "offline answer: q1", "offline answer: q2"]
    single = time.monotonic()
    model.invoke("alone")
    one = time.monotonic() - single
    assert elapsed < 2.5 * one, (elapsed, one)  # three pods at once, not one after another


def test_stream_yields_chunks_as_the_step_writes_them(runner):
    chunks = list(runner(OfflineChatModel(latency=1.0)).stream("one two three"))
    assert len(chunks) > 3 and "".join(c.content for c in chunks) == "offline answer: one two three"


def test_ainvoke(runner):
    assert asyncio.run(runner(OfflineChatModel()).ainvoke("async")).content == "offline answer: async"


def _fails(x):
    raise ValueError(f"cannot handle {x!r}")


def test_a_raising_runnable_raises_its_error_and_the_pod_is_deleted(runner):
    with pytest.raises(
        llmstep.ExecutionError, match=r"failed in pod .* \(exit code 1\): ValueError: cannot handle 'x'"
    ):
        runner(RunnableLambda(_fails), allow_pickle=True).invoke("x")


def test_an_image_that_cannot_be_pulled_fails_fast_with_the_reason(runner):
    started = time.monotonic()
    with pytest.raises(llmstep.SubmissionError, match="cannot start: (ErrImagePull|ImagePullBackOff)") as err:
        runner(OfflineChatModel(), image="localhost/llmstep-not-built:0", timeout=300).invoke("x")
    assert time.monotonic() - started < 60  # not the 300 s timeout
    assert "events:" in str(err.value)


def test_a_missing_secret_key_fails_fast_with_the_reason(runner):
    from langchain_openai import ChatOpenAI

    model = ChatOpenAI(model="gpt-4o-mini", api_key="sk-placeholder-never-sent", base_url="http://127.0.0.1:9/v1")
    with pytest.raises(llmstep.SubmissionError, match='CreateContainerConfigError: secret "no-such-secret" not found'):
        runner(model, secret="no-such-secret", timeout=300).invoke("x")


def test_timeout_deletes_the_pod(runner):
    with pytest.raises(llmstep.LlmstepError, match="after 3 s|DeadlineExceeded"):
        runner(OfflineChatModel(latency=60), timeout=3).invoke("slow")


def test_a_cancelled_async_call_deletes_its_pod(runner, api):
    async def give_up():
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(runner(OfflineChatModel(latency=60), timeout=120).ainvoke("slow"), 4)

    asyncio.run(give_up())
    _no_pods_left(api, within=10)


def test_a_secret_without_the_key_fails_fast_naming_the_key(runner, api):
    from langchain_openai import ChatOpenAI

    api.CoreV1Api().create_namespaced_secret(
        NS, api.V1Secret(metadata=api.V1ObjectMeta(name="other-keys"), string_data={"ANTHROPIC_API_KEY": "x"})
    )
    model = ChatOpenAI(model="gpt-4o-mini", api_key="sk-placeholder-never-sent", base_url="http://127.0.0.1:9/v1")
    with pytest.raises(llmstep.SubmissionError, match="CreateContainerConfigError: couldn't find key OPENAI_API_KEY"):
        runner(model, secret="other-keys", timeout=300).invoke("x")


def test_ctrl_c_deletes_the_pod(api, k8s, tmp_path):
    import signal
    import subprocess
    import sys

    script = tmp_path / "call.py"
    script.write_text(
        "import sys\nfrom kubernetes import client, config\nimport llmstep\nfrom llmstep.offline import OfflineChatModel\n"
        f"config.load_kube_config({str(k8s.kubeconfig)!r})\n"
        f"llmstep.KubernetesRunnable(OfflineChatModel(latency=120), image={k8s.step_image!r}, namespace={NS!r},"
        " client=client, timeout=300).invoke('wait')\n"
    )
    proc = subprocess.Popen(as_from_a_terminal([sys.executable, str(script)]), stderr=subprocess.PIPE, text=True)
    core = api.CoreV1Api()
    deadline = time.monotonic() + 60
    while not core.list_namespaced_pod(NS, label_selector="app.kubernetes.io/managed-by=llmstep").items:
        assert time.monotonic() < deadline and proc.poll() is None, "the pod never appeared"
        time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode != 0 and "KeyboardInterrupt" in err
    _no_pods_left(api, within=10)


def test_a_pod_that_cannot_be_scheduled_fails_fast_with_the_reason(runner):
    started = time.monotonic()
    with pytest.raises(llmstep.SubmissionError, match="cannot start: Unschedulable: .*node"):
        runner(OfflineChatModel(), pod_spec={"nodeSelector": {"llmstep.dev/no-such-node": "x"}}, timeout=300).invoke(
            "x"
        )
    assert time.monotonic() - started < 60


def test_a_missing_namespace_is_a_clear_error(api, k8s):
    runner = llmstep.KubernetesRunnable(
        OfflineChatModel(), image=k8s.step_image, namespace="no-such-namespace", client=api
    )
    with pytest.raises(llmstep.SubmissionError, match=r"does the namespace exist.*no-such-namespace"):
        runner.invoke("x")

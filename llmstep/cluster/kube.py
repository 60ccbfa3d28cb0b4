"""``KubernetesRunnable``: one Runnable, run in one Pod, from inside an ordinary chain.

``prompt | llmstep.KubernetesRunnable(llm, image=..., namespace=..., secret="llm-credentials") | parser``

Each call creates a Pod running the step entrypoint (``llmstep exec``) with the payload and the
input in its environment (an input longer than one variable may be goes in its command, in parts;
the same payload and value formats as a workflow step; no pickle of inputs or outputs), waits for it and reads the result from the Pod's log, where the step writes
``@llmstep {...}`` records. ``stream`` follows the log and yields chunks as the step writes them.
API keys reach the Pod only as ``secretKeyRef`` env entries for the keys the Runnable declares.

The Pod is always deleted: on success, on failure, on timeout, on Ctrl-C and when an async call is
cancelled. A Pod that cannot start (image pull, scheduling, a missing Secret or key) fails at
once with the reason from its status and events, instead of waiting out the timeout.
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import contextlib
import json
import logging
import os
import threading
import time
from collections.abc import Generator, Iterator
from typing import Any

from langchain_core.runnables import Runnable, RunnableConfig

from llmstep import contract
from llmstep.errors import Cancelled, CredentialsError, ExecutionError, PayloadError, SubmissionError, connection_reason

log = logging.getLogger(__name__)

CANNOT_START = {"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull",
                "CreateContainerConfigError", "CreateContainerError"}
PASSING = ("failed to sync secret cache", "failed to sync configmap cache")
"""Messages of a ``CreateContainerConfigError`` the kubelet retries on its own: a loaded kubelet says
this before it has read the Secret, and only then names what is really missing."""
PAYLOAD_ENV, INPUT_ENV = contract.PAYLOAD_ENV, contract.INPUT_ENV
POD_HINTS = {
    403: "forbidden: the account needs create/get/delete on pods and get on pods/log in this namespace",
    404: "not found: does the namespace exist (kubectl get namespace)?",
}


class KubernetesRunnable(Runnable[Any, Any]):
    """Run ``runnable`` in its own Pod on each call (``invoke``, ``batch``, ``ainvoke``, ``stream``).

    Args:
        runnable: the Runnable to run; serialized like a workflow step (``allow_pickle`` as in
            ``llmstep.compile``).
        image: the step image (has ``llmstep`` and the Runnable's packages).
        namespace: where the Pods run (default: the kubeconfig context's namespace, as kubectl
            uses it, else ``default``).
        secret: the Secret holding API keys; the Pod gets only the keys the Runnable declares.
        timeout: seconds a call may take, start-up included (also the Pod's ``activeDeadlineSeconds``).
        max_concurrency: Pods a ``batch`` runs at once (the config's ``max_concurrency`` wins).
        resources: the container's ``resources`` (requests/limits).
        pod_spec: extra Pod spec fields (``nodeSelector``, ``tolerations``, ``serviceAccountName``,
            ``hostNetwork``, ...), merged over llmstep's.
        client / kubeconfig / context: the kubernetes ``client`` module, configured, or where
            to load a configuration from (default: kubeconfig, like kubectl).
    """

    def __init__(self, runnable: Any, *, image: str | None = None, namespace: str | None = None,
                 secret: str | None = None, allow_pickle: bool = False, timeout: float = 600,
                 max_concurrency: int = 8, resources: dict[str, Any] | None = None,
                 pod_spec: dict[str, Any] | None = None, client: Any = None, kubeconfig: str | None = None,
                 context: str | None = None, poll: float = 0.25) -> None:
        from langchain_core.runnables.base import coerce_to_runnable

        from llmstep.compiler.walk import DEFAULT_IMAGE, DEFAULT_SECRET, single_step

        self.bound = coerce_to_runnable(runnable)
        self.step = single_step(self.bound, allow_pickle=allow_pickle, secret=secret or DEFAULT_SECRET,
                                environ=os.environ, stacklevel=3)
        self.image, self._namespace, self.secret = image or DEFAULT_IMAGE, namespace, secret or DEFAULT_SECRET
        self.timeout, self.max_concurrency, self.poll = timeout, max_concurrency, poll
        self.resources, self.pod_spec = resources, dict(pod_spec or {})
        self._client, self._kubeconfig, self._context = client, kubeconfig, context
        self.name = f"Kubernetes:{self.bound.get_name()}"

    # ------------------------------------------------------------------ the Pod

    @property
    def namespace(self) -> str:
        """Where the Pods run: the one given, else the kubeconfig context's (``context``, or the
        current one), as kubectl chooses it; read once, on first use."""
        if self._namespace is None:
            from llmstep.cluster.transports import default_namespace

            self._namespace = default_namespace(self._kubeconfig, self._context)
        return self._namespace

    @namespace.setter
    def namespace(self, value: str) -> None:
        self._namespace = value

    @property
    def client(self) -> Any:
        if self._client is None:
            from llmstep.cluster.transports import kube_client

            self._client = kube_client(self._kubeconfig, self._context)
        return self._client

    def pod_manifest(self, input: Any, *, stream: bool = False) -> dict[str, Any]:
        """The Pod a call creates (a plain manifest, as ``kubectl create -f`` takes it)."""
        from llmstep import serde

        argv = contract.exec_argv(contract.DATA_DIR) + ["--payload-env", PAYLOAD_ENV, "--input-env", INPUT_ENV,
                                                       "--inputs", "input", "--log-records"]
        text = _env_text(serde.parameter_text(input))
        if len(text.encode("utf-8", "surrogatepass")) > contract.PART_BYTES:  # Linux caps one variable at 128 KiB
            argv, text = argv + ["--input-parts", *contract.value_parts(text)], ""
        env: list[dict[str, Any]] = [{"name": PAYLOAD_ENV, "value": _env_text(json.dumps(self.step.payload, sort_keys=True))},
                                     {"name": INPUT_ENV, "value": text}]
        env += [{"name": key, "valueFrom": {"secretKeyRef": {"name": self.secret, "key": key}}} for key in self.step.secrets]
        container: dict[str, Any] = {
            "name": "main",
            "image": self.image,
            "command": argv + (["--stream"] if stream else []),
            "env": env,
            "volumeMounts": [{"name": "data", "mountPath": contract.DATA_DIR}],
            "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                "runAsNonRoot": True, "capabilities": {"drop": ["ALL"]}},
        }
        if self.resources:
            container["resources"] = self.resources
        spec: dict[str, Any] = {
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            "activeDeadlineSeconds": max(1, int(self.timeout)),
            "containers": [container],
            "volumes": [{"name": "data", "emptyDir": {}}],
            **self.pod_spec,
        }
        labels = {**contract.LABELS, contract.STEP_LABEL: self.step.name}
        return {"apiVersion": "v1", "kind": "Pod", "spec": spec,
                "metadata": {"generateName": f"llmstep-{self.step.name[:40]}-", "labels": labels,
                             "annotations": {contract.RUNNABLE_ANNOTATION: self.step.runnable}}}

    def _run(self, input: Any, cancel: threading.Event, stream: bool = False) -> Generator[tuple[str, Any], None, None]:
        """Create the Pod, yield ``("chunk", value)`` records as they come and ``("output", value)``
        at the end; delete the Pod whatever happens."""
        from urllib3.exceptions import HTTPError

        from llmstep.cluster.transports import call_kube

        core = self.client.CoreV1Api()
        ApiException = self.client.exceptions.ApiException
        created = call_kube(self.client, f"creating a pod for {self.step.display} in namespace {self.namespace}",
                            core.create_namespaced_pod, self.namespace, self.pod_manifest(input, stream=stream),
                            hints=POD_HINTS)
        name = created.metadata.name
        deadline = time.monotonic() + self.timeout
        try:
            yield from self._watch(core, name, deadline, cancel, stream)
        except ApiException as exc:  # the pod went away under the call, or the API refused a read
            raise self._lost(exc, name) from exc
        except (OSError, HTTPError) as exc:  # the API server went away
            raise SubmissionError(f"waiting for pod {self.namespace}/{name} ({self.step.display}): cannot reach the "
                                  f"Kubernetes API server: {connection_reason(exc)}") from exc
        finally:
            try:
                core.delete_namespaced_pod(name, self.namespace, grace_period_seconds=0)
            except ApiException:
                pass  # already gone
            except (OSError, HTTPError) as exc:  # it ends by its activeDeadlineSeconds; say how to remove it
                log.warning("pod %s/%s could not be deleted (%s); kubectl delete pod -n %s %s",
                            self.namespace, name, connection_reason(exc), self.namespace, name)

    def _lost(self, exc: Any, name: str) -> SubmissionError:
        from llmstep.cluster.transports import api_error

        where = f"pod {self.namespace}/{name} ({self.step.display})"
        if getattr(exc, "status", None) == 404:
            return SubmissionError(f"{where} is gone: it was deleted while the call waited for its result (by "
                                   "another client, a namespace deletion or an eviction), so the call did not finish; "
                                   "call again")
        return api_error(exc, f"reading {where}", POD_HINTS)

    def _watch(self, core: Any, name: str, deadline: float, cancel: threading.Event,
               stream: bool) -> Generator[tuple[str, Any], None, None]:
        """The records of the created Pod ``name``, as :meth:`_run` yields them."""
        pod = self._until(core, name, deadline, cancel, running_is_enough=stream)
        if stream and pod.status.phase not in ("Succeeded", "Failed"):
            records = _follow(core.read_namespaced_pod_log(name, self.namespace, container="main", follow=True,
                                                           _preload_content=False))
            seen_end = False
            for kind, record in records:
                if kind == "chunk":
                    yield "chunk", _value(record, name)
                else:
                    seen_end = True
                    yield _outcome(kind, record, name, self.step.display)
            if seen_end:
                return
            pod = self._until(core, name, deadline, cancel)
        log = core.read_namespaced_pod_log(name, self.namespace, container="main")
        for kind, record in _records(log):
            if kind in ("output", "error"):
                yield _outcome(kind, record, name, self.step.display)
                return
        raise ExecutionError(f"pod {self.namespace}/{name} ({self.step.display}) {_ended(pod)}; its log has no "
                             f"result. Last lines:\n{_tail(log)}")

    def _until(self, core: Any, name: str, deadline: float, cancel: threading.Event, running_is_enough: bool = False) -> Any:
        """Wait until the Pod has finished (or runs, for streaming); fail at once when it cannot start."""
        while True:
            pod = core.read_namespaced_pod(name, self.namespace)
            status = pod.status
            if status.phase in ("Succeeded", "Failed") or (running_is_enough and status.phase == "Running"):
                return pod
            problem = _cannot_start(status)
            if problem:
                events = _events(core, self.namespace, name)
                raise SubmissionError(f"pod {self.namespace}/{name} ({self.step.display}) cannot start: {problem}"
                                      + (f"\n  events: {events}" if events else ""))
            if cancel.is_set():
                raise Cancelled(f"call to {self.step.display} cancelled; pod {name} deleted")
            if time.monotonic() > deadline:
                raise SubmissionError(f"pod {self.namespace}/{name} ({self.step.display}) still {status.phase} after "
                                      f"{self.timeout:.0f} s (timeout=); it was deleted")
            time.sleep(self.poll)

    # ------------------------------------------------------------------ the Runnable interface

    def invoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        return self._call_with_config(lambda x: self._result(x, threading.Event()), input, config, **kwargs)

    def _result(self, input: Any, cancel: threading.Event) -> Any:
        with contextlib.closing(self._run(input, cancel)) as records:  # closing deletes the pod now
            for kind, value in records:
                if kind == "output":
                    return value
        raise ExecutionError(f"{self.step.display}: the pod ended without an output")  # pragma: no cover

    async def ainvoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        cancel = threading.Event()
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(None, lambda: self._call_with_config(lambda x: self._result(x, cancel), input, config))
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            cancel.set()  # the worker thread stops waiting and deletes its pod
            raise

    def batch(self, inputs: list[Any], config: Any = None, *, return_exceptions: bool = False, **kwargs: Any) -> list[Any]:
        if not inputs:
            return []
        configs = config if isinstance(config, list) else [config] * len(inputs)
        width = (configs[0] or {}).get("max_concurrency") or self.max_concurrency
        cancel = threading.Event()

        def one(pair: tuple[Any, Any]) -> Any:
            try:
                return self._call_with_config(lambda x: self._result(x, cancel), pair[0], pair[1])
            except Exception as exc:
                if return_exceptions:
                    return exc
                raise

        pool = cf.ThreadPoolExecutor(max_workers=max(1, min(width, len(inputs))), thread_name_prefix="llmstep-pod")
        try:
            return list(pool.map(one, zip(inputs, configs, strict=True)))
        except BaseException:
            cancel.set()  # every pod still waited on is deleted by its thread
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def stream(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Iterator[Any]:
        cancel = threading.Event()
        with contextlib.closing(self._run(input, cancel, stream=True)) as records:
            for kind, value in records:
                if kind == "chunk":
                    yield value


# ---------------------------------------------------------------------- helpers


def _env_text(text: str) -> str:
    """Kubernetes expands ``$(VAR)`` in env values (see :func:`llmstep.serde.kube_literal`)."""
    from llmstep import serde

    return serde.kube_literal(text)


def _cannot_start(status: Any) -> str | None:
    for cs in status.container_statuses or []:
        waiting = cs.state.waiting if cs.state else None
        if waiting and waiting.reason in CANNOT_START and not (waiting.message or "").startswith(PASSING):
            return f"{waiting.reason}: {waiting.message or ''}".rstrip(": ")
    for cond in status.conditions or []:
        if cond.type == "PodScheduled" and cond.status == "False" and cond.reason == "Unschedulable":
            return f"Unschedulable: {cond.message}"
    return None


def _events(core: Any, namespace: str, name: str) -> str:
    try:
        items = core.list_namespaced_event(namespace, field_selector=f"involvedObject.name={name}").items
    except Exception:  # events only add detail
        return ""
    return "; ".join(f"{e.reason}: {e.message}" for e in items if e.type == "Warning")[:2000]


def _records(log: str) -> Iterator[tuple[str, dict[str, Any]]]:
    for line in log.splitlines():
        record = contract.parse_record(line)
        if record is not None:
            yield record.get("kind", ""), record


def _follow(response: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    """Records from a followed log, as the step writes them."""
    buffer = b""
    try:
        for data in response.stream(4096):
            buffer += data
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                yield from _records(line.decode("utf-8", errors="replace"))
        yield from _records(buffer.decode("utf-8", errors="replace"))
    finally:
        response.release_conn()


def _value(record: dict[str, Any], pod: str) -> Any:
    from llmstep import serde

    return serde.loads_value(record.get("value", ""), where=f"pod {pod} output")


def _outcome(kind: str, record: dict[str, Any], pod: str, step: str) -> tuple[str, Any]:
    if kind == "output":
        return "output", _value(record, pod)
    code = int(record.get("exit_code", contract.EXIT_RUNNABLE_FAILED))
    error = {contract.EXIT_BAD_INPUT: PayloadError, contract.EXIT_MISSING_CREDENTIALS: CredentialsError}.get(code, ExecutionError)
    raise error(f"{step} failed in pod {pod} (exit code {code}): {contract.error_text(record)}")


def _ended(pod: Any) -> str:
    status = pod.status
    text = f"ended {status.phase}" + (f" ({status.reason}: {status.message})" if status.reason else "")
    for cs in status.container_statuses or []:
        term = cs.state.terminated if cs.state else None
        if term:
            text += f", exit code {term.exit_code} ({term.reason})"
    return text


def _tail(log: str, lines: int = 20) -> str:
    return "\n".join(log.splitlines()[-lines:]) or "(empty)"

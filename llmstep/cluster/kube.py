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
import threading
import time
from collections.abc import Generator, Iterator, Mapping
from typing import Any

from langchain_core.runnables import Runnable, RunnableConfig

from llmstep import contract, exitcodes
from llmstep.cluster.transports import POD_HINTS, Transport
from llmstep.errors import Cancelled, CredentialsError, ExecutionError, PayloadError, SubmissionError

log = logging.getLogger(__name__)

CANNOT_START = {
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "ErrImageNeverPull",
    "CreateContainerConfigError",
    "CreateContainerError",
}
PASSING = ("failed to sync secret cache", "failed to sync configmap cache")
"""Messages of a ``CreateContainerConfigError`` the kubelet retries on its own: a loaded kubelet says
this before it has read the Secret, and only then names what is really missing."""
PAYLOAD_ENV, INPUT_ENV = contract.PAYLOAD_ENV, contract.INPUT_ENV
__all__ = ["POD_HINTS", "KubernetesRunnable"]  # POD_HINTS: how the transport words a refusal about pods


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
        transport: any :class:`llmstep.cluster.transports.Transport` instead (a ``FakeCluster``).
        environ: the environment at construction, whose secret-named values the Runnable must not
            carry (``llmstep.KubernetesRunnable`` passes this process's, and its ``KUBECONFIG``).
    """

    def __init__(
        self,
        runnable: Any,
        *,
        image: str | None = None,
        namespace: str | None = None,
        secret: str | None = None,
        allow_pickle: bool = False,
        timeout: float = 600,
        max_concurrency: int = 8,
        resources: dict[str, Any] | None = None,
        pod_spec: dict[str, Any] | None = None,
        client: Any = None,
        kubeconfig: str | None = None,
        context: str | None = None,
        poll: float = 0.25,
        transport: Transport | None = None,
        environ: Mapping[str, str] | None = None,
        stacklevel: int = 3,
    ) -> None:
        from langchain_core.runnables.base import coerce_to_runnable

        from llmstep.compiler.walk import DEFAULT_IMAGE, DEFAULT_SECRET, single_step

        self.bound = coerce_to_runnable(runnable)
        self.step = single_step(
            self.bound,
            allow_pickle=allow_pickle,
            secret=secret or DEFAULT_SECRET,
            environ=environ or {},
            stacklevel=stacklevel,
        )
        self.image, self._namespace, self.secret = image or DEFAULT_IMAGE, namespace, secret or DEFAULT_SECRET
        self.timeout, self.max_concurrency, self.poll = timeout, max_concurrency, poll
        self.resources, self.pod_spec = resources, dict(pod_spec or {})
        self._client, self._kubeconfig, self._context = client, kubeconfig or (environ or {}).get("KUBECONFIG"), context
        self._transport = transport
        if transport is not None and namespace is None:  # a FakeCluster, say: no kubeconfig speaks for it
            self._namespace = "default"
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
    def transport(self) -> Transport:
        """What the Pods are created through: the one given, else the Kubernetes API."""
        if self._transport is None:
            from llmstep.cluster.transports import KubeApi, kube_client

            self._transport = KubeApi(self._client or kube_client(self._kubeconfig, self._context))
        return self._transport

    def pod_manifest(self, input: Any, *, stream: bool = False) -> dict[str, Any]:
        """The Pod a call creates (a plain manifest, as ``kubectl create -f`` takes it)."""
        from llmstep import serde

        argv = contract.exec_argv(contract.DATA_DIR) + [
            "--payload-env",
            PAYLOAD_ENV,
            "--input-env",
            INPUT_ENV,
            "--inputs",
            "input",
            "--log-records",
        ]
        text = _env_text(serde.parameter_text(input))
        if len(text.encode("utf-8", "surrogatepass")) > contract.PART_BYTES:  # Linux caps one variable at 128 KiB
            argv, text = argv + ["--input-parts", *contract.value_parts(text)], ""
        env: list[dict[str, Any]] = [
            {"name": PAYLOAD_ENV, "value": _env_text(json.dumps(self.step.payload, sort_keys=True))},
            {"name": INPUT_ENV, "value": text},
        ]
        env += [
            {"name": key, "valueFrom": {"secretKeyRef": {"name": self.secret, "key": key}}} for key in self.step.secrets
        ]
        container: dict[str, Any] = {
            "name": "main",
            "image": self.image,
            "command": argv + (["--stream"] if stream else []),
            "env": env,
            "volumeMounts": [{"name": "data", "mountPath": contract.DATA_DIR}],
            "securityContext": {
                "allowPrivilegeEscalation": False,
                "readOnlyRootFilesystem": True,
                "runAsNonRoot": True,
                "capabilities": {"drop": ["ALL"]},
            },
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
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "spec": spec,
            "metadata": {
                "generateName": f"llmstep-{self.step.name[:40]}-",
                "labels": labels,
                "annotations": {contract.RUNNABLE_ANNOTATION: self.step.runnable},
            },
        }

    def _run(self, input: Any, cancel: threading.Event, stream: bool = False) -> Generator[tuple[str, Any], None, None]:
        """Create the Pod, yield ``("chunk", value)`` records as they come and ``("output", value)``
        at the end; delete the Pod whatever happens."""
        api = self.transport
        try:
            created = api.create(self.namespace, self.pod_manifest(input, stream=stream))
        except SubmissionError as exc:  # name the step whose pod it was
            raise SubmissionError(f"{self.step.display}: {exc}") from exc
        name = created["metadata"]["name"]
        deadline = time.monotonic() + self.timeout
        try:
            yield from self._watch(api, name, deadline, cancel, stream)
        except SubmissionError as exc:
            if not hasattr(exc, "status"):  # llmstep's own verdict (cannot start, timeout): as it is
                raise
            raise self._lost(exc, name) from exc  # the pod went away, the API refused a read or went away
        finally:
            try:
                api.delete(self.namespace, "Pod", name)
            except SubmissionError as exc:
                if getattr(exc, "status", None) is None:  # it ends by its activeDeadlineSeconds; say how to remove it
                    log.warning(
                        "pod %s/%s could not be deleted (%s); kubectl delete pod -n %s %s",
                        self.namespace,
                        name,
                        exc,
                        self.namespace,
                        name,
                    )
                # else it is already gone

    def _lost(self, exc: SubmissionError, name: str) -> SubmissionError:
        where = f"pod {self.namespace}/{name} ({self.step.display})"
        if getattr(exc, "status", None) == 404:
            return SubmissionError(
                f"{where} is gone: it was deleted while the call waited for its result (by "
                "another client, a namespace deletion or an eviction), so the call did not finish; "
                "call again"
            )
        return SubmissionError(f"waiting for {where}: {exc}")

    def _watch(
        self, api: Transport, name: str, deadline: float, cancel: threading.Event, stream: bool
    ) -> Generator[tuple[str, Any], None, None]:
        """The records of the created Pod ``name``, as :meth:`_run` yields them."""
        pod = self._until(api, name, deadline, cancel, running_is_enough=stream)
        if stream and _phase(pod) not in ("Succeeded", "Failed"):
            seen_end = False
            for kind, record in _records(api.follow(self.namespace, name, "main")):
                if kind == "chunk":
                    yield "chunk", _value(record, name)
                else:
                    seen_end = True
                    yield _outcome(kind, record, name, self.step.display)
            if seen_end:
                return
            pod = self._until(api, name, deadline, cancel)
        text = api.log(self.namespace, name, "main")
        for kind, record in _records(text.splitlines()):
            if kind in ("output", "error"):
                yield _outcome(kind, record, name, self.step.display)
                return
        raise ExecutionError(
            f"pod {self.namespace}/{name} ({self.step.display}) {_ended(pod)}; its log has no "
            f"result. Last lines:\n{_tail(text)}"
        )

    def _until(
        self, api: Transport, name: str, deadline: float, cancel: threading.Event, running_is_enough: bool = False
    ) -> dict[str, Any]:
        """Wait until the Pod has finished (or runs, for streaming); fail at once when it cannot start."""
        while True:
            pod = api.get(self.namespace, "Pod", name)
            phase = _phase(pod)
            if phase in ("Succeeded", "Failed") or (running_is_enough and phase == "Running"):
                return pod
            problem = _cannot_start(pod.get("status") or {})
            if problem:
                events = _events(api, self.namespace, name)
                raise SubmissionError(
                    f"pod {self.namespace}/{name} ({self.step.display}) cannot start: {problem}"
                    + (f"\n  events: {events}" if events else "")
                )
            if cancel.is_set():
                raise Cancelled(f"call to {self.step.display} cancelled; pod {name} deleted")
            if time.monotonic() > deadline:
                raise SubmissionError(
                    f"pod {self.namespace}/{name} ({self.step.display}) still {phase} after "
                    f"{self.timeout:.0f} s (timeout=); it was deleted"
                )
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
        future = loop.run_in_executor(
            None, lambda: self._call_with_config(lambda x: self._result(x, cancel), input, config)
        )
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            cancel.set()  # the worker thread stops waiting and deletes its pod
            raise

    def batch(
        self, inputs: list[Any], config: Any = None, *, return_exceptions: bool = False, **kwargs: Any
    ) -> list[Any]:
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


def _phase(pod: dict[str, Any]) -> str | None:
    return (pod.get("status") or {}).get("phase")


def _cannot_start(status: dict[str, Any]) -> str | None:
    for cs in status.get("containerStatuses") or []:
        waiting = (cs.get("state") or {}).get("waiting")
        if waiting and waiting.get("reason") in CANNOT_START and not (waiting.get("message") or "").startswith(PASSING):
            return f"{waiting['reason']}: {waiting.get('message') or ''}".rstrip(": ")
    for cond in status.get("conditions") or []:
        if (
            cond.get("type") == "PodScheduled"
            and cond.get("status") == "False"
            and cond.get("reason") == "Unschedulable"
        ):
            return f"Unschedulable: {cond.get('message')}"
    return None


def _events(api: Transport, namespace: str, name: str) -> str:
    try:
        items = api.list(namespace, "Event", fields=f"involvedObject.name={name}")
    except SubmissionError:  # events only add detail
        return ""
    return "; ".join(f"{e.get('reason')}: {e.get('message')}" for e in items if e.get("type") == "Warning")[:2000]


def _records(lines: Iterator[str] | list[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    for line in lines:
        record = contract.parse_record(line)
        if record is not None:
            yield record.get("kind", ""), record


def _value(record: dict[str, Any], pod: str) -> Any:
    from llmstep import serde

    return serde.loads_value(record.get("value", ""), where=f"pod {pod} output")


def _outcome(kind: str, record: dict[str, Any], pod: str, step: str) -> tuple[str, Any]:
    if kind == "output":
        return "output", _value(record, pod)
    code = int(record.get("exit_code", exitcodes.EXIT_RUNNABLE_FAILED))
    error = {exitcodes.EXIT_BAD_INPUT: PayloadError, exitcodes.EXIT_MISSING_CREDENTIALS: CredentialsError}.get(
        code, ExecutionError
    )
    raise error(f"{step} failed in pod {pod} (exit code {code}): {contract.error_text(record)}")


def _ended(pod: dict[str, Any]) -> str:
    status = pod.get("status") or {}
    text = f"ended {status.get('phase')}" + (
        f" ({status['reason']}: {status.get('message')})" if status.get("reason") else ""
    )
    for cs in status.get("containerStatuses") or []:
        term = (cs.get("state") or {}).get("terminated")
        if term:
            text += f", exit code {term.get('exitCode')} ({term.get('reason')})"
    return text


def _tail(log: str, lines: int = 20) -> str:
    return "\n".join(log.splitlines()[-lines:]) or "(empty)"

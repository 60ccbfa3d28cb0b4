"""On a cluster: create a compiled chain's PipelineRun (with its Tasks and Pipeline), wait for it,
read its result, its logs, or cancel it, through a :class:`llmstep.cluster.transports.Transport`
(the Kubernetes API, or a ``FakeCluster``).

The chain's output is read back from the output task's log: results are capped at 4 KiB per
TaskRun, so the Pipeline sets ``log-output: "true"`` on its output task and ``llmstep exec``
writes the output there as one ``@llmstep {...}`` record; the record is checked against the
task's ``sha256`` result (the digest of ``output.json`` in the data workspace) before it is read.
While the output task's pod is kept (Tekton keeps it until the PipelineRun is deleted, unless a
pruner removes it), the output can be read.
"""

from __future__ import annotations

import copy
import hashlib
import time
from dataclasses import dataclass
from typing import Any

from llmstep import contract
from llmstep.cluster.transports import Transport
from llmstep.errors import PipelineRunFailed, SubmissionError

STEP_CONTAINER = "step-exec"


def pipelinerun_failed(run: dict[str, Any], taskruns: list[dict[str, Any]]) -> PipelineRunFailed:
    """The error for a finished PipelineRun that did not succeed: its reason and failed tasks."""
    meta = run.get("metadata") or {}
    cond = succeeded(run) or {}
    failures = [
        {
            "task": (tr["metadata"].get("labels") or {}).get("tekton.dev/pipelineTask"),
            "taskrun": tr["metadata"]["name"],
            "reason": (succeeded(tr) or {}).get("reason"),
            "message": (succeeded(tr) or {}).get("message"),
        }
        for tr in taskruns
        if (succeeded(tr) or {}).get("status") == "False"
    ]
    name, ns = meta.get("name"), meta.get("namespace")
    lines = [
        f"pipelinerun {name} {str(cond.get('reason') or 'failed').lower()}: {cond.get('message') or ''}".rstrip(": ")
    ]
    lines += [f"  task {f['task']} (taskrun {f['taskrun']}): {f['reason']}: {f['message']}" for f in failures]
    lines.append(f"  see: tkn pipelinerun describe {name} -n {ns}")
    lines.append(f"  ask what went wrong: llmstep diagnose pipelinerun/{name} -n {ns}")
    return PipelineRunFailed("\n".join(lines), run_id=name or "", failures=failures)


def succeeded(obj: dict[str, Any]) -> dict[str, Any] | None:
    """The ``Succeeded`` condition of a PipelineRun or TaskRun (None before the controller sets it)."""
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Succeeded":
            return cond
    return None


def done(obj: dict[str, Any]) -> bool:
    cond = succeeded(obj)
    return cond is not None and cond.get("status") in ("True", "False")


@dataclass
class PipelineRunHandle:
    """A created PipelineRun: ``wait()``, ``result()``, ``logs()``, ``cancel()``."""

    name: str
    namespace: str
    transport: Transport
    output_task: str | None = None
    url: str | None = None  # no UI to link (the Tekton Dashboard is optional)

    def get(self) -> dict[str, Any]:
        return self.transport.get(self.namespace, "PipelineRun", self.name)

    def wait(self, timeout: float = 600, poll: float = 2.0) -> dict[str, Any]:
        """Until the PipelineRun finishes (Pending and Running are not finished); raises
        ``PipelineRunFailed`` (naming the failed tasks) unless it succeeded."""
        return self._succeeded(self._finished(timeout, poll))

    def _succeeded(self, run: dict[str, Any]) -> dict[str, Any]:
        if (succeeded(run) or {}).get("status") != "True":
            raise pipelinerun_failed(run, self._taskruns())
        return run

    def _finished(self, timeout: float, poll: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            run = self.get()
            if done(run):
                return run
            if time.monotonic() > deadline:
                reason = (succeeded(run) or {}).get("reason") or "not started"
                raise SubmissionError(
                    f"pipelinerun {self.name} still {reason} after {timeout:.0f} s; "
                    f"see tkn pipelinerun describe {self.name} -n {self.namespace}"
                )
            time.sleep(poll)

    def _taskruns(self) -> list[dict[str, Any]]:
        return self.transport.list(self.namespace, "TaskRun", labels=f"tekton.dev/pipelineRun={self.name}")

    def _taskrun(self, task: str) -> dict[str, Any]:
        for tr in self._taskruns():
            if (tr["metadata"].get("labels") or {}).get("tekton.dev/pipelineTask") == task:
                return tr
        raise SubmissionError(f"pipelinerun {self.name} has no taskrun for task {task!r}")

    def result(self) -> Any:
        """The chain's output, read from the output task's log and checked against its digest."""
        from llmstep import serde

        run = self.get()
        if not done(run):
            raise SubmissionError(
                f"pipelinerun {self.name} is {(succeeded(run) or {}).get('reason') or 'not started'}; "
                "wait() for it first"
            )
        self._succeeded(run)
        task = self.output_task or (run["metadata"].get("annotations") or {}).get(contract.OUTPUT_TASK)
        if not task:
            raise SubmissionError(f"pipelinerun {self.name} names no output task (annotation {contract.OUTPUT_TASK})")
        tr = self._taskrun(task)
        digest = {r["name"]: r.get("value") for r in (tr.get("status") or {}).get("results") or []}.get("sha256")
        pod = (tr.get("status") or {}).get("podName")
        where = f"the output of pipelinerun {self.name} (task {task})"
        text = None
        for line in self.transport.log(self.namespace, pod, STEP_CONTAINER).splitlines() if pod else []:
            record = contract.parse_record(line)
            if record is not None and record.get("kind") == "output":
                text = record["value"]
        if text is None:
            raise SubmissionError(
                f"{where}: the task's log holds no output record (pod {pod}); the output stays in the "
                "data workspace, at the task's output-path result"
            )
        if digest and hashlib.sha256(text.encode()).hexdigest() != digest:
            raise SubmissionError(f"{where}: the log's copy does not match the task's sha256 result {digest}")
        return serde.loads_value(text, where=where)

    def usage(self) -> dict[str, dict[str, Any]]:
        """The run's tokens per model so far: the sum of its TaskRuns' ``usage`` results (see
        :mod:`llmstep.usage`)."""
        from llmstep import usage

        return usage.totals(
            r.get("value")
            for tr in self._taskruns()
            for r in (tr.get("status") or {}).get("results") or []
            if r.get("name") == "usage"
        )

    def logs(self, step: str | None = None) -> dict[str, str]:
        """The ``exec`` step's log of each task's pod, by pipeline task name."""
        out: dict[str, str] = {}
        for tr in self._taskruns():
            task = (tr["metadata"].get("labels") or {}).get("tekton.dev/pipelineTask")
            pod = (tr.get("status") or {}).get("podName")
            if pod and task is not None and (step is None or task == step):
                containers = [s.get("container") for s in (tr.get("status") or {}).get("steps") or []]
                try:
                    out[task] = "".join(self.transport.log(self.namespace, pod, c) for c in containers if c)
                except SubmissionError as exc:
                    out[task] = f"(no log: {exc})"
        return out

    def cancel(self) -> None:
        """Stop the PipelineRun now (``tkn pipelinerun cancel``)."""
        self.transport.patch(self.namespace, "PipelineRun", self.name, {"spec": {"status": "Cancelled"}})


def submit(docs: list[dict[str, Any]], input_text: str, *, namespace: str, transport: Transport) -> PipelineRunHandle:
    """Apply the Tasks and the Pipeline, then create the PipelineRun with its ``input`` param."""
    *objects, run = copy.deepcopy(docs)
    for doc in objects:
        transport.apply(namespace, doc)
    from llmstep.render.tekton import with_input

    with_input(run, input_text)
    output_task = next(
        (
            (d["metadata"].get("annotations") or {}).get(contract.OUTPUT_TASK)
            for d in objects
            if d["kind"] == "Pipeline"
        ),
        None,
    )
    if output_task:
        run["metadata"].setdefault("annotations", {})[contract.OUTPUT_TASK] = output_task
    created = transport.create(namespace, run)
    return PipelineRunHandle(
        name=created["metadata"]["name"], namespace=namespace, transport=transport, output_task=output_task
    )

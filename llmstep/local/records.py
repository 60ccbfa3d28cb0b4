"""Run records: one directory per local run, shaped like Argo's ``status`` so the same code can
later read cluster runs.

```
.llmstep/runs/<run-id>/
  workflow.yaml            the document that ran (as given, hand edits included)
  workflow.previous.yaml   what ran before a resume with the current code replaced it
  status.json              the run's state (see llmstep.local.state): phase, arguments, nodes
  lock                     held (fcntl) by the llmstep process running the run: one at a time
  pinned                   present: never pruned
  steps/<task>/data/       the step's data directory: runnable.json, input*, output.json, error.json
  steps/<task>/log.txt     what the step printed, every attempt
  steps/<task>/pid         the step's process while it runs
  workspaces/<name>/       a Tekton run's workspaces
  values/                  big texts, stored once (llmstep.local.values)
```
This module is the one home of that layout: every other module asks a :class:`RunRecord` for
its paths, which checks a task's name before it names a folder.

A record says "Running" only while its lock is held: one whose process ended without finishing it
(killed with -9, a full disk) reads as Failed, with a message that says so. The run id is a DNS
label made from the document's name, so the record is always a directory right inside the runs
directory, whatever the name says. A status.json that is not a record (hand edited, cut short) is
skipped with a warning naming it, never an error for the other runs.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import secrets
import shutil
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from llmstep import contract, jsonio
from llmstep.contract import Phase
from llmstep.errors import UsageError, WorkflowError
from llmstep.local import values
from llmstep.local.state import NodeState, NotARecord, RunState
from llmstep.local.values import ValueStore
from llmstep.yamlio import dump_all, load_documents

log = logging.getLogger(__name__)

DEFAULT_RUNS_DIR = Path(".llmstep") / "runs"
WORKFLOW = "workflow.yaml"
PREVIOUS_WORKFLOW = "workflow.previous.yaml"
STATUS = "status.json"
LOCK = "lock"
PINNED = "pinned"
STEPS = "steps"
DATA = "data"
LOG = "log.txt"
PID = "pid"
WORKSPACES = "workspaces"
SAVE_EVERY = 0.5
"""Node updates reach status.json within this many seconds."""
ENDED_UNFINISHED = "the llmstep process running it ended without finishing the record (killed, or the disk was full)"
NOT_STARTED = {"argo": Phase.OMITTED, "tekton": Phase.SKIPPED}
"""How each engine shows a step that never started once its run has ended: Argo marks a DAG task
it will not run ``Omitted``; Tekton lists the task among the PipelineRun's skipped tasks."""
NOT_STARTED_MESSAGE = "not started: the run ended before it"
_NAME_CHARS = re.compile(r"[^a-z0-9-]+")


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class RunRecord:
    """The on-disk record of one local run; thread-safe updates, atomic saves."""

    def __init__(self, root: Path, state: RunState) -> None:
        self.root = root
        self.state = state
        self._lock = threading.RLock()
        self._saved_at = 0.0
        self._timer: threading.Timer | None = None
        self._lock_fd: int | None = None
        self.values = ValueStore(root)

    @property
    def run_id(self) -> str:
        return self.root.name

    @property
    def phase(self) -> Phase:
        return self.state.phase

    @property
    def nodes(self) -> dict[str, NodeState]:
        return self.state.nodes

    def in_run_order(self) -> list[tuple[str, NodeState]]:
        """The nodes as they ran: those that started by their start, then the others in the
        documents' order (the order the runner created them in)."""
        return sorted(self.nodes.items(), key=lambda item: (not item[1].started_at, item[1].started_at or ""))

    def shown(self, node: NodeState) -> tuple[Phase, str]:
        """A node's phase and message in the words of the run's engine: once the run has ended, a
        step still ``Pending`` never started (Argo: ``Omitted``; Tekton: ``Skipped``), and Tekton
        calls the tasks it did not run skipped."""
        phase, message, engine = node.phase, node.message or "", self.state.engine
        if phase == Phase.PENDING and self.state.ended:
            return NOT_STARTED.get(engine, NOT_STARTED["argo"]), message or NOT_STARTED_MESSAGE
        if phase == Phase.OMITTED and engine == "tekton":
            return NOT_STARTED["tekton"], message
        return phase, message

    # ------------------------------------------------------------------ the layout

    def step_path(self, task: str, *parts: str) -> Path:
        """A path in the folder of ``task`` (``steps/<task>/...``), not created."""
        if not task or task in (".", "..") or Path(task).name != task:  # the documents' checks refuse such names first
            raise WorkflowError(f"task name {task!r} cannot name a folder of the record")
        return self.root.joinpath(STEPS, task, *parts)

    def step_dir(self, task: str) -> Path:
        """The folder of ``task``, created."""
        path = self.step_path(task)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def data_dir(self, task: str) -> Path:
        """Where ``task``'s step keeps its files (its data directory), not created."""
        return self.step_path(task, DATA)

    def log_path(self, task: str) -> Path:
        """What ``task``'s step printed, every attempt."""
        return self.step_path(task, LOG)

    def pid_files(self) -> list[Path]:
        """The files naming a step process that runs (or ran, when a run was killed)."""
        return sorted((self.root / STEPS).glob(f"*/{PID}"))

    def workspace_dir(self, name: str) -> Path:
        """The folder of a Tekton workspace, created."""
        path = self.root / WORKSPACES / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def pinned(self) -> bool:
        return (self.root / PINNED).exists()

    def pin(self) -> None:
        """Keep this record when older ones are pruned."""
        (self.root / PINNED).touch()

    @classmethod
    def create(cls, runs_dir: Path, docs: list[dict[str, Any]], *, engine: str, arguments: dict[str, Any]) -> RunRecord:
        run_id = f"{run_name(_run_metadata(docs))}-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"
        root = Path(runs_dir).resolve() / run_id
        (root / STEPS).mkdir(parents=True)
        record = cls(root, RunState(engine=engine, phase=Phase.RUNNING, started_at=now(), arguments=arguments))
        record.lock()  # before the record says Running: a reader sees the lock held from the start
        try:
            (root / WORKFLOW).write_text(dump_all(docs), encoding="utf-8")
            record.save()
        except BaseException:
            record.release()
            shutil.rmtree(root, ignore_errors=True)  # not a run yet: nothing of it ran
            raise
        return record

    @classmethod
    def open(cls, runs_dir: Path, run_id: str) -> RunRecord:
        if not run_id or run_id in (".", "..") or Path(run_id).name != run_id:
            raise UsageError(f"{run_id!r} is not a run id (a name in the runs directory); see `llmstep runs`")
        root = Path(runs_dir).resolve() / run_id
        if not (root / STATUS).is_file():
            known = ", ".join(r.run_id for r in list_runs(runs_dir)[:5]) or "none"
            raise UsageError(f"no run {run_id!r} in {runs_dir} (recent: {known}); see `llmstep runs`")
        state, problem = read_status(root / STATUS, root)
        if state is None:
            raise WorkflowError(
                f"run {run_id}: {root / STATUS} is not a run record ({problem}); remove that run's directory"
            )
        return cls(root, state).settled()

    # ------------------------------------------------------------------ one process at a time

    def lock(self) -> None:
        """Take the run's lock for this process (released by :meth:`release`); WorkflowError when
        another process holds it: the run is still running there."""
        import fcntl

        fd = os.open(self.root / LOCK, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise WorkflowError(
                f"run {self.run_id} is still running (llmstep process {holder}); wait for it to end, "
                f"or stop it (kill {holder}) and resume it then"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._lock_fd = fd

    def release(self) -> None:
        fd, self._lock_fd = self._lock_fd, None
        if fd is not None:
            os.close(fd)

    def running_elsewhere(self) -> bool:
        """Whether another process holds this run's lock."""
        import fcntl

        if self._lock_fd is not None:
            return False
        try:
            fd = os.open(self.root / LOCK, os.O_RDONLY)
        except OSError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            return True
        finally:
            os.close(fd)
        return False

    def settled(self) -> RunRecord:
        """This record as it is: one left "Running" by a process that has ended is Failed."""
        if not self.state.ended and not self.running_elsewhere():
            for node in self.nodes.values():
                if not node.ended:
                    node.phase, node.message = Phase.FAILED, ENDED_UNFINISHED
            self.state.phase, self.state.message = Phase.FAILED, ENDED_UNFINISHED
        return self

    def replace_documents(self, docs: list[dict[str, Any]]) -> None:
        """Run ``docs`` from now on (a resume with the current code); the earlier ones are kept
        beside them as ``workflow.previous.yaml``."""
        current = self.root / WORKFLOW
        previous = self.root / PREVIOUS_WORKFLOW
        if current.is_file() and not previous.exists():
            current.replace(previous)
        current.write_text(dump_all(docs), encoding="utf-8")

    def documents(self) -> list[dict[str, Any]]:
        """The documents that ran (a Workflow, or a Tekton set)."""
        return load_documents(self.root / WORKFLOW)

    def update_node(self, task: str, **fields: Any) -> NodeState:
        """Change the node of ``task`` (created ``Pending``) by its fields (``phase=``,
        ``started_at=``, ...); a copy of it as it is now."""
        with self._lock:
            node = self.nodes.setdefault(task, NodeState(id=task, display_name=task))
            for name, value in fields.items():
                if name == "extra" or not hasattr(node, name):
                    raise TypeError(f"a node has no field {name!r}")
                setattr(node, name, value)
            self.save(soon=True)
            return dataclasses.replace(node)

    def finish(self, phase: Phase, message: str = "") -> None:
        with self._lock:
            self.state.phase, self.state.finished_at, self.state.message = phase, now(), message
            self.save()

    def interrupted(self, message: str = "interrupted", phase: Phase = Phase.FAILED) -> None:
        """Ctrl-C, SIGTERM or an error that ended the run: leave a consistent record; steps that
        were running or waiting failed with ``message``."""
        with self._lock:
            for node in self.nodes.values():
                if not node.ended:
                    node.phase, node.message, node.finished_at = Phase.FAILED, message, now()
            self.finish(phase, message)

    def save(self, soon: bool = False) -> None:
        """Write status.json atomically. ``soon``: within SAVE_EVERY seconds, so a run with many
        nodes (a batch) does not rewrite the whole record on every node update; the run's end
        (finish, interrupted) always writes at once."""
        with self._lock:
            if soon and time.monotonic() - self._saved_at < SAVE_EVERY:
                if self._timer is None:
                    self._timer = threading.Timer(SAVE_EVERY, self._save_later)
                    self._timer.daemon = True
                    self._timer.start()
                return
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            tmp = self.root / f"{STATUS}.tmp"
            # nodes keep the order they were created in (the documents'), which `show` lists by
            tmp.write_text(json.dumps(self.values.externalize(self.state.to_json()), indent=1), encoding="utf-8")
            os.replace(tmp, self.root / STATUS)
            self._saved_at = time.monotonic()

    def _save_later(self) -> None:
        """The deferred write (a timer thread): one that fails (a full disk) is retried by the
        next update, and the run's end reports its own."""
        try:
            self.save()
        except OSError as exc:
            log.debug("status.json of run %s not written: %s", self.run_id, exc)

    def failures(self) -> list[dict[str, Any]]:
        """Failed nodes in the shape of Argo's ``{{workflow.failures}}``."""
        return [
            {
                "displayName": n.display_name,
                "message": n.message or "",
                "templateName": n.template_name or "",
                "phase": str(n.phase),
                "podName": f"{self.run_id}-{task}",
                "finishedAt": n.finished_at or "",
            }
            for task, n in self.state.steps()
            if n.phase in contract.FAILED_PHASES and not n.exit_handler
        ]

    def result(self) -> Any:
        """The chain's output: the output of the task the workflow names as its result."""
        from llmstep import serde
        from llmstep.errors import RunFailed

        if self.state.batch:
            return self.results()
        if self.phase != Phase.SUCCEEDED:
            raise RunFailed(failure_message(self), run_id=self.run_id, failures=self.failures())
        task = self.state.output_task
        node = self.nodes.get(task or "")
        if not node:
            raise WorkflowError(f"the workflow does not name its result task (annotation {contract.OUTPUT_TASK})")
        text = node.output()
        if text is not None:
            return serde.loads_value(text, where=f"{task} output")
        raise WorkflowError(f"task {task!r} has no output artifact or parameter named 'output'")

    def usage(self) -> dict[str, dict[str, Any]]:
        """The run's tokens per model, summed over its steps (:meth:`RunState.usage`)."""
        return self.state.usage()

    def results(self, return_exceptions: bool = False) -> list[Any]:
        """A batch run's outputs in input order (see :func:`llmstep.render.batch.collect`)."""
        from llmstep.render import batch

        if self.phase not in contract.DONE_PHASES:
            raise WorkflowError(f"run {self.run_id} is {self.phase}; it has no results yet")
        count = len(jsonio.loads(self.state.arguments.get("inputs", "[]")))
        # render.batch reads Argo's status nodes, and ours in the same shape
        shaped = {task: node.to_json() for task, node in self.nodes.items()}
        typed = {id(data): self.nodes[task] for task, data in shaped.items()}
        return batch.collect(
            count,
            shaped.items(),
            self.state.output_task or "",
            lambda data: typed[id(data)].output(),
            f"run {self.run_id}",
            return_exceptions,
        )


def run_name(meta: Any) -> str:
    """The first part of a run id: the document's name (or generateName) as a DNS label of at
    most 40 characters, so it never leaves the runs directory (``../../x``, ``/abs``)."""
    meta = meta if isinstance(meta, dict) else {}
    raw = meta.get("name") or meta.get("generateName") or ""
    label = _NAME_CHARS.sub("-", str(raw).lower()).strip("-")
    return re.sub("-{2,}", "-", label)[:40].strip("-") or "run"


def read_status(path: Path, values_root: Path | None = None) -> tuple[RunState | None, str]:
    """A record's status.json, or None and what is wrong with it. With ``values_root`` (the
    record's folder), its big values are read back from where they are stored."""
    try:
        status = jsonio.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        return None, f"cannot be read: {exc}"
    except jsonio.TooDeep as exc:
        return None, str(exc)
    except json.JSONDecodeError as exc:
        return None, f"not JSON: {exc.msg}, line {exc.lineno} column {exc.colno}; cut short?"
    try:
        state = RunState.from_json(status)
    except NotARecord as exc:
        return None, str(exc)
    if values_root is not None:
        try:
            state = RunState.from_json(values.resolve(status, values_root))
        except (OSError, UnicodeDecodeError) as exc:
            return None, f"a value it stores cannot be read: {exc}"
        except NotARecord as exc:
            return None, str(exc)
    return state, ""


def _run_metadata(docs: list[dict[str, Any]]) -> dict[str, Any]:
    """Metadata of the document that names the run: the Workflow, PipelineRun or TaskRun."""
    for doc in docs:
        if doc.get("kind") in ("Workflow", "PipelineRun", "TaskRun"):
            return doc.get("metadata") or {}
    return {}


def failure_message(record: RunRecord) -> str:
    lines = [
        f"run {record.run_id} {record.phase.lower()}" + (f": {record.state.message}" if record.state.message else "")
    ]
    for failure in record.failures():
        lines.append(f"  step {failure['displayName']} ({failure['templateName']}): {failure['message']}")
    lines.append(
        f"  details: llmstep show {record.run_id} [STEP]; retry the failed steps: llmstep run --resume {record.run_id}"
    )
    return "\n".join(lines)


def list_runs(runs_dir: Path) -> list[RunRecord]:
    """Past runs, newest first: their phases and nodes (big values stay on disk; see
    :meth:`RunRecord.open` for a record to read them)."""
    root = Path(runs_dir)
    if not root.is_dir():
        return []
    records = []
    for child in root.iterdir():
        status_file = child / STATUS
        if status_file.is_file():
            state, problem = read_status(status_file)
            if state is None:
                log.warning("skipping %s: not a run record (%s)", status_file, problem)
                continue
            records.append(RunRecord(child, state).settled())
    return sorted(records, key=lambda r: r.state.started_at or "", reverse=True)


def prune(runs_dir: Path, keep: int) -> None:
    """Remove the records beyond the newest ``keep``, but pinned ones and those still running
    (in another process: it holds the record's lock)."""
    unpinned = [r for r in list_runs(runs_dir) if not r.pinned and r.phase != Phase.RUNNING]
    for record in unpinned[keep - 1 :]:
        shutil.rmtree(record.root, ignore_errors=True)

"""Run records: one directory per local run, shaped like Argo's ``status`` so the same code can
later read cluster runs.

```
.llmstep/runs/<run-id>/
  workflow.yaml        the document that ran (as given, hand edits included)
  status.json          {"phase", "startedAt", "finishedAt", "message", "arguments", "nodes": {...}}
  lock                 held (fcntl) by the llmstep process running the run: one at a time
  steps/<task>/        the step's data directory: runnable.json, input*, output.json, error.json
  steps/<task>/log.txt what the step printed, every attempt
```
Nodes are keyed by task name and carry ``displayName``, ``templateName``, ``phase``,
``startedAt``, ``finishedAt``, ``message``, ``exitCode``, ``attempts`` and ``outputs``.

A record says "Running" only while its lock is held: one whose process ended without finishing it
(killed with -9, a full disk) reads as Failed, with a message that says so. The run id is a DNS
label made from the document's name, so the record is always a directory right inside the runs
directory, whatever the name says. A status.json that is not a record (hand edited, cut short) is
skipped with a warning naming it, never an error for the other runs.
"""

from __future__ import annotations

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
from llmstep.errors import UsageError, WorkflowError
from llmstep.local import values
from llmstep.local.values import ValueStore
from llmstep.yamlio import dump_all, load_documents

log = logging.getLogger(__name__)

DEFAULT_RUNS_DIR = Path(".llmstep") / "runs"
SAVE_EVERY = 0.5
"""Node updates reach status.json within this many seconds."""
FINISHED_OK = ("Succeeded", "Skipped")
"""Phases after which dependents may run and a resumed run does not run the node again."""
ENDED_UNFINISHED = "the llmstep process running it ended without finishing the record (killed, or the disk was full)"
NOT_STARTED = {"argo": "Omitted", "tekton": "Skipped"}
"""How each engine shows a step that never started once its run has ended: Argo marks a DAG task
it will not run ``Omitted``; Tekton lists the task among the PipelineRun's skipped tasks."""
NOT_STARTED_MESSAGE = "not started: the run ended before it"
_NAME_CHARS = re.compile(r"[^a-z0-9-]+")
_STATUS_TYPES = {"phase": str, "startedAt": str, "finishedAt": str, "message": str, "arguments": dict, "nodes": dict}


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class RunRecord:
    """The on-disk record of one local run; thread-safe updates, atomic saves."""

    def __init__(self, root: Path, status: dict[str, Any]) -> None:
        self.root = root
        self.status = status
        self._lock = threading.RLock()
        self._saved_at = 0.0
        self._timer: threading.Timer | None = None
        self._lock_fd: int | None = None
        self.values = ValueStore(root)

    @property
    def run_id(self) -> str:
        return self.root.name

    @property
    def phase(self) -> str:
        return str(self.status.get("phase", "Pending"))

    @property
    def nodes(self) -> dict[str, dict[str, Any]]:
        return self.status.setdefault("nodes", {})

    def in_run_order(self) -> list[tuple[str, dict[str, Any]]]:
        """The nodes as they ran: those that started by their start, then the others in the
        documents' order (the order the runner created them in)."""
        return sorted(self.nodes.items(), key=lambda item: (not item[1].get("startedAt"), item[1].get("startedAt") or ""))

    def shown(self, node: dict[str, Any]) -> tuple[str, str]:
        """A node's phase and message in the words of the run's engine: once the run has ended, a
        step still ``Pending`` never started (Argo: ``Omitted``; Tekton: ``Skipped``), and Tekton
        calls the tasks it did not run skipped."""
        phase, message = str(node.get("phase", "Pending")), str(node.get("message", ""))
        engine = str(self.status.get("engine", "argo"))
        if phase == "Pending" and self.phase not in ("Running", "Pending"):
            return NOT_STARTED.get(engine, NOT_STARTED["argo"]), message or NOT_STARTED_MESSAGE
        if phase == "Omitted" and engine == "tekton":
            return NOT_STARTED["tekton"], message
        return phase, message

    @classmethod
    def create(cls, runs_dir: Path, docs: list[dict[str, Any]], *, engine: str, arguments: dict[str, Any]) -> RunRecord:
        run_id = f"{run_name(_run_metadata(docs))}-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"
        root = Path(runs_dir).resolve() / run_id
        (root / "steps").mkdir(parents=True)
        record = cls(root, {"engine": engine, "phase": "Running", "startedAt": now(), "arguments": arguments, "nodes": {}})
        record.lock()  # before the record says Running: a reader sees the lock held from the start
        try:
            (root / "workflow.yaml").write_text(dump_all(docs), encoding="utf-8")
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
        if not (root / "status.json").is_file():
            known = ", ".join(r.run_id for r in list_runs(runs_dir)[:5]) or "none"
            raise UsageError(f"no run {run_id!r} in {runs_dir} (recent: {known}); see `llmstep runs`")
        status, problem = read_status(root / "status.json")
        if status is not None:
            try:
                status = values.resolve(status, root)
            except (OSError, UnicodeDecodeError) as exc:
                status, problem = None, f"a value it stores cannot be read: {exc}"
        if status is None:
            raise WorkflowError(f"run {run_id}: {root / 'status.json'} is not a run record ({problem}); "
                                "remove that run's directory")
        return cls(root, status).settled()

    # ------------------------------------------------------------------ one process at a time

    def lock(self) -> None:
        """Take the run's lock for this process (released by :meth:`release`); WorkflowError when
        another process holds it: the run is still running there."""
        import fcntl

        fd = os.open(self.root / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise WorkflowError(f"run {self.run_id} is still running (llmstep process {holder}); wait for it to end, "
                                f"or stop it (kill {holder}) and resume it then") from None
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
            fd = os.open(self.root / "lock", os.O_RDONLY)
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
        if self.phase in ("Running", "Pending") and not self.running_elsewhere():
            for node in self.nodes.values():
                if node.get("phase") in ("Running", "Pending"):
                    node.update(phase="Failed", message=ENDED_UNFINISHED)
            self.status.update(phase="Failed", message=ENDED_UNFINISHED)
        return self

    def replace_documents(self, docs: list[dict[str, Any]]) -> None:
        """Run ``docs`` from now on (a resume with the current code); the earlier ones are kept
        beside them as ``workflow.previous.yaml``."""
        current = self.root / "workflow.yaml"
        previous = self.root / "workflow.previous.yaml"
        if current.is_file() and not previous.exists():
            current.replace(previous)
        current.write_text(dump_all(docs), encoding="utf-8")

    def documents(self) -> list[dict[str, Any]]:
        """The documents that ran (a Workflow, or a Tekton set)."""
        return load_documents(self.root / "workflow.yaml")

    def step_dir(self, task: str) -> Path:
        if not task or task in (".", "..") or Path(task).name != task:  # the documents' checks refuse such names first
            raise WorkflowError(f"task name {task!r} cannot name a folder of the record")
        path = self.root / "steps" / task
        path.mkdir(parents=True, exist_ok=True)
        return path

    def update_node(self, task: str, **fields: Any) -> dict[str, Any]:
        with self._lock:
            node = self.nodes.setdefault(task, {"id": task, "displayName": task, "phase": "Pending"})
            node.update(fields)
            self.save(soon=True)
            return dict(node)

    def finish(self, phase: str, message: str = "") -> None:
        with self._lock:
            self.status.update(phase=phase, finishedAt=now(), message=message)
            self.save()

    def interrupted(self, message: str = "interrupted", phase: str = "Failed") -> None:
        """Ctrl-C, SIGTERM or an error that ended the run: leave a consistent record; steps that
        were running or waiting failed with ``message``."""
        with self._lock:
            for node in self.nodes.values():
                if node.get("phase") in ("Running", "Pending"):
                    node.update(phase="Failed", message=message, finishedAt=now())
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
            tmp = self.root / "status.json.tmp"
            # nodes keep the order they were created in (the documents'), which `show` lists by
            tmp.write_text(json.dumps(self.values.externalize(self.status), indent=1), encoding="utf-8")
            os.replace(tmp, self.root / "status.json")
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
                "displayName": n.get("displayName", task),
                "message": n.get("message", ""),
                "templateName": n.get("templateName", ""),
                "phase": n["phase"],
                "podName": f"{self.run_id}-{task}",
                "finishedAt": n.get("finishedAt", ""),
            }
            for task, n in self.nodes.items()
            if n.get("phase") in contract.FAILED_PHASES and not n.get("exitHandler") and n.get("type", "Pod") == "Pod"
        ]

    def result(self) -> Any:
        """The chain's output: the output of the task the workflow names as its result."""
        from llmstep import serde
        from llmstep.errors import RunFailed

        if self.status.get("batch"):
            return self.results()
        if self.phase != "Succeeded":
            raise RunFailed(failure_message(self), run_id=self.run_id, failures=self.failures())
        task = self.status.get("outputTask")
        node = self.nodes.get(task or "")
        if not node:
            raise WorkflowError(f"the workflow does not name its result task (annotation {contract.OUTPUT_TASK})")
        text = _local_output(node)
        if text is not None:
            return serde.loads_value(text, where=f"{task} output")
        raise WorkflowError(f"task {task!r} has no output artifact or parameter named 'output'")

    def results(self, return_exceptions: bool = False) -> list[Any]:
        """A batch run's outputs in input order (see :func:`llmstep.render.batch.collect`)."""
        from llmstep.render import batch

        if self.phase not in contract.DONE_PHASES:
            raise WorkflowError(f"run {self.run_id} is {self.phase}; it has no results yet")
        count = len(jsonio.loads(self.status["arguments"].get("inputs", "[]")))
        return batch.collect(count, self.nodes.items(), self.status.get("outputTask") or "", _local_output,
                             f"run {self.run_id}", return_exceptions)


def _local_output(node: dict[str, Any]) -> str | None:
    for artifact in node.get("outputs", {}).get("artifacts", []):
        if artifact["name"] == "output":
            return Path(artifact["localPath"]).read_text(encoding="utf-8")
    for param in node.get("outputs", {}).get("parameters", []):
        if param["name"] == "output":
            return param["value"]
    return None


def run_name(meta: Any) -> str:
    """The first part of a run id: the document's name (or generateName) as a DNS label of at
    most 40 characters, so it never leaves the runs directory (``../../x``, ``/abs``)."""
    meta = meta if isinstance(meta, dict) else {}
    raw = meta.get("name") or meta.get("generateName") or ""
    label = _NAME_CHARS.sub("-", str(raw).lower()).strip("-")
    return re.sub("-{2,}", "-", label)[:40].strip("-") or "run"


def read_status(path: Path) -> tuple[dict[str, Any] | None, str]:
    """A record's status.json, or None and what is wrong with it."""
    try:
        status = jsonio.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        return None, f"cannot be read: {exc}"
    except jsonio.TooDeep as exc:
        return None, str(exc)
    except json.JSONDecodeError as exc:
        return None, f"not JSON: {exc.msg}, line {exc.lineno} column {exc.colno}; cut short?"
    if not isinstance(status, dict):
        return None, f"a JSON {type(status).__name__}, not an object"
    for key, kind in _STATUS_TYPES.items():
        if key in status and not isinstance(status[key], kind):
            return None, f"{key} is {type(status[key]).__name__}, not {kind.__name__}"
    bad = [k for k, v in status.get("nodes", {}).items() if not isinstance(v, dict)]
    if bad:
        return None, f"node {bad[0]!r} is not an object"
    bad = [k for k in status.get("nodes", {}) if not k or k in (".", "..") or Path(k).name != k]
    if bad:
        return None, f"node name {bad[0]!r} is not a step folder's name"
    bad = [k for k, v in status.get("arguments", {}).items()
           if not isinstance(v, (str, list)) and not values.is_ref(v)]
    if bad:
        return None, f"argument {bad[0]!r} is not text"
    return status, ""


def _run_metadata(docs: list[dict[str, Any]]) -> dict[str, Any]:
    """Metadata of the document that names the run: the Workflow, PipelineRun or TaskRun."""
    for doc in docs:
        if doc.get("kind") in ("Workflow", "PipelineRun", "TaskRun"):
            return doc.get("metadata") or {}
    return {}


def failure_message(record: RunRecord) -> str:
    lines = [f"run {record.run_id} {record.phase.lower()}" + (f": {record.status.get('message')}" if record.status.get("message") else "")]
    for failure in record.failures():
        lines.append(f"  step {failure['displayName']} ({failure['templateName']}): {failure['message']}")
    lines.append(f"  details: llmstep show {record.run_id} [STEP]; retry the failed steps: llmstep run --resume {record.run_id}")
    return "\n".join(lines)


def list_runs(runs_dir: Path) -> list[RunRecord]:
    """Past runs, newest first: their phases and nodes (big values stay on disk; see
    :meth:`RunRecord.open` for a record to read them)."""
    root = Path(runs_dir)
    if not root.is_dir():
        return []
    records = []
    for child in root.iterdir():
        status_file = child / "status.json"
        if status_file.is_file():
            status, problem = read_status(status_file)
            if status is None:
                log.warning("skipping %s: not a run record (%s)", status_file, problem)
                continue
            records.append(RunRecord(child, status).settled())
    return sorted(records, key=lambda r: str(r.status.get("startedAt", "")), reverse=True)

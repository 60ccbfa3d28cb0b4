"""The local runners' entry points: run a rendered Argo Workflow (:mod:`.argo_local`) or a Tekton
PipelineRun/TaskRun (:mod:`.tekton_local`) on this machine, and resume a past run.

Each task runs as its own process with the container's command (``llmstep exec``), its files,
and only the environment its pod would get. The document is the same dict or YAML that
``argo submit`` takes, hand edits included; what it uses outside the supported subset is refused
up front (see :mod:`llmstep.run.argo_doc`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from llmstep import serde
from llmstep.run import argo_doc
from llmstep.run.argo_local import ArgoRun, arguments
from llmstep.run.container import Isolation
from llmstep.run.process import Launcher
from llmstep.run.progress import Progress, make_progress
from llmstep.run.records import DEFAULT_RUNS_DIR, FINISHED_OK, RunRecord, now

MISSING = object()
_DEFAULT_IMAGE = "llmstep"  # only fills the built-in Task's image default; local steps use no image


def run_document(
    doc: dict[str, Any],
    input: Any = MISSING,  # noqa: A002 - mirrors Runnable.invoke
    *,
    parameters: Mapping[str, str] | None = None,
    parallelism: int | None = None,
    secrets: Mapping[str, str] | None = None,
    runs_dir: str | Path | None = None,
    quiet: bool = False,
    progress: Progress | None = None,
    isolation: Isolation | None = None,
    launcher: Launcher | None = None,
) -> RunRecord:
    """Run an Argo Workflow document; return its record (``record.result()`` is the output).

    ``input`` is a Python value for the ``input`` parameter (encoded like a step output);
    ``parameters`` are raw strings, as ``argo submit -p name=value`` gives them.
    """
    argo_doc.check_document(doc)
    declared = [p["name"] for p in (doc["spec"].get("arguments") or {}).get("parameters") or []]
    args = arguments(doc, _overrides(declared, input, parameters, "spec.arguments.parameters"))
    record = RunRecord.create(Path(runs_dir or DEFAULT_RUNS_DIR), [doc], engine="argo", arguments=args)
    run = ArgoRun(doc, record, secrets, parallelism, progress or make_progress(quiet), _isolation(isolation), launcher)
    return run.execute()


def _overrides(declared: list[str], input: Any, given: Mapping[str, str] | None, where: str) -> dict[str, str]:  # noqa: A002
    """Parameter values given for a run (``input`` encoded like a step output), each declared."""
    overrides = dict(given or {})
    if input is not MISSING:
        overrides["input"] = serde.dumps_value(input)
    argo_doc.check_declared(declared, overrides, where)
    return overrides


def _isolation(isolation: Isolation | None) -> Isolation:
    isolation = isolation or Isolation()
    isolation.check()
    return isolation


def resume_run(
    run_id: str,
    *,
    parallelism: int | None = None,
    secrets: Mapping[str, str] | None = None,
    runs_dir: str | Path | None = None,
    quiet: bool = False,
    progress: Progress | None = None,
    isolation: Isolation | None = None,
) -> RunRecord:
    """Re-run the steps of a past run that did not succeed, reusing finished outputs."""
    record = RunRecord.open(Path(runs_dir or DEFAULT_RUNS_DIR), run_id)
    docs = record.documents()
    if record.status.get("engine") == "tekton":
        from llmstep.run.tekton_local import TektonRun, prepare_run

        run, pipeline, tasks = prepare_run(docs, _DEFAULT_IMAGE)
        runner: Any = TektonRun(run, pipeline, tasks, _reset(record), secrets, parallelism,
                                progress or make_progress(quiet), _isolation(isolation))  # fmt: skip
        return runner.execute()
    argo_doc.check_document(docs[0])
    return ArgoRun(docs[0], _reset(record), secrets, parallelism, progress or make_progress(quiet), _isolation(isolation)).execute()


def _reset(record: RunRecord) -> RunRecord:
    """Forget the nodes that did not succeed (and exit handlers), so they run again."""
    for task, node in list(record.nodes.items()):
        if node.get("phase") not in FINISHED_OK or node.get("exitHandler"):
            del record.nodes[task]
    record.status.update(phase="Running", message="", resumedAt=now())
    record.save()
    return record


def run_tekton(
    docs: list[dict[str, Any]],
    input: Any = MISSING,  # noqa: A002 - mirrors Runnable.invoke
    *,
    parameters: Mapping[str, str] | None = None,
    parallelism: int | None = None,
    secrets: Mapping[str, str] | None = None,
    runs_dir: str | Path | None = None,
    quiet: bool = False,
    progress: Progress | None = None,
    isolation: Isolation | None = None,
    launcher: Launcher | None = None,
) -> RunRecord:
    """Run a Tekton PipelineRun or TaskRun (with the Pipeline and Tasks it uses) on this machine."""
    from llmstep.run.tekton_local import TektonRun, prepare_run

    run, pipeline, tasks = prepare_run(docs, _DEFAULT_IMAGE)
    overrides = _overrides([p["name"] for p in pipeline.get("params") or []], input, parameters, "the Pipeline")
    record = RunRecord.create(Path(runs_dir or DEFAULT_RUNS_DIR), docs, engine="tekton", arguments=overrides)
    annotated = [(d.get("metadata") or {}).get("annotations", {}).get("llmstep.dev/output-task")
                 for d in docs if d.get("kind") == "Pipeline"]  # fmt: skip
    record.status["outputTask"] = next((a for a in annotated if a), None) or (pipeline.get("tasks") or [{}])[-1].get("name")
    return TektonRun(run, pipeline, tasks, record, secrets, parallelism, progress or make_progress(quiet),
                     _isolation(isolation), launcher).execute()  # fmt: skip

"""The local runners' entry points: run a rendered Argo Workflow (:mod:`.argo`) or a Tekton
PipelineRun/TaskRun (:mod:`.tekton`) on this machine, and resume a past run.

Each task runs as its own process with the container's command (``llmstep exec``), its files,
and only the environment its pod would get. The document is the same dict or YAML that
``argo submit`` takes, hand edits included; what it uses outside the supported subset is refused
up front, when it is parsed (see :mod:`llmstep.local.argo_doc`).
"""

from __future__ import annotations

import contextlib
import logging
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from llmstep import serde
from llmstep.contract import FINISHED_OK, Phase
from llmstep.errors import WorkflowError
from llmstep.local import argo_doc, trust
from llmstep.local.argo import ArgoRun
from llmstep.local.lifecycle import stop_leftovers
from llmstep.local.options import RunOptions
from llmstep.local.records import RunRecord, now

log = logging.getLogger(__name__)
MISSING = object()
_DEFAULT_IMAGE = "llmstep"  # only fills the built-in Task's image default; local steps use no image


def run_document(
    doc: dict[str, Any], input: Any = MISSING, options: RunOptions | None = None, **given: Any
) -> RunRecord:
    """Run an Argo Workflow document; return its record (``record.result()`` is the output).

    ``input`` is a Python value for the ``input`` parameter (encoded like a step output), as
    ``Runnable.invoke`` takes it. The options are :class:`~llmstep.local.options.RunOptions`,
    given as an object, as keywords (``parameters=``, ``parallelism=``, ...), or both.
    ``allow_pickle=False`` (a document from a file) refuses pickle payloads (see :mod:`.trust`).
    """
    opts = RunOptions.of(options, **given).resolved()
    workflow = argo_doc.parse(doc)
    declared = [p.name for p in workflow.parameters]
    args = workflow.arguments(_overrides(declared, input, opts.parameters, "spec.arguments.parameters"))
    if not opts.allow_pickle:
        trust.refuse_pickles([doc], args)
    opts.policy().check_payloads([doc], args)
    opts.steps()  # the isolation is usable, before a record exists
    record = RunRecord.create(opts.root(), [doc], engine="argo", arguments=args)
    with _discarded_unless_started(record):
        run = ArgoRun(workflow, record, opts)
        run.preflight()
    return run.execute()


@contextlib.contextmanager
def _discarded_unless_started(record: RunRecord) -> Iterator[None]:
    """A run that fails before its first step (a missing Task or image) leaves no record."""
    try:
        yield
    except BaseException:
        record.release()
        shutil.rmtree(record.root, ignore_errors=True)
        raise


def _overrides(declared: list[str], input: Any, given: Mapping[str, str] | None, where: str) -> dict[str, str]:
    """Parameter values given for a run (``input`` encoded like a step output), each declared."""
    overrides = dict(given or {})
    if input is not MISSING:
        overrides["input"] = serde.parameter_text(input)
    argo_doc.check_declared(declared, overrides, where)
    for name, text in overrides.items():
        serde.check_unicode(text, "the chain input" if name == "input" else f"parameter {name!r}")
    return overrides


def resume_run(
    run_id: str, options: RunOptions | None = None, *, documents: list[dict[str, Any]] | None = None, **given: Any
) -> RunRecord:
    """Re-run the steps of a past run that did not succeed, reusing finished outputs.

    The steps run the code recorded when the run started, unless ``documents`` (the same chain
    compiled again, with your current code) replace the record's: then the steps that did not
    succeed run the new code, and the finished ones keep their outputs.

    The record is a file: its pickle payloads run only with ``allow_pickle`` (here it defaults to
    False), and without ``documents`` it is checked as a file from elsewhere (``from_file``). Until the resumed run starts (the record's lock taken, its documents checked), the
    record stays as it was. ``parameters`` and ``launcher`` do not apply: the run's own are reused.
    """
    opts = RunOptions.of(options, **{"allow_pickle": False, **given} if options is None else given).resolved()
    record = RunRecord.open(opts.root(), run_id)
    record.lock()
    try:
        if documents is not None:
            _check_same_steps(record, documents)
            documents = _keep_run(record, documents)
        trusted = opts.allow_pickle or documents is not None  # recompiled documents are the user's own code
        runner = _resumable(
            record,
            RunOptions.of(opts, allow_pickle=trusted, from_file=opts.from_file or documents is None, launcher=None),
            documents,
        )
        stop_leftovers(record)
        _reset(record)
        if documents is not None:
            record.replace_documents(documents)
    except BaseException:
        record.release()
        raise
    return runner.execute()


def _check_same_steps(record: RunRecord, documents: list[dict[str, Any]]) -> None:
    """WorkflowError unless ``documents`` are the record's chain: the same kind and the same steps."""
    try:
        old = record.documents()
    except (OSError, ValueError):
        old = []
    kinds = sorted(d.get("kind", "") for d in documents)
    if old and sorted(d.get("kind", "") for d in old) != kinds:
        raise WorkflowError(
            f"run {record.run_id} ran {', '.join(sorted(d.get('kind', '') for d in old))}; the chain now "
            f"compiles to {', '.join(kinds)}: resume with the same --engine (and --inputs for a batch)"
        )
    before, now_ = _step_names(old), _step_names(documents)
    gone = sorted(before - now_)
    if gone:
        raise WorkflowError(
            f"run {record.run_id}: the chain's steps changed ({', '.join(gone)} no longer exist), so its "
            "finished outputs do not fit the new code; run the chain afresh instead of --resume"
        )


def _keep_run(record: RunRecord, documents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Tekton: the new Tasks and Pipeline with the record's own PipelineRun (it holds the run's input)."""
    if record.state.engine != "tekton":
        return documents
    old_runs = [d for d in record.documents() if d.get("kind") in ("PipelineRun", "TaskRun")]
    if any(d.get("kind") == "TaskRun" for d in old_runs):
        raise WorkflowError(f"run {record.run_id} is a TaskRun, whose payload is in the run itself: run it afresh")
    return [d for d in documents if d.get("kind") not in ("PipelineRun", "TaskRun")] + old_runs


def _step_names(docs: list[dict[str, Any]]) -> set[str]:
    names: set[str] = set()
    for doc in docs:
        spec = doc.get("spec") or {}
        for template in spec.get("templates") or []:
            names |= {t.get("name", "") for t in (template.get("dag") or {}).get("tasks") or []}
        names |= {t.get("name", "") for t in (spec.get("tasks") or [])}
    return names


def _resumable(record: RunRecord, opts: RunOptions, documents: list[dict[str, Any]] | None = None) -> Any:
    """The runner for a past run, checked as a new run is, the record untouched."""
    try:
        docs = documents if documents is not None else record.documents()
    except (OSError, ValueError) as exc:
        raise WorkflowError(f"run {record.run_id}: its workflow.yaml cannot be read ({exc})") from exc
    if not opts.allow_pickle:
        trust.refuse_pickles(docs, record.state.arguments)
    opts.policy().check_payloads(docs, record.state.arguments)
    opts.steps()
    runner: Any
    if record.state.engine == "tekton":
        from llmstep.local import tekton_doc
        from llmstep.local.tekton import TektonRun

        runner = TektonRun(tekton_doc.parse(docs, _DEFAULT_IMAGE), record, opts)
    else:
        runner = ArgoRun(argo_doc.parse(docs[0]), record, opts)
    runner.preflight()
    return runner


def _reset(record: RunRecord) -> RunRecord:
    """Forget the nodes that did not succeed (and exit handlers), so they run again; the earlier
    attempts' outcome stays in ``history``. A finished step whose output files are gone (deleted
    since, or a disk cleaned up) runs again too, with the DAG or item group it belongs to: what
    it made is needed by the steps that run now."""
    state = record.state
    earlier = {
        "phase": str(state.phase),
        "message": state.message or "",
        "finishedAt": state.finished_at or "",
        "failures": record.failures(),
    }
    state.history = [*(state.history or []), earlier]
    for task, node in list(record.nodes.items()):
        missing = [
            a.local_path
            for a in (node.outputs.artifacts if node.outputs else [])
            if a.local_path and not Path(a.local_path).is_file()
        ]
        if missing and node.phase in FINISHED_OK:
            log.warning("step %s finished, but its output %s is gone: it runs again", task, missing[0])
            for other in list(record.nodes):  # the nested DAG or item group that would stand for it
                if task.startswith((f"{other}.", f"{other}(")):
                    record.nodes.pop(other, None)
            record.nodes.pop(task, None)
    for task, node in list(record.nodes.items()):
        if node.phase not in FINISHED_OK or node.exit_handler:
            del record.nodes[task]
    state.phase, state.message, state.resumed_at = Phase.RUNNING, "", now()
    record.save()
    return record


def run_tekton(
    docs: list[dict[str, Any]], input: Any = MISSING, options: RunOptions | None = None, **given: Any
) -> RunRecord:
    """Run a Tekton PipelineRun or TaskRun (with the Pipeline and Tasks it uses) on this machine;
    ``input`` and the options as for :func:`run_document`."""
    opts = RunOptions.of(options, **given).resolved()
    from llmstep.local import tekton_doc
    from llmstep.local.tekton import TektonRun
    from llmstep.render.tekton import INPUT_PARTS, input_params, with_run

    docs = with_run(docs)
    run = tekton_doc.parse(docs, _DEFAULT_IMAGE)
    declared = run.pipeline.param_names
    overrides: dict[str, Any] = _overrides(declared, input, opts.parameters, "the Pipeline")
    if "input" in overrides and INPUT_PARTS in declared:  # as llmstep submit gives a long input
        overrides.update((p["name"], p["value"]) for p in input_params(overrides["input"]))
    if not opts.allow_pickle:
        trust.refuse_pickles(docs, overrides)
    opts.policy().check_payloads(docs, overrides)
    opts.steps()
    record = RunRecord.create(opts.root(), docs, engine="tekton", arguments=overrides)
    record.state.output_task = run.pipeline.output_task or run.pipeline.tasks[-1].name
    with _discarded_unless_started(record):
        runner = TektonRun(run, record, opts)
        runner.preflight()
    return runner.execute()

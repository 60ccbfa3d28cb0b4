"""The local runner for Tekton: execute a PipelineRun (or TaskRun) on this machine.

The same machinery as the Argo runner (scheduler, step processes, run records, progress,
resume). The documents are read once, by :mod:`llmstep.local.tekton_doc`, into a typed
:class:`~llmstep.local.tekton_doc.PipelineRun`; the run walks that and never goes back to the
dicts. Supported: ``$(params.*)`` (array params expanded as whole args), ``$(context.*)``,
``$(tasks.X.results.*)``, ``$(tasks.X.status)``/``$(tasks.status)`` in ``finally``,
``$(workspaces.*.path)``, ``$(results.*.path)``, ``runAfter``, ``when``, ``finally``, ``retries``,
``timeout`` and the PipelineRun's ``timeouts`` (``pipeline``, ``tasks``, ``finally``, as the
controller runs them: see :class:`~llmstep.local.tekton_time.Deadlines`); workspaces are
directories, a Secret workspace holds only its listed keys, and each step gets only the env its
pod would have. Steps must run ``llmstep exec``.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from llmstep import contract
from llmstep.contract import FINISHED_OK, NOT_RUN, Phase
from llmstep.errors import WorkflowError
from llmstep.local import trust
from llmstep.local.attempts import Attempt, StepRun, run_step
from llmstep.local.lifecycle import finishing
from llmstep.local.options import RunOptions
from llmstep.local.process import START_FAILED, base_env, env_from
from llmstep.local.records import RunRecord, now
from llmstep.local.scheduler import Node, schedule
from llmstep.local.state import Artifact, Outputs, Parameter
from llmstep.local.tekton_doc import PipelineRun, PipelineTask, check_relative
from llmstep.local.tekton_time import go_duration

_VAR = re.compile(r"\$\(([^)]+)\)")
RESULTS_DIR = ".results"
"""The folder of a step's results files in its scratch directory, as ``/tekton/results`` in a pod."""


def _confined(argv: list[str], places: list[Path], task: str) -> None:
    """The step's data directory and link root are inside its workspaces (or its scratch
    directory): the runner clears files there, and the step reads its inputs from there."""
    roots = [p.resolve() for p in places]
    for flag in ("--data-dir", "--link-root"):
        if flag in argv and argv.index(flag) + 1 < len(argv):
            value = argv[argv.index(flag) + 1]
            if value and not any(Path(value).resolve().is_relative_to(r) for r in roots):
                raise WorkflowError(f"task {task}: {flag} {value} is outside the task's workspaces")


def _earliest(*ends: float | None) -> float | None:
    return min((e for e in ends if e is not None), default=None)


@contextlib.contextmanager
def _removed(folder: Path) -> Iterator[None]:
    try:
        yield
    finally:
        shutil.rmtree(folder, ignore_errors=True)


class TektonRun:
    """Runs the Pipeline of one parsed PipelineRun (:func:`llmstep.local.tekton_doc.parse`) on this machine."""

    def __init__(self, run: PipelineRun, record: RunRecord, options: RunOptions) -> None:
        self.run, self.pipeline, self.record = run, run.pipeline, record
        self.progress = options.reporter()
        self.policy = options.policy()
        self.guard = trust.step_env(options.allow_pickle, self.policy)
        self.isolation = options.isolation_or_default()
        self.steps = self.isolation.steps()
        self.secrets = dict(options.secrets or {})
        self.host = options.host()  # this machine's environment, as the entry point read it
        self.parallelism = options.parallelism
        self._launcher = options.launcher  # or one started when the run starts
        self.params = self._params()
        self.deadlines = run.deadlines
        self.ends: dict[bool, float | None] = {False: None, True: None}  # on time.monotonic(): regular, finally
        self.pipeline_end: float | None = None
        self.context = {
            "context.pipelineRun.name": record.run_id,
            "context.pipelineRun.uid": record.run_id,
            "context.pipelineRun.namespace": run.namespace,
            "context.pipeline.name": run.pipeline_name,
        }
        record.state.output_task = run.output_task or record.state.output_task

    def _params(self) -> dict[str, Any]:
        given: dict[str, Any] = dict(self.run.params)
        given.update(self.record.state.arguments)
        values: dict[str, Any] = {}
        for param in self.pipeline.params:
            if param.name in given:
                values[param.name] = given[param.name]
            elif param.default is not None:
                values[param.name] = param.default
            else:
                raise WorkflowError(f"param {param.name!r} has no value: pass -p {param.name}=...")
        return values

    def preflight(self) -> None:
        """What must hold before the run starts (and before a resume touches its record): each
        step's command and env pass the run's policy, and in a container run the images named
        without variables are there."""
        for use in self.pipeline.uses:
            step = use.task.step
            self.policy.check_command(list(step.argv), f"task {use.name}")
            self.policy.check_env(((e.name, e.value_from is not None) for e in step.env), f"task {use.name}")
        images = [use.task.step.image for use in self.pipeline.uses]
        self.steps.preflight(i for i in images if i and "$(" not in i)  # the others come from params

    def execute(self) -> RunRecord:
        self.launcher = self._launcher or self.isolation.start_launcher(list(self.run.documents))
        tmp = Path(tempfile.mkdtemp(prefix="llmstep-secrets-"))  # outside the record: secrets never land there
        with finishing(self.record, self.launcher, self.progress), _removed(tmp):
            self.workspaces = self._workspaces(tmp)
            self.progress.start(self.record)
            begun = time.monotonic()
            deadlines = self.deadlines
            self.pipeline_end = pipeline_end = begun + deadlines.pipeline if deadlines.pipeline else None
            self.ends[False] = _earliest(pipeline_end, begun + deadlines.tasks if deadlines.tasks else None)
            phase = self._run_tasks(self.pipeline.tasks, final=False)
            statuses = {
                t: n.phase if (n := self.record.nodes.get(t)) else "None" for t in self._names(self.pipeline.tasks)
            }
            failed = any(p in contract.FAILED_PHASES for p in statuses.values())
            skipped = any(p in NOT_RUN for p in statuses.values())
            self.aggregate = Phase.FAILED if failed else ("Completed" if skipped else Phase.SUCCEEDED)
            words: dict[str, str] = {Phase.ERROR: Phase.FAILED, Phase.OMITTED: "None", Phase.PENDING: "None"}
            self.task_status = {t: words.get(p, p) for t, p in statuses.items()}
            timed_out = pipeline_end is not None and time.monotonic() >= pipeline_end
            if self.pipeline.final:
                budget, started = deadlines.finally_budget(), time.monotonic()
                self.ends[True] = begun if timed_out else _earliest(pipeline_end, started + budget if budget else None)
                final = self._run_tasks(self.pipeline.final, final=True)
                phase = Phase.FAILED if Phase.FAILED in (phase, final) else phase
            phase, message = self._outcome(phase, begun)
            self.record.finish(phase, message)
        return self.record

    @staticmethod
    def _names(tasks: tuple[PipelineTask, ...]) -> list[str]:
        return [t.name for t in tasks]

    def _workspaces(self, tmp: Path) -> dict[str, str]:
        paths: dict[str, str] = {}
        for binding in self.run.workspaces:
            name = binding.name
            if binding.secret:
                folder = tmp / name
                folder.mkdir(mode=0o700)
                keys = list(binding.items) or [(k, k) for k in self.secrets if k.isupper()]
                for key, path in keys:
                    check_relative(path, f"workspace {name!r} item {key!r} path", plain=False)
                    if key in self.secrets:
                        (folder / path).write_text(self.secrets[key], encoding="utf-8")
                paths[name] = str(folder)
            else:
                paths[name] = str(self.record.workspace_dir(name))
        return paths

    def _run_tasks(self, tasks: tuple[PipelineTask, ...], final: bool) -> Phase:
        by_name = {t.name: t for t in tasks}
        done = {t: n.phase for t, n in self.record.nodes.items() if t in by_name and n.phase in FINISHED_OK}
        for name in by_name:
            if name not in done:
                self.record.update_node(
                    name,
                    display_name=by_name[name].display_name,
                    phase=Phase.PENDING,
                    template_name=by_name[name].template,
                    exit_handler=final,
                )

        skipped: dict[str, str] = {}

        def decide(name: str, phases: Mapping[str, str]) -> str:
            if any(phases.get(d) not in FINISHED_OK for d in by_name[name].deps):
                return Phase.OMITTED
            end = self.ends[final]
            if end is not None and time.monotonic() >= end:  # Tekton skips what has not started by then
                skipped[name] = self._timeout_skip(final)
                return Phase.SKIPPED
            for when in by_name[name].when:
                value = self._subst(when.input, name, final)
                values = [self._subst(v, name, final) for v in when.values]
                if (value in values) != (when.operator == "in"):
                    return Phase.SKIPPED
            return "run"

        def on_skip(name: str, phase: str) -> None:
            node = self.record.update_node(
                name,
                phase=Phase(phase),
                finished_at=now(),
                message=skipped.get(name) or f"{phase.lower()} by when/runAfter",
            )
            self.progress.changed(name, node)

        phases = schedule(
            [Node(n, t.deps) for n, t in by_name.items()],
            run=lambda n: self._run_task(by_name[n], final),
            decide=decide,
            launcher=self.launcher,
            parallelism=self.parallelism,
            done=done,
            fail_fast=False,
            on_skip=on_skip,
        )
        return Phase.FAILED if any(phases.get(n) in contract.FAILED_PHASES for n in by_name) else Phase.SUCCEEDED

    def _values(self, final: bool) -> dict[str, Any]:
        values: dict[str, Any] = {f"params.{k}": v for k, v in self.params.items()} | self.context
        for task, node in self.record.nodes.items():
            for param in (node.outputs or Outputs()).parameters:
                values[f"tasks.{task}.results.{param.name}"] = param.value
        if final:
            values["tasks.status"] = self.aggregate
            values.update({f"tasks.{t}.status": s for t, s in self.task_status.items()})
        return values

    def _subst(self, text: Any, where: str, final: bool, values: dict[str, Any] | None = None) -> Any:
        values = values if values is not None else self._values(final)
        if isinstance(text, list):
            out: list[Any] = []
            for item in text:
                whole = re.fullmatch(r"\$\(([^)]+)\[\*\]\)", item) if isinstance(item, str) else None
                if whole and isinstance(values.get(whole.group(1)), list):
                    out.extend(values[whole.group(1)])
                else:
                    out.append(self._subst(item, where, final, values))
            return out

        whole = re.fullmatch(r"\$\(([^)]+)\[\*\]\)", str(text))
        if whole and isinstance(values.get(whole.group(1)), list):
            return list(values[whole.group(1)])  # an array param passed on whole

        def one(match: re.Match[str]) -> str:
            key = match.group(1)
            if key not in values:
                raise WorkflowError(f"task {where}: $({key}) has no value here")
            value = values[key]
            if isinstance(value, list):
                raise WorkflowError(f"task {where}: array $({key}) must be used as a whole item, $({key}[*])")
            return str(value)

        return _VAR.sub(one, str(text))

    def _run_task(self, use: PipelineTask, final: bool) -> Phase:
        name, spec, step = use.name, use.task, use.task.step
        outer = self._values(final)
        given = {param: self._subst(value, name, final, outer) for param, value in use.params}
        params = {p.name: given.get(p.name, p.default) for p in spec.params}
        bindings = {task_ws: self.workspaces.get(ws, "") for task_ws, ws in use.workspaces}
        argv = list(step.argv)
        results = list(spec.results)
        step_dir = self.record.step_dir(name)

        def values_for(data_dir: Path) -> dict[str, Any]:
            values: dict[str, Any] = {f"params.{k}": v for k, v in params.items()} | self.context
            values["context.taskRun.name"] = f"{self.record.run_id}-{name}"
            for ws in spec.workspaces:
                values[f"workspaces.{ws}.path"] = bindings.get(ws, "")
                values[f"workspaces.{ws}.bound"] = "true" if bindings.get(ws) else "false"
            values.update({f"results.{r}.path": str(data_dir / RESULTS_DIR / r) for r in results})
            return values

        placed: dict[str, Path] = {}

        def prepare(scratch: Path) -> Attempt:
            # Tekton keeps the step's data directory in the workspace (--data-dir says where);
            # the scratch directory holds the results files, as /tekton/results does in a pod.
            values = values_for(scratch)
            resolved = self._subst(argv, name, final, values)
            data_dir = Path(contract.argv_data_dir(resolved, str(scratch)))
            placed["data_dir"] = data_dir
            _confined(resolved, [scratch, *(Path(p) for p in bindings.values() if p)], name)
            shutil.rmtree(data_dir / contract.INPUT_DIR, ignore_errors=True)
            env = base_env(step_dir, self.host)
            for item in step.env:
                if item.value_from is not None:
                    value = env_from(item.entry(), self.secrets, f"task {name}")
                    if value is not None:
                        env[item.name] = value
                    continue
                env[item.name] = str(self._subst(item.value, name, final, values))
            env.update(self.guard)
            (scratch / RESULTS_DIR).mkdir(exist_ok=True)
            (data_dir / contract.ERROR).unlink(missing_ok=True)
            image = str(self._subst(step.image, name, final, values)) if self.steps.uses_images else ""
            # Workspaces and the results folder are mounted at the paths the command names.
            mounts = [(Path(p), p) for p in sorted(set(bindings.values())) if p] + [
                (scratch / RESULTS_DIR, str(scratch / RESULTS_DIR))
            ]
            return self.steps.attempt(
                resolved,
                data_dir,
                env,
                where=f"task {name}",
                policy=self.policy,
                image=image,
                declared=[e.name for e in step.env],
                extra=list(self.guard),
                mounts=mounts,
                network=bool(bindings.get("credentials")),
                keep_data_dir=True,
            )

        def collect(data_dir: Path) -> Outputs:
            if "data_dir" in placed:  # the chain input the step staged from its environment: stored once
                self.record.values.share(placed["data_dir"] / contract.INPUT)
            if (
                contract.OUTPUT_PATH_RESULT in results
                and not (data_dir / RESULTS_DIR / contract.OUTPUT_PATH_RESULT).is_file()
            ):
                # llmstep exec publishes its results as it ends: the process ended early (os._exit)
                raise WorkflowError(
                    "the step exited 0 without writing its results (output-path), so it has no "
                    "output: its process ended before llmstep exec finished"
                )
            out = Outputs()
            for r in results:
                path = data_dir / RESULTS_DIR / r
                out.parameters.append(Parameter(r, path.read_text(encoding="utf-8") if path.is_file() else ""))
            output_path = out.parameter(contract.OUTPUT_PATH_RESULT) or ""
            data_ws = bindings.get("data", "")
            if output_path and data_ws:
                out.artifacts.append(Artifact("output", output_path, str(Path(data_ws) / output_path)))
            return out

        taskrun = f"{self.record.run_id}-{name}"
        return run_step(
            StepRun(
                name=name,
                template=use.template,
                prepare=prepare,
                collect=collect,
                retries=use.retries,
                timeout=use.timeout,
                exit_handler=final,
                timeout_message=f'TaskRun "{taskrun}" failed to finish within "{go_duration(use.timeout or 0)}"',
                # Tekton's words for a step whose container ended with 1 (Error), then the pod's log
                start_message=lambda error: (
                    f'"step-{step.name or "unnamed-0"}" exited with code {START_FAILED}: '
                    f"Error; exec /tekton/bin/entrypoint: {error}"
                ),
                deadline=self.ends[final],
                deadline_message=f'TaskRun "{taskrun}" was cancelled. TaskRun cancelled as the PipelineRun it belongs to '
                "has timed out.",
            ),
            self.record,
            self.launcher,
            self.progress,
        )

    def _outcome(self, phase: Phase, begun: float) -> tuple[Phase, str]:
        """The run's phase and message as Tekton's PipelineRun condition has them
        (``GetPipelineConditionStatus``): a timeout that has passed by the end fails the run,
        whatever its tasks did; else a failure counts the tasks."""
        elapsed, deadlines, run = time.monotonic() - begun, self.deadlines, self.record.run_id
        if deadlines.pipeline and elapsed > deadlines.pipeline:
            return Phase.FAILED, f'PipelineRun "{run}" failed to finish within "{go_duration(deadlines.pipeline)}"'
        if deadlines.tasks and elapsed > deadlines.tasks:
            return (
                Phase.FAILED,
                f'PipelineRun "{run}" failed due to tasks failed to finish within "{go_duration(deadlines.tasks)}"',
            )
        if phase == Phase.SUCCEEDED:
            return phase, ""
        names = [*self._names(self.pipeline.tasks), *self._names(self.pipeline.final)]
        phases = [n.phase if (n := self.record.nodes.get(name)) else None for name in names]
        failed = sum(p in contract.FAILED_PHASES for p in phases)
        completed = failed + phases.count(Phase.SUCCEEDED)
        skipped = sum(p in NOT_RUN for p in phases)
        return phase, f"Tasks Completed: {completed} (Failed: {failed}, Cancelled 0), Skipped: {skipped}"

    def _timeout_skip(self, final: bool) -> str:
        """Why Tekton skips a task that had not started when a timeout passed (its SkippingReason)."""
        if self.pipeline_end is not None and time.monotonic() >= self.pipeline_end:
            return "PipelineRun timeout has been reached"
        return "PipelineRun Finally timeout has been reached" if final else "PipelineRun Tasks timeout has been reached"

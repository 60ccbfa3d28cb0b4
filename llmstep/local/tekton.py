"""The local runner for Tekton: execute a PipelineRun (or TaskRun) on this machine.

The same machinery as the Argo runner (scheduler, step processes, run records, progress,
resume). Supported: ``$(params.*)`` (array params expanded as whole args), ``$(context.*)``,
``$(tasks.X.results.*)``, ``$(tasks.X.status)``/``$(tasks.status)`` in ``finally``,
``$(workspaces.*.path)``, ``$(results.*.path)``, ``runAfter``, ``when``, ``finally``, ``retries``,
``timeout`` and the PipelineRun's ``timeouts`` (``pipeline``, ``tasks``, ``finally``, as the
controller runs them: see :class:`Deadlines`); workspaces are directories, a Secret workspace
holds only its listed keys, and each step gets only the env its pod would have. Steps must run
``llmstep exec``.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmstep import contract
from llmstep.contract import FINISHED_OK, NOT_RUN, Phase
from llmstep.errors import WorkflowError
from llmstep.local import trust
from llmstep.local.attempts import Attempt, StepRun, run_step, seconds
from llmstep.local.command import TEKTON_PLACES, check_prefixes
from llmstep.local.command import parse as parse_command
from llmstep.local.lifecycle import finishing
from llmstep.local.options import RunOptions
from llmstep.local.process import START_FAILED, base_env, env_from
from llmstep.local.records import RunRecord, now
from llmstep.local.scheduler import Node, schedule
from llmstep.local.state import Artifact, Outputs, Parameter
from llmstep.render.tekton import DIAGNOSE_TASK, TASK_NAME, diagnose_task, run_task
from llmstep.render.tekton_checks import check_documents

_VAR = re.compile(r"\$\(([^)]+)\)")
_STEP_KEYS = {"name", "image", "command", "args", "env", "computeResources", "securityContext", "workingDir"}


def split_documents(docs: list[dict[str, Any]], default_image: str) -> tuple[dict, dict, dict]:
    """(run, pipelines by name, tasks by name) from a document set; the llmstep Task is built in."""
    runs = [d for d in docs if d.get("kind") in ("PipelineRun", "TaskRun")]
    if len(runs) != 1:
        raise WorkflowError(f"expected exactly one PipelineRun or TaskRun (or one Pipeline, which gets a run), found {len(runs)}")
    tasks = {TASK_NAME: run_task(default_image)["spec"], DIAGNOSE_TASK: diagnose_task(default_image)["spec"]}
    tasks.update({d["metadata"]["name"]: d["spec"] for d in docs if d.get("kind") == "Task"})
    pipelines = {d["metadata"]["name"]: d["spec"] for d in docs if d.get("kind") == "Pipeline"}
    return runs[0], pipelines, tasks


def prepare_run(docs: list[dict[str, Any]], default_image: str) -> tuple[dict, dict, dict]:
    """Check a document set (schema-free webhook rules) and resolve what the run uses."""
    run, pipelines, tasks = split_documents(docs, default_image)
    builtin = [] if any(d.get("kind") == "Task" and d["metadata"].get("name") == TASK_NAME for d in docs) else \
        [{"apiVersion": "tekton.dev/v1", "kind": "Task", "metadata": {"name": TASK_NAME}, "spec": tasks[TASK_NAME]}]
    try:
        check_documents([*docs, *builtin])
    except Exception as exc:
        raise WorkflowError(str(exc)) from exc
    spec = run["spec"]
    if run["kind"] == "PipelineRun":
        pipeline = spec.get("pipelineSpec") or pipelines.get(spec["pipelineRef"]["name"])
        if pipeline is None:
            raise WorkflowError(f"PipelineRun references Pipeline {spec['pipelineRef']['name']!r}, which is not in the documents")
    else:
        task_name = (spec.get("taskRef") or {}).get("name")
        task_spec = spec.get("taskSpec") or tasks.get(task_name or "")
        if task_spec is None:
            raise WorkflowError(f"TaskRun references Task {task_name!r}, which is not in the documents")
        # A TaskRun runs like a one-task pipeline whose params and workspaces pass straight through.
        pipeline = {
            "params": [{"name": p["name"], "type": "array" if isinstance(p["value"], list) else "string"} for p in spec.get("params") or []],
            "workspaces": [{"name": w["name"]} for w in spec.get("workspaces") or []],
            "tasks": [{
                "name": task_name or "task", "taskSpec": task_spec,
                "params": [{"name": p["name"], "value": f"$(params.{p['name']}[*])" if isinstance(p["value"], list) else f"$(params.{p['name']})"}
                           for p in spec.get("params") or []],
                "workspaces": [{"name": w["name"], "workspace": w["name"]} for w in spec.get("workspaces") or []],
                **({"retries": spec["retries"]} if "retries" in spec else {}),
                **({"timeout": spec["timeout"]} if "timeout" in spec else {}),
            }],
        }
    for part in ("tasks", "finally"):
        for i, use in enumerate(pipeline.get(part) or []):
            _check_settings(use, f"{part}[{i}] ({use.get('name')})")
            spec = use.get("taskSpec") or tasks.get((use.get("taskRef") or {}).get("name", ""))
            for step in (spec or {}).get("steps") or []:
                if isinstance(step, dict):  # its shape is checked when it runs
                    _check_command(step, f"task {use.get('name')}")
    Deadlines.of(spec)  # checked before the run starts
    return run, pipeline, tasks


@dataclass(frozen=True)
class Deadlines:
    """A PipelineRun's ``spec.timeouts`` in seconds (0 or None: none), as Tekton's PipelineRun
    reconciler enforces them: on the run's time, never as a shorter TaskRun timeout.

    - ``pipeline`` passed: running TaskRuns are cancelled, tasks not started are skipped, and the
      ``finally`` tasks do not run; the PipelineRun fails with ``PipelineRunTimeout``.
    - ``tasks`` passed: the same for the regular tasks; the ``finally`` tasks then run, for
      ``finally`` seconds (else what ``pipeline`` leaves over ``tasks``).
    - a cancelled TaskRun is not retried.
    """

    pipeline: float | None = None
    tasks: float | None = None
    final: float | None = None

    @classmethod
    def of(cls, spec: Mapping[str, Any]) -> Deadlines:
        """The ``timeouts`` of a PipelineRun's spec; WorkflowError naming a bad one, with
        Tekton's own rules (none negative; ``tasks`` and ``finally`` within ``pipeline``)."""
        timeouts = spec.get("timeouts") or {}
        if not isinstance(timeouts, dict):
            raise WorkflowError(f"spec.timeouts must be a mapping of pipeline, tasks and finally, found {timeouts!r}")
        unknown = sorted(set(timeouts) - {"pipeline", "tasks", "finally"})
        if unknown:
            raise WorkflowError(f"spec.timeouts.{unknown[0]} is not a Tekton timeout (use pipeline, tasks or finally)")
        values = {key: seconds(value, f"spec.timeouts.{key}") for key, value in timeouts.items() if value is not None}
        for key, value in values.items():
            if value < 0:
                raise WorkflowError(f"spec.timeouts.{key}: {timeouts[key]!r} should be >= 0")
        pipeline = values.get("pipeline")
        if pipeline:
            for key in ("tasks", "finally"):
                if key in values and not 0 < values[key] <= pipeline:
                    raise WorkflowError(f"spec.timeouts.{key}: {timeouts[key]!r} should be <= pipeline duration "
                                        f"({timeouts['pipeline']!r}), and not 0")
            if values.get("tasks", 0) + values.get("finally", 0) > pipeline:
                raise WorkflowError(f"spec.timeouts: tasks {timeouts['tasks']!r} + finally {timeouts['finally']!r} "
                                    f"should be <= pipeline duration ({timeouts['pipeline']!r})")
        return cls(pipeline or None, values.get("tasks") or None, values.get("finally") or None)

    def finally_budget(self) -> float | None:
        """Seconds the ``finally`` tasks get from their start (Tekton's ``FinallyTimeout``)."""
        if self.final:
            return self.final
        return self.pipeline - self.tasks if self.pipeline and self.tasks else None


def go_duration(value: float) -> str:
    """Seconds as Go's ``time.Duration.String()`` prints them (``5s``, ``1m30s``, ``1h0m0s``,
    ``500ms``): the words Tekton's messages use."""
    if value == 0:
        return "0s"
    if value < 1:
        return f"{value * 1000:g}ms"
    hours, rest = divmod(value, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{secs:.9f}".rstrip("0").rstrip(".") + "s"
    if hours:
        return f"{int(hours)}h{int(minutes)}m{text}"
    return f"{int(minutes)}m{text}" if minutes else text


def _check_settings(use: dict[str, Any], where: str) -> None:
    """A task's retries and timeout, checked before the run starts (with the field's place)."""
    retries = use.get("retries")
    if retries is not None and (isinstance(retries, bool) or not isinstance(retries, int) or retries < 0):
        raise WorkflowError(f"{where}.retries must be a whole number of at least 0, found {retries!r}")
    if use.get("timeout"):
        seconds(use["timeout"], f"{where}.timeout")


def _check_command(step: dict[str, Any], where: str) -> None:
    """A step's command follows the one grammar, its paths in a workspace or a result (before the run)."""
    argv = [str(a) for a in list(step.get("command") or []) + list(step.get("args") or [])]
    check_prefixes(parse_command(argv, where), where, TEKTON_PLACES)


def _relative(path: Any, what: str, plain: bool) -> None:
    """A name (``plain``) or relative path that stays inside the folder it is joined to, as
    Kubernetes requires of workspace names and Secret item paths."""
    parts = Path(str(path)).parts
    if not isinstance(path, str) or not path or Path(path).is_absolute() or ".." in parts or (plain and len(parts) != 1):
        raise WorkflowError(f"{what} must be a relative path without '..' (found {path!r})")


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
    """Runs a resolved Pipeline for one PipelineRun on this machine."""

    def __init__(self, run: dict[str, Any], pipeline: dict[str, Any], tasks: dict[str, Any], record: RunRecord,
                 options: RunOptions) -> None:
        self.run, self.pipeline, self.tasks, self.record = run, pipeline, tasks, record
        self.progress = options.reporter()
        self.policy = options.policy()
        self.guard = trust.step_env(options.allow_pickle, self.policy)
        self.isolation = options.isolation_or_default()
        self.steps = self.isolation.steps()
        self.secrets = dict(options.secrets or {})
        self.parallelism = options.parallelism
        self._launcher = options.launcher  # or one started when the run starts
        self.params = self._params()
        self.deadlines = Deadlines.of(run["spec"])
        self.ends: dict[bool, float | None] = {False: None, True: None}  # on time.monotonic(): regular, finally
        self.pipeline_end: float | None = None
        self.context = {
            "context.pipelineRun.name": record.run_id, "context.pipelineRun.uid": record.run_id,
            "context.pipelineRun.namespace": str(run.get("metadata", {}).get("namespace", "default")),
            "context.pipeline.name": str(run["spec"].get("pipelineRef", {}).get("name", "pipeline")),
        }
        record.state.output_task = (run.get("metadata", {}).get("annotations") or {}).get(contract.OUTPUT_TASK) \
            or record.state.output_task

    def _params(self) -> dict[str, Any]:
        given = {p["name"]: p["value"] for p in self.run["spec"].get("params") or []}
        given.update(self.record.state.arguments)
        values: dict[str, Any] = {}
        for param in self.pipeline.get("params") or []:
            name = param["name"]
            if name in given:
                values[name] = given[name]
            elif "default" in param:
                values[name] = param["default"]
            else:
                raise WorkflowError(f"param {name!r} has no value: pass -p {name}=...")
        return values

    def preflight(self) -> None:
        """What must hold before the run starts (and before a resume touches its record): each
        task's Task is there, and in a container run the images named without variables are."""
        uses = [*(self.pipeline.get("tasks") or []), *(self.pipeline.get("finally") or [])]
        for use in uses:
            for step in self._task_spec(use).get("steps") or []:
                argv = [str(a) for a in list(step.get("command") or []) + list(step.get("args") or [])]
                self.policy.check_command(argv, f"task {use.get('name')}")
                self.policy.check_env(((e.get("name", ""), "valueFrom" in e) for e in step.get("env") or []),
                                      f"task {use.get('name')}")
        images = [str(((self._task_spec(use).get("steps") or [{}])[0]).get("image", "")) for use in uses]
        self.steps.preflight(i for i in images if i and "$(" not in i)  # the others come from params

    def _task_spec(self, use: dict[str, Any]) -> dict[str, Any]:
        spec = use.get("taskSpec") or self.tasks.get((use.get("taskRef") or {}).get("name", ""))
        if spec is None:
            raise WorkflowError(f"task {use.get('name')}: Task {(use.get('taskRef') or {}).get('name')!r} is not in the "
                                "documents; give its file too (llmstep run pipelinerun.yaml tasks.yaml)")
        return spec

    def execute(self) -> RunRecord:
        self.launcher = self._launcher or self.isolation.start_launcher([self.run, self.pipeline, self.tasks])
        tmp = Path(tempfile.mkdtemp(prefix="llmstep-secrets-"))  # outside the record: secrets never land there
        with finishing(self.record, self.launcher, self.progress), _removed(tmp):
            self.workspaces = self._workspaces(tmp)
            self.progress.start(self.record)
            begun = time.monotonic()
            deadlines = self.deadlines
            self.pipeline_end = pipeline_end = begun + deadlines.pipeline if deadlines.pipeline else None
            self.ends[False] = _earliest(pipeline_end, begun + deadlines.tasks if deadlines.tasks else None)
            phase = self._run_tasks(self.pipeline["tasks"], final=False)
            statuses = {t: n.phase if (n := self.record.nodes.get(t)) else "None" for t in self._names(self.pipeline["tasks"])}
            failed = any(p in contract.FAILED_PHASES for p in statuses.values())
            skipped = any(p in NOT_RUN for p in statuses.values())
            self.aggregate = Phase.FAILED if failed else ("Completed" if skipped else Phase.SUCCEEDED)
            words: dict[str, str] = {Phase.ERROR: Phase.FAILED, Phase.OMITTED: "None", Phase.PENDING: "None"}
            self.task_status = {t: words.get(p, p) for t, p in statuses.items()}
            timed_out = pipeline_end is not None and time.monotonic() >= pipeline_end
            if self.pipeline.get("finally"):
                budget, started = deadlines.finally_budget(), time.monotonic()
                self.ends[True] = begun if timed_out else _earliest(pipeline_end, started + budget if budget else None)
                final = self._run_tasks(self.pipeline["finally"], final=True)
                phase = Phase.FAILED if Phase.FAILED in (phase, final) else phase
            phase, message = self._outcome(phase, begun)
            self.record.finish(phase, message)
        return self.record

    @staticmethod
    def _names(tasks: list[dict[str, Any]]) -> list[str]:
        return [t["name"] for t in tasks]

    def _workspaces(self, tmp: Path) -> dict[str, str]:
        paths: dict[str, str] = {}
        for binding in self.run["spec"].get("workspaces") or []:
            name = binding["name"]
            _relative(name, f"workspace {name!r}", plain=True)
            if "secret" in binding:
                folder = tmp / name
                folder.mkdir(mode=0o700)
                items = binding["secret"].get("items") or []
                keys = [(i["key"], i.get("path", i["key"])) for i in items] if items else \
                    [(k, k) for k in self.secrets if k.isupper()]
                for key, path in keys:
                    _relative(path, f"workspace {name!r} item {key!r} path", plain=False)
                    if key in self.secrets:
                        (folder / path).write_text(self.secrets[key], encoding="utf-8")
                paths[name] = str(folder)
            else:
                paths[name] = str(self.record.workspace_dir(name))
        return paths

    def _run_tasks(self, tasks: list[dict[str, Any]], final: bool) -> Phase:
        by_name = {t["name"]: t for t in tasks}
        regular = set(self._names(self.pipeline["tasks"]))
        deps = {}
        for task in tasks:
            refs = {m.split(".")[1] for m in _VAR.findall(json.dumps(task.get("params") or [])) if m.startswith("tasks.")}
            deps[task["name"]] = tuple(sorted(set(task.get("runAfter") or []) | ({r for r in refs if r in regular} if not final else set())))
        done = {t: n.phase for t, n in self.record.nodes.items() if t in by_name and n.phase in FINISHED_OK}
        for name in by_name:
            if name not in done:
                self.record.update_node(name, display_name=by_name[name].get("displayName", name), phase=Phase.PENDING,
                                        template_name=(by_name[name].get("taskRef") or {}).get("name", "taskSpec"),
                                        exit_handler=final)

        skipped: dict[str, str] = {}

        def decide(name: str, phases: Mapping[str, str]) -> str:
            if any(phases.get(d) not in FINISHED_OK for d in deps[name]):
                return Phase.OMITTED
            end = self.ends[final]
            if end is not None and time.monotonic() >= end:  # Tekton skips what has not started by then
                skipped[name] = self._timeout_skip(final)
                return Phase.SKIPPED
            for when in by_name[name].get("when") or []:
                value = self._subst(when["input"], name, final)
                values = [self._subst(v, name, final) for v in when["values"]]
                if (value in values) != (when["operator"] == "in"):
                    return Phase.SKIPPED
            return "run"

        def on_skip(name: str, phase: str) -> None:
            node = self.record.update_node(name, phase=Phase(phase), finished_at=now(),
                                           message=skipped.get(name) or f"{phase.lower()} by when/runAfter")
            self.progress.changed(name, node)

        phases = schedule([Node(n, deps[n]) for n in by_name], run=lambda n: self._run_task(by_name[n], final),
                          decide=decide, launcher=self.launcher, parallelism=self.parallelism, done=done,
                          fail_fast=False, on_skip=on_skip)
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

    def _run_task(self, use: dict[str, Any], final: bool) -> Phase:
        name = use["name"]
        spec = self._task_spec(use)
        steps = spec.get("steps") or []
        if len(steps) != 1 or set(steps[0]) - _STEP_KEYS:
            raise WorkflowError(f"task {name}: the local runner runs Tasks with one step using {sorted(_STEP_KEYS)}")
        outer = self._values(final)
        given = {p["name"]: self._subst(p["value"], name, final, outer) for p in use.get("params") or []}
        params = {p["name"]: given.get(p["name"], p.get("default")) for p in spec.get("params") or []}
        bindings = {b["name"]: self.workspaces.get(b["workspace"], "") for b in use.get("workspaces") or []}
        step = steps[0]
        argv = list(step.get("command") or []) + list(step.get("args") or [])
        if argv[:1] != ["llmstep"] or argv[1:2] not in (["exec"], ["diagnose"]):
            raise WorkflowError(f"task {name}: the step must run `llmstep exec ...` (or diagnose) locally, found {argv[:3]!r}")
        results = [r["name"] for r in spec.get("results") or []]
        step_dir = self.record.step_dir(name)

        def values_for(data_dir: Path) -> dict[str, Any]:
            values: dict[str, Any] = {f"params.{k}": v for k, v in params.items()} | self.context
            values["context.taskRun.name"] = f"{self.record.run_id}-{name}"
            for ws in spec.get("workspaces") or []:
                values[f"workspaces.{ws['name']}.path"] = bindings.get(ws["name"], "")
                values[f"workspaces.{ws['name']}.bound"] = "true" if bindings.get(ws["name"]) else "false"
            values.update({f"results.{r}.path": str(data_dir / ".results" / r) for r in results})
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
            env = base_env(step_dir)
            for item in step.get("env") or []:
                if "valueFrom" in item:
                    value = env_from(item, self.secrets, f"task {name}")
                    if value is not None:
                        env[item["name"]] = value
                    continue
                env[item["name"]] = str(self._subst(item.get("value", ""), name, final, values))
            env.update(self.guard)
            (scratch / ".results").mkdir(exist_ok=True)
            (data_dir / contract.ERROR).unlink(missing_ok=True)
            image = str(self._subst(step.get("image", ""), name, final, values)) if self.steps.uses_images else ""
            # Workspaces and the results folder are mounted at the paths the command names.
            mounts = [(Path(p), p) for p in sorted(set(bindings.values())) if p] + [(scratch / ".results", str(scratch / ".results"))]
            return self.steps.attempt(resolved, data_dir, env, where=f"task {name}", policy=self.policy, image=image,
                                      declared=[e["name"] for e in step.get("env") or []],
                                      extra=list(self.guard), mounts=mounts, network=bool(bindings.get("credentials")),
                                      keep_data_dir=True)

        def collect(data_dir: Path) -> Outputs:
            if "data_dir" in placed:  # the chain input the step staged from its environment: stored once
                self.record.values.share(placed["data_dir"] / contract.INPUT)
            if "output-path" in results and not (data_dir / ".results" / "output-path").is_file():
                # llmstep exec publishes its results as it ends: the process ended early (os._exit)
                raise WorkflowError("the step exited 0 without writing its results (output-path), so it has no "
                                    "output: its process ended before llmstep exec finished")
            out = Outputs()
            for r in results:
                path = data_dir / ".results" / r
                out.parameters.append(Parameter(r, path.read_text(encoding="utf-8") if path.is_file() else ""))
            output_path = out.parameter("output-path") or ""
            data_ws = bindings.get("data", "")
            if output_path and data_ws:
                out.artifacts.append(Artifact("output", output_path, str(Path(data_ws) / output_path)))
            return out

        timeout = seconds(use["timeout"], f"task {name} timeout") if use.get("timeout") else None
        taskrun = f"{self.record.run_id}-{name}"
        return run_step(StepRun(
            name=name, template=(use.get("taskRef") or {}).get("name", "taskSpec"), prepare=prepare, collect=collect,
            retries=int(use.get("retries", 0) or 0), timeout=timeout or None, exit_handler=final,
            timeout_message=f'TaskRun "{taskrun}" failed to finish within "{go_duration(timeout or 0)}"',
            # Tekton's words for a step whose container ended with 1 (Error), then the pod's log
            start_message=lambda error: f'"step-{step.get("name") or "unnamed-0"}" exited with code {START_FAILED}: '
                                        f"Error; exec /tekton/bin/entrypoint: {error}",
            deadline=self.ends[final],
            deadline_message=f'TaskRun "{taskrun}" was cancelled. TaskRun cancelled as the PipelineRun it belongs to '
                             "has timed out.",
        ), self.record, self.launcher, self.progress)

    def _outcome(self, phase: Phase, begun: float) -> tuple[Phase, str]:
        """The run's phase and message as Tekton's PipelineRun condition has them
        (``GetPipelineConditionStatus``): a timeout that has passed by the end fails the run,
        whatever its tasks did; else a failure counts the tasks."""
        elapsed, deadlines, run = time.monotonic() - begun, self.deadlines, self.record.run_id
        if deadlines.pipeline and elapsed > deadlines.pipeline:
            return Phase.FAILED, f'PipelineRun "{run}" failed to finish within "{go_duration(deadlines.pipeline)}"'
        if deadlines.tasks and elapsed > deadlines.tasks:
            return Phase.FAILED, f'PipelineRun "{run}" failed due to tasks failed to finish within "{go_duration(deadlines.tasks)}"'
        if phase == Phase.SUCCEEDED:
            return phase, ""
        names = [*self._names(self.pipeline["tasks"]), *self._names(self.pipeline.get("finally") or [])]
        phases = [node.phase if (node := self.record.nodes.get(n)) else None for n in names]
        failed = sum(p in contract.FAILED_PHASES for p in phases)
        completed = failed + phases.count(Phase.SUCCEEDED)
        skipped = sum(p in NOT_RUN for p in phases)
        return phase, f"Tasks Completed: {completed} (Failed: {failed}, Cancelled 0), Skipped: {skipped}"

    def _timeout_skip(self, final: bool) -> str:
        """Why Tekton skips a task that had not started when a timeout passed (its SkippingReason)."""
        if self.pipeline_end is not None and time.monotonic() >= self.pipeline_end:
            return "PipelineRun timeout has been reached"
        return "PipelineRun Finally timeout has been reached" if final else "PipelineRun Tasks timeout has been reached"

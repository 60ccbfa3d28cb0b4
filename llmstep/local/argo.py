"""Running one Argo Workflow document locally: the DAG, its container steps, and the subset of
Argo's semantics that llmstep generates (depends, when, retryStrategy, activeDeadlineSeconds,
onExit with ``{{workflow.status}}`` and ``{{workflow.failures}}``)."""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from llmstep import contract
from llmstep.contract import FINISHED_OK, Phase
from llmstep.errors import WorkflowError
from llmstep.local import argo_doc, expr, trust
from llmstep.local.argo_semantics import RECURSION_MESSAGE, depends_ok, item_vars, task_items, workflow_failures
from llmstep.local.argo_workflow import Container, Dag, Task, Template, Workflow
from llmstep.local.attempts import Attempt, StepRun, run_step
from llmstep.local.lifecycle import finishing
from llmstep.local.options import RunOptions
from llmstep.local.process import base_env, env_from
from llmstep.local.records import RunRecord, now
from llmstep.local.scheduler import Node, schedule
from llmstep.local.state import Artifact, Outputs, Parameter
from llmstep.local.values import link


class ArgoRun:
    """One Argo Workflow run on this machine into ``record``: :meth:`preflight`, then :meth:`execute`.

    The Workflow is the typed one :func:`~llmstep.local.argo_doc.parse` read: the run never goes
    back to the document's dict.
    """

    def __init__(self, workflow: Workflow, record: RunRecord, options: RunOptions) -> None:
        self.workflow, self.record, self.progress = workflow, record, options.reporter()
        self.isolation = options.isolation_or_default()
        self.steps = self.isolation.steps()
        self.policy = options.policy()
        self.guard = trust.step_env(options.allow_pickle, self.policy)
        self.secrets = dict(options.secrets or {})
        self.host = options.host()  # this machine's environment, as the entry point read it
        self.parallelism = options.parallelism or workflow.parallelism
        # the workflow's parallelism bounds step processes everywhere, nested DAGs included
        self.limits = (threading.BoundedSemaphore(self.parallelism),) if self.parallelism else ()
        self._launcher = options.launcher  # or one started when the run starts
        self.deadline: float | None = None  # spec.activeDeadlineSeconds from the start, on time.monotonic()
        self.vars: dict[str, str] = {f"workflow.parameters.{k}": v for k, v in record.state.arguments.items()}
        self.depths = {"": 0}  # how deep each nested DAG's scope (its keys' prefix) is
        self.vars["workflow.name"] = record.run_id
        self.vars["workflow.namespace"] = workflow.namespace
        self.vars["workflow.uid"] = record.run_id
        record.state.output_task = workflow.output_task
        record.state.batch = workflow.batch

    def preflight(self) -> None:
        """What must hold before the run starts (and before a resume touches its record): what the
        documents' steps may have (their env), and a container run's images."""
        for template in self.workflow.templates.values():
            if template.container is not None:
                self.policy.check_command(list(template.container.argv), f"template {template.name}")
                self.policy.check_env(
                    ((e.name, e.value_from is not None) for e in template.container.env), f"template {template.name}"
                )
        self.steps.preflight(self.workflow.images)

    def execute(self) -> RunRecord:
        workflow = self.workflow
        self.launcher = self._launcher or self.isolation.start_launcher([dict(workflow.document)])
        with finishing(self.record, self.launcher, self.progress):
            self.progress.start(self.record)
            if workflow.deadline is not None:
                self.deadline = time.monotonic() + workflow.deadline
            phase = self._run_template_as_root(workflow.template(workflow.entrypoint))
            if workflow.on_exit:
                self.vars["workflow.status"] = phase
                self.vars["workflow.failures"] = workflow_failures(self.record, phase, workflow.entrypoint)
                self._run_exit_handler(workflow.template(workflow.on_exit))
            self.record.finish(phase)  # Argo v4 gives a Workflow that failed in its steps no message
        return self.record

    def _run_template_as_root(self, template: Template) -> Phase:
        if template.dag is not None:
            return self._run_dag(template, template.dag, limits=self.limits)
        return self._run_container("main", template, {}, {})

    def _run_exit_handler(self, template: Template) -> None:
        if template.dag is not None:
            self._run_dag(template, template.dag, exit_handler=True, limits=self.limits)
        else:
            self._run_container("onExit", template, {}, {}, exit_handler=True)

    # ------------------------------------------------------------------ DAG

    def _run_dag(
        self,
        template: Template,
        dag: Dag,
        exit_handler: bool = False,
        scope: str = "",
        params: Mapping[str, str] | None = None,
        limits: tuple[Any, ...] = (),
    ) -> Phase:
        """Run ``dag``, the tasks of ``template``. A nested invocation (a task whose template is a
        DAG) has a ``scope``, the prefix of its nodes' keys (``item(3).``), and its input ``params``."""
        tasks = {t.name: t for t in dag.tasks}
        nodes = [Node(t.name, t.deps) for t in dag.tasks]
        finished = {t: self.record.nodes.get(scope + t) for t in tasks}
        done = {t: node.phase for t, node in finished.items() if node is not None and node.phase in FINISHED_OK}
        for name, task in tasks.items():
            if name not in done:
                self.record.update_node(
                    scope + name,
                    display_name=name,
                    template_name=task.template,
                    phase=Phase.PENDING,
                    exit_handler=exit_handler,
                )
        # Argo's template parallelism: at most N of this invocation's own children active at once (a
        # step while its pod runs, a nested DAG while it runs; the pods inside that DAG are its own).
        boundary = threading.BoundedSemaphore(template.parallelism) if template.parallelism else None
        inputs = {f"inputs.parameters.{k}": v for k, v in (params or {}).items()}

        def decide(name: str, phases: Mapping[str, str]) -> str:
            task = tasks[name]
            if not depends_ok(task.depends, task.deps, phases):
                return Phase.OMITTED
            when = task.when
            if when is not None:
                text = argo_doc.substitute(when, self._task_vars(scope, inputs, tasks), f"task {scope}{name} when")
                if not expr.evaluate(text, lambda _n: expr.UNKNOWN):
                    return Phase.SKIPPED
            return "run"

        def on_skip(name: str, phase: str) -> None:
            node = self.record.update_node(
                scope + name, phase=Phase(phase), finished_at=now(), message=f"{phase.lower()} by depends/when"
            )
            self.progress.changed(scope + name, node)

        phases = schedule(
            nodes,
            run=lambda name: self._run_task(tasks[name], exit_handler, scope, inputs, limits, tasks, boundary),
            decide=decide,
            launcher=self.launcher,
            parallelism=None if scope else self.parallelism,
            done=done,
            fail_fast=dag.fail_fast,
            on_skip=on_skip,
        )
        bad = [n for n in tasks if phases.get(n) not in (*FINISHED_OK, Phase.OMITTED)]
        return Phase.FAILED if bad else Phase.SUCCEEDED

    def _task_vars(
        self, scope: str = "", inputs: Mapping[str, str] | None = None, tasks: Iterable[str] = ()
    ) -> dict[str, str]:
        """What a task in ``scope`` may refer to: the workflow's variables, the DAG's inputs and
        its sibling ``tasks``' status and outputs."""
        values = dict(self.vars) | dict(inputs or {})
        for task in tasks:
            node = self.record.nodes.get(scope + task)
            if node is None:
                continue
            values[f"tasks.{task}.status"] = node.phase
            outputs = node.outputs or Outputs()
            for param in outputs.parameters:
                values[f"tasks.{task}.outputs.parameters.{param.name}"] = param.value
            for art in outputs.artifacts:
                values[f"tasks.{task}.outputs.artifacts.{art.name}"] = "artifact:" + art.local_path
        return values

    def _run_task(
        self,
        task: Task,
        exit_handler: bool,
        scope: str = "",
        inputs: Mapping[str, str] | None = None,
        limits: tuple[Any, ...] = (),
        siblings: Iterable[str] = (),
        boundary: Any = None,
    ) -> Phase:
        template = self.workflow.template(task.template)
        key = scope + task.name
        values = self._task_vars(scope, inputs, siblings)
        items = task_items(task, values, key)
        if items is None:
            return self._invoke(task, template, key, values, exit_handler, limits, boundary)
        self.progress.changed(
            key, self.record.update_node(key, phase=Phase.RUNNING, started_at=now(), type="TaskGroup")
        )
        children = [(f"{key}({i})", values | item_vars(item)) for i, item in enumerate(items)]
        width = max(1, min(len(children), 64))  # these threads mostly wait: the parallelism limits bound the processes
        with cf.ThreadPoolExecutor(max_workers=width, thread_name_prefix="llmstep-item") as pool:
            phases = list(
                pool.map(
                    lambda child: self._invoke(task, template, child[0], child[1], exit_handler, limits, boundary),
                    children,
                )
            )
        phase = Phase.SUCCEEDED if all(p in FINISHED_OK for p in phases) else Phase.FAILED
        failed = sum(p not in FINISHED_OK for p in phases)
        node = self.record.update_node(
            key, phase=phase, finished_at=now(), message=f"{failed} of {len(phases)} items failed" if failed else ""
        )
        self.progress.changed(key, node)
        return phase

    def _invoke(
        self,
        task: Task,
        template: Template,
        key: str,
        values: dict[str, str],
        exit_handler: bool,
        limits: tuple[Any, ...],
        boundary: Any = None,
    ) -> Phase:
        """One invocation of a task's template: a container step, or a nested DAG. ``limits`` are
        what every step process below holds (the workflow's parallelism); ``boundary`` is the
        enclosing template's parallelism, held by this child alone, for as long as it is active."""
        where = f"task {key}"
        params = {name: argo_doc.substitute(value, values, where) for name, value in task.parameters}
        if template.dag is not None:
            earlier = self.record.nodes.get(key)
            if earlier is not None and earlier.phase in FINISHED_OK:
                return earlier.phase
            depth = self.depths[max((s for s in self.depths if key.startswith(s)), key=len)] + 1
            if depth > argo_doc.MAX_NESTING:  # a recursion its when did not end: the controller's error
                node = self.record.update_node(
                    key,
                    display_name=key,
                    template_name=template.name,
                    phase=Phase.ERROR,
                    type="DAG",
                    started_at=now(),
                    finished_at=now(),
                    exit_handler=exit_handler,
                    message=RECURSION_MESSAGE,
                )
                self.progress.changed(key, node)
                return Phase.ERROR
            self.depths[f"{key}."] = depth
            params = self._inputs(template, params, key)
            with boundary or contextlib.nullcontext():
                self.record.update_node(
                    key,
                    display_name=key,
                    template_name=template.name,
                    phase=Phase.RUNNING,
                    started_at=now(),
                    type="DAG",
                    exit_handler=exit_handler,
                )
                phase = self._run_dag(template, template.dag, exit_handler, f"{key}.", params, limits)
                self.record.update_node(key, phase=phase, finished_at=now())
            return phase
        arts: dict[str, Any] = {}
        for art in task.artifacts:
            if art.raw is not None:
                arts[art.name] = ("text", argo_doc.substitute(art.raw, values, where))
            else:
                ref = argo_doc.substitute(art.source or "", values, where)
                source = Path(ref.removeprefix("artifact:"))
                if not ref.startswith("artifact:") or not source.resolve().is_relative_to(self.record.root):
                    raise WorkflowError(
                        f"{where}: artifact {art.name!r} from {art.source!r} is not an artifact of "
                        "this run ({{tasks.NAME.outputs.artifacts.NAME}})"
                    )
                arts[art.name] = ("file", str(source))
        # the enclosing template's place first, the workflow's last: one order everywhere, no deadlock
        held = (boundary, *limits) if boundary is not None else limits
        return self._run_container(key, template, params, arts, exit_handler=exit_handler, limits=held)

    # ------------------------------------------------------------------ containers

    def _run_container(
        self,
        name: str,
        template: Template,
        params: dict[str, str],
        arts: dict[str, Any],
        exit_handler: bool = False,
        limits: tuple[Any, ...] = (),
    ) -> Phase:
        container = template.container
        if container is None:
            raise WorkflowError(f"task {name}: template {template.name!r} has no container")
        inputs = self._inputs(template, params, name)
        values = {f"inputs.parameters.{k}": v for k, v in inputs.items()} | self.vars
        argv = [argo_doc.substitute(a, values, f"task {name} command") for a in container.argv]
        root = contract.argv_data_dir(argv)
        step_dir = self.record.step_dir(name)
        retry = template.retry

        def prepare(data_dir: Path) -> Attempt:
            self._place_inputs(template, values, arts, data_dir, root, name)
            env = self._env(container, values, step_dir, name)
            return self.steps.attempt(
                argv,
                data_dir,
                env,
                where=f"task {name}",
                policy=self.policy,
                root=root,
                image=container.image,
                declared=[e.name for e in container.env],
                extra=list(self.guard),
                network=container.needs_network,
            )

        step = StepRun(
            name=name,
            template=template.name,
            prepare=prepare,
            collect=lambda data_dir: self._outputs(template, data_dir, root),
            retries=retry.limit,
            timeout=template.deadline,
            retry=retry.should_retry,
            backoff=retry.backoff,
            max_duration=retry.max_duration,
            deadline=None if exit_handler else self.deadline,  # Argo's exit handler is not subject to it
            exit_handler=exit_handler,
            slot=lambda: _hold(limits),
        )
        return run_step(step, self.record, self.launcher, self.progress)

    @staticmethod
    def _inputs(template: Template, params: dict[str, str], name: str) -> dict[str, str]:
        """The template's input parameters: those the task passes over their declared values."""
        values: dict[str, str] = {}
        for p in template.parameters:
            value = params.get(p.name, p.value)
            if value is None:
                raise WorkflowError(f"task {name}: input parameter {p.name!r} has no value")
            values[p.name] = value
        return values

    def _place_inputs(
        self, template: Template, values: dict[str, str], arts: dict[str, Any], data_dir: Path, root: str, name: str
    ) -> None:
        for art in template.artifacts:
            target = _local_path(art.path, root, data_dir, f"task {name} input artifact {art.name}")
            target.parent.mkdir(parents=True, exist_ok=True)
            if art.name in arts:
                kind, value = arts[art.name]
                if kind == "text":
                    self.record.values.place(value, target)
                else:
                    link(Path(value), target)  # an earlier step's output: the same file, not a copy
            elif art.raw is not None:
                self.record.values.place(argo_doc.substitute(art.raw, values, f"task {name}"), target)
            elif not art.optional:
                raise WorkflowError(f"task {name}: input artifact {art.name!r} is not supplied")

    def _env(self, container: Container, values: dict[str, str], step_dir: Path, name: str) -> dict[str, str]:
        env = base_env(step_dir, self.host)
        for item in container.env:
            if item.value_from is not None:
                value = env_from(item.entry(), self.secrets, f"task {name}")
                if value is not None:
                    env[item.name] = value
            else:
                env[item.name] = argo_doc.substitute(item.value, values, f"task {name} env")
        return env | self.guard

    def _outputs(self, template: Template, data_dir: Path, root: str) -> Outputs:
        outputs = Outputs()
        for p in template.outputs:
            path = _local_path(p.path, root, data_dir, f"output parameter {p.name}")
            if path.is_file():
                value = path.read_text(encoding="utf-8")
                self.record.values.adopt(path, value)
            elif p.default is not None:
                value = p.default
            else:
                raise WorkflowError(f"output parameter {p.name!r}: {p.path} was not written, though the step exited 0")
            outputs.parameters.append(Parameter(p.name, value))
        for a in template.output_artifacts:
            path = _local_path(a.path, root, data_dir, f"output artifact {a.name}")
            if not path.exists():
                if a.optional:
                    continue
                raise WorkflowError(f"output artifact {a.name!r}: {a.path} was not written, though the step exited 0")
            outputs.artifacts.append(Artifact(a.name, a.path, str(path)))
        return outputs


def _local_path(path: str, root: str, data_dir: Path, what: str) -> Path:
    prefix = root.rstrip("/") + "/"
    if not path.startswith(prefix):
        raise WorkflowError(f"{what}: path {path!r} is outside the step's data directory {root}")
    rel = Path(path[len(prefix) :])
    if ".." in rel.parts:
        raise WorkflowError(f"{what}: path {path!r} leaves the data directory")
    return data_dir / rel


@contextlib.contextmanager
def _hold(limits: tuple[Any, ...]) -> Iterator[None]:
    """Take a place under every parallelism limit around the step, in the order given."""
    with contextlib.ExitStack() as held:
        for limit in limits:
            held.enter_context(limit)
        yield

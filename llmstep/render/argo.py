"""Plan -> Argo Workflow, built with Hera.

One container template per step; the payload is an inline raw input artifact of the template, so
the Workflow spec is the trust root. The chain input is the workflow parameter ``input``. Data
between steps moves as artifacts (needs an artifact repository) or as parameters (small data, no
repository). Every step exposes a short preview and the token usage as output parameters, so the
Argo UI shows what each step produced and what each model call cost.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from hera.workflows import (
    DAG,
    Artifact,
    ConfigMapEnv,
    Container,
    Env,
    NoneArchiveStrategy,
    Parameter,
    RawArtifact,
    SecretEnv,
    Task,
    Workflow,
)
from hera.workflows.models import Backoff, DAGTask, IntOrString, ResourceRequirements, RetryStrategy, ValueFrom

from llmstep import contract, exitcodes, payloads, shapes
from llmstep.diagnose import settings
from llmstep.diagnose.settings import Diagnose
from llmstep.errors import RenderError
from llmstep.naming import BATCH_INFIX
from llmstep.plan import CHAIN_INPUT, ConfigMapKeyRef, Plan, PlanStep, SecretKeyRef
from llmstep.render import argo_checks as checks
from llmstep.render import paused_gc

MAX_BYTES = 1024 * 1024
"""etcd keeps objects under ~1.5 MiB and Argo advises staying under 1 MiB per Workflow."""

# The value of an output parameter whose file is missing (a failed step). Not "": API servers
# before 1.21 turn an empty-string default into null and reject the Workflow.
NO_VALUE = "(none)"

# Retry only when the Runnable raised (exit 1) or the model was still rate limited (75): a bad
# payload (2) or a missing credential (3) fails the same way every time.
RETRY_WHEN = " || ".join(f"asInt(lastRetry.exitCode) == {code}" for code in exitcodes.RETRIED_EXITS)


def build_workflow(plan: Plan, batch: int | None = None) -> Workflow:
    """The Hera Workflow for a plan. With ``batch=N`` it runs the chain once per item of its
    ``inputs`` parameter (a JSON list of chain inputs), fanned out with ``withParam``,
    at most N inputs in flight and N step pods at a time, and every item runs even when another
    fails."""
    from llmstep.render.batch import BATCH_TASK

    displays = {s.name: s.display for s in plan.steps}
    owners = shared_templates(plan)
    users = Counter(owner.name for owner in owners.values())  # template -> how many steps run it
    templates: list[Any] = [_template(plan, step, users[step.name]) for step in plan.steps if step.name in users]
    source = "{{inputs.parameters.input}}" if batch else "{{workflow.parameters.input}}"
    tasks: list[Task | DAGTask] = [
        _task(plan, step, displays, source, owners[step.name], users[owners[step.name].name] > 1) for step in plan.steps
    ]
    dag = DAG(name="main", tasks=tasks, inputs=[Parameter(name="input")] if batch else None)
    entry, arguments = [dag], [Parameter(name="input", description="the chain input, as JSON")]
    if batch:
        fan = Task(
            name=BATCH_TASK,
            template="main",
            with_param="{{workflow.parameters.inputs}}",
            arguments=[Parameter(name="input", value="{{item}}")],
        )
        entry = [DAG(name="batch", parallelism=batch, fail_fast=False, tasks=[fan]), dag]
        arguments = [Parameter(name="inputs", description="the chain inputs, as a JSON list")]
    # the batch DAG's parallelism bounds the inputs in flight (Argo counts a running item as one
    # child); the Workflow's bounds the step pods, so a chain with parallel branches keeps to N too
    extra: dict[str, Any] = {"parallelism": batch} if batch else {}
    if plan.on_failure is not None:
        templates += diagnose_templates(
            plan.on_failure,
            plan.image,
            plan.secret,
            "workflow/{{workflow.name}}",
            "{{workflow.failures}}",
            report_artifact=plan.data == "artifacts",
        )
        extra["on_exit"] = "exit-handler"
    return Workflow(
        generate_name=f"{plan.name}{BATCH_INFIX}" if batch else f"{plan.name}-",
        labels={**contract.LABELS, contract.CHAIN_LABEL: plan.name},
        annotations={
            "workflows.argoproj.io/title": plan.name + (" (batch)" if batch else ""),
            "workflows.argoproj.io/description": plan.description,
            contract.OUTPUT_TASK: displays[plan.output],
            **({contract.BATCH_ANNOTATION: "true"} if batch else {}),
        },
        entrypoint=entry[0].name,
        arguments=arguments,
        templates=[*entry, *templates],
        **extra,
    )


def diagnose_workflow_template(image: str, secret: str = contract.DEFAULT_SECRET) -> dict[str, Any]:
    """A WorkflowTemplate any workflow can call from its exit handler (``templateRef``) to diagnose
    itself: ``llmstep-diagnose``, template ``diagnose``, parameters for the model and language."""
    from hera.workflows import WorkflowTemplate

    d = contract.DATA_DIR
    params = [
        Parameter(name="target", value="workflow/{{workflow.name}}"),
        Parameter(name="failures", value="{{workflow.failures}}"),
        Parameter(name="model", value=settings.MODEL),
        Parameter(name="provider", value=settings.PROVIDER),
        # not "": API servers before 1.21 reject empty-string values (see NO_VALUE)
        Parameter(name="base-url", value=settings.OPENAI_URL),
        Parameter(name="lang", value="English"),
        Parameter(name="prompt", value=settings.PROMPT),
    ]
    diagnose = Container(
        name="diagnose",
        labels={**contract.LABELS, contract.STEP_LABEL: "diagnose"},
        image=image,
        inputs=params,
        command=[
            "llmstep",
            "diagnose",
            "{{inputs.parameters.target}}",
            "--workflow-failures",
            "{{inputs.parameters.failures}}",
            "--model",
            "{{inputs.parameters.model}}",
            "--provider",
            "{{inputs.parameters.provider}}",
            "--base-url",
            "{{inputs.parameters.base-url}}",
            "--lang",
            "{{inputs.parameters.lang}}",
            "--prompt",
            "{{inputs.parameters.prompt}}",
            "--summary-file",
            f"{d}/summary.txt",
        ],
        env=[SecretEnv(name=settings.OPENAI_KEY, secret_name=secret, secret_key=settings.OPENAI_KEY)],
        outputs=[Parameter(name="summary", value_from=ValueFrom(path=f"{d}/summary.txt", default=NO_VALUE))],
        service_account_name="llmstep-diagnose",
    )
    template = WorkflowTemplate(
        name="llmstep-diagnose",
        labels=dict(contract.LABELS),
        entrypoint="diagnose",
        templates=[diagnose],
        annotations={
            "workflows.argoproj.io/description": "Ask an LLM why a workflow failed. From an exit handler: "
            "templateRef: {name: llmstep-diagnose, template: diagnose}, with when: "
            '"{{workflow.status}} != Succeeded".'
        },
    )
    return template.to_dict()


def diagnose_templates(
    on_failure: Diagnose, image: str, secret: str, target: str, failures: str, report_artifact: bool = True
) -> list[Any]:
    """The exit handler: a DAG that runs ``llmstep diagnose`` only when the workflow did not
    succeed, and the container template that does it (summary as an output parameter, the full
    report as an artifact when there is an artifact repository)."""
    d = contract.DATA_DIR
    outputs: list[Any] = [Parameter(name="summary", value_from=ValueFrom(path=f"{d}/summary.txt", default=NO_VALUE))]
    if report_artifact:
        outputs.append(Artifact(name="report", path=f"{d}/report.md", optional=True, archive=NoneArchiveStrategy()))
    diagnose = Container(
        name="diagnose",
        labels={**contract.LABELS, contract.STEP_LABEL: "diagnose"},
        image=image,
        command=[
            "llmstep",
            "diagnose",
            target,
            "--workflow-failures",
            failures,
            *on_failure.args(),
            "--summary-file",
            f"{d}/summary.txt",
            "--output",
            f"{d}/report.md",
        ],
        env=[SecretEnv(name=on_failure.key, secret_name=secret, secret_key=on_failure.key)],
        outputs=outputs,
    )
    handler = DAG(
        name="exit-handler", tasks=[Task(name="diagnose", template="diagnose", when="{{workflow.status}} != Succeeded")]
    )
    return [handler, diagnose]


def render_dict(plan: Plan, batch: int | None = None) -> dict[str, Any]:
    """The Argo Workflow as a dict, checked for names, references and size."""
    with paused_gc():
        doc = build_workflow(plan, batch).to_dict()
    checks.check_workflow(doc)
    _check_size(plan, doc)
    return doc


def shared_templates(plan: Plan) -> dict[str, PlanStep]:
    """The step whose template each step runs. Steps that would get the same template (one
    Runnable used in several places, such as the same chain in every branch of a map) share the
    first one's, so its payload is stored once. Only steps with a single input share: their input
    is always ``input.json``, whatever produced it; the running step's name comes from a parameter."""
    owners: dict[str, PlanStep] = {}
    first: dict[str, PlanStep] = {}
    for step in plan.steps:
        if not step.single_input:
            owners[step.name] = step
            continue
        fields = {k: v for k, v in step.payload.items() if k not in ("name", shapes.KEY)}
        key = json.dumps(
            [fields, step.secrets, repr(step.settings), step.name == plan.output], sort_keys=True, default=str
        )
        owners[step.name] = first.setdefault(key, step)
    return owners


INPUT_MODE = 0o644
"""Input artifacts are readable by the step image's non-root user."""


def _template(plan: Plan, step: PlanStep, users: int = 1) -> Container:
    """A step's container template; with ``users`` > 1 it is shared, and takes the running
    step's name as its ``step`` parameter."""
    d = contract.DATA_DIR
    inputs: list[Any] = [
        RawArtifact(name="payload", path=f"{d}/{contract.PAYLOAD}", data=payloads.payload_text(step.payload))
    ]
    for source in step.sources:
        # Argo's S3 (and other) drivers load a file as root with mode 0600: without a mode the
        # step's own user could not read its input (found by running on the real controller).
        inputs.append(
            Artifact(
                name=_artifact(step, source),
                path=f"{d}/{contract.input_file(source, step.single_input)}",
                mode=INPUT_MODE,
            )
        )
    if users > 1:
        inputs.append(Parameter(name="step", description="the running step (this template is shared)"))
    outputs: list[Any] = [
        Parameter(name="preview", value_from=ValueFrom(path=f"{d}/{contract.PREVIEW}", default=NO_VALUE)),
        Parameter(name="usage", value_from=ValueFrom(path=f"{d}/{contract.USAGE}", default="{}")),
    ]
    if plan.data == "artifacts":
        outputs.append(Artifact(name="output", path=f"{d}/{contract.OUTPUT}", archive=NoneArchiveStrategy()))
    if plan.data == "parameters" or step.name == plan.output:
        outputs.append(Parameter(name="output", value_from=ValueFrom(path=f"{d}/{contract.OUTPUT}")))
    settings = step.settings
    own = {name for name, _ in settings.env}  # a model key from another Secret: the user's env says where
    env: list[Any] = [
        SecretEnv(name=key, secret_name=plan.secret, secret_key=key) for key in step.secrets if key not in own
    ]
    env += [_env(name, value) for name, value in settings.env]
    retry = None
    if settings.retries:
        retry = RetryStrategy(
            limit=IntOrString(settings.retries),
            retry_policy="OnFailure",
            expression=RETRY_WHEN,
            backoff=Backoff(duration=settings.backoff, factor=IntOrString(2)),
        )
    return Container(
        name=step.name,
        annotations={
            contract.RUNNABLE_ANNOTATION: step.runnable,
            contract.PATH_ANNOTATION: step.path,
            **({contract.SHARED_BY_ANNOTATION: f"{users} steps"} if users > 1 else {}),
        },
        labels={**contract.LABELS, contract.STEP_LABEL: step.name},
        image=settings.image or plan.image,
        command=contract.exec_argv(d, step_name="{{inputs.parameters.step}}" if users > 1 else None),
        inputs=inputs,
        outputs=outputs,
        env=env,
        resources=ResourceRequirements(**settings.resources) if settings.resources else None,
        retry_strategy=retry,
        active_deadline_seconds=settings.timeout,
    )


def _env(name: str, value: Any) -> Any:
    if isinstance(value, SecretKeyRef):
        return SecretEnv(name=name, secret_name=value.name, secret_key=value.key)
    if isinstance(value, ConfigMapKeyRef):
        return ConfigMapEnv(name=name, config_map_name=value.name, config_map_key=value.key)
    return Env(name=name, value=value)


def _task(
    plan: Plan, step: PlanStep, displays: dict[str, str], chain_input: str, owner: PlanStep, shared: bool
) -> Task:
    args: list[Any] = [Parameter(name="step", value=step.display)] if shared else []
    for source in step.sources:
        name = _artifact(step, source)
        if source == CHAIN_INPUT:
            args.append(RawArtifact(name=name, data=chain_input))
        elif plan.data == "artifacts":
            args.append(Artifact(name=name, from_=f"{{{{tasks.{displays[source]}.outputs.artifacts.output}}}}"))
        else:
            args.append(RawArtifact(name=name, data=f"{{{{tasks.{displays[source]}.outputs.parameters.output}}}}"))
    depends = " && ".join(displays[s] for s in step.depends) or None
    return Task(name=step.display, template=owner.name, arguments=args, depends=depends)


def _artifact(step: PlanStep, source: str) -> str:
    return "input" if step.single_input else f"input-{source}"


def _check_size(plan: Plan, doc: dict[str, Any]) -> None:
    size = len(json.dumps(doc, separators=(",", ":")))
    if size <= MAX_BYTES:
        return
    biggest = sorted(plan.steps, key=lambda s: -len(payloads.payload_text(s.payload)))[:5]
    listed = ", ".join(f"{s.display} ({len(payloads.payload_text(s.payload)) // 1024} KiB, {s.path})" for s in biggest)
    raise RenderError(
        f"the Workflow would be {size // 1024} KiB, over Argo's ~{MAX_BYTES // 1024} KiB object "
        f"limit. Largest steps: {listed}. Shrink those Runnables (large pickled closures or "
        "embedded data), load data inside the step instead, or split the chain into several workflows"
    )

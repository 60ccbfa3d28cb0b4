"""Plan -> Tekton (tekton.dev/v1): a Pipeline with one task per step, a PipelineRun, and a TaskRun
for a single payload; the reusable Tasks they run are :mod:`llmstep.render.tekton_tasks`.

Data moves through the shared ``data`` workspace, not results (results are capped at 4 KiB per
container): each step keeps its data directory at ``<pipelinerun>/<step>/`` and results carry only
a preview, the output's path and its sha256 digest. The payload and the chain input reach the
step through ``env`` (from params), never by interpolation into a script. API keys come from a
Secret bound as a workspace with exactly the keys a step declares, and only model steps bind it.
"""

from __future__ import annotations

import json
from typing import Any

from llmstep import contract, payloads, serde, shapes
from llmstep.errors import RenderError
from llmstep.plan import CHAIN_INPUT, ConfigMapKeyRef, Plan, PlanStep, SecretKeyRef
from llmstep.render.tekton_tasks import API, DIAGNOSE_TASK, INPUT_PARTS, PARAM_DOCS, TASK_NAME, diagnose_task, run_task

ENV_LIMIT = contract.MAX_ARG_STRLEN
"""The payload travels in one environment variable."""
INPUT_LIMIT = 640 * 1024
"""The longest chain input a PipelineRun takes: it holds the input twice once it runs (its params and
its status), and Kubernetes keeps an object under 1.5 MiB (etcd's request limit). Measured on the
real controller: 700 KB runs; at 1 MB the PipelineRun's status cannot be written and it never ends."""


def credentials_workspace(keys: tuple[str, ...]) -> str:
    """The Pipeline workspace that holds exactly ``keys``: ``credentials-openai-api-key``."""
    name = "credentials-" + "-".join(k.lower().replace("_", "-") for k in sorted(keys))
    return name[:63].rstrip("-")


def pipeline(plan: Plan) -> dict[str, Any]:
    """The Pipeline: one task per step, ``runAfter`` from the plan, a failure hook in ``finally``."""
    tasks = [_pipeline_task(plan, step) for step in plan.steps]
    workspaces = [{"name": "data", "description": "Shared storage for the steps' inputs and outputs."}]
    for keys in _key_sets(plan):
        # Required: a PipelineRun binds it (Tekton refuses an optional one that the diagnosis
        # task's required workspace uses, and a run without the key is better refused at once).
        workspaces.append(
            {"name": credentials_workspace(keys), "description": f"A Secret with the key(s) {', '.join(keys)}."}
        )
    out = plan.step(plan.output)
    return {
        "apiVersion": API,
        "kind": "Pipeline",
        "metadata": {
            "name": plan.name,
            "labels": {**contract.LABELS, contract.CHAIN_LABEL: plan.name},
            "annotations": {contract.OUTPUT_TASK: out.name},
        },
        "spec": {
            "description": plan.description,
            "params": [
                {"name": "input", "type": "string", "description": "The chain input, as JSON."},
                {"name": INPUT_PARTS, "type": "array", "default": [], "description": PARAM_DOCS[INPUT_PARTS]},
            ],
            "workspaces": workspaces,
            "tasks": tasks,
            "finally": [_failure_hook(plan)],
            "results": [
                {
                    "name": "output-path",
                    "value": f"$(tasks.{out.name}.results.output-path)",
                    "description": "Path of the chain's output in the data workspace.",
                },
                {
                    "name": "preview",
                    "value": f"$(tasks.{out.name}.results.preview)",
                    "description": "The first KiB of the chain's output.",
                },
            ],
        },
    }


def pipeline_run(plan: Plan, input_json: str = "{}", storage: str = "1Gi") -> dict[str, Any]:
    """A PipelineRun with a fresh volume per run and the Secret bound with only the needed keys."""
    run = _run_of(
        plan.name, {credentials_workspace(keys): keys for keys in _key_sets(plan)}, plan.secret, input_json, storage
    )
    # Container resources are a run setting in Tekton, not a PipelineTask field.
    specs = [
        {"pipelineTaskName": s.name, "computeResources": s.settings.resources}
        for s in plan.steps
        if s.settings.resources
    ]
    if specs:
        run["spec"]["taskRunSpecs"] = specs
    return run


def task_run(step: PlanStep, input_json: str, image: str, secret: str) -> dict[str, Any]:
    """A TaskRun of the reusable Task for one serialized Runnable (the payload as a param)."""
    _check_env_size(step)
    workspaces: list[dict[str, Any]] = [{"name": "data", "emptyDir": {}}]
    if step.secrets:
        workspaces.append(
            {
                "name": "credentials",
                "secret": {"secretName": secret, "items": [{"key": k, "path": k} for k in step.secrets]},
            }
        )
    return {
        "apiVersion": API,
        "kind": "TaskRun",
        "metadata": {"generateName": f"{step.name}-", "labels": {**contract.LABELS, contract.STEP_LABEL: step.name}},
        "spec": {
            **_task_source(step, image),
            "params": [
                {"name": "payload", "value": payloads.payload_text(step.payload)},
                *input_params(input_json),
                {"name": "inputs", "value": [CHAIN_INPUT]},
                {"name": "output-dir", "value": step.name},
                {"name": "image", "value": step.settings.image or image},
            ],
            "workspaces": workspaces,
            "serviceAccountName": "llmstep",
            **({"computeResources": step.settings.resources} if step.settings.resources else {}),
            **({"timeout": f"{step.settings.timeout}s"} if step.settings.timeout else {}),
            **({"retries": step.settings.retries} if step.settings.retries else {}),
        },
    }


def input_params(input_json: str) -> list[dict[str, Any]]:
    """A run's params for the chain input: ``input``, or for an input longer than an environment
    variable may be (:data:`llmstep.contract.MAX_ARG_STRLEN`), ``input`` empty and the input in
    ``input-parts``, which reach the step as arguments of at most 64 KiB each. The limit is then
    the run's, :data:`INPUT_LIMIT` (a RenderError beyond it). Either way a ``$(`` in the JSON is
    written ``$\u0028``, which Kubernetes does not expand (:func:`llmstep.serde.kube_literal`)."""
    input_json = serde.kube_literal(input_json)
    size = len(input_json.encode("utf-8", "surrogatepass"))
    if size > INPUT_LIMIT:
        raise RenderError(
            f"the chain input is {size // 1024} KiB, but a Tekton PipelineRun holds it twice once it runs "
            f"(its params and its status) and Kubernetes keeps an object under 1.5 MiB, so Tekton takes at "
            f"most {INPUT_LIMIT // 1024} KiB: pass a reference to the data (a URL, a file the chain reads) "
            "or run the chain on Argo"
        )
    if size <= contract.PART_BYTES:
        return [{"name": "input", "value": input_json}]
    return [{"name": "input", "value": ""}, {"name": INPUT_PARTS, "value": contract.value_parts(input_json)}]


def with_input(run: dict[str, Any], input_json: str) -> None:
    """Set a PipelineRun's or TaskRun's chain input (:func:`input_params`), replacing what it had."""
    params = [p for p in run["spec"].get("params") or [] if p["name"] not in ("input", INPUT_PARTS)]
    run["spec"]["params"] = [*params, *input_params(input_json)]


def rbac(namespace: str | None = None) -> list[dict[str, Any]]:
    """What a run needs: the ``llmstep`` ServiceAccount that steps run as (no API access, no
    token mounted: steps only read their workspace), a Role for whoever starts runs, and the
    read-only ServiceAccount of the diagnosis task."""
    from llmstep.render.rbac import diagnose_rbac

    meta = {"labels": dict(contract.LABELS), **({"namespace": namespace} if namespace else {})}
    return [
        *diagnose_rbac("tekton"),
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": "llmstep", **meta},
            "automountServiceAccountToken": False,
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "llmstep-submitter", **meta},
            "rules": [
                {
                    "apiGroups": ["tekton.dev"],
                    "resources": ["pipelineruns", "taskruns"],
                    "verbs": ["create", "get", "list", "watch", "delete"],
                },
                {
                    "apiGroups": ["tekton.dev"],
                    "resources": ["pipelines", "tasks"],
                    "verbs": ["get", "list", "create", "update"],
                },
                {"apiGroups": [""], "resources": ["pods", "pods/log"], "verbs": ["get", "list", "watch"]},
            ],
        },
    ]


def render(plan: Plan) -> list[dict[str, Any]]:
    """What a cluster needs to run the chain: the Task(s), the Pipeline, and a PipelineRun."""
    tasks = [run_task(plan.image)] + ([diagnose_task(plan.image)] if plan.on_failure is not None else [])
    return [*tasks, pipeline(plan), pipeline_run(plan)]


def data_claim(storage: str = "1Gi") -> dict[str, Any]:
    """The ``data`` workspace's claim as a PersistentVolumeClaim document (what ``tkn pipeline
    start -w name=data,volumeClaimTemplateFile=FILE`` reads); a PipelineRun carries its spec."""
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "llmstep-data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": storage}}},
    }


def _run_of(
    name: str, credentials: dict[str, tuple[str, ...]], secret: str, input_json: str, storage: str
) -> dict[str, Any]:
    workspaces: list[dict[str, Any]] = [{"name": "data", "volumeClaimTemplate": {"spec": data_claim(storage)["spec"]}}]
    for workspace, keys in credentials.items():
        workspaces.append(
            {"name": workspace, "secret": {"secretName": secret, "items": [{"key": k, "path": k} for k in keys]}}
        )
    return {
        "apiVersion": API,
        "kind": "PipelineRun",
        "metadata": {"generateName": f"{name}-", "labels": {**contract.LABELS, contract.CHAIN_LABEL: name}},
        "spec": {
            "pipelineRef": {"name": name},
            "params": input_params(input_json),
            "workspaces": workspaces,
            "taskRunTemplate": {"serviceAccountName": "llmstep"},
        },
    }


def run_for_pipeline(doc: dict[str, Any], input_json: str = "{}", storage: str = "1Gi") -> dict[str, Any]:
    """A PipelineRun for a Pipeline document llmstep wrote (as ``pipeline_run`` makes for its plan):
    the credentials workspaces bind the keys its tasks' payloads declare."""
    credentials: dict[str, tuple[str, ...]] = {}
    secret = contract.DEFAULT_SECRET
    for task in (doc.get("spec") or {}).get("tasks") or []:
        bound = {w.get("name"): w.get("workspace") for w in task.get("workspaces") or []}
        if "credentials" not in bound:
            continue
        payload = next((p.get("value") for p in task.get("params") or [] if p.get("name") == "payload"), None)
        try:
            declared = json.loads(payload or "{}")
        except ValueError:
            raise RenderError(
                f"Pipeline {doc['metadata'].get('name')}: task {task.get('name')}: its payload param is "
                "not JSON; recompile it with llmstep compile --engine tekton"
            ) from None
        credentials[bound["credentials"]] = tuple(declared.get("secrets") or ())
        secret = declared.get("secret_name") or secret
    return _run_of(doc["metadata"]["name"], credentials, secret, input_json, storage)


def with_run(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The documents, with a PipelineRun of their one Pipeline added when they hold no run (the
    reusable file ``llmstep compile --engine tekton`` writes)."""
    if any(d.get("kind") in ("PipelineRun", "TaskRun") for d in docs):
        return docs
    pipelines = [d for d in docs if d.get("kind") == "Pipeline"]
    if len(pipelines) != 1:
        return docs  # the caller's check says what is missing
    return [*docs, run_for_pipeline(pipelines[0])]


def _pipeline_task(plan: Plan, step: PlanStep) -> dict[str, Any]:
    _check_env_size(step)
    inputs = [
        CHAIN_INPUT if s == CHAIN_INPUT else f"{s}=$(context.pipelineRun.name)/{s}/{contract.OUTPUT}"
        for s in step.sources
    ]
    params: list[dict[str, Any]] = [{"name": "payload", "value": payloads.payload_text(step.payload)}]
    if CHAIN_INPUT in step.sources:
        params.append({"name": "input", "value": "$(params.input)"})
        params.append({"name": INPUT_PARTS, "value": [f"$(params.{INPUT_PARTS}[*])"]})
    params += [
        {"name": "inputs", "value": inputs},
        {"name": "output-dir", "value": f"$(context.pipelineRun.name)/{step.name}"},
        {"name": "image", "value": step.settings.image or plan.image},
    ]
    if step.name == plan.output:
        params.append({"name": "log-output", "value": "true"})
    task: dict[str, Any] = {
        "name": step.name,
        "displayName": step.display,
        "description": f"{step.runnable.rsplit('.', 1)[-1]} ({step.path})",
        **_task_source(step, plan.image),
        "params": params,
        "workspaces": [{"name": "data", "workspace": "data"}],
    }
    if step.depends:
        task["runAfter"] = list(step.depends)
    if step.secrets:
        task["workspaces"].append({"name": "credentials", "workspace": credentials_workspace(step.secrets)})
    if step.settings.retries:
        task["retries"] = step.settings.retries
    if step.settings.timeout:
        task["timeout"] = f"{step.settings.timeout}s"
    return task


def _task_source(step: PlanStep, image: str) -> dict[str, Any]:
    """``taskRef`` to the shared Task; or, for a step with env (which a Task cannot take per use), the
    Task's spec embedded with the env added (literal values, or a ConfigMap's or Secret's key)."""
    if not step.settings.env:
        return {"taskRef": {"name": TASK_NAME}}
    spec = json.loads(json.dumps(run_task(image)["spec"]))
    spec["steps"][0]["env"] += [env_entry(name, value) for name, value in step.settings.env]
    return {"taskSpec": spec}


def env_entry(name: str, value: Any) -> dict[str, Any]:
    """A container env entry: a literal value, or a ConfigMap's or Secret's key."""
    if isinstance(value, SecretKeyRef):
        return {"name": name, "valueFrom": {"secretKeyRef": {"name": value.name, "key": value.key}}}
    if isinstance(value, ConfigMapKeyRef):
        return {"name": name, "valueFrom": {"configMapKeyRef": {"name": value.name, "key": value.key}}}
    return {"name": name, "value": value}


def _failure_hook(plan: Plan) -> dict[str, Any]:
    """A ``finally`` task that runs only when a task failed: with ``on_failure``, a diagnosis by a
    model; without, a report of which tasks failed."""
    statuses = {s.name: f"$(tasks.{s.name}.status)" for s in plan.steps}
    when = [{"input": "$(tasks.status)", "operator": "in", "values": ["Failed"]}]
    if plan.on_failure is not None:
        d = plan.on_failure
        values = {
            "target": "pipelinerun/$(context.pipelineRun.name)",
            "statuses": json.dumps(statuses),
            **d.options(),
            "key-name": d.key,
            "image": plan.image,
            "report-file": "$(context.pipelineRun.name)/diagnosis.md",
        }
        return {
            "name": "diagnose",
            "displayName": "diagnose failure",
            "when": when,
            "taskRef": {"name": DIAGNOSE_TASK},
            "params": [{"name": k, "value": v} for k, v in values.items()]
            + ([{"name": "redact", "value": list(d.redact)}] if d.redact else []),
            "workspaces": [
                {"name": "credentials", "workspace": credentials_workspace((d.key,))},
                {"name": "data", "workspace": "data"},
            ],
        }
    report = {
        "llmstep": serde.FORMAT_VERSION,
        "name": "on-failure",
        "runnable": "langchain_core.prompts.prompt.PromptTemplate",
        "format": "lc",
        shapes.KEY: shapes.chain_input(),
        "secret_name": plan.secret,
        "secrets": [],
        "allowed": [["langchain", "prompts", "prompt", "PromptTemplate"]],
        "data": {
            "lc": 1,
            "type": "constructor",
            "id": ["langchain", "prompts", "prompt", "PromptTemplate"],
            "kwargs": {
                "input_variables": ["run", "tasks"],
                "template_format": "f-string",
                "template": "PipelineRun {run} failed. Task statuses: {tasks}",
            },
        },
    }
    return {
        "name": "on-failure",
        "displayName": "report failure",
        "when": when,
        "taskRef": {"name": TASK_NAME},
        "params": [
            {"name": "payload", "value": json.dumps(report, indent=1, sort_keys=True)},
            {"name": "input", "value": json.dumps({"run": "$(context.pipelineRun.name)", "tasks": statuses})},
            {"name": "inputs", "value": [CHAIN_INPUT]},
            {"name": "output-dir", "value": "$(context.pipelineRun.name)/on-failure"},
            {"name": "image", "value": plan.image},
        ],
        "workspaces": [{"name": "data", "workspace": "data"}],
    }


def _key_sets(plan: Plan) -> list[tuple[str, ...]]:
    sets = {tuple(sorted(s.secrets)) for s in plan.steps if s.secrets}
    if plan.on_failure is not None:
        sets.add((plan.on_failure.key,))
    return sorted(sets)


def _check_env_size(step: PlanStep) -> None:
    size = len(payloads.payload_text(step.payload).encode("utf-8"))
    if size >= ENV_LIMIT:
        raise RenderError(
            f"step {step.display} ({step.path}): its payload is {size // 1024} KiB, but Tekton passes it "
            f"in an environment variable, which Linux caps at {ENV_LIMIT // 1024} KiB; shrink the Runnable "
            "(large pickled closures or embedded data) or run this chain on Argo"
        )

"""The reusable Tekton Tasks (tekton.dev/v1), catalog style: ``llmstep-run``, which runs one payload
with ``llmstep exec``, and ``llmstep-diagnose``, which asks a model why a run failed. A Pipeline's
tasks refer to them (:mod:`llmstep.render.tekton`); a step with its own env embeds ``llmstep-run``'s
spec.
"""

from __future__ import annotations

from typing import Any

from llmstep import __version__, contract
from llmstep.diagnose import settings
from llmstep.shapes import CHAIN_INPUT

API = "tekton.dev/v1"
TASK_NAME = "llmstep-run"
MIN_PIPELINES = "0.56.0"
INPUT_PARTS = "input-parts"

PARAM_DOCS = {
    "payload": "The step's runnable.json: a serialized LangChain Runnable (llmstep compile writes it).",
    "input": "The chain input as JSON, for steps whose inputs include 'input'.",
    INPUT_PARTS: "The chain input as JSON in parts I/N:TEXT of at most 64 KiB, instead of 'input' when it is "
    "longer than one environment variable may be (Linux: 128 KiB); llmstep writes them for a long input.",
    "inputs": "Where the step's inputs come from: 'input' (the input param) or SOURCE=PATH, "
    "PATH relative to the data workspace (an earlier step's output-path result).",
    "output-dir": "The step's directory in the data workspace, e.g. $(context.pipelineRun.name)/STEP.",
    "image": "The llmstep step image.",
    "log-output": "true: also write the output to the log as an '@llmstep {...}' line (the Pipeline sets it on "
    "its output task, so a client reads the chain's output from the log: results are capped at 4 KiB).",
}
RESULT_DOCS = {
    "preview": "The first KiB of the step's output, as text.",
    "output-path": "Path of output.json, relative to the data workspace.",
    "sha256": "sha256 digest of output.json.",
    "usage": "Token usage per model, as JSON.",
}


def run_task(image: str) -> dict[str, Any]:
    """The reusable Task that runs one payload with ``llmstep exec``, catalog style."""
    staging = {
        "payload_env": contract.PAYLOAD_ENV,
        "input_env": contract.INPUT_ENV,
        "secrets_dir": "$(workspaces.credentials.path)",
        "link_root": "$(workspaces.data.path)",
        "inputs": "$(params.inputs[*])",
        "input_parts": f"$(params.{INPUT_PARTS}[*])",
        "log_output": "$(params.log-output)",
        **{"result_" + r.replace("-", "_"): f"$(results.{r}.path)" for r in contract.RESULTS},
    }
    argv = contract.exec_argv("$(workspaces.data.path)/$(params.output-dir)", staging=staging)
    return {
        "apiVersion": API,
        "kind": "Task",
        "metadata": {
            "name": TASK_NAME,
            "labels": {**contract.LABELS, "app.kubernetes.io/version": __version__},
            "annotations": {
                "tekton.dev/pipelines.minVersion": MIN_PIPELINES,
                "tekton.dev/categories": "Machine Learning",
                "tekton.dev/tags": "langchain, llm, llmstep",
                "tekton.dev/displayName": "llmstep run",
                "tekton.dev/platforms": "linux/amd64,linux/arm64",
            },
        },
        "spec": {
            "description": "Run one serialized LangChain Runnable (one step of an llmstep chain) with "
            "`llmstep exec`. Inputs and outputs are files in the data workspace; results carry only "
            "a preview, the output path and its digest.",
            "params": [
                {"name": "payload", "type": "string", "description": PARAM_DOCS["payload"]},
                {"name": "input", "type": "string", "default": "", "description": PARAM_DOCS["input"]},
                {"name": INPUT_PARTS, "type": "array", "default": [], "description": PARAM_DOCS[INPUT_PARTS]},
                {"name": "inputs", "type": "array", "default": [CHAIN_INPUT], "description": PARAM_DOCS["inputs"]},
                {"name": "output-dir", "type": "string", "description": PARAM_DOCS["output-dir"]},
                {"name": "image", "type": "string", "default": image, "description": PARAM_DOCS["image"]},
                {"name": "log-output", "type": "string", "default": "false", "description": PARAM_DOCS["log-output"]},
            ],
            "workspaces": [
                {"name": "data", "description": "Shared storage for every step's inputs and outputs."},
                {
                    "name": "credentials",
                    "optional": True,
                    "readOnly": True,
                    "description": "A Secret holding only the API keys this step's Runnable declares, one file "
                    "per key (bind it only for steps that call a model).",
                },
            ],
            "results": [{"name": r, "type": "string", "description": RESULT_DOCS[r]} for r in contract.RESULTS],
            "steps": [
                {
                    "name": "exec",
                    "image": "$(params.image)",
                    "command": argv[:2],
                    "args": argv[2:],
                    "env": [
                        {"name": contract.PAYLOAD_ENV, "value": "$(params.payload)"},
                        {"name": contract.INPUT_ENV, "value": "$(params.input)"},
                    ],
                }
            ],
        },
    }


DIAGNOSE_TASK = "llmstep-diagnose"


def diagnose_task(image: str) -> dict[str, Any]:
    """The Task that asks a model why a PipelineRun (or any object) failed: ``llmstep diagnose``."""
    params = [
        ("target", None, "What to diagnose, KIND/NAME: pipelinerun/NAME, taskrun/NAME, pod/NAME, deployment/NAME, ..."),
        ("statuses", "", "Task statuses as JSON {task: status}; when set, the evidence needs no API access."),
        ("prompt", settings.PROMPT, ", ".join(settings.PROMPTS[:-1]) + f" or {settings.PROMPTS[-1]}."),
        ("lang", "", "The answer's language (any language name); empty for English."),
        ("model", settings.MODEL, "The model (for Azure OpenAI, any name: the deployment decides)."),
        ("provider", settings.PROVIDER, ", ".join(settings.PROVIDERS[:-1]) + f" or {settings.PROVIDERS[-1]}."),
        ("base-url", "", "An OpenAI-compatible endpoint, for provider compatible."),
        ("azure-endpoint", "", "The Azure OpenAI endpoint, for provider azure."),
        ("azure-deployment", "", "The Azure OpenAI deployment, for provider azure."),
        ("api-version", settings.API_VERSION, "The Azure OpenAI API version."),
        ("key-name", settings.OPENAI_KEY, "The key's file name in the credentials workspace."),
        ("report-file", "diagnosis.md", "Where the full report goes in the data workspace, when it is bound."),
        ("image", image, "The llmstep step image."),
    ]
    args = [
        "$(params.target)",
        "--task-statuses",
        "$(params.statuses)",
        "--prompt",
        "$(params.prompt)",
        "--lang",
        "$(params.lang)",
        "--model",
        "$(params.model)",
        "--provider",
        "$(params.provider)",
        "--base-url",
        "$(params.base-url)",
        "--azure-endpoint",
        "$(params.azure-endpoint)",
        "--azure-deployment",
        "$(params.azure-deployment)",
        "--api-version",
        "$(params.api-version)",
        "--api-key-file",
        "$(workspaces.credentials.path)/$(params.key-name)",
        "--summary-file",
        "$(results.summary.path)",
        "--output-dir",
        "$(workspaces.data.path)",
        "--output-name",
        "$(params.report-file)",
        "--redact-each",
        "$(params.redact[*])",
    ]
    return {
        "apiVersion": API,
        "kind": "Task",
        "metadata": {
            "name": DIAGNOSE_TASK,
            "labels": {**contract.LABELS, "app.kubernetes.io/version": __version__},
            "annotations": {
                "tekton.dev/pipelines.minVersion": MIN_PIPELINES,
                "tekton.dev/categories": "Troubleshooting",
                "tekton.dev/tags": "llm, diagnosis, llmstep",
                "tekton.dev/displayName": "llmstep diagnose",
                "tekton.dev/platforms": "linux/amd64,linux/arm64",
            },
        },
        "spec": {
            "description": "Gather evidence about a failed PipelineRun (or any Kubernetes object), remove secrets, and "
            "ask an LLM what is wrong and how to fix it. The report is the step's log; the summary is a result.",
            "params": [
                *(
                    {"name": n, "type": "string", **({} if d is None else {"default": d}), "description": doc}
                    for n, d, doc in params
                ),
                {
                    "name": "redact",
                    "type": "array",
                    "default": [],
                    "description": "Also remove text matching these regular expressions (Diagnose(redact=...)).",
                },
            ],
            "workspaces": [
                {
                    "name": "credentials",
                    "readOnly": True,
                    "description": "A Secret with the model's API key (file named by key-name).",
                },
                {
                    "name": "data",
                    "optional": True,
                    "description": "Where the full report is written (report-file); the summary is a result.",
                },
            ],
            "results": [{"name": "summary", "type": "string", "description": "A short summary of the diagnosis."}],
            "steps": [
                {"name": "diagnose", "image": "$(params.image)", "command": ["llmstep", "diagnose"], "args": args}
            ],
        },
    }

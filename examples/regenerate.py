"""Regenerate workflows/ and tekton/ from examples/.

Run from the repository root:

    python examples/regenerate.py          # rewrite what changed
    python examples/regenerate.py --check  # exit 1 if workflows/ or tekton/ is out of date

The examples are compiled with ChatOpenAI, as a cluster would run them. The API key is a
placeholder that exists only so ChatOpenAI can be constructed; LangChain records it by id, and
the golden test checks that the placeholder never reaches the YAML.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
PLACEHOLDER_KEY = "sk-placeholder-only-for-compiling-examples"
EXAMPLES = {  # name: (reference, compile options, the example input written into the Workflow)
    "qa": ("examples/qa.py:chain", {}, {"question": "What does Argo Workflows do?"}),
    "parallel": ("examples/parallel.py:chain", {}, {"topic": "Kubernetes operators"}),
    "retrieval": ("examples/retrieval.py:chain", {"allow_pickle": True}, "How do steps pass data?"),
}


def render_all() -> dict[str, str]:
    """{path under the repository: YAML} for every generated file, compiled in a clean, fixed
    environment: workflows/<example>.yaml, and tekton/ (the Task, RBAC, and the qa example as a
    Pipeline, a PipelineRun, its data claim for `tkn pipeline start` and a TaskRun of its model step)."""
    import llmstep
    from llmstep.cli.refs import load_reference
    from llmstep.render import tekton
    from llmstep.render.argo import diagnose_workflow_template
    from llmstep.render.rbac import diagnose_rbac
    from llmstep.yamlio import dump_all, dump_yaml

    saved = dict(os.environ)
    cwd = os.getcwd()
    try:
        for key in [k for k in os.environ if k.startswith(("OPENAI_", "AZURE_OPENAI_"))]:
            del os.environ[key]
        os.environ["OPENAI_API_KEY"] = PLACEHOLDER_KEY
        os.chdir(ROOT)
        compiled = {
            name: llmstep.compile(load_reference(ref), name=name, **opts) for name, (ref, opts, _) in EXAMPLES.items()
        }
        files = {f"workflows/{name}.yaml": c.to_yaml(EXAMPLES[name][2]) for name, c in compiled.items()}
        qa = compiled["qa"].plan
        model = next(s for s in qa.steps if s.secrets)
        # The model step's input, as the prompt step writes it (the current value format).
        from langchain_core.messages import HumanMessage
        from langchain_core.prompt_values import ChatPromptValue

        from llmstep import serde

        prompt_value = serde.dumps_value(ChatPromptValue(messages=[HumanMessage("What does Tekton do?")]))
        files.update(
            {
                "workflows/llmstep-diagnose-template.yaml": dump_yaml(diagnose_workflow_template(qa.image)),
                "workflows/llmstep-diagnose-rbac.yaml": dump_all(diagnose_rbac("argo")),
                "tekton/llmstep-diagnose.yaml": dump_yaml(tekton.diagnose_task(qa.image)),
                "tekton/llmstep-run.yaml": dump_yaml(tekton.run_task(qa.image)),
                "tekton/rbac.yaml": dump_all(tekton.rbac()),
                "tekton/qa-pipeline.yaml": dump_yaml(tekton.pipeline(qa)),
                "tekton/qa-pipelinerun.yaml": dump_yaml(
                    tekton.pipeline_run(qa, '{"question": "What does Tekton do?"}')
                ),
                "tekton/pvc.yaml": dump_yaml(tekton.data_claim()),
                "tekton/qa-model-taskrun.yaml": dump_yaml(tekton.task_run(model, prompt_value, qa.image, qa.secret)),
            }
        )
        return files
    finally:
        os.chdir(cwd)
        os.environ.clear()
        os.environ.update(saved)


def comparable(text: str) -> list:
    """The documents with pickled bytes masked: cloudpickle output differs run to run (class
    tracker ids), so a pickled payload is compared by everything except its bytes."""
    docs = list(yaml.safe_load_all(text))
    for doc in docs:
        if doc.get("kind") == "Workflow":
            _mask_workflow(doc)
    return docs


def _mask_workflow(doc: dict) -> None:
    for template in doc["spec"]["templates"]:
        for art in (template.get("inputs") or {}).get("artifacts") or []:
            if art["name"] == "payload":
                payload = json.loads(art["raw"]["data"])
                if payload["format"] == "pickle":
                    payload["data"] = payload["sha256"] = "<pickle>"
                art["raw"]["data"] = payload


def main(argv: list[str]) -> int:
    stale = []
    for name, text in render_all().items():
        path = ROOT / name
        if path.is_file() and comparable(path.read_text(encoding="utf-8")) == comparable(text):
            continue
        stale.append(name)
        if "--check" not in argv:
            path.parent.mkdir(exist_ok=True)
            path.write_text(text, encoding="utf-8")
    if stale:
        print(("out of date: " if "--check" in argv else "rewrote: ") + ", ".join(stale))
        return 1 if "--check" in argv else 0
    print("workflows/ and tekton/ are up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

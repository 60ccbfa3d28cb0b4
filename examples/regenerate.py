"""Regenerate workflows/ from examples/ (run from the repository root):

    python examples/regenerate.py          # rewrite what changed
    python examples/regenerate.py --check  # exit 1 if workflows/ is out of date

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
EXAMPLES = {
    "qa": ("examples/qa.py:chain", {}),
    "parallel": ("examples/parallel.py:chain", {}),
    "retrieval": ("examples/retrieval.py:chain", {"allow_pickle": True}),
}


def render_all() -> dict[str, str]:
    """{file name: YAML} for every example, compiled in a clean, fixed environment."""
    import llmstep
    from llmstep.refs import load_reference

    saved = dict(os.environ)
    cwd = os.getcwd()
    try:
        for key in [k for k in os.environ if k.startswith(("OPENAI_", "AZURE_OPENAI_"))]:
            del os.environ[key]
        os.environ["OPENAI_API_KEY"] = PLACEHOLDER_KEY
        os.chdir(ROOT)
        return {
            f"{name}.yaml": llmstep.compile(load_reference(ref), name=name, **opts).to_yaml()
            for name, (ref, opts) in EXAMPLES.items()
        }
    finally:
        os.chdir(cwd)
        os.environ.clear()
        os.environ.update(saved)


def comparable(text: str) -> dict:
    """The document with pickled bytes masked: cloudpickle output differs run to run (class
    tracker ids), so a pickled payload is compared by everything except its bytes."""
    doc = yaml.safe_load(text)
    for template in doc["spec"]["templates"]:
        for art in (template.get("inputs") or {}).get("artifacts") or []:
            if art["name"] == "payload":
                payload = json.loads(art["raw"]["data"])
                if payload["format"] == "pickle":
                    payload["data"] = payload["sha256"] = "<pickle>"
                art["raw"]["data"] = payload
    return doc


def main(argv: list[str]) -> int:
    out_dir = ROOT / "workflows"
    stale = []
    for name, text in render_all().items():
        path = out_dir / name
        if path.is_file() and comparable(path.read_text(encoding="utf-8")) == comparable(text):
            continue
        stale.append(name)
        if "--check" not in argv:
            out_dir.mkdir(exist_ok=True)
            path.write_text(text, encoding="utf-8")
    if stale:
        print(("out of date: " if "--check" in argv else "rewrote: ") + ", ".join(stale))
        return 1 if "--check" in argv else 0
    print("workflows/ is up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

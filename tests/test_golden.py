"""workflows/ holds the generated Workflows of examples/; they must match what the code makes.

Regenerate with: python examples/regenerate.py
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys

from conftest import ROOT
from schemas import ARGO_VERSIONS, argo_errors


def _regenerate_module():
    spec = importlib.util.spec_from_file_location("regenerate", ROOT / "examples" / "regenerate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_dirs_match_what_the_code_generates():
    regen = _regenerate_module()
    generated = regen.render_all()
    committed = sorted(f"{d}/{p.name}" for d in ("workflows", "tekton") for p in (ROOT / d).glob("*.yaml"))
    assert committed == sorted(generated), "run: python examples/regenerate.py"
    for name, text in generated.items():
        on_disk = (ROOT / name).read_text()
        assert regen.comparable(on_disk) == regen.comparable(text), f"{name} is stale: python examples/regenerate.py"


def test_golden_workflows_are_valid_and_hold_no_key():
    regen = _regenerate_module()
    import yaml

    for path in [*(ROOT / "workflows").glob("*.yaml"), *(ROOT / "tekton").glob("*.yaml")]:
        assert regen.PLACEHOLDER_KEY not in path.read_text()
    argo_docs = 0
    for path in (ROOT / "workflows").glob("*.yaml"):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc["kind"] in ("Workflow", "WorkflowTemplate"):
                argo_docs += 1
                for version in ARGO_VERSIONS:
                    assert argo_errors(doc, version) == [], path.name
    assert argo_docs == 4


def test_rbac_is_least_privilege():
    import yaml

    roles = [
        d
        for p in [*(ROOT / "workflows").glob("*rbac*.yaml"), *(ROOT / "tekton").glob("rbac.yaml")]
        for d in yaml.safe_load_all(p.read_text())
        if d["kind"] == "Role"
    ]
    assert {r["metadata"]["name"] for r in roles} == {"llmstep-diagnose", "llmstep-submitter"}
    for role in roles:
        for rule in role["rules"]:
            assert "secrets" not in rule["resources"] and "*" not in rule["resources"] and "*" not in rule["verbs"]
    diagnose = next(r for r in roles if r["metadata"]["name"] == "llmstep-diagnose")
    readable = {res for rule in diagnose["rules"] for res in rule["resources"] if "get" in rule["verbs"]}
    assert {"pods", "pods/log", "events", "deployments", "replicasets", "jobs"} <= readable


def test_regenerate_check_command_passes():
    result = subprocess.run(
        [sys.executable, "examples/regenerate.py", "--check"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr

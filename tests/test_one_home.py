"""Each fact has one home: a phase, a step's file name and a run record's file are written once,
in the module that owns them, and imported everywhere else.

The scan reads every module of llmstep with ``ast``: a string that is exactly a phase or a file
name, or a path joined (``/``) with the name of a record's folder, outside that name's home is a
copy. A copy drifts from its home; import the name instead. The few strings that are the same
word in another vocabulary are listed below, each with its reason.
"""

from __future__ import annotations

import ast

from conftest import ROOT

from llmstep import contract
from llmstep.local import records

CONTRACT = "llmstep/contract.py"
RECORDS = "llmstep/local/records.py"

WORDS = {
    **{phase.value: CONTRACT for phase in contract.Phase},
    **{
        name: CONTRACT
        for name in (
            contract.PAYLOAD,
            contract.INPUT,
            contract.OUTPUT,
            contract.PREVIEW,
            contract.USAGE,
            contract.ERROR,
        )
    },
    **{name: RECORDS for name in (records.WORKFLOW, records.PREVIOUS_WORKFLOW, records.STATUS, records.LOG)},
}
"""Strings that, written whole anywhere, are a phase or a file name: their homes."""
PATH_PARTS = {
    **{
        name: RECORDS
        for name in (records.STEPS, records.DATA, records.LOCK, records.PINNED, records.PID, records.WORKSPACES)
    },
    contract.INPUT_DIR: CONTRACT,
    "values": "llmstep/local/values.py",
}
"""Plain words ("data", "steps") that are a record's or a step's folder when a path is joined with them."""

SAME_WORD_ELSEWHERE = {
    ("llmstep/cluster/kube.py", "Succeeded"): "a Kubernetes Pod's phase (status.phase), not a workflow's",
    ("llmstep/cluster/kube.py", "Failed"): "a Kubernetes Pod's phase (status.phase), not a workflow's",
    ("llmstep/cluster/kube.py", "Running"): "a Kubernetes Pod's phase (status.phase), not a workflow's",
    ("llmstep/cluster/fake.py", "Pending"): "the phase a new Pod starts in (status.phase), as the API server writes it",
    ("llmstep/cluster/tekton.py", "Succeeded"): "the type of a Tekton condition (type: Succeeded), not a phase",
    ("llmstep/render/tekton.py", "Failed"): "the value of Tekton's $(tasks.status) that a finally task's when tests",
}
"""(module, string): why the string there is not a copy of the fact that has its home elsewhere."""


def copies(source: str, module: str) -> list[tuple[int, str, str]]:
    """``(line, string, home)`` of each copy in ``source`` (the module ``module``, relative to the
    repository) of a fact whose home is another module."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in WORDS:
            found.append((node.lineno, node.value, WORDS[node.value]))
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            part = node.right
            if isinstance(part, ast.Constant) and isinstance(part.value, str) and part.value in PATH_PARTS:
                found.append((node.lineno, part.value, PATH_PARTS[part.value]))
    return sorted((line, text, home) for line, text, home in found if home != module)


def _modules() -> dict[str, str]:
    return {
        path.relative_to(ROOT).as_posix(): path.read_text(encoding="utf-8")
        for path in sorted((ROOT / "llmstep").rglob("*.py"))
    }


def test_phases_and_file_names_are_written_only_in_their_homes():
    stray, excused = [], set()
    for module, source in _modules().items():
        for line, text, home in copies(source, module):
            if (module, text) in SAME_WORD_ELSEWHERE:
                excused.add((module, text))
                continue
            stray.append(f"{module}:{line}: {text!r} is written in {home}; import it from there")
    assert not stray, "\n".join(stray)
    assert excused == set(SAME_WORD_ELSEWHERE), f"exceptions no longer needed: {set(SAME_WORD_ELSEWHERE) - excused}"


def test_every_home_names_its_facts():
    """The homes hold what the scan looks for (a renamed constant would make it find nothing)."""
    sources = _modules()
    for text, home in {**WORDS, **PATH_PARTS}.items():
        assert repr(text).replace("'", '"') in sources[home], f"{text!r} is not written in {home}"


def test_the_scan_finds_a_planted_copy_and_nothing_else():
    planted = '''
"""A docstring that says Failed, status.json and steps/<task>/log.txt is prose, not a copy."""
from pathlib import Path

def f(record, spec, data: Path):
    if record["phase"] == "Failed":
        return data / "output.json"
    log = record.root / "steps" / "t" / "log.txt"
    steps = spec.get("steps")
    return (record.root / "status.json", spec["data"], log, steps)
'''
    found = [(line, text) for line, text, _ in copies(planted, "llmstep/somewhere.py")]
    assert found == [(6, "Failed"), (7, "output.json"), (8, "log.txt"), (8, "steps"), (10, "status.json")]
    assert copies(planted, RECORDS) == [
        (6, "Failed", CONTRACT),
        (7, "output.json", CONTRACT),
    ]  # the home may spell its own


def test_a_planted_copy_in_the_package_fails_the_scan():
    module = "llmstep/local/progress.py"
    source = _modules()[module] + '\n\ndef _phase_again(node):\n    return node.phase == "Succeeded"\n'
    assert [text for _, text, _ in copies(source, module)] == ["Succeeded"]

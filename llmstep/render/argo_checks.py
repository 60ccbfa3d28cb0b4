"""What the Argo schema cannot check: name formats and references between templates and tasks.

Hera does not check names either; without this, a bad name or a dangling reference fails only
when the workflow controller reaches it.
"""

from __future__ import annotations

import re
from typing import Any

from llmstep.errors import RenderError
from llmstep.naming import MAX, TASK_NAME
from llmstep.render.cycles import find_cycle

_TASK_REF = re.compile(r"\{\{\s*tasks\.([^.}\s]+)\.")
_DEPENDS_WORD = re.compile(r"[A-Za-z0-9][-A-Za-z0-9]*(?:\.[A-Za-z]+)?")
_DEPENDS_KEYWORDS = {"&&", "||", "!"}


def check_workflow(doc: dict[str, Any]) -> None:
    """Raise RenderError naming the first bad name or dangling reference in an Argo Workflow."""
    spec = doc.get("spec") or {}
    templates = spec.get("templates") or []
    names = [t.get("name", "") for t in templates]
    for name in names:
        _name(name, TASK_NAME, "template")
    if len(set(names)) != len(names):
        raise RenderError(f"template names repeat: {sorted(n for n in set(names) if names.count(n) > 1)}")
    for ref_field in ("entrypoint", "onExit"):
        ref = spec.get(ref_field)
        if ref is not None and ref not in names:
            raise RenderError(f"spec.{ref_field} names template {ref!r}, which does not exist")
    for template in templates:
        dag = template.get("dag")
        if dag:
            _check_dag(template["name"], dag.get("tasks") or [], set(names))


def _check_dag(owner: str, tasks: list[dict[str, Any]], templates: set[str]) -> None:
    task_names = [t.get("name", "") for t in tasks]
    for name in task_names:
        _name(name, TASK_NAME, f"task in template {owner!r}")
    if len(set(task_names)) != len(task_names):
        raise RenderError(f"template {owner!r} has repeated task names")
    known = set(task_names)
    found = find_cycle({task["name"]: sorted(_depends_targets(task)) for task in tasks})
    if found:  # Argo's validation refuses the Workflow in these words (workflow/validate)
        raise RenderError(f"templates.{owner}.tasks dependency cycle detected: {'->'.join(found)}")
    for task in tasks:
        where = f"task {task['name']!r} of template {owner!r}"
        if task.get("template") not in templates:
            raise RenderError(f"{where} uses template {task.get('template')!r}, which does not exist")
        deps = _depends_targets(task)
        for dep in deps:
            if dep not in known:
                raise RenderError(f"{where} depends on {dep!r}, which is not a task of {owner!r}")
        for ref in _TASK_REF.findall(repr(task.get("arguments") or {}) + str(task.get("when") or "")):
            if ref not in deps:
                raise RenderError(f"{where} reads outputs of task {ref!r} without depending on it")


def _depends_targets(task: dict[str, Any]) -> set[str]:
    targets = set(task.get("dependencies") or [])
    expr = task.get("depends") or ""
    for word in _DEPENDS_WORD.findall(expr.replace("(", " ").replace(")", " ")):
        targets.add(word.split(".")[0])
    return targets - _DEPENDS_KEYWORDS


def _name(name: str, pattern: re.Pattern[str], what: str) -> None:
    if not name or len(name) > MAX or not pattern.match(name):
        raise RenderError(f"{what} name {name!r} is invalid: Argo needs {pattern.pattern}, at most {MAX} characters")

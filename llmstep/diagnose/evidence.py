"""Evidence about a failed object, as titled sections of text and titled manifests, and how it is
rendered for the model (redacted, within its budget). Evidence comes from text (a manifest, a log)
with no cluster at all, from an exit handler's view of a run (Argo's ``{{workflow.failures}}``,
Tekton's task statuses), or from the Kubernetes API (:mod:`llmstep.diagnose.collector`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from llmstep import jsonio
from llmstep.diagnose.anonymize import names_in
from llmstep.diagnose.budget import fit, size, trim
from llmstep.diagnose.settings import EVIDENCE_BYTES
from llmstep.errors import UsageError

_KIND_NAMES = {"pipelinerun": "PipelineRun", "taskrun": "TaskRun", "workflow": "Workflow"}


@dataclass
class Evidence:
    """What is known about a target, as titled sections of text lines."""

    target: str
    sections: list[tuple[str, list[str]]] = field(default_factory=list)
    names: list[tuple[str, str]] = field(default_factory=list)
    objects: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    """Titled manifests and trimmed specs, redacted structurally (Secret data, secret-named keys,
    env and parameters) when rendered."""

    def add(self, title: str, lines: list[str]) -> None:
        if lines:
            self.sections.append((title, lines))

    def add_object(self, title: str, obj: dict[str, Any]) -> None:
        """A manifest or a trimmed spec; what it names (namespaces, containers, hosts) is known
        to ``--anonymize``."""
        self.objects.append((title, obj))
        self.names.extend(names_in(obj))

    def merge(self, other: Evidence) -> None:
        self.sections += other.sections
        self.objects += other.objects
        self.names += other.names

    def render(self, redactor: Any, budget: int = EVIDENCE_BYTES) -> str:
        """The evidence as text with every secret removed (objects first, then the sections), in
        ``budget`` bytes: the structures are redacted whole, then the text is cut to the budget
        (:mod:`llmstep.diagnose.budget`), then the rest of redaction reads what is left."""
        import yaml

        parts = [
            f"## {title}\n{yaml.safe_dump(redactor.obj(_trim(o, budget)), sort_keys=False, allow_unicode=True)}"
            for title, o in self.objects
        ]
        parts += [f"## {title}\n" + "\n".join(lines) for title, lines in self.sections]
        return redactor.detect("\n\n".join(fit([redactor.structure(part) for part in parts], budget)))


def _trim(obj: dict[str, Any], budget: int) -> dict[str, Any]:
    """Drop what only adds noise (managedFields), and cut a string longer than the whole budget
    (a 5 MB ConfigMap value) before it is read."""
    meta = {k: v for k, v in (obj.get("metadata") or {}).items() if k != "managedFields"}
    return _cut_strings({**obj, "metadata": meta} if obj.get("metadata") else obj, budget)


def _cut_strings(node: Any, budget: int) -> Any:
    if isinstance(node, str) and size(node) > budget:
        return trim(node, budget, budget)
    if isinstance(node, dict):
        return {k: _cut_strings(v, budget) for k, v in node.items()}
    if isinstance(node, list):
        return [_cut_strings(v, budget) for v in node]
    return node


def from_text(text: str, source: str) -> Evidence:
    """Evidence from manifests or any text (the no-cluster mode). Each YAML document is read on
    its own: one that is not valid YAML (a tab, say) is kept as text, and never stops the
    structural redaction of the others."""
    import yaml

    from llmstep.yamlio import load

    evidence = Evidence(target=source)
    chunks = _DOCUMENT_START.split(text)
    parsed: list[Any] = []
    for number, chunk in enumerate(chunks, 1):
        try:
            parsed.append(load(chunk, f"{source}, document {number}"))
        except yaml.YAMLError:
            parsed.append(_NOT_YAML)
    if not any(isinstance(doc, dict) for doc in parsed):
        evidence.add(f"provided {source}", text.splitlines())  # a log, not manifests
        return evidence
    for number, (chunk, doc) in enumerate(zip(chunks, parsed, strict=True), 1):
        if isinstance(doc, dict):
            meta = doc.get("metadata")
            meta = meta if isinstance(meta, dict) else {}
            title = f"manifest {doc.get('kind', 'object')}/{meta.get('name', '')}".rstrip("/")
            evidence.add_object(title, doc)
        elif doc is not None:
            note = " (not valid YAML)" if doc is _NOT_YAML else ""
            evidence.add(f"provided {source}, document {number}{note}", chunk.strip("\n").splitlines())
    return evidence


_DOCUMENT_START = re.compile(r"(?m)^---[ \t]*(?:#.*)?(?:\n|$)")
_NOT_YAML = object()


def from_workflow_failures(failures_json: str, workflow: str) -> Evidence:
    """Evidence from an Argo exit handler's ``{{workflow.failures}}`` (no API access needed)."""
    evidence = Evidence(target=f"workflow/{workflow}", names=[("Workflow", workflow)])
    try:
        failures = jsonio.loads(failures_json or "[]") or []
        if isinstance(failures, str):  # Argo v4 quotes the JSON list once more (strconv.Quote)
            failures = jsonio.loads(failures or "[]") or []
        if not isinstance(failures, list) or not all(isinstance(f, dict) for f in failures):
            raise ValueError("not a list of nodes")
    except jsonio.TooDeep as exc:
        raise UsageError(f"--workflow-failures: {exc}; pass Argo's {{{{workflow.failures}}}} as it is") from None
    except ValueError:
        failures = []
        evidence.add("workflow failures (unparsed)", failures_json.splitlines())
    lines = []
    for f in sorted(failures, key=lambda f: str(f.get("finishedAt") or "")):
        evidence.names.append(("Pod", str(f.get("podName") or "")))
        lines.append(
            f"node {f.get('displayName')} (template {f.get('templateName')}): phase {f.get('phase')}, "
            f"message: {f.get('message')}, pod {f.get('podName')}, finished {f.get('finishedAt')}"
        )
    evidence.add(f"failed nodes of workflow {workflow}", lines)
    return evidence


def from_task_statuses(statuses_json: str, target: str) -> Evidence:
    """Evidence from a Tekton finally task's ``$(tasks.X.status)`` map (no API access needed)."""
    kind, _, name = target.partition("/")
    evidence = Evidence(target=target, names=[(_KIND_NAMES.get(kind.lower(), kind or "object"), name)])
    try:
        statuses = jsonio.loads(statuses_json or "{}") or {}
        if not isinstance(statuses, dict):
            raise ValueError("not a map of task to status")
    except jsonio.TooDeep as exc:
        raise UsageError(f"--task-statuses: {exc}; pass a map of task name to status") from None
    except ValueError:
        statuses = {}
        evidence.add("task statuses (unparsed)", statuses_json.splitlines())
    evidence.add(f"task statuses of {target}", [f"task {t}: {s}" for t, s in statuses.items()])
    return evidence

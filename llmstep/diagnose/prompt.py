"""The question put to the model, in the prompt types of KubeVela's chat-gpt step."""

from __future__ import annotations

from llmstep.diagnose import settings
from llmstep.errors import DiagnosisError, UsageError

TYPES = settings.PROMPTS

_ANSWER = (
    "Answer with one JSON object and nothing else, with these keys: "
    '"summary" (one or two sentences), "root_cause" (string), '
    '"evidence" (list of the evidence lines your answer rests on, quoted exactly), '
    '"fix_steps" (list of objects {"description": string, "command": string or null}, with kubectl '
    "commands or patches where they apply), "
    '"confidence" (number from 0 to 1)'
)
_TASKS = {
    "diagnose": "A Kubernetes object, workflow or pipeline failed. Find what is wrong and how to fix it.",
    "audit": "Audit this Kubernetes object for security misconfigurations (privileges, secrets handling, "
    "network exposure, images, RBAC) and say how to fix each.",
    "quality-gate": "Judge whether this object is healthy and well configured enough to promote. Also "
    'give "score": an integer from 0 (unusable) to 100 (excellent).',
}


def messages(
    evidence: str, kind: str = "diagnose", lang: str | None = None, custom: str | None = None
) -> list[dict[str, str]]:
    """Chat messages for ``kind``; ``custom`` is the user's prompt, with ``{evidence}`` where the
    evidence goes (appended when the placeholder is missing)."""
    if kind not in TYPES:
        raise DiagnosisError(f"prompt type {kind!r} is not one of {', '.join(TYPES)}")
    system = "You are an expert in Kubernetes, Argo Workflows and Tekton. Base your answer only on the evidence."
    language = f" Write every text value in {lang}." if lang else ""
    if kind == "custom":
        if not custom:
            raise UsageError("prompt type custom needs the prompt text (--custom-prompt)")  # a usage error: exit 2
        body = (
            custom.replace("{evidence}", evidence) if "{evidence}" in custom else f"{custom}\n\nEvidence:\n{evidence}"
        )
        return [{"role": "system", "content": f"{system} {_ANSWER}.{language}"}, {"role": "user", "content": body}]
    task = _TASKS[kind]
    score = ' Include "score".' if kind == "quality-gate" else ""
    return [
        {"role": "system", "content": f"{system} {_ANSWER}.{score}{language}"},
        {"role": "user", "content": f"{task}\n\nEvidence (secrets removed):\n{evidence}"},
    ]

"""Evidence for a diagnosis from what an exit handler sees of a run: a workflow's failures."""

from __future__ import annotations

import json

from llmstep.diagnose import Redactor
from llmstep.diagnose.evidence import from_workflow_failures


def test_workflow_failures_become_evidence():
    failures = json.dumps(
        [
            {
                "displayName": "ChatOpenAI",
                "templateName": "chatopenai",
                "phase": "Failed",
                "message": "AuthenticationError (exit code 1)",
                "podName": "qa-1",
                "finishedAt": "t",
            }
        ]
    )
    text = from_workflow_failures(failures, "qa-x").render(Redactor())
    assert "node ChatOpenAI (template chatopenai): phase Failed, message: AuthenticationError" in text

"""Submission errors that need no cluster: how refusals are translated."""

import json

import llmstep
from llmstep.run.argo import api_error


class Refusal:
    def __init__(self, status, message):
        self.status, self.body = status, json.dumps({"message": message})


def test_missing_crd_says_how_to_check():
    err = api_error(Refusal(404, "the server could not find the requested resource"), "creating the workflow")
    assert isinstance(err, llmstep.SubmissionError) and err.exit_code == 1
    assert "is the Argo Workflows CRD installed" in str(err) and "could not find" in str(err)


def test_forbidden_names_the_permission():
    err = api_error(Refusal(403, 'workflows.argoproj.io is forbidden: User "x" cannot create'), "creating")
    assert "needs create/get/patch on workflows.argoproj.io" in str(err)

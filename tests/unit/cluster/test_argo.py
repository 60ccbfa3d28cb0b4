"""Submission errors that need no cluster: how refusals are translated."""

import json

import pytest

import llmstep
from llmstep.cluster.argo import api_error


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


def test_submit_batch_on_tekton_is_refused_with_the_reason():
    from chains import qa_chain

    import llmstep
    from llmstep.errors import LlmstepError

    with pytest.raises(LlmstepError, match="submit_batch runs on Argo only .*one PipelineRun per input"):
        llmstep.compile(qa_chain()).submit_batch([{"question": "a"}], engine="tekton")


def test_tekton_submit_refuses_argo_server_options():
    from chains import qa_chain

    import llmstep
    from llmstep.errors import LlmstepError

    with pytest.raises(LlmstepError, match="argo_server is for the Argo Server"):
        llmstep.compile(qa_chain()).submit({"question": "a"}, engine="tekton", argo_server="http://127.0.0.1:1")
    with pytest.raises(LlmstepError, match="engine must be 'argo' or 'tekton'"):
        llmstep.compile(qa_chain()).submit({"question": "a"}, engine="kfp")

"""How a refusal through a transport is worded (the hints of llmstep.cluster.transports): the
server's own message with llmstep's words for it, here through the Argo Server's REST API against a
loopback server that stands in for it (tests/argo_server.py)."""

from __future__ import annotations

import pytest
from argo_server import TOKEN
from chains import qa_chain

import llmstep


def test_refusals_carry_the_servers_message(server):
    compiled = llmstep.compile(qa_chain())
    with pytest.raises(llmstep.SubmissionError) as err:
        compiled.submit({"question": "x"}, namespace="argo", argo_server=server.url, token="wrong")
    assert "unauthorized: pass token= or set ARGO_TOKEN" in str(err.value) and "token not valid" in str(err.value)
    with pytest.raises(llmstep.SubmissionError) as err:
        compiled.submit({"question": "x"}, namespace="forbidden", argo_server=server.url, token=TOKEN)
    assert "forbidden: the account needs create" in str(err.value) and 'cannot create resource "workflows"' in str(
        err.value
    )
    with pytest.raises(llmstep.SubmissionError, match="cannot reach the Argo Server at http://127.0.0.1:9/"):
        compiled.submit({"question": "x"}, argo_server="http://127.0.0.1:9", token=TOKEN)

"""Steps in containers (--isolation container) without podman: a clear error when the engine is
missing; the command that would run a step."""

from __future__ import annotations

import pytest
from chains import qa_chain

import llmstep
from llmstep.local.entry import run_document


def test_container_isolation_without_the_engine_is_a_clear_error(tmp_path):
    from llmstep.local.container import Isolation

    with pytest.raises(llmstep.WorkflowError, match="needs llmstep-no-such-engine, which is not installed"):
        run_document(llmstep.compile(qa_chain()).to_dict(), {"question": "q"}, runs_dir=tmp_path / "r", quiet=True,
                     isolation=Isolation("container", "llmstep-no-such-engine"))

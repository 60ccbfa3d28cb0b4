"""The names the engines accept: DNS labels for templates, tasks and Tekton objects, Argo task names
that may use capitals, and a chain's name with room for what the API server appends."""

from __future__ import annotations

import pytest

from llmstep.naming import BATCH_INFIX, CHAIN_NAME_MAX, DNS_LABEL, GENERATED_SUFFIX, MAX, RESERVED, TASK_NAME


@pytest.mark.parametrize(
    ("name", "label", "task"),
    [
        ("a", True, True),
        ("chat-openai-2", True, True),
        ("ChatOpenAI", False, True),
        ("-a", False, False),
        ("a-", False, True),
        ("a_b", False, False),
        ("a.b", False, False),
        ("", False, False),
    ],
)
def test_dns_labels_are_lowercase_and_argo_task_names_may_use_capitals(name, label, task):
    assert bool(DNS_LABEL.match(name)) is label
    assert bool(TASK_NAME.match(name)) is task


def test_a_chain_name_leaves_room_for_the_batch_infix_and_the_generated_suffix():
    assert MAX == 63
    longest = "c" * CHAIN_NAME_MAX
    generated = f"{longest}{BATCH_INFIX}" + "x" * GENERATED_SUFFIX
    assert len(generated) == MAX and DNS_LABEL.match(generated)


def test_the_renderers_own_names_are_reserved():
    from llmstep.render.tekton_tasks import DIAGNOSE_TASK

    assert {"input", "main", "exit-handler", "diagnose"} == RESERVED
    assert DIAGNOSE_TASK.removeprefix("llmstep-") in RESERVED

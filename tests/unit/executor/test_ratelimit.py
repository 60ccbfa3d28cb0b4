"""A model step under rate limits: its HTTP request is retried on 429/503/529, waiting at least
what Retry-After asks, within the step's bound; other errors are not retried; a step still rate
limited exits 75, which retries= retries. The model is a real OpenAI-compatible server on loopback
(tests/openai_server.py) standing in for a provider's rate limits."""

from __future__ import annotations

import email.utils
import json
import time

import pytest
from chains import qa_prompt
from conftest import exec_step, write_step
from langchain_core.output_parsers import StrOutputParser
from openai_server import FakeOpenAI

import llmstep
from llmstep import contract, exitcodes
from llmstep.executor import ratelimit
from llmstep.local.argo_workflow import Retry
from llmstep.render import argo as render_argo

KEY = {"OPENAI_API_KEY": "sk-test"}


def model(server):
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(model="m", api_key="sk-placeholder", base_url=server.url)


def model_step(tmp_path, server, rate_limit=None, env=None):
    """``llmstep exec`` of one model step on a prompt's output, in its own process; its result."""
    chain = llmstep.Step(model(server), name="ask", **({"rate_limit": rate_limit} if rate_limit is not None else {}))
    plan = llmstep.compile(chain).plan
    [step] = plan.steps
    step_env = {name: value for name, value in step.settings.env}
    d = write_step(tmp_path / "s", step.payload, json.dumps("hi"))
    return d, exec_step(d, {**KEY, **step_env, **(env or {})})


def gaps(server):
    times = [r["at"] for r in server.requests]
    return [b - a for a, b in zip(times[:-1], times[1:], strict=True)]


def test_a_model_step_waits_out_429s_at_least_as_long_as_retry_after_asks(tmp_path):
    with FakeOpenAI() as server:
        server.failures = [(429, {"retry-after": "0.4"}), (529, {"retry-after-ms": "300"}), (503, {})]
        d, result = model_step(tmp_path, server)
    assert result.returncode == 0, result.stderr
    assert "echo: hi" in (d / "preview.txt").read_text()
    assert len(server.requests) == 4
    first, second, _ = gaps(server)
    assert first >= 0.4 and second >= 0.3
    assert "the model answered 429 (attempt 1 of 8): retrying" in result.stderr
    # the same request each time: the SDK's idempotency key, not a new call of the Runnable
    assert len({r["headers"].get("idempotency-key") for r in server.requests}) == 1


@pytest.mark.parametrize("status", [400, 401, 500])
def test_other_errors_are_not_retried(tmp_path, status):
    with FakeOpenAI() as server:
        server.failures = [status, status, status]
        d, result = model_step(tmp_path, server)
    assert result.returncode == exitcodes.EXIT_RUNNABLE_FAILED, result.stderr
    assert len(server.requests) == 1  # neither llmstep nor the SDK (which would retry a 500 twice) sent it again
    assert json.loads((d / "error.json").read_text())["exit_code"] == 1


def test_a_dropped_connection_is_not_retried(tmp_path):
    with FakeOpenAI() as server:
        server.failures = [0, 0, 0]
        _, result = model_step(tmp_path, server)
    assert result.returncode == 1, result.stderr
    assert "APIConnectionError" in result.stderr
    assert len(server.requests) == 1  # the SDK would have tried twice more


def test_a_step_still_rate_limited_exits_75(tmp_path):
    with FakeOpenAI() as server:
        server.failures = [(429, {"retry-after": "0.1"})] * 6
        d, result = model_step(tmp_path, server, llmstep.RateLimit(max_attempts=4, max_wait=10))
    assert result.returncode == exitcodes.EXIT_RATE_LIMITED == 75, result.stderr
    assert len(server.requests) == 4  # the bound, not the SDK's own three
    error = json.loads((d / "error.json").read_text())
    assert error["exit_code"] == 75 and error["type"].endswith("RateLimitError")
    assert "still rate limited" in error["message"]


def test_a_retry_after_past_max_wait_gives_up_at_once(tmp_path):
    with FakeOpenAI() as server:
        server.failures = [(429, {"retry-after": "30"})] * 2
        started = time.monotonic()
        _, result = model_step(tmp_path, server, llmstep.RateLimit(max_attempts=5, max_wait=1))
    assert result.returncode == 75, result.stderr
    assert len(server.requests) == 1 and time.monotonic() - started < 25
    assert "past the step's max_wait" in result.stderr


def test_rate_limit_off_leaves_the_sdk_retries_as_they_are(tmp_path):
    with FakeOpenAI() as server:
        server.failures = [(500, {"retry-after": "0"})]
        _, result = model_step(tmp_path, server, False)
    assert result.returncode == 0, result.stderr
    assert len(server.requests) == 2  # the SDK's own retry of a 500


def test_a_bad_rate_limit_setting_is_exit_2(tmp_path):
    with FakeOpenAI() as server:
        d, result = model_step(tmp_path, server, env={contract.RATE_LIMIT_ENV: "max_attempts=0"})
    assert result.returncode == 2 and not server.requests
    assert contract.RATE_LIMIT_ENV in json.loads((d / "error.json").read_text())["message"]


@pytest.mark.parametrize("engine", ["argo", "tekton"])
def test_retries_retry_a_rate_limited_step_locally_and_argo_renders_it(tmp_path, engine):
    with FakeOpenAI() as server:
        server.failures = [(429, {"retry-after": "0.1"})] * 2
        chain = (
            qa_prompt()
            | llmstep.Step(
                model(server),
                name="ask",
                retries=1,
                backoff="0s",
                rate_limit=llmstep.RateLimit(max_attempts=2, max_wait=5),
            )
            | StrOutputParser()
        )
        compiled = llmstep.compile(chain)
        out = compiled.run_local({"question": "q"}, engine=engine, secrets=KEY, runs_dir=tmp_path / "r")
    assert out == "echo: q" and len(server.requests) == 3
    [run] = (tmp_path / "r").iterdir()
    node = json.loads((run / "status.json").read_text())["nodes"]["ask"]
    assert node["attempts"] == 2
    template = next(t for t in compiled.to_dict()["spec"]["templates"] if t["name"] == "ask")
    assert template["retryStrategy"]["expression"] == render_argo.RETRY_WHEN
    assert {"name": contract.RATE_LIMIT_ENV, "value": "max_attempts=2,max_wait=5"} in template["container"]["env"]


def test_the_retry_expression_retries_75_and_1_but_not_bad_input():
    strategy = Retry(limit=3, policy="OnFailure", expression=render_argo.RETRY_WHEN)
    decided = {code: strategy.should_retry(code, "Failed", 1.0) for code in (1, 2, 3, 75)}
    assert decided == {1: True, 2: False, 3: False, 75: True}


def test_twenty_parallel_model_steps_against_a_server_admitting_four(tmp_path):
    with FakeOpenAI(delay=1.5, admit=4, busy_after="0.3") as server:
        bound = llmstep.RateLimit(max_attempts=60, max_wait=60)
        chain = {f"b{i}": llmstep.Step(model(server), name=f"b{i}", rate_limit=bound) for i in range(20)}
        out = llmstep.compile(chain).run_local("hi", secrets=KEY, parallelism=20, runs_dir=tmp_path / "r")
    assert sorted(out) == sorted(f"b{i}" for i in range(20)) and {m.content for m in out.values()} == {"echo: hi"}
    [run] = (tmp_path / "r").iterdir()
    nodes = json.loads((run / "status.json").read_text())["nodes"]
    steps = {name: node for name, node in nodes.items() if name.startswith("b")}
    assert len(steps) == 20 and {(n["phase"], n["attempts"]) for n in steps.values()} == {("Succeeded", 1)}
    assert server.refused > 0 and len(server.requests) == 20 + server.refused  # the limit was hit, and waited out


def test_retry_after_reads_seconds_milliseconds_and_an_http_date():
    assert ratelimit.retry_after({"retry-after": "2"}) == 2.0
    assert ratelimit.retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    later = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 28 <= ratelimit.retry_after({"retry-after": later}) <= 31
    assert ratelimit.retry_after({"retry-after": "soon"}) is None and ratelimit.retry_after({}) is None


def test_the_backoff_is_capped_full_jitter_and_never_shorter_than_asked():
    policy = ratelimit.Policy()
    assert policy.delay(1, {}, rand=lambda: 1.0) == ratelimit.BASE_DELAY
    assert policy.delay(40, {}, rand=lambda: 1.0) == ratelimit.MAX_DELAY
    assert policy.delay(3, {}, rand=lambda: 0.0) == 0.0
    assert policy.delay(1, {"retry-after": "2"}, rand=lambda: 0.0) == 2.0
    assert 2.0 <= policy.delay(5, {"retry-after": "2"}) <= 2.5


def test_the_setting_round_trips_and_is_checked():
    assert contract.parse_rate_limit(llmstep.RateLimit(3, 2.5).env_value) == (3, 2.5)
    assert contract.parse_rate_limit(None) == (contract.RATE_LIMIT_ATTEMPTS, contract.RATE_LIMIT_WAIT)
    assert contract.parse_rate_limit("off") is None
    for bad in ({"max_attempts": 0}, {"max_wait": -1}, {"max_wait": float("inf")}, {"max_attempts": 1.5}):
        with pytest.raises(llmstep.CompileError):
            llmstep.RateLimit(**bad)
    with pytest.raises(llmstep.CompileError, match="rate_limit"):
        llmstep.Step(qa_prompt(), rate_limit=3)

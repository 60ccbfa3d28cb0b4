"""`llmstep exec`: the step contract, every exit code, in a real process with a pod-like env."""

from __future__ import annotations

import base64
import json
import os

import pytest
from chains import openai_chain, qa_chain, qa_prompt
from conftest import exec_step, write_step
from langchain_core.runnables import RunnableLambda

import llmstep
from llmstep import serde


def payload_of(chain, index=0, allow_pickle=False):
    return llmstep.compile(chain, allow_pickle=allow_pickle).plan.steps[index].payload


def test_prompt_step_writes_output_preview_and_usage(tmp_path):
    d = write_step(tmp_path / "s", payload_of(qa_chain()), json.dumps({"question": "what is a pod?"}))
    result = exec_step(d)
    assert result.returncode == 0, result.stderr
    value = serde.loads_value((d / "output.json").read_text())
    assert value.to_messages()[-1].content == "what is a pod?"
    assert "what is a pod?" in (d / "preview.txt").read_text()
    assert json.loads((d / "usage.json").read_text()) == {}
    assert "step=chatprompttemplate runnable=ChatPromptTemplate" in result.stderr


def test_model_step_reports_token_usage(tmp_path):
    prompt_value = qa_prompt().invoke({"question": "count these words"})
    d = write_step(tmp_path / "s", payload_of(qa_chain(), 1), serde.dumps_value(prompt_value))
    result = exec_step(d)
    assert result.returncode == 0, result.stderr
    usage = json.loads((d / "usage.json").read_text())
    assert usage["llmstep-offline"]["input_tokens"] == 5
    assert "tokens=llmstep-offline:in=5" in result.stderr


def test_fan_in_assembles_one_file_per_key(tmp_path):
    chain = {"a": qa_prompt(), "q": lambda d: d["question"]} | RunnableLambda(lambda d: [sorted(d), d["q"]])
    plan = llmstep.compile(chain, allow_pickle=True).plan
    consumer = plan.steps[-1]
    inputs = {"a-chatprompttemplate": serde.dumps_value("A"), "q-lambda": serde.dumps_value("Q")}
    if "q-runnablelambda" in consumer.sources:
        inputs = {"a-chatprompttemplate": serde.dumps_value("A"), "q-runnablelambda": serde.dumps_value("Q")}
    d = write_step(tmp_path / "s", consumer.payload, inputs)
    result = exec_step(d)
    assert result.returncode == 0, result.stderr
    assert serde.loads_value((d / "output.json").read_text()) == [["a", "q"], "Q"]


def test_raising_runnable_exits_1_with_error_json(tmp_path):
    def explode(x):
        raise ValueError("the model said no")

    d = write_step(tmp_path / "s", payload_of(RunnableLambda(explode), allow_pickle=True), '"x"')
    result = exec_step(d)
    assert result.returncode == 1
    error = json.loads((d / "error.json").read_text())
    assert error == {
        "step": "explode",
        "type": "ValueError",
        "message": "ValueError: the model said no",
        "exit_code": 1,
    }
    assert "the model said no" in result.stderr and "Traceback" in result.stderr
    assert not (d / "output.json").exists()


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        (lambda p, d: (d / "runnable.json").write_text("{not json"), "not valid JSON"),
        (lambda p, d: (d / "runnable.json").write_text(json.dumps({**p, "llmstep": 99})), "payload version 99"),
        (lambda p, d: (d / "input.json").unlink(), "input.json is missing"),
        (lambda p, d: (d / "input.json").write_text("{oops"), "input.json is not valid JSON"),
        (lambda p, d: (d / "input.json").write_text('["unclosed"'), "input.json is not valid JSON"),
        (
            lambda p, d: (d / "input.json").write_text('{"llmstep": 7, "kind": "value", "value": 1}'),
            "value format version 7",
        ),
        (lambda p, d: (d / "input.json").write_text('{"topic": "x"}'), "needs input keys ['question']"),
        (
            lambda p, d: (d / "runnable.json").write_text(json.dumps({**p, "allowed": []})),
            "not in the payload's allowlist",
        ),
        # hostile shapes: nested past the bound (json alone would stop with RecursionError, exit 70)
        (lambda p, d: (d / "input.json").write_text("[" * 50_000 + "]" * 50_000), "input.json: it nests arrays"),
        (lambda p, d: (d / "input.json").write_text('{"question": ' + "[" * 300 + "]" * 300 + "}"), "301 levels deep"),
        (
            lambda p, d: (d / "input.json").write_text(
                json.dumps({"llmstep": 1, "kind": "value", "value": "x"})[:-1]
                + ', "pad": '
                + '{"a": ' * 5000
                + "1"
                + "}" * 5000
                + "}"
            ),
            "input.json: it nests",
        ),
        (
            lambda p, d: (d / "runnable.json").write_text('{"a": ' + "[" * 20_000 + "]" * 20_000 + "}"),
            "runnable.json: it nests",
        ),
        # files of the wrong kind
        (lambda p, d: ((d / "input.json").unlink(), (d / "input.json").mkdir()), "input.json in the data directory"),
        (
            lambda p, d: ((d / "runnable.json").unlink(), (d / "runnable.json").mkdir()),
            "runnable.json in the data directory",
        ),
        (
            lambda p, d: ((d / "input.json").unlink(), os.mkfifo(d / "input.json")),
            "is a FIFO",
        ),  # reading it would block
    ],
)
def test_bad_payload_or_input_exits_2_with_a_message(tmp_path, mutate, fragment):
    payload = payload_of(qa_chain())
    d = write_step(tmp_path / "s", payload, json.dumps({"question": "q"}))
    mutate(payload, d)
    result = exec_step(d)
    assert result.returncode == 2, result.stderr
    assert fragment in result.stderr
    assert fragment in json.loads((d / "error.json").read_text())["message"]


def test_pickle_digest_mismatch_exits_2(tmp_path):
    payload = payload_of(RunnableLambda(lambda x: x), allow_pickle=True)
    blob = bytearray(base64.b64decode(payload["data"]))
    blob[-2] ^= 0xFF
    payload["data"] = base64.b64encode(bytes(blob)).decode()
    result = exec_step(write_step(tmp_path / "s", payload, '"x"'))
    assert result.returncode == 2 and "digest mismatch" in result.stderr


def test_missing_credentials_exit_3_naming_the_secret_key(tmp_path):
    payload = payload_of(openai_chain(), 1)
    d = write_step(tmp_path / "s", payload, serde.dumps_value(qa_prompt().invoke({"question": "q"})))
    result = exec_step(d)
    assert result.returncode == 3
    assert "OPENAI_API_KEY" in result.stderr and "kubectl create secret generic llm-credentials" in result.stderr


def test_missing_data_dir_is_exit_2(tmp_path):
    result = exec_step(tmp_path / "nowhere")
    assert result.returncode == 2 and "runnable.json is missing" in result.stderr


def test_executor_imports_only_what_the_payload_needs(tmp_path):
    """A prompt step must not import hera, kubernetes, openai or the renderers (start-up cost)."""
    import subprocess
    import sys

    d = write_step(tmp_path / "s", payload_of(qa_chain()), json.dumps({"question": "q"}))
    code = (
        "import sys; from llmstep.cli.main import main\n"
        f"rc = main(['exec', '--data-dir', {str(d)!r}])\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules if m.split('.')[0] in "
        "('hera', 'kubernetes', 'openai', 'langchain_openai', 'cloudpickle', 'jsonschema')})\n"
        "mine = sorted(m for m in sys.modules if m.startswith(('llmstep.render', 'llmstep.local', 'llmstep.compil')))\n"
        "print(rc, heavy, mine)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "0 [] []"


def test_lone_surrogate_in_a_step_input_is_exit_2_with_error_json_and_no_output(tmp_path):
    d = write_step(tmp_path / "s", payload_of(qa_chain()), '{"question": "half an emoji \\ud83d"}')
    result = exec_step(d)
    assert result.returncode == 2, result.stderr
    error = json.loads((d / "error.json").read_text())
    assert "lone surrogate" in error["message"] and "chatprompttemplate" in error["message"]
    assert not (d / "output.json").exists()


def test_an_output_past_the_file_size_limit_fails_the_step_naming_the_file(tmp_path):
    """RLIMIT_FSIZE (ulimit -f) in the step's own process: write() fails with EFBIG, as it fails
    with ENOSPC on a full disk. The step used to end with exit 70 ("internal error")."""
    import resource
    import subprocess
    import sys

    limit = 64 * 1024
    d = write_step(tmp_path / "s", payload_of(qa_prompt()), json.dumps({"question": "x" * (2 * limit)}))

    def small_files():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    result = subprocess.run(
        [sys.executable, "-m", "llmstep", "exec", "--data-dir", str(d)],
        capture_output=True,
        text=True,
        env={"PATH": os.environ.get("PATH", ""), "HOME": str(d)},
        timeout=120,
        preexec_fn=small_files,
    )
    assert result.returncode == 1, result.stderr
    assert "internal error" not in result.stderr
    message = f"the file grew past the size limit of the process writing {d / 'output.json'}; raise the limit"
    assert message in result.stderr
    error = json.loads((d / "error.json").read_text())
    assert error["exit_code"] == 1 and error["message"].startswith(message)
    assert not (d / "output.json").exists() and not (d / "preview.txt").exists()  # half an output is no output


def _exits(x):
    import sys

    print("the step's own last line")
    sys.exit(0)


def test_a_runnable_that_calls_sys_exit_fails_the_step_instead_of_succeeding_without_output(tmp_path):
    d = write_step(tmp_path / "s", payload_of(RunnableLambda(_exits), allow_pickle=True), '"x"')
    result = exec_step(d)
    assert result.returncode == 1, result.stderr
    error = json.loads((d / "error.json").read_text())
    assert error["type"] == "SystemExit" and "its code called sys.exit(0) in _exits (" in error["message"]
    assert "before the Runnable returned" in error["message"]
    # a deliberate exit: the message says where, and no traceback pushes the step's own lines out of the log's tail
    assert "Traceback" not in result.stderr and "the step's own last line" in result.stdout + result.stderr
    assert not (d / "output.json").exists()

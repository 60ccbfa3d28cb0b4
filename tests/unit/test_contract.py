"""The step contract (llmstep/contract.py): the command every engine runs is the one `llmstep exec`
parses, and the files, environment names and exit codes it names are the ones a real step uses."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableLambda

import llmstep
from llmstep import contract, exitcodes
from llmstep.cli import main as cli_main
from llmstep.contract import RECORD
from llmstep.errors import CredentialsWarning, PayloadError
from llmstep.executor import main as executor_main
from llmstep.local.process import local_argv

SOURCE = str(Path(llmstep.__file__).resolve().parent.parent)
"""Where the llmstep under test is imported from: the steps these tests start import the same."""


def staging_flags(root: Path, inputs: str = "input", log_output: str = "false") -> dict[str, str]:
    """Every key ``exec_argv(staging=...)`` reads, with concrete values (the Tekton Task gives
    ``$(...)`` references that Tekton replaces with such values)."""
    return {
        "payload_env": "LLMSTEP_PAYLOAD",
        "input_env": "LLMSTEP_INPUT",
        "secrets_dir": str(root / "credentials"),
        "link_root": str(root / "workspace"),
        "inputs": inputs,
        "log_output": log_output,
        **{"result_" + name.replace("-", "_"): str(root / "results" / name) for name in contract.RESULTS},
    }


def parse(argv: list[str]):
    """``argv`` (``llmstep exec ...``) as ``llmstep exec``'s own entry point parses it."""
    assert argv[:2] == ["llmstep", "exec"]
    return executor_main.parser().parse_args(argv[2:])


def run(
    argv: list[str], env: dict[str, str], home: Path, data_dir: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a contract command (``llmstep ...``) as this interpreter's ``python -m llmstep`` (the
    llmstep these tests import), with only ``env`` besides PATH and HOME, as in a pod; with
    ``data_dir``, as the local runner maps the container's command onto a local data directory."""
    local = local_argv(argv, data_dir) if data_dir is not None else [sys.executable, "-m", "llmstep", *argv[1:]]
    return subprocess.run(
        local,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": os.environ.get("PATH", ""), "HOME": str(home), "PYTHONPATH": SOURCE, **env},
    )


def lay_out(data_dir: Path, payload: dict, chain_input: str) -> Path:
    """A data directory as Argo's artifacts leave it: the payload and the single input file."""
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / contract.PAYLOAD).write_text(json.dumps(payload), encoding="utf-8")
    (data_dir / contract.INPUT).write_text(chain_input, encoding="utf-8")
    return data_dir


def prompt_payload() -> dict:
    return llmstep.compile(ChatPromptTemplate.from_template("Q: {question}")).plan.steps[0].payload


def _explode(value):
    raise ValueError(f"no answer to {value}")


# ---------------------------------------------------------------- the command


def test_the_command_is_the_installed_llmstep_script_running_exec():
    argv = contract.exec_argv()
    scripts = {e.name: e.value for e in importlib.metadata.entry_points(group="console_scripts")}
    assert argv[:2] == ["llmstep", "exec"]
    assert scripts["llmstep"] == "llmstep.cli.main:main"
    args = parse(argv)
    assert args.data_dir == contract.DATA_DIR == "/llmstep"
    assert cli_main._parser().parse_args(argv[1:]).func is executor_main.run  # llmstep exec --help: the same options


def test_exec_argv_parses_to_its_data_dir_and_nothing_staged():
    args = parse(contract.exec_argv("/data/run-1/step"))
    assert args.data_dir == "/data/run-1/step"
    assert args.step_name is None
    # nothing that makes the executor stage the directory itself (Argo places the files)
    assert (args.payload_env, args.input_env, args.inputs, args.result, args.secrets_dir) == (None, None, [], [], "")
    assert args.log_output == "false"


@pytest.mark.parametrize("step_name, expected", [("summarize-2", "summarize-2"), (None, None), ("", None)])
def test_step_name_is_passed_only_when_given(step_name, expected):
    argv = contract.exec_argv("/d", step_name=step_name)
    assert parse(argv).step_name == expected
    assert ("--step-name" in argv) is (expected is not None)


def test_staging_flags_parse_to_what_the_executor_stages_and_publishes(tmp_path):
    flags = staging_flags(tmp_path, log_output="true")
    args = parse(contract.exec_argv("/ws/run/step", staging=flags))
    assert args.data_dir == "/ws/run/step"
    assert (args.payload_env, args.input_env) == ("LLMSTEP_PAYLOAD", "LLMSTEP_INPUT")
    assert (args.secrets_dir, args.link_root) == (flags["secrets_dir"], flags["link_root"])
    assert args.inputs == ["input"]
    assert args.log_output == "true"
    results = dict(item.partition("=")[::2] for item in args.result)  # as the executor reads them
    assert results == {name: str(tmp_path / "results" / name) for name in contract.RESULTS}


@pytest.mark.parametrize("expanded", [[], ["input"], ["a=run/a/output.json", "b=run/b/output.json"]])
def test_inputs_come_last_so_tekton_can_expand_the_array_param_into_any_number_of_items(tmp_path, expanded):
    flags = staging_flags(tmp_path, inputs="$(params.inputs[*])")
    argv = contract.exec_argv("/d", staging=flags)
    assert argv[-2:] == ["--inputs", "$(params.inputs[*])"]
    # Tekton replaces the one `$(params.inputs[*])` argument with the array's items
    args = parse(argv[:-1] + expanded)
    assert args.inputs == expanded
    assert len(args.result) == len(contract.RESULTS)


# ---------------------------------------------------------------- values longer than an argument may be

LONG_TEXTS = {
    "ascii": "a" * 300_000,
    "two-byte characters across every cut": "é" * 100_001,
    "four-byte characters across every cut": "🦜" * 50_001,
    "looks like options and references": ("--inputs -x $(params.payload) " * 9000) + "-",
    "one byte past a part": "x" * (contract.PART_BYTES + 1),
}


@pytest.mark.parametrize("text", LONG_TEXTS.values(), ids=LONG_TEXTS)
def test_a_long_value_travels_in_parts_each_an_argument_linux_takes(text):
    parts = contract.value_parts(text)
    assert len(parts) >= 2  # each text is longer than a part
    for i, part in enumerate(parts):
        assert part.startswith(f"{i}/{len(parts)}:")  # a digit first: never read as an option
        assert len(part.encode()) + 1 <= contract.MAX_ARG_STRLEN
        assert len(part.partition(":")[2].encode()) <= contract.PART_BYTES
    assert contract.join_value_parts(parts, "x") == text


@pytest.mark.parametrize("change", ["drop the middle", "swap", "no number"])
def test_parts_missing_or_out_of_order_are_refused_naming_them(change):
    parts = contract.value_parts("y" * (3 * contract.PART_BYTES))
    broken = {
        "drop the middle": [parts[0], parts[2]],
        "swap": [parts[1], parts[0], parts[2]],
        "no number": [p.partition(":")[2] for p in parts],
    }[change]
    with pytest.raises(PayloadError, match=r"--input-parts: part 1 of \d|--input-parts: part 2 of 2"):
        contract.join_value_parts(broken, "--input-parts")


@pytest.mark.parametrize("expanded", [[], ["input"], ["a=run/a/output.json"]])
def test_input_parts_parse_to_the_parts_whatever_they_hold(tmp_path, expanded):
    parts = contract.value_parts(LONG_TEXTS["looks like options and references"])
    flags = {**staging_flags(tmp_path, inputs="$(params.inputs[*])"), "input_parts": "$(params.input-parts[*])"}
    argv = contract.exec_argv("/d", staging=flags)
    at = argv.index("$(params.input-parts[*])")
    args = parse(argv[:at] + parts + argv[at + 1 : -1] + expanded)  # as Tekton expands both arrays
    assert args.input_parts == parts and args.inputs == expanded


def test_a_staged_step_joins_a_long_chain_input_from_its_parts(tmp_path):
    """300 KB in one environment variable would not start on Linux; as parts, each an argument, it does."""
    data_dir = tmp_path / "workspace" / "run-1" / "ask"
    chain_input = json.dumps({"question": "é$(HOME)-" * 40_000}, ensure_ascii=False)
    flags = {**staging_flags(tmp_path, inputs="input"), "input_parts": "PARTS"}
    argv = contract.exec_argv(str(data_dir), staging=flags)
    at = argv.index("PARTS")
    argv[at : at + 1] = contract.value_parts(chain_input)
    result = run(argv, {"LLMSTEP_PAYLOAD": json.dumps(prompt_payload()), "LLMSTEP_INPUT": ""}, tmp_path)
    assert result.returncode == exitcodes.EXIT_OK, result.stderr
    assert (data_dir / contract.INPUT).read_text(encoding="utf-8") == chain_input
    both = run(argv, {"LLMSTEP_PAYLOAD": json.dumps(prompt_payload()), "LLMSTEP_INPUT": '{"question": "x"}'}, tmp_path)
    assert (
        both.returncode == exitcodes.EXIT_BAD_INPUT
        and "both in --input-env's variable and as --input-parts" in both.stderr
    )


def test_staging_without_a_key_it_needs_is_refused(tmp_path):
    flags = staging_flags(tmp_path)
    del flags["result_output_path"]
    with pytest.raises(KeyError, match="result_output_path"):
        contract.exec_argv("/d", staging=flags)


# ---------------------------------------------------------------- the files, in a real step


def test_a_step_run_with_the_command_reads_and_writes_the_contract_files(tmp_path):
    question = "why? " * 400  # an output longer than the preview
    data_dir = lay_out(tmp_path / "step", prompt_payload(), json.dumps({"question": question}))
    result = run(contract.exec_argv(), {}, tmp_path, data_dir)
    assert result.returncode == exitcodes.EXIT_OK, result.stderr
    assert sorted(p.name for p in data_dir.iterdir()) == sorted(
        [contract.PAYLOAD, contract.INPUT, contract.OUTPUT, contract.PREVIEW, contract.USAGE]
    )
    assert question in (data_dir / contract.OUTPUT).read_text(encoding="utf-8")
    preview = (data_dir / contract.PREVIEW).read_bytes()
    assert len(preview) == contract.PREVIEW_BYTES
    assert "Q: why? why? " in preview.decode("utf-8")
    assert json.loads((data_dir / contract.USAGE).read_text(encoding="utf-8")) == {}


def test_a_staged_step_lays_out_its_directory_from_the_env_and_publishes_every_result(tmp_path):
    workspace = tmp_path / "workspace"
    data_dir = workspace / "run-1" / "ask"
    flags = staging_flags(tmp_path, inputs="input", log_output="true")
    chain_input = json.dumps({"question": "what is a pod?"})
    env = {"LLMSTEP_PAYLOAD": json.dumps(prompt_payload()), "LLMSTEP_INPUT": chain_input}
    result = run(contract.exec_argv(str(data_dir), staging=flags), env, tmp_path)
    assert result.returncode == exitcodes.EXIT_OK, result.stderr
    assert (data_dir / contract.INPUT).read_text(encoding="utf-8") == chain_input
    assert json.loads((data_dir / contract.PAYLOAD).read_text(encoding="utf-8"))["name"] == "chatprompttemplate"
    published = {name: (tmp_path / "results" / name).read_text(encoding="utf-8") for name in contract.RESULTS}
    output = (data_dir / contract.OUTPUT).read_bytes()
    assert published["output-path"] == f"run-1/ask/{contract.OUTPUT}"
    assert published["sha256"] == hashlib.sha256(output).hexdigest()
    assert "what is a pod?" in published["preview"]
    assert json.loads(published["usage"]) == {}
    # log_output "true": the output is also a record in the log, for a client that reads it there
    records = [json.loads(line[len(RECORD) :]) for line in result.stdout.splitlines() if line.startswith(RECORD)]
    assert [r["kind"] for r in records] == ["output"]
    assert records[0]["value"] == output.decode("utf-8")


# ---------------------------------------------------------------- exit codes and errors


def test_a_runnable_that_raises_exits_runnable_failed_with_its_error_in_error_json(tmp_path):
    payload = llmstep.compile(RunnableLambda(_explode), allow_pickle=True).plan.steps[0].payload
    data_dir = lay_out(tmp_path / "step", payload, '"life"')
    result = run(contract.exec_argv(), {}, tmp_path, data_dir)
    assert result.returncode == exitcodes.EXIT_RUNNABLE_FAILED, result.stderr
    error = json.loads((data_dir / contract.ERROR).read_text(encoding="utf-8"))
    assert error["exit_code"] == exitcodes.EXIT_RUNNABLE_FAILED
    assert contract.error_text(error) == "ValueError: no answer to life"
    assert not (data_dir / contract.OUTPUT).exists()


def test_bad_input_exits_bad_input_and_names_the_step_the_command_names(tmp_path):
    data_dir = lay_out(tmp_path / "step", prompt_payload(), json.dumps({"not-the-question": 1}))
    result = run(contract.exec_argv(step_name="ask-3"), {}, tmp_path, data_dir)
    assert result.returncode == exitcodes.EXIT_BAD_INPUT, result.stderr
    error = json.loads((data_dir / contract.ERROR).read_text(encoding="utf-8"))
    assert error["step"] == "ask-3"
    assert "step 'ask-3' needs input keys ['question']" in error["message"]


def test_a_missing_credential_exits_missing_credentials(tmp_path):
    from langchain_openai import ChatOpenAI

    with pytest.warns(CredentialsWarning):
        payload = (
            llmstep.compile(ChatOpenAI(model="gpt-4o-mini", api_key="sk-test-not-a-real-key-1234567890"))
            .plan.steps[0]
            .payload
        )
    data_dir = lay_out(tmp_path / "step", payload, '"hello"')
    result = run(contract.exec_argv(), {}, tmp_path, data_dir)
    assert result.returncode == exitcodes.EXIT_MISSING_CREDENTIALS, result.stderr
    error = json.loads((data_dir / contract.ERROR).read_text(encoding="utf-8"))
    assert "OPENAI_API_KEY" in error["message"]


def test_refuse_in_the_pickle_env_refuses_a_pickle_payload_before_running_it(tmp_path):
    payload = llmstep.compile(RunnableLambda(_explode), allow_pickle=True).plan.steps[0].payload
    data_dir = lay_out(tmp_path / "step", payload, '"life"')
    result = run(contract.exec_argv(), {contract.PICKLE_ENV: contract.REFUSE}, tmp_path, data_dir)
    # bad input, not the Runnable's own failure: it never ran
    assert result.returncode == exitcodes.EXIT_BAD_INPUT, result.stderr
    error = json.loads((data_dir / contract.ERROR).read_text(encoding="utf-8"))
    assert "pickle" in error["message"]
    assert "no answer" not in error["message"]


# ---------------------------------------------------------------- error_text and input_file


@pytest.mark.parametrize(
    "error, text",
    [
        ({"type": "ValueError", "message": "bad value"}, "ValueError: bad value"),
        ({"type": "ValueError", "message": "ValueError: bad value"}, "ValueError: bad value"),  # the type once
        ({"type": "PayloadError", "message": "ValueError: x"}, "PayloadError: ValueError: x"),
        ({"message": "no type"}, "Error: no type"),
        ({}, "Error: "),
    ],
)
def test_error_text_is_one_line_with_the_type_once(error, text):
    assert contract.error_text(error) == text


def test_input_file_of_a_single_input_step_is_input_json_whatever_the_source():
    assert contract.input_file("input", single=True) == contract.INPUT == "input.json"
    assert contract.input_file("../../etc/passwd", single=True) == contract.INPUT


def test_input_file_of_a_fan_in_step_is_one_file_per_source_in_the_input_dir():
    assert contract.input_file("summarize-2", single=False) == f"{contract.INPUT_DIR}/summarize-2.json"
    assert contract.input_file("input", single=False) == "input/input.json"


@pytest.mark.parametrize("source", ["../x", "../../etc/passwd", "/etc/passwd", "a/b", "a\\b", ".", "..", "", None, 3])
def test_input_file_never_names_a_file_outside_the_data_directory(source):
    with pytest.raises(PayloadError, match="would be read outside the data directory"):
        contract.input_file(source, single=False)

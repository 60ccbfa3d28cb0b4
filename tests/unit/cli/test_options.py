"""What the CLI's commands share (llmstep.cli.options): its argparse types, the parsing of a run's input
(--input, --inputs, -p) and the refusal of options that only shape a rendered chain."""

from __future__ import annotations

import argparse

import pytest
from conftest import ROOT, run_cli

from llmstep.cli import options
from llmstep.errors import UsageError

DEEP_JSON = "[" * 30_000 + "]" * 30_000


def _clean(result, code: int, *fragments: str) -> None:
    assert result.returncode == code, result.stderr
    for fragment in fragments:
        assert fragment in result.stderr
    assert "internal error" not in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["run", "examples/qa.py:chain", "--input", "{}", "--parallelism", "0"],
        ["submit", "examples/qa.py:chain", "--parallelism", "0"],
        ["compile", "examples/qa.py:chain", "--batch", "0"],
    ],
)
def test_parallelism_zero_is_refused(args):
    result = run_cli(*args, cwd=ROOT)
    _clean(result, 2, "0 is not at least 1")


def test_hostile_inputs_are_refused_naming_the_option(tmp_path):
    (tmp_path / "deep.jsonl").write_text('{"question": "fine"}\n' + DEEP_JSON + "\n")
    (tmp_path / "deep-list.json").write_text("[" + '{"q": ' * 400 + "1" + "}" * 400 + "]")
    cases = [
        (
            ("run", str(ROOT / "workflows" / "qa.yaml"), "--input", DEEP_JSON),
            "the input (--input, -p input=...): it nests",
        ),
        (
            ("run", str(ROOT / "workflows" / "qa.yaml"), "-p", f"input={DEEP_JSON}"),
            "the input (--input, -p input=...): it nests",
        ),
        (
            ("run", f"{ROOT}/examples/qa.py:chain", "--inputs", "deep.jsonl"),
            "--inputs deep.jsonl: line 2: not JSON (it nests",
        ),
        (("run", f"{ROOT}/examples/qa.py:chain", "--inputs", "deep-list.json"), "401 levels deep"),
        (("compile", f"{ROOT}/examples/qa.py:chain", "--input", DEEP_JSON), "--input: it nests"),
    ]
    for args, fragment in cases:
        result = run_cli(*args, cwd=tmp_path, timeout=60)
        assert result.returncode == 2, (args[:2], result.stderr)
        assert fragment in result.stderr, result.stderr


def test_options_that_only_shape_a_rendered_chain_are_refused_with_a_file_not_ignored(tmp_path):
    qa = str(ROOT / "workflows" / "qa.yaml")
    tekton = tmp_path / "qa-tekton.yaml"
    tekton.write_text(run_cli("compile", f"{ROOT}/examples/qa.py:chain", "--engine", "tekton", cwd=tmp_path).stdout)
    cases = [
        (
            ("run", qa, "--image", "example/llm:2", "--input", '{"question": "q"}'),
            "--image applies to a chain reference",
        ),
        (("run", qa, "--engine", "tekton"), "--engine applies to a chain reference"),
        (("run", qa, "--engine", "argo"), "--engine applies"),  # even the value the file has: it is not read
        (("run", str(tekton), "--image", "x", "--engine", "argo"), "--image, --engine apply to a chain reference"),
        (("run", "--resume", "some-run", "--image", "x"), "run some-run is rendered already"),
    ]
    for args, fragment in cases:
        result = run_cli(*args, cwd=tmp_path, timeout=60)
        assert result.returncode == 2, (args, result.stderr)
        assert fragment in result.stderr and "drop --" in result.stderr, result.stderr
    assert not (tmp_path / ".llmstep" / "runs").exists()
    # with a chain reference they shape what is rendered, as before
    ok = run_cli(
        "run",
        f"{ROOT}/examples/qa.py:chain",
        "--engine",
        "tekton",
        "--image",
        "example/llm:2",
        "--input",
        '{"question": "q"}',
        cwd=tmp_path,
        timeout=120,
    )
    assert ok.returncode == 0 and ok.stdout.strip() == "offline answer: q", ok.stderr


def test_argparse_types_refuse_what_would_run_nothing_or_wait_no_time():
    assert options.positive_int("3") == 3 and options.count("0") == 0 and options.seconds("2.5") == 2.5
    for parse, text, fragment in [
        (options.positive_int, "0", "0 is not at least 1"),
        (options.positive_int, "x", "'x' is not a whole number"),
        (options.count, "-1", "-1 is negative; give 0 or more"),
        (options.seconds, "soon", "'soon' is not a number of seconds"),
        (options.seconds, "nan", "'nan' is not a number of seconds above 0"),
        (options.seconds, "0", "'0' is not a number of seconds above 0"),
    ]:
        with pytest.raises(argparse.ArgumentTypeError, match=fragment):
            parse(text)


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    options.add_input_options(parser)
    return parser.parse_args(list(argv))


def test_parameters_from_p_input_and_inputs(tmp_path):
    assert options.parameters(_args("-p", "a=1", "-p", "b=x=y", "--input", '{"q": 1}')) == {
        "a": "1",
        "b": "x=y",
        "input": '{"q": 1}',
    }
    assert options.parameters(_args("--input", "plain text")) == {"input": "plain text"}  # text is a string, as on Argo
    (tmp_path / "in.jsonl").write_text('{"q": 1}\n\n{"q": 2}\n')
    (tmp_path / "in.json").write_text('[{"q": 1}, {"q": 2}]')
    assert (
        options.read_inputs(str(tmp_path / "in.jsonl"))
        == options.read_inputs(str(tmp_path / "in.json"))
        == [{"q": 1}, {"q": 2}]
    )
    assert "inputs" in options.parameters(_args("--inputs", str(tmp_path / "in.jsonl")))
    for argv, fragment in [
        (("-p", "novalue"), "-p 'novalue': expected NAME=VALUE"),
        (("-p", "input=1", "--input", "2"), "give the input once"),
        (("--input", "1", "--inputs", str(tmp_path / "in.json")), "not both"),
        (("--input", "{not json"), "the input is not valid JSON"),
    ]:
        with pytest.raises(UsageError, match=fragment):
            options.parameters(_args(*argv))


def test_refuse_reference_options_names_only_the_options_given():
    args = argparse.Namespace(image="x", engine=None, allow_pickle=False)
    options.refuse_reference_options(argparse.Namespace(image=None, engine=None), "qa.yaml", ("--image", "--engine"))
    with pytest.raises(UsageError) as err:
        options.refuse_reference_options(args, "qa.yaml", ("--image", "--engine", "--allow-pickle"))
    assert str(err.value).startswith("--image applies to a chain reference") and "--engine" not in str(err.value)
    assert "qa.yaml is rendered already" in str(err.value) and "drop --image" in str(err.value)

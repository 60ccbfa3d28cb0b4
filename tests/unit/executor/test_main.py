"""llmstep/executor/main.py: ``llmstep exec``'s own entry point."""

import json
import subprocess
import sys

from langchain_core.prompts import PromptTemplate

from llmstep import contract, exitcodes, payloads, serde
from llmstep.executor import main as executor

IMPORTS = (
    "import sys\nfrom llmstep.cli.main import main\ncode = main({argv!r})\n"
    "print(code, sorted(m for m in sys.modules if m.startswith('llmstep.')), file=sys.stderr)"
)


def _step(tmp_path, value):
    import llmstep

    step = llmstep.compile(PromptTemplate.from_template("Q: {q}")).plan.steps[0]
    (tmp_path / contract.PAYLOAD).write_text(payloads.payload_text(step.payload))
    (tmp_path / contract.INPUT).write_text(json.dumps(value))  # the chain input, as the workflow parameter holds it
    return tmp_path


def _run_cli(argv, cwd):
    result = subprocess.run([sys.executable, "-c", IMPORTS.format(argv=argv)], capture_output=True, text=True, cwd=cwd)
    code, modules = result.stderr.strip().splitlines()[-1].split(" ", 1)
    return int(code), eval(modules), result.stderr  # a list literal printed by the child


def test_the_console_script_runs_a_step_without_building_the_command_line(tmp_path):
    data = _step(tmp_path, {"q": "why?"})
    code, modules, _ = _run_cli(["exec", "--data-dir", str(data)], tmp_path)
    assert code == exitcodes.EXIT_OK
    assert serde.loads_value((data / contract.OUTPUT).read_text()).to_string() == "Q: why?"
    # the step's own entry point: none of the other commands, renderers, runners or cluster clients
    assert not [
        m
        for m in modules
        if m.startswith(
            (
                "llmstep.cli.run",
                "llmstep.cli.cluster",
                "llmstep.cli.diagnose",
                "llmstep.cli.refs",
                "llmstep.render",
                "llmstep.local",
                "llmstep.cluster",
                "llmstep.compiler",
                "llmstep.diagnose",
            )
        )
    ], modules
    assert "llmstep.executor.main" in modules


def test_debug_before_exec_reaches_the_step(tmp_path):
    code, _, stderr = _run_cli(["--debug", "exec", "--data-dir", str(tmp_path / "missing")], tmp_path)
    assert code == exitcodes.EXIT_BAD_INPUT
    assert "runnable.json is missing from the data directory" in stderr


def test_the_cli_help_for_exec_is_the_executor_s():
    from llmstep.cli.main import _parser

    sub = next(a for a in _parser()._actions if a.dest == "command")
    exec_options = {o for a in sub.choices["exec"]._actions for o in a.option_strings}
    own = {o for a in executor.parser()._actions for o in a.option_strings}
    assert exec_options == own


def test_bad_options_are_a_usage_error_naming_the_option(capsys):
    try:
        executor.main(["--log-output", "maybe"])
    except SystemExit as exc:
        assert exc.code == 2
    assert "--log-output: invalid choice: 'maybe'" in capsys.readouterr().err


def test_an_unforeseen_error_is_an_internal_error_not_a_traceback(tmp_path, monkeypatch, capsys):
    from llmstep.executor import step

    def boom(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(step, "run_step", boom)
    assert executor.main(["--data-dir", str(tmp_path)]) == exitcodes.EXIT_INTERNAL
    assert "internal error: RuntimeError: disk on fire (rerun with --debug)" in capsys.readouterr().err


def test_the_data_dir_comes_from_the_flag_then_the_env(tmp_path, monkeypatch):
    seen = []
    from llmstep.executor import step

    monkeypatch.setattr(step, "run_step", lambda data_dir, env, **kw: seen.append(str(data_dir)) or 0)
    monkeypatch.setenv(contract.DATA_DIR_ENV, str(tmp_path / "env"))
    executor.main([])
    executor.main(["--data-dir", str(tmp_path / "flag")])
    monkeypatch.delenv(contract.DATA_DIR_ENV)
    executor.main([])
    assert seen == [str(tmp_path / "env"), str(tmp_path / "flag"), contract.DATA_DIR]


def test_options_are_never_abbreviated(tmp_path, capsys):
    """``--data`` is not ``--data-dir``: the local runner checks a step's command by its options'
    full names, so the step must read them the same way."""
    for abbreviated in (["--data", str(tmp_path)], ["--res", f"preview={tmp_path / 'p'}"], ["--step", "x"]):
        try:
            executor.main(abbreviated)
        except SystemExit as exc:
            assert exc.code == 2
        assert "unrecognized arguments" in capsys.readouterr().err
    assert not (tmp_path / "p").exists()

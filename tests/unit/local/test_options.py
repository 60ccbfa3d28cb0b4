"""llmstep/local/options.py: the one list of a local run's options."""

import dataclasses
import os
from pathlib import Path

import pytest

from llmstep.errors import UsageError
from llmstep.local.isolation import Isolation, ProcessSteps
from llmstep.local.options import RunOptions
from llmstep.local.records import DEFAULT_RUNS_DIR


def test_keywords_replace_the_fields_of_an_options_object():
    base = RunOptions(parallelism=2, quiet=True)
    opts = RunOptions.of(base, parallelism=4, secrets={"K": "v"})
    assert (opts.parallelism, opts.quiet, opts.secrets) == (4, True, {"K": "v"})
    assert base.parallelism == 2  # frozen: the given object is not changed
    assert RunOptions.of() == RunOptions()


def test_an_unknown_option_is_a_usage_error_naming_it_and_the_options():
    with pytest.raises(
        UsageError,
        match=r"unknown run option 'paralellism'; the options are allow_endpoints, allow_pickle, .*parallelism",
    ):
        RunOptions.of(paralellism=2)


def test_every_entry_point_takes_the_same_options():
    import inspect

    from llmstep.local import entry

    names = {f.name for f in dataclasses.fields(RunOptions)}
    assert names == {
        "parameters",
        "parallelism",
        "secrets",
        "runs_dir",
        "quiet",
        "progress",
        "isolation",
        "launcher",
        "allow_pickle",
        "from_file",
        "allow_endpoints",
        "environ",
    }
    for fn in (entry.run_document, entry.run_tekton, entry.resume_run):
        params = inspect.signature(fn).parameters
        assert "options" in params and any(p.kind is p.VAR_KEYWORD for p in params.values()), fn.__name__


def test_defaults():
    opts = RunOptions()
    assert opts.root() == Path(DEFAULT_RUNS_DIR)
    assert RunOptions(runs_dir="x").root() == Path("x")
    assert isinstance(opts.steps(), ProcessSteps)
    assert opts.isolation_or_default() == Isolation.from_environ({})  # the runner reads no environment itself
    # the environment the entry point read, as Compiled.run_local has it
    assert RunOptions(environ=os.environ).isolation_or_default() == Isolation.from_environ(os.environ)
    given = Isolation(fork=False)
    assert RunOptions(isolation=given).isolation_or_default() is given
    assert opts.reporter() is not None
    assert opts.allow_pickle is True
    assert (opts.from_file, opts.allow_endpoints) == (False, ())  # the user's own chain
    assert opts.policy().from_file is False and RunOptions(from_file=True).policy().from_file is True
    assert opts.host() == {}
    # the endpoint the entry point's environment configures is where keys may go
    configured = RunOptions(environ={"OPENAI_BASE_URL": "http://127.0.0.1:8000/v1/"}).policy()
    assert (
        "http://127.0.0.1:8000/v1" in configured.endpoints and "http://127.0.0.1:8000/v1" not in opts.policy().endpoints
    )


def test_resume_refuses_pickles_unless_allowed(tmp_path):
    """resume_run's own default: a run record is a file, so allow_pickle is False unless given."""
    from llmstep.local import entry

    seen = {}

    def fake_open(root, run_id):
        seen["root"] = root
        raise RuntimeError("stop here")

    import llmstep.local.entry as module

    original = module.RunRecord.open
    module.RunRecord.open = staticmethod(fake_open)
    try:
        with pytest.raises(RuntimeError):
            entry.resume_run("r1", runs_dir=tmp_path)
    finally:
        module.RunRecord.open = original
    assert seen["root"] == tmp_path

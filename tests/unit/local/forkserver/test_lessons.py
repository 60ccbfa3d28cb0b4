"""What a fork server learns from its steps (llmstep/local/forkserver/lessons.py): the library modules
steps import themselves, imported by the server and kept for the next one."""

from __future__ import annotations

from forkserver_cases import _imports_minidom, _report, _run
from langchain_core.runnables import RunnableLambda

from llmstep.local import forkserver


def test_a_step_without_a_lesson_imports_for_itself(tmp_path, fresh_servers):
    out = _run(RunnableLambda(_report()), tmp_path)  # the control: nothing imported minidom before
    assert out["learned"] is False and out["forked_by_the_server"] is True


def test_steps_fork_once_from_a_server_that_learns_and_remembers_their_imports(tmp_path, fresh_servers, monkeypatch):
    monkeypatch.setenv("LLMSTEP_TEST_NOT_FOR_STEPS", "caller-only")
    chain = RunnableLambda(_imports_minidom) | RunnableLambda(_report())
    first = _run(chain, tmp_path)
    assert {k: v for k, v in first.items() if k != "server"} == {
        "learned": True,
        "own_session": True,
        "forked_by_the_server": True,
        "env": [],
    }
    [lessons] = fresh_servers.joinpath("llmstep").iterdir()
    assert "xml.dom.minidom" in lessons.read_text().split()
    again = _run(chain, tmp_path)
    assert again["server"] == first["server"]  # the next run in this process finds the server warm
    forkserver._close_shared(stop=True)  # a new server, taught by the lessons file
    fresh = _run(RunnableLambda(_report()), tmp_path)
    assert fresh["server"] != first["server"] and fresh["learned"] is True


def test_only_installed_libraries_are_learned(tmp_path, fresh_servers):
    (tmp_path / "myproject_helpers.py").write_text("VALUE = 1\n")

    def uses_project_module(x):
        import sys as _sys

        _sys.path.insert(0, str(tmp_path))
        import myproject_helpers  # noqa: F401 - a project module, found outside site-packages

        return x

    _run(RunnableLambda(uses_project_module) | RunnableLambda(_imports_minidom), tmp_path)
    [lessons] = fresh_servers.joinpath("llmstep").iterdir()
    learned = lessons.read_text().split()
    assert "xml.dom.minidom" in learned and "myproject_helpers" not in learned

"""Steps in containers (--isolation container), without podman: a clear error when the engine is
missing; the command that would run a step, read-only, as the image's user, with no env value on
its command line; the engine's own settings; the classes a run's payloads use."""

from __future__ import annotations

import pytest
from chains import qa_chain

import llmstep
from llmstep.local.container import STEP_UID, Isolation, container_argv, engine_env, payload_classes
from llmstep.local.entry import run_document


def test_container_isolation_without_the_engine_is_a_clear_error(tmp_path):
    with pytest.raises(llmstep.WorkflowError, match="needs llmstep-no-such-engine, which is not installed"):
        run_document(llmstep.compile(qa_chain()).to_dict(), {"question": "q"}, runs_dir=tmp_path / "r", quiet=True,
                     isolation=Isolation("container", "llmstep-no-such-engine"))


def test_the_engine_cli_keeps_its_own_settings_and_the_step_sees_none_of_them():
    environ = {"CONTAINERS_CONF": "/etc/c.conf", "DOCKER_HOST": "unix:///d.sock", "XDG_RUNTIME_DIR": "/run/user/1",
               "PATH": "/usr/bin", "HOME": "/home/u", "OPENAI_API_KEY": "sk-not-for-the-engine", "LANG": "C"}  # fmt: skip
    assert engine_env(environ) == {k: environ[k] for k in ("CONTAINERS_CONF", "DOCKER_HOST", "XDG_RUNTIME_DIR", "PATH", "HOME")}


@pytest.mark.parametrize("network", [False, True])
def test_a_step_runs_read_only_as_the_images_user_with_env_values_kept_off_the_command_line(tmp_path, network):
    data = tmp_path / "data"
    argv = container_argv(Isolation("container", "podman"), image="localhost/llmstep:1",
                          argv=["llmstep", "exec", "--data-dir", "/llmstep"], env_names=["OPENAI_API_KEY", "HOME"],
                          mounts=[(data, "/llmstep")], network=network)  # fmt: skip
    assert argv[:2] == ["podman", "run"] and "--rm" in argv and "--read-only" in argv
    assert argv[argv.index("--user") + 1] == f"{STEP_UID}:{STEP_UID}"
    assert argv[argv.index("--network") + 1] == ("host" if network else "none")  # a model step reaches the model; no other
    assert argv[argv.index("-v") + 1] == f"{data}:/llmstep" and data.is_dir()
    assert [argv[i + 1] for i, a in enumerate(argv) if a == "-e"] == ["OPENAI_API_KEY", "HOME"]  # names only: no value in ps
    assert argv[-6:] == ["--entrypoint", "llmstep", "localhost/llmstep:1", "exec", "--data-dir", "/llmstep"]
    assert oct(data.stat().st_mode & 0o777) == "0o777"  # the image's user may write what this user made


def test_the_payload_classes_of_documents_are_what_their_payloads_allow():
    docs = [llmstep.compile(qa_chain()).to_dict()]
    classes = payload_classes(docs)
    assert ["langchain", "prompts", "chat", "ChatPromptTemplate"] in classes
    assert ["llmstep", "offline", "OfflineChatModel"] in classes
    assert payload_classes({"a": ["not json", '{"llmstep": broken', 3]}) == []


def test_an_unknown_isolation_is_refused_naming_the_choices():
    with pytest.raises(llmstep.WorkflowError, match="--isolation 'vm': use process or container"):
        Isolation("vm").check()

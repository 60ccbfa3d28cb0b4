"""llmstep/local/isolation.py: process and container isolation as two strategies with one interface."""

import sys

import pytest

from llmstep.errors import UsageError, WorkflowError
from llmstep.local.isolation import ContainerSteps, Isolation, ProcessSteps, engine_env, payload_classes


@pytest.fixture
def engine(tmp_path):
    """A stand-in for podman: answers `image inspect` for the images listed in a file, logs its calls."""
    script = tmp_path / "fake-podman"
    script.write_text(f"""#!/bin/sh
echo "$@" >> {tmp_path}/calls
[ "$1 $2" = "image inspect" ] && grep -qx "$3" {tmp_path}/images && exit 0
echo "Error: $3: image not known" >&2; exit 125
""")
    script.chmod(0o755)
    (tmp_path / "images").write_text("llmstep:test\n")
    return script


def test_each_kind_is_its_strategy(engine):
    assert isinstance(Isolation().steps(), ProcessSteps)
    assert isinstance(Isolation("container", str(engine)).steps(), ContainerSteps)
    assert not ProcessSteps.uses_images and ContainerSteps.uses_images


def test_an_unknown_kind_or_a_missing_engine_is_refused_naming_it():
    with pytest.raises(UsageError, match="--isolation 'vm': use process or container"):
        Isolation("vm").steps()
    with pytest.raises(UsageError, match="needs llmstep-no-such-engine, which is not installed"):
        Isolation("container", "llmstep-no-such-engine").steps()


def test_a_process_attempt_runs_the_pod_command_locally(tmp_path):
    env = {"PATH": "/bin", "OPENAI_API_KEY": "k"}
    attempt = ProcessSteps().attempt(["llmstep", "exec", "--data-dir", "/llmstep"], tmp_path, env, root="/llmstep")
    assert attempt.argv == [sys.executable, "-m", "llmstep", "exec", "--data-dir", str(tmp_path)]
    assert attempt.env is env and attempt.data_dir is None
    assert ProcessSteps().attempt(["llmstep", "exec"], tmp_path, env, keep_data_dir=True).data_dir == tmp_path


def test_a_container_attempt_names_only_the_pods_variables_and_mounts_the_data_dir(engine, tmp_path):
    steps = ContainerSteps(str(engine), {"CONTAINERS_CONF": "/etc/c.conf"})
    env = {"OPENAI_API_KEY": "k", "LLMSTEP_PICKLE": "refuse", "HTTPS_PROXY": "http://127.0.0.1:3128", "HOME": "/h"}
    data = tmp_path / "data"
    attempt = steps.attempt(
        ["llmstep", "exec", "--data-dir", "/llmstep"],
        data,
        env,
        root="/llmstep",
        image="llmstep:test",
        declared=["OPENAI_API_KEY", "NOT_SET"],
        extra=["LLMSTEP_PICKLE"],
        network=True,
    )
    argv = attempt.argv
    assert argv[:2] == [str(engine), "run"]
    assert argv[argv.index("--network") + 1] == "host"
    assert argv[argv.index("-v") + 1] == f"{data}:/llmstep"
    assert [argv[i + 1] for i, a in enumerate(argv) if a == "-e"] == ["OPENAI_API_KEY", "LLMSTEP_PICKLE", "HTTPS_PROXY"]
    assert argv[-6:] == ["--entrypoint", "llmstep", "llmstep:test", "exec", "--data-dir", "/llmstep"]
    assert "k" not in argv  # values travel in the engine CLI's environment, never on its command line
    assert attempt.env == {**env, "CONTAINERS_CONF": "/etc/c.conf"}
    no_model = steps.attempt(
        ["llmstep", "exec"], data, {}, image="llmstep:test", mounts=[(data, "/ws")], keep_data_dir=True
    )
    assert no_model.argv[no_model.argv.index("--network") + 1] == "none"
    assert no_model.argv[no_model.argv.index("-v") + 1] == f"{data}:/ws" and no_model.data_dir == data


def test_images_are_checked_once_each_and_a_missing_one_names_the_build_command(engine, tmp_path):
    steps = ContainerSteps(str(engine), {})
    steps.preflight(["llmstep:test", "llmstep:test"])
    steps.attempt(["llmstep", "exec"], tmp_path / "data", {}, image="llmstep:test")
    assert (tmp_path / "calls").read_text().splitlines() == ["image inspect llmstep:test"]
    with pytest.raises(
        WorkflowError, match=r"image 'other:1' is not in .*build it with images/build.sh --engine .* --tag other:1"
    ):
        steps.preflight(["other:1"])


def test_engine_env_keeps_only_the_engines_own_settings():
    assert engine_env(
        {"DOCKER_HOST": "unix:///d", "XDG_RUNTIME_DIR": "/run/u", "OPENAI_API_KEY": "k", "PATH": "/bin"}
    ) == {"DOCKER_HOST": "unix:///d", "XDG_RUNTIME_DIR": "/run/u", "PATH": "/bin"}


def test_payload_classes_are_found_in_nested_documents():
    payload = '{"llmstep": 2, "allowed": [["langchain", "prompts", "prompt", "PromptTemplate"]]}'
    docs = [{"spec": {"templates": [{"inputs": {"artifacts": [{"raw": {"data": payload}}]}}]}}, {"x": ["not json {"]}]
    assert payload_classes(docs) == [["langchain", "prompts", "prompt", "PromptTemplate"]]


def test_a_launcher_without_fork_server_for_containers_and_when_forking_is_off():
    for isolation in (Isolation("container"), Isolation(fork=False)):
        launcher = isolation.start_launcher([])
        assert launcher.forkserver is None


def test_the_fork_servers_settings_come_from_the_environment_given(tmp_path):
    environ = {
        "LLMSTEP_FORKSERVER_IDLE": "12.5",
        "XDG_RUNTIME_DIR": str(tmp_path / "run"),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "DOCKER_HOST": "unix:///d",
        "OPENAI_API_KEY": "k",
    }
    isolation = Isolation.from_environ(environ, kind="container", engine_cli="docker")
    assert (isolation.kind, isolation.engine_cli, isolation.fork_idle) == ("container", "docker", 12.5)
    assert isolation.runtime_dir == str(tmp_path / "run")
    assert isolation.cache_dir == str(tmp_path / "cache" / "llmstep")
    assert isolation.engine_env == {
        "DOCKER_HOST": "unix:///d",
        "XDG_RUNTIME_DIR": str(tmp_path / "run"),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
    }
    defaults = Isolation.from_environ({"HOME": "/nonexistent"})
    assert (defaults.fork_idle, defaults.runtime_dir) == (300.0, None)
    assert Isolation.from_environ(environ, fork_idle=0).fork_idle == 0  # a setting given wins


@pytest.mark.parametrize("value", ["soon", "-1", "nan", "inf"])
def test_a_bad_idle_time_is_refused_naming_the_variable(value):
    with pytest.raises(UsageError, match=f"LLMSTEP_FORKSERVER_IDLE='{value}' is not a number of seconds"):
        Isolation.from_environ({"LLMSTEP_FORKSERVER_IDLE": value})

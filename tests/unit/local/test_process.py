"""Step processes started as a pod starts its container: the pod's environment and little of this
machine's, the container's paths mapped into the step's data directory, a timeout that stops the
step, and its output in its log."""

from __future__ import annotations

import sys

import pytest

from llmstep.errors import WorkflowError
from llmstep.local.process import DEADLINE_MESSAGE, PASSTHROUGH, Launcher, base_env, env_from, local_argv


def test_a_step_gets_a_path_home_and_locale_and_only_the_way_out_of_this_machine(tmp_path):
    host = {
        "HTTPS_PROXY": "http://proxy:3128",
        "OPENAI_BASE_URL": "http://127.0.0.1:8000/v1",
        "NO_PROXY": "",
        "OPENAI_API_KEY": "sk-of-this-machine",
        "AWS_SECRET_ACCESS_KEY": "x",
        "HOME": "/root",
    }
    env = base_env(tmp_path, host)
    assert (
        env["HOME"] == str(tmp_path)
        and env["LANG"] == "C.UTF-8"
        and env["PATH"].startswith(str(sys.executable).rsplit("/", 1)[0])
    )
    assert {k for k in env if k in host} == {
        "HTTPS_PROXY",
        "OPENAI_BASE_URL",
        "HOME",
    }  # an empty NO_PROXY is not passed
    assert env["HTTPS_PROXY"] == "http://proxy:3128" and "OPENAI_API_KEY" not in env  # a key only by its Secret
    assert "OPENAI_API_KEY" not in PASSTHROUGH


def test_an_env_value_from_a_secret_or_configmap_comes_from_this_machine_by_name_or_key():
    secret = {"name": "API_KEY", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "OPENAI_API_KEY"}}}
    assert env_from(secret, {"API_KEY": "by-name", "OPENAI_API_KEY": "by-key"}, "step a") == "by-name"
    assert env_from(secret, {"OPENAI_API_KEY": "by-key"}, "step a") == "by-key"
    assert env_from(secret, {}, "step a") is None  # the step says which key it lacks (exit 3)
    config = {"name": "REGION", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "region"}}}
    with pytest.raises(
        WorkflowError, match="step a: env REGION comes from key 'region' of ConfigMap 'cfg'; locally, set REGION"
    ):
        env_from(config, {}, "step a")
    optional = {"name": "REGION", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "region", "optional": True}}}
    assert env_from(optional, {}, "step a") is None
    with pytest.raises(WorkflowError, match="valueFrom must be a secretKeyRef or a configMapKeyRef locally"):
        env_from({"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}, {}, "step a")


def test_the_containers_command_runs_here_with_its_paths_in_the_data_directory(tmp_path):
    argv = ["llmstep", "exec", "--data-dir", "/llmstep", "--result", "preview=/llmstep/results/preview", "--stream"]
    assert local_argv(argv, tmp_path, root="/llmstep") == [
        sys.executable, "-m", "llmstep", "exec", "--data-dir", str(tmp_path), "--result",
        "preview=/llmstep/results/preview", "--stream"]  # fmt: skip  # only whole arguments are paths
    assert local_argv(["llmstep", "diagnose", "/llmstep/x"], tmp_path, root="/llmstep")[-1] == str(tmp_path / "x")


def test_a_step_process_reports_its_exit_code_and_is_stopped_at_its_deadline(tmp_path):
    log = tmp_path / "log.txt"
    started = []
    done = Launcher().run(
        [sys.executable, "-c", "print('to the log'); raise SystemExit(3)"],
        base_env(tmp_path, {}),
        log,
        timeout=60,
        on_start=started.append,
    )
    assert done.exit_code == 3 and not done.timed_out and len(started) == 1 and started[0] > 0
    assert log.read_text() == "to the log\n"
    slow = Launcher().run(
        [sys.executable, "-c", "import time; time.sleep(60)"],
        base_env(tmp_path, {}),
        tmp_path / "slow.txt",
        timeout=0.5,
    )
    assert slow.timed_out and slow.exit_code != 0
    assert "deadline" in DEADLINE_MESSAGE  # what a timed-out node says, as on a cluster


def test_a_stopped_launcher_starts_nothing(tmp_path):
    launcher = Launcher()
    launcher.stop()
    outcome = launcher.run(
        [sys.executable, "-c", "open('ran', 'w')"], base_env(tmp_path, {}), tmp_path / "log.txt", timeout=5
    )
    assert outcome.interrupted and outcome.exit_code == 130 and not (tmp_path / "ran").exists()


def _starts_here(env: dict[str, str]) -> bool:
    """Whether this machine's kernel starts a program with ``env`` (no check of llmstep's)."""
    import errno
    import subprocess

    try:
        subprocess.run(["/bin/true"], env=env, check=True)
    except OSError as exc:
        assert exc.errno == errno.E2BIG
        return False
    return True


@pytest.mark.parametrize("extra", [-1, 0, 1, 100_000])
def test_the_exec_check_draws_the_kernels_line_for_one_long_variable(extra):
    """``NAME=value`` plus its NUL may be 128 KiB (MAX_ARG_STRLEN), not a byte more: the check
    agrees with the kernel on each side of the line, so a forked step (never exec'd) fails where a
    pod's container would not start."""
    from llmstep.contract import MAX_ARG_STRLEN
    from llmstep.local.process import exec_refusal

    env = {"BIG": "v" * (MAX_ARG_STRLEN - len("BIG=") - 1 + extra)}
    refusal = exec_refusal(["/bin/true"], env)
    assert (refusal == "") is (extra <= 0) is _starts_here(env)
    if refusal:
        assert refusal.startswith("argument list too long: environment variable BIG is ")


def test_the_exec_check_counts_everything_together_against_arg_max():
    from llmstep.contract import ARG_MAX
    from llmstep.local.process import exec_refusal

    many = {f"V{i}": "x" * 100_000 for i in range(ARG_MAX // 100_000 + 1)}  # each fine, together too much
    assert "the arguments and environment take" in exec_refusal(["llmstep", "exec"], many)
    assert exec_refusal(["llmstep", "exec"], dict(list(many.items())[:5])) == ""
    assert "argument 2 is" in exec_refusal(["llmstep", "exec", "y" * 200_000], {})


def test_a_step_the_kernel_would_not_start_fails_unstarted_as_its_container_would(tmp_path):
    """Steps forked from a fork server are never exec'd, so the launcher checks as execve would."""
    outcome = Launcher().run(
        [sys.executable, "-c", "open('ran', 'w')"],
        {**base_env(tmp_path, {}), "BIG": "v" * 200_000},
        tmp_path / "log.txt",
        timeout=30,
    )
    assert outcome.exit_code == 1 and "argument list too long" in outcome.start_error  # runc's container ends with 1
    assert not (tmp_path / "ran").exists()
    assert "argument list too long: environment variable BIG" in (tmp_path / "log.txt").read_text()


def test_a_background_process_left_in_the_steps_group_ends_with_the_step(tmp_path):
    """A step (here any command) that leaves a child running in its process group: the launcher
    kills the group once the step has ended, as a pod's processes end with its container."""
    import os

    pid_file = tmp_path / "child.pid"
    code = (
        "import subprocess, sys\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])\n"
        f"open({str(pid_file)!r}, 'w').write(str(child.pid))\n"
    )
    launcher = Launcher()
    try:
        outcome = launcher.run([sys.executable, "-c", code], {}, tmp_path / "log.txt", timeout=60)
    finally:
        launcher.close()
    assert outcome.exit_code == 0
    child = int(pid_file.read_text())

    from forkserver_cases import _alive, _gone_within

    try:
        assert _gone_within(child, 10)
    finally:
        if _alive(child):
            os.kill(child, 9)

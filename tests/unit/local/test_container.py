"""Steps in containers (--isolation container), without podman: a clear error when the engine is
missing; the command that would run a step, read-only, as the image's user, with no env value on
its command line. The isolation choice itself, the engine's settings and the payload classes are
tested in tests/unit/local/test_isolation.py."""

from __future__ import annotations

import pytest
from chains import qa_chain

import llmstep
from llmstep.local.container import STEP_UID, container_argv
from llmstep.local.entry import run_document
from llmstep.local.isolation import Isolation


def test_container_isolation_without_the_engine_is_a_clear_error(tmp_path):
    with pytest.raises(llmstep.UsageError, match="needs llmstep-no-such-engine, which is not installed"):
        run_document(
            llmstep.compile(qa_chain()).to_dict(),
            {"question": "q"},
            runs_dir=tmp_path / "r",
            quiet=True,
            isolation=Isolation("container", "llmstep-no-such-engine"),
        )


@pytest.mark.parametrize("network", [False, True])
def test_a_step_runs_read_only_as_the_images_user_with_env_values_kept_off_the_command_line(tmp_path, network):
    data = tmp_path / "data"
    argv = container_argv(
        "podman",
        image="localhost/llmstep:1",
        argv=["llmstep", "exec", "--data-dir", "/llmstep"],
        env_names=["OPENAI_API_KEY", "HOME"],
        mounts=[(data, "/llmstep")],
        network=network,
    )
    assert argv[:2] == ["podman", "run"] and "--rm" in argv and "--read-only" in argv
    assert argv[argv.index("--user") + 1] == f"{STEP_UID}:{STEP_UID}"
    assert argv[argv.index("--network") + 1] == (
        "host" if network else "none"
    )  # a model step reaches the model; no other
    assert argv[argv.index("-v") + 1] == f"{data}:/llmstep" and data.is_dir()
    assert [argv[i + 1] for i, a in enumerate(argv) if a == "-e"] == [
        "OPENAI_API_KEY",
        "HOME",
    ]  # names only: no value in ps
    assert argv[-6:] == ["--entrypoint", "llmstep", "localhost/llmstep:1", "exec", "--data-dir", "/llmstep"]
    assert oct(data.stat().st_mode & 0o777) == "0o777"  # the image's user may write what this user made

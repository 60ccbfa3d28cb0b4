"""`llmstep image build` on the command line: its argument errors (exit 2), --dry-run printing the
Containerfile, and an engine failure (exit 1, with the engine's output)."""

from __future__ import annotations

from conftest import run_cli


def test_cli_errors_and_dry_run(tmp_path):
    missing = run_cli("image", "build", "-r", "missing.txt", cwd=tmp_path)
    assert missing.returncode == 2 and "-r/--requirements missing.txt: no such file" in missing.stderr
    (tmp_path / "requirements.txt").write_text("llmstep_testpkg\n")
    no_engine = run_cli("image", "build", "-r", "requirements.txt", cwd=tmp_path, env={"PATH": str(tmp_path)})
    assert no_engine.returncode == 2 and "no container engine found" in no_engine.stderr
    dry = run_cli("image", "build", "-r", "requirements.txt", "--from", "localhost/base:1", "--dry-run", cwd=tmp_path)
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.startswith("FROM localhost/base:1\n") and "-r /build/requirements.txt" in dry.stdout


def test_cli_engine_failure_exits_1_with_the_engines_output(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "podman").write_text(
        "#!/bin/sh\necho 'Error: creating build container: no space in the store'\nexit 125\n"
    )
    (bin_dir / "podman").chmod(0o755)
    (tmp_path / "requirements.txt").write_text("llmstep_testpkg\n")
    failed = run_cli(
        "image", "build", "-r", "requirements.txt", "--tag", "localhost/x:1", cwd=tmp_path, env={"PATH": str(bin_dir)}
    )
    assert failed.returncode == 1, failed.stderr
    assert "building localhost/x:1 failed (`podman build` exited 125)" in failed.stderr
    assert "no space in the store" in failed.stderr and failed.stdout == ""

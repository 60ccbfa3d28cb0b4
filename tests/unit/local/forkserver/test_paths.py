"""Where fork servers keep their sockets and lessons (llmstep/local/forkserver/paths.py)."""

from __future__ import annotations

import os

from llmstep.local import forkserver


def test_a_runtime_directory_others_can_read_is_not_used(tmp_path, monkeypatch):
    (tmp_path / f"llmstep-{os.getuid()}").mkdir(mode=0o755)
    os.chmod(tmp_path / f"llmstep-{os.getuid()}", 0o755)
    assert forkserver.runtime_dir(str(tmp_path)) is None
    os.chmod(tmp_path / f"llmstep-{os.getuid()}", 0o700)
    assert forkserver.runtime_dir(str(tmp_path)) == str(tmp_path / f"llmstep-{os.getuid()}")

"""Progress of a local run: one plain line per change when stderr is not a terminal, a table redrawn
in place when it is."""

from __future__ import annotations

import os
import subprocess
import sys

from conftest import ROOT, run_cli


def test_plain_progress_when_not_a_terminal(tmp_path):
    result = run_cli("run", f"{ROOT}/examples/qa.py:chain", "--input", '{"question": "p"}', cwd=tmp_path)
    lines = result.stderr.splitlines()
    assert any(line.endswith("ChatPromptTemplate running") for line in lines)
    assert any("StrOutputParser succeeded (" in line for line in lines)
    assert "\x1b[" not in result.stderr


def test_live_progress_on_a_terminal(tmp_path):
    """On a TTY the steps are a table redrawn in place (ANSI), not one line per change."""
    import pty

    parent, child = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "llmstep", "run", f"{ROOT}/examples/qa.py:chain", "--input", '{"question": "tty"}'],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=child,
        stdin=subprocess.DEVNULL,
    )
    os.close(child)
    chunks = []
    while True:
        try:
            data = os.read(parent, 4096)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    out, _ = proc.communicate(timeout=60)
    os.close(parent)
    screen = b"".join(chunks).decode(errors="replace")
    assert proc.returncode == 0 and out.decode().strip() == "offline answer: tty"
    assert "\x1b[F\x1b[K" in screen  # redrawn in place
    assert "✔ StrOutputParser" in screen and "Succeeded" in screen

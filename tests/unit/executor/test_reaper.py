"""llmstep/executor/reaper.py: the processes a step starts end with it, the detached ones too
(a double fork into its own session), as a container's processes end with its main process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
from forkserver_cases import _alive as alive

from llmstep.executor import reaper

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_CHILD_SUBREAPER is Linux's")

DAEMON = (
    "import os, sys, time\n"
    "if os.fork(): os._exit(0)\n"
    "os.setsid()\n"
    "if os.fork(): os._exit(0)\n"
    "open(sys.argv[1], 'w').write(str(os.getpid()))\n"
    "time.sleep(600)\n"
)


def wait_for(path, seconds: float = 30) -> int:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if path.exists() and path.read_text():
            return int(path.read_text())
        time.sleep(0.02)
    raise AssertionError(f"{path} was not written")


STEP = (
    "import json, subprocess, sys\n"
    "from llmstep.executor import reaper\n"
    "adopted = reaper.adopt_orphans()\n"
    "subprocess.run([sys.executable, '-c', {daemon!r}, sys.argv[1]])\n"  # it detaches and lives on
    "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])\n"  # a plain background child
    "import time\n"
    "while not open(sys.argv[1]).read(): time.sleep(0.02)\n"
    "print(json.dumps({{'adopted': adopted, 'ended': reaper.end_descendants(), "
    "'left': reaper.descendants(__import__('os').getpid())}}))\n"
)


def test_a_step_ends_the_processes_it_left_detached_ones_included(tmp_path):
    pid_file = tmp_path / "daemon.pid"
    pid_file.write_text("")
    result = subprocess.run(
        [sys.executable, "-c", STEP.format(daemon=DAEMON), str(pid_file)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    daemon = int(pid_file.read_text())
    assert report == {"adopted": True, "ended": 2, "left": []}  # the daemon and the background child
    assert not alive(daemon)


def test_without_a_subreaper_the_daemon_would_outlive_its_step(tmp_path):
    """The control: the same daemon from a process that does not adopt orphans escapes it."""
    pid_file = tmp_path / "daemon.pid"
    pid_file.write_text("")
    subprocess.run([sys.executable, "-c", DAEMON, str(pid_file)], timeout=60)
    daemon = wait_for(pid_file)
    try:
        assert alive(daemon) and daemon not in reaper.descendants(os.getpid())
    finally:
        os.kill(daemon, 9)


def test_nothing_left_is_found_without_reading_proc():
    code = (
        "import subprocess, sys\n"
        "from llmstep.executor import reaper\n"
        "reaper.adopt_orphans()\n"
        "def fail(root): raise SystemExit('no child is left: /proc must not be read')\n"
        "reaper.descendants = fail\n"
        "subprocess.run([sys.executable, '-c', 'pass'])\n"
        "print(reaper.end_descendants())\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stdout.strip()) == (0, "0"), result.stderr

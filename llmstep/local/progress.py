"""Progress of a local run: a live table on a terminal, one plain line per change elsewhere."""

from __future__ import annotations

import sys
import threading
import time
from datetime import UTC, datetime
from typing import Any, TextIO

from llmstep import contract
from llmstep.contract import Phase
from llmstep.local.state import NodeState

_SYMBOL = {
    Phase.PENDING: "·",
    Phase.RUNNING: "▶",
    Phase.SUCCEEDED: "✔",
    Phase.FAILED: "✘",
    Phase.ERROR: "✘",
    Phase.SKIPPED: "○",
    Phase.OMITTED: "○",
}


class Progress:
    """Does nothing; the base for the reporters and the quiet choice."""

    def start(self, record: Any) -> None:
        pass

    def changed(self, task: str, node: NodeState) -> None:
        pass

    def finish(self, record: Any) -> None:
        pass


def duration(node: NodeState) -> str:
    start, end = node.started_at, node.finished_at
    if not start:
        return ""
    fmt = "%Y-%m-%dT%H:%M:%S.%fZ"
    t0 = datetime.strptime(start, fmt)
    t1 = datetime.strptime(end, fmt) if end and node.ended else datetime.now(UTC).replace(tzinfo=None)
    return f"{(t1 - t0).total_seconds():.1f}s"


class PlainProgress(Progress):
    """One line per state change: for logs and CI."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self._lock = threading.Lock()

    def start(self, record: Any) -> None:
        self._line(f"run {record.run_id} started")

    def changed(self, task: str, node: NodeState) -> None:
        phase = node.phase
        extra = f" ({duration(node)})" if node.ended and node.started_at else ""
        attempt = f" attempt {node.attempts}" if phase == Phase.RUNNING and (node.attempts or 1) > 1 else ""
        message = f": {node.message}" if node.message and phase in contract.FAILED_PHASES else ""
        self._line(f"{task} {phase.lower()}{attempt}{extra}{message}")

    def finish(self, record: Any) -> None:
        self._line(f"run {record.run_id} {record.phase.lower()}")

    def _line(self, text: str) -> None:
        with self._lock:
            self.stream.write(f"{time.strftime('%H:%M:%S')} {text}\n")
            self.stream.flush()


class LiveProgress(Progress):
    """A table of steps redrawn in place on a terminal."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self._lock = threading.Lock()
        self._lines = 0
        self._record: Any = None

    def start(self, record: Any) -> None:
        self._record = record
        self.stream.write(f"run {record.run_id}\n")
        self._draw()

    def changed(self, task: str, node: NodeState) -> None:
        self._draw()

    def finish(self, record: Any) -> None:
        self._draw()
        self.stream.write(f"run {record.run_id} {record.phase.lower()}\n")
        self.stream.flush()

    def _draw(self) -> None:
        if self._record is None:
            return
        with self._lock:
            nodes = dict(self._record.nodes)
            out = ["\x1b[F\x1b[K" * self._lines]
            for task, node in nodes.items():
                phase = self._record.shown(node)[0]
                out.append(f"  {_SYMBOL.get(phase, '?')} {task:<40} {phase:<10} {duration(node)}\n")
            self._lines = len(nodes)
            self.stream.write("".join(out))
            self.stream.flush()


def make_progress(quiet: bool, stream: TextIO | None = None) -> Progress:
    if quiet:
        return Progress()
    stream = stream or sys.stderr
    return LiveProgress(stream) if stream.isatty() else PlainProgress(stream)

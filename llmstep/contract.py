"""The step contract: the files, exit codes and command every step runs with, on every engine.

One function, :func:`exec_argv`, builds the command; the Argo and Tekton renderers and the local
runner all call it, so what runs locally is what runs on the cluster.
"""

from __future__ import annotations

DATA_DIR = "/llmstep"

PAYLOAD = "runnable.json"
INPUT = "input.json"
INPUT_DIR = "input"
OUTPUT = "output.json"
PREVIEW = "preview.txt"
USAGE = "usage.json"
ERROR = "error.json"

PREVIEW_BYTES = 1024

EXIT_OK = 0
EXIT_RUNNABLE_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_MISSING_CREDENTIALS = 3


def exec_argv(data_dir: str = DATA_DIR) -> list[str]:
    """The command that runs one step: ``llmstep exec --data-dir DIR``."""
    return ["llmstep", "exec", "--data-dir", data_dir]


def input_file(source: str, single: bool) -> str:
    """Where a step finds one of its sources, relative to the data directory."""
    return INPUT if single else f"{INPUT_DIR}/{source}.json"

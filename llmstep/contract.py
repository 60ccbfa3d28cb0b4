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

PICKLE_ENV = "LLMSTEP_PICKLE"
"""Set to :data:`REFUSE` by the local runner for a document from a file run without
``--allow-pickle``: the step then refuses a pickle payload, whatever path the payload took."""
REFUSE = "refuse"

EXIT_OK = 0
EXIT_RUNNABLE_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_MISSING_CREDENTIALS = 3


RESULTS = ("preview", "output-path", "sha256", "usage")
"""What a Tekton step reports as results: small things only (results are capped at 4 KiB)."""


def exec_argv(data_dir: str = DATA_DIR, *, staging: dict[str, str] | None = None, step_name: str | None = None) -> list[str]:
    """The command that runs one step: ``llmstep exec --data-dir DIR``.

    ``step_name`` (a template several steps share) names the running step in messages.

    ``staging`` (Tekton) adds the flags that lay out the data directory inside the step from
    the environment and the workspace, and publish results: ``payload_env``, ``input_env``,
    ``secrets_dir``, ``link_root``, ``inputs`` (an array-param reference, expanded by Tekton
    into zero or more ``SOURCE[=PATH]`` items), ``result_<name>`` paths for :data:`RESULTS` and
    ``log_output`` (``true`` or ``false``: also write the output to the log as a record).
    """
    argv = ["llmstep", "exec", "--data-dir", data_dir]
    if step_name:
        argv += ["--step-name", step_name]
    if staging:
        argv += ["--payload-env", staging["payload_env"], "--input-env", staging["input_env"]]
        argv += ["--secrets-dir", staging["secrets_dir"], "--link-root", staging["link_root"]]
        for name in RESULTS:
            argv += ["--result", f"{name}={staging['result_' + name.replace('-', '_')]}"]
        argv += ["--log-output", staging["log_output"], "--inputs", staging["inputs"]]
    return argv


def error_text(error: dict) -> str:
    """A step's ``error.json`` (or error record) as one line: ``Type: message``, the type once
    (a Runnable's error message already starts with its type)."""
    kind, message = f"{error.get('type', 'Error')}", f"{error.get('message', '')}"
    return message if message.startswith(f"{kind}: ") else f"{kind}: {message}"


def input_file(source: str, single: bool) -> str:
    """Where a step finds one of its sources, relative to the data directory; a source that is not
    a plain name (``../../x``, ``/etc/x``) is refused: it would leave the data directory."""
    if single:
        return INPUT
    if not isinstance(source, str) or not source or "/" in source or "\\" in source or source in (".", ".."):
        from llmstep.errors import PayloadError

        raise PayloadError(f"input source {source!r} is not a step name: it would be read outside the data directory")
    return f"{INPUT_DIR}/{source}.json"

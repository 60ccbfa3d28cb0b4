"""The step contract: the files and command every step runs with, on every engine (its exit
codes: :mod:`llmstep.exitcodes`), and the names llmstep's documents and clients agree on
(labels, annotations, phases, records).

One function, :func:`exec_argv`, builds the command; the Argo and Tekton renderers and the local
runner all call it, so what runs locally is what runs on the cluster. Each fact here has no other
home: a renderer that writes an annotation and a client that reads it import the same name.
"""

from __future__ import annotations

from enum import StrEnum

DATA_DIR = "/llmstep"
DATA_DIR_ENV = "LLMSTEP_DATA_DIR"
"""Overrides :data:`DATA_DIR` for ``llmstep exec`` when ``--data-dir`` is not given."""

PAYLOAD_ENV = "LLMSTEP_PAYLOAD"
INPUT_ENV = "LLMSTEP_INPUT"
"""Where a staged step (Tekton, KubernetesRunnable) finds its payload and its input: ``--payload-env`` and ``--input-env``."""

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
ENDPOINTS_ENV = "LLMSTEP_ENDPOINTS"
"""Set by the local runner for a document from a file: the endpoints (one a line) a step's payload may
name; the step refuses a payload that names another, whatever path the payload took."""

RECORD = "@llmstep "
"""The prefix of a record line a step writes to its log (``--log-records``, ``--log-output``):
``@llmstep {"kind": "output" | "error" | "chunk", ...}``; a client reads the output there."""

DEFAULT_SECRET = "llm-credentials"
"""The Kubernetes Secret that holds the model's keys, unless ``compile(secret=...)`` names another."""

LABELS = {"app.kubernetes.io/managed-by": "llmstep"}
"""The labels every object llmstep writes carries."""
CHAIN_LABEL = "llmstep.dev/chain"
STEP_LABEL = "llmstep.dev/step"
OUTPUT_TASK = "llmstep.dev/output-task"
"""The annotation naming the task whose output is the chain's result (a Workflow, a Pipeline)."""
RUNNABLE_ANNOTATION = "llmstep.dev/runnable"
PATH_ANNOTATION = "llmstep.dev/path"
SHARED_BY_ANNOTATION = "llmstep.dev/shared-by"
BATCH_ANNOTATION = "llmstep.dev/batch"
"""``"true"`` on a batch Workflow (``llmstep compile --batch N``): its result is a list, one item per input."""


class Phase(StrEnum):
    """The phase of a workflow or of one of its nodes, in Argo's words (a Tekton run's are mapped
    onto them): the one home of these words for the renderers, the clients and the local runner.
    A member is the string itself (``Phase.FAILED == "Failed"``), as status.json and Argo write it."""

    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    ERROR = "Error"
    SKIPPED = "Skipped"
    """Not run, by the node's own ``when`` (Argo), or by Tekton's ``when`` and timeouts."""
    OMITTED = "Omitted"
    """Not run, because what it depends on did not allow it (Argo's ``depends``)."""


FAILED_PHASES = (Phase.FAILED, Phase.ERROR)
"""The phases of an Argo node (or a local step) that did not succeed."""
DONE_PHASES = (Phase.SUCCEEDED, *FAILED_PHASES)
"""The phases a node or a workflow ends in."""
FINISHED_OK = (Phase.SUCCEEDED, Phase.SKIPPED)
"""Phases after which dependents may run and a resumed run does not run the node again."""
NOT_RUN = (Phase.SKIPPED, Phase.OMITTED)
"""The phases of a node that did not run."""
ACTIVE = (Phase.PENDING, Phase.RUNNING)
"""The phases of a node (or a run) that has not ended."""

RATE_LIMIT_ENV = "LLMSTEP_RATE_LIMIT"
"""A model step's rate-limit retries, set from ``Step(rate_limit=...)``: ``off``, or
``max_attempts=N,max_wait=SECONDS`` (:func:`rate_limit_value`); unset, the defaults below."""
RATE_LIMIT_ATTEMPTS = 8
"""Requests for one model call, the first included, unless ``RateLimit(max_attempts=...)`` says."""
RATE_LIMIT_WAIT = 120.0
"""Seconds one model call may spend waiting between them, unless ``RateLimit(max_wait=...)`` says."""


def rate_limit_value(max_attempts: int, max_wait: float) -> str:
    """The value of :data:`RATE_LIMIT_ENV` for these bounds (the step reads it back with
    :func:`parse_rate_limit`)."""
    return f"max_attempts={max_attempts},max_wait={max_wait:g}"


def parse_rate_limit(value: str | None) -> tuple[int, float] | None:
    """``(max_attempts, max_wait)`` from :data:`RATE_LIMIT_ENV`'s value (the defaults when unset,
    None for ``off``); UsageError naming the variable when it is malformed."""
    import math

    if value is None or not value.strip():
        return RATE_LIMIT_ATTEMPTS, RATE_LIMIT_WAIT
    if value.strip() == "off":
        return None
    bounds: dict[str, float] = {"max_attempts": RATE_LIMIT_ATTEMPTS, "max_wait": RATE_LIMIT_WAIT}
    for item in value.split(","):
        key, sep, number = item.strip().partition("=")
        parsed: float | None
        try:
            parsed = float(number) if key == "max_wait" else int(number)
        except ValueError:
            parsed = None
        if (
            not sep
            or key not in bounds
            or parsed is None
            or not math.isfinite(parsed)
            or parsed < (key == "max_attempts")
        ):
            from llmstep.errors import UsageError

            raise UsageError(
                f"{RATE_LIMIT_ENV}={value!r}: give 'off' or max_attempts=N (N >= 1),max_wait=SECONDS (>= 0)"
            )
        bounds[key] = parsed
    return int(bounds["max_attempts"]), bounds["max_wait"]


MAX_ARG_STRLEN = 128 * 1024
"""Linux caps each string a program starts with, an argument or an environment entry
(``NAME=value``, with its final NUL), at 128 KiB: a container whose env or args hold a longer one
does not start (``exec ...: argument list too long``)."""
ARG_MAX = 2 * 1024 * 1024
"""... and all of them together (strings and their pointers) at a quarter of the stack limit:
2 MiB with the usual 8 MiB, the limit a container gets by default."""
PART_BYTES = 64 * 1024
"""The UTF-8 bytes of a value in one of its parts (:func:`value_parts`)."""


def value_parts(text: str, size: int = PART_BYTES) -> list[str]:
    """``text`` in parts of at most ``size`` UTF-8 bytes (never cutting a character), each written
    ``I/N:TEXT``: a value that one argument or environment entry cannot hold (see
    :data:`MAX_ARG_STRLEN`) travels as several arguments. The numbers make every part start with
    a digit, never read as an option, and let :func:`join_value_parts` see a part missing."""
    data = text.encode("utf-8", "surrogatepass")
    chunks: list[bytes] = []
    while data:
        cut = min(size, len(data))
        while cut < len(data) and data[cut] & 0xC0 == 0x80:  # inside a character: cut before it
            cut -= 1
        chunks.append(data[:cut])
        data = data[cut:]
    return [f"{i}/{len(chunks)}:{c.decode('utf-8', 'surrogatepass')}" for i, c in enumerate(chunks)]


def join_value_parts(parts: list[str], what: str) -> str:
    """The value :func:`value_parts` split; a part out of order or missing is an error naming ``what``."""
    from llmstep.errors import PayloadError

    texts = []
    for i, part in enumerate(parts):
        head, sep, text = part.partition(":")
        if not sep or head != f"{i}/{len(parts)}":
            raise PayloadError(
                f"{what}: part {i + 1} of {len(parts)} does not start with {i}/{len(parts)}: "
                "the parts are I/N:TEXT in order, as llmstep writes them"
            )
        texts.append(text)
    return "".join(texts)


OUTPUT_PATH_RESULT = "output-path"
"""The result in which a Tekton step names its output file, relative to the data workspace."""
RESULTS = ("preview", OUTPUT_PATH_RESULT, "sha256", "usage")
"""What a Tekton step reports as results: small things only (results are capped at 4 KiB)."""


def exec_argv(
    data_dir: str = DATA_DIR, *, staging: dict[str, str] | None = None, step_name: str | None = None
) -> list[str]:
    """The command that runs one step: ``llmstep exec --data-dir DIR``.

    ``step_name`` (a template several steps share) names the running step in messages.

    ``staging`` (Tekton) adds the flags that lay out the data directory inside the step from
    the environment and the workspace, and publish results: ``payload_env``, ``input_env``,
    ``secrets_dir``, ``link_root``, ``inputs`` (an array-param reference, expanded by Tekton
    into zero or more ``SOURCE[=PATH]`` items), ``input_parts`` (an array-param reference: the
    chain input in :func:`value_parts`, when it is too long for ``input_env``), ``result_<name>``
    paths for :data:`RESULTS` and ``log_output`` (``true`` or ``false``: also write the output to
    the log as a record).
    """
    argv = ["llmstep", "exec", "--data-dir", data_dir]
    if step_name:
        argv += ["--step-name", step_name]
    if staging:
        argv += ["--payload-env", staging["payload_env"], "--input-env", staging["input_env"]]
        argv += ["--secrets-dir", staging["secrets_dir"], "--link-root", staging["link_root"]]
        for name in RESULTS:
            argv += ["--result", f"{name}={staging['result_' + name.replace('-', '_')]}"]
        argv += ["--log-output", staging["log_output"]]
        if "input_parts" in staging:
            argv += ["--input-parts", staging["input_parts"]]
        argv += ["--inputs", staging["inputs"]]
    return argv


def argv_data_dir(argv: list[str], default: str = DATA_DIR) -> str:
    """The data directory an ``llmstep exec`` argv names with ``--data-dir`` (``default`` without)."""
    if "--data-dir" in argv[:-1]:
        return argv[argv.index("--data-dir") + 1]
    return default


def parse_record(line: str) -> dict | None:
    """The record a log line holds (see :data:`RECORD`), or None for any other line."""
    if not line.startswith(RECORD):
        return None
    from llmstep import jsonio

    try:
        record = jsonio.loads(line[len(RECORD) :])
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


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

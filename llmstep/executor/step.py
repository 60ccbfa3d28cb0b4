"""The run of one step (``llmstep exec``, see :mod:`llmstep.executor.main`): one payload on its
input files.

Reads ``runnable.json`` and the input file(s) from the data directory, writes ``output.json``,
``preview.txt`` and ``usage.json``; on failure writes ``error.json``. Exit codes: 0 ok, 1 the
Runnable raised, 2 bad payload or input, 3 missing credentials, 75 the model still rate limited
when its retries (:mod:`llmstep.executor.ratelimit`) ran out.

This module is on the start-up path of every step: it imports only the standard library and
``llmstep.serde`` at the top; LangChain comes in with the payload that needs it. Never import
Hera, the kubernetes client, the renderers or the CLI here.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from llmstep import contract, exitcodes, jsonio, payloads, serde, shapes
from llmstep.errors import ExecutionError, LlmstepError, PayloadError, RateLimited, storage_full
from llmstep.executor import ratelimit

log = logging.getLogger(__name__)


def emit(kind: str, **fields: Any) -> None:
    """Write one record (``@llmstep {...}``, :data:`llmstep.contract.RECORD`) to stdout: ``chunk``
    (with ``--stream``), then ``output`` or ``error``. A Pod's log is then all a client needs."""
    import sys

    sys.stdout.write(contract.RECORD + json.dumps({"kind": kind, **fields}, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def run_step(
    data_dir: Path,
    env: Mapping[str, str],
    *,
    records: bool = False,
    stream: bool = False,
    step_name: str | None = None,
    allow_pickle: bool = True,
    engine: str = "argo",
    endpoints: list[str] | None = None,
) -> int:
    """Run the step in ``data_dir`` with ``env`` as its environment; return the exit code.
    ``records`` also writes the output (or error) to stdout as a record; ``stream`` runs the
    Runnable with ``stream`` and writes each chunk as a record as it comes. ``step_name`` names
    the step in messages when its payload is shared by several steps (it names the first);
    ``engine`` (``argo``, or ``tekton`` for a staged step) picks the commands a hint names;
    ``endpoints`` (a step of a file, run locally) are the only endpoints its payload may name."""
    started = time.perf_counter()
    name = "?"
    secrets: dict[str, str] = {}
    try:
        payload = payloads.read_payload(_read(data_dir, contract.PAYLOAD))
        if step_name:
            payload["name"] = step_name
        name = payload["name"]
        classes = payloads.value_classes(payload, allow_pickle=allow_pickle)
        value = assemble_input(data_dir, payload, classes)
        secrets = payloads.secrets_for(payload, env)
        runnable = payloads.load_runnable(payload, secrets, allow_pickle=allow_pickle, endpoints=endpoints)
        check_input_keys(runnable, value, name, engine)
        output, usage = _invoke(runnable, value, name, stream, classes, ratelimit.Policy.of(env))
        text = serde.dumps_value(output, where=f"the output of step {name!r}", classes=classes)
        payloads.check_output_secrets(text, secrets, name)
    except (SystemExit, LlmstepError) as exc:
        failure = exc if isinstance(exc, LlmstepError) else _exited(name, exc)
        code = _fail(data_dir, name, failure, secrets)
        if records:
            emit("error", **jsonio.loads((data_dir / contract.ERROR).read_text(encoding="utf-8")))
        return code
    written = {
        contract.OUTPUT: text,
        contract.PREVIEW: preview(output),
        contract.USAGE: json.dumps(usage, sort_keys=True),
    }
    for file, content in written.items():
        try:
            (data_dir / file).write_text(content, encoding="utf-8")
        except OSError as exc:
            exc.filename = exc.filename or str(data_dir / file)  # a failed write() names no file
            full = storage_full(exc)
            if full is None:
                raise
            return _fail_full(data_dir, name, exc, full, records)
    if records:
        emit("output", value=text)
    log.info(
        "step=%s runnable=%s duration=%.3fs output=%dB%s",
        name,
        payload.get("runnable", "?").rsplit(".", 1)[-1],
        time.perf_counter() - started,
        len(text.encode("utf-8")),
        _usage_note(usage),
    )
    return exitcodes.EXIT_OK


def assemble_input(data_dir: Path, payload: Mapping[str, Any], classes: Any = None) -> Any:
    """Build the step's input value from its input file(s), following the payload's shape."""
    shape = payload[shapes.KEY]
    single = shapes.is_single(shape)
    cache: dict[str, Any] = {}

    def source(name: str) -> Any:
        if name not in cache:
            rel = contract.input_file(name, single)
            text = _read(data_dir, rel)
            if name == shapes.CHAIN_INPUT and serde.is_text_input(text):
                # the chain input as Argo passes text that is not JSON: -p input=hello, or a batch
                # item that is a string ({{item}} is its bare text); it is that string
                cache[name] = text
            elif name == shapes.CHAIN_INPUT:  # the chain input is user data (see serde.loads_input)
                cache[name] = serde.loads_input(text, where=rel, classes=classes)
            else:
                cache[name] = serde.loads_value(text, where=rel, classes=classes)
        return cache[name]

    return shapes.assemble(shape, source, payload.get("name"))


INPUT_HINTS = {"argo": "argo submit -p input='{...}'", "tekton": "tkn pipeline start -p input='{...}'"}


def check_input_keys(runnable: Any, value: Any, name: str, engine: str = "argo") -> None:
    """Exit 2 before running when a prompt's dict input lacks variables the prompt requires.

    Only prompt templates declare their keys reliably; LangChain's guess for other Runnables
    (reading a lambda's source line) is a heuristic that must not fail a step.
    """
    from langchain_core.prompts import BasePromptTemplate

    if not isinstance(value, dict) or not isinstance(runnable, BasePromptTemplate):
        return
    required = set(runnable.input_variables) - set(getattr(runnable, "optional_variables", ()) or ())
    missing = sorted(required - value.keys())
    if missing:
        raise PayloadError(
            f"step {name!r} needs input keys {missing} but got {sorted(value)}; "
            f"pass them in the chain input ({INPUT_HINTS.get(engine, INPUT_HINTS['argo'])}) or in the previous step's output"
        )


def preview(value: Any) -> str:
    """The first ~1 KiB of a value as text, for the Argo UI and Tekton results."""
    text = serde.text_of(value)
    if text is None:
        text = value
    if not isinstance(text, str):
        try:
            text = json.dumps(serde.plain_of(value), ensure_ascii=False)
        except Exception:  # a preview must never fail the step
            text = repr(value)
    data = text.encode("utf-8")[: contract.PREVIEW_BYTES]
    return data.decode("utf-8", errors="ignore")


def _invoke(
    runnable: Any,
    value: Any,
    name: str,
    stream: bool = False,
    classes: Any = None,
    policy: ratelimit.Policy | None = None,
) -> tuple[Any, dict[str, Any]]:
    from langchain_core.callbacks import UsageMetadataCallbackHandler

    usage = UsageMetadataCallbackHandler()
    config = {"callbacks": [usage], "run_name": name}
    try:
        with ratelimit.retrying(policy):
            output = _run(runnable, value, name, config, stream, classes)
    except LlmstepError:
        raise
    except Exception as exc:
        if ratelimit.rate_limited(exc) is not None:
            raise RateLimited(
                f"{type(exc).__name__}: {exc} (still rate limited after the step's rate-limit retries; "
                f"exit {exitcodes.EXIT_RATE_LIMITED}, which retries= retries)"
            ) from exc
        raise ExecutionError(f"{type(exc).__name__}: {exc}") from exc
    return output, {model: dict(u) for model, u in usage.usage_metadata.items()}


def _run(runnable: Any, value: Any, name: str, config: Any, stream: bool, classes: Any) -> Any:
    """The Runnable's output: invoked, or streamed with each chunk written as a record."""
    if not stream:
        return runnable.invoke(value, config=config)
    output = None
    for chunk in runnable.stream(value, config=config):
        emit("chunk", value=serde.dumps_value(chunk, where=f"a chunk of step {name!r}", classes=classes))
        try:  # the output is the chunks added up, as LangChain's transform does
            output = chunk if output is None else output + chunk
        except TypeError:
            output = chunk
    return output


def _read(data_dir: Path, rel: str) -> str:
    """The text of a step file; PayloadError (exit 2) naming it when it is missing, not a regular
    file (a directory; a FIFO, which would block the step for ever), unreadable or not UTF-8."""
    import stat

    path = data_dir / rel
    try:
        mode = path.stat().st_mode
        if not stat.S_ISREG(mode):
            kind = "a directory" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode) else "not a regular file"
            raise PayloadError(f"{rel} in the data directory {data_dir} is {kind}; the step reads a JSON file there")
        return path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise PayloadError(f"{rel} is missing from the data directory {data_dir}") from exc
    except UnicodeDecodeError as exc:
        raise PayloadError(f"{rel} is not UTF-8 text") from exc
    except OSError as exc:
        raise PayloadError(f"{rel} in the data directory {data_dir} cannot be read ({exc.strerror or exc})") from exc


def _fail(data_dir: Path, name: str, exc: LlmstepError, secrets: Mapping[str, str]) -> int:
    cause = exc.__cause__ if isinstance(exc, ExecutionError) and exc.__cause__ else exc
    message = str(exc)
    for value in secrets.values():  # an exception may quote the key it was given
        message = message.replace(value, "[REDACTED]")
    record = {"step": name, "type": type(cause).__name__, "message": message, "exit_code": exc.exit_code}
    try:
        (data_dir / contract.ERROR).write_text(json.dumps(record, indent=2), encoding="utf-8")
    except OSError:
        pass  # the data directory may be what is missing; stderr still says it
    if cause is not exc and not isinstance(
        cause, SystemExit
    ):  # the user's Runnable raised: its traceback is what they need
        import traceback

        trace = "".join(traceback.format_exception(cause))
        for value in secrets.values():
            trace = trace.replace(value, "[REDACTED]")
        log.error("%s", trace.rstrip())
    log.error("step %s failed (%s, exit %d): %s", name, record["type"], exc.exit_code, message)
    return exc.exit_code


def _exited(name: str, exc: SystemExit) -> ExecutionError:
    """sys.exit() in the step's code, importing or running: no output is no success."""
    failure = ExecutionError(
        f"step {name!r}: its code called sys.exit({exc.code!r}){_call_site(exc)} before the "
        "Runnable returned, so the step has no output; a Runnable returns a value or raises"
    )
    failure.__cause__ = exc
    return failure


def _call_site(exc: BaseException) -> str:
    """`` in FUNCTION (FILE:LINE)``, where ``exc`` was raised: a sys.exit() is deliberate, so the message names
    where it was called instead of a traceback that would push the step's own last lines out of
    the log's tail (what ``kubectl logs --tail`` and a diagnosis read)."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is None:
        return ""
    code = tb.tb_frame.f_code
    return f" in {code.co_name} ({code.co_filename}:{tb.tb_lineno})"


def _fail_full(data_dir: Path, name: str, exc: OSError, message: str, records: bool) -> int:
    """The step ran, but its output could not be written for lack of room: a failed step (exit 1,
    as a run that fails for a full disk), never a success with half an output nor an internal
    error. The partial files go first: they are no output, and removing them makes room for
    error.json."""
    for partial in (contract.OUTPUT, contract.PREVIEW, contract.USAGE):
        (data_dir / partial).unlink(missing_ok=True)
    record = {"step": name, "type": type(exc).__name__, "message": message, "exit_code": exitcodes.EXIT_RUNNABLE_FAILED}
    try:
        (data_dir / contract.ERROR).write_text(json.dumps(record, indent=2), encoding="utf-8")
    except OSError:
        pass  # not even that fits: stderr and the exit code still say it
    if records:
        emit("error", **record)
    log.error("step %s failed (%s, exit %d): %s", name, record["type"], record["exit_code"], message)
    return exitcodes.EXIT_RUNNABLE_FAILED


def _usage_note(usage: dict[str, Any]) -> str:
    if not usage:
        return ""
    parts = [f"{m}:in={u.get('input_tokens', 0)},out={u.get('output_tokens', 0)}" for m, u in usage.items()]
    return " tokens=" + ";".join(parts)

"""``llmstep exec``: the entry point of every step, on every engine (``llmstep exec ...``,
``python -m llmstep exec ...``).

Its own small entry point, as Hera's runner has one: ``llmstep exec`` goes straight here from
the console script, without building the rest of the command line, and the local fork server
calls :func:`main` in each forked step. Like the CLI, it is an outermost function: it alone reads
the step's environment (the data directory's override, the pickle refusal, the staged payload,
input and secrets) and sets up logging; :func:`llmstep.executor.step.run_step` takes them as
arguments. Exit codes: :data:`llmstep.exitcodes.EXIT_OK` and the others of the step contract.
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from llmstep import contract, exitcodes
from llmstep.errors import LlmstepError, storage_full

DESCRIPTION = (
    "Run one step: read runnable.json and input from the data directory, write output.json. "
    "Exit 0 ok, 1 the Runnable raised, 2 bad payload or input, 3 missing credentials."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``llmstep exec`` (also the CLI's ``exec`` subcommand, for its help)."""
    p.add_argument(
        "--data-dir",
        metavar="DIR",
        help=f"the data directory (default: ${contract.DATA_DIR_ENV} or {contract.DATA_DIR})",
    )
    p.add_argument(
        "--step-name", metavar="NAME", help="the step's name in messages (a template shared by several steps)"
    )
    tekton = p.add_argument_group("staging (Tekton: no artifacts, so the step lays out its own files)")
    tekton.add_argument("--payload-env", metavar="VAR", help="write runnable.json from this environment variable")
    tekton.add_argument("--input-env", metavar="VAR", help="the chain input (JSON) is in this environment variable")
    tekton.add_argument(
        "--input-parts",
        nargs="*",
        default=[],
        metavar="I/N:TEXT",
        help="the chain input in parts, when it is too long for one environment variable "
        "(Linux caps one at 128 KiB); instead of --input-env's",
    )
    tekton.add_argument(
        "--inputs",
        nargs="*",
        default=[],
        metavar="SOURCE[=PATH]",
        help="input files: PATH relative to --link-root; 'input' alone takes --input-env",
    )
    tekton.add_argument("--link-root", default="", metavar="DIR", help="the shared workspace that input paths are in")
    tekton.add_argument("--secrets-dir", default="", metavar="DIR", help="secret keys mounted as files (may be empty)")
    tekton.add_argument(
        "--result",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="write a result (preview, output-path, sha256, usage) to PATH after the step",
    )
    tekton.add_argument(
        "--log-output",
        choices=("true", "false"),
        default="false",
        help="true: also write the output or error to the log as an '@llmstep {...}' line "
        "(a Pipeline's output task: results are capped at 4 KiB, so a client reads the output there)",
    )
    kube = p.add_argument_group("records (KubernetesRunnable: the client reads the Pod's log)")
    kube.add_argument(
        "--log-records", action="store_true", help="also write the output or error to stdout as '@llmstep {...}' lines"
    )
    kube.add_argument("--stream", action="store_true", help="stream the Runnable, writing each chunk as a record")


@functools.cache  # built once per process: a forked step finds it built by the fork server
def parser() -> argparse.ArgumentParser:
    """``llmstep exec``'s own parser (``--debug`` too, as the CLI's common option)."""
    # no abbreviations: ``--data`` is not ``--data-dir`` (a runner checks a step's command by its options' full names)
    p = argparse.ArgumentParser(prog="llmstep exec", description=DESCRIPTION, allow_abbrev=False)
    p.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    add_arguments(p)
    return p


def main(argv: Sequence[str] | None = None, *, debug: bool = False) -> int:
    """Run ``llmstep exec`` with ``argv`` (the arguments after ``exec``); return the exit code.

    Errors end as the CLI's do: an llmstep error's message and exit code, 130 when interrupted,
    :data:`llmstep.exitcodes.EXIT_INTERNAL` for anything else (with ``--debug``: the traceback)."""
    args = parser().parse_args(sys.argv[2:] if argv is None else argv)
    args.debug = args.debug or debug
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.INFO, format="llmstep: %(message)s", stream=sys.stderr
    )
    try:
        return run(args)
    except LlmstepError as exc:
        if args.debug:
            raise
        print(f"llmstep: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("llmstep: interrupted", file=sys.stderr)
        return exitcodes.EXIT_INTERRUPTED
    except Exception as exc:
        if args.debug:
            raise
        full = storage_full(exc)  # staging a Tekton step's files, publishing its results
        if full:
            print(f"llmstep: error: {full}", file=sys.stderr)
            return exitcodes.EXIT_RUNNABLE_FAILED
        print(f"llmstep: internal error: {type(exc).__name__}: {exc} (rerun with --debug)", file=sys.stderr)
        return exitcodes.EXIT_INTERNAL


def process_main(argv: Sequence[str] | None = None, *, debug: bool = False) -> int:
    """:func:`main` as the step's own process (the console script, a fork server's child): the
    processes the step starts, detached ones included, end when it does (see
    :mod:`llmstep.executor.reaper`)."""
    from llmstep.executor import reaper

    if reaper.adopt_orphans():
        signal.signal(signal.SIGTERM, reaper.on_term)  # stopped (a timeout, Ctrl-C on the run): they stop too
    try:
        return main(argv, debug=debug)
    finally:
        reaper.end_descendants()


def run(args: argparse.Namespace) -> int:
    """The step that ``args`` (parsed by :func:`parser`) describes, in this process's environment."""
    from llmstep import valueclasses

    with valueclasses.reading_leniently():  # a value naming a class this step has not imported reads as its data
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    from llmstep.executor.step import run_step

    data_dir = Path(args.data_dir or os.environ.get(contract.DATA_DIR_ENV) or contract.DATA_DIR)
    staged = args.payload_env or args.inputs or args.result or args.secrets_dir
    records = {
        "records": args.log_records or args.stream or args.log_output == "true",
        "stream": args.stream,
        "step_name": args.step_name,
        "allow_pickle": os.environ.get(contract.PICKLE_ENV) != contract.REFUSE,
        "endpoints": os.environ[contract.ENDPOINTS_ENV].split() if contract.ENDPOINTS_ENV in os.environ else None,
    }
    if not staged:
        return run_step(data_dir, os.environ, **records)
    from llmstep.executor import staging

    try:
        staging.stage(
            data_dir,
            payload=os.environ.get(args.payload_env) if args.payload_env else None,
            chain_input=staging.chain_input(
                os.environ.get(args.input_env) if args.input_env else None, args.input_parts
            ),
            inputs=args.inputs,
            link_root=args.link_root,
        )
    except LlmstepError as exc:
        logging.getLogger("llmstep.executor.step").error("step failed (exit %d): %s", exc.exit_code, exc)
        if records["records"]:
            from llmstep.executor.step import emit

            emit("error", step="?", type=type(exc).__name__, message=str(exc), exit_code=exc.exit_code)
        return exc.exit_code
    env = {**os.environ, **staging.read_secrets_dir(args.secrets_dir)}
    code = run_step(data_dir, env, **records, engine="tekton")
    results = dict(item.partition("=")[::2] for item in args.result)
    if code == 0:
        staging.publish(data_dir, results, args.link_root)
    return code

"""The ``llmstep`` command. An entry point: it and the other CLI modules read environment
variables, and it sets up logging.

Exit codes (the README's table): 0 success; 1 a step's Runnable raised, a run failed, or a
cluster or model could not be reached; 2 bad input (usage, a named file missing or not UTF-8,
reference, payload, compile or workflow error); 3 a missing credential; 70 an internal error (a
bug); 130 interrupted; 141 stdout closed early (a broken pipe, silent); 143 terminated (SIGTERM).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from llmstep import contract, exitcodes, jsonio
from llmstep.cli.options import add_value_type_option, positive_int
from llmstep.errors import LlmstepError, UsageError, storage_full


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((i for i, a in enumerate(argv) if not a.startswith("-")), None)
    if command is not None and argv[command] == "exec" and set(argv[:command]) <= {"--debug"}:
        # every step's command: its own entry point, without the rest of the command line
        from llmstep.executor import main as executor

        return executor.process_main(argv[command + 1 :], debug=bool(argv[:command]))
    args = _parser().parse_args(argv)
    _setup_logging(args)
    from llmstep import valueclasses

    try:
        with valueclasses.reading_leniently():  # the CLI prints values: a class it has not imported prints as its data
            code = int(args.func(args) or 0)
        sys.stdout.flush()  # a reader that left (| head) is found here, not by the interpreter at exit
        return code
    except BrokenPipeError:
        _discard_stdout()
        return exitcodes.EXIT_BROKEN_PIPE
    except LlmstepError as exc:
        if args.debug:
            raise
        print(f"llmstep: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt as exc:  # or SIGTERM during a run (llmstep.local.lifecycle.Terminated)
        print(f"llmstep: {getattr(exc, 'message', 'interrupted')}", file=sys.stderr)
        return getattr(exc, "exit_code", exitcodes.EXIT_INTERRUPTED)
    except OSError as exc:
        if args.debug:
            raise
        full = storage_full(exc)
        if full:
            print(f"llmstep: error: {full} (the run's record, if any, is finished and can be resumed)", file=sys.stderr)
            return exitcodes.EXIT_NO_SPACE
        print(f"llmstep: internal error: {type(exc).__name__}: {exc} (rerun with --debug)", file=sys.stderr)
        return exitcodes.EXIT_INTERNAL
    except Exception as exc:
        if args.debug:
            raise
        print(f"llmstep: internal error: {type(exc).__name__}: {exc} (rerun with --debug)", file=sys.stderr)
        return exitcodes.EXIT_INTERNAL


def _discard_stdout() -> None:
    """Send what is left in stdout's buffer nowhere, so the interpreter's flush at exit stays
    silent (the reader is gone; there is nobody to tell)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout without a file descriptor (captured in tests)
        pass


def _parser() -> argparse.ArgumentParser:
    # --debug works before or after the command; SUPPRESS keeps a subcommand's default from
    # overwriting a --debug given before it.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks and debug logs"
    )
    parser = argparse.ArgumentParser(
        prog="llmstep",
        description="Run LangChain chains on Kubernetes workflow engines, one container per Runnable.",
        epilog="exit codes: 0 ok; 1 a step raised, a run failed, or a cluster or model could not be reached; "
        "2 bad input; 3 missing credentials; 70 internal error; 130 interrupted; 141 stdout closed (| head); "
        "143 terminated",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    from llmstep import __version__

    parser.add_argument("--version", action="version", version=f"llmstep {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "compile",
        parents=[common],
        help="compile a chain to an Argo Workflow or Tekton objects",
        description="Compile a chain reference to an Argo Workflow, or with --engine tekton to the "
        "Task and the Pipeline (and with --run-only, to a PipelineRun of it) (YAML).",
    )
    p.add_argument("ref", metavar="REF", help="path/to/file.py:attr or package.module:attr")
    p.add_argument("-o", "--output", metavar="FILE", help="write the YAML here instead of stdout")
    p.add_argument("--image", help="the step image")
    p.add_argument("--name", help="the workflow name (default: derived from the chain)")
    p.add_argument(
        "--data",
        choices=["artifacts", "parameters"],
        default="artifacts",
        help="how data moves between steps (default: artifacts)",
    )
    p.add_argument("--secret", default=contract.DEFAULT_SECRET, help="the Secret holding API keys")
    p.add_argument("--allow-pickle", action="store_true", help="send unserializable Runnables with cloudpickle")
    add_value_type_option(p)
    p.add_argument(
        "--engine",
        choices=["argo", "tekton"],
        default="argo",
        help="argo: a Workflow; tekton: the reusable objects (the llmstep-run Task and the Pipeline), "
        "for `kubectl apply -f`",
    )
    p.add_argument(
        "--run-only",
        action="store_true",
        help="(tekton) only a PipelineRun of the Pipeline (generateName, "
        "the input from --input), for `kubectl create -f`",
    )
    p.add_argument(
        "--batch",
        type=positive_int,
        metavar="N",
        help="(argo) the batch Workflow: the chain over every item of its "
        "'inputs' parameter (withParam), at most N inputs in flight and N step pods at a time",
    )
    p.add_argument(
        "--input",
        metavar="JSON",
        help="the chain input written into the document (the 'input' "
        "parameter's value), so `kubectl create -f` runs it; `argo submit -p input=...` overrides it",
    )
    p.set_defaults(func=_compile)

    from llmstep.executor import main as executor

    p = sub.add_parser(
        "exec",
        parents=[common],
        allow_abbrev=False,
        help="run one step (the container entrypoint)",
        description=executor.DESCRIPTION,
    )
    executor.add_arguments(p)
    p.set_defaults(func=executor.run)

    from llmstep.cli.cluster import add_cluster_commands
    from llmstep.cli.diagnose import add_diagnose_command
    from llmstep.cli.image import add_image_commands
    from llmstep.cli.run import add_run_commands

    add_run_commands(sub, common)
    add_cluster_commands(sub, common)
    add_diagnose_command(sub, common)
    add_image_commands(sub, common)
    return parser


def _setup_logging(args: argparse.Namespace) -> None:
    level = logging.DEBUG if args.debug else logging.INFO
    logging.basicConfig(level=level, format="llmstep: %(message)s", stream=sys.stderr)
    if not args.debug:
        # urllib3 (the kubernetes client's transport) logs each retry of an unreachable API server;
        # the error that follows names the cause once
        logging.getLogger("urllib3").setLevel(logging.ERROR)


def _compile(args: argparse.Namespace) -> int:
    from llmstep.api import compile as compile_chain
    from llmstep.cli.refs import load_classes, load_reference, reference_name

    chain = load_reference(args.ref)
    compiled = compile_chain(
        chain,
        name=args.name or reference_name(args.ref),
        image=args.image,
        allow_pickle=args.allow_pickle,
        data=args.data,
        secret=args.secret,
        value_types=load_classes(args.value_types, "--value-type"),
    )
    if args.run_only and args.engine != "tekton":
        raise UsageError("--run-only writes a Tekton PipelineRun: add --engine tekton")
    if args.batch is not None and args.engine != "argo":
        raise UsageError("--batch renders an Argo Workflow (withParam); drop --engine tekton")
    if args.batch is not None and args.input is not None:
        raise UsageError("--input sets one run's input; a batch takes its inputs at submit time (-p inputs=...)")
    value = None
    if args.input is not None:
        try:
            value = jsonio.loads(args.input)
        except jsonio.TooDeep as exc:
            raise UsageError(f"--input: {exc}") from None
        except ValueError as exc:
            raise UsageError(f'--input is not valid JSON ({exc}); quote it: --input \'{{"question": "..."}}\'') from exc
    if args.batch is not None:
        text = compiled.to_batch_yaml(args.batch)
    elif args.engine == "argo":
        text = compiled.to_yaml() if args.input is None else compiled.to_yaml(value)
    else:
        from llmstep.yamlio import dump_all

        docs = compiled.to_tekton(value)
        text = dump_all(docs[-1:] if args.run_only else docs[:-1])
    if args.output:
        from llmstep.files import write_text

        write_text(args.output, text, "-o")
        print(f"llmstep: wrote {args.output} ({len(compiled.plan.steps)} steps)", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

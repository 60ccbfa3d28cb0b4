"""The ``llmstep`` command. The only module that reads environment variables or sets up logging.

Exit codes: 0 success; 1 a step's Runnable raised or a run failed; 2 bad input (usage, reference,
payload, compile or workflow error); 3 a missing credential; 130 interrupted; 143 terminated (SIGTERM).
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from llmstep.errors import CompileError, LlmstepError

EXIT_INTERRUPTED = 130
EXIT_INTERNAL = 70


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    _setup_logging(args)
    try:
        return int(args.func(args) or 0)
    except LlmstepError as exc:
        if args.debug:
            raise
        print(f"llmstep: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt as exc:  # or SIGTERM during a run (llmstep.run.lifecycle.Terminated)
        print(f"llmstep: {getattr(exc, 'message', 'interrupted')}", file=sys.stderr)
        return getattr(exc, "exit_code", EXIT_INTERRUPTED)
    except Exception as exc:
        if args.debug:
            raise
        print(f"llmstep: internal error: {type(exc).__name__}: {exc} (rerun with --debug)", file=sys.stderr)
        return EXIT_INTERNAL


@functools.cache  # built once per process: a forked step finds it built by the fork server
def _parser() -> argparse.ArgumentParser:
    # --debug works before or after the command; SUPPRESS keeps a subcommand's default from
    # overwriting a --debug given before it.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks and debug logs")
    parser = argparse.ArgumentParser(
        prog="llmstep",
        description="Run LangChain chains on Kubernetes workflow engines, one container per Runnable.",
        epilog="exit codes: 0 ok; 1 a step raised or a run failed; 2 bad input; 3 missing credentials; 130 interrupted; "
        "143 terminated",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("compile", parents=[common], help="compile a chain to an Argo Workflow",
                       description="Compile a chain reference to an Argo Workflow (YAML).")
    p.add_argument("ref", metavar="REF", help="path/to/file.py:attr or package.module:attr")
    p.add_argument("-o", "--output", metavar="FILE", help="write the YAML here instead of stdout")
    p.add_argument("--image", help="the step image")
    p.add_argument("--name", help="the workflow name (default: derived from the chain)")
    p.add_argument("--data", choices=["artifacts", "parameters"], default="artifacts",
                   help="how data moves between steps (default: artifacts)")
    p.add_argument("--secret", default="llm-credentials", help="the Secret holding API keys")
    p.add_argument("--allow-pickle", action="store_true", help="send unserializable Runnables with cloudpickle")
    p.add_argument("--engine", choices=["argo", "tekton"], default="argo",
                   help="argo: a Workflow; tekton: the llmstep-run Task, a Pipeline and a PipelineRun")
    p.add_argument("--batch", type=int, metavar="N", help="(argo) the batch Workflow: the chain over every item of its "
                   "'inputs' parameter (withParam), at most N inputs in flight and N step pods at a time")
    p.set_defaults(func=_compile)

    p = sub.add_parser("exec", parents=[common], help="run one step (the container entrypoint)",
                       description="Run one step: read runnable.json and input from the data directory, "
                       "write output.json. Exit 0 ok, 1 the Runnable raised, 2 bad payload or input, "
                       "3 missing credentials.")
    p.add_argument("--data-dir", metavar="DIR", help="the data directory (default: $LLMSTEP_DATA_DIR or /llmstep)")
    p.add_argument("--step-name", metavar="NAME", help="the step's name in messages (a template shared by several steps)")
    tekton = p.add_argument_group("staging (Tekton: no artifacts, so the step lays out its own files)")
    tekton.add_argument("--payload-env", metavar="VAR", help="write runnable.json from this environment variable")
    tekton.add_argument("--input-env", metavar="VAR", help="the chain input (JSON) is in this environment variable")
    tekton.add_argument("--inputs", nargs="*", default=[], metavar="SOURCE[=PATH]",
                        help="input files: PATH relative to --link-root; 'input' alone takes --input-env")
    tekton.add_argument("--link-root", default="", metavar="DIR", help="the shared workspace that input paths are in")
    tekton.add_argument("--secrets-dir", default="", metavar="DIR", help="secret keys mounted as files (may be empty)")
    tekton.add_argument("--result", action="append", default=[], metavar="NAME=PATH",
                        help="write a result (preview, output-path, sha256, usage) to PATH after the step")
    kube = p.add_argument_group("records (KubernetesRunnable: the client reads the Pod's log)")
    kube.add_argument("--log-records", action="store_true", help="also write the output or error to stdout as '@llmstep {...}' lines")
    kube.add_argument("--stream", action="store_true", help="stream the Runnable, writing each chunk as a record")
    p.set_defaults(func=_exec)

    from llmstep.cli_cluster import add_cluster_commands
    from llmstep.cli_diagnose import add_diagnose_command
    from llmstep.cli_run import add_run_commands

    add_run_commands(sub, common)
    add_cluster_commands(sub, common)
    add_diagnose_command(sub, common)
    return parser


def _setup_logging(args: argparse.Namespace) -> None:
    level = logging.DEBUG if args.debug else logging.INFO
    logging.basicConfig(level=level, format="llmstep: %(message)s", stream=sys.stderr)


def _compile(args: argparse.Namespace) -> int:
    from llmstep.compiled import compile as compile_chain
    from llmstep.refs import load_reference, reference_name

    chain = load_reference(args.ref)
    compiled = compile_chain(
        chain, name=args.name or reference_name(args.ref), image=args.image, allow_pickle=args.allow_pickle, data=args.data, secret=args.secret
    )
    if args.batch is not None and args.engine != "argo":
        raise CompileError("--batch renders an Argo Workflow (withParam); drop --engine tekton")
    if args.batch is not None:
        text = compiled.to_batch_yaml(args.batch)
    else:
        text = compiled.to_yaml() if args.engine == "argo" else compiled.to_tekton_yaml()
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"llmstep: wrote {args.output} ({len(compiled.plan.steps)} steps)", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def _exec(args: argparse.Namespace) -> int:
    from llmstep import contract
    from llmstep.executor import run_step

    data_dir = Path(args.data_dir or os.environ.get("LLMSTEP_DATA_DIR") or "/llmstep")
    staged = args.payload_env or args.inputs or args.result or args.secrets_dir
    records = {"records": args.log_records or args.stream, "stream": args.stream, "step_name": args.step_name,
               "allow_pickle": os.environ.get(contract.PICKLE_ENV) != contract.REFUSE}
    if not staged:
        return run_step(data_dir, os.environ, **records)
    from llmstep import staging

    try:
        staging.stage(
            data_dir,
            payload=os.environ.get(args.payload_env) if args.payload_env else None,
            chain_input=os.environ.get(args.input_env) if args.input_env else None,
            inputs=args.inputs,
            link_root=args.link_root,
        )
    except LlmstepError as exc:
        logging.getLogger("llmstep.executor").error("step failed (exit %d): %s", exc.exit_code, exc)
        if records["records"]:
            from llmstep.executor import emit

            emit("error", step="?", type=type(exc).__name__, message=str(exc), exit_code=exc.exit_code)
        return exc.exit_code
    env = {**os.environ, **staging.read_secrets_dir(args.secrets_dir)}
    code = run_step(data_dir, env, **records)
    results = dict(item.partition("=")[::2] for item in args.result)
    if code == 0:
        staging.publish(data_dir, results, args.link_root)
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

"""CLI commands that run workflows locally and show their records: ``run``, ``runs``, ``show``."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from llmstep import exitcodes
from llmstep.cli.options import (
    add_input_options,
    add_value_type_option,
    parameters,
    positive_int,
    refuse_reference_options,
)
from llmstep.cli.show import json_text
from llmstep.contract import Phase
from llmstep.errors import UsageError, WorkflowError

KEEP_RUNS = 50
"""Unpinned run records beyond this many (newest kept) are pruned when a new run starts."""


PRICES_HELP = (
    "a price table (JSON or YAML: {MODEL: {input: PRICE, output: PRICE}}, per 1,000,000 tokens) for an "
    "estimated cost of the run's tokens; llmstep ships no prices"
)
RUNS_DIR_HELP = (
    "where run records live (default: $LLMSTEP_RUNS_DIR, else .llmstep/runs under the current directory; "
    "records are per directory: set LLMSTEP_RUNS_DIR to one place to list them from anywhere)"
)


def add_run_commands(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "run",
        parents=[common],
        help="run a chain or a Workflow file on this machine",
        description="Run a chain reference or an Argo Workflow file (one llmstep generated, "
        "hand edits included) on this machine, one process per step.",
    )
    p.add_argument(
        "target",
        nargs="*",
        metavar="REF|FILE.yaml",
        help="a chain reference (path/to/file.py:attr, package.module:attr), an Argo Workflow file, "
        "or Tekton files (a PipelineRun or TaskRun with the Pipeline and Tasks it uses)",
    )
    add_input_options(p)
    p.add_argument(
        "--parallelism", type=positive_int, metavar="N", help="at most N steps at once (with --inputs, default 8)"
    )
    p.add_argument("--secrets", metavar="FILE", help="a dotenv file with secret values (e.g. OPENAI_API_KEY=...)")
    p.add_argument("--resume", metavar="RUN", help="re-run the steps of RUN that did not succeed")
    p.add_argument(
        "--keep",
        action="store_true",
        help=f"pin this run's record (unpinned ones beyond the newest {KEEP_RUNS} are pruned)",
    )
    p.add_argument("--json", action="store_true", help="print a machine-readable result")
    p.add_argument(
        "--allow-pickle",
        action="store_true",
        help="(REF) send unserializable Runnables with cloudpickle; "
        "(FILE, --resume) run the pickle payloads of a file you trust (they run any code they hold)",
    )
    p.add_argument(
        "--allow-endpoint",
        action="append",
        default=[],
        metavar="URL",
        help="(FILE, --resume) let the file's steps send your model key to URL, an endpoint the file names "
        "(by default only the endpoint your OPENAI_BASE_URL or AZURE_OPENAI_ENDPOINT configures, else "
        "the provider's own)",
    )
    add_value_type_option(p, only_ref=True)
    p.add_argument("--image", help="(REF) the step image written into the workflow")
    p.add_argument(
        "--engine", choices=["argo", "tekton"], help="(REF) which documents to render and run (default: argo)"
    )
    p.add_argument("--runs-dir", metavar="DIR", help=RUNS_DIR_HELP)
    p.add_argument(
        "--isolation",
        choices=["process", "container"],
        default="process",
        help="run each step as a process (default) or in the step image",
    )
    p.add_argument(
        "--engine-cli",
        choices=["podman", "docker"],
        default="podman",
        help="container engine for --isolation container",
    )
    p.add_argument(
        "--no-fork-server",
        action="store_true",
        help="start every step as a cold process instead of forking it from a server with LangChain imported",
    )
    p.add_argument("--prices", metavar="FILE", help=PRICES_HELP)
    p.set_defaults(func=_run)

    p = sub.add_parser("runs", parents=[common], help="list past local runs")
    p.add_argument("--runs-dir", metavar="DIR", help=RUNS_DIR_HELP)
    p.add_argument("--json", action="store_true", help="print the runs as a JSON list")
    p.set_defaults(func=_runs)

    p = sub.add_parser(
        "fork-servers",
        parents=[common],
        help="list your fork servers (local runs' warm step starters)",
        description="List the fork servers local runs left warm for later runs (each ends after "
        "LLMSTEP_FORKSERVER_IDLE seconds without work), or stop them.",
    )
    p.add_argument("--stop", action="store_true", help="stop them (each ends once its running steps have)")
    p.set_defaults(func=_fork_servers)

    p = sub.add_parser("show", parents=[common], help="show a local run, or one step of it")
    p.add_argument("run", metavar="RUN")
    p.add_argument("step", nargs="?", metavar="STEP")
    p.add_argument("--runs-dir", metavar="DIR", help=RUNS_DIR_HELP)
    p.add_argument("--json", action="store_true", help="print the run (or the step) as JSON")
    p.add_argument("--prices", metavar="FILE", help=PRICES_HELP)
    p.set_defaults(func=_show)


def _runs_dir(args: argparse.Namespace, write: bool = False) -> Path:
    """Where run records live; with ``write``, checked to be writable before a run starts."""
    path = Path(args.runs_dir or os.environ.get("LLMSTEP_RUNS_DIR") or Path(".llmstep") / "runs")
    if write:  # probe, and leave nothing behind: a run refused later must not leave a directory
        created = [p for p in (path, *path.parents) if not p.exists()]
        try:
            path.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=path):
                pass
        except OSError as exc:
            source = (
                "--runs-dir"
                if args.runs_dir
                else "LLMSTEP_RUNS_DIR"
                if os.environ.get("LLMSTEP_RUNS_DIR")
                else "runs directory"
            )
            cause = "it is not a directory" if path.exists() and not path.is_dir() else exc.strerror or exc
            raise UsageError(
                f"{source} {path}: cannot write run records there ({cause}); pass --runs-dir DIR"
            ) from None
        finally:
            for made in created:
                try:
                    made.rmdir()
                except OSError:
                    break
    return path


def _prices(args: argparse.Namespace) -> Any:
    """The ``--prices`` table (its name and prices), read before anything runs; None without one."""
    from llmstep.usage import load_prices

    return (args.prices, load_prices(args.prices)) if args.prices else None


def read_secrets(path: str | None) -> dict[str, str]:
    """The caller's environment, overlaid with a dotenv file; the runner picks only declared keys."""
    values = dict(os.environ)
    if not path:
        return values
    from llmstep.files import read_text

    lines = read_text(path, "--secrets").splitlines()
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.removeprefix("export ").partition("=")
        if not sep or not key.strip().replace("_", "").isalnum():
            raise UsageError(f"--secrets {path}:{number}: expected KEY=VALUE")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def _documents(args: argparse.Namespace, isolation: Any) -> tuple[list[dict[str, Any]], Any]:
    """The documents to run, and a launcher already warming up (its fork server imports
    LangChain while this process renders the documents). No launcher: they come from files."""
    from llmstep.cli.refs import is_reference
    from llmstep.files import check_documents_exist

    targets = args.target
    check_documents_exist(targets)
    if targets and all(Path(t).is_file() and not t.endswith(".py") for t in targets):
        from llmstep.yamlio import load_documents

        docs = [doc for t in targets for doc in load_documents(t)]
        if not docs:
            raise WorkflowError(f"{' '.join(targets)} holds no document")
        return docs, None
    target = targets[0]
    if len(targets) == 1 and is_reference(target):
        compiled = _compile_reference(args, target)
        if args.inputs is not None and args.engine == "tekton":
            raise UsageError("--inputs (a batch) runs the Argo batch Workflow; drop --engine tekton")
        launcher = isolation.start_launcher(classes=[c for s in compiled.plan.steps for c in s.payload["allowed"]])
        try:
            if args.inputs is not None:
                return [compiled.to_batch_dict(args.parallelism or 8)], launcher
            return (compiled.to_tekton() if args.engine == "tekton" else [compiled.to_dict()]), launcher
        except BaseException:
            launcher.close()
            raise
    raise UsageError(f"{target!r} is neither a Workflow file nor a chain reference (path/to/file.py:attr)")


def _compile_reference(args: argparse.Namespace, target: str) -> Any:
    """The chain reference ``target`` compiled with the run's options."""
    from llmstep.api import compile as compile_chain
    from llmstep.cli.refs import load_classes, load_reference, reference_name

    return compile_chain(
        load_reference(target),
        name=reference_name(target),
        allow_pickle=args.allow_pickle,
        image=args.image,
        value_types=load_classes(args.value_types, "--value-type"),
    )


def _recompiled(args: argparse.Namespace) -> list[dict[str, Any]]:
    """The documents of the chain reference ``args.target[0]`` compiled now (a resume with current code)."""
    compiled = _compile_reference(args, args.target[0])
    return compiled.to_tekton() if args.engine == "tekton" else [compiled.to_dict()]


def _run(args: argparse.Namespace) -> int:
    import signal

    from llmstep.local.entry import resume_run, run_document, run_tekton
    from llmstep.local.isolation import Isolation
    from llmstep.local.lifecycle import Terminated

    def terminated(signum: int, frame: Any) -> None:
        raise Terminated

    signal.signal(signal.SIGTERM, terminated)  # stopped like Ctrl-C: steps stopped, record finished, exit 143
    files = bool(args.target) and all(Path(t).is_file() and not t.endswith(".py") for t in args.target)
    if files or (args.resume and not args.target):  # what runs is rendered already
        refuse_reference_options(args, " ".join(args.target) or f"run {args.resume}", ("--image", "--engine"))
    args.engine = args.engine or "argo"
    runs_dir = _runs_dir(args, write=True)
    prices = _prices(args)
    secrets = read_secrets(args.secrets)
    environ = dict(os.environ)  # read once, passed down: the runner reads no environment of its own
    isolation = Isolation.from_environ(
        environ, kind=args.isolation, engine_cli=args.engine_cli, fork=not args.no_fork_server
    )
    if args.resume:
        from llmstep.cli.refs import is_reference

        if args.input or args.inputs or args.parameter:
            raise UsageError("--resume RUN takes no input: the run's own is reused")
        documents = None
        if args.target:
            if len(args.target) != 1 or not is_reference(args.target[0]):
                raise UsageError(
                    "--resume RUN takes at most a chain reference (path/to/file.py:attr), to resume "
                    "with its current code; not a Workflow file"
                )
            documents = _recompiled(args)
            print(
                f"llmstep: resuming {args.resume} with the current code of {args.target[0]}; finished steps keep "
                "their outputs",
                file=sys.stderr,
            )
        else:
            print(
                f"llmstep: resuming {args.resume} with the code recorded when it started (its workflow.yaml); to "
                f"resume with your current code: llmstep run REF --resume {args.resume}",
                file=sys.stderr,
            )
        record = resume_run(
            args.resume,
            parallelism=args.parallelism,
            secrets=secrets,
            runs_dir=runs_dir,
            quiet=args.json,
            isolation=isolation,
            allow_pickle=args.allow_pickle,
            allow_endpoints=tuple(args.allow_endpoint),
            documents=documents,
            environ=environ,
        )
    else:
        if not args.target:
            raise UsageError("llmstep run needs a chain reference or a Workflow file (or --resume RUN)")
        docs, launcher = _documents(args, isolation)
        try:
            _prune(runs_dir)
            batch = args.inputs is not None and args.engine == "argo"
            options = {
                "parameters": parameters(args),
                "parallelism": None if batch else args.parallelism,
                "secrets": secrets,
                "runs_dir": runs_dir,
                "quiet": args.json,
                "isolation": isolation,
                "launcher": launcher,
                "allow_pickle": launcher is not None or args.allow_pickle,
                "from_file": launcher is None,
                "allow_endpoints": tuple(args.allow_endpoint),
                "environ": environ,
            }
            if any(d.get("kind") in ("PipelineRun", "TaskRun", "Pipeline") for d in docs):
                record = run_tekton(docs, **options)
            elif len(docs) == 1:
                record = run_document(docs[0], **options)
            else:
                raise WorkflowError(
                    f"{' '.join(args.target)}: expected one Argo Workflow or a Tekton PipelineRun/TaskRun set"
                )
        finally:
            if launcher is not None:
                launcher.close()
    if args.keep:
        record.pin()
    return _report(record, args.json, prices)


def _report(record: Any, as_json: bool, prices: Any = None) -> int:
    from llmstep import serde
    from llmstep.cli.show import usage_json, usage_lines
    from llmstep.local.records import failure_message

    tokens = record.usage()
    words = [] if as_json else usage_lines(tokens, prices)  # one line, at the end, when a model was called
    if record.state.batch:
        code = report_batch(record.results(return_exceptions=True), f"llmstep show {record.run_id}")
        if words:
            print("llmstep: " + " | ".join(words), file=sys.stderr)
        return code
    ok = record.phase == Phase.SUCCEEDED
    output: Any = record.result() if ok else None
    if as_json:
        encoded = serde.plain_of(output) if ok else None
        steps = {t: dict(zip(("phase", "message"), record.shown(n), strict=True)) for t, n in record.in_run_order()}
        print(
            json_text(
                {
                    "run": record.run_id,
                    "phase": record.phase,
                    "output": encoded,
                    "failures": record.failures(),
                    "steps": steps,
                    **usage_json(tokens, prices),
                },
                indent=2,
            )
        )
    elif ok:
        print(output if isinstance(output, str) else output_text(output))
    else:
        print(failure_message(record), file=sys.stderr)
    if words:
        print("llmstep: " + " | ".join(words), file=sys.stderr)
    return exitcodes.EXIT_OK if ok else exitcodes.EXIT_FAILED


def report_batch(results: list[Any], details: str) -> int:
    """A batch's results, one JSON line per input in input order (``output`` or ``error``);
    exit 1 when any input failed."""
    from llmstep import serde
    from llmstep.render.batch import ItemFailed

    failed = 0
    for index, result in enumerate(results):
        if isinstance(result, ItemFailed):
            failed += 1
            line = {"index": index, "error": str(result), "steps": result.steps}
        else:
            line = {"index": index, "output": serde.plain_of(result)}
        print(json_text(line))
    if failed:
        print(f"llmstep: {failed} of {len(results)} inputs failed; details: {details}", file=sys.stderr)
    return exitcodes.EXIT_FAILED if failed else exitcodes.EXIT_OK


def output_text(value: Any) -> str:
    from llmstep import serde

    text = serde.text_of(value)  # a message's content; a chain that ends in a prompt prints its text (--json: JSON)
    return text if text is not None else json_text(serde.plain_of(value), indent=2)


def _prune(runs_dir: Path) -> None:
    from llmstep.local.records import prune

    prune(runs_dir, KEEP_RUNS)


def _runs(args: argparse.Namespace) -> int:
    from llmstep.cli.show import print_runs
    from llmstep.local.records import list_runs

    return print_runs(list_runs(_runs_dir(args)), _runs_dir(args), args.json)


def _fork_servers(args: argparse.Namespace) -> int:
    import time

    from llmstep.local.forkserver import registry as forkservers
    from llmstep.local.forkserver import runtime_dir

    home = runtime_dir(os.environ.get("XDG_RUNTIME_DIR"))
    servers = forkservers.list_servers(home)
    if args.stop:
        for server in servers:
            forkservers.stop(server)
        print(f"stopped {len(servers)} fork server(s)")
        return 0
    if not servers:
        print(f"no fork servers in {home or 'the runtime directory'}")
        return 0
    print(f"{'PID':>8}  {'STARTED':<19}  {'IDLE(s)':>7}  {'LAST USED':>9}  SOCKET")
    for s in servers:
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(s.started)) if s.started else "?"
        ago = f"{time.time() - s.used:.0f}s ago" if s.used else "?"
        print(f"{s.pid or '?':>8}  {started:<19}  {s.idle if s.idle is not None else '?':>7}  {ago:>9}  {s.socket}")
    return 0


def _show(args: argparse.Namespace) -> int:
    from llmstep.cli.show import show, show_json
    from llmstep.local.records import RunRecord

    prices = _prices(args)  # a bad table is refused before anything is read
    record = RunRecord.open(_runs_dir(args), args.run)
    if args.step and args.step not in record.nodes:
        raise UsageError(f"run {record.run_id} has no step {args.step!r}; steps: {', '.join(record.nodes)}")
    if args.json:
        print(json_text(show_json(record, args.step, prices), indent=2))
    else:
        show(record, args.step, prices)
    return 0

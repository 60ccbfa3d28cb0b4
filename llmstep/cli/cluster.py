"""CLI commands for a cluster: ``submit`` a chain or Workflow file, read a ``result``.

The transport is the Kubernetes API (kubeconfig, like kubectl) unless ``--argo-server`` or
``ARGO_SERVER`` names an Argo Server, as with the ``argo`` CLI (``ARGO_TOKEN``, ``ARGO_SECURE``,
``ARGO_INSECURE_SKIP_VERIFY`` apply).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from llmstep.errors import UsageError, WorkflowError


def add_cluster_commands(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    from llmstep.cli.options import add_input_options, add_value_type_option, positive_int, seconds

    cluster = argparse.ArgumentParser(add_help=False)
    g = cluster.add_argument_group("cluster")
    g.add_argument(
        "-n", "--namespace", help="the namespace (default: the kubeconfig context's, as for kubectl; else default)"
    )
    g.add_argument("--kubeconfig", metavar="FILE", help="kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
    g.add_argument("--context", help="kubeconfig context")
    g.add_argument(
        "--argo-server", metavar="HOST[:PORT]|URL", help="use the Argo Server's REST API (default: $ARGO_SERVER)"
    )
    g.add_argument("--token", help="Argo Server bearer token (default: $ARGO_TOKEN)")
    g.add_argument(
        "-k", "--insecure-skip-verify", action="store_true", help="do not verify the Argo Server's TLS certificate"
    )
    g.add_argument("--ca-file", metavar="FILE", help="verify the Argo Server's certificate against this CA bundle")
    g.add_argument("--json", action="store_true", help="print the result as JSON")
    g.add_argument(
        "--engine",
        choices=("argo", "tekton"),
        default="argo",
        help="argo (a Workflow) or tekton (the Tasks, the Pipeline and a PipelineRun, through the Kubernetes API)",
    )

    p = sub.add_parser(
        "submit",
        parents=[common, cluster],
        help="submit a chain or Workflow file to a cluster",
        description="Create the Workflow on a cluster and print its name; with --wait, wait for it "
        "and print its result (exit 1 when it fails).",
    )
    p.add_argument(
        "target",
        metavar="REF|FILE.yaml",
        help="a chain reference (path/to/file.py:attr), an Argo Workflow file, or with --engine tekton a file "
        "with the Tasks, the Pipeline and a PipelineRun (llmstep compile --engine tekton)",
    )
    add_input_options(p)
    p.add_argument(
        "--parallelism",
        type=positive_int,
        default=8,
        metavar="N",
        help="with --inputs: at most N inputs in flight and N step pods at a time (default 8)",
    )
    p.add_argument("--wait", action="store_true", help="wait for the workflow and print its result")
    p.add_argument(
        "--timeout",
        type=seconds,
        default=3600,
        metavar="SECONDS",
        help="with --wait: give up after this long (default 3600)",
    )
    p.add_argument("--image", help="(REF) the step image")
    p.add_argument("--allow-pickle", action="store_true", help="(REF) send unserializable Runnables with cloudpickle")
    add_value_type_option(p, only_ref=True)
    p.add_argument("--ui-url", metavar="URL", help="the Argo UI's base URL, for the printed link")
    p.set_defaults(func=_submit)

    p = sub.add_parser(
        "result",
        parents=[common, cluster],
        help="print the result of a workflow on a cluster",
        description="Print a finished workflow's result (a batch prints one JSON line per input), "
        "or with --engine tekton a PipelineRun's.",
    )
    p.add_argument("name", metavar="NAME", help="the workflow (or with --engine tekton, the PipelineRun) name")
    p.set_defaults(func=_result)


def _transport(args: argparse.Namespace) -> Any:
    from llmstep.cluster.connect import transport
    from llmstep.cluster.transports import default_namespace

    if not args.namespace:
        args.namespace = default_namespace(args.kubeconfig or os.environ.get("KUBECONFIG"), args.context)

    verify: bool | str | None = args.ca_file or (False if args.insecure_skip_verify else None)
    return transport(
        kubeconfig=args.kubeconfig,
        context=args.context,
        argo_server=args.argo_server,
        token=args.token,
        verify=verify,
        env=os.environ,
    )


def _document(args: argparse.Namespace) -> dict[str, Any]:
    from llmstep.cli.refs import is_reference, load_classes, load_reference, reference_name
    from llmstep.files import check_documents_exist

    check_documents_exist([args.target])
    path = Path(args.target)
    if path.is_file() and path.suffix != ".py":
        from llmstep.cli.options import refuse_reference_options
        from llmstep.yamlio import load_documents

        refuse_reference_options(args, args.target, ("--image", "--allow-pickle"))
        docs = [d for d in load_documents(path) if d.get("kind") == "Workflow"]
        if len(docs) != 1:
            raise WorkflowError(f"{args.target}: expected one Argo Workflow, found {len(docs)}")
        return docs[0]
    if not is_reference(args.target):
        raise UsageError(f"{args.target!r} is neither a Workflow file nor a chain reference (path/to/file.py:attr)")
    from llmstep.api import compile as compile_chain

    compiled = compile_chain(
        load_reference(args.target),
        name=reference_name(args.target),
        image=args.image,
        allow_pickle=args.allow_pickle,
        value_types=load_classes(args.value_types, "--value-type"),
    )
    return compiled.to_batch_dict(args.parallelism) if args.inputs is not None else compiled.to_dict()


def _submit(args: argparse.Namespace) -> int:
    from llmstep.cli.options import parameters

    if args.engine == "tekton":
        run = _submit_tekton(args, parameters(args))
    else:
        from llmstep.cluster import argo
        from llmstep.local.argo_doc import check_declared, declared_parameters

        doc = _document(args)
        params = parameters(args)
        check_declared(declared_parameters(doc), params, "spec.arguments.parameters")
        transport = _transport(args)  # first: it settles the namespace
        run = argo.submit(doc, params, namespace=args.namespace, transport=transport, ui_url=args.ui_url)
    print(
        f"Name: {run.name}\nNamespace: {run.namespace}" + (f"\nURL: {run.url}" if run.url else ""),
        file=sys.stderr if args.wait else sys.stdout,
    )
    if not args.wait:
        return 0
    try:
        run.wait(timeout=args.timeout)
    except KeyboardInterrupt:
        # as with argo submit --wait: Ctrl-C stops the waiting, not the workflow
        if args.engine == "tekton":
            print(
                f"llmstep: stopped waiting; pipelinerun {run.name} keeps running. Later: llmstep result --engine tekton "
                f"{run.name} -n {run.namespace}; to stop it: tkn pipelinerun cancel {run.name} -n {run.namespace}",
                file=sys.stderr,
            )
            raise
        print(
            f"llmstep: stopped waiting; workflow {run.name} keeps running. Later: llmstep result {run.name} "
            f"-n {run.namespace}; to stop it: argo terminate -n {run.namespace} {run.name}",
            file=sys.stderr,
        )
        raise
    return _print(run, args.json)


def _result(args: argparse.Namespace) -> int:
    if args.engine == "tekton":
        from llmstep.cluster import tekton

        _tekton_only(args)
        api = _kube_api(args)
        api.get(args.namespace, "PipelineRun", args.name)  # a clear "not found" first
        return _print(tekton.PipelineRunHandle(args.name, args.namespace, api), args.json)
    from llmstep.cluster import argo

    transport = _transport(args)
    run = argo.attach(transport.get(args.namespace, "Workflow", args.name), args.namespace, transport)
    return _print(run, args.json)


def _print(run: Any, as_json: bool) -> int:
    from llmstep import serde
    from llmstep.cli.run import json_text, output_text, report_batch
    from llmstep.cluster.argo import BatchRun

    if isinstance(run, BatchRun):
        return report_batch(run.results(return_exceptions=True), f"argo get -n {run.namespace} {run.name}")
    output = run.result()
    if as_json:
        from llmstep.cluster.tekton import PipelineRunHandle

        kind = "pipelinerun" if isinstance(run, PipelineRunHandle) else "workflow"
        print(json_text({kind: run.name, "output": serde.plain_of(output)}))
    else:
        print(output if isinstance(output, str) else output_text(output))
    return 0


def _tekton_only(args: argparse.Namespace) -> None:
    """Tekton goes through the Kubernetes API: the Argo Server's options do not apply."""
    from llmstep.cluster.transports import default_namespace

    used = [
        flag
        for flag, value in (
            ("--argo-server", args.argo_server),
            ("--token", args.token),
            ("--insecure-skip-verify", args.insecure_skip_verify),
            ("--ca-file", args.ca_file),
        )
        if value
    ]
    if used:
        raise UsageError(
            f"{', '.join(used)}: an Argo Server option; --engine tekton goes through the Kubernetes API "
            "(--kubeconfig, --context)"
        )
    if not args.namespace:
        args.namespace = default_namespace(args.kubeconfig or os.environ.get("KUBECONFIG"), args.context)


def _kube_api(args: argparse.Namespace) -> Any:
    from llmstep.cluster.transports import KubeApi, kube_client

    return KubeApi(kube_client(args.kubeconfig, args.context))


def _submit_tekton(args: argparse.Namespace, params: dict[str, str]) -> Any:
    """The Tasks and the Pipeline applied, then the PipelineRun created with its ``input``."""
    from llmstep.cli.refs import is_reference, load_classes, load_reference, reference_name
    from llmstep.cluster import tekton

    _tekton_only(args)
    if args.inputs is not None:
        raise UsageError(
            "--inputs: a batch runs on Argo only (one Workflow over all inputs); on Tekton, "
            "submit one PipelineRun per input"
        )
    unknown = sorted(set(params) - {"input"})
    if unknown:
        raise UsageError(f"-p {unknown[0]}: the Pipeline declares only the 'input' param")
    from llmstep.files import check_documents_exist

    check_documents_exist([args.target])
    path = Path(args.target)
    if path.is_file() and path.suffix != ".py":
        from llmstep.cli.options import refuse_reference_options
        from llmstep.render.tekton import INPUT_PARTS, with_run
        from llmstep.yamlio import load_documents

        refuse_reference_options(args, args.target, ("--image", "--allow-pickle"))
        docs = with_run([d for d in load_documents(path) if d.get("kind") in ("Task", "Pipeline", "PipelineRun")])
        runs = [d for d in docs if d["kind"] == "PipelineRun"]
        if len(runs) != 1 or not any(d["kind"] == "Pipeline" for d in docs):
            raise WorkflowError(
                f"{args.target}: expected one Pipeline (llmstep compile --engine tekton), with at most one "
                "PipelineRun; found " + (", ".join(d["kind"] for d in docs) or "none")
            )
        docs = [d for d in docs if d["kind"] != "PipelineRun"] + runs
        given = {p["name"]: p.get("value") for p in runs[0]["spec"].get("params") or []}
        text = params.get("input", given.get("input", "{}"))
        if "input" not in params and given.get(INPUT_PARTS):  # a long input, as --run-only writes it
            from llmstep.contract import join_value_parts

            text = join_value_parts(given[INPUT_PARTS], f"{args.target}: the PipelineRun's {INPUT_PARTS}")
    elif is_reference(args.target):
        from llmstep.api import compile as compile_chain

        compiled = compile_chain(
            load_reference(args.target),
            name=reference_name(args.target),
            image=args.image,
            allow_pickle=args.allow_pickle,
            value_types=load_classes(args.value_types, "--value-type"),
        )
        docs = compiled.to_tekton()
        text = params.get("input", "{}")
    else:
        raise UsageError(f"{args.target!r} is neither a Tekton file nor a chain reference (path/to/file.py:attr)")
    return tekton.submit(docs, text, namespace=args.namespace, transport=_kube_api(args))

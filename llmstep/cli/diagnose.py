"""``llmstep diagnose``: what is wrong with a failed workflow, pipeline or object, and how to fix it."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from llmstep.diagnose import settings
from llmstep.errors import DiagnosisError, UsageError, connection_reason


def add_diagnose_command(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    from llmstep.cli.options import count, seconds

    p = sub.add_parser(
        "diagnose",
        parents=[common],
        allow_abbrev=False,  # as llmstep exec: options spelled in full in a step
        help="ask an LLM what is wrong with a failed object and how to fix it",
        description="Gather evidence about TARGET (KIND/NAME: workflow, pipelinerun, taskrun, pod, deployment, "
        "replicaset, statefulset, daemonset, job, cronjob) or a file, remove secrets, and ask the model. "
        "Exit 0 with a report; 1 when evidence or the model's answer cannot be had; 2 on bad arguments.",
    )
    p.add_argument("target", nargs="?", metavar="KIND/NAME")
    src = p.add_argument_group("evidence")
    src.add_argument(
        "-f", "--filename", metavar="FILE", help="a manifest or any text ('-' for stdin); no cluster needed"
    )
    src.add_argument("--workflow-failures", metavar="JSON", help="Argo's {{workflow.failures}} (from an exit handler)")
    src.add_argument(
        "--task-statuses", metavar="JSON", help="Tekton task statuses {task: status} (from a finally task)"
    )
    src.add_argument("-n", "--namespace", help="namespace (default: the kubeconfig context's, or default)")
    src.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config, or in-cluster)")
    src.add_argument("--context", help="kubeconfig context")
    src.add_argument("--tail", type=count, default=50, metavar="N", help="log lines per container (default 50)")
    ask = p.add_argument_group("question")
    ask.add_argument("--prompt", choices=settings.PROMPTS, default=settings.PROMPT)
    ask.add_argument(
        "--custom-prompt", metavar="TEXT", help="for --prompt custom; {evidence} marks where evidence goes"
    )
    ask.add_argument("--lang", help="the answer's language (any language name)")
    ask.add_argument("--redact", action="append", default=[], metavar="REGEX", help="also remove text matching REGEX")
    ask.add_argument(
        "--redact-each",
        nargs="*",
        default=[],
        metavar="REGEX",
        help="several --redact patterns at once (last: a Tekton array param expands into it)",
    )
    ask.add_argument(
        "--anonymize",
        action="store_true",
        help="mask object names, namespaces, containers, hosts and IPs for the model; unmask in the answer",
    )
    ask.add_argument(
        settings.EVIDENCE_BYTES_FLAG,
        type=int,
        default=settings.EVIDENCE_BYTES,
        metavar="N",
        dest="max_evidence_bytes",
        help=f"send at most N bytes of evidence (default {settings.EVIDENCE_BYTES}); "
        "the rest is cut, keeping each section's first lines and those that name an error, and says so",
    )
    ask.add_argument("--dry-run", action="store_true", help="print exactly what would be sent; call no model")
    model = p.add_argument_group("model")
    model.add_argument("--provider", choices=settings.PROVIDERS, default=settings.PROVIDER)
    model.add_argument("--model", default=settings.MODEL)
    model.add_argument(
        "--base-url",
        help=f"an OpenAI-compatible endpoint (default: $OPENAI_BASE_URL, $OPENAI_API_BASE, else {settings.OPENAI_URL})",
    )
    model.add_argument("--azure-endpoint", help=f"the Azure OpenAI endpoint (default: ${settings.AZURE_ENDPOINT_ENV})")
    model.add_argument("--azure-deployment")
    model.add_argument(
        "--api-version",
        help=f"Azure OpenAI API version (default: ${settings.API_VERSION_ENV}, else {settings.API_VERSION})",
    )
    model.add_argument(
        "--api-key-env",
        metavar="VAR",
        help="env var with the key (default OPENAI_API_KEY, or AZURE_OPENAI_API_KEY for azure)",
    )
    model.add_argument("--api-key-secret", metavar="NAME/KEY", help="read the key from a Kubernetes Secret instead")
    model.add_argument(
        "--api-key-file", metavar="FILE", help="read the key from a file (a Secret mounted as a workspace)"
    )
    model.add_argument("--timeout", type=seconds, default=60.0, metavar="SECONDS")
    model.add_argument("--retries", type=count, default=3, metavar="N")
    out = p.add_argument_group("delivery")
    out.add_argument("--format", choices=["markdown", "json"], default="markdown")
    out.add_argument("--output", metavar="FILE", help="also write the full report here")
    out.add_argument(
        "--output-dir", metavar="DIR", help="also write the full report into DIR (empty: don't), e.g. a workspace"
    )
    out.add_argument("--output-name", default="diagnosis.md", metavar="NAME", help="the report's name in --output-dir")
    out.add_argument("--summary-file", metavar="FILE", help="write a short summary (fits a Tekton result) here")
    out.add_argument("--webhook-env", metavar="VAR", help="env var holding a Slack-compatible webhook URL")
    p.set_defaults(func=run_diagnose)


def _client(args: argparse.Namespace) -> Any:
    from llmstep.cluster.transports import kube_client

    # in a pod (the diagnose step) without a kubeconfig: its service account
    in_cluster = not (args.kubeconfig or os.environ.get("KUBECONFIG")) and bool(
        os.environ.get("KUBERNETES_SERVICE_HOST")
    )
    return kube_client(
        args.kubeconfig, args.context, in_cluster, error=DiagnosisError, purpose="reading from a cluster"
    )


def _namespace(args: argparse.Namespace) -> str:
    from llmstep.cluster.transports import default_namespace

    return args.namespace or default_namespace(
        args.kubeconfig or os.environ.get("KUBECONFIG"), getattr(args, "context", None)
    )


def _evidence(args: argparse.Namespace) -> Any:
    from llmstep.diagnose import collector, evidence

    if args.filename:
        from llmstep.files import read_text

        text = read_text(args.filename, "-f")
        return evidence.from_text(text, "stdin" if args.filename == "-" else args.filename)
    if args.workflow_failures is not None or args.task_statuses is not None:
        name = (args.target or "run/unknown").partition("/")[2]
        found = (
            evidence.from_workflow_failures(args.workflow_failures, name)
            if args.workflow_failures is not None
            else evidence.from_task_statuses(args.task_statuses, args.target or "pipelinerun/unknown")
        )
        if os.environ.get("KUBERNETES_SERVICE_HOST") or args.kubeconfig:
            try:  # inside a cluster the pods' evidence is worth having too
                found.merge(collect(_client(args), _namespace(args), args.target, args.tail))
            except DiagnosisError as exc:
                found.add("cluster evidence unavailable", [str(exc)])
        return found
    if not args.target:
        raise UsageError("llmstep diagnose needs a TARGET (KIND/NAME) or -f FILE")
    collector.parse_target(args.target)  # a bad target is reported before any cluster is contacted
    return collect(_client(args), _namespace(args), args.target, args.tail)


def collect(client: Any, namespace: str, target: str, tail: int = 50) -> Any:
    """The evidence about ``target`` read from the Kubernetes API, its errors translated where every
    Kubernetes API error is (``llmstep.cluster.transports.kube_errors``), as DiagnosisErrors."""
    from llmstep.cluster.transports import DIAGNOSIS_HINTS, kube_errors
    from llmstep.diagnose.collector import Collector, parse_target

    kind, name = parse_target(target)
    with kube_errors(client, f"reading {kind}/{name} in namespace {namespace}", DIAGNOSIS_HINTS, error=DiagnosisError):
        return Collector(client, namespace, tail).collect(target)


def _api_key(args: argparse.Namespace) -> str:
    if args.api_key_file:
        try:
            key = Path(args.api_key_file).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            cause = "not UTF-8 text" if isinstance(exc, UnicodeDecodeError) else exc.strerror or exc
            raise DiagnosisError(f"--api-key-file {args.api_key_file}: {cause}; is the Secret bound?") from exc
        if key:
            return key
    if args.api_key_secret:
        name, _, key = args.api_key_secret.partition("/")
        import base64

        try:
            secret = _client(args).CoreV1Api().read_namespaced_secret(name, _namespace(args))
            return base64.b64decode((secret.data or {})[key or settings.OPENAI_KEY]).decode()
        except Exception as exc:  # missing Secret, key or permission
            raise DiagnosisError(
                f"cannot read the key from Secret {args.api_key_secret}: {connection_reason(exc)}"
            ) from exc
    var = args.api_key_env or settings.key_for(args.provider)
    found = os.environ.get(var)
    if not found:
        raise DiagnosisError(
            f"no API key: set {var} (or give --api-key-file FILE, --api-key-env VAR or --api-key-secret NAME/KEY)"
        )
    return found


def run_diagnose(args: argparse.Namespace) -> int:
    from llmstep.diagnose import Model, Redactor, diagnose, prepared
    from llmstep.diagnose.report import post_webhook
    from llmstep.files import write_text

    for name in (
        "lang",
        "base_url",
        "azure_endpoint",
        "azure_deployment",
        "api_key_file",
        "custom_prompt",
        "task_statuses",
        "api_version",
    ):
        if getattr(args, name) == "":
            setattr(args, name, None)  # an empty Tekton/Argo param means "not set"

    if args.prompt == "custom" and not args.custom_prompt:
        raise UsageError(
            "--prompt custom needs the prompt text: --custom-prompt TEXT ({evidence} marks where the evidence goes)"
        )
    if args.max_evidence_bytes < settings.MIN_EVIDENCE_BYTES:
        raise UsageError(
            f"{settings.EVIDENCE_BYTES_FLAG} {args.max_evidence_bytes}: give at least {settings.MIN_EVIDENCE_BYTES} "
            f"bytes, room for a section's title, a few lines and the note of what was cut "
            f"(default {settings.EVIDENCE_BYTES})"
        )
    redactor = Redactor(
        patterns=[*args.redact, *args.redact_each], anonymize=args.anonymize
    )  # a bad --redact fails before any cluster call
    found = _evidence(args)
    if args.dry_run:
        sent = prepared(found, redactor, args.prompt, args.lang, args.custom_prompt, args.max_evidence_bytes)
        for message in sent:
            print(f"--- {message['role']}\n{message['content']}")
        print(f"--- {redactor.count} item(s) redacted; no model was called", file=sys.stderr)
        return 0
    # where the model is: the options, else this machine's endpoint variables, as a local step reads them
    model = Model(
        api_key=_api_key(args),
        provider=args.provider,
        model=args.model,
        base_url=args.base_url or settings.configured_endpoint("openai", os.environ),
        azure_endpoint=args.azure_endpoint or settings.configured_endpoint("azure", os.environ),
        azure_deployment=args.azure_deployment,
        api_version=args.api_version or os.environ.get(settings.API_VERSION_ENV) or settings.API_VERSION,
        timeout=args.timeout,
        retries=args.retries,
    )
    report = diagnose(
        found,
        model,
        redactor,
        kind=args.prompt,
        lang=args.lang,
        custom=args.custom_prompt,
        budget=args.max_evidence_bytes,
    )
    text = report.to_json() if args.format == "json" else report.to_markdown()
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    if args.output:
        write_text(args.output, text, "--output")
    if args.output_dir:
        write_text(Path(args.output_dir) / args.output_name, text, "--output-dir", parents=True)
    if args.summary_file:
        write_text(args.summary_file, report.short(), "--summary-file")
    if args.webhook_env:
        url = os.environ.get(args.webhook_env)
        if not url:
            raise DiagnosisError(f"--webhook-env {args.webhook_env}: the variable is not set")
        post_webhook(url, report)
    return 0

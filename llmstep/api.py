"""``Compiled``: a plan with its renderings and runners, what ``llmstep.compile`` returns."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llmstep.cluster import kube as _kube
from llmstep.compiler.walk import DEFAULT_SECRET, compile_plan
from llmstep.errors import UsageError
from llmstep.plan import Plan
from llmstep.settings import Settings

if TYPE_CHECKING:
    from hera.workflows import Workflow

MISSING: Any = object()
"""No ``input`` given (``None`` is a chain input like any other)."""


def compile(  # the public name is fixed by the API
    chain: Any,
    *,
    name: str | None = None,
    image: str | None = None,
    allow_pickle: bool = False,
    data: str = "artifacts",
    secret: str = DEFAULT_SECRET,
    on_failure: Any = None,
    value_types: Any = (),
    env: dict[str, Any] | None = None,
    image_modules: Any = None,
) -> Compiled:
    """Compile a LangChain Runnable into a plan of container steps.

    Args:
        chain: any Runnable (an LCEL chain, a model, a dict of Runnables, ...).
        name: the workflow name; derived from the chain's steps when omitted.
        image: the step image; defaults to ``llmstep.DEFAULT_IMAGE``.
        allow_pickle: send Runnables that LangChain cannot serialize (lambdas, custom classes,
            fakes) by value with cloudpickle.
        data: ``"artifacts"`` (needs an artifact repository) or ``"parameters"`` (small data).
        secret: the Kubernetes Secret that holds the model API keys.
        on_failure: ``llmstep.Diagnose(...)`` adds a failure hook (Argo exit handler, Tekton
            ``finally`` task) that asks a model what went wrong when the run did not succeed.
        value_types: classes (pydantic models, dataclasses, enums) whose instances pass between
            steps but that no Runnable of the chain names, such as a lambda's return type.
            The classes the chain's Runnables name (a parser's ``pydantic_object``, tool
            schemas, ``OutputType``) are declared without it. A step loads only declared classes.
        env: environment variables for every step (``llmstep.Step(env=...)`` for one step wins):
            literal strings, ``llmstep.ConfigMapKeyRef(name, key)`` or ``llmstep.SecretKeyRef(name,
            key)``; the container's ``env`` on Argo and Tekton, honoured by the local runner.
        image_modules: what the step images hold, to warn (``MissingModuleWarning``) about a step
            whose payload names a module its image lacks: ``{image: [module, ...]}``, then, for
            other images, the list an image built by ``images/build.sh`` or ``llmstep image build``
            records in its label, read from the local podman, buildah or docker store when one is
            installed (never pulled); ``False``: no check.

    Secrets never enter a payload. A chain holding one anywhere LangChain would not record it by
    id (a header, a query parameter, ``model_kwargs``, a ``SecretStr`` field, a pickled closure,
    or the value of a secret-named environment variable set now, such as ``OPENAI_API_KEY`` or
    ``*_TOKEN``) raises ``SecretError`` naming its path. A model key given in code
    (``api_key="sk-..."``) is not sent either: the steps read it by id from the Secret, and
    ``CredentialsWarning`` says so.

    Returns:
        Compiled: the plan, with its renderings (``to_yaml``, ``to_tekton_yaml``) and runners
        (``run_local``, ``submit``).

    Raises:
        CompileError: the chain cannot become steps (a Runnable LangChain cannot serialize
            without ``allow_pickle``, a step output that cannot travel, a bad ``name``, ``data``,
            ``secret``, ``image``, ``env``, ``on_failure`` or ``value_types``); the message names
            the step or the argument.
        SecretError: a secret would enter a payload (a ``CompileError``); the message names where.
    """
    from llmstep.render import paused_gc

    with paused_gc():
        plan = compile_plan(
            chain,
            name=name,
            image=image,
            allow_pickle=allow_pickle,
            data=data,
            secret=secret,
            on_failure=on_failure,
            environ=Settings.current().environ,
            stacklevel=3,
            value_types=value_types,
            env=env,
        )
    from llmstep import valueclasses

    valueclasses.register(plan.value_classes)
    if image_modules is not False:
        from llmstep.local.image_check import lookup_from, warn_missing

        warn_missing(plan, lookup_from(image_modules or None), stacklevel=2)
    return Compiled(plan)


@dataclass(frozen=True)
class Compiled:
    """A compiled chain: ``plan`` is pure data; everything else is rendered from it."""

    plan: Plan

    def to_workflow(self) -> Workflow:
        """The Argo Workflow as a Hera object."""
        from llmstep.render.argo import build_workflow

        return build_workflow(self.plan)

    def to_dict(self, input: Any = MISSING) -> dict[str, Any]:  # mirrors Runnable.invoke
        """The Argo Workflow as a dict, checked for names, references and size. ``input``, if
        given, becomes the value of its ``input`` parameter: what ``kubectl create -f`` runs with,
        and what ``argo submit -p input=...`` overrides."""
        doc = dict(self._argo)
        if input is MISSING:
            return doc
        from llmstep import serde

        spec = dict(doc["spec"])
        params = [dict(p) for p in (spec.get("arguments") or {}).get("parameters") or []]
        for p in params:
            if p["name"] == "input":
                p["value"] = serde.parameter_text(input)
        spec["arguments"] = {**(spec.get("arguments") or {}), "parameters": params}
        doc["spec"] = spec
        return doc

    def to_yaml(self, input: Any = MISSING) -> str:
        """The Argo Workflow as YAML, ready for ``argo submit`` (``input``: see ``to_dict``)."""
        from llmstep.render import paused_gc
        from llmstep.yamlio import dump_yaml

        doc = self.to_dict(input)
        with paused_gc():
            return dump_yaml(doc)

    def to_tekton(self, input: Any = None) -> list[dict[str, Any]]:
        """Tekton documents: the ``llmstep-run`` Task, the Pipeline, and a PipelineRun
        (``input``, if given, becomes its ``input`` param)."""
        from llmstep import serde
        from llmstep.render import tekton

        docs = tekton.render(self.plan)
        if input is not None:
            tekton.with_input(docs[-1], serde.parameter_text(input))
        return docs

    def to_tekton_yaml(self, input: Any = None) -> str:
        """The Tekton documents as one multi-document YAML, ready for ``kubectl create -f``."""
        from llmstep.render import paused_gc
        from llmstep.yamlio import dump_all

        with paused_gc():
            return dump_all(self.to_tekton(input))

    def run_local(
        self,
        input: Any,  # mirrors Runnable.invoke
        *,
        engine: str = "argo",
        parallelism: int | None = None,
        secrets: dict[str, str] | None = None,
        runs_dir: str | Path | None = None,
        isolation: str = "process",
        engine_cli: str = "podman",
        progress: bool = False,
    ) -> Any:
        """Run the rendered workflow on this machine; returns what ``chain.invoke`` returns.

        Each step is its own process with only its pod's environment; secret keys the steps
        declare come from ``secrets`` (default: this process's environment). Nothing is printed
        unless ``progress=True``, which reports each step on stderr as ``llmstep run`` does.

        Raises:
            RunFailed: the run did not succeed (it names the failed steps); its record stays
                under ``runs_dir`` (default ``.llmstep/runs``) for ``llmstep show`` and ``--resume``.
            SerializationError: ``input`` cannot travel to the first step.
            UsageError: a bad argument (``engine``, ``isolation``), named in the message.
        """
        return self.local_run(
            input,
            engine=engine,
            parallelism=parallelism,
            secrets=secrets,
            runs_dir=runs_dir,
            isolation=isolation,
            engine_cli=engine_cli,
            progress=progress,
        ).result()

    def local_run(
        self,
        input: Any,
        *,
        engine: str = "argo",
        parallelism: int | None = None,
        secrets: dict[str, str] | None = None,
        runs_dir: str | Path | None = None,
        isolation: str = "process",
        engine_cli: str = "podman",
        progress: bool = False,
    ) -> Any:
        """Run as ``run_local`` does, and return the run rather than its output: ``run_id``,
        ``phase``, ``result()`` (the output; ``RunFailed`` when the run failed) and ``usage()``
        (its tokens per model, summed over its steps, failed runs included).

        Raises:
            SerializationError: ``input`` cannot travel to the first step.
            UsageError: a bad argument (``engine``, ``isolation``), named in the message.
        """
        if engine not in ("argo", "tekton"):
            raise UsageError(f"engine={engine!r} is not supported; use 'argo' or 'tekton'")
        render = self.to_dict if engine == "argo" else self.to_tekton
        return self._run_local(
            engine, render, {"input": input}, parallelism, secrets, runs_dir, isolation, engine_cli, progress
        )

    def run_local_batch(
        self,
        inputs: list[Any],
        *,
        parallelism: int = 8,
        return_exceptions: bool = False,
        secrets: dict[str, str] | None = None,
        runs_dir: str | Path | None = None,
        isolation: str = "process",
        engine_cli: str = "podman",
    ) -> list[Any]:
        """Run the batch Workflow (``to_batch_dict``) on this machine: every input, at most
        ``parallelism`` inputs in flight and steps at a time; results in input order. A failed input raises
        ``BatchFailed`` (holding all results), or with ``return_exceptions=True`` is an
        ``ItemFailed`` in its place."""
        from llmstep.render.batch import encode_inputs

        given = {"parameters": {"inputs": encode_inputs(_inputs_list(inputs))}}
        record = self._run_local(
            "argo", lambda: self.to_batch_dict(parallelism), given, None, secrets, runs_dir, isolation, engine_cli
        )
        return record.results(return_exceptions)

    def _run_local(
        self,
        engine: str,
        render: Any,
        given: dict[str, Any],
        parallelism: int | None,
        secrets: dict[str, str] | None,
        runs_dir: str | Path | None,
        isolation: str,
        engine_cli: str,
        progress: bool = False,
    ) -> Any:
        from llmstep.local.entry import run_document, run_tekton

        settings = Settings.current()
        isolation_ = settings.isolation(kind=isolation, engine_cli=engine_cli)
        # The fork server imports LangChain while this process renders the documents.
        launcher = isolation_.start_launcher(classes=[c for s in self.plan.steps for c in s.payload["allowed"]])
        try:
            runner, doc = (run_document if engine == "argo" else run_tekton), render()
        except BaseException:
            launcher.close()
            raise
        try:
            return runner(
                doc,
                **given,
                parallelism=parallelism,
                secrets=settings.environ if secrets is None else secrets,
                runs_dir=runs_dir,
                quiet=not progress,
                isolation=isolation_,
                launcher=launcher,
                environ=settings.environ,
            )
        finally:
            launcher.close()

    def to_batch_dict(self, parallelism: int = 8) -> dict[str, Any]:
        """A Workflow that runs the chain once per item of its ``inputs`` parameter (``withParam``),
        at most ``parallelism`` inputs in flight and step pods at a time; see ``submit_batch``."""
        _positive(parallelism, "parallelism")
        return self._rendered(parallelism)

    def to_batch_yaml(self, parallelism: int = 8) -> str:
        """The batch Workflow as YAML (``argo submit -p inputs=...``)."""
        from llmstep.render import paused_gc
        from llmstep.yamlio import dump_yaml

        doc = self.to_batch_dict(parallelism)
        with paused_gc():
            return dump_yaml(doc)

    def submit(
        self,
        input: Any,
        *,
        namespace: str | None = None,
        ui_url: str | None = None,
        engine: str = "argo",
        **transport: Any,
    ) -> Any:
        """Create the Workflow on a cluster; returns a run with ``name``, ``url``, ``wait()``,
        ``result()``, ``logs()`` and ``cancel()``. ``namespace`` defaults, as for kubectl and argo,
        to the kubeconfig context's (in a pod, its service account's; else ``default``).

        The transport is the Kubernetes API (``client=`` a configured kubernetes ``client`` module,
        or ``kubeconfig=``/``context=``; needs no Argo Server), or the Argo Server's REST API when
        ``argo_server=`` (or ``ARGO_SERVER``) names one, with ``token=``, ``verify=`` (False or
        a CA bundle) and ``client_certs=``, like the ``argo`` CLI. ``transport=`` takes any
        :class:`llmstep.cluster.transports.Transport`, such as the in-memory
        ``llmstep.cluster.fake.FakeCluster`` (the namespace then defaults to ``default``).

        ``engine="tekton"`` applies the Task(s) and the Pipeline and creates a PipelineRun through
        the Kubernetes API (``client=``, ``kubeconfig=``, ``context=``); its run has the same
        methods, and ``result()`` reads the output task's log, checked against its digest.
        """
        from llmstep import serde

        if engine == "tekton":
            from llmstep.cluster import connect, tekton

            _tekton_transport(transport)
            return tekton.submit(
                self.to_tekton(),
                serde.parameter_text(input),
                namespace=_namespace(namespace, transport),
                transport=connect.transport(**transport),
            )  # ARGO_SERVER is not for Tekton
        if engine != "argo":
            raise UsageError(f"engine must be 'argo' or 'tekton', found {engine!r}")
        from llmstep.cluster import argo, connect

        return argo.submit(
            self.to_dict(),
            {"input": serde.parameter_text(input)},
            namespace=_namespace(namespace, transport),
            transport=connect.transport(**transport, env=Settings.current().environ),
            ui_url=ui_url,
        )

    def submit_batch(
        self,
        inputs: list[Any],
        *,
        parallelism: int = 8,
        namespace: str | None = None,
        ui_url: str | None = None,
        engine: str = "argo",
        **transport: Any,
    ) -> Any:
        """Run the chain over every input in one Workflow, at most ``parallelism`` step pods at a
        time (rate limits). The run's ``results()`` are in input order; a failed input does not
        lose the others (``results(return_exceptions=True)`` puts an ``ItemFailed`` in its place).

        Argo only: a Tekton Pipeline fans out one task at a time (``matrix``), and pairing item i
        of one task with item i of the next over a whole chain, with per-item failure kept, is
        not something Tekton expresses; submit one PipelineRun per input instead."""
        from llmstep.cluster import argo, connect
        from llmstep.render import batch

        if engine != "argo":
            raise UsageError(
                f"submit_batch runs on Argo only (engine={engine!r}): on Tekton, submit one PipelineRun "
                "per input (submit(x, engine='tekton') for each)"
            )

        encoded = batch.encode_inputs(_inputs_list(inputs))
        return argo.submit(
            self.to_batch_dict(parallelism),
            {"inputs": encoded},
            namespace=_namespace(namespace, transport),
            transport=connect.transport(**transport, env=Settings.current().environ),
            ui_url=ui_url,
        )

    def as_runnable(self, *, timeout: float = 600, poll: float = 2.0, parallelism: int = 8, **submit: Any) -> Any:
        """A Runnable that runs this chain on the cluster: ``invoke`` submits, waits and returns
        the result; ``batch`` is one batch Workflow; ``ainvoke``/``abatch`` work too. Keyword
        arguments are those of ``submit`` (namespace, transport)."""
        from llmstep.cluster.remote import WorkflowRunnable

        return WorkflowRunnable(self, timeout=timeout, poll=poll, parallelism=parallelism, submit=submit)

    @cached_property
    def _argo(self) -> dict[str, Any]:
        return self._rendered(None)

    def _rendered(self, batch: int | None) -> dict[str, Any]:
        """The Argo Workflow (``batch``: the batch one), from the user's render cache when it holds
        it. A plan not made by ``compile`` may hold a secret: then it is rendered, never kept."""
        from llmstep.compiler.leaks import plan_holds_secret
        from llmstep.render import cache

        settings = Settings.current()
        return cache.argo_dict(
            self.plan,
            batch,
            folder=settings.cache_dir,
            holds_secret=lambda plan: plan_holds_secret(plan, settings.environ),
        )


def _namespace(namespace: str | None, transport: dict[str, Any]) -> str:
    if namespace:
        return namespace
    if transport.get("transport") is not None:  # a FakeCluster, say: no kubeconfig speaks for it
        return "default"
    from llmstep.cluster.transports import default_namespace

    kubeconfig = transport.get("kubeconfig") or Settings.current().environ.get("KUBECONFIG")
    return default_namespace(kubeconfig, transport.get("context"))


def _tekton_transport(transport: dict[str, Any]) -> None:
    extra = sorted(set(transport) - {"client", "kubeconfig", "context", "transport"})
    if extra:
        raise UsageError(
            f"engine='tekton' goes through the Kubernetes API: {', '.join(extra)} is for the Argo Server; "
            "pass client=, kubeconfig= or context="
        )


def _positive(value: Any, name: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise UsageError(f"{name} must be a positive integer, found {value!r}")


def _inputs_list(inputs: Any) -> list[Any]:
    if isinstance(inputs, (str, bytes, dict)) or not hasattr(inputs, "__iter__"):
        raise UsageError(f"inputs must be a list of chain inputs, found {type(inputs).__name__}")
    return list(inputs)


class KubernetesRunnable(_kube.KubernetesRunnable):
    """Run ``runnable`` in its own Pod on each call: :class:`llmstep.cluster.kube.KubernetesRunnable`
    (its arguments), given this process's environment, read here at the API's boundary: its
    secret-named values are refused in the Runnable, and its ``KUBECONFIG`` is kubectl's."""

    def __init__(self, runnable: Any, **options: Any) -> None:
        options.setdefault("environ", Settings.current().environ)
        super().__init__(runnable, stacklevel=4, **options)

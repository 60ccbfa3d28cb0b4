"""``Compiled``: a plan with its renderings and runners, what ``llmstep.compile`` returns."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llmstep.compiler import DEFAULT_SECRET, compile_plan
from llmstep.plan import Plan

if TYPE_CHECKING:
    from hera.workflows import Workflow


def compile(  # noqa: A001 - the public name is fixed by the API
    chain: Any,
    *,
    name: str | None = None,
    image: str | None = None,
    allow_pickle: bool = False,
    data: str = "artifacts",
    secret: str = DEFAULT_SECRET,
    on_failure: Any = None,
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
    """
    plan = compile_plan(chain, name=name, image=image, allow_pickle=allow_pickle, data=data, secret=secret,
                        on_failure=on_failure)  # fmt: skip
    return Compiled(plan)


@dataclass(frozen=True)
class Compiled:
    """A compiled chain: ``plan`` is pure data; everything else is rendered from it."""

    plan: Plan

    def to_workflow(self) -> Workflow:
        """The Argo Workflow as a Hera object."""
        from llmstep.render.argo import build_workflow

        return build_workflow(self.plan)

    def to_dict(self) -> dict[str, Any]:
        """The Argo Workflow as a dict, checked for names, references and size."""
        return dict(self._argo)

    def to_yaml(self) -> str:
        """The Argo Workflow as YAML, ready for ``argo submit``."""
        from llmstep.render import paused_gc
        from llmstep.yamlio import dump_yaml

        doc = self._argo
        with paused_gc():
            return dump_yaml(doc)

    def to_tekton(self, input: Any = None) -> list[dict[str, Any]]:  # noqa: A002
        """Tekton documents: the ``llmstep-run`` Task, the Pipeline, and a PipelineRun
        (``input``, if given, becomes its ``input`` param)."""
        from llmstep import serde
        from llmstep.render import tekton

        docs = tekton.render(self.plan)
        if input is not None:
            docs[-1]["spec"]["params"] = [{"name": "input", "value": serde.dumps_value(input)}]
        return docs

    def to_tekton_yaml(self, input: Any = None) -> str:  # noqa: A002
        """The Tekton documents as one multi-document YAML, ready for ``kubectl create -f``."""
        from llmstep.render import paused_gc
        from llmstep.yamlio import dump_all

        with paused_gc():
            return dump_all(self.to_tekton(input))

    def submit(
        self,
        input: Any,  # noqa: A002 - mirrors Runnable.invoke
        *,
        namespace: str = "default",
        client: Any = None,
        kubeconfig: str | None = None,
        context: str | None = None,
        ui_url: str | None = None,
    ) -> Any:
        """Create the Workflow on a cluster through the Kubernetes API (no Argo Server needed);
        returns a run with ``wait()``, ``result()``, ``logs()`` and ``cancel()``. ``client`` is the
        kubernetes package's ``client`` module, configured; by default kubeconfig is loaded."""
        from llmstep import serde
        from llmstep.run.argo import kube_client, submit

        api = client or kube_client(kubeconfig, context)
        return submit(self.to_dict(), serde.dumps_value(input), namespace=namespace, client=api, ui_url=ui_url)

    def run_local(
        self,
        input: Any,  # noqa: A002 - mirrors Runnable.invoke
        *,
        engine: str = "argo",
        parallelism: int | None = None,
        secrets: dict[str, str] | None = None,
        runs_dir: str | Path | None = None,
        isolation: str = "process",
        engine_cli: str = "podman",
    ) -> Any:
        """Run the rendered workflow on this machine; returns what ``chain.invoke`` returns.

        Each step is its own process with only its pod's environment; secret keys the steps
        declare come from ``secrets`` (default: this process's environment). Raises
        ``RunFailed`` (with the failed steps) when the run does not succeed; its record stays
        under ``runs_dir`` (default ``.llmstep/runs``) for ``llmstep show`` and ``--resume``.
        """
        import os

        from llmstep.run.container import Isolation, engine_env
        from llmstep.run.local import run_document, run_tekton

        if engine not in ("argo", "tekton"):
            from llmstep.errors import LlmstepError

            raise LlmstepError(f"engine={engine!r} is not supported; use 'argo' or 'tekton'")
        isolation_ = Isolation(isolation, engine_cli, engine_env(os.environ))
        # The fork server imports LangChain while this process renders the documents.
        launcher = isolation_.start_launcher(classes=[c for s in self.plan.steps for c in s.payload["allowed"]])
        try:
            runner, doc = (run_document, self.to_dict()) if engine == "argo" else (run_tekton, self.to_tekton())
        except BaseException:
            launcher.close()
            raise
        try:
            record = runner(
                doc,
                input,
                parallelism=parallelism,
                secrets=os.environ if secrets is None else secrets,
                runs_dir=runs_dir,
                quiet=True,
                isolation=isolation_,
                launcher=launcher,
            )
        finally:
            launcher.close()
        return record.result()

    @cached_property
    def _argo(self) -> dict[str, Any]:
        from llmstep.render.argo import render_dict

        return render_dict(self.plan)

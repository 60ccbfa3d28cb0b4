"""A whole compiled chain, run on the cluster, as one Runnable of another chain.

``compiled.as_runnable()``: ``invoke`` submits a Workflow, waits for it and returns its result;
``batch`` submits one batch Workflow (``withParam``) for all inputs; the async forms run those in
an executor, as LangChain does for sync Runnables. A call that gives up waiting (timeout, Ctrl-C)
terminates its Workflow: nothing keeps running for a caller that left.
"""

from __future__ import annotations

from typing import Any

from langchain_core.runnables import Runnable, RunnableConfig


class WorkflowRunnable(Runnable[Any, Any]):
    """Runs a compiled chain as an Argo Workflow per call (``Compiled.as_runnable``)."""

    def __init__(self, compiled: Any, *, timeout: float, poll: float, parallelism: int, submit: dict[str, Any]) -> None:
        self.compiled, self.timeout, self.poll, self.parallelism = compiled, timeout, poll, parallelism
        self.submit = submit
        self.name = f"Workflow:{compiled.plan.name}"

    def invoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        return self._call_with_config(self._invoke, input, config, **kwargs)

    def _invoke(self, input: Any) -> Any:
        run = self.compiled.submit(input, **self.submit)
        _wait(run, self.timeout, self.poll)
        return run.result()

    def batch(
        self, inputs: list[Any], config: Any = None, *, return_exceptions: bool = False, **kwargs: Any
    ) -> list[Any]:
        if not inputs:
            return []
        run = self.compiled.submit_batch(list(inputs), parallelism=self.parallelism, **self.submit)
        _wait(run, self.timeout, self.poll)
        return run.results(return_exceptions)


def _wait(run: Any, timeout: float, poll: float) -> None:
    from llmstep.errors import SubmissionError

    try:
        run.wait(timeout=timeout, poll=poll)
    except (KeyboardInterrupt, SubmissionError) as exc:
        from llmstep.cluster.argo import WorkflowFailed

        if not isinstance(exc, WorkflowFailed):  # gave up waiting: stop the work too
            try:
                run.cancel()
            except SubmissionError:
                pass  # the original error says more
        raise

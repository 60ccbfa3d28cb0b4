"""The options of a local run, in one place: :func:`llmstep.local.entry.run_document`,
:func:`~llmstep.local.entry.run_tekton`, :func:`~llmstep.local.entry.resume_run`,
``Compiled.run_local`` and ``llmstep run`` all take these, by these names."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmstep.errors import UsageError
from llmstep.local.isolation import Isolation, Steps
from llmstep.local.process import Launcher
from llmstep.local.progress import Progress, make_progress
from llmstep.local.records import DEFAULT_RUNS_DIR
from llmstep.local.trust import Policy


@dataclass(frozen=True)
class RunOptions:
    """How a local run runs (every field optional)."""

    parameters: Mapping[str, str] | None = None
    """Workflow parameters as raw strings, as ``argo submit -p name=value`` gives them."""
    parallelism: int | None = None
    """At most this many step processes at a time (default: the document's own, or unbounded)."""
    secrets: Mapping[str, str] | None = None
    """Where steps' Secret keys come from (your environment, ``--secrets FILE``)."""
    runs_dir: str | Path | None = None
    """Where run records go (default ``.llmstep/runs``)."""
    quiet: bool = False
    """No progress on stderr."""
    progress: Progress | None = None
    """A progress reporter of your own (overrides ``quiet``)."""
    isolation: Isolation | None = None
    """Processes (default) or containers."""
    launcher: Launcher | None = None
    """A launcher started beforehand (its fork server warming up while the documents render)."""
    allow_pickle: bool = True
    """False for a document from a file: its pickle payloads are refused (:mod:`llmstep.local.trust`)."""
    from_file: bool = False
    """The documents come from a file, not from the user's chain: their steps' environment and
    the endpoints their keys go to are checked (:class:`llmstep.local.trust.Policy`)."""
    allow_endpoints: tuple[str, ...] = ()
    """Endpoints a file's steps may send the user's model keys to, besides the configured ones."""
    environ: Mapping[str, str] | None = None
    """This machine's environment, as the entry point read it (:class:`llmstep.settings.Settings`):
    the fork server's settings when no isolation is given, the model endpoints it configures, and
    what steps get from it (proxies, CA bundles, the endpoints; :data:`llmstep.local.process.PASSTHROUGH`).
    None: an empty one (the runner reads no environment of its own)."""

    @classmethod
    def of(cls, options: RunOptions | None = None, /, **given: Any) -> RunOptions:
        """``options`` with the keyword options ``given`` replacing its fields; a usage error
        naming an option that does not exist."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(given) - names)
        if unknown:
            raise UsageError(f"unknown run option {unknown[0]!r}; the options are {', '.join(sorted(names))}")
        return dataclasses.replace(options or cls(), **given)

    def root(self) -> Path:
        """The folder of run records."""
        return Path(self.runs_dir or DEFAULT_RUNS_DIR)

    def reporter(self) -> Progress:
        """The progress reporter of the run."""
        return self.progress or make_progress(self.quiet)

    def steps(self) -> Steps:
        """How the run starts its steps (the isolation checked)."""
        return self.isolation_or_default().steps()

    def host(self) -> Mapping[str, str]:
        """This machine's environment, as the entry point gave it (:attr:`environ`)."""
        return self.environ if self.environ is not None else {}

    def policy(self) -> Policy:
        """What the run's documents may do, with the endpoints the environment configures."""
        return Policy.of(self.from_file, self.allow_endpoints, self.host())

    def resolved(self) -> RunOptions:
        """These options with the default isolation filled in, read once for the whole run."""
        return self if self.isolation is not None else dataclasses.replace(self, isolation=self.isolation_or_default())

    def isolation_or_default(self) -> Isolation:
        """The isolation given, or the default: processes forked from a fork server, with the
        fork server's settings from :attr:`environ`, as ``Compiled.run_local`` has."""
        if self.isolation is not None:
            return self.isolation
        return Isolation.from_environ(self.host())

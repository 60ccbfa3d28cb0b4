"""What llmstep takes from this machine's environment, read at the door and passed down as values.

Three entry points read the environment, and nothing below them does (``tests/test_architecture.py``
checks it): the command line (:mod:`llmstep.cli`), a step's ``llmstep exec``
(:mod:`llmstep.executor.main`), and, for the Python API, this module, which :mod:`llmstep.api`
calls once at the start of each public call (``compile``, ``Compiled.to_dict``,
``Compiled.run_local``, ...). A variable set before the call counts; the layers below get the
values.

What is read, and where its default lives:

- ``LLMSTEP_FORKSERVER_IDLE``, ``XDG_RUNTIME_DIR`` and the container engine's own variables: the
  fork server's and the engine's settings (:meth:`llmstep.local.isolation.Isolation.from_environ`);
- ``XDG_CACHE_HOME``: the cache directory (:func:`llmstep.render.cache.user_dir`);
- the model's endpoint (``OPENAI_BASE_URL``, ``AZURE_OPENAI_ENDPOINT``; :mod:`llmstep.diagnose.settings`),
  proxies and CA bundles: what a local step gets from this machine
  (:data:`llmstep.local.process.PASSTHROUGH`), and the endpoints a file's steps may send a key to;
- secret-named variables (``OPENAI_API_KEY``, ``*_TOKEN``, ...): compile refuses a chain holding
  their values (:mod:`llmstep.compiler.leaks`), and a local run gives each step the keys it declares.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from llmstep.local.isolation import Isolation


@dataclass(frozen=True)
class Settings:
    """The environment as an entry point read it, once: a snapshot, not the live ``os.environ``."""

    environ: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Settings:
        """The settings ``environ`` holds (a copy: later changes to it do not reach a call under way)."""
        return cls(MappingProxyType(dict(environ)))

    @classmethod
    def current(cls) -> Settings:
        """This process's environment now: the Python API's one read of it."""
        return cls.from_environ(os.environ)

    @property
    def cache_dir(self) -> str:
        """The user's cache directory for llmstep ("" without a usable home)."""
        from llmstep.render.cache import user_dir

        return user_dir(self.environ)

    def isolation(self, **given: Any) -> Isolation:
        """How a local run starts its steps: ``given`` (``kind``, ``engine_cli``, ...) with the fork
        server's and the engine's settings from this environment."""
        from llmstep.local.isolation import Isolation

        return Isolation.from_environ(self.environ, **given)

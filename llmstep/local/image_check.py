"""Compile's warning for a step whose payload names a module its image is known to lack.

An image is known when its module list (:data:`llmstep.local.images.MODULES_LABEL`, recorded by
``images/build.sh`` and ``llmstep image build``) is given, or can be read from the local container
engine's store: ``<engine> image inspect``, once per image per process, only for an image already
there (nothing is pulled, nothing reaches the network) and only when an engine is on PATH (without
one, no process is started). An image whose list is not known gets no warning.
"""

from __future__ import annotations

import base64
import functools
import shutil
import subprocess
import sys
import warnings
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from llmstep.local.images import ENGINES, MODULES_LABEL, parse_modules
from llmstep.plan import Plan

INSPECT_TIMEOUT = 10.0
"""Seconds an ``image inspect`` may take before the image counts as unknown."""
ALWAYS_THERE = frozenset({"llmstep", "builtins", "__main__", "__mp_main__", "langchain_core", "cloudpickle"})
"""Modules every step image has (``llmstep exec`` loads every payload with them): a step naming only
these and the standard library needs no look-up."""


class MissingModuleWarning(UserWarning):
    """A step names a module (a class of its payload, a function pickled by reference) that its image,
    by the module list recorded in it, does not have: the step would fail in its pod."""


Lookup = Callable[[str], "frozenset[str] | None"]


@functools.cache
def engine_modules(image: str, engine: str | None = None) -> frozenset[str] | None:
    """The modules the image ``image`` records in its label, read from the local store of ``engine``
    (default: the first of podman, buildah and docker on PATH); None when there is no engine, the image
    is not in the store, or it has no such label."""
    engine = engine or next((e for e in ENGINES if shutil.which(e)), None)
    if engine is None:
        return None
    fmt = (
        f'{{{{index .Labels "{MODULES_LABEL}"}}}}'
        if engine != "buildah"
        else f'{{{{index .OCIv1.Config.Labels "{MODULES_LABEL}"}}}}'
    )
    argv = (
        [engine, "inspect", "--type", "image", "--format", fmt, image]
        if engine == "buildah"
        else [engine, "image", "inspect", "--format", fmt, image]
    )
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=INSPECT_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = done.stdout.strip()
    if done.returncode != 0 or not text or text == "<no value>":
        return None
    return parse_modules(text)


def lookup_from(given: Mapping[str, Iterable[str]] | None, engine: bool = True) -> Lookup:
    """How compile learns an image's modules: ``given`` (image to module names) first, then, when
    ``engine``, the local engine's store (:func:`engine_modules`)."""
    known = {image: parse_modules(",".join(names)) for image, names in (given or {}).items()}

    def lookup(image: str) -> frozenset[str] | None:
        if image in known:
            return known[image]
        return engine_modules(image) if engine else None

    return lookup


def payload_modules(payload: Mapping[str, Any]) -> dict[str, str]:
    """The top-level modules loading ``payload`` imports, each with what it takes from there: a
    LangChain payload's classes (by the import path LangChain maps their ids to), a pickle's globals
    (``names_by_reference``), and the value classes it vouches for."""
    found: dict[str, str] = {}
    if payload.get("format") == "lc":
        for class_id in payload.get("allowed") or []:
            path = _import_path(tuple(class_id))
            found.setdefault(path[0], f"the class {'.'.join(path)}")
    elif payload.get("format") == "pickle":
        _pickled(payload.get("data"), found)
    declared = payload.get("values") or {}
    for path in declared.get("classes") or []:
        module, _, name = str(path).partition(":")
        if path not in ((declared.get("pickle") or {}).get("classes") or []):
            found.setdefault(module.split(".")[0], f"the value class {module}.{name}")
    _pickled((declared.get("pickle") or {}).get("data"), found)
    return found


def _pickled(data: Any, found: dict[str, str]) -> None:
    if not isinstance(data, str):
        return
    from llmstep.compiler.pickling import names_by_reference

    for module, what in names_by_reference(base64.b64decode(data)).items():
        found.setdefault(module.split(".")[0], f"{what} of {module}" if what != "the module itself" else module)


def _import_path(class_id: tuple[str, ...]) -> tuple[str, ...]:
    try:
        from langchain_core.load.load import ALL_SERIALIZABLE_MAPPINGS
    except ImportError:  # pragma: no cover - an lc payload is only made with LangChain present
        return class_id
    return tuple(ALL_SERIALIZABLE_MAPPINGS.get(class_id, class_id))


def missing_modules(plan: Plan, lookup: Lookup) -> list[tuple[str, str, str, str]]:
    """``(step, image, module, what)`` for every module a step's payload names that its image's
    recorded list lacks; images whose list is not known are skipped."""
    found = []
    for step in plan.steps:
        image = step.settings.image or plan.image
        named = {
            m: w
            for m, w in payload_modules(step.payload).items()
            if m not in ALWAYS_THERE and m not in sys.stdlib_module_names
        }
        names = lookup(image) if named else None  # nothing to check: no look-up, no process
        if names is None:
            continue
        found += [(step.display, image, m, w) for m, w in sorted(named.items()) if m not in names]
    return found


def warn_missing(plan: Plan, lookup: Lookup, stacklevel: int = 2) -> None:
    """One :class:`MissingModuleWarning` per step and module its image lacks, at the caller's line."""
    for step, image, module, what in missing_modules(plan, lookup):
        warnings.warn(
            MissingModuleWarning(
                f"step {step!r} imports the module {module!r} ({what}), which the image {image!r} does not have "
                f"(by the module list recorded in it): the step would fail in its pod. Build an image with it, "
                f"`llmstep image build --from {image} -r requirements.txt` (or --project DIR, --wheels DIR "
                "offline), and pass the tag it prints as image=... (or --image)"
            ),
            stacklevel=stacklevel + 1,
        )

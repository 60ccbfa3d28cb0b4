"""The one grammar of a step's command: what the local runners start.

A Workflow or Tekton file says what its steps run, and a file from elsewhere is data. The local
runners start only the commands llmstep itself generates (:func:`llmstep.contract.exec_argv`, the
renderers' diagnose steps): ``llmstep exec`` or ``llmstep diagnose``, each option spelled in full
as one of :data:`EXEC` or :data:`DIAGNOSE`, its value a separate argument. Refused, with the step
and the argument named:

- a program or sub-command other than these;
- an option llmstep never generates for a step (``diagnose -f FILE`` reads a local file to send
  it to the model, ``--api-key-env`` picks another credential), an abbreviation (``--data``, which
  argparse would take for ``--data-dir``), the ``--option=value`` form, ``--``, an option given
  twice that may be given once (argparse keeps the last; the runner maps the first);
- a value argparse would read as another option, and a choice outside its choices;
- a path that leaves the step's places (:func:`check_paths`): its data directory and, on Tekton,
  its workspaces and results, after substitution, ``..`` and symbolic links resolved.

:func:`parse` checks a command before the run starts (values may still hold ``{{...}}`` or
``$(...)``); :func:`check_paths` checks the substituted command of each attempt, whatever starts it
(a process, the fork server, a container).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from llmstep import contract
from llmstep.diagnose import settings
from llmstep.errors import WorkflowError


@dataclass(frozen=True)
class Option:
    """One option of a step command: the kind of its value, and how often it may come."""

    kind: str
    """``flag`` (no value), ``text``, ``choice``, ``path`` (a file or folder the step reads or
    writes), ``endpoint`` (where the step sends a key), ``result`` (``NAME=PATH``), ``input``
    (``SOURCE[=PATH]``, PATH in the data workspace)."""
    repeat: bool = False
    """May be given more than once (argparse's ``append``)."""
    rest: bool = False
    """Takes the arguments after it up to the next option (``nargs="*"``)."""
    choices: tuple[str, ...] = ()


EXEC: dict[str, Option] = {
    "--data-dir": Option("path"),
    "--step-name": Option("text"),
    "--payload-env": Option("choice", choices=(contract.PAYLOAD_ENV,)),
    "--input-env": Option("choice", choices=(contract.INPUT_ENV,)),
    "--secrets-dir": Option("path"),
    "--link-root": Option("path"),
    "--result": Option("result", repeat=True),
    "--log-output": Option("choice", choices=("true", "false")),
    "--input-parts": Option("text", rest=True),
    "--inputs": Option("input", rest=True),
    "--log-records": Option("flag"),
    "--stream": Option("flag"),
}
"""``llmstep exec``'s options as llmstep generates them (see :func:`llmstep.contract.exec_argv`)."""

DIAGNOSE: dict[str, Option] = {
    "--workflow-failures": Option("text"),
    "--task-statuses": Option("text"),
    "--prompt": Option("choice", choices=settings.PROMPTS),
    "--lang": Option("text"),
    "--model": Option("text"),
    "--provider": Option("choice", choices=settings.PROVIDERS),
    "--base-url": Option("endpoint"),
    "--azure-endpoint": Option("endpoint"),
    "--azure-deployment": Option("text"),
    "--api-version": Option("text"),
    "--api-key-file": Option("path"),
    "--summary-file": Option("path"),
    "--output": Option("path"),
    "--output-dir": Option("path"),
    "--output-name": Option("text"),
    "--redact": Option("text", repeat=True),
    "--redact-each": Option("text", rest=True),
}
"""``llmstep diagnose``'s options as the renderers generate them for a step (the evidence is the
run's own failures: no ``-f FILE``, no ``--kubeconfig``, no other key or webhook)."""

GRAMMAR = {"exec": (EXEC, 0), "diagnose": (DIAGNOSE, 1)}
"""Each sub-command's options and how many positional arguments it takes (diagnose: its target)."""

_NUMBER = re.compile(r"^-\d+$|^-\d*\.\d+$")
TEKTON_PLACES = ("$(workspaces.", "$(results.")
"""How a path in a Tekton step begins: a workspace's or a result's path (the step's places)."""


@dataclass(frozen=True)
class Command:
    """A step command that follows the grammar."""

    sub: str
    options: tuple[tuple[str, str], ...]
    """(option, value) in order; a flag's value is ``""``, a ``rest`` option has one pair per value."""
    positionals: tuple[str, ...] = ()

    def values(self, *kinds: str) -> Iterator[tuple[str, str]]:
        """(option, value) of every option of these kinds."""
        spec = GRAMMAR[self.sub][0]
        return ((flag, value) for flag, value in self.options if spec[flag].kind in kinds)

    def paths(self) -> Iterator[tuple[str, str]]:
        """(what, path) of every path the command names: ``--result NAME=PATH`` gives PATH."""
        for flag, value in self.values("path", "result"):
            path = value.partition("=")[2] if GRAMMAR[self.sub][0][flag].kind == "result" else value
            if path or flag == "--data-dir":
                yield f"{flag} {value}", path


def unresolved(value: str) -> bool:
    """Whether ``value`` still holds an Argo ``{{...}}`` or a Tekton ``$(...)`` reference."""
    return "{{" in value or "$(" in value


def parse(argv: Sequence[str], where: str) -> Command:
    """``argv`` as a :class:`Command`; WorkflowError naming ``where`` and the argument when it does
    not follow the grammar. Values that hold references are checked once substituted."""
    argv = [str(a) for a in argv]
    if argv[:1] != ["llmstep"] or len(argv) < 2 or argv[1] not in GRAMMAR:
        raise WorkflowError(
            f"{where}: a step must run `llmstep exec ...` or `llmstep diagnose ...` locally, found {argv[:3]!r}"
        )
    sub = argv[1]
    spec, positional = GRAMMAR[sub]
    options: list[tuple[str, str]] = []
    positionals: list[str] = []
    i = 2
    while i < len(argv):
        arg = argv[i]
        if not _option_like(arg):
            if len(positionals) >= positional:
                raise WorkflowError(
                    f"{where}: `llmstep {sub}` takes {positional or 'no'} argument(s) besides its "
                    f"options, found {arg[:80]!r}"
                )
            positionals.append(arg)
            i += 1
            continue
        option = spec.get(arg)
        if option is None:
            raise WorkflowError(f"{where}: {_unknown(sub, arg, spec)}")
        if not option.repeat and any(flag == arg for flag, _ in options):
            raise WorkflowError(f"{where}: `llmstep {sub}` {arg} is given twice; give it once")
        if option.kind == "flag":
            options.append((arg, ""))
            i += 1
            continue
        values = (
            list(itertools.takewhile(lambda a: not _option_like(a), argv[i + 1 :]))
            if option.rest
            else argv[i + 1 : i + 2]
        )
        if not option.rest and not values:
            raise WorkflowError(f"{where}: `llmstep {sub}` {arg} needs a value")
        for value in values:
            _check_value(sub, arg, option, value, where)
            options.append((arg, value))
        i += 1 + len(values)
    if len(positionals) < positional:
        raise WorkflowError(f"{where}: `llmstep {sub}` needs its target (KIND/NAME)")
    return Command(sub, tuple(options), tuple(positionals))


def _unknown(sub: str, arg: str, spec: dict[str, Option]) -> str:
    name = arg.partition("=")[0]
    if name in spec:
        return f"`llmstep {sub}` {arg[:80]!r}: write the value as a separate argument ({name} VALUE)"
    near = sorted(flag for flag in spec if flag.startswith(name)) if name.startswith("--") and len(name) > 2 else []
    if near:
        return f"`llmstep {sub}` {name}: spell the option in full ({', '.join(near)})"
    return (
        f"`llmstep {sub}` {name[:80]} is not an option llmstep generates for a step, so a step from a file "
        f"may not use it; the options are {', '.join(spec)}"
    )


def _option_like(arg: str) -> bool:
    """Whether argparse reads ``arg`` as an option rather than a value (``_parse_optional``)."""
    return arg.startswith("-") and arg != "-" and " " not in arg and not _NUMBER.match(arg)


def _check_value(sub: str, flag: str, option: Option, value: str, where: str) -> None:
    if _option_like(value):
        raise WorkflowError(
            f"{where}: `llmstep {sub}` {flag} {value[:80]!r}: a value that starts with '-' would be "
            "read as another option"
        )
    if unresolved(value):
        return
    if option.choices and value not in option.choices and not (value == "" and flag != "--payload-env"):
        raise WorkflowError(f"{where}: `llmstep {sub}` {flag} {value[:80]!r} is not one of {', '.join(option.choices)}")
    if option.kind == "result":
        name, sep, _path = value.partition("=")
        if not sep or name not in contract.RESULTS:
            raise WorkflowError(
                f"{where}: `llmstep {sub}` --result {value[:80]!r}: expected NAME=PATH with NAME one "
                f"of {', '.join(contract.RESULTS)}"
            )
    if option.kind == "input":
        source = value.partition("=")[0]
        if not source or "/" in source or "\\" in source or source in (".", ".."):
            raise WorkflowError(f"{where}: `llmstep {sub}` --inputs {value[:80]!r}: SOURCE must be a step's name")


def check_prefixes(command: Command, where: str, prefixes: Sequence[str], root: str | None = None) -> None:
    """Before the run: WorkflowError unless every path of ``command`` begins with one of ``prefixes``
    (or is ``root``, the container's data directory) and has no ``..``; a reference after the
    prefix is checked once substituted (:func:`check_paths`)."""
    if command.sub == "exec" and not any(flag == "--data-dir" for flag, _ in command.options):
        raise WorkflowError(f"{where}: `llmstep exec` needs --data-dir (the data directory the runner gives the step)")
    for what, path in command.paths():
        if ".." in Path(path).parts or not (path == root or path.startswith(tuple(prefixes))):
            places = " or ".join(p + "..." for p in prefixes)
            raise WorkflowError(
                f"{where}: `llmstep {command.sub}` {what[:200]} is outside the step's data directory "
                f"and workspaces (a path here begins with {places}, without '..')"
            )


def check_paths(command: Command, where: str, places: Sequence[Path]) -> None:
    """WorkflowError unless every path of ``command`` (substituted, as the step's process gets
    it) is inside one of ``places``, ``..`` and symbolic links resolved."""
    roots = [Path(p).resolve() for p in places]
    for what, path in command.paths():
        target = Path(path)
        if unresolved(path) or not target.is_absolute() or not any(target.resolve().is_relative_to(r) for r in roots):
            raise WorkflowError(
                f"{where}: `llmstep {command.sub}` {what[:200]} is outside the step's data "
                "directory and workspaces; a step writes and reads only there"
            )

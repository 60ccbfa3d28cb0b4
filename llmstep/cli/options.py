"""What the CLI's commands share: argparse types, the options several commands take, and the
parsing of a run's input (``--input``, ``--inputs``, ``-p``). The command modules import it; it
imports none of them, so the CLI has no import cycle."""

from __future__ import annotations

import argparse
import math
from typing import Any

from llmstep import jsonio
from llmstep.errors import UsageError


def _whole_number(text: str, least: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < least:
        raise argparse.ArgumentTypeError(
            f"{value} is negative; give 0 or more" if least == 0 else f"{value} is not at least {least}"
        )
    return value


def positive_int(text: str) -> int:
    """An argparse type: a count of at least 1 (``--parallelism 0`` would run nothing, forever)."""
    return _whole_number(text, 1)


def count(text: str) -> int:
    """An argparse type: a count of at least 0 (``--retries 0``: no retry)."""
    return _whole_number(text, 0)


def add_value_type_option(p: argparse.ArgumentParser, only_ref: bool = False) -> None:
    """``--value-type MODULE:CLASS``, repeatable: ``compile(value_types=[...])`` on the command line."""
    p.add_argument(
        "--value-type",
        action="append",
        default=[],
        metavar="MODULE:CLASS",
        dest="value_types",
        help=("(REF) " if only_ref else "") + "a class whose instances pass between steps (a pydantic model, "
        "dataclass or Enum), as package.module:Class or path/to/file.py:Class; repeatable. A function's "
        "return annotation (def f(...) -> Class) declares its class too",
    )


def seconds(text: str) -> float:
    """An argparse type: a finite, positive number of seconds (0 would give up at once, and
    nan, inf or a negative number is no time to wait)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds above 0 (such as 30 or 2.5)")
    return value


def add_input_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--input", metavar="JSON", help="the chain input, as JSON")
    p.add_argument(
        "--inputs",
        metavar="FILE",
        help="a batch: one chain input per line (JSON Lines) or a JSON list; "
        "'-' reads stdin. A chain reference becomes its batch Workflow (withParam)",
    )
    p.add_argument(
        "-p",
        "--parameter",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a workflow parameter, as with argo submit (-p input='{...}')",
    )


def read_inputs(path: str) -> list[Any]:
    """Batch inputs from a JSON list or JSON Lines file ('-': stdin)."""
    from llmstep.files import read_text

    text = read_text(path, "--inputs")
    lines = [text] if text.lstrip().startswith("[") else text.splitlines()
    values: list[Any] = []
    for number, line in enumerate(lines, 1):
        try:
            if line.strip():
                values.append(jsonio.loads(line))
        except ValueError as exc:
            where = getattr(exc, "lineno", 1) if len(lines) == 1 else number
            raise UsageError(
                f"--inputs {path}: line {where}: not JSON ({getattr(exc, 'msg', exc)}); "
                "give one JSON value per line, or one JSON list"
            ) from exc
    return values[0] if lines == [text] and values and isinstance(values[0], list) else values


def refuse_reference_options(args: argparse.Namespace, target: str, flags: tuple[str, ...]) -> None:
    """UsageError naming the options in ``flags`` that were given though they only shape what
    llmstep renders from a chain reference, and ``target`` is no reference (a document is rendered
    already: its images, its engine and its payloads are written in it)."""
    given = [flag for flag in flags if getattr(args, flag.lstrip("-").replace("-", "_"), None) not in (None, False)]
    if given:
        raise UsageError(
            f"{', '.join(given)} {'applies' if len(given) == 1 else 'apply'} to a chain reference, which "
            f"llmstep renders; {target} is rendered already (what {' and '.join(given)} would set is "
            f"written in it): drop {' and '.join(given)}, or edit the document"
        )


def parameters(args: argparse.Namespace) -> dict[str, str]:
    """Workflow parameters from -p, --input and --inputs (a batch, encoded like step outputs)."""
    from llmstep import serde

    params: dict[str, str] = {}
    for item in args.parameter:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise UsageError(f"-p {item!r}: expected NAME=VALUE")
        params[name] = value
    if args.input is not None:
        if "input" in params:
            raise UsageError("give the input once: --input JSON or -p input=JSON, not both")
        params["input"] = args.input
    if args.inputs is not None:
        from llmstep.render.batch import encode_inputs

        if args.input is not None:
            raise UsageError("give --input (one run) or --inputs (a batch), not both")
        params["inputs"] = encode_inputs(read_inputs(args.inputs))
    if "input" in params and not serde.is_text_input(params["input"]):  # other text is a string, as on Argo
        try:
            jsonio.loads(params["input"])
        except jsonio.TooDeep as exc:
            raise UsageError(f"the input (--input, -p input=...): {exc}") from None
        except ValueError as exc:
            raise UsageError(
                f'the input is not valid JSON ({exc}); quote it: --input \'{{"question": "..."}}\''
            ) from exc
    return params

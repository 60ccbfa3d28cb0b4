"""What the CLI prints of local runs: ``llmstep show`` (a run, or one step of it), ``llmstep
runs`` (the records), and JSON for the terminal and the programs that read it.

The record's files are named by :mod:`llmstep.local.records` (its layout) and
:mod:`llmstep.contract` (a step's files); this module only reads them.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llmstep import contract, jsonio, usage

if TYPE_CHECKING:  # the CLI imports the local runner only for the commands that use it
    from llmstep.local.records import RunRecord
    from llmstep.local.state import NodeState

Prices = tuple[str, dict[str, usage.Price]]
"""A price table (``--prices FILE``): the file's name and its prices by model."""


def json_text(value: Any, indent: int | None = None) -> str:
    """JSON for the terminal and for programs reading it: NaN and infinities, which JSON has no
    words for (Python would print ``NaN``), are ``null``, as JavaScript's JSON.stringify writes them."""
    return json.dumps(_finite(value), indent=indent, ensure_ascii=False, allow_nan=False)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def print_runs(records: list[RunRecord], runs_dir: Path, as_json: bool) -> int:
    """``llmstep runs``: the records, newest first."""
    if as_json:
        print(
            json_text(
                [
                    {
                        "run": r.run_id,
                        "phase": r.phase,
                        "steps": len(r.nodes),
                        "startedAt": r.state.started_at,
                        "finishedAt": r.state.finished_at,
                        "path": str(r.root.resolve()),
                    }
                    for r in records
                ],
                indent=2,
            )
        )
        return 0
    if not records:
        print(f"no runs in {runs_dir}")
        return 0
    print(f"{'RUN':<60} {'PHASE':<10} {'STEPS':>5}  STARTED")
    for r in records:
        print(f"{r.run_id:<60} {r.phase:<10} {len(r.nodes):>5}  {(r.state.started_at or '')[:19]}")
    return 0


def usage_json(tokens: dict[str, dict[str, Any]], prices: Prices | None) -> dict[str, Any]:
    """A run's token totals as JSON (``usage``) and, with a price table, its estimated ``cost``."""
    out: dict[str, Any] = {"usage": tokens}
    if prices is not None:
        out["cost"] = usage.estimate(tokens, prices[1]).to_json(prices[0])
    return out


def usage_lines(tokens: dict[str, dict[str, Any]], prices: Prices | None) -> list[str]:
    """A run's token totals in words, and with a price table its estimated cost; nothing when no
    step called a model."""
    if not tokens:
        return []
    lines = [f"tokens: {usage.describe(tokens)}"]
    if prices is not None:
        lines.append(usage.describe_cost(usage.estimate(tokens, prices[1]), prices[0]))
    return lines


def show_json(record: RunRecord, step: str | None, prices: Prices | None = None) -> dict[str, Any]:
    """A run (or one step of it) as data: phases, messages, each step's output as plain JSON."""
    from llmstep import serde

    def one(task: str, node: NodeState) -> dict[str, Any]:
        data = record.data_dir(task)
        phase, message = record.shown(node)
        out: dict[str, Any] = {
            "phase": phase,
            "message": message,
            "attempts": node.attempts or 0,
            "startedAt": node.started_at,
            "finishedAt": node.finished_at,
        }
        if (data / contract.OUTPUT).is_file():
            out["output"] = serde.plain_value((data / contract.OUTPUT).read_text(encoding="utf-8"))
        if (data / contract.ERROR).is_file():
            out["error"] = jsonio.loads((data / contract.ERROR).read_text(encoding="utf-8"))
        if node.outputs is not None and node.outputs.parameter("usage") is not None:
            out["usage"] = usage.totals([node.outputs.parameter("usage")])
        return out

    if step:
        return {"run": record.run_id, "step": step, **one(step, record.nodes[step])}
    ok = record.phase == contract.Phase.SUCCEEDED and not record.state.batch
    return {
        "run": record.run_id,
        "phase": record.phase,
        "message": record.state.message or "",
        "output": serde.plain_of(record.result()) if ok else None,
        "failures": record.failures(),
        "steps": {t: one(t, n) for t, n in record.in_run_order()},
        **usage_json(record.usage(), prices),
    }


def show(record: RunRecord, step: str | None, prices: Prices | None = None) -> None:
    """``llmstep show``: a run's steps (inputs, output, a failed step's last log lines), or one
    step in full (its output or error, and its log)."""
    from llmstep.local.progress import duration

    if step:
        node = record.nodes[step]
        data = record.data_dir(step)
        phase, message = record.shown(node)
        print(f"step {step}: {phase} {duration(node)} attempts={node.attempts or 0}")
        if message:
            print(f"message: {message}")
        for name in (contract.OUTPUT, contract.ERROR):
            if (data / name).is_file():
                print(f"--- {name}\n{(data / name).read_text(encoding='utf-8')}")
        log = record.log_path(step)
        if log.is_file():
            print(f"--- log\n{log.read_text(encoding='utf-8', errors='replace')}")
        return
    print(f"run {record.run_id}: {record.phase}" + (f" ({record.state.message})" if record.state.message else ""))
    for task, node in record.in_run_order():
        data = record.data_dir(task)
        phase, message = record.shown(node)
        print(f"  {task:<40} {phase:<10} {duration(node):>7}  {message}")
        inputs = sorted(p for p in data.glob(f"{contract.INPUT_DIR}*") if p.is_file())
        inputs += sorted((data / contract.INPUT_DIR).glob("*.json"))
        for path in inputs[:3]:
            print(f"      in  {path.name}: {_oneline(path.read_text(encoding='utf-8', errors='replace'))}")
        preview = data / contract.PREVIEW
        if preview.is_file():
            print(f"      out {_oneline(preview.read_text(encoding='utf-8'))}")
        log = record.log_path(task)
        if node.phase in contract.FAILED_PHASES and log.is_file():
            for line in log.read_text(encoding="utf-8", errors="replace").splitlines()[-5:]:
                print(f"      log {line}")
    for line in usage_lines(record.usage(), prices) or (
        ["tokens: none (no step recorded a model call)"] if prices else []
    ):
        print(line)


def _oneline(text: str, limit: int = 100) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"

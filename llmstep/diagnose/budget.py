"""The evidence budget: how much text a diagnosis sends to the model at most, and what is cut.

A 5 MB ConfigMap or a log of a million lines is never sent whole. Each section of the evidence
gets a fair share of the budget (a small section keeps all of it, and what it leaves goes to the
others); a section over its share keeps its title, its first lines and, after them, the lines
that name an error, and says in a line of its own how much was cut. A line longer than its share
is cut at a separator, so no token is sent in part.
"""

from __future__ import annotations

import re

from llmstep.diagnose.settings import EVIDENCE_BYTES, EVIDENCE_BYTES_FLAG

# words of a line that names an error (plain substrings of the lowered line: a regular expression
# with as many alternatives reads a 10 MB log ten times slower)
_ERROR_WORDS = (
    "error",
    "fail",
    "fatal",
    "panic",
    "exception",
    "traceback",
    "denied",
    "refused",
    "forbidden",
    "unauthori",
    "killed",
    "timeout",
    "timed out",
    "not found",
    "no such",
    "invalid",
    "unable",
    "cannot",
    "can't",
    "backoff",
    "back-off",
    "exit code",
    "exit status",
    "out of memory",
    "crash",
)
_SEPARATOR = re.compile(r"[\s,;:{}\[\]()\"'=&]")
HEAD = 0.6
"""The part of a cut section's share that its first lines keep at least; the rest goes to the
lines after them that name an error, as far as they need it."""


def size(text: str) -> int:
    return len(text.encode())


def fit(parts: list[str], budget: int = EVIDENCE_BYTES) -> list[str]:
    """``parts`` (sections of evidence, each a title line and its lines) cut to ``budget`` bytes in all."""
    sizes = [size(p) for p in parts]
    if sum(sizes) <= budget:
        return parts
    shares = [0] * len(parts)
    left = budget
    for rank, i in enumerate(sorted(range(len(parts)), key=sizes.__getitem__)):
        shares[i] = min(sizes[i], left // (len(parts) - rank))
        left -= shares[i]
    return [part if sizes[i] <= shares[i] else cut(part, shares[i], budget) for i, part in enumerate(parts)]


def cut(part: str, share: int, budget: int) -> str:
    """One section in ``share`` bytes: its title, then :func:`trim` of its lines."""
    title, _, body = part.partition("\n")
    return f"{title}\n{trim(body, share - size(title) - 1, budget)}"


def trim(body: str, share: int, budget: int) -> str:
    """Lines in ``share`` bytes: the first ones, then those after them that name an error, and a
    line saying what was cut (the whole budget and the flag that sets it)."""
    lines = body.split("\n")
    room = max(share - 300, 0)  # 300: the note's room
    errors = [_names_error(line) for line in lines]
    # the head keeps what the error lines after it leave, and at least HEAD of the room
    after = sum(size(line) + 7 for line, error in zip(lines, errors, strict=True) if error)
    head_room = room - min(after, int(room * (1 - HEAD)))
    kept: list[tuple[int, str]] = []
    used = index = 0
    while index < len(lines) and used + size(lines[index]) + 1 <= head_room:
        kept.append((index, lines[index]))
        used += size(lines[index]) + 1
        index += 1
    if not kept:  # a first line longer than the room: its start, cut at a separator
        kept.append((0, shorten(lines[0], head_room)))
        used, index = size(kept[0][1]) + 1, 1
    first_later = index
    for later in range(index, len(lines)):
        line = lines[later]
        if not errors[later]:
            continue
        fits = used + size(line) + 7 <= room  # 7: the line's newline and a "[...]" line before it
        line = line if fits else shorten(line, room - used - 7)
        if line:
            kept.append((later, line))
            used += size(line) + 7
        if not fits:
            break
    note = (
        f"[llmstep: {len(lines) - len(kept)} of {len(lines)} lines ({max(size(body) - used, 0)} of {size(body)} bytes) "
        f"were cut to keep the evidence within {budget} bytes ({EVIDENCE_BYTES_FLAG}); kept: the first lines"
        + (" and later lines that name an error]" if any(i >= first_later for i, _ in kept) else "]")
    )
    return "\n".join([*_with_gaps(kept), note])


def _names_error(line: str) -> bool:
    low = line.lower()
    return any(word in low for word in _ERROR_WORDS)


def _with_gaps(kept: list[tuple[int, str]]) -> list[str]:
    out: list[str] = []
    previous = -1
    for index, line in kept:
        if index > previous + 1 and out:
            out.append("[...]")
        out.append(line)
        previous = index
    return out


def shorten(line: str, room: int) -> str:
    """The start of ``line`` in ``room`` bytes, ended at a separator so that no word is sent in part."""
    if room <= 0:
        return ""
    if size(line) <= room:
        return line
    head = line.encode()[:room].decode(errors="ignore")
    stops = [m.start() for m in _SEPARATOR.finditer(head)]
    return (head[: stops[-1]] if stops else "") + " [...]"

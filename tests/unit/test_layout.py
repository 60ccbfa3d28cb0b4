"""tests/unit mirrors llmstep/: the unit tests of llmstep/X.py are tests/unit/test_X.py, those of
llmstep/PKG/X.py are tests/unit/PKG/test_X.py. Every module has its test file (but those in
NOT_YET, each with the reason), and every test file here has its module."""

from __future__ import annotations

from pathlib import Path

from conftest import ROOT

PACKAGE = ROOT / "llmstep"
UNIT = ROOT / "tests" / "unit"
THIS = Path(__file__).resolve()

NOT_YET: dict[str, str] = {}
"""Modules whose unit test file is still to come: {module: why}."""


def modules() -> dict[str, Path]:
    """Every llmstep module but the packages' ``__init__`` and ``__main__``: {dotted name: its mirror test file}."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name in ("__init__.py", "__main__.py") or "__pycache__" in path.parts:
            continue
        relative = path.relative_to(PACKAGE)
        found[".".join(("llmstep", *relative.with_suffix("").parts))] = UNIT / relative.parent / f"test_{path.name}"
    return found


def test_every_module_has_its_unit_test_file_at_the_mirror_path():
    missing = [
        f"{name}: {path.relative_to(ROOT)}"
        for name, path in modules().items()
        if name not in NOT_YET and not path.is_file()
    ]
    assert missing == [], "write these unit test files (or list the module in NOT_YET, with the reason)"


def test_not_yet_lists_only_modules_that_exist_and_still_lack_their_test_file():
    mirrors = modules()
    assert sorted(set(NOT_YET) - set(mirrors)) == [], "no such module: drop it from NOT_YET"
    done = sorted(name for name in NOT_YET if mirrors[name].is_file())
    assert done == [], "their test files exist now: drop them from NOT_YET"
    assert all(reason.strip() for reason in NOT_YET.values())


def test_every_unit_test_file_has_its_module():
    expected = set(modules().values())
    orphans = [
        str(path.relative_to(ROOT))
        for path in sorted(UNIT.rglob("*.py"))
        if path.resolve() != THIS
        and "__pycache__" not in path.parts
        and path.name != "conftest.py"
        and path not in expected
    ]
    assert orphans == [], (
        "a unit test file mirrors one llmstep module (helpers live in tests/, fixtures in a "
        "conftest.py, end-to-end suites at its top)"
    )


def test_the_tests_are_no_package():
    """Test files are imported by path (pytest's importlib mode), so the same file name may be in
    several folders; an __init__.py would make them a package, with names of its own."""
    assert sorted(str(p.relative_to(ROOT)) for p in (ROOT / "tests").rglob("__init__.py")) == []

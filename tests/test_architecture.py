"""The shape of the package: imports run one way (the layers of ARCHITECTURE.md), the step's
entry point imports only what a step needs, and ARCHITECTURE.md names only modules that exist.

The check reads every module's imports with ``ast`` (including imports inside functions, which
llmstep uses to stay lazy; ``if TYPE_CHECKING:`` blocks are left out: they never run).
"""

import ast
import re
from pathlib import Path

from conftest import ROOT

import llmstep

PACKAGE = ROOT / "llmstep"

# (rank, group) of a module, by its longest listed prefix. A module may import a module of a lower
# rank, or of its own group; never one of a higher rank, nor a sibling group of the same rank.
LAYERS = {
    "llmstep.errors": (0, "errors"),
    "llmstep": (1, "data"),  # the package itself: its __version__ (its lazy API is for users)
    "llmstep.contract": (1, "data"),
    "llmstep.plan": (1, "data"),
    "llmstep.shapes": (1, "data"),
    "llmstep.serde": (1, "data"),
    "llmstep.payloads": (1, "data"),
    "llmstep.values": (1, "data"),
    "llmstep.offline": (1, "data"),
    "llmstep.files": (1, "data"),
    "llmstep.jsonio": (1, "data"),
    "llmstep.yamlio": (1, "data"),
    "llmstep.naming": (1, "data"),
    "llmstep.diagnose.settings": (1, "data"),  # Diagnose(...) is data that both renderers read
    "llmstep.executor": (2, "executor"),
    "llmstep.compiler": (2, "compiler"),
    "llmstep.render": (3, "render"),
    "llmstep.local": (4, "local"),
    "llmstep.cluster": (4, "cluster"),
    "llmstep.diagnose": (4, "diagnose"),
    "llmstep.api": (5, "api"),
    "llmstep.cli": (6, "cli"),
    "llmstep.__main__": (6, "cli"),
}
EXECUTOR_MAY_IMPORT = {"llmstep.errors", "llmstep.contract", "llmstep.serde", "llmstep.payloads", "llmstep.values", "llmstep.shapes",
                       "llmstep.offline", "llmstep.jsonio"}
ERRORS_MAY_IMPORT = {"llmstep.contract"}
"""Each error carries its exit code, and the codes' one home is the contract, which imports nothing of
llmstep when it loads (its uses of the errors are inside functions): no cycle at import time."""
RENDER_EXEMPT = {("llmstep.render.cache", "llmstep.compiler.leaks")}
"""The one import of render/ above the data layer that stands: the cache's secret check, which goes
to where it belongs (the cache keeps rendered documents, it does not judge chains)."""
NEVER = {  # third-party packages a layer must not import: the executor starts lean, the compiler is engine-neutral
    "llmstep.executor": ("hera", "kubernetes", "yaml"),
    "llmstep.compiler": ("hera", "kubernetes"),
    "llmstep.plan": ("hera", "kubernetes", "langchain_core"),
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _exists(name: str) -> bool:
    path = ROOT / name.replace(".", "/")
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def imports_of(path: Path) -> set[str]:
    """The modules ``path`` imports (llmstep's, by their full names, and third-party top-level names)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    class Visitor(ast.NodeVisitor):
        def visit_If(self, node: ast.If) -> None:
            test = node.test
            if getattr(test, "id", None) == "TYPE_CHECKING" or getattr(test, "attr", None) == "TYPE_CHECKING":
                for child in node.orelse:
                    self.visit(child)
                return
            self.generic_visit(node)

        def visit_Import(self, node: ast.Import) -> None:
            found.update(alias.name for alias in node.names)

        def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                base = f"{base}.{node.module}" if node.module else base
            else:
                base = node.module or ""
            for alias in node.names:
                full = f"{base}.{alias.name}"
                found.add(full if base.startswith("llmstep") and _exists(full) else base)

    Visitor().visit(ast.parse(path.read_text(encoding="utf-8")))
    return found


def layer(name: str) -> tuple[int, str]:
    prefix = max((p for p in LAYERS if name == p or name.startswith(p + ".")), key=len)
    return LAYERS[prefix]


def _modules() -> dict[str, set[str]]:
    return {module_name(p): imports_of(p) for p in sorted(PACKAGE.rglob("*.py"))}


def violations(modules: dict[str, set[str]]) -> list[str]:
    found = []
    for name, imported in modules.items():
        rank, group = layer(name)
        for target in sorted(imported):
            if target.startswith("llmstep") and not (group == "errors" and target in ERRORS_MAY_IMPORT):
                their_rank, their_group = layer(target)
                if their_group != group and their_rank >= rank:
                    found.append(f"{name} imports {target}: {group} (layer {rank}) may not import {their_group} (layer {their_rank})")
                if group == "render" and 1 < their_rank < rank and (name, target) not in RENDER_EXEMPT:
                    found.append(f"{name} imports {target}: the renderers read only the Plan and the data layer")
                if group == "executor" and their_group != "executor" and target not in EXECUTOR_MAY_IMPORT:
                    found.append(f"{name} imports {target}: a step needs only {sorted(EXECUTOR_MAY_IMPORT)}")
            for prefix, banned in NEVER.items():
                if (name == prefix or name.startswith(prefix + ".")) and target.split(".")[0] in banned:
                    found.append(f"{name} imports {target}, which {prefix} never imports")
    return found


def test_imports_run_one_way():
    assert violations(_modules()) == []


def test_the_contract_imports_nothing_of_llmstep_when_it_loads():
    """What lets the errors take their exit codes from the contract without a cycle."""
    tree = ast.parse((PACKAGE / "contract.py").read_text(encoding="utf-8"))
    top = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    assert [ast.unparse(n) for n in top if "llmstep" in ast.unparse(n)] == []


def test_every_module_has_a_layer():
    for name in _modules():
        assert layer(name), name


def test_the_check_fails_on_an_import_against_the_direction():
    """The control: the check finds each kind of wrong import."""
    modules = {"llmstep.render.argo": {"llmstep.local.entry"}, "llmstep.local.argo": {"llmstep.cluster.argo"},
               "llmstep.executor.step": {"llmstep.compiler.walk", "hera"}, "llmstep.plan": {"llmstep.cli.main"},
               "llmstep.compiler.walk": {"llmstep.diagnose.evidence"}, "llmstep.render.tekton": {"llmstep.compiler.naming"}}
    found = violations(modules)
    assert [f.split(":")[0] for f in found] == [
        "llmstep.render.argo imports llmstep.local.entry",
        "llmstep.local.argo imports llmstep.cluster.argo",
        "llmstep.executor.step imports hera, which llmstep.executor never imports",
        "llmstep.executor.step imports llmstep.compiler.walk",
        "llmstep.executor.step imports llmstep.compiler.walk",
        "llmstep.plan imports llmstep.cli.main",
        "llmstep.compiler.walk imports llmstep.diagnose.evidence",
        "llmstep.render.tekton imports llmstep.compiler.naming",
    ]


def test_the_import_reader_sees_lazy_imports_and_skips_type_checking_blocks():
    assert "llmstep.cluster.argo" in imports_of(PACKAGE / "api.py")  # inside a function
    assert not [m for m in imports_of(PACKAGE / "__init__.py") if m.startswith("llmstep.")]  # TYPE_CHECKING only


# ---------------------------------------------------------------- ARCHITECTURE.md stays true

ARCHITECTURE = ROOT / "ARCHITECTURE.md"


def _named_modules(text: str) -> set[str]:
    dotted = set(re.findall(r"`(llmstep(?:\.\w+)+)`", text))
    paths = {m.removesuffix(".py").replace("/", ".") for m in re.findall(r"`(llmstep/[\w/]+\.py)`", text)}
    return dotted | paths


def test_architecture_names_only_modules_that_exist():
    named = _named_modules(ARCHITECTURE.read_text(encoding="utf-8"))
    assert len(named) > 30  # the document really names the modules
    missing = []
    for name in sorted(named):
        module, _, attr = name.rpartition(".")
        if _exists(name) or (module == "llmstep" and attr in llmstep.__all__):  # a module, or the public API
            continue
        if _exists(module):  # llmstep.contract.exec_argv: a name in a module
            source = (ROOT / (module.replace(".", "/") + ".py"))
            source = source if source.is_file() else ROOT / module.replace(".", "/") / "__init__.py"
            if re.search(rf"^(def|class) {attr}\b|^{attr}\b.*=", source.read_text(encoding="utf-8"), re.M):
                continue
        missing.append(name)
    assert missing == []


def test_architecture_draws_every_package_and_every_layer():
    text = ARCHITECTURE.read_text(encoding="utf-8")
    packages = {module_name(p) for p in PACKAGE.rglob("__init__.py")} - {"llmstep"}
    assert {p for p in packages if f"`{p}`" not in text and f"`{p.replace('.', '/')}/`" not in text} == set()
    for prefix in LAYERS:
        if prefix != "llmstep":
            assert prefix.removeprefix("llmstep.") in text, prefix


def _environment_reads(path: Path) -> list[str]:
    """Where ``path`` reads the environment: ``os.environ`` used other than to replace it, ``os.getenv``."""
    reads = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Attribute) and node.attr == "getenv":
            reads.append(f"{path.name}:{node.lineno}")
        if isinstance(node, ast.Attribute) and node.attr in ("get", "copy", "items", "keys", "values") \
                and isinstance(node.value, ast.Attribute) and node.value.attr == "environ":
            reads.append(f"{path.name}:{node.lineno}")
        if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute) and node.value.attr == "environ" \
                and isinstance(node.ctx, ast.Load):
            reads.append(f"{path.name}:{node.lineno}")
    return reads


def test_nothing_under_the_fork_server_reads_the_environment(tmp_path):
    """Its idle time and directories come from its caller (Isolation.from_environ); a forked step's
    environment is replaced with its request's, never read."""
    files = sorted((PACKAGE / "local" / "forkserver").glob("*.py"))
    assert len(files) >= 8
    assert [r for f in files for r in _environment_reads(f)] == []
    control = tmp_path / "control.py"
    control.write_text('import os\na = os.environ.get("A")\nb = os.environ["B"]\nc = os.getenv("C")\nos.environ.update({})\n')
    assert sorted(_environment_reads(control)) == ["control.py:2", "control.py:3", "control.py:4"]  # the reader finds reads

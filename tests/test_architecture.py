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
    "llmstep.exitcodes": (0, "errors"),  # each error carries its exit code
    "llmstep": (1, "data"),  # the package itself: its __version__ (its lazy API is for users)
    "llmstep.contract": (1, "data"),
    "llmstep.plan": (1, "data"),
    "llmstep.shapes": (1, "data"),
    "llmstep.serde": (1, "data"),
    "llmstep.payloads": (1, "data"),
    "llmstep.values": (1, "data"),
    "llmstep.valueclasses": (1, "data"),
    "llmstep.offline": (1, "data"),
    "llmstep.files": (1, "data"),
    "llmstep.jsonio": (1, "data"),
    "llmstep.yamlio": (1, "data"),
    "llmstep.naming": (1, "data"),
    "llmstep.usage": (1, "data"),
    "llmstep.diagnose.settings": (1, "data"),  # Diagnose(...) is data that both renderers read
    "llmstep.executor": (2, "executor"),
    "llmstep.compiler": (2, "compiler"),
    "llmstep.render": (3, "render"),
    "llmstep.local": (4, "local"),
    "llmstep.cluster": (4, "cluster"),
    "llmstep.diagnose": (4, "diagnose"),
    "llmstep.plain": (1, "data"),
    "llmstep.api": (5, "api"),
    "llmstep.settings": (5, "api"),  # the Python API's one read of the environment
    "llmstep.cli": (6, "cli"),
    "llmstep.__main__": (6, "cli"),
}
EXECUTOR_MAY_IMPORT = {
    "llmstep.errors",
    "llmstep.exitcodes",
    "llmstep.contract",
    "llmstep.serde",
    "llmstep.payloads",
    "llmstep.values",
    "llmstep.valueclasses",
    "llmstep.shapes",
    "llmstep.offline",
    "llmstep.jsonio",
}
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
            if target.startswith("llmstep"):
                their_rank, their_group = layer(target)
                if their_group != group and their_rank >= rank:
                    found.append(
                        f"{name} imports {target}: {group} (layer {rank}) may not import {their_group} (layer {their_rank})"
                    )
                if group == "render" and 1 < their_rank < rank:
                    found.append(f"{name} imports {target}: the renderers read only the Plan and the data layer")
                if group == "executor" and their_group != "executor" and target not in EXECUTOR_MAY_IMPORT:
                    found.append(f"{name} imports {target}: a step needs only {sorted(EXECUTOR_MAY_IMPORT)}")
            for prefix, banned in NEVER.items():
                if (name == prefix or name.startswith(prefix + ".")) and target.split(".")[0] in banned:
                    found.append(f"{name} imports {target}, which {prefix} never imports")
    return found


def test_imports_run_one_way():
    assert violations(_modules()) == []


def test_every_module_has_a_layer():
    for name in _modules():
        assert layer(name), name


def test_the_check_fails_on_an_import_against_the_direction():
    """The control: the check finds each kind of wrong import."""
    modules = {
        "llmstep.render.argo": {"llmstep.local.entry"},
        "llmstep.local.argo": {"llmstep.cluster.argo"},
        "llmstep.executor.step": {"llmstep.compiler.walk", "hera"},
        "llmstep.plan": {"llmstep.cli.main"},
        "llmstep.compiler.walk": {"llmstep.diagnose.evidence"},
        "llmstep.render.tekton": {"llmstep.compiler.naming"},
    }
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
            source = ROOT / (module.replace(".", "/") + ".py")
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


# ---------------------------------------------------------------- settings are read at the door

ENTRY_POINTS = ("llmstep.cli", "llmstep.__main__", "llmstep.executor.main", "llmstep.settings")
"""The modules that may read the environment: the command line, ``llmstep exec``, and the Python
API's door (:class:`llmstep.settings.Settings`). Everything below them is given what it needs."""


def _entry_point(name: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in ENTRY_POINTS)


def _os_names(tree: ast.AST) -> tuple[set[str], dict[str, str]]:
    """The names ``tree`` binds to the ``os`` module, and to its members (by their own names)."""
    modules, members = set(), {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules |= {alias.asname or alias.name for alias in node.names if alias.name == "os"}
        elif isinstance(node, ast.ImportFrom) and node.module == "os" and not node.level:
            members |= {alias.asname or alias.name: alias.name for alias in node.names}
    return modules, members


def environment_uses(source: str, filename: str = "<module>") -> list[str]:
    """Where ``source`` reads the environment: any use of ``os.environ`` (``.get``, ``[...]``,
    ``dict(os.environ)``, ``{**os.environ}``, passing it on) or ``os.getenv``, however ``os`` or its
    members are imported. Replacing it is no read: ``os.environ.clear()``, ``.update(...)``, and
    an assignment or ``del`` of one of its keys (a forked step takes its request's environment)."""
    tree = ast.parse(source)
    modules, members = _os_names(tree)
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in modules:
            what = node.attr
        elif isinstance(node, ast.Name) and node.id in members and isinstance(node.ctx, ast.Load):
            what = members[node.id]
        else:
            continue
        if what not in ("environ", "environb", "getenv", "getenvb"):
            continue
        parent = parents.get(node)
        if isinstance(parent, ast.Attribute) and parent.attr in ("clear", "update"):
            continue  # replaced, not read
        if isinstance(parent, ast.Subscript) and parent.value is node and isinstance(parent.ctx, (ast.Store, ast.Del)):
            continue
        found.append(f"{filename}:{node.lineno}")
    return found


def environment_readers(sources: dict[str, str]) -> dict[str, list[str]]:
    """The modules (of ``sources``: name -> text) below the entry points that read the environment."""
    readers = {}
    for name, source in sources.items():
        if not _entry_point(name):
            uses = environment_uses(source, name)
            if uses:
                readers[name] = uses
    return readers


def _sources() -> dict[str, str]:
    return {module_name(p): p.read_text(encoding="utf-8") for p in sorted(PACKAGE.rglob("*.py"))}


def test_only_the_entry_points_read_the_environment():
    """Below them, the fork server (its idle time and folders come from its caller; a forked step's
    environment is replaced with its request's, never read), the cluster clients (ARGO_SERVER,
    KUBECONFIG... come from the CLI, Compiled.submit and llmstep.KubernetesRunnable) and the rest
    are given their settings."""
    assert environment_readers(_sources()) == {}


def test_the_environment_check_finds_each_way_to_read_it():
    """The control: a module below the entry points that reads the environment in any of these
    ways is found; the entry points, and a module that only replaces the environment, are not."""
    planted = (
        "import os\nfrom os import environ as env, getenv\nimport os as o\n"
        "a = os.environ.get('A')\n"  # 4
        "b = os.environ['B']\n"  # 5
        "c = os.getenv('C')\n"  # 6
        "d = dict(os.environ)\n"  # 7
        "e = {**o.environ}\n"  # 8
        "f = env.get('F')\n"  # 9
        "g = getenv('G')\n"  # 10
        "def h(x=os.environ): return x\n"  # 11
        "os.environ.clear()\nos.environ.update({})\nos.environ['K'] = 'v'\ndel os.environ['K']\n"
    )
    lines = [int(where.rpartition(":")[2]) for where in environment_uses(planted)]
    assert sorted(lines) == [4, 5, 6, 7, 8, 9, 10, 11]
    sources = {
        "llmstep.local.planted": planted,
        "llmstep.cli.planted": planted,
        "llmstep.settings": planted,
        "llmstep.executor.main": planted,
        "llmstep.executor.step": "import os\nos.environ.update({})\n",
    }
    assert list(environment_readers(sources)) == ["llmstep.local.planted"]


def module_global_writes(source: str, filename: str = "<module>") -> list[str]:
    """Where ``source`` assigns to another module's global or to an attribute of one
    (``values.CLIENT.lenient = True``, ``cache.KEEP = 2``): a flag set from outside, at run time,
    for everything in the process. ``module`` is any name an import binds."""
    tree = ast.parse(source)
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.asname or alias.name.partition(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported |= {alias.asname or alias.name for alias in node.names}
    found = []
    for node in ast.walk(tree):
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
            targets = [node.target]
        elif isinstance(node, ast.Delete):
            targets = node.targets
        for target in targets:
            root = target
            while isinstance(root, ast.Attribute):
                root = root.value
            if isinstance(target, ast.Attribute) and isinstance(root, ast.Name) and root.id in imported:
                found.append(f"{filename}:{node.lineno}: {ast.unparse(target)}")
    return found


def test_no_module_sets_another_modules_globals():
    """Settings are values passed down, not flags an entry point sets on a module for everyone."""
    assert [w for name, source in _sources().items() for w in module_global_writes(source, name)] == []


def test_the_global_write_check_finds_a_flag_set_from_outside():
    planted = (
        "from llmstep import values\nimport llmstep.render.cache as cache\nimport llmstep\n"
        "def main():\n"
        "    values.CLIENT.lenient = True\n"  # 5
        "    cache.KEEP = 2\n"  # 6
        "    llmstep.values.CLIENT.lenient += 1\n"  # 7
        "    own = object()\n    own.flag = True\n"  # a local object's attribute: no module's
        "    args = main\n    args.debug = True\n"
    )
    assert [w.split(": ")[0] for w in module_global_writes(planted, "m")] == ["m:5", "m:6", "m:7"]


# ---------------------------------------------------------------- no import cycle


def import_cycles(modules: dict[str, set[str]]) -> list[str]:
    """Each group of llmstep modules that import each other (directly or around a loop), as one
    of its loops: ``a -> b -> a``. Imports inside functions count: they run too."""
    graph = {name: sorted(t for t in imported if t in modules and t != name) for name, imported in modules.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def visit(name: str) -> None:  # Tarjan's strongly connected components
        index[name] = low[name] = len(index)
        stack.append(name)
        for target in graph[name]:
            if target not in index:
                visit(target)
                low[name] = min(low[name], low[target])
            elif target in stack:
                low[name] = min(low[name], index[target])
        if low[name] == index[name]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == name:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for name in sorted(graph):
        if name not in index:
            visit(name)
    return [_loop(graph, group) for group in groups]


def _loop(graph: dict[str, list[str]], group: list[str]) -> str:
    """A loop through the group's first module, by the shortest way back to it."""
    start, members = group[0], set(group)
    paths = {start: [start]}
    queue = [start]
    while queue:
        name = queue.pop(0)
        for target in graph[name]:
            if target == start:
                return " -> ".join([*paths[name], start])
            if target in members and target not in paths:
                paths[target] = [*paths[name], target]
                queue.append(target)
    return " -> ".join(group)


def test_no_import_cycle():
    assert import_cycles(_modules()) == []


def test_the_cycle_check_names_each_loop():
    modules = {
        "llmstep.a": {"llmstep.b", "os"},
        "llmstep.b": {"llmstep.c"},
        "llmstep.c": {"llmstep.a"},
        "llmstep.d": {"llmstep.a", "llmstep.e"},
        "llmstep.e": {"llmstep.d"},
        "llmstep.f": {"llmstep.a"},
    }
    assert import_cycles(modules) == [
        "llmstep.a -> llmstep.b -> llmstep.c -> llmstep.a",
        "llmstep.d -> llmstep.e -> llmstep.d",
    ]
    assert import_cycles({"llmstep.a": {"llmstep.b"}, "llmstep.b": set()}) == []


def test_the_cycle_check_sees_imports_inside_functions():
    """The command line's modules imported each other only inside functions: those edges are in
    the graph the check walks."""
    modules = _modules()
    assert "llmstep.cli.run" in modules["llmstep.cli.main"]  # imported inside _parser()
    looped = {**modules, "llmstep.cli.options": modules["llmstep.cli.options"] | {"llmstep.cli.main"}}
    [loop] = import_cycles(looped)  # main imports the command modules, and they the options
    assert "llmstep.cli.options -> llmstep.cli.main" in loop, loop


MAX_MODULE_LINES = 450
"""A module longer than this holds more than one concern: split it by concern, as serde (values,
payloads), render.tekton (the Pipeline, the reusable Tasks) and local.argo_doc (the subset, the
typed Workflow) were."""


def test_no_module_is_longer_than_its_bound():
    lengths = {module_name(p): len(p.read_text(encoding="utf-8").splitlines()) for p in sorted(PACKAGE.rglob("*.py"))}
    assert len(lengths) > 100  # the whole package was read
    assert {name: n for name, n in lengths.items() if n > MAX_MODULE_LINES} == {}

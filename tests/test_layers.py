"""The layer rule, read from the source: every import of every tui_tune module, at any depth.

    entry   cli/, __main__, serve_guard       may import anything below
    train   the worker   |   tui   the app     never import each other
    runs    run directories, launching, control
    ground  the package itself, rundir, events, display, config, monitor

A module imports only its own layer and the layers below it; only train imports the heavy
stack. Imports inside functions count (they run too); those under `if TYPE_CHECKING:` don't.
The walk is by AST, so no module is imported to check it. `make lint` runs this file as well.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "tui_tune"
HEAVY = frozenset({"torch", "transformers", "peft", "bitsandbytes", "datasets", "accelerate"})

GROUND, RUNS, TRAIN, TUI, ENTRY = "ground", "runs", "train", "tui", "entry"
RANK = {GROUND: 0, RUNS: 1, TRAIN: 2, TUI: 2, ENTRY: 3}
# The first name below tui_tune -> its layer; a new top-level module must be placed here.
LAYER_OF = {"": GROUND, "rundir": GROUND, "events": GROUND, "config": GROUND, "monitor": GROUND,
            "display": GROUND, "step_index": GROUND, "event_writer": GROUND,
            "runs": RUNS, "train": TRAIN, "tui": TUI, "cli": ENTRY, "serve_guard": ENTRY,
            "__main__": ENTRY}

# Import cycles that exist today; each is a set of modules that reach one another. A cycle
# may shrink to a part of one of these, never grow. None is left (issue 14 removed them).
KNOWN_CYCLES = [
]


def module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(test: ast.expr) -> bool:
    return ast.unparse(test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING")


def _literal_import_module(call: ast.Call) -> str | None:
    """`importlib.import_module("tui_tune.x")` with a literal name is an import too."""
    name = ast.unparse(call.func)
    if name in ("importlib.import_module", "import_module") and call.args:
        first = call.args[0]
        if isinstance(first, ast.Constant) and isinstance(first.value, str):
            return first.value
    return None


def imported_names(source: str, module: str, is_package: bool) -> Iterator[tuple[str, int]]:
    """(dotted name, line) for each import anywhere in the source, relative ones resolved.

    `from a.b import c` yields both a.b and a.b.c: c may be a submodule or just a name.
    """
    package = module if is_package else module.rpartition(".")[0]

    def walk(node: ast.AST) -> Iterator[tuple[str, int]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child.test):
                for statement in child.orelse:
                    yield from walk_one(statement)
                continue
            yield from walk_one(child)

    def walk_one(node: ast.AST) -> Iterator[tuple[str, int]]:
        if isinstance(node, ast.Import):
            yield from ((alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            yield base, node.lineno
            yield from ((f"{base}.{alias.name}", node.lineno) for alias in node.names)
        elif isinstance(node, ast.Call) and (name := _literal_import_module(node)):
            yield name, node.lineno
        yield from walk(node)

    yield from walk(ast.parse(source))


def scan(root: Path) -> dict[str, list[tuple[str, int]]]:
    """Every module under root -> the names it imports, with line numbers."""
    found = {}
    for path in sorted(root.rglob("*.py")):
        name = module_name(path, root)
        found[name] = list(imported_names(path.read_text(encoding="utf-8"), name,
                                          path.name == "__init__.py"))
    return found


def layer(module: str) -> str | None:
    parts = module.split(".")
    return LAYER_OF.get(parts[1] if len(parts) > 1 else "")


def own_module(name: str, modules: set[str]) -> str | None:
    """The package module an imported name lives in (the longest known prefix), if any."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def edges(imports: dict[str, list[tuple[str, int]]]) -> set[tuple[str, str, int]]:
    """(importer, imported module, line); `from pkg import mod` counts as pkg.mod alone."""
    modules = set(imports)
    found = set()
    for module, names in imports.items():
        for name, line in names:
            target = own_module(name, modules)
            if target and target != module:
                found.add((module, target, line))
    return {(module, target, line) for module, target, line in found
            if not any(other[0] == module and other[2] == line
                       and other[1].startswith(target + ".") for other in found)}


def violations(imports: dict[str, list[tuple[str, int]]]) -> list[str]:
    """One line per broken rule: 'module:line imports target (why)'."""
    problems = []
    for module in sorted(imports):
        if layer(module) is None:
            problems.append(f"{module} has no layer: add it to LAYER_OF in {Path(__file__).name}")
    for module, target, line in sorted(edges(imports)):
        mine, theirs = layer(module), layer(target)
        if mine is None or theirs is None:
            continue
        if RANK[theirs] > RANK[mine] or (RANK[theirs] == RANK[mine] and mine != theirs):
            problems.append(f"{module}:{line} imports {target} ({mine} may not import {theirs})")
    for module, names in sorted(imports.items()):
        if layer(module) == TRAIN:
            continue
        for name, line in names:
            if name.split(".")[0] in HEAVY:
                problems.append(f"{module}:{line} imports {name} (only train may import it)")
    return sorted(set(problems))


def cycles(imports: dict[str, list[tuple[str, int]]]) -> list[set[str]]:
    """Groups of modules that import one another, directly or not (Tarjan's components)."""
    graph: dict[str, set[str]] = {module: set() for module in imports}
    for module, target, _ in edges(imports):
        graph[module].add(target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.add(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(group)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


def test_package_keeps_its_layers():
    assert violations(scan(PACKAGE)) == []


def test_no_import_cycles_beyond_the_known_ones():
    found = cycles(scan(PACKAGE))
    new = [sorted(group) for group in found
           if not any(group <= known for known in KNOWN_CYCLES)]
    assert new == [], "new import cycle(s)"
    gone = [sorted(known) for known in KNOWN_CYCLES
            if not any(group <= known for group in found)]
    assert gone == [], "these cycles are gone: remove them from KNOWN_CYCLES"


# The checker itself, on small made-up packages: each rule catches what it should.

def fake_package(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "tui_tune"
    for relative, text in {"__init__.py": "", **files}.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        for package in path.relative_to(root).parents:
            (root / package / "__init__.py").touch()
        path.write_text(text, encoding="utf-8")
    return root


@pytest.mark.parametrize(("files", "expected"), [
    ({"runs/a.py": "def f():\n    from tui_tune.tui import b\n", "tui/b.py": ""},
     "tui_tune.runs.a:2 imports tui_tune.tui.b (runs may not import tui)"),
    ({"tui/a.py": "from tui_tune.train.b import x\n", "train/b.py": ""},
     "tui_tune.tui.a:1 imports tui_tune.train.b (tui may not import train)"),
    ({"train/a.py": "from ..tui import b\n", "tui/b.py": ""},
     "tui_tune.train.a:1 imports tui_tune.tui.b (train may not import tui)"),
    ({"events.py": "import tui_tune.runs.b\n", "runs/b.py": ""},
     "tui_tune.events:1 imports tui_tune.runs.b (ground may not import runs)"),
    ({"config/a.py": "import importlib\nimportlib.import_module('tui_tune.cli.x')\n",
      "cli/x.py": ""},
     "tui_tune.config.a:2 imports tui_tune.cli.x (ground may not import entry)"),
    ({"runs/a.py": "class A:\n    def f(self):\n        import torch.nn\n"},
     "tui_tune.runs.a:3 imports torch.nn (only train may import it)"),
    ({"widgets.py": ""}, "tui_tune.widgets has no layer: add it to LAYER_OF in test_layers.py"),
])
def test_checker_finds_each_kind_of_violation(tmp_path, files, expected):
    assert violations(scan(fake_package(tmp_path, files))) == [expected]


def test_checker_allows_downward_imports_and_type_checking_blocks(tmp_path):
    root = fake_package(tmp_path, {
        "train/a.py": "import torch\nfrom tui_tune.runs import b\nfrom tui_tune import events\n",
        "runs/b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                     "    from tui_tune.tui import c\nelse:\n    from tui_tune.config import d\n",
        "tui/c.py": "from tui_tune.runs.b import x\n", "events.py": "", "config/d.py": "",
        "cli/x.py": "from tui_tune.tui import c\nfrom tui_tune.train import a\n",
    })
    assert violations(scan(root)) == []


def test_checker_finds_cycles_through_function_level_imports(tmp_path):
    root = fake_package(tmp_path, {
        "runs/a.py": "from tui_tune.runs import b\n",
        "runs/b.py": "def f():\n    from tui_tune.runs.c import g\n",
        "runs/c.py": "from . import a\n", "runs/d.py": "from tui_tune.runs import a\n",
    })
    assert cycles(scan(root)) == [{"tui_tune.runs.a", "tui_tune.runs.b", "tui_tune.runs.c"}]

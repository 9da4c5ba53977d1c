"""The layering of docs/ARCHITECTURE.md, checked on the source: no import cycle, no upward import.

Every ``import``/``from ... import`` of a talkingface module counts, function-local
ones included: a lazy import is still a dependency.
"""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "talkingface"

#: top to bottom; a module may import its own layer (no cycle) and the layers below
LAYERS: list[tuple[str, ...]] = [
    ("talkingface.cli", "talkingface.__main__"),
    ("talkingface.commands",),
    ("talkingface.run",),
    ("talkingface.models", "talkingface.accel", "talkingface.evaluation", "talkingface.data"),
    ("talkingface.face", "talkingface.media"),
    ("talkingface.weights", "talkingface.config", "talkingface.registry", "talkingface.runtime",
     "talkingface.errors", "talkingface.logs", "talkingface.atomic", "talkingface"),
]


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, name: str, known: set[str]) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        out |= {t for t in targets if t.startswith("talkingface") and t in known}
    out.discard(name)
    return out


def import_graph() -> dict[str, set[str]]:
    files = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    known = set(files)
    return {name: _imports(path, name, known) for name, path in files.items()}


def layer_of(module: str) -> int:
    best = None
    for index, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if module == prefix or module.startswith(prefix + "."):
                if best is None or len(prefix) > best[1]:
                    best = (index, len(prefix))
    assert best is not None, module
    return best[0]


def test_no_module_imports_from_a_layer_above_it():
    upward = sorted(f"{src} -> {dst}" for src, targets in import_graph().items() for dst in targets
                    if layer_of(dst) < layer_of(src))
    assert upward == [], "\n".join(upward)


def test_no_import_cycle():
    graph = import_graph()
    cycles = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join(stack[stack.index(nxt):] + [nxt]))
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert cycles == [], "\n".join(cycles)


def test_the_checker_sees_function_local_imports(tmp_path):
    """A checker that missed lazy imports would pass on the cycles it is there to catch."""
    graph = import_graph()
    assert "talkingface.run.runner" in graph["talkingface.commands.run"]  # imported inside a function

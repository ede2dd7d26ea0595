"""The package's layout: each stage of the data's way is one sub-package, imports run from later
stages to earlier ones only (lazy imports inside functions included), nothing imports another
module's private names, and no module grows past a screenful of screens."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "neurosim"

# The stages in the order data flows through them; a module may import from its own stage and
# the stages before it. `errors` is the one leaf every stage may raise.
STAGES = ("errors", "datasets", "spec", "graph", "programs", "interop", "zoo", "mapping", "engine", "cores",
          "system", "traces", "runs", "analysis", "sweep", "cli")
MAX_LINES = 520


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(path: Path) -> list[tuple[str, list[str], int]]:
    """Every ``neurosim`` import in a module, at any depth: (module, names imported from it, line)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(a.name, [], node.lineno) for a in node.names if a.name.split(".")[0] == "neurosim"]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module \
                and node.module.split(".")[0] == "neurosim":
            found.append((node.module, [a.name for a in node.names], node.lineno))
    return found


def edges() -> dict[str, set[str]]:
    """Which neurosim modules each module imports (a name that is a submodule counts as it)."""
    graph: dict[str, set[str]] = {name: set() for name in MODULES}
    for name, path in MODULES.items():
        for target, names, _ in imports_of(path):
            subs = {f"{target}.{n}" for n in names if f"{target}.{n}" in MODULES}
            if subs:
                graph[name] |= subs
            if not names or len(subs) < len(names):
                graph[name].add(target)
    return graph


def stage_of(module: str) -> str | None:
    """The stage a module belongs to; None for the package's facade (``neurosim``, ``neurosim.__main__``)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and not parts[1].startswith("__") else None


def test_every_module_is_in_a_stage():
    assert {stage_of(m) for m in MODULES} - {None} <= set(STAGES)


def test_no_import_cycle():
    graph = edges()
    state: dict[str, int] = {}                 # 1: on the current path, 2: done
    cycles = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if nxt == node or nxt not in graph:
                continue
            if state.get(nxt) == 1:
                cycles.append(path[path.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    graph["neurosim"] = set()                  # the facade's imports are lazy: it is imported before them all
    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_imports_run_from_later_stages_to_earlier_ones():
    upward = []
    for name, path in MODULES.items():
        here = stage_of(name)
        if here is None:                       # neurosim/__init__.py: the public facade over every stage
            continue
        for target, _, line in imports_of(path):
            there = stage_of(target)
            if there is not None and STAGES.index(there) > STAGES.index(here):
                upward.append(f"{path.relative_to(PACKAGE.parent)}:{line} ({here}) imports {target} ({there})")
    assert not upward, "imports against the data's way:\n" + "\n".join(upward)


@pytest.mark.parametrize("folder", ["neurosim", "tests", "benchmarks", "models"])
def test_no_private_name_is_imported(folder):
    root = PACKAGE.parent / folder
    private = [f"{p.relative_to(PACKAGE.parent)}:{line} imports {n} from {target}"
               for p in sorted(root.rglob("*.py")) for target, names, line in imports_of(p)
               for n in names if n.startswith("_") and not n.endswith("__")]
    assert not private, "\n".join(private)


def test_modules_stay_small():
    big = {name: n for name, path in MODULES.items() if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert not big, f"modules over {MAX_LINES} lines: {big}"


# the patterns are written in pieces, so that this file does not itself name what it looks for
OUTSIDE = re.compile("|".join([r"\.\./" + "shared", "shared" + "/reference", "/" + "work/"]))
TEXT = {".py", ".md", ".yaml", ".yml", ".toml", ".txt", ".cfg", ".ini", ""}


def test_nothing_names_a_path_outside_the_repository():
    """The repository stands alone: no scenario, test, doc or code reads or names a file beside it."""
    root = PACKAGE.parent
    skip = {"build", "dist", "traces"}
    found = []
    for path in root.rglob("*"):
        parts = set(path.relative_to(root).parts)
        if path.is_dir() or parts & skip or "__pycache__" in parts or path.suffix not in TEXT \
                or any(p.endswith(".egg-info") or p.startswith(".") and p != ".ci" for p in parts):
            continue
        for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if OUTSIDE.search(line) and path != Path(__file__).resolve():
                found.append(f"{path.relative_to(root)}:{n}: {line.strip()[:100]}")
    assert not found, "\n".join(found)

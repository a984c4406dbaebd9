"""The layers import only what is theirs to import, and no module grows into a file that
needs a paragraph to say what it is. Read from the source (ast), so nothing is imported."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MAX_LINES = 350


def modules(layer: str) -> list[Path]:
    return sorted((ROOT / layer).rglob("*.py"))


def imported(path: Path) -> set[str]:
    """The top-level packages a module imports, at its top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def name(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


@pytest.mark.parametrize(
    ("layer", "forbidden"),
    [
        ("entrypoints", {"adapters", "tests"}),
        ("adapters", {"entrypoints", "config", "tests"}),
        ("bench", {"tests"}),
        ("application", {"adapters", "entrypoints", "config", "tests"}),
        ("domain", {"adapters", "entrypoints", "config", "tests", "application"}),
    ],
)
def test_a_layer_imports_nothing_it_must_not_know(layer: str, forbidden: set[str]) -> None:
    breaches = {name(path): sorted(imported(path) & forbidden) for path in modules(layer)}
    assert modules(layer), f"no modules found under {layer}/"
    assert {module: names for module, names in breaches.items() if names} == {}


def test_the_walk_sees_an_import_inside_a_function(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from adapters.postgres.database import open_database\n    import tests.fakes\n")
    assert imported(module) == {"adapters", "tests"}


def test_no_module_is_over_350_lines() -> None:
    long = {
        name(path): lines
        for layer in ("application", "adapters", "entrypoints")
        for path in modules(layer)
        if (lines := len(path.read_text("utf-8").splitlines())) > MAX_LINES
    }
    assert long == {}


def test_entrypoints_wire_by_typed_reference_and_test_no_adapter_type() -> None:
    """`Provide[Container.x]`, never a string a rename would break only at request time; and no
    entrypoint branches on which adapter it was given."""
    adapter_type = re.compile(r"isinstance\(.*(InMemory|InProcess|Arq|Pg|Qdrant|Redis|Prometheus)")
    found = {
        f"{name(path)}:{number}": line.strip()
        for path in modules("entrypoints")
        for number, line in enumerate(path.read_text("utf-8").splitlines(), 1)
        if 'Provide["' in line or adapter_type.search(line)
    }
    assert found == {}

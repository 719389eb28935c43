"""The package's seams: which parts may import which, read from the source (lazy imports inside functions too)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "magig_core"


def imported_modules(path: Path, root: Path = PACKAGE.parent) -> set[str]:
    """Every module a file under ``root`` imports, anywhere in it, relative imports resolved against its package."""
    package = path.relative_to(root).with_suffix("").parts[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = list(package[: len(package) - node.level + 1]) if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def test_imported_modules_sees_lazy_and_relative_imports(tmp_path: Path) -> None:
    """The reader itself: catches a graph check that only looks at top-level ``import`` lines."""
    probe = tmp_path / "magig_core" / "models" / "probe.py"
    probe.parent.mkdir(parents=True)
    probe.write_text("def f():\n    from ..demo import world\n    import magig_core.demo.shapes\n")
    assert {"magig_core.demo.world", "magig_core.demo.shapes"} <= imported_modules(probe, tmp_path)


def test_the_model_zoo_never_imports_the_demo_world() -> None:
    """models/ is a library of networks; demo/ builds on it (trains and bundles demo-shapes), never the reverse.

    Catches a loader in models/ that reaches into magig_core.demo (as the demo-shapes loaders once did with
    lazy imports), which makes the two packages import each other.
    """
    offenders = {
        str(path.relative_to(PACKAGE)): sorted(m for m in imported_modules(path) if m.startswith("magig_core.demo"))
        for path in sorted((PACKAGE / "models").rglob("*.py"))
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_demo_world_uses_the_model_zoo() -> None:
    """The allowed direction is the one in use: demo/ reads its models through models/ (not a copy of them)."""
    uses = set().union(*(imported_modules(p) for p in (PACKAGE / "demo").rglob("*.py")))
    assert any(m.startswith("magig_core.models") for m in uses)

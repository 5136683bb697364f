"""The layout's rules: the engine imports no task, and nothing points outside the repository."""

import ast
import pathlib
import re

from conftest import ROOT

ENGINE = ROOT / "snnjax" / "engine"
# What the engine may import from snnjax: itself and the two leaf utilities every layer shares.
ENGINE_MAY_IMPORT = ("snnjax.engine", "snnjax.settings", "snnjax.checks")


def imported_modules(path: pathlib.Path) -> set[str]:
    """Every module a file imports, at any depth (function-level imports included)."""
    modules = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module)
    return modules


def test_the_engine_imports_no_task_model_or_data_pipeline():
    files = sorted(ENGINE.glob("*.py"))
    assert len(files) >= 10
    for path in files:
        ours = {m for m in imported_modules(path) if m == "snnjax" or m.startswith("snnjax.")}
        outside = {m for m in ours if not m.startswith(ENGINE_MAY_IMPORT)}
        assert not outside, f"{path.name} imports {sorted(outside)}"


def test_the_leaf_utilities_import_nothing_of_snnjax_above_them():
    assert imported_modules(ROOT / "snnjax" / "checks.py") & {"snnjax.engine", "snnjax.tasks", "snnjax.models"} == set()
    settings = {m for m in imported_modules(ROOT / "snnjax" / "settings.py") if m.startswith("snnjax")}
    assert settings == {"snnjax.checks"}


def test_tasks_do_not_import_each_other():
    for task in ("classification", "detection"):
        other = "detection" if task == "classification" else "classification"
        for path in (ROOT / "snnjax" / "tasks" / task).rglob("*.py"):
            assert not any(m.startswith(f"snnjax.tasks.{other}") for m in imported_modules(path)), path


def test_code_docs_and_help_point_only_inside_the_repository():
    pattern = re.compile(r"DESIGN\.md|\.\./shared|spec\s§|specs/")
    files = [p for d in ("snnjax", "experiments", "tests", "docs") for p in (ROOT / d).rglob("*") if p.is_file()]
    files += [ROOT / "README.md", ROOT / "pyproject.toml"]
    offending = [
        str(p.relative_to(ROOT))
        for p in files
        if p.suffix in (".py", ".md", ".toml") and p != pathlib.Path(__file__) and pattern.search(p.read_text())
    ]
    assert not offending
    cited = set(re.findall(r"docs/[\w.]+\.md", "".join(p.read_text() for p in files if p.suffix in (".py", ".md"))))
    assert cited and all((ROOT / c).is_file() for c in cited), sorted(c for c in cited if not (ROOT / c).is_file())

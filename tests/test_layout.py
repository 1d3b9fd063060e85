"""The code's shape, held by tests (docs/ARCHITECTURE.md): no import cycles, no imports inside
functions (the CLI's lazy start-up uses importlib in cli/main.py, by name), no module over 700
lines, no function over 120, and the definitions load through Dagster's own `dg check defs`."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("conv_pipeline", "conv_pipeline_demo")


def _modules() -> dict[str, tuple[Path, ast.Module]]:
    out = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = (path, ast.parse(path.read_text("utf-8"), str(path)))
    return out


def _resolve(name: str, module: str, level: int, is_package: bool) -> str:
    if not level:
        return name
    base = module.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join([*base, name] if name else base)


def _imports(module: str, path: Path, tree: ast.Module, known: set[str]) -> set[str]:
    """The project modules ``module`` imports at module level (``from pkg import sub`` counts as
    importing ``pkg.sub`` when that is a module)."""
    out: set[str] = set()
    is_package = path.name == "__init__.py"
    for node in tree.body:
        if isinstance(node, ast.If):  # `if TYPE_CHECKING:` blocks do not run
            continue
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name in known}
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(node.module or "", module, node.level, is_package)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                if sub in known:
                    out.add(sub)
                elif base in known:
                    out.add(base)
    out.discard(module)
    return out


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles():
    modules = _modules()
    known = set(modules)
    graph = {m: _imports(m, path, tree, known) for m, (path, tree) in modules.items()}
    assert _cycles(graph) == []


def test_no_imports_inside_functions():
    inner = []
    for _, (path, tree) in _modules().items():
        for fn in ast.walk(tree):
            if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node in ast.walk(fn):
                if isinstance(node, ast.Import | ast.ImportFrom):
                    inner.append(f"{path.relative_to(ROOT)}:{node.lineno} in {fn.name}")
    assert sorted(set(inner)) == []


def test_modules_and_functions_stay_small():
    big_files, big_functions = [], []
    for _, (path, tree) in _modules().items():
        lines = len(path.read_text("utf-8").splitlines())
        if lines > 700:
            big_files.append(f"{path.relative_to(ROOT)}: {lines} lines")
        for fn in ast.walk(tree):
            if isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
                n = fn.end_lineno - fn.lineno + 1
                if n > 120:
                    big_functions.append(f"{path.relative_to(ROOT)}:{fn.lineno} {fn.name}: {n}")
    assert big_files == [] and big_functions == []


def test_dg_check_defs_loads_the_project(tmp_path):
    """Dagster's own tool loads the definitions as the webserver would ([tool.dg] in
    pyproject.toml), on an empty data folder."""
    env = {
        **os.environ,
        "CONV_PIPELINE_DATA_DIR": str(tmp_path / "data"),
        "DAGSTER_HOME": str(tmp_path / "home"),
    }
    (tmp_path / "home").mkdir()
    dg_cli = Path(sys.executable).parent / "dg"
    result = subprocess.run(
        [str(dg_cli), "check", "defs"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "All definitions loaded successfully" in result.stdout + result.stderr


def test_importing_the_definitions_module_reads_no_environment(monkeypatch):
    """`defs` is built when Dagster asks for it, not at import: a bad setting in the
    environment does not break `import conv_pipeline.definitions`."""
    import importlib

    import conv_pipeline.definitions as definitions

    monkeypatch.setenv("CONV_PIPELINE_SOURCE", "no-such-source")
    importlib.reload(definitions)
    try:
        definitions.defs()
    except ValueError as exc:
        assert "no-such-source" in str(exc)
    else:
        raise AssertionError("defs() should have read the bad setting")

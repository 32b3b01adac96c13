"""Package layout: imports point one way, core (edge_sdk data, models, bundle, kernels, runtime)
<- converters (source folder converters/, installed as edge_sdk.converters) <- command line (edge_sdk.cli, edge_sdk.commands, edge_sdk.demo),
and the converters install under a name no other package owns."""

import ast
import json
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONVERTERS = ("converters", "edge_sdk.converters")
CLI = ("edge_sdk.cli", "edge_sdk.commands", "edge_sdk.demo")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_cli(name: str) -> bool:
    return any(name == c or name.startswith(c + ".") for c in CLI)


def core_modules() -> list[Path]:
    # edge_sdk/converters is the converters' symlink (checked on its own below), not core
    return sorted(p for p in (ROOT / "edge_sdk").rglob("*.py")
                  if not _is_cli(_module_name(p)) and not _module_name(p).startswith("edge_sdk.converters"))


def imported_names(path: Path, relative: bool = True) -> set[str]:
    """Every module an import statement of ``path`` names (relative imports resolved), wherever the
    statement is (inside functions too: a lazy import is still a dependency)."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level and not relative:
                continue
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            out.add(base)
            out.update(f"{base}.{a.name}" for a in node.names)
    return out


def _hits(names: set[str], forbidden: tuple[str, ...]) -> list[str]:
    return sorted(n for n in names if any(n == f or n.startswith(f + ".") for f in forbidden))


def test_imported_names_sees_lazy_and_relative_imports(tmp_path):
    # the static check below is only as good as this parser: it must see a converter import
    # hidden in a function and a relative import climbing out of the package
    probe = ROOT / "edge_sdk" / "kernels" / "_probe_for_test.py"
    probe.write_text("def f():\n    from edge_sdk.converters import export_bundle\nfrom ..commands import x\n")
    try:
        names = imported_names(probe)
    finally:
        probe.unlink()
    assert _hits(names, CONVERTERS) == ["edge_sdk.converters", "edge_sdk.converters.export_bundle"]
    assert _hits(names, CLI) == ["edge_sdk.commands", "edge_sdk.commands.x"]


def test_core_never_imports_converters_or_cli():
    bad = {str(p.relative_to(ROOT)): _hits(imported_names(p), CONVERTERS + CLI) for p in core_modules()}
    assert len(bad) > 40  # the walk found the core package
    assert {k: v for k, v in bad.items() if v} == {}


def test_converters_never_import_cli():
    files = sorted((ROOT / "converters").glob("*.py"))
    assert files
    # the converters import each other relatively: under the installed name edge_sdk.converters an
    # absolute "import converters" would find another package (or none)
    bad = {str(p.relative_to(ROOT)): _hits(imported_names(p), CLI) + _hits(imported_names(p, relative=False), CONVERTERS)
           for p in files}
    assert {k: v for k, v in bad.items() if v} == {}


def test_core_imports_with_converters_and_cli_blocked():
    # A fresh interpreter where importing the converters or the command line raises: every core
    # module must still import (a lazy import inside a function is covered by the static check).
    modules = [_module_name(p) for p in core_modules()]
    code = textwrap.dedent(f"""
        import importlib, json, sys
        BLOCKED = {CONVERTERS + CLI!r}
        hits = []
        class Block:
            def find_spec(self, name, path=None, target=None):
                if any(name == b or name.startswith(b + ".") for b in BLOCKED):
                    hits.append(name)
                    raise ImportError("blocked by the layout test: " + name)
                return None
        sys.meta_path.insert(0, Block())
        failed = {{}}
        for m in {modules!r}:
            try:
                importlib.import_module(m)
            except ImportError as exc:
                failed[m] = [type(exc).__name__, str(exc), getattr(exc, "name", None)]
        print(json.dumps({{"hits": hits, "failed": failed}}))
    """)
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["hits"] == []
    # only a missing optional third-party package may stop a core module from importing
    assert {m: e for m, e in out["failed"].items() if e[0] != "ModuleNotFoundError" or (e[2] or "").startswith("edge_sdk")} == {}


def test_wheel_installs_converters_under_their_own_name():
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["scikit-build"]["wheel"]["packages"]
    assert cfg == {"edge_sdk": "edge_sdk", "edge_sdk/converters": "converters"}
    # the source tree imports the installed name too
    link = ROOT / "edge_sdk" / "converters"
    assert link.is_symlink() and link.resolve() == (ROOT / "converters").resolve()
    import edge_sdk.converters

    assert Path(edge_sdk.converters.__file__).resolve().parent == (ROOT / "converters").resolve()

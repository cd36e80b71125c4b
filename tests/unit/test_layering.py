"""The shared package stays shared: `subsidy/` imports neither the services, the workflows, the
deployment code nor the command line (the layout rule of README "Layout"). Checked on the syntax
tree of every module, so an import inside a function counts too."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = ("services", "workflows", "deploy", "cli")


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "__import__" and node.args:
            if isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
                names.add(node.args[0].value)
    return names


def test_the_shared_package_imports_no_service_workflow_deploy_or_cli_module() -> None:
    offenders = {
        f"{path.relative_to(ROOT)}: {name}"
        for path in sorted((ROOT / "subsidy").rglob("*.py"))
        for name in imported_modules(path)
        if name.split(".")[0] in FORBIDDEN
    }
    assert offenders == set()


def test_the_check_sees_imports_inside_functions(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text("def f():\n    from services.intake import repository\n    import workflows.worker\n")
    assert imported_modules(probe) == {"services.intake", "workflows.worker"}


def test_the_embedded_stack_does_not_import_the_services() -> None:
    for path in sorted((ROOT / "deploy").rglob("*.py")):
        assert not {n for n in imported_modules(path) if n.split(".")[0] in ("services", "workflows")}, path

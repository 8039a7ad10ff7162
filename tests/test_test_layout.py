"""The test suite's own layout (issue 17 part 5): tests mirror the code, helpers are modules, fixtures live in
conftest.py files.

- No module imports a test module (`tests.<dir>.test_*`): a helper two test files need is a module in
  tests/support/ (or a helper module of its directory), not a test file's private function.
- No module imports a conftest.py: pytest finds the fixtures (tests/conftest.py for those used across
  directories, a directory's conftest.py for its own), and helpers are imported from tests/support/.
Checked by parsing every tests/**/*.py and bench/**/*.py with ast, so an import inside a function counts.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _python_files() -> list[Path]:
    return sorted(p for folder in ("tests", "bench") for p in (ROOT / folder).rglob("*.py"))


def _imported_modules(path: Path) -> Iterator[tuple[int, str]]:
    """(line, dotted module) of every import in the file, `from x import y` also as x.y (y may be a module)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module
            for alias in node.names:
                yield node.lineno, f"{node.module}.{alias.name}"


def _offences(rule: str) -> list[str]:
    found = []
    for path in _python_files():
        for line, module in _imported_modules(path):
            parts = module.split(".")
            if parts[0] != "tests" or len(parts) < 2:
                continue
            leaf_is_test = any(part.startswith("test_") for part in parts[1:])
            if (rule == "test module" and leaf_is_test) or (rule == "conftest" and "conftest" in parts[1:]):
                found.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    return sorted(set(found))


def test_no_module_imports_a_test_module() -> None:
    assert _offences("test module") == [], "move the helper to tests/support/<topic>.py"


def test_no_module_imports_a_conftest() -> None:
    assert _offences("conftest") == [], (
        "fixtures: let pytest find them (tests/conftest.py when used across directories); helpers: tests/support/"
    )


def test_the_check_sees_what_it_forbids(tmp_path: Path) -> None:
    """The parser finds both kinds of import, at module level and inside a function."""
    sample = tmp_path / "sample.py"
    sample.write_text(
        "from tests.ledger.test_retention import manage\n"
        "import tests.browser.test_ops_console\n"
        "def f():\n"
        "    from tests.ops.conftest import make_user\n"
        "from tests import conftest\n"
    )
    modules = [module for _, module in _imported_modules(sample)]
    assert "tests.ledger.test_retention" in modules
    assert "tests.browser.test_ops_console" in modules
    assert "tests.ops.conftest" in modules
    assert "tests.conftest" in modules

"""The store reaches stablepay through its public surface alone, and stablepay never reaches the store.

Read from the source with `ast` (every import statement, at any depth, also inside functions), so a lazy
import cannot slip past: shop/ imports from stablepay only `stablepay.interface`, except its demo command,
which may also use `stablepay.dev` (the local chain and demo helpers); nothing in stablepay/ imports shop.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEMO_COMMAND = REPO / "shop/management/commands/demo.py"


def imported_modules(path: Path) -> Iterator[tuple[int, str]]:
    """(line, dotted module) for every import in the file; `from a import b` yields a.b too, since b may be
    a module (`from stablepay import ledger`)."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            for alias in node.names:
                yield node.lineno, f"{node.module}.{alias.name}"


def is_within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def allowed_for_shop(path: Path, module: str) -> bool:
    if not is_within(module, "stablepay"):
        return True
    allowed = ["stablepay.interface"] + (["stablepay.dev"] if path == DEMO_COMMAND else [])
    return any(is_within(module, prefix) for prefix in allowed)


def python_files(package: str) -> list[Path]:
    files = sorted((REPO / package).rglob("*.py"))
    assert files, f"no Python files under {package}/"
    return files


def test_shop_imports_only_the_public_surface() -> None:
    offenders = [
        f"{path.relative_to(REPO)}:{line}: {module}"
        for path in python_files("shop")
        for line, module in imported_modules(path)
        if not allowed_for_shop(path, module)
    ]
    assert not offenders, "shop/ may import only stablepay.interface (and stablepay.dev in its demo command):\n" + (
        "\n".join(offenders)
    )


def test_stablepay_never_imports_shop() -> None:
    offenders = [
        f"{path.relative_to(REPO)}:{line}: {module}"
        for path in python_files("stablepay")
        for line, module in imported_modules(path)
        if is_within(module, "shop")
    ]
    assert not offenders, "stablepay/ must not import the host project:\n" + "\n".join(offenders)


def test_the_check_catches_what_it_should() -> None:
    """The rule itself: a reach into stablepay's insides is caught, the surface and the demo's helpers pass."""
    store_module = REPO / "shop/services.py"
    assert allowed_for_shop(store_module, "stablepay.interface.payment_request_create")
    assert allowed_for_shop(store_module, "stablepay.interface")
    assert not allowed_for_shop(store_module, "stablepay.models.Merchant")
    assert not allowed_for_shop(store_module, "stablepay.ledger")  # from stablepay import ledger
    assert not allowed_for_shop(store_module, "stablepay.dev.chain")
    assert allowed_for_shop(DEMO_COMMAND, "stablepay.dev.chain")
    assert not allowed_for_shop(DEMO_COMMAND, "stablepay.accounts.second_factor.must_have_second_factor")
    assert allowed_for_shop(store_module, "stablepayments.anything")  # another package, not ours


def test_every_public_name_resolves() -> None:
    """Each name the surface lists is there (the model-bound ones load on first use), and its list of statuses
    is the models' own."""
    from stablepay import interface
    from stablepay.models import Status

    for name in interface.__all__:
        assert getattr(interface, name) is not None, name
    assert tuple(Status.values) == interface.STATUSES

"""The fixtures shared across the test directories, in one place (a directory's conftest.py holds only the
fixtures its own tests use; helpers are modules in tests/support/, factories in tests/factories.py).

- Real services: an anvil chain with deployed stablecoins, the registry set up through `stablepay_setup`,
  merchants "acme" and "other" with xpubs from known mnemonics, authenticated API clients
  (tests/support/local_chain.py); a random ledger's world (tests/support/random_ledgers.py).
- Ops users (the console's permissions, four-eyes), requests driven into each exception on anvil, and an
  order placed through the shop's checkout (tests/support/ops.py).
- The storefront built with the factories: a chain, HKDX, a stablepay merchant, the Hong Kong store and a
  product, and a shopper's browser.
- Other copies of stablepay's database: a second PostgreSQL database and a fresh SQLite file, each migrated by
  a `manage.py` subprocess (tests/support/ledger_copies.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.contrib.sessions.backends.db import SessionStore
from django.core.management import call_command
from django.db import connection
from django.test import Client, override_settings
from django.utils import translation
from rest_framework.test import APIClient

from shop.models import Order, Product, Storefront
from shop.services import cart_add, order_place
from stablepay.dev import chain as devchain
from stablepay.models import Chain, Merchant, PaymentRequest, Token
from tests.factories import ChainFactory, MerchantFactory, ProductFactory, StorefrontFactory, TokenFactory
from tests.support.ledger_copies import manage
from tests.support.local_chain import FUNDED, LocalChain, setup_document
from tests.support.ops import APPROVE, CONSOLE, Exceptions, make_user
from tests.support.random_ledgers import World, make_world
from tests.support.services import Anvil

SHOP_HKDX_ADDRESS = "0x5FbDB2315678afecb367f032d93F642f64180aa3"  # the first contract anvil deploys


def pytest_configure(config: pytest.Config) -> None:
    """Pages render in tests without `collectstatic`: plain static storage here, as Django advises for tests
    (the manifest storage of shop/settings.py needs collectstatic's staticfiles.json, and the live server's
    static handler serves unhashed names). Subprocesses keep the production setting: the gunicorn tests that
    render pages collect first (tests/security/conftest.py's `collected_static`), and
    tests/security/test_production_stack.py serves the hashed, compressed files as production does."""
    plain = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}
    # No STATIC_ROOT either: nothing is collected here, and WhiteNoise then does not warn about the folder.
    override_settings(STORAGES={**settings.STORAGES, "staticfiles": plain}, STATIC_ROOT=None).enable()


@pytest.fixture(autouse=True)
def _default_language() -> Iterator[None]:
    """A request in zh-Hant leaves its language active on the thread: each test starts from the default."""
    translation.deactivate()
    yield
    translation.deactivate()


@pytest.fixture
def anvil() -> Iterator[Anvil]:
    with Anvil() as node:
        yield node


@pytest.fixture
def local_chain(anvil: Anvil, tmp_path: Path, db: None) -> LocalChain:
    w3 = anvil.w3
    tokens = {
        "HKDX": devchain.deploy_token(w3, name="HKD Stablecoin", symbol="HKDX", decimals=6),
        "USDC": devchain.deploy_token(w3, name="USD Coin", symbol="USDC", decimals=6),
    }
    fake = devchain.deploy_token(w3, name="HKD Stablecoin", symbol="HKDX", decimals=6)
    for address in [*tokens.values(), fake]:
        for payer in (1, 2, 3):
            devchain.mint(w3, address, devchain.dev_account(payer).address, FUNDED)
    document = setup_document(anvil.url, tokens)
    path = tmp_path / "setup.json"
    path.write_text(json.dumps(document))
    call_command("stablepay_setup", str(path))
    keys = {m["slug"]: m["api_key"] for m in document["merchants"]}
    return LocalChain(anvil=anvil, tokens=tokens, fake_hkdx=fake, api_keys=keys)


@pytest.fixture
def merchant(local_chain: LocalChain) -> Merchant:
    return Merchant.objects.get(slug="acme")


@pytest.fixture
def api(local_chain: LocalChain) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {local_chain.api_keys['acme']}")
    return client


@pytest.fixture
def other_api(local_chain: LocalChain) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {local_chain.api_keys['other']}")
    return client


@pytest.fixture
def world(db: None) -> World:
    """Three chains, five tokens, three merchants; no requests yet (see tests/support/random_ledgers.py)."""
    return make_world()


# ops users and exceptions -------------------------------------------------------------------------------
@pytest.fixture
def ops_user(db: None) -> User:
    """Olivia: ops, may approve other people's refunds."""
    return make_user("olivia", CONSOLE, APPROVE)


@pytest.fixture
def ops_user2(db: None) -> User:
    """Oscar: a second ops user with approval rights (the second pair of eyes)."""
    return make_user("oscar", CONSOLE, APPROVE)


@pytest.fixture
def ops_no_approve(db: None) -> User:
    """Nina: works the queue, may not approve refunds."""
    return make_user("nina", CONSOLE)


@pytest.fixture
def plain_user(db: None) -> User:
    return make_user("pat")


@pytest.fixture
def merchant_member(merchant: Merchant) -> User:
    return make_user("mia", merchant=merchant)


@pytest.fixture
def four_eyes_at_5_hkd(settings: Any) -> None:
    settings.STABLEPAY = {**settings.STABLEPAY, "FOUR_EYES_REFUND_ABOVE_HKD": "5.00"}


@pytest.fixture
def exceptions(local_chain: LocalChain, merchant: Merchant) -> Exceptions:
    return Exceptions(local_chain, merchant)


@pytest.fixture
def shop_order(local_chain: LocalChain) -> Callable[..., tuple[Order, PaymentRequest]]:
    """Place an order through the shop's own checkout services (the signal then follows its payment)."""
    call_command("shop_seed", merchant="acme", verbosity=0)

    def place(store: str = "hk", quantity: int = 1) -> tuple[Order, PaymentRequest]:
        storefront = Storefront.objects.get(code=store)
        session = SessionStore()
        session.create()
        product = storefront.products.filter(active=True).order_by("position", "sku").first()
        assert product is not None
        cart_add(session=session, storefront=storefront, product_id=product.pk, quantity=quantity)
        return order_place(session=session, storefront=storefront, chain_id=31337, token_symbol="HKDX")

    return place


# the storefront ---------------------------------------------------------------------------------------
@pytest.fixture
def shop_chain(db: None) -> Chain:
    return ChainFactory(chain_id=31337, name="Local", rpc_urls=["http://127.0.0.1:8545"])


@pytest.fixture
def hkdx(shop_chain: Chain) -> Token:
    return TokenFactory(chain=shop_chain, address=SHOP_HKDX_ADDRESS, symbol="HKDX")


@pytest.fixture
def shop_merchant(db: None) -> Merchant:
    return MerchantFactory(slug="shop-test", name="Shop test merchant", api_key="shop-test-api-key")


@pytest.fixture
def hk(shop_merchant: Merchant) -> Storefront:
    return StorefrontFactory(code="hk", merchant_slug=shop_merchant.slug)


@pytest.fixture
def egg_rolls(hk: Storefront) -> Product:
    return ProductFactory(
        storefront=hk,
        sku="T-EGGROLL",
        name="Butter egg rolls",
        name_zh="牛油雞蛋卷",
        price=Decimal("88.00"),
        image="shop/products/HK-EGGROLL.svg",
    )


@pytest.fixture
def shopper(db: None) -> Client:
    """A browser: its session holds the carts and its order history."""
    return Client()


# other copies of stablepay's database ---------------------------------------------------------------------
@pytest.fixture
def copy_database() -> Any:
    """A second, empty PostgreSQL database migrated by a subprocess: another copy of stablepay."""
    s = connection.settings_dict
    name = f"{s['NAME']}_copy"
    admin_url = f"postgresql://{s['USER'] or 'postgres'}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/postgres"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    url = admin_url.rsplit("/", 1)[0] + f"/{name}"
    migrated = manage(url, "migrate", "-v0")
    assert migrated.returncode == 0, migrated.stderr
    yield url
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A fresh SQLite database file migrated by a subprocess (the embedded/demo mode)."""
    url = f"sqlite:///{tmp_path / 'copy.sqlite3'}"
    migrated = manage(url, "migrate", "-v0")
    assert migrated.returncode == 0, migrated.stderr
    return url

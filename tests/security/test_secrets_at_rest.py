"""Secrets at rest: API keys are stored as SHA-256 only, webhook secrets Fernet-encrypted.

The plaintexts enter through every way the product takes them (the setup file, the settings page's
generate / type / rotate, the API key rotation) and must then appear nowhere in the database (every
table, read with raw SQL), in the logs, in the admin, or on a page other than the one right after
generation. The delivery path still signs with the decrypted secret (tests/webhooks/).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import Client
from django.utils import timezone

from stablepay import secret_box
from stablepay.merchant import services as merchant_services
from stablepay.models import Merchant
from stablepay.webhooks import delivery as webhooks
from tests.support.auth import login_as
from tests.support.local_chain import LocalChain, create_request, setup_document
from tests.support.merchant import login, make_user

FILE_SECRET = "whsec_from_the_setup_file_0123456789"
TYPED_SECRET = "typed-by-the-merchant-0123456789"
FILE_API_KEY = "acme-rotating-key-0123456789abcdef0123456789"


def _every_row_as_text() -> str:
    """Every row of every table, as PostgreSQL prints it: what a database dump or a stray SELECT shows."""
    chunks = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f'SELECT t::text FROM "{table}" t')
            chunks.extend(row[0] for row in cursor.fetchall())
    return "\n".join(chunks)


def _merchant_columns(slug: str) -> dict[str, Any]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM stablepay_merchant WHERE slug = %s", [slug])
        names = [c.name for c in cursor.description]
        return dict(zip(names, cursor.fetchone(), strict=True))


def _apply_setup(local_chain: LocalChain, tmp_path: Path, **merchant: Any) -> None:
    document = setup_document(local_chain.anvil.url, local_chain.tokens)
    document["merchants"][0].update(merchant)
    path = tmp_path / "secrets.json"
    path.write_text(json.dumps(document))
    call_command("stablepay_setup", str(path))


@pytest.fixture
def everything_logged(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    return caplog


def test_no_secret_is_readable_anywhere_in_the_database_or_the_logs(
    local_chain: LocalChain,
    merchant: Merchant,
    tmp_path: Path,
    everything_logged: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # 1. The setup file: an API key and a webhook secret.
    _apply_setup(
        local_chain,
        tmp_path,
        api_key=FILE_API_KEY,
        webhook_url="https://hooks.example.com/acme",
        webhook_secret=FILE_SECRET,
    )
    # 2. The settings page: a typed secret (rotating the file's one), then a generated one, then a key rotation.
    client = login(make_user("keeper", merchant))
    assert (
        client.post(
            "/merchant/settings/webhook/",
            {"webhook_url": "https://hooks.example.com/acme", "webhook_secret": TYPED_SECRET},
        ).status_code
        == 302
    )
    assert (
        client.post(
            "/merchant/settings/webhook/", {"webhook_url": "https://hooks.example.com/acme", "new_secret": "on"}
        ).status_code
        == 302
    )
    rotated = client.post("/merchant/settings/api-key/", {"confirm": "on"})
    assert rotated.status_code == 200
    merchant.refresh_from_db()
    generated, previous = merchant.webhook_secret, merchant.webhook_secret_previous
    assert generated.startswith("whsec_") and previous == TYPED_SECRET
    new_api_key = rotated.context["api_key"]
    assert new_api_key in rotated.content.decode()  # shown once, on this response

    # 3. A delivery attempt (it fails: nothing listens on that host), so the delivery path ran too.
    create_request(merchant)
    webhooks.deliver_due(now=timezone.now())

    plaintexts = {
        "setup-file webhook secret": FILE_SECRET,
        "typed webhook secret": TYPED_SECRET,
        "generated webhook secret": generated,
        "setup-file API key": FILE_API_KEY,
        "rotated API key": new_api_key,
        "fixture API key": local_chain.api_keys["acme"],
    }
    dump = _every_row_as_text()
    assert "whsec_" not in dump
    for name, plaintext in plaintexts.items():
        assert plaintext not in dump, f"{name} is readable in the database"
    logged = "\n".join(record.getMessage() for record in everything_logged.records)
    logged += capsys.readouterr().out
    assert "stablepay.merchant.services" in {r.name for r in everything_logged.records}  # the logs were captured
    for name, plaintext in plaintexts.items():
        assert plaintext not in logged, f"{name} was logged"

    # What the columns do hold: SHA-256 of the API key, Fernet tokens of the webhook secrets.
    row = _merchant_columns("acme")
    assert row["api_key_hash"] == hashlib.sha256(new_api_key.encode()).hexdigest()
    assert row["api_key_prefix"] == new_api_key[:6]
    for column, plaintext in (("webhook_secret", generated), ("webhook_secret_previous", TYPED_SECRET)):
        token = row[column]
        assert token.startswith("gAAAAA")  # Fernet's version byte, base64
        # Decrypted here with cryptography directly and the key derived from SECRET_KEY (none configured).
        key = secret_box.derive_key(django_settings.SECRET_KEY)
        assert Fernet(key).decrypt(token.encode()).decode() == plaintext
        with pytest.raises(InvalidToken):
            Fernet(secret_box.derive_key(django_settings.SECRET_KEY + "x")).decrypt(token.encode())

    # The session the settings page used holds no plaintext secret either.
    for session in Session.objects.all():
        decoded = json.dumps(SessionStore().decode(session.session_data))
        for plaintext in plaintexts.values():
            assert plaintext not in decoded


def test_the_settings_page_shows_a_generated_secret_once_and_never_a_typed_one(
    local_chain: LocalChain, merchant: Merchant
) -> None:
    client = login(make_user("viewer", merchant))
    client.post("/merchant/settings/webhook/", {"webhook_url": "https://hooks.example.com/v1", "new_secret": "on"})
    merchant.refresh_from_db()
    generated = merchant.webhook_secret
    first = client.get("/merchant/settings/")
    assert generated in first.content.decode() and 'id="webhook-secret"' in first.content.decode()
    assert "no-store" in first["Cache-Control"]
    second = client.get("/merchant/settings/").content.decode()
    assert generated not in second and 'id="webhook-secret-state"' in second
    assert generated[:10] not in second  # not even its start

    # A member of another merchant never sees it, even with the pending secret in their own session.
    client.post("/merchant/settings/webhook/", {"webhook_url": "https://hooks.example.com/v1", "new_secret": "on"})
    merchant.refresh_from_db()
    session = client.session
    assert "stablepay_new_webhook_secret" in session
    other = make_user("other-member", Merchant.objects.get(slug="other"))
    other_client = login(other)
    stolen = other_client.session
    stolen["stablepay_new_webhook_secret"] = session["stablepay_new_webhook_secret"]
    stolen.save()
    assert merchant.webhook_secret not in other_client.get("/merchant/settings/").content.decode()

    client.post("/merchant/settings/webhook/", {"webhook_url": "https://hooks.example.com/v1", "webhook_secret": ""})
    client.post(
        "/merchant/settings/webhook/",
        {"webhook_url": "https://hooks.example.com/v1", "webhook_secret": TYPED_SECRET},
    )
    assert TYPED_SECRET not in client.get("/merchant/settings/").content.decode()


def test_the_admin_never_shows_the_webhook_secrets(local_chain: LocalChain, merchant: Merchant) -> None:
    merchant_services.merchant_webhook_update(
        merchant=merchant, webhook_url="https://hooks.example.com/a", webhook_secret=FILE_SECRET, actor="t"
    )
    merchant_services.merchant_webhook_update(
        merchant=merchant, webhook_url="https://hooks.example.com/a", webhook_secret=TYPED_SECRET, actor="t"
    )
    admin = Client()
    login_as(admin, get_user_model().objects.create_superuser("root", password="x-root-password-1"))
    pages = [
        admin.get("/admin/stablepay/merchant/"),
        admin.get(f"/admin/stablepay/merchant/{merchant.pk}/change/"),
        admin.get("/admin/stablepay/webhookdelivery/"),
    ]
    for page in pages:
        assert page.status_code == 200
        html = page.content.decode()
        assert FILE_SECRET not in html and TYPED_SECRET not in html and "gAAAAA" not in html
        assert 'name="webhook_secret' not in html
    # Saving the merchant in the admin keeps both secrets as they were.
    change = pages[1].context["adminform"].form.initial
    assert "webhook_secret" not in change and "webhook_secret_previous" not in change


def test_key_rotation_with_multifernet_and_the_rotate_command(
    local_chain: LocalChain, merchant: Merchant, settings: Any
) -> None:
    first, second = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.STABLEPAY = {**settings.STABLEPAY, "SECRETS_KEYS": [first]}
    merchant_services.merchant_webhook_update(
        merchant=merchant, webhook_url="https://hooks.example.com/a", webhook_secret=FILE_SECRET, actor="t"
    )
    token = _merchant_columns("acme")["webhook_secret"]
    assert Fernet(first).decrypt(token.encode()).decode() == FILE_SECRET

    settings.STABLEPAY = {**settings.STABLEPAY, "SECRETS_KEYS": [second, first]}  # new key first
    assert Merchant.objects.get(pk=merchant.pk).webhook_secret == FILE_SECRET  # old tokens still read
    call_command("stablepay_rotate_secrets_key")
    rotated = _merchant_columns("acme")["webhook_secret"]
    assert rotated != token and Fernet(second).decrypt(rotated.encode()).decode() == FILE_SECRET

    settings.STABLEPAY = {**settings.STABLEPAY, "SECRETS_KEYS": [second]}  # the old key is dropped
    assert Merchant.objects.get(pk=merchant.pk).webhook_secret == FILE_SECRET

    settings.STABLEPAY = {**settings.STABLEPAY, "SECRETS_KEYS": [first]}  # a key that never made it
    with pytest.raises(secret_box.SecretDecryptionError, match="STABLEPAY_SECRETS_KEY"):
        Merchant.objects.get(pk=merchant.pk)


def test_the_secrets_key_comes_from_the_environment_and_a_bad_one_fails_the_checks() -> None:
    good = [Fernet.generate_key().decode(), Fernet.generate_key().decode()]
    code = "from stablepay.conf import app_settings; print(','.join(app_settings.SECRETS_KEYS))"
    env = {**os.environ, "STABLEPAY_SECRETS_KEY": ",".join(good)}
    run = [sys.executable, "manage.py", "shell", "-c", code]
    done = subprocess.run(run, cwd=django_settings.BASE_DIR, env=env, capture_output=True, text=True, check=True)
    assert done.stdout.splitlines()[-1] == ",".join(good)

    env["STABLEPAY_SECRETS_KEY"] = f"{good[0]},not-a-fernet-key"
    check = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=django_settings.BASE_DIR, env=env, capture_output=True, text=True
    )
    assert check.returncode != 0 and "stablepay.E101" in check.stderr and "key 2" in check.stderr


@pytest.mark.django_db(transaction=True)
def test_the_migration_encrypts_existing_plaintext_secrets_and_the_reverse_decrypts() -> None:
    before = [("stablepay", "0007_payment_request_leaner_indexes")]
    executor = MigrationExecutor(connection)
    after = executor.loader.graph.leaf_nodes("stablepay")  # 0008 and every later migration: the test ends at the latest
    executor.migrate(before)
    old_apps = executor.loader.project_state(before).apps
    OldMerchant = old_apps.get_model("stablepay", "Merchant")
    OldMerchant.objects.create(
        slug="legacy", name="Legacy", xpub="xpub-legacy", api_key_hash="a" * 64, webhook_secret=FILE_SECRET
    )
    OldMerchant.objects.create(slug="none", name="None", xpub="xpub-none", api_key_hash="b" * 64)
    assert _merchant_columns("legacy")["webhook_secret"] == FILE_SECRET  # plaintext, as it was before 0008

    executor = MigrationExecutor(connection)
    executor.migrate(after)
    row = _merchant_columns("legacy")
    assert row["webhook_secret"] != FILE_SECRET and FILE_SECRET not in _every_row_as_text()
    assert secret_box.decrypt(row["webhook_secret"]) == FILE_SECRET
    assert Merchant.objects.get(slug="legacy").webhook_secret == FILE_SECRET
    assert _merchant_columns("none")["webhook_secret"] == ""  # no secret stays no secret

    # Applying the data step again (e.g. a half-applied run) leaves encrypted values alone.
    from importlib import import_module

    step = import_module("stablepay.migrations.0008_webhook_secrets_encrypted")
    with connection.schema_editor() as editor:
        step.encrypt_plaintext_secrets(None, editor)
    assert secret_box.decrypt(_merchant_columns("legacy")["webhook_secret"]) == FILE_SECRET

    executor = MigrationExecutor(connection)
    executor.migrate(before)  # the reverse: plaintext again, in the old varchar(128) column
    assert _merchant_columns("legacy")["webhook_secret"] == FILE_SECRET
    executor = MigrationExecutor(connection)
    executor.migrate(after)
    assert Merchant.objects.get(slug="legacy").webhook_secret == FILE_SECRET


def test_webhook_rotation_times_are_stored_but_not_the_secret_in_clear(
    local_chain: LocalChain, merchant: Merchant
) -> None:
    now = timezone.now()
    merchant_services.merchant_webhook_update(
        merchant=merchant, webhook_url="https://hooks.example.com/a", webhook_secret=FILE_SECRET, actor="t", now=now
    )
    merchant_services.merchant_webhook_update(
        merchant=merchant, webhook_url="https://hooks.example.com/a", webhook_secret=TYPED_SECRET, actor="t", now=now
    )
    row = _merchant_columns("acme")
    assert row["webhook_secret_previous_until"] == now + timedelta(hours=24)
    assert FILE_SECRET not in str(row) and TYPED_SECRET not in str(row)

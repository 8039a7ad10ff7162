"""Webhook signing secrets: encrypted at rest (Fernet, stablepay/secret_box.py), plus the previous secret
and the end of its grace period for rotations.

The data step encrypts every plaintext secret already stored; the reverse decrypts them back (and the
previous-secret columns are dropped). Both read and write the column with raw SQL, so no model code
decrypts on the way. A value that already decrypts with the configured keys is left as it is.
"""

from typing import Any

from django.db import migrations, models

import stablepay.secret_box
from stablepay.secret_box import SecretDecryptionError, decrypt, encrypt, is_encrypted


def _rows(schema_editor: Any) -> list[tuple[int, str]]:
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT id, webhook_secret FROM stablepay_merchant WHERE webhook_secret <> ''")
        return list(cursor.fetchall())


def _write(schema_editor: Any, pk: int, value: str) -> None:
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("UPDATE stablepay_merchant SET webhook_secret = %s WHERE id = %s", [value, pk])


def encrypt_plaintext_secrets(apps: Any, schema_editor: Any) -> None:
    for pk, value in _rows(schema_editor):
        if not is_encrypted(value):
            _write(schema_editor, pk, encrypt(value))


def decrypt_secrets(apps: Any, schema_editor: Any) -> None:
    for pk, value in _rows(schema_editor):
        try:
            plaintext = decrypt(value)
        except SecretDecryptionError:
            continue  # already plaintext
        if len(plaintext) > 128:
            raise RuntimeError(f"merchant {pk}: its webhook secret is longer than the old column (128)")
        _write(schema_editor, pk, plaintext)


class Migration(migrations.Migration):
    dependencies = [
        ("stablepay", "0007_payment_request_leaner_indexes"),
    ]

    operations = [
        migrations.AddField(
            model_name="merchant",
            name="webhook_secret_previous",
            field=stablepay.secret_box.EncryptedTextField(blank=True, default=""),
        ),
        migrations.AddField(
            model_name="merchant",
            name="webhook_secret_previous_until",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AlterField(
            model_name="merchant",
            name="webhook_secret",
            field=stablepay.secret_box.EncryptedTextField(blank=True, default=""),
        ),
        migrations.RunPython(encrypt_plaintext_secrets, decrypt_secrets),
    ]

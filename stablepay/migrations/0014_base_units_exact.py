"""Token amounts become exact on SQLite (issue 16 part 5): the three base-units columns become
BaseUnitsField (stablepay/fields.py).

PostgreSQL: nothing changes in the database; the columns are numeric(78, 0) before and after.

SQLite: each decimal column becomes text of exactly 78 digits, zero-padded, with a CHECK constraint.
Rebuilding a table on SQLite copies each value as SQLite holds it, so it goes in three steps: to plain
text (an INTEGER copies as its digits; a REAL, a value that was beyond 2**63, as SQLite prints it), then
every value is rewritten padded, then to the final column with its CHECK. An amount beyond 2**63 stored
before this migration had already been cut to 15 significant digits by SQLite; it is kept as the
application read it (97087378640776700000) and named in a warning: compare such rows with the chain
(`stablepay_audit`). The rebuilt transfer table lost its triggers: they are created again exactly as
migrations 0011 and 0012 made them (and, going backwards, again after the table is rebuilt once more).
"""

import importlib
import logging
from decimal import Decimal

from django.db import migrations, models

import stablepay.fields

logger = logging.getLogger("stablepay.migrations")

_0012 = importlib.import_module("stablepay.migrations.0012_payer_screening")
_TRANSFER_TRIGGERS = [*_0012.LITE_TRANSFER, _0012.LITE_SCREENING]
LITE_TRIGGERS = [f"DROP TRIGGER IF EXISTS {s.split()[2]}" for s in _TRANSFER_TRIGGERS] + _TRANSFER_TRIGGERS

COLUMNS = (
    ("paymentrequest", "amount_due_base_units"),
    ("paymentrequest", "amount_paid_base_units"),
    ("transfer", "amount_base_units"),
)
DIGITS = stablepay.fields.DIGITS


class AlterFieldOnSQLite(migrations.AlterField):
    """An AlterField whose database work runs on SQLite only: PostgreSQL's column does not change."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):  # type: ignore[no-untyped-def]
        if schema_editor.connection.vendor == "sqlite":
            super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):  # type: ignore[no-untyped-def]
        if schema_editor.connection.vendor == "sqlite":
            super().database_backwards(app_label, schema_editor, from_state, to_state)


def _alter(to_field):  # type: ignore[no-untyped-def]
    return [
        AlterFieldOnSQLite(
            model_name=model,
            name=column,
            field=to_field(default=Decimal("0")) if column == "amount_paid_base_units" else to_field(),
        )
        for model, column in COLUMNS
    ]


def pad(apps, schema_editor):  # type: ignore[no-untyped-def]
    """Every value (plain text now) rewritten as 78 zero-padded digits."""
    if schema_editor.connection.vendor != "sqlite":
        return
    for sql in LITE_TRIGGERS[: len(_TRANSFER_TRIGGERS)]:  # gone with the rebuilt table; made sure of here
        schema_editor.execute(sql, params=None)
    zeros = "0" * DIGITS
    with schema_editor.connection.cursor() as cursor:
        for model, column in COLUMNS:
            table = f"stablepay_{model}"
            digits_only = f"{column} <> '' AND {column} NOT GLOB '*[^0-9]*'"
            cursor.execute(
                f"UPDATE {table} SET {column} = substr('{zeros}' || {column}, -{DIGITS}, {DIGITS}) "
                f"WHERE {digits_only} AND length({column}) <= {DIGITS}"
            )
            cursor.execute(f"SELECT id, {column} FROM {table} WHERE NOT ({digits_only})")
            for pk, text in cursor.fetchall():
                units = stablepay.fields.whole_units(Decimal(text))
                logger.warning(
                    "%s %s: %s was stored by SQLite as the float %s; kept as %s base units (check it on chain)",
                    table,
                    pk,
                    column,
                    text,
                    units,
                )
                cursor.execute(
                    f"UPDATE {table} SET {column} = %s WHERE id = %s", [stablepay.fields.sqlite_text(units), pk]
                )


def transfer_triggers(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "sqlite":
        for sql in LITE_TRIGGERS:
            schema_editor.execute(sql, params=None)


class Migration(migrations.Migration):
    dependencies = [("stablepay", "0013_header_chain")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="paymentrequest",
                    name="amount_due_base_units",
                    field=stablepay.fields.BaseUnitsField(),
                ),
                migrations.AlterField(
                    model_name="paymentrequest",
                    name="amount_paid_base_units",
                    field=stablepay.fields.BaseUnitsField(default=Decimal("0")),
                ),
                migrations.AlterField(
                    model_name="transfer",
                    name="amount_base_units",
                    field=stablepay.fields.BaseUnitsField(),
                ),
            ],
            database_operations=[
                # Backwards, this runs last: the transfer table was rebuilt as decimal again.
                migrations.RunPython(migrations.RunPython.noop, transfer_triggers),
                *_alter(models.TextField),
                migrations.RunPython(pad, migrations.RunPython.noop),
                *_alter(stablepay.fields.BaseUnitsField),
                migrations.RunPython(transfer_triggers, migrations.RunPython.noop),
            ],
        ),
    ]

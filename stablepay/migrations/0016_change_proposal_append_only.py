"""Change proposals (stablepay.models.ChangeProposal) become append-only in the database, as the ledger did
in migration 0011: no row is ever deleted (by anyone: they are few, and the record of who changed where
money goes is kept for good); what was proposed, by whom and when never changes; the decision (state,
decided_by, decided_at, decision_note) is written once, while the row is pending.

PostgreSQL: plpgsql functions raising SQLSTATE 23001 (restrict_violation, an IntegrityError). SQLite:
BEFORE UPDATE/DELETE triggers with RAISE(ABORT). TRUNCATE (table owner only) is not guarded.
"""

from django.db import migrations

FACTS = ("id", "merchant_id", "fx_pair", "changes", "note", "actor", "proposed_by_id", "proposed_at")
DECISION = ("state", "decided_by_id", "decided_at", "decision_note")
TABLE = "stablepay_changeproposal"
PREFIX = "stablepay change record is append-only"


def _changed(columns, distinct):  # type: ignore[no-untyped-def]
    return " OR ".join(f"NEW.{c} {distinct} OLD.{c}" for c in columns)


PG_FORWARD = [
    f"""
CREATE FUNCTION stablepay_changeproposal_no_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '{PREFIX}: change % may not be deleted', OLD.id USING ERRCODE = 'restrict_violation';
END $$""",
    f"""
CREATE FUNCTION stablepay_changeproposal_guard_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF {_changed(FACTS, "IS DISTINCT FROM")} THEN
    RAISE EXCEPTION '{PREFIX}: change % proposal (what, why, who, when) may not change', OLD.id
      USING ERRCODE = 'restrict_violation';
  END IF;
  IF ({_changed(DECISION, "IS DISTINCT FROM")}) AND OLD.state <> 'pending' THEN
    RAISE EXCEPTION '{PREFIX}: change % was already decided', OLD.id USING ERRCODE = 'restrict_violation';
  END IF;
  RETURN NEW;
END $$""",
    f"CREATE TRIGGER changeproposal_no_delete BEFORE DELETE ON {TABLE} "
    "FOR EACH ROW EXECUTE FUNCTION stablepay_changeproposal_no_delete()",
    f"CREATE TRIGGER changeproposal_guard_update BEFORE UPDATE ON {TABLE} "
    "FOR EACH ROW EXECUTE FUNCTION stablepay_changeproposal_guard_update()",
]
PG_BACKWARD = [
    f"DROP TRIGGER IF EXISTS changeproposal_no_delete ON {TABLE}",
    f"DROP TRIGGER IF EXISTS changeproposal_guard_update ON {TABLE}",
    "DROP FUNCTION IF EXISTS stablepay_changeproposal_no_delete()",
    "DROP FUNCTION IF EXISTS stablepay_changeproposal_guard_update()",
]


def _abort(message):  # type: ignore[no-untyped-def]
    return f"SELECT RAISE(ABORT, '{PREFIX}: {message}');"


LITE_FORWARD = [
    f"CREATE TRIGGER changeproposal_no_delete BEFORE DELETE ON {TABLE} "
    f"BEGIN {_abort('a change may not be deleted')} END",
    f"CREATE TRIGGER changeproposal_guard_facts BEFORE UPDATE ON {TABLE} WHEN {_changed(FACTS, 'IS NOT')} "
    f"BEGIN {_abort('a proposal (what, why, who, when) may not change')} END",
    f"CREATE TRIGGER changeproposal_guard_decision BEFORE UPDATE ON {TABLE} "
    f"WHEN ({_changed(DECISION, 'IS NOT')}) AND OLD.state <> 'pending' "
    f"BEGIN {_abort('the change was already decided')} END",
]
LITE_BACKWARD = [f"DROP TRIGGER IF EXISTS {sql.split()[2]}" for sql in LITE_FORWARD]


def forward(apps, schema_editor):  # type: ignore[no-untyped-def]
    for sql in PG_FORWARD if schema_editor.connection.vendor == "postgresql" else LITE_FORWARD:
        schema_editor.execute(sql, params=None)


def backward(apps, schema_editor):  # type: ignore[no-untyped-def]
    for sql in PG_BACKWARD if schema_editor.connection.vendor == "postgresql" else LITE_BACKWARD:
        schema_editor.execute(sql, params=None)


class Migration(migrations.Migration):
    dependencies = [("stablepay", "0015_change_control")]

    operations = [migrations.RunPython(forward, backward)]

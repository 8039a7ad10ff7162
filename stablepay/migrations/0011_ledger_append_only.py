"""Ledger rows (transfers, timeline events, ops actions) become append-only in the database itself.

Triggers refuse every DELETE, and every UPDATE of a recorded fact, whoever issues it (ORM, queryset
.update(), raw SQL, admin). The lifecycle columns the services move are allowed to move, as the model
docstrings list them. The one way to delete is the retention purge (stablepay_purge_ledger): inside
its transaction it writes the cutoff into stablepay_ledger_purge_gate, and the triggers then let
through the deletion of rows older than that cutoff only; the gate row is removed before commit (and
rolls back with the transaction anyway). PostgreSQL: one plpgsql function per rule, raising SQLSTATE
23001 (restrict_violation, an IntegrityError). SQLite: BEFORE UPDATE/DELETE triggers with RAISE(ABORT).
TRUNCATE (table owner only) is not guarded: it is a DBA operation, and the test runner's flush.
"""

from django.db import migrations

GATE = "stablepay_ledger_purge_gate"

# (table, column whose age decides retention)
LEDGER = (
    ("stablepay_transfer", "block_timestamp"),
    ("stablepay_event", "at"),
    ("stablepay_opsaction", "requested_at"),
)

# Transfer: never change identity; the observation (block, parties, amount, token, request) may change
# only when the watcher re-records the same log mined again (the row was orphaned or its block hash changes).
TRANSFER_IDENTITY = ("id", "chain_id", "tx_hash", "log_index", "created_at")
TRANSFER_OBSERVATION = (
    "token_id",
    "payment_request_id",
    "block_number",
    "block_hash",
    "block_timestamp",
    "from_address",
    "to_address",
    "amount_base_units",
)
# OpsAction: what was asked, by whom and when, never changes; the decision is written once, while pending;
# the refund's transaction hash is written once.
OPS_FACTS = ("id", "payment_request_id", "action", "note", "exception", "refund_address", "requested_by_id", "requested_at")
OPS_DECISION = ("state", "decided_by_id", "decided_at", "decision_note")
EVENT_COLUMNS = ("id", "payment_request_id", "at", "status", "exception", "note", "actor")


def _changed(columns: tuple[str, ...], distinct: str) -> str:
    return " OR ".join(f"NEW.{c} {distinct} OLD.{c}" for c in columns)


def _pg(columns: tuple[str, ...]) -> str:
    return _changed(columns, "IS DISTINCT FROM")


def _lite(columns: tuple[str, ...]) -> str:
    return _changed(columns, "IS NOT")


PG_FORWARD = [
    f"CREATE TABLE {GATE} (cutoff timestamp with time zone NOT NULL)",
    f"""
CREATE FUNCTION stablepay_ledger_no_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM {GATE} g WHERE (to_jsonb(OLD) ->> TG_ARGV[0])::timestamptz < g.cutoff) THEN
    RETURN OLD;
  END IF;
  RAISE EXCEPTION 'stablepay ledger is append-only: % row % may not be deleted (only stablepay_purge_ledger deletes, past the retention period)', TG_TABLE_NAME, OLD.id
    USING ERRCODE = 'restrict_violation';
END $$""",
    f"""
CREATE FUNCTION stablepay_transfer_guard_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF {_pg(TRANSFER_IDENTITY)} THEN
    RAISE EXCEPTION 'stablepay ledger is append-only: transfer % identity (chain, tx_hash, log_index, created_at) may not change', OLD.id
      USING ERRCODE = 'restrict_violation';
  END IF;
  IF ({_pg(TRANSFER_OBSERVATION)}) AND NOT (OLD.state = 'orphaned' OR NEW.block_hash <> OLD.block_hash) THEN
    RAISE EXCEPTION 'stablepay ledger is append-only: transfer % facts may change only when the log is re-mined after a reorg', OLD.id
      USING ERRCODE = 'restrict_violation';
  END IF;
  IF OLD.reviewed AND NOT NEW.reviewed THEN
    RAISE EXCEPTION 'stablepay ledger is append-only: transfer % stays reviewed once covered by an ops resolution', OLD.id
      USING ERRCODE = 'restrict_violation';
  END IF;
  RETURN NEW;
END $$""",
    f"""
CREATE FUNCTION stablepay_event_guard_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF {_pg(EVENT_COLUMNS)} THEN
    RAISE EXCEPTION 'stablepay ledger is append-only: event % may not be updated', OLD.id
      USING ERRCODE = 'restrict_violation';
  END IF;
  RETURN NEW;
END $$""",
    f"""
CREATE FUNCTION stablepay_opsaction_guard_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF {_pg(OPS_FACTS)} THEN
    RAISE EXCEPTION 'stablepay ledger is append-only: ops action % request (who, what, amounts, when) may not change', OLD.id
      USING ERRCODE = 'restrict_violation';
  END IF;
  IF ({_pg(OPS_DECISION)}) AND OLD.state <> 'pending_approval' THEN
    RAISE EXCEPTION 'stablepay ledger is append-only: ops action % was already decided', OLD.id
      USING ERRCODE = 'restrict_violation';
  END IF;
  IF NEW.refund_tx_hash IS DISTINCT FROM OLD.refund_tx_hash AND OLD.refund_tx_hash <> '' THEN
    RAISE EXCEPTION 'stablepay ledger is append-only: ops action % refund transaction is already recorded', OLD.id
      USING ERRCODE = 'restrict_violation';
  END IF;
  RETURN NEW;
END $$""",
]
for _table, _column in LEDGER:
    _name = _table.removeprefix("stablepay_")
    PG_FORWARD += [
        f"CREATE TRIGGER {_name}_no_delete BEFORE DELETE ON {_table} "
        f"FOR EACH ROW EXECUTE FUNCTION stablepay_ledger_no_delete('{_column}')",
        f"CREATE TRIGGER {_name}_guard_update BEFORE UPDATE ON {_table} "
        f"FOR EACH ROW EXECUTE FUNCTION stablepay_{_name}_guard_update()",
    ]
PG_BACKWARD = [f"DROP TRIGGER IF EXISTS {t.removeprefix('stablepay_')}_{k} ON {t}" for t, _ in LEDGER for k in ("no_delete", "guard_update")] + [
    "DROP FUNCTION IF EXISTS stablepay_ledger_no_delete()",
    "DROP FUNCTION IF EXISTS stablepay_transfer_guard_update()",
    "DROP FUNCTION IF EXISTS stablepay_event_guard_update()",
    "DROP FUNCTION IF EXISTS stablepay_opsaction_guard_update()",
    f"DROP TABLE IF EXISTS {GATE}",
]


def _abort(message: str) -> str:
    return f"SELECT RAISE(ABORT, 'stablepay ledger is append-only: {message}');"


LITE_FORWARD = [f"CREATE TABLE {GATE} (cutoff datetime NOT NULL)"]
for _table, _column in LEDGER:
    _name = _table.removeprefix("stablepay_")
    LITE_FORWARD.append(
        f"CREATE TRIGGER {_name}_no_delete BEFORE DELETE ON {_table} "
        f"WHEN NOT EXISTS (SELECT 1 FROM {GATE} g WHERE OLD.{_column} < g.cutoff) "
        f"BEGIN {_abort(_name + ' rows may not be deleted (only stablepay_purge_ledger deletes, past the retention period)')} END"
    )
LITE_FORWARD += [
    f"CREATE TRIGGER transfer_guard_identity BEFORE UPDATE ON stablepay_transfer WHEN {_lite(TRANSFER_IDENTITY)} "
    f"BEGIN {_abort('transfer identity (chain, tx_hash, log_index, created_at) may not change')} END",
    f"CREATE TRIGGER transfer_guard_update BEFORE UPDATE ON stablepay_transfer "
    f"WHEN ({_lite(TRANSFER_OBSERVATION)}) AND NOT (OLD.state = 'orphaned' OR NEW.block_hash <> OLD.block_hash) "
    f"BEGIN {_abort('transfer facts may change only when the log is re-mined after a reorg')} END",
    "CREATE TRIGGER transfer_guard_reviewed BEFORE UPDATE ON stablepay_transfer WHEN OLD.reviewed AND NOT NEW.reviewed "
    f"BEGIN {_abort('a transfer stays reviewed once covered by an ops resolution')} END",
    f"CREATE TRIGGER event_guard_update BEFORE UPDATE ON stablepay_event WHEN {_lite(EVENT_COLUMNS)} "
    f"BEGIN {_abort('an event may not be updated')} END",
    f"CREATE TRIGGER opsaction_guard_facts BEFORE UPDATE ON stablepay_opsaction WHEN {_lite(OPS_FACTS)} "
    f"BEGIN {_abort('an ops action request (who, what, amounts, when) may not change')} END",
    f"CREATE TRIGGER opsaction_guard_decision BEFORE UPDATE ON stablepay_opsaction "
    f"WHEN ({_lite(OPS_DECISION)}) AND OLD.state <> 'pending_approval' "
    f"BEGIN {_abort('the ops action was already decided')} END",
    "CREATE TRIGGER opsaction_guard_refund_tx BEFORE UPDATE ON stablepay_opsaction "
    "WHEN NEW.refund_tx_hash IS NOT OLD.refund_tx_hash AND OLD.refund_tx_hash <> '' "
    f"BEGIN {_abort('the refund transaction is already recorded')} END",
]
LITE_TRIGGERS = [s.split()[2] for s in LITE_FORWARD[1:]]
LITE_BACKWARD = [f"DROP TRIGGER IF EXISTS {name}" for name in LITE_TRIGGERS] + [f"DROP TABLE IF EXISTS {GATE}"]


def forward(apps, schema_editor):  # type: ignore[no-untyped-def]
    statements = PG_FORWARD if schema_editor.connection.vendor == "postgresql" else LITE_FORWARD
    for sql in statements:
        schema_editor.execute(sql, params=None)


def backward(apps, schema_editor):  # type: ignore[no-untyped-def]
    statements = PG_BACKWARD if schema_editor.connection.vendor == "postgresql" else LITE_BACKWARD
    for sql in statements:
        schema_editor.execute(sql, params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("stablepay", "0010_token_registry"),
    ]

    operations = [migrations.RunPython(forward, backward)]

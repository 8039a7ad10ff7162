"""Issue 16 part 3: four eyes on where money goes.

- ChangeProposal (stablepay/governance/change_control.py) with the `approve_change` permission; its append-only
  triggers are migration 0016.
- Merchant.refund_four_eyes_above_hkd / accept_four_eyes_above_hkd: per-merchant limits (NULL: the
  deployment's STABLEPAY setting).
- PaymentRequest.fx_rates: the FX table a request was quoted with, so ops decisions value it at that
  table and never the live one. Backfill: the requests that exist have no record of the table they were
  quoted with; they get the table as it is when this migration runs (the built-in defaults overridden by
  the FxRate rows, as stablepay.registry.refdata.load_fx_rates reads it). That is the best record there is, and from
  here on changing the table needs four eyes, so it cannot be bent for a moment to value an old request.
- WebhookDelivery.payment_request becomes nullable: `merchant.change_*` events concern no request.
"""

import django.db.models.deletion
from django.conf import settings
from decimal import Decimal

from django.db import migrations, models


# A frozen copy of stablepay.money.DEFAULT_FX and rates_as_json at the time of this migration.
DEFAULT_FX = {("HKD", "MOP"): Decimal("1.03"), ("USD", "HKD"): Decimal("7.80")}


def _text(value):
    text = format(Decimal(value), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def backfill_fx_rates(apps, schema_editor):
    FxRate = apps.get_model("stablepay", "FxRate")
    PaymentRequest = apps.get_model("stablepay", "PaymentRequest")
    rates = dict(DEFAULT_FX)
    for base, quote, rate in FxRate.objects.values_list("base", "quote", "rate"):
        rates.pop((quote, base), None)
        rates[(base, quote)] = rate
    table = {f"{base}/{quote}": _text(rate) for (base, quote), rate in sorted(rates.items())}
    PaymentRequest.objects.filter(fx_rates__isnull=True).update(fx_rates=table)


class Migration(migrations.Migration):

    dependencies = [
        ('stablepay', '0014_base_units_exact'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='ChangeProposal',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('fx_pair', models.CharField(blank=True, default='', help_text='An FX change: "BASE/QUOTE".', max_length=7)),
                ('changes', models.JSONField()),
                ('note', models.TextField()),
                ('actor', models.CharField(help_text='Who proposed it: "ops:<user>", "setup", "merchant:<user>".', max_length=150)),
                ('proposed_at', models.DateTimeField()),
                ('state', models.CharField(choices=[('pending', 'Pending'), ('applied', 'Applied'), ('rejected', 'Rejected')], max_length=16)),
                ('decided_at', models.DateTimeField(blank=True, null=True)),
                ('decision_note', models.TextField(blank=True, default='')),
            ],
            options={
                'ordering': ['-proposed_at', '-id'],
                'permissions': [('approve_change', "Can approve another user's change to where money goes")],
            },
        ),
        migrations.AddField(
            model_name='merchant',
            name='accept_four_eyes_above_hkd',
            field=models.DecimalField(blank=True, decimal_places=2, help_text="Accepting a shortfall worth this much (HKD) or more needs a second approver; empty: the deployment's limit.", max_digits=20, null=True),
        ),
        migrations.AddField(
            model_name='merchant',
            name='refund_four_eyes_above_hkd',
            field=models.DecimalField(blank=True, decimal_places=2, help_text="A refund worth more than this (HKD) needs a second approver; empty: the deployment's limit.", max_digits=20, null=True),
        ),
        migrations.AddField(
            model_name='paymentrequest',
            name='fx_rates',
            field=models.JSONField(blank=True, editable=False, null=True),
        ),
        migrations.AlterField(
            model_name='webhookdelivery',
            name='payment_request',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='webhooks', to='stablepay.paymentrequest'),
        ),
        migrations.AddConstraint(
            model_name='merchant',
            constraint=models.CheckConstraint(condition=models.Q(('refund_four_eyes_above_hkd__isnull', True), ('refund_four_eyes_above_hkd__gte', 0), _connector='OR'), name='merchant_refund_limit_not_negative'),
        ),
        migrations.AddConstraint(
            model_name='merchant',
            constraint=models.CheckConstraint(condition=models.Q(('accept_four_eyes_above_hkd__isnull', True), ('accept_four_eyes_above_hkd__gte', 0), _connector='OR'), name='merchant_accept_limit_not_negative'),
        ),
        migrations.AddField(
            model_name='changeproposal',
            name='decided_by',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='stablepay_decided_changes', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AddField(
            model_name='changeproposal',
            name='merchant',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='change_proposals', to='stablepay.merchant'),
        ),
        migrations.AddField(
            model_name='changeproposal',
            name='proposed_by',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='stablepay_proposed_changes', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AddConstraint(
            model_name='changeproposal',
            constraint=models.CheckConstraint(condition=models.Q(('decided_by', models.F('proposed_by')), _negated=True), name='change_four_eyes_two_people'),
        ),
        migrations.AddConstraint(
            model_name='changeproposal',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('merchant__isnull', False), ('fx_pair', '')), models.Q(('merchant__isnull', True), models.Q(('fx_pair', ''), _negated=True)), _connector='OR'), name='change_merchant_or_fx_pair'),
        ),
        migrations.AddConstraint(
            model_name='changeproposal',
            constraint=models.UniqueConstraint(condition=models.Q(('state', 'pending')), fields=('merchant',), name='change_one_pending_per_merchant'),
        ),
        migrations.AddConstraint(
            model_name='changeproposal',
            constraint=models.UniqueConstraint(condition=models.Q(('state', 'pending'), models.Q(('fx_pair', ''), _negated=True)), fields=('fx_pair',), name='change_one_pending_per_pair'),
        ),
        migrations.RunPython(backfill_fx_rates, migrations.RunPython.noop),
    ]

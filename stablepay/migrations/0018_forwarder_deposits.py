"""Issue 18: forwarder deposit addresses. Merchant.settlement_addresses ({"<chain_id>": "0x..."}, guarded by
change control); PaymentRequest.deposit_salt (the CREATE2 salt of a forwarder deposit address, "" for xpub
ones); Merchant.xpub may be empty for a merchant that takes payments through forwarders only."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("stablepay", "0017_webhook_reasons_short"),
    ]

    operations = [
        migrations.AddField(
            model_name="merchant",
            name="settlement_addresses",
            field=models.JSONField(blank=True, default=dict),
        ),
        migrations.AddField(
            model_name="paymentrequest",
            name="deposit_salt",
            field=models.CharField(blank=True, default="", max_length=66),
        ),
        migrations.AlterField(
            model_name="merchant",
            name="xpub",
            field=models.CharField(
                blank=True,
                help_text="Account-level extended public key (m/44'/60'/0'); empty: forwarder deposit addresses only.",
                max_length=128,
            ),
        ),
    ]

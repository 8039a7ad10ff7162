"""The payment page's texts for pay.js: every one translated in zh-Hant, and safe in the JSON block."""

from __future__ import annotations

import json

from django.template import Context, Template
from django.utils import translation

from stablepay.templatetags.pay_ui import PAY_TEXTS, pay_texts


def test_every_payment_page_text_has_a_zh_hant_translation() -> None:
    with translation.override("en"):
        english = pay_texts()
    with translation.override("zh-hant"):
        chinese = pay_texts()
    assert english.keys() == chinese.keys() == PAY_TEXTS.keys()
    untranslated = [key for key in english if english[key] == chinese[key]]
    assert untranslated == []
    for key in ("detail_underpaid", "detail_underpaid_expired"):  # the placeholders pay.js fills in
        assert "{paid}" in chinese[key]
    assert "{remaining}" in chinese["detail_underpaid"]


def test_the_texts_reach_the_page_as_json() -> None:
    with translation.override("en"):
        html = Template('{% load pay_ui %}{% pay_texts as texts %}{{ texts|json_script:"pay-i18n" }}').render(Context())
    body = html.split(">", 1)[1].rsplit("</script>", 1)[0]
    assert json.loads(body)["state_paid"] == "Paid. Thank you!"

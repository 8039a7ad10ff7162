"""`{{ amount|money:currency }}` (HK$1,680.00) and `{{ amount|token:symbol }}` (1,680.000000 HKDX) for the
payment page, merchant dashboard and ops console; both from stablepay.money, the one formatting rule."""

from __future__ import annotations

from django import template

from stablepay.money import format_fiat, format_token

register = template.Library()

money = register.filter("money", format_fiat)
token = register.filter("token", format_token)

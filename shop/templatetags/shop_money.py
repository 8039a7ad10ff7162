"""`{{ amount|money:currency }}`: HK$88.00, MOP$1,730.40, US$1,250.00 (stablepay's format_fiat)."""

from __future__ import annotations

from django import template

from stablepay.interface import format_fiat

register = template.Library()

money = register.filter("money", format_fiat)

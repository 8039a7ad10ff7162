"""Forms that parse the store's POSTs: cart lines and the checkout's choice of token and network."""

from __future__ import annotations

from django import forms
from django.http import QueryDict
from django.utils.translation import gettext_lazy as _

from shop.selectors import TokenOption
from shop.services import MAX_LINE_QUANTITY


class CartLineForm(forms.Form):
    product_id = forms.IntegerField(min_value=1)
    quantity = forms.IntegerField(min_value=0, max_value=MAX_LINE_QUANTITY, required=False)


class CheckoutForm(forms.Form):
    payment_option = forms.ChoiceField(
        widget=forms.RadioSelect,
        error_messages={
            "required": _("Choose a stablecoin and network to pay with."),
            "invalid_choice": _("That stablecoin is not available any more. Choose another one."),
        },
    )

    def __init__(self, data: QueryDict | None = None, *, options: list[TokenOption]) -> None:
        super().__init__(data)
        self.options = options
        field = self.fields["payment_option"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [(o.value, o.value) for o in options]
        if len(options) == 1:
            self.fields["payment_option"].initial = options[0].value

    def chosen(self) -> TokenOption:
        value = self.cleaned_data["payment_option"]
        return next(o for o in self.options if o.value == value)

"""P4's URL conf: the whole product (shop.urls) plus the framework floor at /bench/floor/.

The floor is the least a DRF endpoint costs on the same server, middleware and client: it parses the
JSON body with stablepay's API parser and renderer (stablepay/api/base.py) and answers 201 with a small
JSON object. No authentication, no database. Only the P4 benchmark mounts it.
"""

from typing import Any

from django.urls import path
from rest_framework import status
from rest_framework.permissions import AllowAny
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from shop.urls import urlpatterns as shop_urlpatterns
from stablepay.api.parsers import StrictJSONParser


class FloorApi(APIView):
    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    parser_classes = [StrictJSONParser]
    renderer_classes = [JSONRenderer]

    def post(self, request: Request) -> Response:
        data = request.data
        return Response({"ok": True, "order_reference": data.get("order_reference")}, status=status.HTTP_201_CREATED)


urlpatterns = [path("bench/floor/", FloorApi.as_view(), name="bench-floor"), *shop_urlpatterns]

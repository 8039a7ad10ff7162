"""The storefront's pages; the root urlconf includes them at "/" (namespace "shop")."""

from django.urls import path

from shop import views

app_name = "shop"

urlpatterns = [
    path("", views.home, name="home"),
    path("store/<slug:code>/", views.storefront_detail, name="storefront"),
    path("store/<slug:code>/cart/", views.cart_detail, name="cart"),
    path("store/<slug:code>/cart/add/", views.cart_add, name="cart_add"),
    path("store/<slug:code>/cart/update/", views.cart_update, name="cart_update"),
    path("store/<slug:code>/cart/remove/", views.cart_remove, name="cart_remove"),
    path("store/<slug:code>/checkout/", views.checkout, name="checkout"),
    path("orders/", views.order_list, name="order_list"),
    path("orders/<str:reference>/", views.order_detail, name="order_detail"),
    path("orders/<str:reference>/order-again/", views.order_again, name="order_again"),
]

"""The demo storefront and host project for the stablepay app."""

from shop.celery import app as celery_app

__all__ = ("celery_app",)

"""The REST API (``/api/v1/``) for mobile clients: thin DRF views over services and selectors.

Shared pieces live here (error shape, throttles, pagination, permissions, caching, auth); each
app's endpoints live in ``<app>/api.py`` with their serializers in ``<app>/serializers.py``.
"""

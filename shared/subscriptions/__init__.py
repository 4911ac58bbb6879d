"""Subscriptions (CDSE ``/odata/v1/Subscriptions``, PRIP ICD): users are told when a product matching their
``$filter`` is created, modified or deleted, pushed to their endpoint or queued for them to pull."""

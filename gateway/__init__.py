"""Sync Gateway: one GraphQL endpoint for synchronizing offline-first devices with a server.

Imports run one way: ``graphql`` (the schema and its transport) -> ``live`` (subscriptions'
delivery) -> ``sync`` (the domain) -> ``db`` and ``auth``. ``app.py``, ``transport.py`` and
``http_*.py`` are the HTTP side; ``services.py`` builds, starts and stops what a running gateway
holds and is the domain's ``Events``.
"""

__version__ = "0.1.0"

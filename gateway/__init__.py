"""Sync Gateway: one GraphQL endpoint for synchronizing offline-first devices with a server."""

__version__ = "0.1.0"

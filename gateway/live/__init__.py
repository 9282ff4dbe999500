"""Live delivery: the hub (wake-ups per project and user), the announcer (in-process, or
across replicas through the bus: PostgreSQL LISTEN/NOTIFY or NATS, coalesced on arrival), the
resumable action stream behind
``databaseActions``, the shared per-project feeds of dashboards (device status, sync status,
sync runs), and the guard that ends a subscription when its token or its access ends."""

"""Live delivery: wake-ups when actions commit (in-process, or PostgreSQL LISTEN/NOTIFY across
replicas) and the resumable action stream behind the ``databaseActions`` subscription."""

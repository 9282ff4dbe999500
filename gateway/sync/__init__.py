"""The sync domain. Each module holds one job:

- ``projects`` (projects, members, tables), ``tables`` and ``selection`` (table specs, include/
  exclude), ``grants`` (access grants);
- the log: ``writer/`` (validated, idempotent, atomic batches), ``reader`` (cursors, filters),
  ``merge``, ``cursor`` and ``horizon`` (no loss under concurrency), ``records``,
  ``validation`` and ``actions``;
- devices: ``exchange`` (what a device's write, read or stream leaves behind), ``devices``
  (registry, health), ``history`` (sync events, summary, services), ``pending`` (delivered
  progress, counts), ``cases`` (cases pending sync, case status);
- ``conflicts`` (detection in the writer) and ``conflict_review`` (listing, resolving);
- ``replication`` (whole documents per table, RxDB's pull with a checkpoint and push with the
  assumed master state, over the same log, records and writer) and ``documents`` (a record as
  a document, and what a pushed document changes);
- ``status`` (the sync status report), ``runs/`` (syncs and sync runs);
- ``events`` (what commits announce), ``keyset`` (Relay cursors), ``text`` (length checks).

Every operation that commits announces itself through ``events.Events``; access is decided in
``gateway.auth.access``; errors are ``gateway.errors`` with their public codes.
"""

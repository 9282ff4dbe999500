"""Writing to the log: SenSeeAct's write (and get-progress), atomic, validated and idempotent.

One transaction per batch. Everything is checked before anything is written: the batch is
applied whole or refused whole, with every invalid action listed by index. An action already in
the log (same project, user, table, recordId, time, order and the same content) is a duplicate
and skipped, so a batch retried after a lost response changes nothing.

A batch written with a ``deviceId`` is a run of the device's own sync: COMPLETED in the batch's
transaction, or FAILED, in a transaction of its own, when the batch is refused (see
``batch.py`` for what the counters count).

The package's modules: ``model`` (request, outcome, marks), ``checks`` (each action, then
duplicates), ``play`` (fit and conflicts against the current records), ``store`` (the log, the
records, the write progress) and ``batch`` (the transaction, retries, the run, the
announcements). Import from the package.
"""

from gateway.sync.writer.batch import (
    changes_of,
    in_write_transaction,
    write_actions,
    write_in_transaction,
)
from gateway.sync.writer.model import NO_DEVICE, WriteMark, WriteOutcome, WriteRequest
from gateway.sync.writer.store import write_progress

__all__ = [
    "NO_DEVICE",
    "WriteMark",
    "WriteOutcome",
    "WriteRequest",
    "changes_of",
    "in_write_transaction",
    "write_actions",
    "write_in_transaction",
    "write_progress",
]

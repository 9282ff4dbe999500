"""Syncs and their runs (Census's sync runs): lifecycle, timeouts, listing.

The package's modules, each with one job: ``model`` (statuses, counters, what the API answers
with), ``syncs`` (syncs and who may see them), ``lifecycle`` (the state machine, inside the
caller's transaction), ``service`` (role-checked operations and listings, announced once
committed), ``sweeper`` (timeouts, due runs, retention), ``queries`` (reads for live feeds),
``loading`` and ``paging``. Import from the package: this module names its public API.

A sync is a named exchange between a project and one device (at most one per device, created on
its first use by ``device_sync``) or one external job. Its owner is the user whose data it syncs.

A run's life::

    startSyncRun ─┬─ scheduled later ─> QUEUED ── its time comes ──┬─> WORKING
                  ├─ a run of the sync is WORKING ─> SKIPPED <─────┘ (one was WORKING then)
                  └─ otherwise ─> WORKING ─┬─ completeSyncRun ─> COMPLETED
                                           ├─ failSyncRun, cancelSyncRun, timeout ─> FAILED
                                           └─ updateSyncRun ─> WORKING (counters, step)

A QUEUED run starts when the sweeper finds its ``scheduledExecutionTime`` passed, or as soon as
an update or completion touches it after that time. Failing and canceling also apply to a
QUEUED run; a canceled run is FAILED with ``canceled`` set. COMPLETED, FAILED and SKIPPED are
final. Every transition is one conditional UPDATE (``WHERE status IN (...)``): of two
concurrent transitions only one applies, the other is a ``CONFLICT`` that changed nothing.
Starting a run locks its sync's row, so two concurrent starts cannot both be WORKING.

Role rules (decided in ``gateway/auth/access.py``): admins see and manage everything; other
users see the syncs of the users whose data they may see (a patient their own, a professional
also those of users who granted them access) and manage only their own. A sync or run you may
not see is ``NOT_FOUND``, like one that does not exist, so ids reveal nothing; one you may see
but not manage is ``FORBIDDEN``.

The ``session`` functions (``device_sync``, ``start_run``, ``record_run``, ``update_run``,
``complete_run``, ``fail_run``, ``cancel_run``) run inside the caller's write transaction
(``Database.transaction``) and check no roles; the caller announces the returned runs after
its commit (``Events.runs_changed``).

The gateway records the runs of a device's own sync itself (``gateway/sync/exchange.py``): each
write and each read is one finished run (``record_run``), a live subscription one run that works
while it streams. A device's sync is the sync of (project, owner, deviceId).
"""

from gateway.sync.runs.lifecycle import (
    cancel_run,
    complete_run,
    fail_run,
    record_run,
    start_run,
    update_run,
)
from gateway.sync.runs.model import (
    ACTIVE,
    CANCELED_CODE,
    COUNTER_NAMES,
    MAX_NAME,
    SWEEP_BATCH,
    TIMEOUT_CODE,
    Counters,
    ExchangeDirection,
    RunInfo,
    RunPage,
    SyncInfo,
    SyncRunStatus,
    TriggerReason,
    device_trigger,
)
from gateway.sync.runs.paging import DEFAULT_PER_PAGE, MAX_PER_PAGE, Pagination, SortOrder
from gateway.sync.runs.queries import active_runs, run_scope, runs_by_id, runs_changed_since
from gateway.sync.runs.service import (
    cancel_sync_run,
    complete_sync_run,
    fail_sync_run,
    get_run,
    list_project_runs,
    list_runs,
    start_sync_run,
    update_sync_run,
)
from gateway.sync.runs.sweeper import (
    RunSweeper,
    fail_timed_out_runs,
    prune_finished_runs,
    start_due_runs,
    sweep_runs,
)
from gateway.sync.runs.syncs import create_sync, device_sync, get_sync, list_syncs

__all__ = [
    "ACTIVE",
    "CANCELED_CODE",
    "COUNTER_NAMES",
    "DEFAULT_PER_PAGE",
    "MAX_NAME",
    "MAX_PER_PAGE",
    "SWEEP_BATCH",
    "TIMEOUT_CODE",
    "Counters",
    "ExchangeDirection",
    "Pagination",
    "RunInfo",
    "RunPage",
    "RunSweeper",
    "SortOrder",
    "SyncInfo",
    "SyncRunStatus",
    "TriggerReason",
    "active_runs",
    "cancel_run",
    "cancel_sync_run",
    "complete_run",
    "complete_sync_run",
    "create_sync",
    "device_sync",
    "device_trigger",
    "fail_run",
    "fail_sync_run",
    "fail_timed_out_runs",
    "get_run",
    "get_sync",
    "list_project_runs",
    "list_runs",
    "list_syncs",
    "prune_finished_runs",
    "record_run",
    "run_scope",
    "runs_by_id",
    "runs_changed_since",
    "start_due_runs",
    "start_run",
    "start_sync_run",
    "sweep_runs",
    "update_run",
    "update_sync_run",
]

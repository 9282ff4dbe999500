"""Arguments that many fields take, described once so that every field says the same."""

from __future__ import annotations

from typing import Annotated

import strawberry

ProjectCode = Annotated[str, strawberry.argument(description="The project's code.")]
WhoseData = Annotated[
    str | None, strawberry.argument(description="Whose data: a user id (omitted: yours).")
]
WhoseDevice = Annotated[
    str | None, strawberry.argument(description="Whose device: a user id (omitted: yours).")
]
WhoseDeviceAmongTheirs = Annotated[
    str | None,
    strawberry.argument(
        description="Whose device: a user id (omitted: yours). A device is known within its "
        "user's devices only."
    ),
]
DeviceId = Annotated[str, strawberry.argument(description="The device's id.")]
SyncId = Annotated[int, strawberry.argument(description="The sync's id.")]
RunId = Annotated[int, strawberry.argument(description="The run's id.")]
# A connection's page: Relay's first and after.
PageSize = Annotated[int, strawberry.argument(description="How many items at most, 1 to 500.")]
PageAfter = Annotated[
    str | None,
    strawberry.argument(
        description="Continue after this cursor (an edge's cursor or pageInfo.endCursor of the "
        "previous page)."
    ),
]

"""Arguments that many fields take, described once so that every field says the same."""

from __future__ import annotations

from typing import Annotated

import strawberry

ProjectCode = Annotated[str, strawberry.argument(description="The project's code.")]

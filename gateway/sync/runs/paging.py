"""Census's page/per_page/order pagination, as the sync-run listings use it.

``page`` starts at 1 and 0 means 1; ``perPage`` is 1 to 100 (default 25). ``lastPage`` is the
number of the last page with records, and 1 when there are none (page 1 exists, empty).
``prevPage`` is null on page 1; past the last page it points at the last page with records.
``nextPage`` is null from the last page on.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from gateway.errors import BadUserInput

DEFAULT_PER_PAGE = 25
MAX_PER_PAGE = 100


class SortOrder(StrEnum):
    ASC = "ASC"
    DESC = "DESC"


@dataclass(frozen=True, slots=True)
class Pagination:
    total_records: int
    per_page: int
    prev_page: int | None
    page: int
    next_page: int | None
    last_page: int

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.per_page


def requested_page(page: int, per_page: int) -> tuple[int, int]:
    """The page and page size asked for, checked; 0 is page 1."""
    if page < 0:
        raise BadUserInput("page cannot be negative", field="page")
    if not 1 <= per_page <= MAX_PER_PAGE:
        raise BadUserInput(f"perPage must be between 1 and {MAX_PER_PAGE}", field="perPage")
    return max(page, 1), per_page


def paginate(page: int, per_page: int, total_records: int) -> Pagination:
    """Census's pagination object for a checked ``page`` of ``total_records``."""
    last_page = max(1, -(-total_records // per_page))
    return Pagination(
        total_records=total_records,
        per_page=per_page,
        prev_page=min(page - 1, last_page) if page > 1 else None,
        page=page,
        next_page=page + 1 if page < last_page else None,
        last_page=last_page,
    )

"""The one check of a text's length against its column, with the one message for it."""

from __future__ import annotations

from gateway.errors import BadUserInput


def check_length(field: str, value: str, most: int, *, label: str = "", kind: str = "") -> str:
    """``value`` unless it is blank or longer than ``most`` characters (its column's length):
    then BAD_USER_INPUT for ``field``, "<label> must be <kind>1 to <most> characters"."""
    if not value.strip() or len(value) > most:
        raise BadUserInput(f"{label or field} must be {kind}1 to {most} characters", field=field)
    return value

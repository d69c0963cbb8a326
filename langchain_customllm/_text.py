"""Short texts for error messages: what arrived, and what a validator found wrong."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pydantic is not imported for the sake of error messages
    from pydantic import ValidationError

# A body can be a whole HTML page; a message shows only its start.
EXCERPT_CHARS = 200


def excerpt(value: Any, limit: int = EXCERPT_CHARS) -> str:
    """``value`` as text for an error message, cut to ``limit`` characters.

    Args:
        value: A string (kept as it is) or anything JSON can spell (other objects are
            spelled with ``str``).
        limit: The most characters kept; ``...`` marks a cut.

    Returns:
        The text.
    """
    text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= limit else text[:limit] + "..."


def validation_problems(exc: ValidationError, top: str) -> str:
    """Pydantic's errors as one line: ``where: what`` for each, ``;``-separated.

    Args:
        exc: The validation error.
        top: The name for an error about the value as a whole (it has no location).
    """
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or top}: {err['msg']}" for err in exc.errors()
    )

"""Short texts for error messages: what arrived, and what a validator found wrong."""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Collection, Mapping
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


def did_you_mean(value: str, known: Collection[str]) -> str:
    """`` (did you mean 'x'?)`` for a near miss among ``known``, else an empty string."""
    close = difflib.get_close_matches(value, list(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


# Credentials in a URL (scheme://user:password@host) are masked where an input is quoted.
_URL_CREDENTIALS = re.compile(r"(://)[^/@\s]*@")
# Inputs short enough to quote after the message ("(got -1)").
_QUOTED_TYPES = (int, float, str, bool, type(None))


def problems(
    exc: ValidationError,
    top: str = "",
    *,
    names: Mapping[str, str] | None = None,
    secret: Collection[str] = (),
    known: Collection[str] = (),
    kind: str = "field",
) -> list[tuple[str | None, str]]:
    """Pydantic's errors, each as (the top-level name at fault, ``where: what (got x)``).

    ``Value error, `` prefixes are dropped; an error of a whole-model check that says its
    setting (``error.setting``) is placed there; the input is quoted when it is short and
    not under a ``secret`` name; an unknown name suggests the near miss among ``known``.

    Args:
        exc: The validation error.
        top: The name for an error about the value as a whole (it has no location).
        names: Aliases to report under their field's name.
        secret: Names whose values are never quoted.
        known: The accepted names, for "did you mean".
        kind: What a name is called in "unknown <kind>".
    """
    found: list[tuple[str | None, str]] = []
    for err in exc.errors():
        loc = [str(part) for part in err["loc"]]
        cause = (err.get("ctx") or {}).get("error")
        if not loc and getattr(cause, "setting", None):
            loc = [str(cause.setting)]  # type: ignore[union-attr]
        if loc and names:
            loc[0] = names.get(loc[0], loc[0])
        name = loc[0] if loc else None
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden" and name is not None:
            message = f"unknown {kind}{did_you_mean(name, known)}"
        value = err.get("input")
        quoted = (
            name not in secret
            and err["type"] not in ("missing", "extra_forbidden")
            and isinstance(value, _QUOTED_TYPES)
            and len(repr(value)) <= 80
        )
        text = f"{'.'.join(loc) or top}: {message}" if loc or top else message
        shown = _URL_CREDENTIALS.sub(r"\1***@", repr(value)) if quoted else ""
        found.append((name, f"{text} (got {shown})" if quoted else text))
    return found


def validation_problems(exc: ValidationError, top: str, known: Collection[str] = ()) -> str:
    """Pydantic's errors as one line: ``where: what`` for each, ``;``-separated.

    Args:
        exc: The validation error.
        top: The name for an error about the value as a whole (it has no location).
        known: The accepted top-level names, for "did you mean".
    """
    return "; ".join(text for _, text in problems(exc, top, known=known))

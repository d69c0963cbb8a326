"""Matching measured facts with the server profiles, and the recommended constructor line.

`ProbeReport` gathers one probe's findings; `score_profiles` ranks `PROFILES` by agreement
with the facts, `recommend` writes the ``ChatCustomLLM(...)`` line the best match calls for.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from langchain_customllm._detect import family_of
from langchain_customllm.probe.records import Exchange, Facts, Row
from langchain_customllm.profiles import PROFILES, ServerProfile, profile_dict

# The fields of ServerProfile the probe measures (all but the name).
PROFILE_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(ServerProfile) if f.name != "name")


@dataclass(frozen=True)
class ProfileMatch:
    """How well the measured facts agree with one profile.

    Attributes:
        name: The profile's name.
        agree: Measured facts that match the profile.
        compared: Facts measured (those that could not be told are left out).
        differences: Field name to ``(profile value, measured value)``.
    """

    name: str
    agree: int
    compared: int
    differences: dict[str, tuple[Any, Any]]

    @property
    def score(self) -> float:
        """Share of measured facts that agree (0 when nothing was measured)."""
        return self.agree / self.compared if self.compared else 0.0

    def to_dict(self) -> dict[str, Any]:
        """The match as plain data."""
        return {
            "name": self.name,
            "agree": self.agree,
            "compared": self.compared,
            "score": round(self.score, 3),
            "differences": {
                k: {"profile": p, "measured": m} for k, (p, m) in self.differences.items()
            },
        }


@dataclass
class ProbeReport:
    """Everything one probe found.

    Attributes:
        base_url: The API root probed.
        model: The model name used.
        rows: The capability table.
        facts: Measured facts: `ServerProfile` field names plus extra ones.
        matches: Every profile's agreement, best first.
        server_hint: A profile name guessed from ``/models`` and headers (tie-breaker).
        api_key_env: The environment variable the key came from, if any (never the key).
        requests: Requests sent.
        duration_s: Wall time of the probe.
        chat_ok: Whether chat completions worked at all.
        notes: Caveats about this run.
    """

    base_url: str
    model: str
    rows: list[Row]
    facts: Facts
    matches: list[ProfileMatch]
    server_hint: str | None = None
    api_key_env: str | None = None
    requests: int = 0
    duration_s: float = 0.0
    chat_ok: bool = True
    notes: list[str] = field(default_factory=list)

    @property
    def best(self) -> ProfileMatch | None:
        """The best-matching profile, if any fact was measured."""
        return self.matches[0] if self.matches and self.matches[0].compared else None

    def overrides(self) -> dict[str, Any]:
        """Fields where the measured server differs from the best profile."""
        best = self.best
        if best is None:
            return {}
        return {k: measured for k, (_, measured) in best.differences.items()}

    def recommendation(self) -> str:
        """The ``ChatCustomLLM(...)`` line these facts call for."""
        return recommend(self.base_url, self.model, self.best, self.api_key_env)

    def to_dict(self) -> dict[str, Any]:
        """The report as one JSON-able object (``--json``)."""
        best = self.best
        return {
            "base_url": self.base_url,
            "model": self.model,
            "chat_ok": self.chat_ok,
            "requests": self.requests,
            "duration_s": round(self.duration_s, 2),
            "server_hint": self.server_hint,
            "rows": [row.to_dict() for row in self.rows],
            "facts": dict(self.facts),
            "profiles": [m.to_dict() for m in self.matches],
            "best_profile": best.name if best else None,
            "overrides": self.overrides(),
            "recommendation": self.recommendation(),
            "notes": list(self.notes),
        }


def guess_family(models: Exchange | None, headers: Mapping[str, str]) -> str | None:
    """Guess the server family from ``/models`` and response headers (a tie-breaker only).

    The same decision a model makes when it detects its server (`_detect.family_of`).

    Args:
        models: The ``GET /models`` exchange, if any.
        headers: Headers of a chat answer (lower-cased names).

    Returns:
        A `PROFILES` name, or None.
    """
    data = models.json() if models is not None else None
    seen = {**(models.headers if models is not None else {}), **headers}
    return family_of(data, seen)[0]


def score_profiles(
    facts: Mapping[str, Any],
    profiles: Mapping[str, ServerProfile] | None = None,
    hint: str | None = None,
) -> list[ProfileMatch]:
    """Score every profile by agreement with the measured facts, best first (pure).

    Only facts that were measured (not None) count. Ties go to the family ``hint``, then
    to the order of ``profiles``.

    Args:
        facts: Measured facts keyed by `ServerProfile` field name (others are ignored).
        profiles: The profiles to compare; `PROFILES` by default.
        hint: A profile name guessed from the server's identity.

    Returns:
        One match per profile, best first.
    """
    profiles = PROFILES if profiles is None else profiles
    matches: list[tuple[float, int, int, ProfileMatch]] = []
    for order, (name, profile) in enumerate(profiles.items()):
        values = profile_dict(profile)
        agree = compared = 0
        differences: dict[str, tuple[Any, Any]] = {}
        for key in PROFILE_FIELDS:
            measured = facts.get(key)
            if measured is None:
                continue
            compared += 1
            if values[key] == measured:
                agree += 1
            else:
                differences[key] = (values[key], measured)
        match = ProfileMatch(name, agree, compared, differences)
        matches.append((-match.score, 0 if name == hint else 1, order, match))
    matches.sort(key=lambda item: item[:3])
    return [item[3] for item in matches]


def recommend(
    base_url: str, model: str, best: ProfileMatch | None, api_key_env: str | None = None
) -> str:
    """The ``ChatCustomLLM(...)`` line for a server (pure).

    Args:
        base_url: The API root.
        model: The model name.
        best: The best-matching profile, with the facts that differ from it.
        api_key_env: The environment variable holding the key, if any.

    Returns:
        Python source for the constructor call.
    """
    args = [f"base_url={json.dumps(base_url)}", f"model={json.dumps(model)}"]
    if best is not None:
        if best.differences:
            overrides = {"base": best.name}
            overrides.update({k: m for k, (_, m) in best.differences.items()})
            args.append(f"server_profile={py_literal(overrides)}")
        elif best.name != "generic":
            args.append(f"server_profile={json.dumps(best.name)}")
    if api_key_env and api_key_env != "CUSTOMLLM_API_KEY":
        args.append(f"api_key=os.environ[{json.dumps(api_key_env)}]")
    return f"ChatCustomLLM({', '.join(args)})"


def py_literal(value: Any) -> str:
    """Python source for a JSON-like value (True/False/None spelled the Python way)."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)}: {py_literal(v)}" for k, v in value.items()) + "}"
    if value is None or isinstance(value, bool):
        return repr(value)
    return json.dumps(value)

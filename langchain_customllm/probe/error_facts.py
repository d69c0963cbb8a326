"""Judging the error answers: unknown model, malformed JSON, wrong and no key (pure)."""

from __future__ import annotations

from langchain_customllm.probe.facts import skipped_row
from langchain_customllm.probe.records import Exchange, Facts, Judged, Row, quote


def _status_text(ex: Exchange) -> str:
    return ex.summary() if not ex.ok else str(ex.status)


def _status_row(
    key: str, label: str, ex: Exchange, fitting: tuple[int, ...], evidence: str | None = None
) -> Row:
    """A row whose result is the status ``ex`` got, supported when it is one of ``fitting``."""
    supported = None if ex.status is None else ex.status in fitting
    return Row(key, label, str(ex.status or "no answer"), supported, evidence or ex.summary())


def judge_errors(
    unknown_model: Exchange,
    malformed: Exchange,
    wrong_key: Exchange | None,
    no_key: Exchange | None,
) -> Judged:
    """Judge the error statuses: unknown model, malformed JSON, wrong and missing key."""
    rows: list[Row] = []
    facts: Facts = {
        "unknown_model_status": unknown_model.status,
        "malformed_json_status": malformed.status,
    }
    if unknown_model.ok:
        data = unknown_model.json()
        echoed = data.get("model") if isinstance(data, dict) else None
        evidence = f"{unknown_model.status}, answered anyway (response model {quote(echoed)})"
        rows.append(
            Row("error_unknown_model", "error: unknown model", "ignored (200)", False, evidence)
        )
    else:
        label = "error: unknown model"
        rows.append(_status_row("error_unknown_model", label, unknown_model, (400, 404)))
    evidence = malformed.summary() if not malformed.ok else f"{malformed.status}, accepted"
    label = "error: malformed JSON body"
    rows.append(_status_row("error_malformed_json", label, malformed, (400, 422), evidence))
    if wrong_key is None:
        rows.append(
            skipped_row("error_wrong_key", "error: wrong API key", "no --api-key-env given")
        )
        facts["wrong_key_status"] = None
    else:
        facts["wrong_key_status"] = wrong_key.status
        facts["no_key_status"] = no_key.status if no_key is not None else None
        evidence = f"wrong key: {_status_text(wrong_key)}"
        if no_key is not None:
            evidence += f"; no key: {_status_text(no_key)}"
        result = str(wrong_key.status or "no answer")
        if wrong_key.ok:
            result = "accepted (200): the key is not checked"
        rows.append(
            Row(
                "error_wrong_key",
                "error: wrong API key",
                result,
                wrong_key.status in (401, 403),
                evidence,
            )
        )
    return rows, facts

"""Judging content parts and image input, partly by heuristics (pure: no I/O)."""

from __future__ import annotations

import re

from langchain_customllm.probe.facts import lost_verdict
from langchain_customllm.probe.records import Exchange, Facts, Judged, Row, quote


def _prompt_tokens(ex: Exchange) -> int | None:
    tokens = (ex.usage() or {}).get("prompt_tokens") if ex.ok else None
    return tokens if isinstance(tokens, int) else None


def judge_image(
    as_string: Exchange, text_parts: Exchange, with_image: Exchange, data_url: str
) -> Judged:
    """Judge content parts and image input (a red PNG as a data URL), partly by heuristics.

    A server can refuse the image (an error), read it, or accept it and drop it or paste it
    into the prompt as text. Reading is told apart only by the answer naming the colour,
    and pasting by how many prompt tokens the image adds compared with the data URL's
    length, so a weak vision model can look like a server that drops images: the verdict
    says "heuristic".

    Args:
        as_string: The question with ``content`` as a plain string (control).
        text_parts: The question as a one-element list of text parts (control).
        with_image: The question as text part + ``image_url`` part.
        data_url: The image sent, for its size.
    """
    rows: list[Row] = []
    facts: Facts = {}
    parts_label = "content as a list of text parts"
    base_tokens, parts_tokens = _prompt_tokens(as_string), _prompt_tokens(text_parts)
    if text_parts.status is None:
        lost_rows, lost_facts = lost_verdict(
            text_parts, "content_parts", parts_label, "content_parts"
        )
        rows += lost_rows
        facts.update(lost_facts)
    elif not text_parts.ok:
        rows.append(Row("content_parts", parts_label, "refused", False, text_parts.summary()))
        facts["content_parts"] = False
    elif base_tokens is not None and parts_tokens is not None and parts_tokens > base_tokens + 4:
        evidence = (
            f"{text_parts.status}, prompt tokens {base_tokens} as a string → {parts_tokens} as "
            "parts: the list seems pasted into the prompt as text"
        )
        rows.append(Row("content_parts", parts_label, "garbled", False, evidence))
        facts["content_parts"] = False
    else:
        counts = f", prompt tokens {base_tokens} → {parts_tokens}" if parts_tokens else ""
        rows.append(Row("content_parts", parts_label, "yes", True, f"{text_parts.status}{counts}"))
        facts["content_parts"] = True

    label = "image input (base64 PNG)"
    if with_image.status is None:
        lost_rows, lost_facts = lost_verdict(with_image, "image", label, "image_inputs")
        return rows + lost_rows, {**facts, **lost_facts, "image_verdict": None}
    if not with_image.ok:
        evidence = with_image.summary()
        if text_parts.status is not None and not text_parts.ok:
            evidence += "; text-only parts fail too: this server wants content as a string"
        facts.update(image_inputs=False, image_verdict="refused")
        rows.append(Row("image", label, f"refused ({with_image.status})", False, evidence))
        return rows, facts
    answer = with_image.content() or ""
    image_tokens = _prompt_tokens(with_image)
    growth = (
        image_tokens - parts_tokens
        if image_tokens is not None and parts_tokens is not None
        else None
    )
    evidence = f"{with_image.status}, {quote(answer, 40)}"
    if growth is not None:
        evidence += f"; prompt tokens {parts_tokens} → {image_tokens} with the image"
    if re.search(r"\bred\b", answer, re.IGNORECASE):
        facts.update(image_inputs=True, image_verdict="read")
        rows.append(Row("image", label, "accepted, seems read (says red)", True, evidence))
        return rows, facts
    if growth is not None and len(data_url) / 4 <= growth <= len(data_url) * 1.5:
        # Base64 text costs roughly 1-4 characters a token: about what was added.
        facts.update(image_inputs=False, image_verdict="as_text")
        result = "accepted silently, pasted as text? (heuristic)"
        evidence += f", the data URL has {len(data_url)} characters"
    elif growth is not None and growth > len(data_url) * 1.5:
        facts.update(image_inputs=None, image_verdict="unclear")
        result = "accepted, image tokens added, colour not named (heuristic)"
    else:
        facts.update(image_inputs=False, image_verdict="ignored")
        result = "accepted silently, no sign it was seen (heuristic)"
    rows.append(Row("image", label, result, facts["image_inputs"], evidence))
    return rows, facts

"""Unit tests for langchain_customllm._stop (stop sequences, whole and streamed)."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from langchain_customllm._stop import StopMatcher, truncate_at_stop

PROPS = settings(max_examples=200, deadline=None)


def chunk_at(text: str, points: Sequence[int]) -> list[str]:
    cuts = sorted(min(max(p, 0), len(text)) for p in points)
    bounds = [0, *cuts, len(text)]
    return [text[a:b] for a, b in pairwise(bounds)]


def stream(
    stops: Sequence[str] | None, chunks: Sequence[str], include_stop: bool = False
) -> tuple[list[str], str, StopMatcher]:
    matcher = StopMatcher(stops, include_stop=include_stop)
    outs = [matcher.push(c) for c in chunks]
    return outs, matcher.flush(), matcher


# --------------------------------------------------------------------- truncate_at_stop


@pytest.mark.parametrize("stops", [None, [], (), [""], ["", ""]])
@pytest.mark.parametrize("include_stop", [False, True])
def test_truncate_without_active_stops_returns_text(
    stops: Sequence[str] | None, include_stop: bool
) -> None:
    assert truncate_at_stop("hello\n\nHuman: x", stops, include_stop) == (
        "hello\n\nHuman: x",
        False,
    )


@pytest.mark.parametrize("include_stop", [False, True])
def test_truncate_stop_not_found(include_stop: bool) -> None:
    assert truncate_at_stop("hello world", ["STOP", "xyz"], include_stop) == (
        "hello world",
        False,
    )


@pytest.mark.parametrize(
    ("text", "stops", "expected", "expected_incl"),
    [
        ("Hello\n\nHuman: hi", ["\n\nHuman:"], "Hello", "Hello\n\nHuman:"),
        ("abc", ["abc"], "", "abc"),
        ("xSTOP", ["STOP"], "x", "xSTOP"),
        ("a STOP b STOP c", ["STOP"], "a ", "a STOP"),
        ("aaa", ["aa"], "", "aa"),
        ("xyz", ["", "z"], "xy", "xyz"),
        ("one</s>two", ("</s>",), "one", "one</s>"),
        ("line1\nline2", ["\n"], "line1", "line1\n"),
        ("héllo😀wörld", ["😀"], "héllo", "héllo😀"),
    ],
)
def test_truncate_basic(text: str, stops: Sequence[str], expected: str, expected_incl: str) -> None:
    assert truncate_at_stop(text, stops) == (expected, True)
    assert truncate_at_stop(text, stops, include_stop=False) == (expected, True)
    assert truncate_at_stop(text, stops, include_stop=True) == (expected_incl, True)


@pytest.mark.parametrize(
    ("text", "stops", "expected", "expected_incl"),
    [
        # "bc" completes at 3, "abcd" at 4: the first to complete wins even though the
        # other starts earlier.
        ("abcd", ["abcd", "bc"], "a", "abc"),
        ("abcde", ["abcde", "cd"], "ab", "abcd"),
        ("XYZ---END", ["XYZ---END", "---"], "XYZ", "XYZ---"),
        # Earliest start is irrelevant when the other ends first.
        ("hello world", ["hello world", "lo"], "hel", "hello"),
    ],
)
@pytest.mark.parametrize("reverse", [False, True])
def test_truncate_first_completed_wins(
    text: str, stops: list[str], expected: str, expected_incl: str, reverse: bool
) -> None:
    stops = stops[::-1] if reverse else stops
    assert truncate_at_stop(text, stops) == (expected, True)
    assert truncate_at_stop(text, stops, include_stop=True) == (expected_incl, True)


@pytest.mark.parametrize(
    ("text", "stops", "expected", "expected_incl"),
    [
        # Both end at 4: the earliest start (the longest) wins.
        ("xabc", ["bc", "abc"], "x", "xabc"),
        ("xabc", ["c", "bc", "abc"], "x", "xabc"),
        ("User: hi", ["r:", "User:", "er:"], "", "User:"),
    ],
)
@pytest.mark.parametrize("reverse", [False, True])
def test_truncate_tie_at_same_end_earliest_start_wins(
    text: str, stops: list[str], expected: str, expected_incl: str, reverse: bool
) -> None:
    stops = stops[::-1] if reverse else stops
    assert truncate_at_stop(text, stops) == (expected, True)
    assert truncate_at_stop(text, stops, include_stop=True) == (expected_incl, True)


def reference_truncate(text: str, stops: Sequence[str], include_stop: bool) -> tuple[str, bool]:
    """Brute force: scan end positions left to right; at the first end where some stop
    completes, take the longest stop ending there."""
    active = [s for s in stops if s]
    for end in range(1, len(text) + 1):
        ending_here = [s for s in active if text[:end].endswith(s)]
        if ending_here:
            longest = max(ending_here, key=len)
            return (text[:end] if include_stop else text[: end - len(longest)]), True
    return text, False


ALPHABET = "abc\n"
TEXTS = st.text(alphabet=ALPHABET, max_size=40)
STOPS = st.lists(st.text(alphabet=ALPHABET, min_size=1, max_size=4), max_size=3)
STOPS_WITH_EMPTY = st.lists(st.text(alphabet=ALPHABET, max_size=4), max_size=4)


@PROPS
@given(text=TEXTS, stops=STOPS_WITH_EMPTY, include_stop=st.booleans())
def test_truncate_matches_brute_force_reference(
    text: str, stops: list[str], include_stop: bool
) -> None:
    assert truncate_at_stop(text, stops, include_stop) == reference_truncate(
        text, stops, include_stop
    )


@PROPS
@given(text=TEXTS, stops=STOPS)
def test_truncate_result_shape(text: str, stops: list[str]) -> None:
    cut, found = truncate_at_stop(text, stops)
    cut_incl, found_incl = truncate_at_stop(text, stops, include_stop=True)
    assert found == found_incl
    assert text.startswith(cut)
    assert text.startswith(cut_incl)
    if found:
        assert any(cut_incl == cut + s for s in stops)
        # No stop occurs anywhere in the text before the matched one completed.
        assert not any(s in cut_incl[:-1] for s in stops)
    else:
        assert cut == cut_incl == text
        assert not any(s in text for s in stops)


# -------------------------------------------------------------------- StopMatcher: cases


def test_matcher_spec_example() -> None:
    outs, tail, m = stream(["\n\nHuman:"], ["Hello\n", "\nHu", "man: x"])
    assert outs == ["Hello", "", ""]
    assert m.stopped is True
    assert tail == ""


def test_matcher_spec_example_include_stop() -> None:
    outs, tail, m = stream(["\n\nHuman:"], ["Hello\n", "\nHu", "man: x"], include_stop=True)
    assert outs == ["Hello", "", "\n\nHuman:"]
    assert m.stopped is True
    assert tail == ""


def test_matcher_releases_text_that_cannot_start_a_stop_at_once() -> None:
    m = StopMatcher(["STOP"])
    assert m.push("abc") == "abc"
    assert m.push("xS") == "x"
    assert m.push("T") == ""
    assert m.push("x") == "STx"
    assert m.push("STO") == ""
    assert m.push("O") == "STOO"
    assert m.flush() == ""
    assert m.stopped is False


@pytest.mark.parametrize(
    ("stops", "pushes", "outs"),
    [
        # Only the longest tail that is a proper prefix of a stop is held.
        (["abc"], ["zab"], ["z"]),
        (["abc"], ["zab", "ab"], ["z", "ab"]),
        (["abc"], ["zab", "x"], ["z", "abx"]),
        (["abc"], ["aaaa"], ["aaa"]),
        # A tail equal to a whole (shorter) stop would have matched; with two stops the
        # held tail can be a prefix of the longer one.
        (["ab", "abcd"], ["xa"], ["x"]),
        (["xyz", "yq"], ["wxy"], ["w"]),
        (["xyz", "yq"], ["wxy", "q"], ["w", "x"]),
        # A tail that is a stop's suffix but not its prefix is released.
        (["abc"], ["bc"], ["bc"]),
        (["abc"], ["c"], ["c"]),
        # Unicode stops.
        (["😀!"], ["hi😀"], ["hi"]),
    ],
)
def test_matcher_holdback_cases(stops: list[str], pushes: list[str], outs: list[str]) -> None:
    m = StopMatcher(stops)
    assert [m.push(p) for p in pushes] == outs


def test_matcher_yq_case_stops_at_first_completed() -> None:
    m = StopMatcher(["xyz", "yq"])
    assert m.push("wxy") == "w"
    assert m.push("q") == "x"
    assert m.stopped is True
    assert m.push("z") == ""
    assert m.flush() == ""


def test_matcher_stop_inside_one_chunk() -> None:
    m = StopMatcher(["STOP"])
    assert m.push("ab STOP cd") == "ab "
    assert m.stopped is True
    m = StopMatcher(["STOP"], include_stop=True)
    assert m.push("ab STOP cd") == "ab STOP"


def test_matcher_stop_across_many_chunks() -> None:
    m = StopMatcher(["</answer>"])
    pieces = ["The answer is 4", "</", "ans", "w", "er", "> trailing"]
    assert [m.push(p) for p in pieces] == ["The answer is 4", "", "", "", "", ""]
    assert m.stopped is True


def test_matcher_first_completed_across_chunks() -> None:
    outs, tail, m = stream(["abcd", "bc"], ["a", "b", "c", "d"])
    assert outs == ["", "", "a", ""]
    assert m.stopped
    assert tail == ""
    outs, tail, m = stream(["abcd", "bc"], ["a", "b", "c", "d"], include_stop=True)
    assert outs == ["", "", "abc", ""]


def test_matcher_tie_earliest_start_across_chunks() -> None:
    outs, _, m = stream(["bc", "abc"], ["xa", "b", "c"])
    assert outs == ["x", "", ""]
    assert m.stopped
    outs, _, _ = stream(["bc", "abc"], ["xa", "b", "c"], include_stop=True)
    assert outs == ["x", "", "abc"]


def test_matcher_nothing_emitted_after_stopped() -> None:
    m = StopMatcher(["\n"])
    assert m.push("line one\nline two") == "line one"
    assert m.stopped is True
    for more in ["x", "\n", "anything", ""]:
        assert m.push(more) == ""
    assert m.flush() == ""
    assert m.stopped is True


@pytest.mark.parametrize(
    ("stops", "pushes", "flushed"),
    [
        (["</s>"], ["hi </"], "</"),
        (["\n\nHuman:"], ["Hello\n", "\nHum"], "\n\nHum"),
        (["abc"], ["a"], "a"),
        (["abc"], ["xyz"], ""),
    ],
)
def test_matcher_flush_releases_held_tail(
    stops: list[str], pushes: list[str], flushed: str
) -> None:
    m = StopMatcher(stops)
    for p in pushes:
        m.push(p)
    assert m.flush() == flushed
    assert m.stopped is False
    # The tail is released once.
    assert m.flush() == ""


@pytest.mark.parametrize("stops", [None, [], [""], ("", "")])
def test_matcher_without_stops_passes_through(stops: Sequence[str] | None) -> None:
    m = StopMatcher(stops)
    assert m.active is False
    assert m.push("abc\n\nHuman:") == "abc\n\nHuman:"
    assert m.push("") == ""
    assert m.flush() == ""
    assert m.stopped is False


def test_matcher_active_and_duplicates() -> None:
    m = StopMatcher(["x", "x", ""])
    assert m.active is True
    assert m.push("abxcd") == "ab"
    assert m.stopped is True


def test_matcher_empty_push_changes_nothing() -> None:
    m = StopMatcher(["abc"])
    assert m.push("za") == "z"
    assert m.push("") == ""
    assert m.push("") == ""
    assert m.push("bc") == ""
    assert m.stopped is True


# --------------------------------------------------------------- StopMatcher: properties


def longest_prefix_tail(consumed: str, stops: Sequence[str]) -> int:
    """Length of the longest tail of ``consumed`` that is a proper prefix of some stop."""
    best = 0
    for stop in {s for s in stops if s}:
        for n in range(1, min(len(stop) - 1, len(consumed)) + 1):
            if stop.startswith(consumed[len(consumed) - n :]):
                best = max(best, n)
    return best


@PROPS
@given(
    text=TEXTS,
    stops=STOPS,
    points=st.lists(st.integers(0, 40), max_size=10),
    include_stop=st.booleans(),
)
def test_matcher_equals_truncate_for_any_chunking(
    text: str, stops: list[str], points: list[int], include_stop: bool
) -> None:
    chunks = chunk_at(text, points)
    outs, tail, m = stream(stops, chunks, include_stop)
    expected, found = truncate_at_stop(text, stops, include_stop)
    assert "".join(outs) + tail == expected
    assert m.stopped == found


@PROPS
@given(
    text=TEXTS,
    stops=STOPS_WITH_EMPTY,
    points=st.lists(st.integers(0, 40), max_size=10),
    include_stop=st.booleans(),
)
def test_matcher_never_retracts_and_holds_only_the_minimum(
    text: str, stops: list[str], points: list[int], include_stop: bool
) -> None:
    final, _ = truncate_at_stop(text, stops, include_stop)
    max_hold = max((len(s) for s in stops if s), default=1) - 1
    m = StopMatcher(stops, include_stop=include_stop)
    emitted = ""
    consumed = ""
    for chunk in chunk_at(text, points):
        was_stopped = m.stopped
        out = m.push(chunk)
        if was_stopped:
            assert out == ""
        emitted += out
        consumed += chunk
        # Nothing emitted is ever taken back.
        assert final.startswith(emitted)
        if not m.stopped:
            held = len(consumed) - len(emitted)
            assert consumed.startswith(emitted)
            assert 0 <= held <= max_hold
            # Exactly the longest tail that could still start a stop is held back.
            assert held == longest_prefix_tail(consumed, stops)
        else:
            assert emitted == final
    emitted += m.flush()
    assert emitted == final


@PROPS
@given(text=st.text(max_size=30), stops=st.lists(st.text(max_size=3), max_size=3))
def test_matcher_whole_push_equals_truncate_any_unicode(text: str, stops: list[str]) -> None:
    for include_stop in (False, True):
        outs, tail, m = stream(stops, [text], include_stop)
        assert "".join(outs) + tail == truncate_at_stop(text, stops, include_stop)[0]
        # Character by character gives the same.
        outs, tail, m2 = stream(stops, list(text), include_stop)
        assert "".join(outs) + tail == truncate_at_stop(text, stops, include_stop)[0]
        assert m.stopped == m2.stopped == truncate_at_stop(text, stops)[1]

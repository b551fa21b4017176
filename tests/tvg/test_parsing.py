"""Answer parsing (TimeLens conventions), with property tests."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tvg.parsing import extract_answer_tag, parse_span, time_to_seconds
from tvg.prompts import PROMPT_STYLES


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The event happens in 12.5 - 17.3 seconds.", (12.5, 17.3)),
        ("The event happens in 12 - 17 seconds", (12.0, 17.0)),
        ("12.54 to 17.83", (12.54, 17.83)),
        ("From 3.2 to 5.0 seconds.", (3.2, 5.0)),
        ("from 3s to 5s", (3.0, 5.0)),
        ("12s-15s", (12.0, 15.0)),
        ("between .5 and 2", (0.5, 2.0)),
        ("3.0–4.5", (3.0, 4.5)),
        ("It starts at 00:00:18 and ends at 00:00:23.", (18.0, 23.0)),
        ("00:01:05.5 - 00:01:10", (65.5, 70.0)),
        ("1:05 - 1:10", (65.0, 70.0)),
        ("from 1:05 to 70 seconds", (65.0, 70.0)),
        ("Start 4, end 9.", (4.0, 9.0)),
        ("A 30-second clip: the event is from 12.5 to 15.0", (12.5, 15.0)),
        ("Qwen2.5 thinks 4 - 6", (4.0, 6.0)),
    ],
)
def test_number_formats(text: str, expected: tuple[float, float]) -> None:
    assert parse_span(text) == pytest.approx(expected)


@pytest.mark.parametrize(
    "text", ["", "I do not know.", "It happens at 5 seconds.", "<answer>soon</answer> 1 - 2", None]
)
def test_nothing_parses(text: str | None) -> None:
    assert parse_span(text) is None  # type: ignore[arg-type]


def test_first_pair_wins() -> None:
    assert parse_span("1.0 - 2.0 seconds, or maybe 3.0 - 4.0") == (1.0, 2.0)
    # clock times come before plain number pairs
    assert parse_span("In the 2 - 3 minute mark, 00:02:10 to 00:02:20") == (130.0, 140.0)
    # "a - b" comes before "a to b"
    assert parse_span("10 to 20, 1 - 2") == (1.0, 2.0)


def test_swapped_pair_is_kept_in_order() -> None:
    assert parse_span("The event happens in 20.0 - 10.0 seconds.") == (20.0, 10.0)
    assert parse_span("<answer>5.00 to 5.00</answer>") == (5.0, 5.0)


def test_answer_tag_is_parsed_alone() -> None:
    text = "<think>maybe 1 - 2, or 3 - 4</think> <answer>7.25 to 9.5</answer>"
    assert parse_span(text) == (7.25, 9.5)
    assert extract_answer_tag(text) == "7.25 to 9.5"
    assert extract_answer_tag("no tag") is None
    assert parse_span("<answer> 3 to 4") == (3.0, 4.0)  # unclosed tag runs to the end


def test_time_to_seconds() -> None:
    assert time_to_seconds("12.5") == 12.5
    assert time_to_seconds("01:05") == 65.0
    assert time_to_seconds("1:02:03.5") == 3723.5


times = st.floats(min_value=0, max_value=20000, allow_nan=False, allow_infinity=False)


@given(start=times, end=times, style=st.sampled_from(sorted(PROMPT_STYLES)))
def test_round_trip_of_every_answer_template(start: float, end: float, style: str) -> None:
    prompt_style = PROMPT_STYLES[style]
    answer = prompt_style.target_answer(start, end)
    digits = 1 if style == "timelens" else 2
    expected = (float(f"{start:.{digits}f}"), float(f"{end:.{digits}f}"))
    assert parse_span(answer) == expected
    assert prompt_style.is_well_formatted(answer)


reasoning_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="<>"), max_size=80
)


@given(start=times, end=times, reasoning=reasoning_text)
def test_cot_reasoning_never_changes_the_answer(start: float, end: float, reasoning: str) -> None:
    style = PROMPT_STYLES["tempsamp_cot"]
    answer = style.target_answer(start, end, reasoning=reasoning)
    assert parse_span(answer) == (float(f"{start:.2f}"), float(f"{end:.2f}"))
    assert style.is_well_formatted(answer)


@given(st.text(max_size=200))
def test_random_text_never_crashes(text: str) -> None:
    result = parse_span(text)
    if result is not None:
        assert len(result) == 2
        assert all(isinstance(v, float) and not math.isnan(v) and v >= 0 for v in result)


@given(
    a=st.integers(0, 10**6),
    b=st.integers(0, 10**6),
    sep=st.sampled_from([" - ", "-", " to ", " – ", "s - ", " seconds to "]),
)
def test_integer_pairs_with_separators(a: int, b: int, sep: str) -> None:
    assert parse_span(f"answer: {a}{sep}{b}") == (float(a), float(b))

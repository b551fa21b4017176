"""Prompt styles: texts, answer templates, format checks, the registry."""

from __future__ import annotations

import pytest

from tvg.prompts import PROMPT_STYLES, extract_query, get_prompt_style


def test_registry_names() -> None:
    assert set(PROMPT_STYLES) == {"timelens", "tempsamp", "tempsamp_cot"}
    assert get_prompt_style("TempSamp-CoT").name == "tempsamp_cot"
    style = get_prompt_style("timelens")
    assert get_prompt_style(style) is style


def test_unknown_style_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"unknown prompt style 'grpo'.*tempsamp, tempsamp_cot"):
        get_prompt_style("grpo")


def test_timelens_texts_match_data_md() -> None:
    style = get_prompt_style("timelens")
    assert style.user_prompt("a man waves") == (
        "Please find the visual event described by the sentence 'a man waves', determining its "
        "starting and ending times. The format should be: 'The event happens in <start time> - "
        "<end time> seconds'."
    )
    assert style.target_answer(1.25, 7) == "The event happens in 1.2 - 7.0 seconds."


def test_tempsamp_texts() -> None:
    plain = get_prompt_style("tempsamp")
    cot = get_prompt_style("tempsamp_cot")
    assert plain.target_answer(12.544, 17.83) == "<answer>12.54 to 17.83</answer>"
    expected = "<think>look</think>\n<answer>1.00 to 2.00</answer>"
    assert cot.target_answer(1, 2, reasoning="look") == expected
    for style in (plain, cot):
        prompt = style.user_prompt("a dog barks")
        assert '"a dog barks"' in prompt and "<answer> </answer>" in prompt
        assert "two decimal places" in prompt
    assert "<think> </think>" in cot.user_prompt("x") and "<think>" not in plain.user_prompt("x")


@pytest.mark.parametrize(
    ("style", "answer", "ok"),
    [
        ("timelens", "The event happens in 1.0 - 2.5 seconds.", True),
        ("timelens", "  The event happens in 1 - 2 seconds\n", True),
        ("timelens", "The event happens in 1.0 - 2.5 seconds. Also 3 - 4.", False),
        ("timelens", "1.0 - 2.5", False),
        ("tempsamp", "<answer>1.00 to 2.50</answer>", True),
        ("tempsamp", "<answer> 1.00 to 2.50 </answer>", True),
        ("tempsamp", "<answer>1.00 - 2.50</answer>", False),
        ("tempsamp", "<think>x</think><answer>1.00 to 2.50</answer>", False),
        ("tempsamp_cot", "<think>hmm</think>\n<answer>1.00 to 2.50</answer>", True),
        ("tempsamp_cot", "<think>a\nb</think> <answer>1 to 2</answer>", True),
        ("tempsamp_cot", "<answer>1.00 to 2.50</answer>", False),
        ("tempsamp_cot", "<think>a</think><think>b</think><answer>1 to 2</answer>", False),
        ("tempsamp_cot", "<think>a</think><answer>1 to 2</answer> extra", False),
    ],
)
def test_format_check(style: str, answer: str, ok: bool) -> None:
    assert get_prompt_style(style).is_well_formatted(answer) is ok


@pytest.mark.parametrize("name", sorted(PROMPT_STYLES))
def test_query_round_trips_through_the_prompt(name: str) -> None:
    style = PROMPT_STYLES[name]
    query = "the man's dog jumps over a fence"
    assert style.extract_query(style.user_prompt(query)) == query
    assert extract_query("<video>" + style.user_prompt(query)) == query
    assert extract_query("When does it happen?") is None

"""Prompt styles: the user prompt for a query, the target answer for a span, the format check.

Styles (docs/DATASETS.md §3, "Prompts and answers"):

- "timelens": the TimeLens / Qwen3-VL grounding prompt (the Video-OPD setting); answer
  "The event happens in {start:.1f} - {end:.1f} seconds."
- "tempsamp": TempSamp-R1 / VideoChat-R1 without reasoning; answer "<answer>{start:.2f} to
  {end:.2f}</answer>".
- "tempsamp_cot": the same with the reasoning first: "<think>...</think>" then the answer tag.

`format_pattern` is what the format reward checks (a full match, surrounding whitespace allowed).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_NUM = r"[0-9]+(?:\.[0-9]+)?"
# Reasoning text must not itself open or close a think / answer tag.
_FREE_TEXT = r"(?:(?!</?think>|</?answer>).)*"


@dataclass(frozen=True)
class PromptStyle:
    """One way to ask for a span and to write the answer.

    Attributes:
        name: registry name.
        user_template: the user prompt, with a "{query}" field.
        answer_template: the target answer, with "{start}", "{end}" (and "{reasoning}") fields.
        format_pattern: regex an answer must fully match to earn the format reward.
    """

    name: str
    user_template: str
    answer_template: str
    format_pattern: re.Pattern[str]

    def user_prompt(self, query: str) -> str:
        """Return the user prompt text asking for the span of `query`."""
        return self.user_template.format(query=query)

    def target_answer(self, start: float, end: float, reasoning: str = "") -> str:
        """Return the reference answer for the span [start, end] (`reasoning`: CoT styles only)."""
        return self.answer_template.format(start=start, end=end, reasoning=reasoning)

    def is_well_formatted(self, answer: str) -> bool:
        """Whether `answer` fully matches the style's answer format (whitespace around allowed)."""
        return self.format_pattern.fullmatch(answer.strip()) is not None

    def extract_query(self, prompt: str) -> str | None:
        """Recover the query from a user prompt written with this style's template, else None."""
        head, _, tail = self.user_template.partition("{query}")
        pattern = re.escape(head) + r"(?P<query>.+?)" + re.escape(tail)
        match = re.search(pattern, prompt, re.DOTALL)
        return match.group("query") if match else None


TIMELENS = PromptStyle(
    name="timelens",
    user_template=(
        "Please find the visual event described by the sentence '{query}', determining its "
        "starting and ending times. The format should be: 'The event happens in <start time> - "
        "<end time> seconds'."
    ),
    answer_template="The event happens in {start:.1f} - {end:.1f} seconds.",
    format_pattern=re.compile(rf"The event happens in {_NUM} - {_NUM} seconds\.?"),
)

_TEMPSAMP_TASK = (
    'To accurately pinpoint the event "{query}" in the video, determine the precise time period '
    "of the event.\n\n"
)
_TEMPSAMP_ANSWER_ASK = (
    'the start and end times (in seconds, precise to two decimal places) in the format "start '
    'time to end time" within the <answer> </answer> tags. For example: "12.54 to 17.83".'
)
_ANSWER_TAG = rf"<answer>\s*{_NUM}\s+to\s+{_NUM}\s*</answer>"

TEMPSAMP = PromptStyle(
    name="tempsamp",
    user_template=_TEMPSAMP_TASK + "Provide " + _TEMPSAMP_ANSWER_ASK,
    answer_template="<answer>{start:.2f} to {end:.2f}</answer>",
    format_pattern=re.compile(_ANSWER_TAG),
)

TEMPSAMP_COT = PromptStyle(
    name="tempsamp_cot",
    user_template=(
        _TEMPSAMP_TASK
        + "Output your thought process within the <think> </think> tags.\n\nThen, provide "
        + _TEMPSAMP_ANSWER_ASK
    ),
    answer_template="<think>{reasoning}</think>\n<answer>{start:.2f} to {end:.2f}</answer>",
    format_pattern=re.compile(rf"<think>{_FREE_TEXT}</think>\s*{_ANSWER_TAG}", re.DOTALL),
)

PROMPT_STYLES: dict[str, PromptStyle] = {s.name: s for s in (TIMELENS, TEMPSAMP, TEMPSAMP_COT)}


def get_prompt_style(name: str | PromptStyle) -> PromptStyle:
    """Return the prompt style registered under `name` (a style passes through unchanged).

    Raises ValueError naming the known styles when `name` is unknown.
    """
    if isinstance(name, PromptStyle):
        return name
    key = name.strip().lower().replace("-", "_")
    try:
        return PROMPT_STYLES[key]
    except KeyError:
        known = ", ".join(sorted(PROMPT_STYLES))
        raise ValueError(f"unknown prompt style {name!r}; known styles: {known}") from None


def extract_query(prompt: str) -> str | None:
    """Recover the query from a user prompt written with any registered style, else None."""
    for style in PROMPT_STYLES.values():
        query = style.extract_query(prompt)
        if query is not None:
            return query
    return None

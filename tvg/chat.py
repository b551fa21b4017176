"""The chat messages of one grounding prompt: one video, then the prompt style's user text.

Every component that builds a prompt (rollout, teacher, learner, evaluation) calls
`grounding_messages` so that the token layout is identical everywhere.
"""

from __future__ import annotations

from tvg.prompts import PromptStyle, get_prompt_style


def grounding_messages(query: str, style: str | PromptStyle = "timelens") -> list[dict]:
    """Return the chat messages asking for the span of `query` in the (single) video."""
    prompt_style = get_prompt_style(style)
    return [
        {
            "role": "user",
            "content": [
                {"type": "video"},
                {"type": "text", "text": prompt_style.user_prompt(query)},
            ],
        }
    ]

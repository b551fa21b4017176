"""Prompt token ids and banned tokens, identical for every engine (sampler, teacher, learner)."""

from __future__ import annotations

from typing import Any

from tvg.chat import grounding_messages

# Qwen-VL vision placeholder tokens: never sampled as text, masked out of every log-prob.
VISION_PLACEHOLDER_TOKENS: tuple[str, ...] = (
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
)


def prompt_text(tokenizer: Any, query: str, prompt_style: str) -> str:
    """The chat-template text of one grounding prompt (generation prompt appended)."""
    return tokenizer.apply_chat_template(
        grounding_messages(query, prompt_style), tokenize=False, add_generation_prompt=True
    )


def prompt_token_ids(tokenizer: Any, query: str, prompt_style: str) -> list[int]:
    """Token ids of the prompt text, with ONE <|video_pad|> per video (engines expand it)."""
    text = prompt_text(tokenizer, query, prompt_style)
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def vision_placeholder_ids(tokenizer: Any) -> list[int]:
    """Ids of the vision placeholder tokens that exist in this tokenizer's vocabulary."""
    vocab = tokenizer.get_vocab()
    return [vocab[token] for token in VISION_PLACEHOLDER_TOKENS if token in vocab]

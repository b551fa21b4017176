"""A byte-level BPE tokenizer trained on a fixed corpus, with Qwen's chat and vision special tokens.

Digits are split into single tokens (a Digits pre-tokenizer before ByteLevel) so that every
timestamp is spelled digit by digit, as in Qwen's own tokenizers. The corpus is fixed text, so the
tokenizer is identical on every machine: student and teacher built anywhere share it exactly.
"""

from __future__ import annotations

import itertools

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

SPECIAL_TOKENS: tuple[str, ...] = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
)

# Qwen-style chat template (no default system message: sequences stay short for tiny models).
# A video item becomes <|vision_start|><|video_pad|><|vision_end|>, which the processor expands.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'video' or 'video' in content %}"
    "<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif content['type'] == 'image' or 'image' in content %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

_COLOURS = (
    "red",
    "green",
    "blue",
    "yellow",
    "cyan",
    "magenta",
    "orange",
    "purple",
    "white",
    "black",
)
_SHAPES = ("square", "circle", "triangle", "object", "box", "ball")
_VERBS = ("visible", "moving", "appears", "disappears", "present", "shown")


def training_corpus() -> list[str]:
    """Return the fixed corpus the tokenizer is trained on (prompts, answers, numbers)."""
    lines: list[str] = []
    for colour, shape, verb in itertools.product(_COLOURS, _SHAPES, _VERBS):
        lines.append(
            f"When is the {colour} {shape} {verb} in the video? "
            "Give the start and end time in seconds."
        )
        lines.append(
            f"Please find the visual event described by the sentence 'the {colour} {shape} is "
            f"{verb}', determining its starting and ending times. The format should be: "
            "'The event happens in <start time> - <end time> seconds'."
        )
    for start in range(0, 64, 2):
        end = start + 4
        lines.append(f"The event happens in {start:.1f} - {end:.1f} seconds.")
        lines.append(f"<answer>{start:.2f} to {end:.2f}</answer>")
        lines.append(f"<think>The {_COLOURS[start % 10]} square shows from {start} s.</think>")
        lines.append(f"<{start + 0.5:.1f} seconds>")
    lines.append(
        "Provide the start and end time of the event in seconds, as 'start to end' inside "
        "<answer> </answer> tags. Think first inside <think> </think> tags."
    )
    lines.append("system user assistant video image a person does something then stops")
    return lines


def build_tokenizer(vocab_size: int = 400) -> PreTrainedTokenizerFast:
    """Train the byte-level BPE on the fixed corpus; wrap it with Qwen's specials and template."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(training_corpus(), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=list(SPECIAL_TOKENS[1:]),
        clean_up_tokenization_spaces=False,
        model_max_length=32768,
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast

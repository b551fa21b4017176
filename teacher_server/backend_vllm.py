"""vLLM teacher backend: one prompt-logprobs request per sequence, batched in one `generate`.

Each sequence is sent as a token prompt (the chat ids with ONE <|video_pad|> + the completion ids)
with the task layer's vision inputs; vLLM expands the video placeholder, so the completion is
located at the END of the returned sequence.

Temperature and the vision-token ban, exactly. vLLM computes prompt log-probs from the raw logits
(sampling processors, temperature and `allowed_token_ids` do not apply to prompt tokens). This
engine only scores, so we change the logits themselves: `install_logits_transform` sets the model's
`LogitsProcessor.scale` to 1 / temperature and adds a forward hook that sets the vision placeholder
logits to -inf, and those of the unused ids of a padded vocabulary (config.vocab_size >
len(tokenizer), as in Qwen's checkpoints). Every prompt log-prob and top-k entry is then
log_softmax(logits / T) over the tokenizer's vocabulary without the placeholders: the same
distribution the student samples from (vLLM's processed log-probs with `allowed_token_ids`), and
the same formula as `runtime.hf_scoring.masked_log_softmax`. The hook is installed with
`LLM.apply_model`; with multi-process engines (VLLM_ENABLE_V1_MULTIPROCESSING=1) vLLM must be
allowed to send the function (VLLM_ALLOW_INSECURE_SERIALIZATION=1). Start-up fails if no logits
layer was found.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import numpy as np

from runtime.vllm_env import apply_vllm_cpu_defaults
from teacher_server.config import TeacherConfig
from teacher_server.items import ScoreItem, TeacherInputError, TokenScores, resolve_vision
from teacher_server.scorer import LocalScorer
from tvg.frame_cache import FrameCache


def _mask_hook(module: Any, args: Any, output: Any) -> Any:
    """Forward hook of a LogitsProcessor: banned token logits (and padding ids) -> -inf."""
    if output is None:
        return output
    output[..., module._vopd_banned_ids] = float("-inf")
    num_tokens = getattr(module, "_vopd_num_tokens", None)
    if num_tokens is not None:
        output[..., num_tokens:] = float("-inf")
    return output


def install_logits_transform(
    model: Any, temperature: float, banned_ids: list[int], num_tokens: int | None = None
) -> int:
    """Make every LogitsProcessor of `model` return (logits / T) with banned ids at -inf.

    num_tokens: the tokenizer's length; the ids from it on (a padded vocabulary's unused rows)
    are set to -inf too (None: none). Idempotent (a second call updates the settings). Returns
    the number of layers changed.
    """
    import torch
    from vllm.model_executor.layers.logits_processor import LogitsProcessor

    changed = 0
    for module in model.modules():
        if not isinstance(module, LogitsProcessor):
            continue
        module.scale = 1.0 / float(temperature)
        module._vopd_banned_ids = torch.tensor(banned_ids, dtype=torch.long)
        module._vopd_num_tokens = num_tokens
        if not getattr(module, "_vopd_hooked", False):
            module.register_forward_hook(_mask_hook)
            module._vopd_hooked = True
        changed += 1
    return changed


class VLLMScorer(LocalScorer):
    """Teacher scoring with an in-process vLLM engine and prompt log-probs."""

    backend = "vllm"

    def __init__(
        self,
        config: TeacherConfig,
        frame_cache: FrameCache | None = None,
        engine_kwargs: dict[str, Any] | None = None,
    ) -> None:
        """Start the engine and install the temperature / vision-mask transform on its logits."""
        super().__init__(config, frame_cache)
        apply_vllm_cpu_defaults()
        from vllm import LLM

        kwargs: dict[str, Any] = {
            "model": config.model,
            "dtype": config.dtype,
            "max_model_len": config.max_model_len,
            "seed": config.seed,
            "enforce_eager": True,
            "limit_mm_per_prompt": {"video": 1, "image": 0},
            # vLLM caps returned log-probs at 20 by default; the exact reverse KL asks the
            # teacher for its whole (tiny) vocabulary.
            "max_logprobs": max(20, config.top_k),
        }
        kwargs.update(engine_kwargs or {})
        self.llm = LLM(**kwargs)
        changed = self.llm.apply_model(
            functools.partial(
                install_logits_transform,
                temperature=config.temperature,
                banned_ids=list(self.banned_ids),
                num_tokens=len(self.tokenizer),
            )
        )
        if not changed or min(changed) < 1:
            raise RuntimeError(
                f"teacher {config.model}: no vLLM LogitsProcessor found; cannot apply the "
                "temperature and the vision-token mask to prompt log-probs"
            )

    def _prompt(self, item: ScoreItem) -> Any:
        """The vLLM token prompt of one item."""
        from vllm.inputs import TokensPrompt

        prompt = self.prompt_ids(item)
        self.check_lengths(item, len(prompt))
        vision = resolve_vision(item, self.frame_cache)
        return TokensPrompt(
            prompt_token_ids=prompt + item.completion_ids.tolist(),
            multi_modal_data=vision.vllm_mm_data(),
        )

    def score(self, items: Sequence[ScoreItem]) -> list[TokenScores]:
        """Per completion token: sampled-token log-prob and top-k, for every item, in order."""
        from vllm import SamplingParams

        params = SamplingParams(
            max_tokens=1, prompt_logprobs=self.config.top_k, detokenize=False, temperature=1.0
        )
        try:  # vLLM's "the request's fault" errors (4xx in its own server)
            from vllm.exceptions import VLLMClientError as refused
        except ImportError:  # older vLLM: validation failures are ValueErrors
            refused = ValueError
        results: list[TokenScores] = []
        for start in range(0, len(items), self.config.batch_size):
            chunk = items[start : start + self.config.batch_size]
            prompts = [self._prompt(item) for item in chunk]
            try:
                outputs = self.llm.generate(prompts, params, use_tqdm=False)
            except refused as exc:
                # e.g. text + video tokens past max_model_len: only the engine counts the video
                # tokens. vLLM aborts the requests it had added, so the engine stays usable.
                ids = [item.prompt.sample_id for item in chunk]
                raise TeacherInputError(
                    f"samples {ids}: the teacher engine refused them: {exc}"
                ) from exc
            for item, out in zip(chunk, outputs, strict=True):
                results.append(self._parse(item, out))
        return results

    def _parse(self, item: ScoreItem, out: Any) -> TokenScores:
        """Turn one RequestOutput's prompt log-probs into the completion's `TokenScores`."""
        completion = item.completion_ids.tolist()
        n, k = len(completion), self.config.top_k
        full = list(out.prompt_token_ids)
        if full[len(full) - n :] != completion:
            raise TeacherInputError(
                f"sample {item.prompt.sample_id!r}: vLLM's scored sequence does not end with "
                "the completion ids"
            )
        positions = out.prompt_logprobs[len(full) - n :]
        logprobs = np.empty(n, np.float32)
        topk_ids = np.zeros((n, k), np.int32)
        topk_lp = np.zeros((n, k), np.float32)
        for i, (token, entries) in enumerate(zip(completion, positions, strict=True)):
            logprobs[i] = entries[token].logprob
            if k:
                best = sorted(entries.items(), key=lambda kv: (kv[1].rank, -kv[1].logprob))[:k]
                topk_ids[i] = [tid for tid, _ in best]
                topk_lp[i] = [lp.logprob for _, lp in best]
        return TokenScores(logprobs, topk_ids, topk_lp, num_prompt_tokens=len(full) - n)

"""Transformers teacher backend: one forward per batch, exact temperature and vision-token mask.

Each prompt goes through the processor once per worker (`runtime.processed_prompts`) and each
video through the frozen model's vision encoder once (`runtime.vision_features`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import torch

from runtime.hf_compat import inference_device, load_hf_model
from runtime.hf_scoring import ScoringItem, batch_log_probs, build_hf_batch
from runtime.processed_prompts import PromptCache
from runtime.vision_features import FrozenVisionFeatures
from teacher_server.config import TeacherConfig
from teacher_server.items import ScoreItem, TokenScores, resolve_vision
from teacher_server.scorer import LocalScorer
from tvg.frame_cache import FrameCache

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class HFScorer(LocalScorer):
    """Scores completions with `runtime.hf_scoring.batch_log_probs` (the learner's code)."""

    backend = "hf"

    def __init__(self, config: TeacherConfig, frame_cache: FrameCache | None = None) -> None:
        """Load the teacher with transformers (parity patches applied), on the process's GPU
        when it has one."""
        super().__init__(config, frame_cache)
        torch.set_num_threads(max(1, config.torch_threads))
        self.model = load_hf_model(
            config.model, dtype=DTYPES[config.dtype], device=inference_device()
        ).eval()
        # Processed prompts and video features kept between calls.
        self.prompt_cache = PromptCache()
        self.vision = FrozenVisionFeatures(self.model)

    def score(self, items: Sequence[ScoreItem]) -> list[TokenScores]:
        """Per completion token: sampled-token log-prob and top-k, for every item, in order."""
        results: list[TokenScores] = []
        for start in range(0, len(items), self.config.batch_size):
            chunk = items[start : start + self.config.batch_size]
            batch = []
            for item in chunk:
                prompt = self.prompt_ids(item)
                self.check_lengths(item, len(prompt))
                batch.append(
                    ScoringItem(
                        item.prompt.query,
                        item.prompt.prompt_style,
                        resolve_vision(item, self.frame_cache),
                        item.completion_ids.tolist(),
                    )
                )
            hf_batch = build_hf_batch(self.processor, batch, self.prompt_cache)
            hf_batch = dataclasses.replace(
                hf_batch, inputs=self.vision.inputs_for(hf_batch.inputs, hf_batch.prompt_keys)
            )
            with torch.no_grad():
                outs = batch_log_probs(
                    self.model,
                    self.processor,
                    hf_batch,
                    self.config.temperature,
                    self.config.top_k,
                )
            for item, out in zip(chunk, outs, strict=True):
                n = int(item.completion_ids.shape[0])
                k = self.config.top_k
                results.append(
                    TokenScores(
                        logprobs=out["logprobs"].float().cpu().numpy(),
                        topk_ids=out["topk_ids"].cpu().numpy() if k else torch.zeros(n, 0).numpy(),
                        topk_logprobs=out["topk_logprobs"].float().cpu().numpy()
                        if k
                        else torch.zeros(n, 0).numpy(),
                        num_prompt_tokens=item.num_prompt_tokens,
                    )
                )
        return results

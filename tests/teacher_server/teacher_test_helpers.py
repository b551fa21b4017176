"""Shared helpers for the teacher tests: small videos, sampled student batches, HF references."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from rollout.batch import PromptSpec, RolloutBatch, Trajectory
from runtime.hf_scoring import build_hf_batch
from runtime.prompting import prompt_token_ids, vision_placeholder_ids
from teacher_server.items import ScoreItem
from tvg.synth_render import encode_video
from tvg.video import VideoSettings, build_vision_inputs

SETTINGS = VideoSettings(fps=2.0, max_frames=8, max_pixels=64 * 64, min_pixels=32 * 32)
QUERIES = (
    "When is the red square visible?",
    "When does the blue circle move to the left?",
    "Find the moment the screen turns green.",
)


def write_videos(root: Path, n: int = 3) -> list[Path]:
    """n small mp4s (8 frames at 4 fps, 64 x 64) with a coloured square at different times."""
    paths = []
    for i in range(n):
        frames = np.full((8, 64, 64, 3), 100 + 20 * i, np.uint8)
        frames[i : i + 3, 8:40, 8:40] = (220, 30 + 60 * i, 30)
        path = root / f"clip{i}.mp4"
        encode_video(frames, path, fps=4)
        paths.append(path)
    return paths


def sample_batch(llm, tokenizer, videos: list[Path], n: int = 2, max_tokens: int = 10):
    """A RolloutBatch sampled from the student vLLM engine (temperature 1, vision ids banned)."""
    from vllm import SamplingParams
    from vllm.inputs import TokensPrompt

    prompts = [
        PromptSpec(f"s{i}", str(v), QUERIES[i % len(QUERIES)], video_settings=SETTINGS)
        for i, v in enumerate(videos)
    ]
    banned = set(vision_placeholder_ids(tokenizer))
    allowed = [i for i in range(len(tokenizer)) if i not in banned]
    requests, owners = [], []
    for p_index, prompt in enumerate(prompts):
        ids = prompt_token_ids(tokenizer, prompt.query, prompt.prompt_style)
        vision = build_vision_inputs(prompt.video, prompt.video_settings)
        for s in range(n):
            requests.append(
                TokensPrompt(prompt_token_ids=ids, multi_modal_data=vision.vllm_mm_data())
            )
            owners.append((p_index, s, ids))
    params = SamplingParams(
        max_tokens=max_tokens, temperature=1.0, logprobs=0, allowed_token_ids=allowed
    )
    outs = llm.generate(requests, params, use_tqdm=False)
    batch = RolloutBatch(prompts=prompts)
    for (p_index, s, ids), out in zip(owners, outs, strict=True):
        sample = out.outputs[0]
        tokens = list(sample.token_ids)
        batch.trajectories.append(
            Trajectory(
                prompt_index=p_index,
                sample_index=s,
                prompt_ids=np.asarray(ids),
                completion_ids=np.asarray(tokens),
                logprobs=np.asarray([sample.logprobs[j][t].logprob for j, t in enumerate(tokens)]),
                finish_reason=sample.finish_reason or "length",
                num_prompt_tokens=len(out.prompt_token_ids),
            )
        )
    return batch


def reference_log_probs(model, processor, items: list[ScoreItem], temperature: float, k: int):
    """Independent reference: transformers logits -> /T -> vision ids to -inf -> log_softmax."""
    from runtime.hf_scoring import ScoringItem

    banned = vision_placeholder_ids(processor.tokenizer)
    out = []
    for item in items:
        vision = build_vision_inputs(item.prompt.video, item.prompt.video_settings)
        hf_item = ScoringItem(
            item.prompt.query, item.prompt.prompt_style, vision, item.completion_ids.tolist()
        )
        batch = build_hf_batch(processor, [hf_item])
        with torch.no_grad():
            logits = model(**batch.inputs).logits[0].double()
        p_len, c_len = batch.prompt_lengths[0], batch.completion_lengths[0]
        z = logits[p_len - 1 : p_len - 1 + c_len] / temperature
        z[:, banned] = float("-inf")
        lp = torch.log_softmax(z, dim=-1)
        raw = torch.log_softmax(logits[p_len - 1 : p_len - 1 + c_len] / temperature, dim=-1)
        targets = torch.as_tensor(item.completion_ids, dtype=torch.long)
        values, ids = lp.topk(k, dim=-1)
        out.append(
            {
                "logprobs": lp.gather(1, targets[:, None])[:, 0].numpy(),
                "raw_logprobs": raw.gather(1, targets[:, None])[:, 0].numpy(),
                "topk_ids": ids.numpy(),
                "topk_logprobs": values.numpy(),
            }
        )
    return out

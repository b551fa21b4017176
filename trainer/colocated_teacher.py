"""The teacher's forward on the learner rank itself (`teacher.colocate: true`).

Instead of a teacher pool that scores each completion and ships log-probs back (the whole
next-token distribution, V values per position, for the exact reverse KL), each learner rank
holds a frozen copy of the teacher and computes its log-probs at the student-visited positions in
the same micro-batch, with the same vision inputs, next to the student's forward — TRL's GKD
layout. Nothing per position crosses the wire; the cost is the teacher's weights and forward on
every learner rank. The teacher's values reach the loss under the same names the wire would fill
(`teacher_logprobs`, `teacher_topk_*`, `teacher_rows`), so every OPD objective runs unchanged.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from runtime.vision_features import FrozenVisionFeatures


class ColocatedTeacher:
    """A frozen transformers teacher scoring completions on the learner rank."""

    def __init__(
        self, model_dir: str, dtype: Any, temperature: float, signal: str, top_k: int
    ) -> None:
        """`signal` is the objective's teacher signal ("sampled", "topk" or "full"), `top_k` the
        list length for "topk"."""
        from runtime.hf_compat import inference_device, load_hf_model

        if signal not in ("sampled", "topk", "full"):
            raise ValueError(f"a co-located teacher has no {signal!r} signal")
        # On the learner's GPU when it has one (DeepSpeed puts the student there): the scores
        # meet the student's log-probs in the loss on one device.
        self.model = load_hf_model(model_dir, dtype=dtype, device=inference_device())
        self.model.eval()
        for param in self.model.parameters():
            param.requires_grad_(False)
        self.temperature = temperature
        self.signal = signal
        self.top_k = top_k if signal == "topk" else 0
        # The frozen teacher encodes each video once (runtime.vision_features).
        self.vision = FrozenVisionFeatures(self.model)

    def score(self, processor: Any, batch: Any) -> list[dict[str, Any]]:
        """Per item of a batch built by `runtime.hf_scoring.build_hf_batch` (the learner's own:
        one processor pass serves the student's forward and the teacher's): "teacher_logprobs"
        (T,), and "teacher_topk_ids" / "teacher_topk_logprobs" (T, k) for a top-k signal, or
        "teacher_rows" (T, V) for the full distribution; no gradient. Videos the teacher has
        encoded before are not encoded again (`runtime.vision_features`)."""
        import torch

        from runtime.hf_scoring import batch_log_probs

        batch = dataclasses.replace(
            batch, inputs=self.vision.inputs_for(batch.inputs, batch.prompt_keys)
        )
        with torch.no_grad():
            scores = batch_log_probs(
                self.model,
                processor,
                batch,
                temperature=self.temperature,
                top_k=self.top_k,
                return_rows=self.signal == "full",
            )
        out = []
        for score in scores:
            entry = {"teacher_logprobs": score["logprobs"]}
            if self.top_k:
                entry["teacher_topk_ids"] = score["topk_ids"]
                entry["teacher_topk_logprobs"] = score["topk_logprobs"]
            if "rows" in score:
                entry["teacher_rows"] = score["rows"]
            out.append(entry)
        return out


def check_colocated_teacher(student_dir: str, teacher_dir: str) -> None:
    """Start-up check of a co-located teacher: the same tokenizer and vision-input settings as
    the student (a `TeacherMismatchError` naming what differs), before any learner starts."""
    from transformers import AutoConfig, AutoProcessor

    from teacher_server.checks import (
        TeacherMismatchError,
        check_vision_settings,
        compare_tokenizers,
        tokenizer_hash,
        tokenizer_summary,
        vision_settings,
    )

    student = AutoProcessor.from_pretrained(student_dir)
    teacher = AutoProcessor.from_pretrained(teacher_dir)
    if tokenizer_hash(student.tokenizer) != tokenizer_hash(teacher.tokenizer):
        problems = compare_tokenizers(
            tokenizer_summary(teacher.tokenizer), tokenizer_summary(student.tokenizer)
        ) or ["tokenizer hash differs"]
        raise TeacherMismatchError(
            f"co-located teacher {teacher_dir} and student {student_dir} tokenizers differ:\n  - "
            + "\n  - ".join(problems)
        )
    check_vision_settings(
        vision_settings(teacher, AutoConfig.from_pretrained(teacher_dir)),
        vision_settings(student, AutoConfig.from_pretrained(student_dir)),
    )

"""Start-up checks between teacher and student: one tokenizer, one vision pipeline, enough context.

Token-level distillation compares log-probs token by token, so teacher and student must tokenise
identically (vocabulary, special tokens, chat template) and see the same video tokens (same
processor settings: patch, merge, temporal patch, normalisation, resizing). Every check raises
`TeacherMismatchError` listing what differs.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from tvg.video_settings import VideoSettings

# Video processor fields that decide the vision tokens a model sees.
VISION_KEYS: tuple[str, ...] = (
    "patch_size",
    "temporal_patch_size",
    "merge_size",
    "image_mean",
    "image_std",
    "rescale_factor",
    "do_rescale",
    "do_normalize",
    "do_resize",
    "do_convert_rgb",
    "size",
    "min_pixels",
    "max_pixels",
    "resample",
)


class TeacherMismatchError(RuntimeError):
    """Teacher and student disagree about tokens, vision inputs or context length."""


def tokenizer_summary(tokenizer: Any) -> dict[str, Any]:
    """The parts of a tokenizer that token-level distillation needs identical."""
    added = {
        int(i): str(getattr(tok, "content", tok))
        for i, tok in getattr(tokenizer, "added_tokens_decoder", {}).items()
    }
    return {
        "vocab": dict(sorted(tokenizer.get_vocab().items())),
        "special_tokens": sorted(str(t) for t in tokenizer.all_special_tokens),
        "added_tokens": dict(sorted(added.items())),
        "chat_template": tokenizer.chat_template or "",
    }


def _digest(value: Any) -> str:
    """sha256 of the canonical JSON of `value`."""
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


def tokenizer_hash(tokenizer: Any) -> str:
    """A sha256 over vocabulary, special tokens, added tokens and chat template."""
    return _digest(tokenizer_summary(tokenizer))


def compare_tokenizers(teacher: dict[str, Any], student: dict[str, Any]) -> list[str]:
    """Differences between two `tokenizer_summary` dicts, as readable lines ([] = identical)."""
    problems: list[str] = []
    tv, sv = teacher["vocab"], student["vocab"]
    if tv != sv:
        only_t = sorted(set(tv) - set(sv))[:5]
        only_s = sorted(set(sv) - set(tv))[:5]
        moved = sorted(k for k in set(tv) & set(sv) if tv[k] != sv[k])[:5]
        problems.append(
            f"vocabulary differs (teacher {len(tv)} tokens, student {len(sv)}; only in teacher: "
            f"{only_t}; only in student: {only_s}; different ids: {moved})"
        )
    if teacher["special_tokens"] != student["special_tokens"]:
        problems.append(
            f"special tokens differ (teacher {teacher['special_tokens']}, "
            f"student {student['special_tokens']})"
        )
    if teacher["added_tokens"] != student["added_tokens"]:
        problems.append("added tokens differ (ids or contents)")
    if teacher["chat_template"] != student["chat_template"]:
        problems.append("chat templates differ")
    return problems


def check_tokenizers(teacher_tokenizer: Any, student_tokenizer: Any) -> None:
    """Raise `TeacherMismatchError` unless the two tokenizers are identical for distillation."""
    problems = compare_tokenizers(
        tokenizer_summary(teacher_tokenizer), tokenizer_summary(student_tokenizer)
    )
    if problems:
        raise TeacherMismatchError(
            "teacher and student tokenizers differ; token-level distillation needs one "
            "tokenizer:\n  - " + "\n  - ".join(problems)
        )


def vision_settings(processor: Any, model_config: Any | None = None) -> dict[str, Any]:
    """The vision-input settings of a model: its video processor fields and vision config."""
    video = getattr(processor, "video_processor", None)
    raw = video.to_dict() if video is not None else {}
    out = {key: raw[key] for key in VISION_KEYS if key in raw}
    vision_config = getattr(model_config, "vision_config", None)
    if vision_config is not None:
        for key in ("patch_size", "spatial_merge_size", "temporal_patch_size"):
            if hasattr(vision_config, key):
                out[f"vision_config.{key}"] = getattr(vision_config, key)
    return json.loads(json.dumps(out))


def vision_hash(settings: dict[str, Any]) -> str:
    """sha256 of a `vision_settings` dict."""
    return _digest(settings)


def check_vision_settings(teacher: dict[str, Any], student: dict[str, Any]) -> None:
    """Raise `TeacherMismatchError` when teacher and student vision settings differ."""
    keys = sorted(set(teacher) | set(student))
    diffs = [
        f"{k}: teacher {teacher.get(k, '<unset>')!r}, student {student.get(k, '<unset>')!r}"
        for k in keys
        if teacher.get(k) != student.get(k)
    ]
    if diffs:
        raise TeacherMismatchError(
            "teacher and student build different vision inputs:\n  - " + "\n  - ".join(diffs)
        )


def check_video_settings(teacher: VideoSettings, student: VideoSettings) -> None:
    """Raise `TeacherMismatchError` when the frame sampling settings differ."""
    t, s = teacher.to_dict(), student.to_dict()
    diffs = [f"{k}: teacher {t[k]!r}, student {s[k]!r}" for k in t if t[k] != s[k]]
    if diffs:
        raise TeacherMismatchError(
            "teacher and student sample videos differently:\n  - " + "\n  - ".join(diffs)
        )


def check_context_length(teacher_max_len: int, longest_sequence: int, what: str = "") -> None:
    """Raise `TeacherMismatchError` when the longest prompt + completion exceeds the teacher's."""
    if longest_sequence > teacher_max_len:
        where = f" ({what})" if what else ""
        raise TeacherMismatchError(
            f"the longest prompt + completion{where} has {longest_sequence} tokens but the "
            f"teacher's context length is {teacher_max_len}; raise teacher.max_model_len or "
            "lower the video token budget / max_new_tokens"
        )


def model_max_len(model_config: Any) -> int:
    """The model's maximum positions (text config's max_position_embeddings)."""
    text = getattr(model_config, "text_config", None) or model_config
    return int(getattr(text, "max_position_embeddings", 0) or 0)

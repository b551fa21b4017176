"""The HTTP wire format of the teacher service: JSON or safetensors requests, JSON responses.

Never pickle. A request is either
- `application/json`: {"version": 1, "items": [...], "top_k"?: k, "temperature"?: T}, each item
  {"sample_id", "query", "prompt_style", "video", "video_settings", "completion_ids",
  "prompt_ids"?, "num_prompt_tokens"?}; the server decodes `video` (a path under its video root)
  with `tvg.video.build_vision_inputs`; or
- `application/x-safetensors`: a safetensors file whose tensors are the decoded frames
  ("frames.<j>", uint8 T x H x W x 3, one per distinct video) and whose metadata key "request"
  holds the same JSON, each item naming its frames with "frames": j and their "metadata"
  (source fps, total_num_frames, frames_indices, ...). A teacher on another machine then needs no
  shared disk and sees exactly the student's pixels.
The response is JSON: {"results": [{"logprobs": [...], "topk_ids": [[...]], "topk_logprobs":
[[...]], "num_prompt_tokens": n}], "seconds": s}; float32 values survive the JSON round trip
exactly.
Every validation failure raises `BadRequest` with a reason (the server answers 400 with it).
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Sequence
from typing import Any

import numpy as np

from rollout.batch import PromptSpec
from teacher_server.items import ScoreItem, TokenScores
from tvg.video_settings import VideoSettings
from tvg.vision_inputs import VisionInputs, make_metadata

API_VERSION = 1
JSON_TYPE = "application/json"
SAFETENSORS_TYPE = "application/x-safetensors"
MAX_ITEMS = 4096
MAX_TEXT = 20_000
MAX_IDS = 1_000_000
MAX_INT_DIGITS = 19  # JSON integers beyond int64 are refused before they become Python ints


def _parse_int(text: str) -> int:
    """`json.loads` hook for integer literals: refuse absurd ones with a reason (Python's own
    digit limit raises a bare ValueError, and huge ints overflow float conversions later)."""
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise BadRequest(f"integer literal with {len(text.lstrip('-'))} digits is out of range")
    return int(text)


def _loads(text: bytes | str, what: str) -> Any:
    """Parse JSON from a client; every failure is a `BadRequest` naming `what`."""
    try:
        return json.loads(text, parse_int=_parse_int)
    except BadRequest as exc:
        raise BadRequest(f"{what}: {exc}") from None
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:  # JSONDecodeError included
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise BadRequest(f"{what} is not valid JSON: {reason}") from None


class BadRequest(ValueError):
    """A malformed request; the message is the reason returned to the client."""


def _field(obj: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    """obj[key], checked to be of `kind` (bools are not ints)."""
    if key not in obj:
        raise BadRequest(f"{where}: missing field {key!r}")
    value = obj[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool) and bool not in kinds:
        raise BadRequest(f"{where}.{key}: expected {kind}, got a boolean")
    if not isinstance(value, kinds):
        raise BadRequest(f"{where}.{key}: expected {kinds[0].__name__}, got {type(value).__name__}")
    return value


def _ids(value: Any, where: str, allow_empty: bool = False) -> np.ndarray:
    """A list of non-negative int32 token ids."""
    if not isinstance(value, list) or (not value and not allow_empty):
        raise BadRequest(f"{where}: expected a non-empty list of token ids")
    if len(value) > MAX_IDS:
        raise BadRequest(f"{where}: too many ids ({len(value)})")
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise BadRequest(f"{where}: token ids must be integers")
    if any(v < 0 or v > 2**31 - 1 for v in value):
        raise BadRequest(f"{where}: token ids must be in [0, 2**31)")
    return np.asarray(value, dtype=np.int32)


def _settings(value: Any, where: str) -> VideoSettings:
    """VideoSettings from a JSON object."""
    if not isinstance(value, dict):
        raise BadRequest(f"{where}: expected an object")
    allowed = set(VideoSettings.__dataclass_fields__)
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise BadRequest(f"{where}: unknown fields {unknown}")
    for key, v in value.items():
        if key == "backend":
            ok = isinstance(v, str)
        elif key == "max_total_pixels":
            ok = v is None or (isinstance(v, int) and not isinstance(v, bool))
        elif key == "fps":
            ok = isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
        else:
            ok = isinstance(v, int) and not isinstance(v, bool)
        if not ok:
            raise BadRequest(f"{where}.{key}: bad value {v!r}")
    try:
        return VideoSettings(**value)
    except (TypeError, ValueError) as exc:
        raise BadRequest(f"{where}: {exc}") from exc


def _vision(
    meta: Any, frames: np.ndarray, settings: VideoSettings, video: str, where: str
) -> VisionInputs:
    """Check shipped frames + metadata against what `build_vision_inputs` can produce."""
    if not isinstance(meta, dict):
        raise BadRequest(f"{where}.metadata: expected an object")
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[3] != 3:
        raise BadRequest(f"{where}: frames must be uint8 (T, H, W, 3), got {frames.shape}")
    t, h, w = (int(x) for x in frames.shape[:3])
    if t < 2 or t % 2 or t > settings.max_frames:
        raise BadRequest(f"{where}: {t} frames (need an even count in [2, max_frames])")
    f = settings.size_factor
    if h % f or w % f or not settings.min_pixels <= h * w <= settings.max_pixels:
        raise BadRequest(
            f"{where}: frame size {h}x{w} is not a multiple of {f} within the pixel budget"
        )
    fps = _field(meta, "fps", (int, float), f"{where}.metadata")
    total = _field(meta, "total_num_frames", int, f"{where}.metadata")
    indices = _field(meta, "frames_indices", list, f"{where}.metadata")
    backend = meta.get("video_backend", "decord")
    if not (math.isfinite(fps) and fps > 0) or total < 1 or not isinstance(backend, str):
        raise BadRequest(f"{where}.metadata: bad fps, total_num_frames or video_backend")
    if len(indices) != t or not all(
        isinstance(i, int) and not isinstance(i, bool) and 0 <= i < total for i in indices
    ):
        raise BadRequest(f"{where}.metadata.frames_indices: need {t} indices in [0, {total})")
    if meta.get("do_sample_frames", False) is not False:
        raise BadRequest(f"{where}.metadata.do_sample_frames must be false")
    return VisionInputs(
        frames=frames,
        timestamps=np.asarray(indices, dtype=np.float64) / float(fps),
        metadata=make_metadata(float(fps), total, list(indices), backend),
        video_path=video,
        settings=settings,
    )


def _item(raw: Any, index: int, frames: dict[str, np.ndarray] | None) -> ScoreItem:
    """One ScoreItem from its JSON object (frames: the shipped tensors, safetensors mode)."""
    where = f"items[{index}]"
    if not isinstance(raw, dict):
        raise BadRequest(f"{where}: expected an object")
    query = _field(raw, "query", str, where)
    style = raw.get("prompt_style", "timelens")
    sample_id = raw.get("sample_id", str(index))
    video = raw.get("video", "")
    if not isinstance(style, str) or not isinstance(sample_id, str) or not isinstance(video, str):
        raise BadRequest(f"{where}: prompt_style, sample_id and video must be strings")
    if not query or max(len(query), len(style), len(sample_id), len(video)) > MAX_TEXT:
        raise BadRequest(f"{where}: empty query or a text field too long")
    if "\x00" in video:
        raise BadRequest(f"{where}.video: a path cannot hold a NUL character")
    from tvg.prompts import get_prompt_style

    try:
        get_prompt_style(style)
    except (KeyError, ValueError) as exc:
        raise BadRequest(f"{where}.prompt_style: unknown style {style!r}") from exc
    settings = _settings(raw.get("video_settings", {}), f"{where}.video_settings")
    completion = _ids(raw.get("completion_ids"), f"{where}.completion_ids")
    prompt_ids = raw.get("prompt_ids")
    prompt = None if prompt_ids is None else _ids(prompt_ids, f"{where}.prompt_ids")
    num_prompt = raw.get("num_prompt_tokens", 0)
    if not isinstance(num_prompt, int) or isinstance(num_prompt, bool) or num_prompt < 0:
        raise BadRequest(f"{where}.num_prompt_tokens: expected a non-negative integer")
    vision = None
    if frames is not None:
        key = raw.get("frames")
        if not isinstance(key, int) or isinstance(key, bool) or f"frames.{key}" not in frames:
            raise BadRequest(f"{where}.frames: expected the index of a 'frames.<j>' tensor")
        vision = _vision(raw.get("metadata"), frames[f"frames.{key}"], settings, video, where)
    elif not video:
        raise BadRequest(f"{where}: JSON requests name the video file in 'video'")
    spec = PromptSpec(
        sample_id=sample_id,
        video=video,
        query=query,
        prompt_style=style,
        video_settings=settings,
    )
    return ScoreItem(spec, completion, prompt, num_prompt, vision)


def parse_request(body: bytes, content_type: str) -> tuple[list[ScoreItem], dict[str, Any]]:
    """Decode a request body into items and the request options (top_k, temperature)."""
    kind = content_type.split(";")[0].strip().lower()
    frames: dict[str, np.ndarray] | None = None
    if kind == JSON_TYPE:
        text = body
    elif kind == SAFETENSORS_TYPE:
        text, frames = _read_safetensors(body)
    else:
        raise BadRequest(f"unsupported content type {content_type!r}")
    request = _loads(text, "body")
    if not isinstance(request, dict):
        raise BadRequest("request: expected a JSON object")
    version = request.get("version", API_VERSION)
    if version != API_VERSION:
        raise BadRequest(f"unsupported API version {version!r} (server speaks {API_VERSION})")
    raw_items = _field(request, "items", list, "request")
    if not raw_items or len(raw_items) > MAX_ITEMS:
        raise BadRequest(f"request.items: need 1 to {MAX_ITEMS} items")
    options: dict[str, Any] = {}
    if "top_k" in request:
        options["top_k"] = _field(request, "top_k", int, "request")
    if "temperature" in request:
        options["temperature"] = float(_field(request, "temperature", (int, float), "request"))
    items = [_item(raw, i, frames) for i, raw in enumerate(raw_items)]
    return items, options


def _read_safetensors(body: bytes) -> tuple[bytes, dict[str, np.ndarray]]:
    """The "request" metadata and the uint8 frame tensors of a safetensors body."""
    if len(body) < 8:
        raise BadRequest("safetensors body too short")
    (size,) = struct.unpack("<Q", body[:8])
    if size > len(body) - 8 or size > 64 * 1024 * 1024:
        raise BadRequest("safetensors header size is out of range")
    header = _loads(body[8 : 8 + size], "safetensors header")
    if not isinstance(header, dict):
        raise BadRequest("safetensors header: expected an object")
    meta = header.get("__metadata__")
    if not isinstance(meta, dict) or not isinstance(meta.get("request"), str):
        raise BadRequest("safetensors metadata must hold the JSON request under 'request'")
    for name, spec in header.items():
        if name == "__metadata__":
            continue
        if (
            not name.startswith("frames.")
            or not isinstance(spec, dict)
            or spec.get("dtype") != "U8"
        ):
            raise BadRequest(f"safetensors tensor {name!r}: only uint8 'frames.<j>' tensors")
    from safetensors import SafetensorError
    from safetensors.numpy import load

    try:
        tensors = load(body)
    except (SafetensorError, ValueError, TypeError, OverflowError) as exc:
        raise BadRequest(f"invalid safetensors body: {exc}") from exc
    return meta["request"].encode(), tensors


def _item_json(item: ScoreItem) -> dict[str, Any]:
    """The JSON object of one item (without frames)."""
    out: dict[str, Any] = {
        "sample_id": item.prompt.sample_id,
        "query": item.prompt.query,
        "prompt_style": item.prompt.prompt_style,
        "video": item.prompt.video,
        "video_settings": item.prompt.video_settings.to_dict(),
        "completion_ids": item.completion_ids.tolist(),
        "num_prompt_tokens": int(item.num_prompt_tokens),
    }
    if item.prompt_ids is not None:
        out["prompt_ids"] = item.prompt_ids.tolist()
    return out


def encode_json_request(items: Sequence[ScoreItem], **options: Any) -> bytes:
    """A JSON request (videos by path: the server decodes them itself)."""
    request = {"version": API_VERSION, **options, "items": [_item_json(i) for i in items]}
    return json.dumps(request).encode()


def encode_frames_request(
    items: Sequence[ScoreItem], visions: Sequence[VisionInputs], **options: Any
) -> bytes:
    """A safetensors request shipping each distinct video's frames once."""
    from safetensors.numpy import save

    tensors: dict[str, np.ndarray] = {}
    slots: dict[int, int] = {}
    raw_items = []
    for item, vision in zip(items, visions, strict=True):
        slot = slots.setdefault(id(vision), len(slots))
        tensors.setdefault(f"frames.{slot}", np.ascontiguousarray(vision.frames))
        raw = _item_json(item)
        raw["frames"] = slot
        raw["metadata"] = {k: v for k, v in vision.metadata.items()}
        raw_items.append(raw)
    request = {"version": API_VERSION, **options, "items": raw_items}
    return save(tensors, metadata={"request": json.dumps(request)})


def encode_response(results: Sequence[TokenScores], seconds: float) -> bytes:
    """The JSON response of a scoring call."""
    payload = {
        "results": [
            {
                "logprobs": r.logprobs.tolist(),
                "topk_ids": r.topk_ids.tolist(),
                "topk_logprobs": r.topk_logprobs.tolist(),
                "num_prompt_tokens": int(r.num_prompt_tokens),
            }
            for r in results
        ],
        "seconds": seconds,
    }
    return json.dumps(payload).encode()


def decode_response(body: bytes, expected: int) -> list[TokenScores]:
    """`TokenScores` from a JSON response (checks the result count)."""
    payload = json.loads(body)
    results = payload.get("results") if isinstance(payload, dict) else None
    if not isinstance(results, list) or len(results) != expected:
        raise ValueError(f"teacher server returned a malformed response for {expected} items")
    out = []
    for r in results:
        n = len(r["logprobs"])
        ids = np.asarray(r["topk_ids"], dtype=np.int32).reshape(n, -1)
        lps = np.asarray(r["topk_logprobs"], dtype=np.float32).reshape(n, -1)
        out.append(TokenScores(r["logprobs"], ids, lps, int(r.get("num_prompt_tokens", 0))))
    return out

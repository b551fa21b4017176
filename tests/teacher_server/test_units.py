"""Pure parts of the teacher: balancing, config, wire format, start-up checks (no engines)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from rollout.batch import PromptSpec
from teacher_server.balance import reassemble, split_by_tokens
from teacher_server.checks import (
    TeacherMismatchError,
    check_context_length,
    check_tokenizers,
    check_video_settings,
    check_vision_settings,
    vision_settings,
)
from teacher_server.config import TeacherConfig
from teacher_server.http_server import check_bind, is_loopback
from teacher_server.items import ScoreItem, TokenScores
from teacher_server.wire import (
    BadRequest,
    decode_response,
    encode_frames_request,
    encode_json_request,
    encode_response,
    parse_request,
)
from tvg.video import VideoSettings, build_vision_inputs


def test_split_by_tokens_balances_and_reassembles_in_order() -> None:
    costs = [100, 5, 60, 40, 30, 30, 1, 99]
    shards = split_by_tokens(costs, 3)
    assert sorted(i for s in shards for i in s) == list(range(len(costs)))
    loads = [sum(costs[i] for i in s) for s in shards]
    assert max(loads) - min(loads) <= max(costs) and max(loads) <= 130, loads
    assert all(s == sorted(s) for s in shards)
    results = [[f"r{i}" for i in s] for s in shards]
    assert reassemble(shards, results, len(costs)) == [f"r{i}" for i in range(len(costs))]
    assert split_by_tokens([3], 4) == [[0], [], [], []]
    with pytest.raises(ValueError, match="no result for items"):
        reassemble([[0]], [["a"]], 2)


def test_config_rejects_bad_values() -> None:
    with pytest.raises(ValueError, match=r"teacher.backend"):
        TeacherConfig(backend="onnx", model="m")
    with pytest.raises(ValueError, match=r"teacher.url"):
        TeacherConfig(backend="remote")
    with pytest.raises(ValueError, match="temperature"):
        TeacherConfig(model="m", temperature=0)


def test_loopback_binding_rule() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.1.2.3")
    check_bind("127.0.0.1", None)
    check_bind("0.0.0.0", "tok")
    with pytest.raises(PermissionError, match="without a bearer token"):
        check_bind("0.0.0.0", None)


def test_wire_round_trip_is_exact(tmp_path: Path, teacher_videos) -> None:
    from teacher_test_helpers import SETTINGS

    spec = PromptSpec("a", str(teacher_videos[0]), "When?", video_settings=SETTINGS)
    vision = build_vision_inputs(spec.video, SETTINGS)
    items = [
        ScoreItem(spec, [5 + i, 9, 12], prompt_ids=[1, 2, 3], num_prompt_tokens=40)
        for i in range(3)
    ]
    body = encode_frames_request(items, [vision] * 3, top_k=2)
    parsed, options = parse_request(body, "application/x-safetensors")
    assert options == {"top_k": 2}
    assert body.count(vision.frames.tobytes()) == 1  # one copy of a shared video
    for a, b in zip(items, parsed, strict=True):
        assert np.array_equal(a.completion_ids, b.completion_ids)
        assert np.array_equal(a.prompt_ids, b.prompt_ids)
        assert b.prompt == a.prompt and b.num_prompt_tokens == 40
        assert np.array_equal(b.vision.frames, vision.frames)
        assert b.vision.metadata == vision.metadata
        assert np.array_equal(b.vision.timestamps, vision.timestamps)
    parsed, _ = parse_request(encode_json_request(items), "application/json")
    assert parsed[0].vision is None and parsed[0].prompt.video == spec.video
    rng = np.random.default_rng(0)
    scores = [
        TokenScores(
            rng.normal(size=4).astype(np.float32) - 3,
            rng.integers(0, 400, (4, 3)),
            rng.normal(size=(4, 3)).astype(np.float32),
            17,
        )
    ]
    back = decode_response(encode_response(scores, 0.1), 1)
    assert back[0].equals(scores[0]) and back[0].num_prompt_tokens == 17


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{", "not valid JSON"),
        (b"[]", "expected a JSON object"),
        (b'{"items": []}', "need 1 to"),
        (b'{"version": 2, "items": [{}]}', "API version"),
        (b'{"items": [{"query": "q", "video": "v", "completion_ids": [-1]}]}', "token ids"),
        (b'{"items": [{"query": "q", "video": "v", "completion_ids": [true]}]}', "integers"),
        (b'{"items": [{"query": "q", "completion_ids": [1]}]}', "name the video"),
        (
            b'{"items": [{"query": "q", "video": "v", "completion_ids": [1], '
            b'"video_settings": {"fps": -1}}]}',
            "fps must be > 0",
        ),
        (
            b'{"items": [{"query": "q", "video": "v", "completion_ids": [1], '
            b'"prompt_style": "nope"}]}',
            "unknown style",
        ),
    ],
)
def test_malformed_requests_give_reasons(body: bytes, reason: str) -> None:
    with pytest.raises(BadRequest, match=reason):
        parse_request(body, "application/json")


def test_malformed_safetensors_bodies() -> None:
    from safetensors.numpy import save

    with pytest.raises(BadRequest, match="too short"):
        parse_request(b"abc", "application/x-safetensors")
    with pytest.raises(BadRequest, match="header size"):
        parse_request(b"\xff" * 16, "application/x-safetensors")
    floats = save({"frames.0": np.zeros((2, 32, 32, 3), np.float32)}, metadata={"request": "{}"})
    with pytest.raises(BadRequest, match="only uint8"):
        parse_request(floats, "application/x-safetensors")
    request = {
        "items": [
            {
                "query": "q",
                "completion_ids": [1],
                "frames": 0,
                "video_settings": {"max_pixels": 4096, "min_pixels": 1024},
                "metadata": {"fps": 1.0, "total_num_frames": 2, "frames_indices": [0, 1]},
            }
        ]
    }
    odd = save({"frames.0": np.zeros((2, 33, 32, 3), np.uint8)}, {"request": json.dumps(request)})
    with pytest.raises(BadRequest, match="not a multiple of 32"):
        parse_request(odd, "application/x-safetensors")
    with pytest.raises(BadRequest, match="unsupported content type"):
        parse_request(b"{}", "text/plain")


def test_tokenizer_check_names_each_difference(tiny_models_dir: Path, tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    teacher = AutoTokenizer.from_pretrained(tiny_models_dir / "qwen3_vl-teacher")
    student = AutoTokenizer.from_pretrained(tiny_models_dir / "qwen3_vl-student")
    check_tokenizers(teacher, student)  # the tiny models share one tokenizer
    other = AutoTokenizer.from_pretrained(tiny_models_dir / "qwen3_vl-student")
    other.add_tokens(["<extra_token>"])
    with pytest.raises(TeacherMismatchError, match=r"vocabulary differs.*<extra_token>"):
        check_tokenizers(teacher, other)
    other = AutoTokenizer.from_pretrained(tiny_models_dir / "qwen3_vl-student")
    other.chat_template = other.chat_template.replace("assistant", "bot")
    with pytest.raises(TeacherMismatchError, match="chat templates differ"):
        check_tokenizers(teacher, other)
    other = AutoTokenizer.from_pretrained(tiny_models_dir / "qwen3_vl-student")
    other.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|x|>"]})
    with pytest.raises(TeacherMismatchError, match="special tokens differ"):
        check_tokenizers(teacher, other)


def test_vision_and_context_checks(tiny_models_dir: Path, tmp_path: Path) -> None:
    from transformers import AutoConfig, AutoProcessor

    def settings(path: Path) -> dict:
        return vision_settings(
            AutoProcessor.from_pretrained(path), AutoConfig.from_pretrained(path)
        )

    teacher = settings(tiny_models_dir / "qwen3_vl-teacher")
    student = settings(tiny_models_dir / "qwen3_vl-student")
    assert teacher["merge_size"] == 2 and teacher["vision_config.patch_size"] == 16
    check_vision_settings(teacher, student)
    changed = tmp_path / "student"
    shutil.copytree(tiny_models_dir / "qwen3_vl-student", changed)
    config = json.loads((changed / "processor_config.json").read_text())
    config["video_processor"]["image_mean"] = [0.4, 0.4, 0.4]
    (changed / "processor_config.json").write_text(json.dumps(config))
    with pytest.raises(TeacherMismatchError, match="image_mean"):
        check_vision_settings(teacher, settings(changed))
    with pytest.raises(TeacherMismatchError, match="different vision inputs"):
        check_vision_settings(teacher, settings(tiny_models_dir / "qwen2_5_vl-student"))
    with pytest.raises(TeacherMismatchError, match=r"fps: teacher 2.0, student 1.0"):
        check_video_settings(VideoSettings(fps=2.0), VideoSettings(fps=1.0))
    check_context_length(4096, 4096)
    with pytest.raises(TeacherMismatchError, match="4097 tokens but the teacher's context"):
        check_context_length(4096, 4097)


def test_logits_mask_hook_bans_placeholders_and_padding_ids() -> None:
    """The vLLM teacher's logits hook: vision ids and a padded vocabulary's unused ids -> -inf."""
    from types import SimpleNamespace

    import torch

    from teacher_server.backend_vllm import _mask_hook

    module = SimpleNamespace(_vopd_banned_ids=torch.tensor([1]), _vopd_num_tokens=5)
    out = _mask_hook(module, (), torch.zeros(2, 8))
    assert torch.isinf(out[:, [1, 5, 6, 7]]).all() and torch.isfinite(out[:, [0, 2, 3, 4]]).all()
    module._vopd_num_tokens = None  # unpadded: only the banned ids
    out = _mask_hook(module, (), torch.zeros(2, 8))
    assert torch.isinf(out[:, 1]).all() and int(torch.isfinite(out).sum()) == 14

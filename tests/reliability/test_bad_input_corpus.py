"""The bad-input corpus: every case is one bad input and the outcome the code promises for it.

Categories: annotation files (tests/data/bad and a few generated ones), videos, one bad sample
inside a training step, run configs, `vopd` command-line arguments, teacher-service requests.
An outcome is one of: a clear error naming the file and record (or the key, the argument, the
field), a counted skip where the docs promise one, a 4xx with a reason, a non-zero exit with a
message, or (said so explicitly) "accepted".

`CASES` (id -> `Case`) is the corpus; docs/RELIABILITY.md lists every id with its input and
outcome, and `test_docs_table_lists_every_case` keeps the two in step. `python
tests/reliability/test_bad_input_corpus.py` prints the table rows.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

if __name__ == "__main__":  # printing the docs table: make the repository importable
    sys.path[:0] = [str(Path(__file__).resolve().parents[2]), str(Path(__file__).parent)]

from reliability_helpers import (
    MAX_BODY,
    SETTINGS,
    TOKEN,
    frames_body,
    get,
    json_body,
    post,
    raw_request,
    replace_frames_request,
    reply_json,
    request_of_frames_body,
    valid_item,
)

ROOT = Path(__file__).resolve().parents[2]
BAD = ROOT / "tests" / "data" / "bad"
DOC = ROOT / "docs" / "RELIABILITY.md"
TEST_REF = "tests/reliability/test_bad_input_corpus.py::test_bad_input"


@dataclass(frozen=True)
class Case:
    """One bad input: its id, category, what is fed in, the promised outcome, and the check."""

    id: str
    category: str
    input: str
    outcome: str
    check: Callable[[Ctx], None]


class Ctx:
    """What a case may use: pytest fixtures, fetched lazily so cheap cases stay cheap."""

    def __init__(self, request: pytest.FixtureRequest) -> None:
        self._request = request

    def __getattr__(self, name: str) -> Any:
        return self._request.getfixturevalue(name)


CASES: dict[str, Case] = {}
CATEGORIES = ("annotation", "video", "training step", "config", "cli", "teacher service")


def case(case_id: str, category: str, input: str, outcome: str) -> Callable:
    """Register the decorated check as corpus case `case_id`."""
    assert category in CATEGORIES, category

    def register(check: Callable[[Ctx], None]) -> Callable[[Ctx], None]:
        assert case_id not in CASES, f"duplicate case id {case_id}"
        CASES[case_id] = Case(case_id, category, input, outcome, check)
        return check

    return register


# ====================================================================== annotation files
# tests/data/bad: file, reason, where the strict error points after the path, lenient: skipped
# count for the reason and samples kept.
BAD_RECORDS = [
    ("missing_field.json", "missing_field", ':3: key "vid_bad"', 1, 1, "record without duration"),
    ("missing_field.jsonl", "missing_field", ":2:", 1, 1, "JSONL record without query"),
    ("non_numeric_time.txt", "bad_time", ":2:", 1, 1, "Charades line with time 'abc'"),
    ("nan_time.jsonl", "bad_time", ":1: key events[1].span[0]", 1, 1, "NaN span start"),
    ("inf_time.json", "bad_time", ':3: key "v_bad".timestamps[0]', 1, 1, "Infinity span end"),
    ("start_ge_end.txt", "empty_span", ":2:", 2, 1, "spans with start >= end"),
    (
        "span_out_of_range.json",
        "span_out_of_range",
        ':2: key "vid_a".spans[1]',
        1,
        2,
        "span past the end",
    ),
    ("bad_duration.jsonl", "bad_duration", ":2: key duration", 2, 1, "duration 0 and 'long'"),
    ("empty_query.txt", "empty_query", ":2:", 1, 1, "query of only punctuation"),
    ("length_mismatch.json", "length_mismatch", ':2: key "vid_a"', 1, 1, "2 spans, 1 query"),
    ("duplicate_id.json", "duplicate_id", ':4: key "vid_a"', 1, 2, "video key repeated"),
    ("duplicate_id.jsonl", "duplicate_id", ":3:", 1, 2, "qid repeated"),
    ("malformed_json.jsonl", "malformed_json", ":2:", 1, 2, "a JSONL line cut short"),
    ("malformed_line.txt", "malformed_line", ":2:", 1, 1, "Charades line without '##'"),
    ("unlabelled.jsonl", "unlabelled", ":2:", 1, 1, "query without a span"),
    ("unparseable_answer.jsonl", "unparseable_answer", ":2: key messages", 1, 1, "no time pair"),
    ("bad_type.jsonl", "bad_type", ":2:", 1, 1, "a JSONL record that is a list"),
]


def _strict_and_lenient(
    path: Path, reason: str, where: str, count: int, kept: int, **kwargs: Any
) -> None:
    """Strict: DataError naming file + record; lenient: the record skipped and counted."""
    from tvg.errors import DataError
    from tvg.formats import load_samples

    with pytest.raises(DataError) as info:
        load_samples(path, **kwargs)
    assert info.value.reason == reason
    assert str(info.value).startswith(f"{path}{where}"), str(info.value)
    report = load_samples(path, strict=False, **kwargs)
    assert dict(report.skipped) == {reason: count}
    assert len(report.samples) == kept
    assert all(e.startswith(str(path)) for e in report.examples[reason])


for _index, (_name, _reason, _where, _count, _kept, _what) in enumerate(BAD_RECORDS, start=1):
    case(
        f"ANN-{_index:02d}",
        "annotation",
        f"tests/data/bad/{_name}: {_what}",
        f"strict: DataError [{_reason}] at `{_name}{_where}`; "
        f"lenient: {_count} skipped, {_kept} kept",
    )(
        lambda ctx, n=_name, r=_reason, w=_where, c=_count, k=_kept: _strict_and_lenient(
            BAD / n, r, w, c, k
        )
    )


@case(
    "ANN-18",
    "annotation",
    "tests/data/bad/malformed_json.json: a JSON document with a syntax error",
    "DataError [malformed_json] at :3 in both modes (the whole file is unusable)",
)
def _(ctx: Ctx) -> None:
    from tvg.errors import DataError
    from tvg.formats import load_samples

    for strict in (True, False):
        with pytest.raises(DataError) as info:
            load_samples(BAD / "malformed_json.json", "timelens_bench", strict=strict)
        assert info.value.reason == "malformed_json"
        assert str(info.value).startswith(f"{BAD / 'malformed_json.json'}:3:")


@case(
    "ANN-19",
    "annotation",
    "tests/data/bad/unknown_format.json: JSON that is no annotation format",
    "DataError [unknown_format] naming the file and the known formats, both modes",
)
def _(ctx: Ctx) -> None:
    from tvg.errors import DataError
    from tvg.formats import load_samples

    for strict in (True, False):
        with pytest.raises(DataError, match="unknown_format") as info:
            load_samples(BAD / "unknown_format.json", strict=strict)
        assert str(BAD / "unknown_format.json") in str(info.value)
        assert "timelens_bench" in str(info.value)


@case(
    "ANN-20",
    "annotation",
    "tests/data/bad/missing_video.json with --video-root: one video file absent",
    "strict: DataError [missing_video] naming the record and the path; lenient: its 2 queries "
    "skipped",
)
def _(ctx: Ctx) -> None:
    root = ctx.tmp_path
    (root / "present.mp4").write_bytes(b"")
    _strict_and_lenient(
        BAD / "missing_video.json", "missing_video", ':3: key "absent"', 2, 1, video_root=root
    )


@case(
    "ANN-21",
    "annotation",
    "annotation path that does not exist",
    "DataError [unreadable] naming the path",
)
def _(ctx: Ctx) -> None:
    from tvg.errors import DataError
    from tvg.formats import load_samples

    path = ctx.tmp_path / "nope.json"
    with pytest.raises(DataError, match="unreadable") as info:
        load_samples(path)
    assert str(path) in str(info.value)


@case(
    "ANN-22",
    "annotation",
    "annotation file in Latin-1 (not UTF-8)",
    "DataError [unreadable] naming the file and the byte",
)
def _(ctx: Ctx) -> None:
    from tvg.errors import DataError
    from tvg.formats import load_samples

    path = ctx.tmp_path / "latin1.json"
    path.write_bytes(b'{"v": {"duration": 9.0, "spans": [[1, 2]], "queries": ["caf\xe9"]}}\n')
    with pytest.raises(DataError, match="unreadable") as info:
        load_samples(path)
    assert str(info.value).startswith(str(path)) and "utf-8" in str(info.value)


@case(
    "ANN-23",
    "annotation",
    "empty annotation file (0 bytes)",
    "DataError [unknown_format] naming the file",
)
def _(ctx: Ctx) -> None:
    from tvg.errors import DataError
    from tvg.formats import load_samples

    path = ctx.tmp_path / "empty.json"
    path.write_text("")
    with pytest.raises(DataError, match="unknown_format") as info:
        load_samples(path)
    assert str(info.value).startswith(str(path))


@case(
    "ANN-24",
    "annotation",
    "JSON document holding an integer literal of 5,000 digits",
    "DataError [malformed_json] naming the file (was: a bare ValueError without the file)",
)
def _(ctx: Ctx) -> None:
    from tvg.errors import DataError
    from tvg.formats import load_samples

    path = ctx.tmp_path / "bigint.json"
    path.write_text('{"v": {"duration": %s, "spans": [[1, 2]], "queries": ["q"]}}' % ("1" * 5000))
    for strict in (True, False):
        with pytest.raises(DataError, match="malformed_json") as info:
            load_samples(path, "timelens_bench", strict=strict)
        assert str(info.value).startswith(str(path)) and "digits" in str(info.value)


@case(
    "ANN-25",
    "annotation",
    "JSONL file whose line 2 nests 100,000 arrays deep",
    "strict: DataError [malformed_json] at :2 (was: RecursionError); lenient: 1 skipped, 1 kept",
)
def _(ctx: Ctx) -> None:
    path = ctx.tmp_path / "deep.jsonl"
    good = '{"qid": 1, "query": "a man talks", "duration": 150, "vid": "a", "relevant_windows": '
    path.write_text(
        good + "[[0, 10]]}\n" + '{"qid": 2, "x": ' + "[" * 100_000 + "]" * 100_000 + "}\n"
    )
    _strict_and_lenient(path, "malformed_json", ":2:", 1, 1)


@case(
    "ANN-26",
    "annotation",
    "JSONL line 2 with an integer literal of 5,000 digits",
    "strict: DataError [malformed_json] at :2 (was: a bare ValueError); lenient: 1 skipped",
)
def _(ctx: Ctx) -> None:
    path = ctx.tmp_path / "bigint.jsonl"
    rest = ', "query": "a man talks", "duration": 150, "vid": "a", "relevant_windows": [[0, 10]]}'
    path.write_text('{"qid": 1' + rest + "\n" + '{"qid": ' + "7" * 5000 + rest + "\n")
    _strict_and_lenient(path, "malformed_json", ":2:", 1, 1)


@case(
    "ANN-27",
    "annotation",
    "JSONL record that is the literal null",
    "strict: DataError [bad_type] at :2; lenient: 1 skipped, 1 kept",
)
def _(ctx: Ctx) -> None:
    path = ctx.tmp_path / "null.jsonl"
    good = '{"qid": 1, "query": "a man talks", "duration": 150, "vid": "a", "relevant_windows": '
    path.write_text(good + "[[0, 10]]}\nnull\n")
    _strict_and_lenient(path, "bad_type", ":2:", 1, 1)


@case(
    "ANN-28",
    "annotation",
    "a span time given as a boolean (true)",
    "strict: DataError [bad_time] naming the key spans[0][0]; lenient: 1 skipped",
)
def _(ctx: Ctx) -> None:
    path = ctx.tmp_path / "bool.json"
    path.write_text('{"v": {"duration": 30.0, "spans": [[true, 5.0]], "queries": ["q"]}}\n')
    _strict_and_lenient(path, "bad_time", ':1: key "v".spans[0][0]', 1, 0)


@case(
    "ANN-29",
    "annotation",
    "UTF-8 file starting with a byte-order mark",
    "accepted: the mark is not content (was: unknown_format)",
)
def _(ctx: Ctx) -> None:
    from tvg.formats import load_samples

    path = ctx.tmp_path / "bom.jsonl"
    record = '{"qid": 1, "query": "a man talks", "duration": 150, "vid": "a", "relevant_windows"'
    path.write_bytes(b"\xef\xbb\xbf" + (record + ": [[0, 10]]}\n").encode())
    report = load_samples(path)
    assert report.format == "qvhighlights" and len(report.samples) == 1


@case(
    "ANN-30",
    "annotation",
    "prediction file (vopd score) with a 5,000-digit integer",
    "DataError [malformed_json] naming the file (was: a bare ValueError)",
)
def _(ctx: Ctx) -> None:
    from tvg.errors import DataError
    from tvg.predictions import read_predictions

    path = ctx.tmp_path / "preds.jsonl"
    path.write_text('{"id": "a", "span": [%s, 2]}\n' % ("9" * 5000))
    with pytest.raises(DataError, match="malformed_json") as info:
        read_predictions(path, "jsonl")
    assert str(info.value).startswith(f"{path}:1")


@case(
    "ANN-31",
    "annotation",
    "TimeLens-Bench record with queries but no spans (an unlabelled corpus)",
    "strict (labels required): DataError [unlabelled] naming the file and record; lenient: the "
    "record skipped and counted; allow_unlabelled: loaded with empty spans",
)
def _(ctx: Ctx) -> None:
    from tvg.errors import DataError
    from tvg.formats import load_samples

    path = ctx.tmp_path / "unlabelled.json"
    path.write_text(
        '{"v_no": {"duration": 9.0, "queries": ["a", "b"]},\n'
        ' "v_ok": {"duration": 9.0, "spans": [[1, 2]], "queries": ["c"]}}\n'
    )
    with pytest.raises(DataError, match="unlabelled") as info:
        load_samples(path, check_videos=False)
    assert str(info.value).startswith(f'{path}:1: key "v_no"')
    report = load_samples(path, strict=False, check_videos=False)
    assert dict(report.skipped) == {"unlabelled": 1} and len(report.samples) == 1
    loaded = load_samples(path, allow_unlabelled=True, check_videos=False)
    assert [s.spans for s in loaded.samples] == [(), (), ((1.0, 2.0),)]


# ====================================================================== videos
def _video_error(path: Path, *needles: str) -> None:
    from tvg.video import VideoError, build_vision_inputs

    with pytest.raises(VideoError) as info:
        build_vision_inputs(path, SETTINGS)
    message = str(info.value)
    assert str(path) in message, message
    assert all(n in message for n in needles), message


@case("VID-01", "video", "video path that does not exist", "VideoError naming the path: not found")
def _(ctx: Ctx) -> None:
    _video_error(ctx.video_root / "absent.mp4", "file not found")


@case("VID-02", "video", "zero-byte .mp4", "VideoError naming the path: empty (0 bytes)")
def _(ctx: Ctx) -> None:
    _video_error(ctx.video_root / "empty.mp4", "empty (0 bytes)")


@case(
    "VID-03",
    "video",
    "truncated mp4 (first third of a valid file)",
    "VideoError naming the path and each decoder's failure",
)
def _(ctx: Ctx) -> None:
    _video_error(ctx.video_root / "truncated.mp4", "decord", "pyav")


@case(
    "VID-04",
    "video",
    "text file named .mp4",
    "VideoError naming the path and each decoder's failure",
)
def _(ctx: Ctx) -> None:
    _video_error(ctx.video_root / "notes.mp4", "decord", "pyav")


@case("VID-05", "video", "a directory named .mp4", "VideoError naming the path: not a regular file")
def _(ctx: Ctx) -> None:
    _video_error(ctx.video_root / "folder.mp4", "not a regular file")


@case(
    "VID-06",
    "video",
    "mp4 container with a video stream but no frames",
    "VideoError naming the path",
)
def _(ctx: Ctx) -> None:
    import av

    path = ctx.tmp_path / "no_frames.mp4"
    with av.open(str(path), mode="w", format="mp4") as container:
        stream = container.add_stream("mpeg4", rate=1)
        stream.width, stream.height = 32, 32
    _video_error(path)


@case(
    "VID-07",
    "video",
    "video (2 s) shorter than its annotation says (duration 30 s, span 20-25 s)",
    "accepted, not detected: frames come from the real 2 s, the metadata says 2 s, the span "
    "stays as annotated (nothing compares the two)",
)
def _(ctx: Ctx) -> None:
    from rollout.batch import PromptSpec
    from tvg.formats import load_samples
    from tvg.video import build_vision_inputs

    path = ctx.tmp_path / "ann.json"
    path.write_text('{"clip": {"duration": 30.0, "spans": [[20.0, 25.0]], "queries": ["q"]}}')
    report = load_samples(path, video_root=ctx.video_root)  # clip.mp4: 8 frames at 4 fps
    spec = PromptSpec.from_sample(report.samples[0], video_settings=SETTINGS)
    inputs = build_vision_inputs(spec.video, spec.video_settings)
    assert inputs.metadata["duration"] == pytest.approx(2.0)
    assert spec.spans == ((20.0, 25.0),) and spec.duration == 30.0


# ====================================================================== one bad sample in a step
def _spec(sample_id: str, video: Path, style: str = "timelens") -> Any:
    from rollout.batch import PromptSpec

    return PromptSpec(sample_id, str(video), "q", prompt_style=style, video_settings=SETTINGS)


@case(
    "STEP-01",
    "training step",
    "rollout prompts: 2 good, one missing / one truncated video, one unknown prompt style",
    "the 2 good prompts are prepared; 3 counted in RolloutBatch.skipped, each reason naming the "
    "file or the style; nothing raised",
)
def _(ctx: Ctx) -> None:
    from rollout.batch import RolloutBatch
    from rollout.engine_common import prepare_prompts

    root = ctx.video_root
    specs = [
        _spec("good0", root / "clip.mp4"),
        _spec("missing", root / "absent.mp4"),
        _spec("truncated", root / "truncated.mp4"),
        _spec("style", root / "clip.mp4", style="no_such_style"),
        _spec("good1", root / "clip.mp4"),
    ]
    prepared, skipped = prepare_prompts(specs, ctx.stub_scorer.tokenizer, None)
    assert [p.spec.sample_id for p in prepared] == ["good0", "good1"]
    assert [(s.prompt_index, s.sample_id) for s in skipped] == [
        (1, "missing"),
        (2, "truncated"),
        (3, "style"),
    ]
    assert "absent.mp4" in skipped[0].reason and "truncated.mp4" in skipped[1].reason
    assert "no_such_style" in skipped[2].reason
    batch = RolloutBatch.merge([RolloutBatch(prompts=specs, skipped=skipped)], specs)
    assert len(batch.skipped) == 3


@case(
    "STEP-05",
    "training step",
    "unlabelled training records for an objective or curriculum that trains on labels (SFT, "
    "GRPO, TempSamp-R1; TVDF / difficulty curricula)",
    "ConfigError before any actor starts, naming the file, the unlabelled records and what "
    "needs labels; OPD with a uniform curriculum accepts them",
)
def _(ctx: Ctx) -> None:
    import dataclasses

    from launch.config import ConfigError
    from launch.driver import require_labels
    from trainer.objectives.registry import get_objective_spec

    video = ctx.video_root / "clip.mp4"
    prompts = [
        dataclasses.replace(_spec("a", video), spans=((0.5, 1.0),)),
        _spec("b", video),
        _spec("c", video),
    ]
    for objective, curriculum in (
        ("sft", "uniform"),
        ("grpo", "uniform"),
        ("tempsamp", "uniform"),
        ("opd", "tvdf"),
        ("opd", "difficulty"),
    ):
        with pytest.raises(ConfigError) as info:
            require_labels(prompts, "train.json", get_objective_spec(objective), curriculum)
        message = str(info.value)
        assert message.startswith("train.json: 2 of 3") and "b, c" in message, message
        assert objective in message or curriculum in message
    for objective in ("opd", "opd_full_rkl", "opd_topk_fkl"):
        require_labels(prompts, "train.json", get_objective_spec(objective), "uniform")


def _trajectory(index: int, logprobs: list[float], **fields: Any) -> Any:
    from rollout.batch import Trajectory

    return Trajectory(index, 0, [1, 2], [5] * len(logprobs), logprobs, "stop", **fields)


@case(
    "STEP-02",
    "training step",
    "one trajectory with NaN behaviour log-probs among clean ones",
    "sanitize_trajectories names '1.logprobs' and returns a finite copy; the others are "
    "untouched (the learner then skips that update on every rank, "
    "tests/trainer/test_learner.py)",
)
def _(ctx: Ctx) -> None:
    from trainer.learner import sanitize_trajectories

    trajs = [_trajectory(0, [-0.5, -1.0]), _trajectory(1, [-0.5, math.nan]), _trajectory(2, [-1.0])]
    clean, bad = sanitize_trajectories(trajs)
    assert bad == ["1.logprobs"]
    assert np.isfinite(clean[1].logprobs).all() and math.isnan(trajs[1].logprobs[1])
    assert clean[0] is trajs[0] and clean[2] is trajs[2]


@case(
    "STEP-03",
    "training step",
    "teacher log-probs with +inf and a NaN reward in one trajectory; -inf top-k padding",
    "both fields named and zeroed; -inf (masked top-k entries) kept",
)
def _(ctx: Ctx) -> None:
    from trainer.learner import sanitize_trajectories

    traj = _trajectory(
        0,
        [-0.5, -1.0],
        teacher_logprobs=np.array([-0.1, np.inf], np.float32),
        teacher_topk_logprobs=np.array([[-0.1, -np.inf], [-0.2, -np.inf]], np.float32),
        rewards={"iou": math.nan, "total": 1.0},
    )
    clean, bad = sanitize_trajectories([traj])
    assert bad == ["0.teacher_logprobs", "0.rewards"]
    assert clean[0].teacher_logprobs.tolist() == [pytest.approx(-0.1), 0.0]
    assert np.isneginf(clean[0].teacher_topk_logprobs[:, 1]).all()
    assert clean[0].rewards == {"iou": 0.0, "total": 1.0}


@case(
    "STEP-04",
    "training step",
    "a sampled completion that is garbage text (no time pair, invalid UTF-8 replacement chars)",
    "reward 0 IoU, counted as unparsed in the step metrics; no exception",
)
def _(ctx: Ctx) -> None:
    from launch.config import RewardConfig
    from launch.step_logic import assign_advantages, assign_rewards, batch_metrics
    from rollout.batch import RolloutBatch

    spec = _spec("a", ctx.video_root / "clip.mp4")
    specs = [dataclasses.replace(spec, spans=((0.5, 1.0),), duration=2.0)]
    good = _trajectory(0, [-0.5], text="The event happens in 0.5 - 1.0 seconds.")
    bad = _trajectory(0, [-0.5], text="\ufffd\ufffd<|video_pad|> ]] 99999999999999999999 - nan")
    bad.sample_index = 1
    batch = RolloutBatch(prompts=specs, trajectories=[good, bad])
    assign_rewards(batch, "grpo", RewardConfig())
    assign_advantages(batch, "grpo", {})
    assert good.rewards["iou"] == pytest.approx(1.0) and bad.rewards["iou"] == 0.0
    assert batch_metrics(batch)["parse_rate"] == 0.5


# ====================================================================== configs
def _config_error(path_or_preset: str | None, overrides: list[str], *needles: str) -> None:
    from launch.config import ConfigError, load_config

    with pytest.raises(ConfigError) as info:
        load_config(path_or_preset, overrides)
    message = str(info.value)
    assert all(n in message for n in needles), message


def _yaml(ctx: Ctx, text: str | bytes, name: str = "run.yaml") -> str:
    path = ctx.tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return str(path)


@case(
    "CFG-01",
    "config",
    "YAML file with an unknown key (trainer.stepz)",
    "ConfigError naming the file and trainer.stepz",
)
def _(ctx: Ctx) -> None:
    path = _yaml(ctx, "trainer:\n  stepz: 3\n")
    _config_error(path, [], path, "trainer.stepz")


@case(
    "CFG-02",
    "config",
    "YAML file with a wrong type (rollout.n: many)",
    "ConfigError naming the file and rollout.n",
)
def _(ctx: Ctx) -> None:
    path = _yaml(ctx, "rollout:\n  n: many\n")
    _config_error(path, [], path, "rollout.n")


@case(
    "CFG-03",
    "config",
    "override with an unknown key (rollout.temprature=1.0)",
    "ConfigError naming rollout.temprature (and the close match)",
)
def _(ctx: Ctx) -> None:
    _config_error(None, ["rollout.temprature=1.0"], "rollout.temprature", "temperature")


@case(
    "CFG-04", "config", "override of the wrong type (rollout.n=1.5)", "ConfigError naming rollout.n"
)
def _(ctx: Ctx) -> None:
    _config_error(None, ["rollout.n=1.5"], "rollout.n")


@case(
    "CFG-05",
    "config",
    "out-of-range values (rollout.top_p=1.5; learner.lr=nan; rollout.temperature=inf)",
    "ConfigError naming each key and its range",
)
def _(ctx: Ctx) -> None:
    _config_error(None, ["rollout.top_p=1.5"], "rollout.top_p must be in (0, 1]")
    _config_error(None, ["learner.lr=nan"], "learner.lr")
    _config_error(None, ["rollout.temperature=inf"], "rollout.temperature")


@case(
    "CFG-06",
    "config",
    "eval.every_steps=0 / checkpoint.every_steps=0",
    "ConfigError naming the key (was: ZeroDivisionError after the first update)",
)
def _(ctx: Ctx) -> None:
    _config_error(None, ["eval.every_steps=0"], "eval.every_steps must be >= 1")
    _config_error(None, ["checkpoint.every_steps=0"], "checkpoint.every_steps must be >= 1")


@case(
    "CFG-07",
    "config",
    "limits that fail inside a step: rollout.max_new_tokens=0, rollout.timeout_s=0, "
    "trainer.budget_s=-1, trainer.budget_flops=0",
    "ConfigError naming each key (was: accepted, failing at the first rollout / stopping at once)",
)
def _(ctx: Ctx) -> None:
    _config_error(None, ["rollout.max_new_tokens=0"], "rollout.max_new_tokens")
    _config_error(None, ["rollout.timeout_s=0"], "rollout.timeout_s")
    _config_error(None, ["trainer.budget_s=-1"], "trainer.budget_s")
    _config_error(None, ["trainer.budget_flops=0"], "trainer.budget_flops")


@case(
    "CFG-08",
    "config",
    "unknown objective (trainer.objective=opd_typo)",
    "ConfigError naming trainer.objective and the known objectives (was: failure in step 1)",
)
def _(ctx: Ctx) -> None:
    _config_error(None, ["trainer.objective=opd_typo"], "trainer.objective", "opd_full_rkl")


@case(
    "CFG-09",
    "config",
    "unknown objective option (trainer.objective_kwargs={kl_cof: 0.1})",
    "ConfigError naming the option and the known ones (was: failure in step 1)",
)
def _(ctx: Ctx) -> None:
    _config_error(None, ["trainer.objective_kwargs={kl_cof: 0.1}"], "kl_cof", "kl_coef")


@case(
    "CFG-10",
    "config",
    "config name that is neither a file nor a preset",
    "ConfigError listing the presets",
)
def _(ctx: Ctx) -> None:
    _config_error("no-such-preset", [], "neither a file nor a preset", "opd")


@case(
    "CFG-11",
    "config",
    "malformed YAML file (unclosed [)",
    "ConfigError naming file:line (was: a raw yaml ParserError)",
)
def _(ctx: Ctx) -> None:
    path = _yaml(ctx, "trainer:\n  steps: [1\n")
    _config_error(path, [], f"{path}:3", "not valid YAML")


@case(
    "CFG-12",
    "config",
    "YAML file whose document is a list",
    "ConfigError naming the file (was: TypeError)",
)
def _(ctx: Ctx) -> None:
    path = _yaml(ctx, "- 1\n- 2\n")
    _config_error(path, [], path, "expected a mapping of sections", "a list")


@case(
    "CFG-13",
    "config",
    "a section given as a scalar (trainer: 3) in a file or as an override (rollout=3)",
    "ConfigError naming the file / override and the section",
)
def _(ctx: Ctx) -> None:
    path = _yaml(ctx, "trainer: 3\n")
    _config_error(path, [], path, "'trainer'", "section")
    _config_error(None, ["rollout=3"], "'rollout' is a section")


@case(
    "CFG-14",
    "config",
    "config file that is not UTF-8 text",
    "ConfigError naming the file (was: UnicodeDecodeError)",
)
def _(ctx: Ctx) -> None:
    path = _yaml(ctx, b"\xff\xfe\x00garbage")
    _config_error(path, [], path, "cannot read the file")


@case(
    "CFG-15",
    "config",
    "YAML file with a duplicate key",
    "ConfigError naming file:line and the key (was: a raw yaml ConstructorError)",
)
def _(ctx: Ctx) -> None:
    path = _yaml(ctx, "trainer:\n  steps: 1\ntrainer:\n  steps: 2\n")
    _config_error(path, [], f"{path}:3", "duplicate key trainer")


@case(
    "CFG-16",
    "config",
    "YAML with a !!python/object/apply tag (code execution on unsafe loaders)",
    "refused by the safe loader: ConfigError naming file:line, nothing executed",
)
def _(ctx: Ctx) -> None:
    marker = ctx.tmp_path / "pwned"
    path = _yaml(ctx, f'rollout:\n  n: !!python/object/apply:os.system ["touch {marker}"]\n')
    _config_error(path, [], f"{path}:2", "python/object/apply")
    assert not marker.exists()


@case(
    "CFG-17",
    "config",
    "overrides without '=', with an empty key, or with an invalid YAML value",
    "ConfigError quoting the override (was: a raw yaml ParserError for the value)",
)
def _(ctx: Ctx) -> None:
    _config_error(None, ["rollout.n"], "'rollout.n' is not of the form key=value")
    _config_error(None, ["=5"], "'=5' has an empty key")
    _config_error(None, ["rollout.n=[1"], "'rollout.n=[1'", "not valid YAML")


@case(
    "CFG-18",
    "config",
    "teacher.backend=remote without teacher.url",
    "ConfigError naming teacher.url",
)
def _(ctx: Ctx) -> None:
    _config_error(None, ["teacher.backend=remote"], "teacher.url is required")


# ====================================================================== CLI arguments
def _cli(ctx: Ctx, argv: list[str]) -> tuple[int, str]:
    """Run `vopd argv` in-process: (exit code, stdout + stderr)."""
    from launch.cli import main

    ctx.capsys.readouterr()
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse usage errors
        code = exc.code if isinstance(exc.code, int) else 2
    captured = ctx.capsys.readouterr()
    return code, captured.out + captured.err


@case("CLI-01", "cli", "`vopd` with no command", "help printed, exit 2")
def _(ctx: Ctx) -> None:
    code, out = _cli(ctx, [])
    assert code == 2 and "usage: vopd" in out


@case(
    "CLI-02",
    "cli",
    "`vopd frobnicate` (unknown command)",
    "exit 2: invalid choice, listing commands",
)
def _(ctx: Ctx) -> None:
    code, out = _cli(ctx, ["frobnicate"])
    assert code == 2 and "invalid choice: 'frobnicate'" in out and "train" in out


@case(
    "CLI-03", "cli", "`vopd train` without CONFIG", "exit 2: the following arguments are required"
)
def _(ctx: Ctx) -> None:
    code, out = _cli(ctx, ["train"])
    assert code == 2 and "required: config" in out


@case(
    "CLI-04",
    "cli",
    "`vopd train bad.yaml` (malformed YAML)",
    "exit 2: error naming bad.yaml:line (was: a yaml traceback)",
)
def _(ctx: Ctx) -> None:
    path = _yaml(ctx, "trainer:\n  steps: [1\n", name="bad.yaml")
    code, out = _cli(ctx, ["train", path, "--print-config"])
    assert code == 2 and f"{path}:3" in out


@case(
    "CLI-05",
    "cli",
    "`vopd train opd rollout.n` (override without a value) / `rollout.nn=2` (unknown key)",
    "exit 2: error quoting the override / naming the key",
)
def _(ctx: Ctx) -> None:
    code, out = _cli(ctx, ["train", "opd", "rollout.n", "--print-config"])
    assert code == 2 and "key=value" in out
    code, out = _cli(ctx, ["train", "opd", "rollout.nn=2", "--print-config"])
    assert code == 2 and "rollout.nn" in out


@case(
    "CLI-06",
    "cli",
    "`vopd data check /nonexistent.json`",
    "exit 1: error naming the path [unreadable]",
)
def _(ctx: Ctx) -> None:
    path = ctx.tmp_path / "nonexistent.json"
    code, out = _cli(ctx, ["data", "check", str(path)])
    assert code == 1 and str(path) in out and "[unreadable]" in out


@case(
    "CLI-07",
    "cli",
    "`vopd data check` on a bad file, strict then --lenient",
    "exit 1 both: strict prints file:line [reason]; lenient prints the counted skips",
)
def _(ctx: Ctx) -> None:
    path = BAD / "start_ge_end.txt"
    code, out = _cli(ctx, ["data", "check", str(path)])
    assert code == 1 and f"{path}:2:" in out and "[empty_span]" in out
    code, out = _cli(ctx, ["data", "check", str(path), "--lenient"])
    assert code == 1 and "skipped:   2" in out and "empty_span: 2" in out


@case(
    "CLI-08",
    "cli",
    "`vopd data check --format csv FILE` (unknown format name)",
    "exit 1: error naming the format and the known ones",
)
def _(ctx: Ctx) -> None:
    code, out = _cli(ctx, ["data", "check", "--format", "csv", str(BAD / "missing_field.json")])
    assert code == 1 and "unknown format 'csv'" in out and "timelens_bench" in out


@case(
    "CLI-09",
    "cli",
    "`vopd score --predictions /nonexistent.jsonl`",
    "exit 1: error naming the prediction file",
)
def _(ctx: Ctx) -> None:
    preds = ctx.tmp_path / "nonexistent.jsonl"
    argv = ["score", "--annotations", str(BAD / "missing_field.jsonl"), "--predictions", str(preds)]
    code, out = _cli(ctx, argv)
    assert code == 1 and str(preds) in out


@case(
    "CLI-10",
    "cli",
    "`vopd eval --model /nonexistent` with a valid --data",
    "exit 1: error naming the model directory (was: a vLLM / hub traceback)",
)
def _(ctx: Ctx) -> None:
    data = ctx.tmp_path / "val.json"
    data.write_text('{"v": {"duration": 9.0, "spans": [[1, 2]], "queries": ["q"]}}')
    model = ctx.tmp_path / "no_model"
    code, out = _cli(ctx, ["eval", "--model", str(model), "--data", str(data)])
    assert code == 1 and f"--model {model}: no such model directory" in out


@case("CLI-11", "cli", "`vopd eval --batch-size 0`", "exit 2: error naming --batch-size")
def _(ctx: Ctx) -> None:
    code, out = _cli(ctx, ["eval", "--model", "m", "--data", "d", "--batch-size", "0"])
    assert code == 2 and "--batch-size" in out


@case("CLI-12", "cli", "`vopd models info /nonexistent`", "exit 1: error naming DIR/config.json")
def _(ctx: Ctx) -> None:
    code, out = _cli(ctx, ["models", "info", str(ctx.tmp_path / "nope")])
    assert code == 1 and str(ctx.tmp_path / "nope" / "config.json") in out


@case(
    "CLI-13",
    "cli",
    "`vopd teacher-server --model /nonexistent`",
    "exit 1: error naming the model directory (was: a transformers traceback)",
)
def _(ctx: Ctx) -> None:
    model = ctx.tmp_path / "no_teacher"
    code, out = _cli(ctx, ["teacher-server", "--model", str(model)])
    assert code == 1 and f"--model {model}: no such model directory" in out


@case(
    "CLI-14",
    "cli",
    "`vopd teacher-server --port 70000` / `--max-concurrency 0` / `--max-body-mb 0`",
    "exit 1: error naming the argument, before any model is loaded (was: OverflowError / a "
    "server that answers 429 to everything)",
)
def _(ctx: Ctx) -> None:
    for args, needle in (
        (["--port", "70000"], "--port"),
        (["--max-concurrency", "0"], "--max-concurrency"),
        (["--max-body-mb", "0"], "--max-body-mb"),
    ):
        code, out = _cli(ctx, ["teacher-server", "--model", str(ctx.tmp_path), *args])
        assert code == 1 and needle in out, (args, out)


@case(
    "CLI-15",
    "cli",
    "`vopd teacher-server --host 0.0.0.0` without a token in the environment",
    "exit 1: refusing to bind without a bearer token",
)
def _(ctx: Ctx) -> None:
    ctx.monkeypatch.delenv("VOPD_TEACHER_TOKEN", raising=False)
    code, out = _cli(ctx, ["teacher-server", "--model", str(ctx.tmp_path), "--host", "0.0.0.0"])
    assert code == 1 and "refusing to bind" in out


@case(
    "CLI-16",
    "cli",
    "`vopd synth --n-train -1`",
    "exit 2: error naming the sample counts",
)
def _(ctx: Ctx) -> None:
    argv = ["synth", "--out", str(ctx.tmp_path / "s"), "--n-train", "-1"]
    code, out = _cli(ctx, [*argv, "--n-val", "1", "--n-test", "1"])
    assert code == 2 and "sample counts" in out


@case(
    "CLI-17",
    "cli",
    "`vopd curriculum build --config opd curriculum.kind=tvdf data.train=/nonexistent.json`",
    "exit 1: error naming the data file, before Ray starts",
)
def _(ctx: Ctx) -> None:
    data = ctx.tmp_path / "nonexistent.json"
    argv = ["curriculum", "build", "--config", "opd", "curriculum.kind=tvdf", f"data.train={data}"]
    code, out = _cli(ctx, argv)
    assert code == 1 and str(data) in out and "[unreadable]" in out


# ====================================================================== teacher service
def _score(ctx: Ctx, body: bytes, content_type: str = "application/json", **kw: Any) -> Any:
    return post(ctx.stub_server, body, content_type, **kw)


def _item(ctx: Ctx, **changes: Any) -> dict[str, Any]:
    item = valid_item(ctx.stub_scorer)
    item.update(changes)
    return item


def _expect(status: int, reply: Any, code: int, *needles: str) -> None:
    assert status == code, (status, reply)
    assert isinstance(reply, dict) and reply.get("error"), reply
    assert all(n in reply["error"] for n in needles), reply["error"]


@case(
    "TS-01",
    "teacher service",
    "well-formed JSON and safetensors requests (control)",
    "200 with one result per item",
)
def _(ctx: Ctx) -> None:
    status, reply = _score(ctx, json_body([_item(ctx)]))
    assert status == 200 and len(reply["results"]) == 1
    clip = ctx.video_root / "clip.mp4"
    status, reply = _score(ctx, frames_body(ctx.stub_scorer, clip), "application/x-safetensors")
    assert status == 200 and len(reply["results"][0]["logprobs"]) > 0


@case("TS-02", "teacher service", "body that is not JSON", "400: body is not valid JSON")
def _(ctx: Ctx) -> None:
    _expect(*_score(ctx, b"{not json"), 400, "not valid JSON")


@case("TS-03", "teacher service", "JSON body that is a list", "400: expected a JSON object")
def _(ctx: Ctx) -> None:
    _expect(*_score(ctx, b"[1, 2]"), 400, "expected a JSON object")


@case(
    "TS-04",
    "teacher service",
    "completion_ids given as a string",
    "400 naming items[0].completion_ids",
)
def _(ctx: Ctx) -> None:
    _expect(*_score(ctx, json_body([_item(ctx, completion_ids="1 2 3")])), 400, "completion_ids")


@case("TS-05", "teacher service", "item without a query", "400 naming the missing field 'query'")
def _(ctx: Ctx) -> None:
    item = _item(ctx)
    del item["query"]
    _expect(*_score(ctx, json_body([item])), 400, "items[0]", "'query'")


@case(
    "TS-06",
    "teacher service",
    "integer literal of 5,000 digits (in an item) or of 400 digits (temperature)",
    "400: integer out of range (was: 500 from a bare ValueError / OverflowError)",
)
def _(ctx: Ctx) -> None:
    body = json_body([_item(ctx)]).replace(
        b'"num_prompt_tokens": 0', b'"num_prompt_tokens": ' + b"7" * 5000
    )
    _expect(*_score(ctx, body), 400, "digits")
    body = json_body([_item(ctx)]).replace(
        b'{"version": 1', b'{"version": 1, "temperature": ' + b"9" * 400
    )
    _expect(*_score(ctx, body), 400, "digits")


@case("TS-07", "teacher service", "JSON nested 100,000 deep", "400: nested too deeply")
def _(ctx: Ctx) -> None:
    _expect(*_score(ctx, b"[" * 100_000 + b"]" * 100_000), 400, "nested too deeply")


@case(
    "TS-08",
    "teacher service",
    "Content-Length above the body limit (headers only)",
    "413 from Content-Length, before any byte of the body is read",
)
def _(ctx: Ctx) -> None:
    head = (
        f"POST /score HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {MAX_BODY + 1}\r\n\r\n"
    )
    status, reply = raw_request(ctx.stub_server, head.encode())
    _expect(status, reply_json(reply), 413, "exceeds")


@case(
    "TS-09",
    "teacher service",
    "POST without Content-Length, or with Transfer-Encoding: chunked",
    "411: a Content-Length header is required",
)
def _(ctx: Ctx) -> None:
    for extra in ("", "Transfer-Encoding: chunked\r\n"):
        head = f"POST /score HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n{extra}\r\n"
        status, reply = raw_request(ctx.stub_server, head.encode() + b"0\r\n\r\n")
        _expect(status, reply_json(reply), 411, "Content-Length")


@case(
    "TS-10",
    "teacher service",
    "Content-Length negative, non-numeric, or larger than the body sent",
    "400: bad Content-Length / body shorter than Content-Length",
)
def _(ctx: Ctx) -> None:
    for length, body, needle in (
        ("-5", b"", "bad Content-Length"),
        ("12abc", b"", "bad"),
        ("50", b"{}", "shorter"),
    ):
        head = (
            f"POST /score HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
        )
        status, reply = raw_request(ctx.stub_server, head.encode() + body)
        _expect(status, reply_json(reply), 400, needle)


@case(
    "TS-11",
    "teacher service",
    "missing, wrong, truncated or non-Bearer token on /score and /info",
    "401: missing or wrong bearer token",
)
def _(ctx: Ctx) -> None:
    body = json_body([_item(ctx)])
    for token in (None, "", "wrong", TOKEN[:-1], TOKEN + "x"):
        _expect(*_score(ctx, body, token=token), 401, "token")
    _expect(
        *_score(ctx, body, token=None, headers={"Authorization": f"Basic {TOKEN}"}), 401, "token"
    )
    _expect(*get(ctx.stub_server, "/info", "wrong"), 401, "token")


@case(
    "TS-12",
    "teacher service",
    "unknown route (GET /admin, POST /score/../info)",
    "404 naming the path",
)
def _(ctx: Ctx) -> None:
    _expect(*get(ctx.stub_server, "/admin", TOKEN), 404, "/admin")
    _expect(*_score(ctx, b"{}", path="/score/../info"), 404, "/score/../info")


@case(
    "TS-13",
    "teacher service",
    "wrong or unknown method (GET /score, DELETE, HEAD, FOO)",
    "405 (was: 501 for HEAD and unknown methods)",
)
def _(ctx: Ctx) -> None:
    _expect(*get(ctx.stub_server, "/score", TOKEN), 405, "POST")
    for method in ("DELETE", "FOO"):
        status, reply = raw_request(
            ctx.stub_server, f"{method} /score HTTP/1.1\r\nHost: x\r\n\r\n".encode()
        )
        _expect(status, reply_json(reply), 405, method)
    status, _ = raw_request(ctx.stub_server, b"HEAD /health HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status == 405


@case(
    "TS-14",
    "teacher service",
    "request line with HTTP/2.0, a bad version, or no version structure",
    "400 with a status line and a JSON reason (was: 505, or a bare HTML body without a status "
    "line)",
)
def _(ctx: Ctx) -> None:
    for line in (b"GET /health HTTP/2.0", b"GET /health FOO/1", b"GARBAGE"):
        status, reply = raw_request(ctx.stub_server, line + b"\r\nHost: x\r\n\r\n")
        _expect(status, reply_json(reply), 400, "")


@case(
    "TS-15",
    "teacher service",
    "completion token ids outside the vocabulary",
    "422 naming the sample and the ids",
)
def _(ctx: Ctx) -> None:
    _expect(
        *_score(ctx, json_body([_item(ctx, completion_ids=[5, 10**6])])),
        422,
        "'s0'",
        "outside the vocabulary",
    )


@case("TS-16", "teacher service", "negative token ids", "400: token ids must be in [0, 2**31)")
def _(ctx: Ctx) -> None:
    _expect(*_score(ctx, json_body([_item(ctx, completion_ids=[5, -1])])), 400, "completion_ids")


@case(
    "TS-17",
    "teacher service",
    "a vision placeholder id in the completion",
    "422: completion holds vision placeholder ids",
)
def _(ctx: Ctx) -> None:
    banned = ctx.stub_scorer.banned_ids[0]
    _expect(
        *_score(ctx, json_body([_item(ctx, completion_ids=[5, banned])])), 422, "vision placeholder"
    )


@case(
    "TS-18",
    "teacher service",
    "student prompt_ids that differ from the teacher's tokenisation",
    "422: the teacher tokenises the prompt differently (first difference named)",
)
def _(ctx: Ctx) -> None:
    item = _item(ctx)
    item["prompt_ids"] = [*item["prompt_ids"][:3], 7, *item["prompt_ids"][4:]]
    _expect(*_score(ctx, json_body([item])), 422, "tokenises the prompt differently", "position 3")


@case(
    "TS-19",
    "teacher service",
    "negative num_prompt_tokens; num_prompt_tokens past the context",
    "400 naming num_prompt_tokens; 422: exceed the teacher's context length",
)
def _(ctx: Ctx) -> None:
    _expect(*_score(ctx, json_body([_item(ctx, num_prompt_tokens=-3)])), 400, "num_prompt_tokens")
    _expect(*_score(ctx, json_body([_item(ctx, num_prompt_tokens=10**6)])), 422, "context length")


@case(
    "TS-20",
    "teacher service",
    "no items; 4,097 items (limit 4,096)",
    "400: need 1 to 4096 items",
)
def _(ctx: Ctx) -> None:
    _expect(*_score(ctx, json_body([])), 400, "need 1 to 4096 items")
    _expect(*_score(ctx, json_body([{}] * 4097)), 400, "need 1 to 4096 items")


@case(
    "TS-21",
    "teacher service",
    "unsupported Content-Type (text/plain), other API version, other temperature / top_k",
    "400 naming the content type / version / setting",
)
def _(ctx: Ctx) -> None:
    body = json_body([_item(ctx)])
    _expect(*_score(ctx, body, "text/plain"), 400, "unsupported content type")
    _expect(*_score(ctx, body.replace(b'"version": 1', b'"version": 2')), 400, "API version")
    _expect(*_score(ctx, json_body([_item(ctx)], temperature=0.5)), 400, "temperature")
    _expect(*_score(ctx, json_body([_item(ctx)], top_k=9)), 400, "top_k")


@case(
    "TS-22",
    "teacher service",
    "video path escaping the video root (../, absolute path)",
    "400: outside the server's video root",
)
def _(ctx: Ctx) -> None:
    for video in ("../clip.mp4", "/etc/passwd"):
        _expect(
            *_score(ctx, json_body([_item(ctx, video=video)])),
            400,
            "outside the server's video root",
        )


@case(
    "TS-23",
    "teacher service",
    "JSON request naming a missing / truncated / empty video under the root",
    "422: cannot decode video, naming the file",
)
def _(ctx: Ctx) -> None:
    for name in ("absent.mp4", "truncated.mp4", "empty.mp4"):
        _expect(*_score(ctx, json_body([_item(ctx, video=name)])), 422, name)


@case(
    "TS-24",
    "teacher service",
    "JSON request naming a video when the server has no --video-root",
    "400: this server does not read video files",
)
def _(ctx: Ctx) -> None:
    from teacher_server.http_server import TeacherService

    service = TeacherService(ctx.stub_scorer)
    status, body = service.score(json_body([_item(ctx)]), "application/json")
    _expect(status, json.loads(body), 400, "does not read video files")


@case(
    "TS-25",
    "teacher service",
    "JSON request whose video_settings ask for 10^9-pixel frames (a decode memory bomb)",
    "400 naming video_settings, nothing decoded (was: accepted and decoded)",
)
def _(ctx: Ctx) -> None:
    settings = {**SETTINGS.to_dict(), "min_pixels": 10**9, "max_pixels": 10**9}
    calls = ctx.stub_scorer.calls
    _expect(
        *_score(ctx, json_body([_item(ctx, video_settings=settings)])),
        400,
        "video_settings",
        "decoded pixels",
    )
    assert ctx.stub_scorer.calls == calls


@case(
    "TS-26",
    "teacher service",
    "unknown or ill-typed video_settings fields",
    "400 naming video_settings and the field",
)
def _(ctx: Ctx) -> None:
    bad = {**SETTINGS.to_dict(), "colour": 1}
    _expect(
        *_score(ctx, json_body([_item(ctx, video_settings=bad)])), 400, "unknown fields ['colour']"
    )
    bad = {**SETTINGS.to_dict(), "fps": "fast"}
    _expect(*_score(ctx, json_body([_item(ctx, video_settings=bad)])), 400, "video_settings.fps")


@case(
    "TS-27",
    "teacher service",
    "safetensors body: shorter than 8 bytes; header size past the end; header not JSON",
    "400: safetensors body too short / header size out of range / header is not valid JSON",
)
def _(ctx: Ctx) -> None:
    kind = "application/x-safetensors"
    _expect(*_score(ctx, b"\x01\x02", kind), 400, "too short")
    _expect(*_score(ctx, (10**6).to_bytes(8, "little") + b"{}", kind), 400, "out of range")
    _expect(*_score(ctx, (4).to_bytes(8, "little") + b"{{{{", kind), 400, "not valid JSON")


@case(
    "TS-28",
    "teacher service",
    "safetensors tensor that is not uint8 frames (F32, other name)",
    "400: only uint8 'frames.<j>' tensors",
)
def _(ctx: Ctx) -> None:
    from safetensors.numpy import save

    body = frames_body(ctx.stub_scorer, ctx.video_root / "clip.mp4")
    request = json.dumps(request_of_frames_body(body))
    for tensors in (
        {"frames.0": np.zeros((2, 32, 32, 3), np.float32)},
        {"weights": np.zeros(3, np.uint8)},
    ):
        status, reply = _score(
            ctx, save(tensors, metadata={"request": request}), "application/x-safetensors"
        )
        _expect(status, reply, 400, "only uint8")


@case(
    "TS-29",
    "teacher service",
    "shipped frames of an odd count, or a size off the size factor",
    "400 naming the frames and the rule",
)
def _(ctx: Ctx) -> None:
    from safetensors.numpy import save

    body = frames_body(ctx.stub_scorer, ctx.video_root / "clip.mp4")
    request = json.dumps(request_of_frames_body(body))
    for shape, needle in (((3, 64, 64, 3), "even count"), ((2, 40, 40, 3), "multiple of")):
        tensors = {"frames.0": np.zeros(shape, np.uint8)}
        status, reply = _score(
            ctx, save(tensors, metadata={"request": request}), "application/x-safetensors"
        )
        _expect(status, reply, 400, needle)


@case(
    "TS-30",
    "teacher service",
    "frame metadata: indices out of range, fps 0, do_sample_frames true, unknown frames index",
    "400 naming the metadata field",
)
def _(ctx: Ctx) -> None:
    clip = ctx.video_root / "clip.mp4"
    body = frames_body(ctx.stub_scorer, clip)
    meta = request_of_frames_body(body)["items"][0]["metadata"]
    for change, needle in (
        (
            {"metadata": {**meta, "frames_indices": [99] * len(meta["frames_indices"])}},
            "frames_indices",
        ),
        ({"metadata": {**meta, "fps": 0}}, "bad fps"),
        ({"metadata": {**meta, "do_sample_frames": True}}, "do_sample_frames"),
        ({"frames": 7}, "items[0].frames"),
    ):
        request = request_of_frames_body(body)
        request["items"][0].update(change)
        status, reply = _score(
            ctx, replace_frames_request(body, request), "application/x-safetensors"
        )
        _expect(status, reply, 400, needle)


@case(
    "TS-31",
    "teacher service",
    "JSON request whose video path holds a NUL character",
    "400 naming items[0].video (was: 500 from os.path.realpath's ValueError)",
)
def _(ctx: Ctx) -> None:
    _expect(*_score(ctx, json_body([_item(ctx, video="clip\x00.mp4")])), 400, "items[0].video")


@case(
    "TS-32",
    "teacher service",
    "a third request while max_concurrency=2 requests are in progress",
    "429: busy, before its body is read; the two in progress finish with 200",
)
def _(ctx: Ctx) -> None:
    server, gate = ctx.gated_server
    body = json_body([_item(ctx)])
    results: list[int] = []
    threads = [
        threading.Thread(target=lambda: results.append(post(server, body)[0])) for _ in range(2)
    ]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 20
    while server.service._slots._value > 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    head = (
        f"POST /score HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    status, reply = raw_request(server, head.encode())  # headers only: no body is needed
    _expect(status, reply_json(reply), 429, "busy")
    gate.set()
    for t in threads:
        t.join(timeout=30)
    assert results == [200, 200]
    assert server.service.scorer.max_active == 1  # one request scores at a time on the engine
    while server.service._slots._value < 2 and time.monotonic() < deadline:
        time.sleep(0.01)  # a handler gives its slot back just after its reply
    assert post(server, body)[0] == 200


@case(
    "TS-33",
    "teacher service",
    "frames whose video tokens push prompt + completion past the teacher's context (vLLM "
    "backend; the engine, stubbed here, raises vLLM's own VLLMValidationError)",
    "422 naming the samples and the engine's reason (was: 500, the error escaped); with the "
    "real engine: tests/teacher_server/test_http.py::test_video_tokens_past_the_context_get_422",
)
def _(ctx: Ctx) -> None:
    from vllm.exceptions import VLLMValidationError

    from teacher_server.backend_vllm import VLLMScorer
    from teacher_server.http_server import TeacherService

    class RefusingEngine:
        """What vLLM's LLM.generate does with a prompt longer than max_model_len."""

        def generate(self, prompts: list, params: Any, use_tqdm: bool = False) -> list:
            raise VLLMValidationError(
                "The decoder prompt (length 9000) is longer than the maximum model length of 512."
            )

    stub = ctx.stub_scorer
    scorer = object.__new__(VLLMScorer)  # no engine start: the checks and the error path only
    names = ("config", "processor", "model_config", "tokenizer", "banned_ids", "frame_cache")
    scorer.__dict__.update({name: getattr(stub, name) for name in names}, _prompt_cache={})
    scorer.llm = RefusingEngine()
    scorer.info = stub.info
    status, body = TeacherService(scorer).score(
        frames_body(stub, ctx.video_root / "clip.mp4"), "application/x-safetensors"
    )
    _expect(status, json.loads(body), 422, "['s0']", "maximum model length")


# ====================================================================== the tests
@pytest.mark.parametrize("case_id", list(CASES))
def test_bad_input(case_id: str, request: pytest.FixtureRequest) -> None:
    """Run one corpus case."""
    CASES[case_id].check(Ctx(request))


def test_corpus_size_and_categories() -> None:
    """At least 30 cases, and every category represented."""
    assert len(CASES) >= 30
    assert {c.category for c in CASES.values()} == set(CATEGORIES)


def markdown_rows() -> list[str]:
    """The docs table rows: | id | category | input | outcome | test |."""
    rows = []
    for c in CASES.values():
        cells = [c.id, c.category, c.input, c.outcome, f"`test_bad_input[{c.id}]`"]
        rows.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return rows


def test_docs_table_lists_every_case() -> None:
    """docs/RELIABILITY.md lists every case id in its table and states the right total."""
    text = DOC.read_text(encoding="utf-8")
    listed = re.findall(r"^\| ([A-Z]+-\d+) \|", text, flags=re.MULTILINE)
    assert sorted(listed) == sorted(CASES), (
        f"missing from the doc: {sorted(set(CASES) - set(listed))}; "
        f"not in the corpus: {sorted(set(listed) - set(CASES))}"
    )
    total = re.search(r"Bad-input cases: \*\*(\d+)\*\*", text)
    assert total and int(total.group(1)) == len(CASES)
    for category in CATEGORIES:
        count = sum(c.category == category for c in CASES.values())
        assert f"{category}: {count}" in text, f"per-category count of {category!r}"


if __name__ == "__main__":
    print("\n".join(markdown_rows()))

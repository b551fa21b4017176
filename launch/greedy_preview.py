"""The interim main job: tiny models + synthetic videos -> vLLM greedy decoding -> parsed spans.

Until the OPD training loop lands, `make demo` runs the most complete real path that exists:
build the tiny Qwen3-VL student and teacher, generate a synthetic test split (real mp4 files),
decode each video through the task layer's single vision-input function, run vLLM (CPU build)
greedy decoding with both models, parse the answers and score them against the ground truth and
the split's blind floor. The models are untrained (random initialisation), so their spans are
expected to be wrong or unparseable: the report says so rather than dressing them up.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm


@dataclass(frozen=True)
class PreviewSettings:
    """What the preview builds and decodes."""

    out_dir: Path = Path("artifacts/demo")
    n_videos: int = 8
    seed: int = 0
    family: str = "qwen3_vl"
    max_new_tokens: int = 32


def _write_json_atomic(path: Path, payload: dict) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2))
    os.replace(tmp, path)


def run_greedy_preview(settings: PreviewSettings) -> dict:
    """Run the preview end to end; return (and write to out_dir/report.json) its results."""
    from rollout.vllm_env import apply_vllm_cpu_defaults

    apply_vllm_cpu_defaults()
    from transformers import AutoTokenizer
    from vllm import LLM, SamplingParams

    from launch.tiny_models import build_tiny_models
    from rollout.prompting import prompt_text, vision_placeholder_ids
    from tvg.formats import read_samples
    from tvg.metrics import grounding_metrics
    from tvg.parsing import parse_span
    from tvg.rewards import temporal_iou
    from tvg.synth import write_dataset
    from tvg.video import VideoSettings, build_vision_inputs

    out = settings.out_dir
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    print(f"[demo] building tiny {settings.family} models in {out / 'models'}")
    models = build_tiny_models(out / "models", families=(settings.family,), seed=settings.seed)
    data_dir = out / "data"
    print(f"[demo] generating {settings.n_videos} synthetic test videos in {data_dir}")
    stats = write_dataset(
        data_dir, n_train=64, n_val=0, n_test=settings.n_videos, seed=settings.seed, level=1
    )
    samples = read_samples(data_dir / "test.json", video_root=data_dir / "videos")
    video_settings = VideoSettings(fps=1.0, max_frames=64)
    inputs = [
        build_vision_inputs(s.video, video_settings)
        for s in tqdm(samples, desc="decode videos", unit="video")
    ]

    report: dict = {
        "what": "vLLM greedy decoding with UNTRAINED tiny models (pipeline check, not a result)",
        "n_videos": len(samples),
        "blind_floor_mIoU": stats["splits"]["test"]["blind_floor_miou"],
        "models": {},
    }
    for role in ("student", "teacher"):
        name = f"{settings.family}-{role}"
        model_dir = str(models[name])
        tokenizer = AutoTokenizer.from_pretrained(model_dir)
        banned = set(vision_placeholder_ids(tokenizer))
        allowed = [i for i in range(len(tokenizer)) if i not in banned]
        llm = LLM(
            model=model_dir,
            dtype="float32",
            max_model_len=2048,
            seed=settings.seed,
            enforce_eager=True,
            limit_mm_per_prompt={"video": 1, "image": 0},
        )
        prompts = [
            {
                "prompt": prompt_text(tokenizer, s.query, "timelens"),
                "multi_modal_data": vi.vllm_mm_data(),
            }
            for s, vi in zip(samples, inputs, strict=True)
        ]
        params = SamplingParams(
            temperature=0.0, max_tokens=settings.max_new_tokens, allowed_token_ids=allowed
        )
        outputs = llm.generate(prompts, params, use_tqdm=True)
        rows, ious, parsed = [], [], []
        for sample, output in zip(samples, outputs, strict=True):
            text = output.outputs[0].text
            span = parse_span(text)
            iou = temporal_iou(span, sample.spans[0]) if span else 0.0
            ious.append(iou)
            parsed.append(span is not None)
            rows.append(
                {
                    "id": sample.id,
                    "gt": list(sample.spans[0]),
                    "answer": text,
                    "span": list(span) if span else None,
                    "iou": iou,
                }
            )
        report["models"][name] = {"metrics": grounding_metrics(ious, parsed), "samples": rows}
        del llm
    report["seconds"] = round(time.perf_counter() - t0, 1)
    _write_json_atomic(out / "report.json", report)
    return report


def print_report(report: dict, report_path: Path) -> None:
    """Print the preview's per-sample answers and its metric table."""
    print()
    print(report["what"])
    for name, result in report["models"].items():
        print(f"\n{name}:")
        for row in result["samples"][:4]:
            span = row["span"] and [round(x, 1) for x in row["span"]]
            print(f"  gt {row['gt']}  parsed {span}  answer {row['answer'][:60]!r}")
    print(
        f"\n{'model':24s} {'parse%':>7s} {'mIoU':>6s} {'R1@0.3':>7s} {'R1@0.5':>7s} {'R1@0.7':>7s}"
    )
    for name, result in report["models"].items():
        m = result["metrics"]
        print(
            f"{name:24s} {m['parse_rate']:7.1f} {m['mIoU']:6.1f} {m['R1@0.3']:7.1f} "
            f"{m['R1@0.5']:7.1f} {m['R1@0.7']:7.1f}"
        )
    print(f"{'blind floor (duration only)':24s} {'':7s} {report['blind_floor_mIoU']:6.1f}")
    print(f"\nreport: {report_path}  ({report['seconds']} s)")

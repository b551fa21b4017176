"""`vopd models build|pad|info`: build the tiny local models, pad a model's vocabulary, or describe
a model directory."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from launch.tiny_models.configs import SIZES

DEFAULT_OUT = "artifacts/models"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `models` sub-command."""
    parser = subparsers.add_parser(
        "models",
        help="build the tiny local Qwen-VL models (no hub) or describe a model directory",
        description="Build tiny Qwen3-VL / Qwen2.5-VL models from configs, sharing one tokenizer.",
    )
    actions = parser.add_subparsers(dest="models_action", metavar="ACTION", required=True)
    build = actions.add_parser("build", help="build student and teacher model directories")
    build.add_argument(
        "--out", default=DEFAULT_OUT, help=f"output directory (default {DEFAULT_OUT})"
    )
    build.add_argument(
        "--family",
        action="append",
        choices=("qwen3_vl", "qwen2_5_vl"),
        help="model family; repeat for several (default: both)",
    )
    build.add_argument(
        "--size",
        action="append",
        choices=tuple(SIZES),
        help="size preset; repeat for several (default: student and teacher)",
    )
    build.add_argument("--seed", type=int, default=0, help="initialisation seed (default 0)")
    build.add_argument(
        "--vocab-size",
        type=int,
        default=None,
        metavar="N",
        help="embedding / LM-head rows (default: the tokenizer's length); e.g. 151936, "
        "Qwen2.5-VL / Qwen3-VL's, pads them with unused ids while the tokenizer stays small",
    )
    build.add_argument("--overwrite", action="store_true", help="rebuild existing directories")
    build.set_defaults(func=_build)
    pad = actions.add_parser(
        "pad",
        help="copy a model (a trained checkpoint too) with its embedding / LM head padded",
        description="Copy MODEL_DIR to --out with the embedding and LM head grown to "
        "--vocab-size rows (the new rows zero and unused; the tokenizer unchanged), as Qwen's "
        "checkpoints pad theirs to 151936.",
    )
    pad.add_argument("model_dir", help="a model directory")
    pad.add_argument("--out", required=True, help="the padded copy's directory (must not exist)")
    pad.add_argument("--vocab-size", type=int, required=True, metavar="N", help="rows, e.g. 151936")
    pad.set_defaults(func=_pad)
    info = actions.add_parser("info", help="print a model directory's family, sizes and params")
    info.add_argument("model_dir", help="a model directory")
    info.set_defaults(func=_info)


def _build(args: argparse.Namespace) -> int:
    from launch.tiny_models import build_tiny_models
    from launch.tiny_models.build import count_parameters

    families = tuple(args.family or ("qwen3_vl", "qwen2_5_vl"))
    sizes = tuple(args.size or ("student", "teacher"))
    try:
        built = build_tiny_models(
            args.out,
            families=families,
            sizes=sizes,
            seed=args.seed,
            overwrite=args.overwrite,
            vocab_size=args.vocab_size,
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for name, path in built.items():
        print(f"{name:24s} {count_parameters(path):>10,d} params  {path}")
    return 0


def _pad(args: argparse.Namespace) -> int:
    from launch.tiny_models.build import count_parameters, pad_model

    try:
        path = pad_model(args.model_dir, args.out, args.vocab_size)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{path}  {count_parameters(path):,d} params")
    return 0


def _info(args: argparse.Namespace) -> int:
    from launch.tiny_models.build import count_parameters

    path = Path(args.model_dir)
    config_file = path / "config.json"
    if not config_file.is_file():
        print(f"error: {config_file} not found: not a model directory")
        return 1
    config = json.loads(config_file.read_text())
    text = config.get("text_config", {})
    print(f"model_type      {config.get('model_type')}")
    print(f"parameters      {count_parameters(path):,d}")
    print(
        f"text            hidden {text.get('hidden_size')} x {text.get('num_hidden_layers')} layers"
    )
    print(f"vocab           {_vocab_line(path, text.get('vocab_size'))}")
    build_file = path / "vopd_build.json"
    if build_file.is_file():
        print(f"built from      {build_file.read_text().strip()}")
    return 0


def _vocab_line(path: Path, vocab_size: int | None) -> str:
    """config.vocab_size, with the tokenizer's length and the unused padding ids if they differ."""
    try:
        from transformers import AutoTokenizer

        tokens = len(AutoTokenizer.from_pretrained(path))
    except (OSError, ValueError):  # no (loadable) tokenizer in the directory
        return str(vocab_size)
    if vocab_size is None or vocab_size == tokens:
        return f"{vocab_size} (= tokenizer)"
    if vocab_size < tokens:
        return f"{vocab_size} (tokenizer {tokens}: larger than the embedding)"
    return f"{vocab_size} (tokenizer {tokens}; {vocab_size - tokens} unused padding ids)"

"""Build tiny models into ordinary Hugging Face directories, deterministically by seed."""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from launch.tiny_models.configs import FAMILIES, SIZES, qwen2_5_vl_config, qwen3_vl_config
from launch.tiny_models.processor import build_processor
from launch.tiny_models.tokenizer import SPECIAL_TOKENS, build_tokenizer

MANIFEST = "vopd_build.json"
BUILDER_VERSION = 1


@dataclass(frozen=True)
class ModelSpec:
    """Which tiny model to build: family, size preset, seed and embedding rows.

    vocab_size: rows of the embedding and the LM head (config.vocab_size); None = the shared
    tokenizer's length. A larger value pads them as Qwen's own checkpoints do (151,936 rows for
    Qwen2.5-VL / Qwen3-VL): the ids past the tokenizer are unused, their rows are zero, and the
    rollout / scoring code masks them like the vision placeholders. The tokenizer is unchanged.
    """

    family: str = "qwen3_vl"
    size: str = "student"
    seed: int = 0
    vocab_size: int | None = None

    @property
    def name(self) -> str:
        """Directory name of the model, e.g. "qwen3_vl-student"."""
        return f"{self.family}-{self.size}"

    def validate(self) -> None:
        """Raise ValueError naming the bad field when the spec is unknown."""
        if self.family not in FAMILIES:
            raise ValueError(f"unknown model family {self.family!r}; expected one of {FAMILIES}")
        if self.size not in SIZES:
            raise ValueError(f"unknown model size {self.size!r}; expected one of {tuple(SIZES)}")
        if self.vocab_size is not None and (
            isinstance(self.vocab_size, bool) or not isinstance(self.vocab_size, int)
        ):
            raise ValueError(f"vocab_size must be an integer, got {self.vocab_size!r}")


def check_vocab_size(vocab_size: int | None, tokenizer_size: int) -> int:
    """The number of embedding rows to build: vocab_size, or tokenizer_size when None.

    Raises ValueError naming both numbers when vocab_size is smaller than the tokenizer (its ids
    would index past the embedding).
    """
    if vocab_size is None:
        return tokenizer_size
    if vocab_size < tokenizer_size:
        raise ValueError(
            f"vocab_size {vocab_size} is smaller than the tokenizer's {tokenizer_size} tokens; "
            f"it must be at least {tokenizer_size} (e.g. 151936, Qwen2.5-VL / Qwen3-VL's)"
        )
    return vocab_size


def _manifest_for(spec: ModelSpec) -> dict:
    fields = asdict(spec)
    if spec.vocab_size is None:  # unpadded builds keep the manifest (and the cache) they had
        del fields["vocab_size"]
    return {
        "builder_version": BUILDER_VERSION,
        **fields,
        "size_preset": asdict(SIZES[spec.size]),
    }


def _is_built(path: Path, spec: ModelSpec) -> bool:
    try:
        return json.loads((path / MANIFEST).read_text()) == _manifest_for(spec)
    except (OSError, ValueError):
        return False


def _seed_for(spec: ModelSpec) -> int:
    """A per-model seed derived from the spec, so student and teacher get different weights."""
    digest = hashlib.sha256(f"{spec.seed}:{spec.family}:{spec.size}".encode()).hexdigest()
    return int(digest[:8], 16)


def build_tiny_model(out_dir: str | Path, spec: ModelSpec, overwrite: bool = False) -> Path:
    """Build one tiny model (tokenizer, processor, float32 weights) into out_dir/spec.name.

    The directory appears atomically (built elsewhere, then renamed), and an existing directory
    built from the same spec is reused unless `overwrite` is set. With `spec.vocab_size` above
    the tokenizer's length, the model is the unpadded model of the same seed with zero rows
    appended to its embedding and LM head (identical on every real token id).
    """
    import torch
    from transformers import AutoConfig, AutoModelForImageTextToText

    spec.validate()
    out_dir = Path(out_dir)
    target = out_dir / spec.name
    if target.exists() and not overwrite and _is_built(target, spec):
        return target

    tokenizer = build_tokenizer()
    rows = check_vocab_size(spec.vocab_size, len(tokenizer))
    out_dir.mkdir(parents=True, exist_ok=True)
    ids = {
        "bos": tokenizer.convert_tokens_to_ids("<|endoftext|>"),
        "eos": tokenizer.convert_tokens_to_ids("<|im_end|>"),
        "pad": tokenizer.convert_tokens_to_ids("<|endoftext|>"),
        "image": tokenizer.convert_tokens_to_ids("<|image_pad|>"),
        "video": tokenizer.convert_tokens_to_ids("<|video_pad|>"),
        "vision_start": tokenizer.convert_tokens_to_ids("<|vision_start|>"),
        "vision_end": tokenizer.convert_tokens_to_ids("<|vision_end|>"),
    }
    special_ids = tokenizer.convert_tokens_to_ids(list(SPECIAL_TOKENS))
    if len(set(special_ids)) != len(SPECIAL_TOKENS) or tokenizer.unk_token_id in special_ids:
        raise RuntimeError("tokenizer build lost a special token; check SPECIAL_TOKENS")
    make_config = qwen3_vl_config if spec.family == "qwen3_vl" else qwen2_5_vl_config
    config_dict = make_config(SIZES[spec.size], ids, vocab_size=len(tokenizer))
    model_type = config_dict.pop("model_type")
    config = AutoConfig.for_model(model_type, **config_dict)
    config.dtype = torch.float32

    torch.manual_seed(_seed_for(spec))
    model = AutoModelForImageTextToText.from_config(config, dtype=torch.float32)
    if rows > len(tokenizer):
        # Pad after the seeded init, so the real rows and every other weight equal the unpadded
        # model's.
        pad_embedding_rows(model, rows, len(tokenizer))
    model.generation_config.eos_token_id = ids["eos"]
    model.generation_config.pad_token_id = ids["pad"]
    model.generation_config.bos_token_id = ids["bos"]
    model.generation_config.do_sample = False

    tmp = Path(tempfile.mkdtemp(prefix=f".{spec.name}.", dir=out_dir))
    try:
        model.save_pretrained(tmp)
        build_processor(spec.family, tokenizer).save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / MANIFEST).write_text(json.dumps(_manifest_for(spec), indent=2))
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def pad_embedding_rows(model: Any, rows: int, tokens: int) -> None:
    """Grow `model`'s embedding and LM head to `rows` rows, the rows past the tokenizer's `tokens`
    ids set to zero (unused ids, masked wherever the project samples or scores); the real rows are
    unchanged. Also sets config.text_config.vocab_size."""
    import torch

    model.resize_token_embeddings(rows, mean_resizing=False)
    with torch.no_grad():
        model.get_input_embeddings().weight[tokens:] = 0.0
        model.get_output_embeddings().weight[tokens:] = 0.0


def pad_model(model_dir: str | Path, out_dir: str | Path, vocab_size: int) -> Path:
    """Write a copy of the model in `model_dir` (a trained checkpoint included) whose embedding
    and LM head have `vocab_size` rows (`pad_embedding_rows`), to `out_dir`, atomically; the
    tokenizer, processor and every other file are copied unchanged. ValueError when `vocab_size`
    is below the tokenizer's length or `out_dir` exists."""
    import torch
    from transformers import AutoModelForImageTextToText, AutoTokenizer

    src, target = Path(model_dir), Path(out_dir)
    if not (src / "config.json").is_file():
        raise ValueError(f"{src}: not a model directory (no config.json)")
    if target.exists():
        raise ValueError(f"{target} exists; choose another --out")
    tokens = len(AutoTokenizer.from_pretrained(src))
    rows = check_vocab_size(vocab_size, tokens)
    model = AutoModelForImageTextToText.from_pretrained(src, dtype=torch.float32)
    if rows < model.get_input_embeddings().weight.shape[0]:
        raise ValueError(
            f"{src} already has {model.get_input_embeddings().weight.shape[0]} embedding rows, "
            f"more than {rows}"
        )
    pad_embedding_rows(model, rows, tokens)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        for item in src.iterdir():
            if (
                item.is_file()
                and not item.name.endswith(".safetensors")
                and item.name
                not in (
                    "model.safetensors.index.json",
                    "config.json",
                )
            ):
                shutil.copy2(item, tmp / item.name)
        model.save_pretrained(tmp)
        manifest_file = src / MANIFEST
        manifest = json.loads(manifest_file.read_text()) if manifest_file.is_file() else {}
        manifest.update({"vocab_size": rows, "padded_from": str(src)})
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2))
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def build_tiny_models(
    out_dir: str | Path,
    families: tuple[str, ...] = FAMILIES,
    sizes: tuple[str, ...] = ("student", "teacher"),
    seed: int = 0,
    overwrite: bool = False,
    vocab_size: int | None = None,
) -> dict[str, Path]:
    """Build every (family, size) pair into out_dir; return {"qwen3_vl-student": path, ...}.

    vocab_size: embedding / LM-head rows of every model (see `ModelSpec.vocab_size`).
    """
    built: dict[str, Path] = {}
    for family in families:
        for size in sizes:
            spec = ModelSpec(family=family, size=size, seed=seed, vocab_size=vocab_size)
            built[spec.name] = build_tiny_model(out_dir, spec, overwrite=overwrite)
    return built


def count_parameters(model_dir: str | Path, matmul_only: bool = False) -> int:
    """Return the number of parameters stored in a model directory's safetensors files.

    `matmul_only`: leave out the input embedding (a table lookup, no FLOPs per token) unless it
    is tied to the LM head (no separate lm_head tensor), for the FLOPs model's N.
    """
    from safetensors import safe_open

    sizes: dict[str, int] = {}
    for file in Path(model_dir).glob("*.safetensors"):
        with safe_open(str(file), framework="pt") as handle:
            for key in handle.keys():  # noqa: SIM118 (safe_open is not a dict)
                sizes[key] = math.prod(handle.get_slice(key).get_shape())
    if matmul_only and any(key.endswith("lm_head.weight") for key in sizes):
        sizes = {k: v for k, v in sizes.items() if not k.endswith("embed_tokens.weight")}
    return sum(sizes.values())


def count_head_parameters(model_dir: str | Path) -> int:
    """The LM head's parameters (its own tensor, else the input embedding it is tied to) in a
    model directory's safetensors files."""
    from safetensors import safe_open

    head = embedding = 0
    for file in Path(model_dir).glob("*.safetensors"):
        with safe_open(str(file), framework="pt") as handle:
            for key in handle.keys():  # noqa: SIM118 (safe_open is not a dict)
                size = math.prod(handle.get_slice(key).get_shape())
                if key.endswith("lm_head.weight"):
                    head += size
                elif key.endswith("language_model.embed_tokens.weight") or key.endswith(
                    "model.embed_tokens.weight"
                ):
                    embedding += size
    return head or embedding

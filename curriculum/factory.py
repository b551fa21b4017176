"""`build_sampler`: the sampler a run's curriculum settings ask for (uniform, TVDF, difficulty).

`config` is a `curriculum.config.CurriculumConfig` (the run configuration's `curriculum:`
section) or any object with its attributes. Uniform needs nothing else; TVDF and difficulty
sampling need an `OfflineScorer` (built here from the engines and the annotation file) and make
their first selection when the driver first calls `refresh`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from curriculum.base import Sampler
from curriculum.cache import PredictionCache, dataset_key
from curriculum.difficulty import DifficultySampler
from curriculum.predictions import PredictionSettings
from curriculum.refresh import RefreshingSampler, RefreshPolicy
from curriculum.rules import TVDFRule
from curriculum.scoring import OfflineScorer
from curriculum.tvdf import TVDFSampler
from curriculum.uniform import UniformSampler
from rollout.batch import PromptSpec
from rollout.engine_config import EngineConfig
from rollout.group import GroupConfig

SAMPLER_KINDS: tuple[str, ...] = ("uniform", "tvdf", "difficulty")


def tvdf_rule(config: Any) -> TVDFRule:
    """The TVDF rule of a curriculum config."""
    return TVDFRule(
        rule=config.rule,
        size=config.subset_size,
        tau=config.tau_teacher,
        buckets=config.buckets,
        center=config.gaussian_center,
        sigma=config.gaussian_sigma,
    )


def build_scorer(
    config: Any,
    prompts: Sequence[PromptSpec],
    data_path: str | None,
    teacher_engine: EngineConfig | None,
    student_engine: EngineConfig | None = None,
    group: GroupConfig | None = None,
) -> OfflineScorer:
    """The offline scorer of a curriculum config: prediction settings, cache, engines."""
    return OfflineScorer(
        prompts=list(prompts),
        dataset=dataset_key(data_path, prompts),
        cache=PredictionCache(config.cache_dir) if config.cache_dir else None,
        teacher=PredictionSettings(
            k=config.teacher_k,
            temperature=config.teacher_temperature,
            max_tokens=config.max_new_tokens,
            seed=config.prediction_seed,
            batch_size=config.batch_size,
        ),
        student=PredictionSettings(
            k=1,
            max_tokens=config.max_new_tokens,
            seed=config.prediction_seed,
            batch_size=config.batch_size,
        ),
        teacher_engine=teacher_engine,
        student_engine=student_engine,
        group=group or GroupConfig(num_workers=config.num_workers, cpus_per_worker=0.0),
    )


def build_sampler(
    config: Any,
    prompts: Sequence[PromptSpec],
    *,
    seed: int,
    data_path: str | None = None,
    teacher_engine: EngineConfig | None = None,
    student_engine: EngineConfig | None = None,
    group: GroupConfig | None = None,
) -> Sampler | RefreshingSampler:
    """The sampler of `config.kind` over `prompts`: a `UniformSampler`, a `TVDFSampler` or a
    `DifficultySampler` (the last two score on their first `refresh`)."""
    if config.kind not in SAMPLER_KINDS:
        raise ValueError(f"curriculum.kind must be one of {SAMPLER_KINDS}, got {config.kind!r}")
    if config.kind == "uniform":
        return UniformSampler(len(prompts), seed=seed)
    scorer = build_scorer(config, prompts, data_path, teacher_engine, student_engine, group)
    policy = RefreshPolicy(config.refresh, config.refresh_every)
    if config.kind == "tvdf":
        return TVDFSampler(len(prompts), scorer, tvdf_rule(config), policy, seed)
    return DifficultySampler(
        len(prompts),
        scorer,
        mean=config.difficulty_mean,
        sigma=config.difficulty_sigma,
        bins=config.difficulty_bins,
        policy=policy,
        seed=seed,
    )

"""The run configuration: presets, overrides, and clear errors naming the bad key."""

from __future__ import annotations

from pathlib import Path

import pytest

from launch.config import ConfigError, config_to_yaml, load_config


def test_defaults_and_overrides() -> None:
    config = load_config(None, ["trainer.objective=grpo", "rollout.n=8", "learner.lr=5e-4"])
    assert config.trainer.objective == "grpo"
    assert config.rollout.n == 8
    assert config.learner.lr == pytest.approx(5e-4)
    assert "objective: grpo" in config_to_yaml(config)


def test_unknown_key_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"rollout\.temprature"):
        load_config(None, ["rollout.temprature=1.0"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("trainer:\n  stepz: 3\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml.*trainer\.stepz"):
        load_config(str(bad))


def test_bad_values_are_named() -> None:
    with pytest.raises(ConfigError, match=r"rollout\.n"):
        load_config(None, ["rollout.n=many"])
    with pytest.raises(ConfigError, match=r"rollout\.temperature must be > 0"):
        load_config(None, ["rollout.temperature=0"])
    with pytest.raises(ConfigError, match="key=value"):
        load_config(None, ["rollout.n"])
    with pytest.raises(ConfigError, match=r"teacher\.url is required"):
        load_config(None, ["teacher.backend=remote"])
    with pytest.raises(ConfigError, match=r"learner\.schedule must be 'constant' or 'cosine'"):
        load_config(None, ["learner.schedule=linear"])
    with pytest.raises(ConfigError, match=r"learner\.min_lr_ratio must be in \[0, 1\]"):
        load_config(None, ["learner.min_lr_ratio=2"])
    with pytest.raises(ConfigError, match=r"rollout\.weight_transport must be 'object_store' or"):
        load_config(None, ["rollout.weight_transport=nccl"])


def test_weight_transport_defaults_to_the_object_store_and_accepts_collective() -> None:
    assert load_config(None, []).rollout.weight_transport == "object_store"
    config = load_config(None, ["rollout.weight_transport=collective"])
    assert config.rollout.weight_transport == "collective"


def test_unknown_preset_lists_known_ones() -> None:
    with pytest.raises(ConfigError, match="neither a file nor a preset"):
        load_config("no-such-preset")


def test_teacher_stream_needs_a_teacher_pool_scoring_the_rollout() -> None:
    assert load_config("opd", ["teacher.stream=true"]).teacher.stream is True
    assert load_config("opd", []).teacher.stream is False
    with pytest.raises(ConfigError, match=r"teacher\.stream: objective 'grpo'"):
        load_config("grpo", ["teacher.stream=true"])
    with pytest.raises(ConfigError, match=r"teacher\.stream: .*teacher\.colocate=True"):
        load_config("opd", ["teacher.stream=true", "teacher.colocate=true"])
    with pytest.raises(ConfigError, match=r"teacher\.stream"):
        load_config(None, ["teacher.stream=maybe"])


def test_off_policy_steps_is_0_or_1_on_engines_of_their_own() -> None:
    assert load_config("opd", []).trainer.off_policy_steps == 0
    assert load_config("grpo", ["trainer.off_policy_steps=1"]).trainer.off_policy_steps == 1
    with pytest.raises(ConfigError, match=r"trainer\.off_policy_steps must be 0 .* or 1"):
        load_config("opd", ["trainer.off_policy_steps=2"])
    with pytest.raises(ConfigError, match=r"trainer\.off_policy_steps: objective 'sft'"):
        load_config("sft", ["trainer.off_policy_steps=1"])
    with pytest.raises(ConfigError, match=r"trainer\.off_policy_steps: objective 'seqkd'"):
        load_config("opd", ["trainer.objective=seqkd", "trainer.off_policy_steps=1"])
    with pytest.raises(ConfigError, match=r"trainer\.off_policy_steps: with rollout\.colocate"):
        load_config(
            "opd",
            [
                "trainer.off_policy_steps=1",
                "rollout.colocate=true",
                "rollout.num_workers=2",
                "learner.num_ranks=2",
            ],
        )
    with pytest.raises(ConfigError, match=r"trainer\.off_policy_steps: teacher\.stream"):
        load_config("opd", ["trainer.off_policy_steps=1", "teacher.stream=true"])

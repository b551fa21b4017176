"""The objective registry: every name runs through the uniform signature; clear errors."""

from __future__ import annotations

import math

import pytest
import torch

from trainer.objectives import (
    OBJECTIVES,
    ObjectiveInputs,
    get_objective,
    get_objective_spec,
    grpo_objective,
    list_objectives,
    opd_full_rkl_loss,
    opd_loss,
    opd_topk_fkl_loss,
    opd_union_topk_rkl_loss,
    rows_from_topk,
    tempsamp_loss,
)

NAMES = (
    "opd",
    "opd_full_rkl",
    "opd_topk_fkl",
    "opd_topk_rkl",
    "opd_topk_tail_fkl",
    "opd_topk_tail_rkl",
    "opd_k1",
    "opd_k3",
    "sft",
    "seqkd",
    "grpo",
    "tempsamp",
)
B, T, V, K = 4, 5, 9, 3


def make_inputs(seed: int = 0) -> tuple[ObjectiveInputs, torch.Tensor]:
    """Consistent random inputs (logits -> rows -> sampled-token log-probs) and the logits."""
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(B, T, V, generator=gen, dtype=torch.float64).requires_grad_()
    rows = torch.log_softmax(logits, -1)
    teacher_rows = torch.log_softmax(torch.randn(B, T, V, generator=gen, dtype=torch.float64), -1)
    tokens = torch.randint(0, V, (B, T), generator=gen)
    logp = rows.gather(-1, tokens[..., None])[..., 0]
    mask = torch.ones(B, T, dtype=torch.bool)
    mask[1, 3:] = False
    t_lp, t_ids = teacher_rows.topk(K, -1)
    inputs = ObjectiveInputs(
        logprobs=logp,
        mask=mask,
        old_logprobs=logp.detach() + 0.01,
        teacher_logprobs=teacher_rows.gather(-1, tokens[..., None])[..., 0],
        ref_logprobs=logp.detach() - 0.02,
        rewards=torch.tensor([0.1, 0.5, 0.9, 0.3], dtype=torch.float64),
        group_ids=torch.tensor([0, 0, 1, 1]),
        is_ground_truth=torch.tensor([False, True, False, True]),
        student_logprob_rows=rows,
        teacher_logprob_rows=teacher_rows,
        teacher_topk_ids=t_ids,
        teacher_topk_logprobs=t_lp,
    )
    return inputs, logits


def test_registry_names() -> None:
    assert list_objectives() == NAMES
    assert set(OBJECTIVES) == set(NAMES)
    assert get_objective_spec("opd_sampled_token").name == "opd"
    assert get_objective_spec("opd_exact_rkl").name == "opd_full_rkl"


@pytest.mark.parametrize("name", NAMES)
def test_every_objective_runs_and_backpropagates(name: str) -> None:
    inputs, logits = make_inputs()
    out = get_objective(name)(inputs)
    assert out.loss.dim() == 0 and math.isfinite(out.loss.item())
    out.loss.backward()
    assert torch.isfinite(logits.grad).all()
    assert logits.grad.abs().sum() > 0
    assert logits.grad[1, 3:].abs().max() == 0.0  # padded positions get no gradient
    for key, value in out.metrics.items():
        assert not value.requires_grad, key


def test_registry_matches_the_pure_functions() -> None:
    inputs, _ = make_inputs()
    m = inputs.mask
    pairs = [
        ("opd", opd_loss(inputs.logprobs, inputs.teacher_logprobs, m, inputs.old_logprobs)),
        (
            "opd_full_rkl",
            opd_full_rkl_loss(inputs.student_logprob_rows, inputs.teacher_logprob_rows, m),
        ),
        (
            "opd_topk_fkl",
            opd_topk_fkl_loss(
                inputs.student_logprob_rows.gather(-1, inputs.teacher_topk_ids),
                inputs.teacher_topk_logprobs,
                m,
            ),
        ),
        (
            "grpo",
            grpo_objective(
                inputs.logprobs,
                inputs.rewards,
                inputs.group_ids,
                m,
                inputs.old_logprobs,
                ref_logprobs=inputs.ref_logprobs,
            ),
        ),
        (
            "tempsamp",
            tempsamp_loss(
                inputs.logprobs,
                inputs.rewards,
                inputs.group_ids,
                inputs.is_ground_truth,
                m,
                inputs.old_logprobs,
                ref_logprobs=inputs.ref_logprobs,
            ),
        ),
    ]
    for name, direct in pairs:
        assert get_objective(name)(inputs).loss.item() == pytest.approx(direct.loss.item()), name


def test_options_pass_through_and_unknown_option_is_named() -> None:
    inputs, _ = make_inputs()
    a = get_objective("opd")(inputs, aggregation="token_mean", kl_coef=2.0).loss.item()
    b = opd_loss(
        inputs.logprobs,
        inputs.teacher_logprobs,
        inputs.mask,
        inputs.old_logprobs,
        aggregation="token_mean",
        kl_coef=2.0,
    ).loss.item()
    assert a == pytest.approx(b)
    with pytest.raises(ValueError, match="eps_hihg"):
        get_objective("grpo")(inputs, eps_hihg=0.28)
    with pytest.raises(ValueError, match="renormalize"):
        get_objective("opd_full_rkl")(inputs, renormalize=True)  # union-only option


def test_opd_full_rkl_falls_back_to_union_of_topk() -> None:
    inputs, _ = make_inputs()
    exact = get_objective("opd_full_rkl")(inputs)
    inputs.teacher_logprob_rows = None
    approx = get_objective("opd_full_rkl")(inputs, student_k=K)
    assert "teacher_coverage" in approx.metrics and "teacher_coverage" not in exact.metrics
    assert math.isfinite(approx.loss.item())


def test_full_vocabulary_topk_takes_the_exact_path() -> None:
    """A teacher list of k = V (what the driver asks of a small-vocabulary teacher) is scattered
    back into rows: same value and gradient as the union form over the whole vocabulary, and the
    exact form's metrics (no coverage)."""
    inputs, logits = make_inputs()
    t_lp, t_ids = inputs.teacher_logprob_rows.topk(V, -1)
    t_lp, t_ids = t_lp.clone(), t_ids.clone()
    t_lp[1, 3:], t_ids[1, 3:] = float("-inf"), 0  # padded positions, as step_loss pads them
    inputs.teacher_logprob_rows, inputs.teacher_topk_ids, inputs.teacher_topk_logprobs = (
        None,
        t_ids,
        t_lp,
    )
    fast = get_objective("opd_full_rkl")(inputs)
    (grad_fast,) = torch.autograd.grad(fast.loss, logits, retain_graph=True)
    union = opd_union_topk_rkl_loss(
        inputs.student_logprob_rows, t_ids, t_lp, inputs.mask, student_k=V
    )
    (grad_union,) = torch.autograd.grad(union.loss, logits)
    assert "teacher_coverage" not in fast.metrics
    assert fast.loss.item() == pytest.approx(union.loss.item(), rel=1e-12)
    assert torch.isfinite(grad_fast).all()  # padded positions included: no inf * 0
    assert torch.allclose(grad_fast, grad_union, atol=1e-12)
    # The union-only options change nothing here and are accepted.
    again = get_objective("opd_full_rkl")(inputs, student_k=2, renormalize=True)
    assert again.loss.item() == pytest.approx(fast.loss.item(), rel=1e-12)


def test_rows_from_topk() -> None:
    ids = torch.tensor([[[2, 0, 1]], [[1, 0, 0]]])
    lps = torch.tensor([[[-0.1, -2.0, -3.0]], [[-0.5, float("-inf"), float("-inf")]]])
    rows = rows_from_topk(ids, lps, 3)
    assert torch.equal(rows[0, 0], torch.tensor([-2.0, -3.0, -0.1]))
    # A padding entry (-inf at id 0) does not overwrite, nor is overwritten by, a real one.
    assert torch.equal(rows[1, 0], torch.tensor([float("-inf"), -0.5, float("-inf")]))
    assert rows_from_topk(ids[..., :2], lps[..., :2], 3) is None  # short list: no rows


def test_unknown_name_and_missing_inputs() -> None:
    with pytest.raises(ValueError, match=r"unknown objective 'ppo'.*opd"):
        get_objective("ppo")
    inputs, _ = make_inputs()
    inputs.teacher_logprobs = None
    with pytest.raises(ValueError, match="teacher_logprobs"):
        get_objective("opd")(inputs)
    inputs.is_ground_truth = None
    with pytest.raises(ValueError, match="is_ground_truth"):
        get_objective("tempsamp")(inputs)
    inputs.teacher_logprob_rows = None
    inputs.teacher_topk_ids = None
    with pytest.raises(ValueError, match="teacher_logprob_rows"):
        get_objective("opd_full_rkl")(inputs)
    with pytest.raises(TypeError):
        get_objective("sft")({"logprobs": None})


@pytest.mark.parametrize(
    ("name", "field"),
    [
        ("opd", "teacher_logprobs"),
        ("opd", "old_logprobs"),
        ("opd_k3", "logprobs"),
        ("grpo", "rewards"),
        ("grpo", "ref_logprobs"),
        ("tempsamp", "old_logprobs"),
        ("sft", "logprobs"),
        ("opd_full_rkl", "teacher_logprob_rows"),
        ("opd_topk_fkl", "teacher_topk_logprobs"),
        ("opd_topk_rkl", "teacher_topk_logprobs"),
    ],
)
def test_nan_input_is_a_value_error_naming_the_tensor(name: str, field: str) -> None:
    inputs, _ = make_inputs()
    bad = getattr(inputs, field).detach().clone()
    bad.view(-1)[0] = float("nan")
    setattr(inputs, field, bad)
    with pytest.raises(ValueError, match=field):
        get_objective(name)(inputs, **({"kl_coef": 0.1} if field == "ref_logprobs" else {}))


@pytest.mark.parametrize("name", NAMES)
def test_shape_mismatch_is_a_value_error(name: str) -> None:
    inputs, _ = make_inputs()
    inputs.mask = inputs.mask[:, :-1]
    with pytest.raises(ValueError, match=r"shape|differ"):
        get_objective(name)(inputs)


def test_math_modules_import_only_torch() -> None:
    """The objective math imports torch and its own package only; rewards.py alone touches tvg."""
    import ast
    from pathlib import Path

    import trainer.objectives as pkg

    for path in Path(pkg.__file__).parent.glob("*.py"):
        if path.name == "rewards.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                roots = [alias.name.split(".")[0] for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                roots = [(node.module or "").split(".")[0]]
            else:
                continue
            for root in roots:
                assert root in {"torch", "trainer", "__future__", "dataclasses", "typing",
                                "collections", "inspect", "math"}, (path.name, root)  # fmt: skip


def test_exact_path_when_the_teacher_list_covers_a_padded_vocabulary() -> None:
    # A padded vocabulary (unused ids at -inf for the student) with a teacher list as long as
    # the usable ids: the exact form is taken (no union-of-top-k "teacher_coverage" metric) and
    # equals the full-row loss.
    inputs, _ = make_inputs()
    pad = 7
    rows = torch.cat(
        [inputs.student_logprob_rows, torch.full((B, T, pad), float("-inf"), dtype=torch.float64)],
        -1,
    )
    teacher = torch.cat(
        [inputs.teacher_logprob_rows, torch.full((B, T, pad), float("-inf"), dtype=torch.float64)],
        -1,
    )
    top_lp, top_ids = inputs.teacher_logprob_rows.topk(V, -1)
    padded = ObjectiveInputs(
        logprobs=inputs.logprobs,
        mask=inputs.mask,
        student_logprob_rows=rows,
        teacher_topk_ids=top_ids,
        teacher_topk_logprobs=top_lp,
    )
    out = get_objective("opd_full_rkl")(padded)
    assert "teacher_coverage" not in out.metrics
    exact = opd_full_rkl_loss(rows, teacher, inputs.mask)
    assert out.loss.item() == pytest.approx(exact.loss.item(), rel=1e-9)

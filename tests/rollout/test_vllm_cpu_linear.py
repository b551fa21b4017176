"""The logic of `rollout.vllm_cpu_linear` on plain torch modules: which layers a copy-update
repacks (tied weights included), what blocks in-place updates, and that the kernel choice only
holds inside its block. The real engines are covered in test_engines.py."""

from __future__ import annotations

import functools
from types import SimpleNamespace

import pytest
import torch

from rollout import vllm_cpu_linear as cpu_linear


class _Model(torch.nn.Module):
    """Two packed layers, the second's weight tied to the first's, and one plain layer."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = torch.nn.Linear(4, 3, bias=False)
        self.head = torch.nn.Linear(4, 3, bias=False)
        self.head.weight = self.embed.weight  # tied, as a tied LM head
        self.proj = torch.nn.Linear(3, 3)
        for layer in (self.embed, self.head, self.proj):
            layer.cpu_linear = functools.partial(cpu_linear._onednn_linear, object())


def _worker(model: torch.nn.Module, quantization: str | None = None) -> SimpleNamespace:
    runner = SimpleNamespace(
        get_model=lambda: model, model_config=SimpleNamespace(quantization=quantization)
    )
    return SimpleNamespace(model_runner=runner)


def test_repack_reaches_every_layer_sharing_a_loaded_weight(monkeypatch) -> None:
    packed: list[torch.nn.Module] = []
    monkeypatch.setattr(cpu_linear, "_pack_onednn", packed.append)
    model = _Model()
    assert cpu_linear.repack_loaded(model, ["embed.weight"]) == 2
    assert packed == [model.embed, model.head]  # the tied head too, not the untouched proj
    packed.clear()
    assert cpu_linear.repack_loaded(model, ["proj.bias", "not.a.param"]) == 0  # bias: no repack
    assert cpu_linear.repack_loaded(model, ["proj.weight"]) == 1 and packed == [model.proj]


def test_in_place_blockers_name_what_a_copy_cannot_update() -> None:
    model = _Model()
    assert cpu_linear.in_place_blockers(_worker(model)) == []
    model.proj.cpu_linear = lambda x, weight, bias: x  # a kernel not set up here
    model.embed.weight = torch.nn.Parameter(torch.empty(0))  # a weight that was deleted
    found = cpu_linear.in_place_blockers(_worker(model, quantization="fp8"))
    assert found[0] == "quantized weights (fp8)"
    assert "proj: a CPU kernel without its weight tensor" in found
    assert "embed.weight: weight not held as a tensor" in found


def test_the_kernel_choice_holds_only_inside_its_block() -> None:
    import vllm.model_executor.layers.utils as layer_utils

    original = layer_utils.dispatch_cpu_unquantized_gemm
    with cpu_linear.cpu_linear_kernels("torch"):
        layer = torch.nn.Linear(4, 3)
        layer_utils.dispatch_cpu_unquantized_gemm(layer, True)
        assert layer.cpu_linear is torch.nn.functional.linear and layer.weight.numel() == 12
    assert layer_utils.dispatch_cpu_unquantized_gemm is original
    with cpu_linear.cpu_linear_kernels("vllm"):
        assert layer_utils.dispatch_cpu_unquantized_gemm is original
    with pytest.raises(ValueError, match="cpu_linear"), cpu_linear.cpu_linear_kernels("mkl"):
        pass

"""How the CPU build of vLLM runs linear layers, and how a weight update reaches them.

vLLM's CPU backend, after loading a checkpoint, hands every unquantized linear layer (and the LM
head) to `dispatch_cpu_unquantized_gemm`, which by default packs the weight into a oneDNN (or
AMX / zentorch) kernel handle and deletes the weight tensor. The model then no longer holds its
weights as tensors, so an update has to go through vLLM's layer-wise reload: each layer is
rebuilt on the meta device, every incoming tensor is buffered and counted, and a complete layer
is materialised, loaded, repacked into a new handle and copied back. On the demo's 0.68 M-parameter
student that machinery is most of the ~21 ms an in-place update takes.

`EngineConfig.cpu_linear` (the run config's `rollout.cpu_linear`) chooses:

- "onednn" (default): oneDNN kernels, as vLLM's default on x86, but each 2-D linear layer keeps
  its plain weight tensor beside the packed copy. An update is the model's own `load_weights`
  straight into the live tensors (what vLLM does on GPUs for unquantized models), then the layers
  it touched are repacked (`repack_loaded`): no reload machinery. Costs one extra copy of the
  linear weights in the engine's memory.
- "torch": the layers keep plain weights and run `torch.nn.functional.linear` (vLLM's fallback
  kernel); an update is `load_weights` alone, nothing to repack. With its kernel a prompt's
  log-probs moved in the last bits (~2e-7) with the other prompts in the batch, which broke the
  bitwise equality of the separate and colocated layouts (one thread per engine; oneDNN's kept
  it): choose it only where bitwise repeatability across layouts and resumes does not matter.
- "vllm": vLLM's own dispatch untouched (oneDNN, AMX or zentorch kernels, weights deleted), and
  every update through its layer-wise reload. Also what quantized models need.

All three produce the same greedy tokens (tested in tests/rollout/test_engines.py). The choice is
ignored on GPUs (no CPU kernels; updates use the layer-wise reload there). Measured costs:
BENCHMARKS.md "Weight sync inside one vLLM engine".
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterable, Iterator
from typing import Any

from rollout.engine_config import CPU_LINEAR_KINDS

# Handles per oneDNN matmul primitive cache, as vLLM's own dispatch creates them.
_ONEDNN_PRIMITIVE_CACHE = 32


def _onednn_linear(handler: Any, x: Any, weight: Any, bias: Any) -> Any:
    """A layer's `cpu_linear` on its packed handle (the plain weight is not read)."""
    from vllm import _custom_ops as ops

    return ops.onednn_mm(handler, x, bias)


def _pack_onednn(layer: Any) -> None:
    """Pack `layer.weight` into a new oneDNN handle; the weight tensor stays on the layer."""
    from vllm import _custom_ops as ops

    handler = ops.create_onednn_mm(layer.weight.t(), _ONEDNN_PRIMITIVE_CACHE)
    layer.cpu_linear = functools.partial(_onednn_linear, handler)


def _is_packed_here(kernel: Any) -> bool:
    """Whether a layer's `cpu_linear` is one `_pack_onednn` made."""
    return isinstance(kernel, functools.partial) and kernel.func is _onednn_linear


@contextlib.contextmanager
def cpu_linear_kernels(kind: str) -> Iterator[None]:
    """While the block runs, vLLM's CPU linear dispatch follows `kind` (module docstring). Wrap
    every step that runs `process_weights_after_loading`: building the engine and any layer-wise
    reload."""
    if kind not in CPU_LINEAR_KINDS:
        raise ValueError(f"cpu_linear must be one of {CPU_LINEAR_KINDS}, got {kind!r}")
    if kind == "vllm":
        yield
        return
    import torch
    import vllm.model_executor.layers.utils as layer_utils
    from vllm import _custom_ops as ops

    original = layer_utils.dispatch_cpu_unquantized_gemm

    def keep_plain_weights(layer: Any, remove_weight: bool) -> None:
        """2-D weights kept and run by oneDNN or torch; anything else as vLLM does it."""
        if layer.weight.is_meta or layer.weight.ndim != 2:
            original(layer, remove_weight)
        elif kind == "onednn" and ops._supports_onednn:
            _pack_onednn(layer)
        else:
            layer.cpu_linear = torch.nn.functional.linear

    layer_utils.dispatch_cpu_unquantized_gemm = keep_plain_weights
    try:
        yield
    finally:
        layer_utils.dispatch_cpu_unquantized_gemm = original


def in_place_blockers(worker: Any) -> list[str]:
    """(vLLM worker side) Why the model's weights cannot be updated by plain copies: quantized
    weights, layers on kernels this module did not set up, or parameters that no longer hold
    their data. Empty when `load_weights` into the live tensors (then `repack_loaded`) is a
    complete update."""
    import torch

    runner = worker.model_runner
    model = runner.get_model()
    found: list[str] = []
    quantization = getattr(runner.model_config, "quantization", None)
    if quantization:
        found.append(f"quantized weights ({quantization})")
    for name, module in model.named_modules():
        kernel = getattr(module, "cpu_linear", None)
        if kernel is not None and not (
            kernel is torch.nn.functional.linear or _is_packed_here(kernel)
        ):
            found.append(f"{name or 'model'}: a CPU kernel without its weight tensor")
        if hasattr(module, "_cpu_unpacked_conv_weight"):
            found.append(f"{name}: packed convolution weight")
    for name, param in model.named_parameters():
        if param.is_meta or param.numel() == 0:
            found.append(f"{name}: weight not held as a tensor")
    return found


def repack_loaded(model: Any, loaded: Iterable[str]) -> int:
    """Repack the oneDNN handle of every layer whose weight is one of the `loaded` parameters
    (vLLM names, as `load_weights` returns them) or shares its storage (a tied LM head); return
    how many layers were repacked."""
    params = dict(model.named_parameters(remove_duplicate=False))
    touched = {params[name].data_ptr() for name in loaded if name in params}
    repacked = 0
    for module in model.modules():
        if _is_packed_here(getattr(module, "cpu_linear", None)) and (
            module.weight.data_ptr() in touched
        ):
            _pack_onednn(module)
            repacked += 1
    return repacked


def drop_derived_caches(worker: Any) -> bool:
    """(vLLM worker side) Drop what the runner derived from the old weights (vision encoder
    outputs, multimodal cache)."""
    runner = worker.model_runner
    runner.reset_encoder_cache()
    runner.reset_mm_cache()
    return True

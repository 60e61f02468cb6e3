"""``--device auto|cpu|cuda|cuda:N|mps``: resolve once, never fall back silently."""

from __future__ import annotations

import torch

from genseq.errors import UsageError


def resolve_device(spec: str | None = "auto") -> torch.device:
    spec = (spec or "auto").strip().lower()
    if spec == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(spec)
    except RuntimeError:
        raise UsageError(f"--device {spec!r}: use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UsageError(f"--device {spec}: CUDA is not available here; use --device cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise UsageError(
                f"--device {spec}: only {torch.cuda.device_count()} CUDA device(s) present"
            )
    elif device.type == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise UsageError(f"--device {spec}: MPS is not available here; use --device cpu")
    elif device.type != "cpu":
        raise UsageError(f"--device {spec!r}: use auto, cpu, cuda, cuda:N or mps")
    return device


def configure_device(device: torch.device) -> None:
    """Fast, numerically safe defaults: TF32 matmuls and cuDNN autotuning on CUDA."""
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True


def native_bf16(device: torch.device) -> bool:
    """Whether this is a CPU that multiplies bfloat16 in hardware (AVX512-BF16 or AMX): only
    there does bf16 autocast make training faster (1.3-1.6x, BENCHMARKS.md). oneDNN runs bf16
    on any AVX-512 CPU, emulated, so its own "bf16 supported" flag is not the test."""
    if device.type != "cpu":
        return False
    try:
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except (AttributeError, RuntimeError):
        return False

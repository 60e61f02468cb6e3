"""Multi-process training under torchrun: who this process is, and the few collectives the
trainer needs.

torchrun (``torchrun --nproc-per-node N -m genseq train ...``) sets RANK, LOCAL_RANK and
WORLD_SIZE; ``setup`` joins the process group with NCCL on CUDA and gloo on CPU. Every rank
trains on its own streams of the same global batch (``data.StreamBatches``), DDP averages the
gradients, and only rank 0 logs and writes files. Without torchrun everything here is a no-op.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from genseq.errors import UsageError

# Stop reasons ranked so that one all-reduce(MAX) tells every rank the most urgent one.
STOP_CODES = {
    None: 0,
    "max_steps": 1,
    "epochs": 2,
    "patience": 3,
    "time_budget": 4,
    "interrupted": 5,
    "terminated": 6,
}
STOP_REASONS = {code: reason for reason, code in STOP_CODES.items()}


@dataclass
class DistContext:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def context_from_env() -> DistContext:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistContext()
    return DistContext(int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0")), world)


def setup(ctx: DistContext, device: torch.device) -> torch.device:
    """Join the process group; on CUDA each process takes the GPU of its local rank."""
    if not ctx.enabled:
        return device
    if device.type == "cuda":
        if torch.cuda.device_count() <= ctx.local_rank:
            raise UsageError(
                f"local rank {ctx.local_rank} has no GPU of its own "
                f"({torch.cuda.device_count()} visible)"
            )
        device = torch.device("cuda", ctx.local_rank)
        torch.cuda.set_device(device)
        backend = "nccl"
    elif device.type == "cpu":
        backend = "gloo"
    else:
        raise UsageError(f"multi-process training runs on cuda or cpu, not {device.type}")
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    return device


def teardown(ctx: DistContext, together: bool = True) -> None:
    """Leave the process group. After a run that ended normally the ranks meet at a barrier
    first: a rank that destroys its group while another is still in a collective can abort
    the other ("terminate called without an active exception", seen under gloo). After an
    error there is no barrier, which could wait for a rank that has gone."""
    if ctx.enabled and dist.is_initialized():
        if together:
            try:
                dist.barrier()
            except RuntimeError:  # a peer already failed: nothing to wait for
                pass
        dist.destroy_process_group()


def agree_on_stop(ctx: DistContext, reason: str | None, device: torch.device) -> str | None:
    """The most urgent stop reason of any rank, known to all ranks."""
    if not ctx.enabled:
        return reason
    code = torch.tensor([STOP_CODES[reason]], device=device)
    dist.all_reduce(code, op=dist.ReduceOp.MAX)
    return STOP_REASONS[int(code.item())]


def gather_streams(ctx: DistContext, local: torch.Tensor) -> torch.Tensor:
    """Rebuild the global ``(L, B, H)`` state from each rank's streams ``rank::world``."""
    if not ctx.enabled:
        return local
    parts = [torch.empty_like(local) for _ in range(ctx.world_size)]
    dist.all_gather(parts, local.contiguous())
    layers, per_rank, hidden = local.shape
    full = local.new_empty(layers, per_rank * ctx.world_size, hidden)
    for r, part in enumerate(parts):
        full[:, r :: ctx.world_size] = part
    return full


def gather_objects(ctx: DistContext, obj) -> list:
    if not ctx.enabled:
        return [obj]
    out: list = [None] * ctx.world_size
    dist.all_gather_object(out, obj)
    return out


def barrier(ctx: DistContext) -> None:
    if ctx.enabled:
        dist.barrier()


def any_rank(ctx: DistContext, flag: bool, device: torch.device) -> bool:
    """True on every rank when ``flag`` is true on at least one."""
    if not ctx.enabled:
        return bool(flag)
    value = torch.tensor([1 if flag else 0], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


def mean(ctx: DistContext, value: torch.Tensor) -> torch.Tensor:
    """The mean of ``value`` over ranks (the value itself in one process)."""
    if not ctx.enabled:
        return value
    total = value.detach().clone()
    dist.all_reduce(total, op=dist.ReduceOp.SUM)
    return total / ctx.world_size


def from_main(ctx: DistContext, value: float, device: torch.device) -> float:
    """Rank 0's ``value`` on every rank (what rank 0 measured, everyone decides on)."""
    if not ctx.enabled:
        return value
    tensor = torch.tensor([value if ctx.is_main else 0.0], dtype=torch.float64, device=device)
    dist.broadcast(tensor, src=0)
    return float(tensor.item())


def parameter_digest(model: torch.nn.Module) -> str:
    """SHA-256 of every parameter's bytes: equal digests mean bit-identical replicas."""
    import hashlib

    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()

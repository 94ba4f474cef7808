"""Training on several processes under torchrun: each process's share of a batch, and the few collectives
the loop needs. With one process (``WORLD_SIZE`` unset or 1) every function here is a no-op.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


class Shard:
    """This process's part of every global batch under torchrun: rank ``rank`` of ``world`` processes.

    Each process takes every ``world``-th example (or stream) of the same global batch, so an epoch
    shows every example once, and scales its loss so that DistributedDataParallel's mean of the
    gradients is the gradient of the global batch's mean loss, whatever the split of the batch.
    """

    def __init__(self, rank: int = 0, world: int = 1):
        self.rank, self.world = rank, world

    @property
    def main(self) -> bool:
        """The first process: the one that writes logs and checkpoints."""
        return self.rank == 0

    def take(self, items):
        return items if self.world == 1 else items[self.rank :: self.world]

    def mean(self, total: torch.Tensor, global_count: float) -> torch.Tensor:
        """``total`` summed over this process's part -> its share of the global mean, times ``world``."""
        return total * self.world / global_count

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()

    def any(self, flags: list[bool], device: torch.device) -> list[bool]:
        """Each flag, true if it is true in any process (one collective for all of them)."""
        if self.world == 1:
            return flags
        tensor = torch.tensor(flags, dtype=torch.int32, device=device)
        dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
        return [bool(x) for x in tensor.tolist()]

    def from_main(self, value):
        """The first process's ``value`` in every process."""
        if self.world == 1:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]


def join_process_group(device: str) -> tuple[Shard, bool]:
    """Under torchrun (WORLD_SIZE > 1), join the process group: nccl on GPUs, gloo on CPUs.
    Returns this process's shard and whether this call started the group."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return Shard(), False
    started = not dist.is_initialized()
    if started:
        dist.init_process_group("nccl" if device != "cpu" and torch.cuda.is_available() else "gloo")
    return Shard(dist.get_rank(), dist.get_world_size()), started


def process_device(device: torch.device, shard: Shard) -> torch.device:
    """Under torchrun on GPUs, this process's own GPU (``LOCAL_RANK``); otherwise ``device``."""
    if device.type == "cuda" and shard.world > 1:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    return device

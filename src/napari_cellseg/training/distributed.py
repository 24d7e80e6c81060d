"""Training in several processes (``torchrun``): the process group and what the ranks share.

``torchrun`` starts one process per GPU (or several on the CPU) and tells each its place
in the environment: ``WORLD_SIZE`` processes in all, this one's ``RANK`` and its
``LOCAL_RANK`` on its machine.  :func:`join` reads them, starts the process group (NCCL
on CUDA GPUs, gloo on the CPU) and gives a :class:`World`; without torchrun it gives a
world of one process, whose helpers do nothing, so the training loop reads the same in
both cases.

The ranks agree on everything that steers the run: the metrics of an epoch are summed
over the ranks before dividing (:meth:`World.reduce_metrics`), and a stop asked for in one
process stops them all (:meth:`World.any`).  Rank 0 alone writes files
(:attr:`World.is_main`).
"""

from __future__ import annotations

import atexit
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from napari_cellseg.errors import ConfigError

if TYPE_CHECKING:
    import torch
    from torch import nn

    from napari_cellseg.training.metrics import MetricAccumulator

__all__ = ["World", "join", "is_main_process"]


@dataclass(frozen=True)
class World:
    """The processes training one model together, seen from one of them.

    Attributes
    ----------
    rank
        This process's number, 0 .. ``size - 1``; rank 0 writes the files.
    size
        Number of processes (1 without torchrun).
    device
        Where this process trains: ``cuda:LOCAL_RANK`` on GPUs under torchrun.
    """

    rank: int
    size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        """Whether this process writes checkpoints, logs and the yaml (rank 0)."""
        return self.rank == 0

    def wrap(self, model: nn.Module, *, sync_bn: bool = False) -> nn.Module:
        """The module to train: ``model`` itself in one process, else a DistributedDataParallel
        around it, which averages the gradients of the ranks in every backward pass.

        ``sync_bn`` turns the batch norm layers of ``model`` (in place) into
        ``torch.nn.SyncBatchNorm``, which normalises with the statistics of the whole
        global batch; it needs CUDA and means nothing in one process.
        """
        if self.size == 1:
            return model
        from torch.nn import SyncBatchNorm
        from torch.nn.parallel import DistributedDataParallel

        if sync_bn:
            if self.device.type != "cuda":
                raise ConfigError(
                    "Setting 'sync_bn' needs CUDA GPUs: PyTorch synchronises batch norm only "
                    "there. Leave out --sync_bn when training on the CPU."
                )
            model = SyncBatchNorm.convert_sync_batchnorm(model)
        device_ids = [self.device] if self.device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=device_ids)

    def sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """Add ``tensor`` up over the ranks, in place; every rank gets the same result."""
        if self.size > 1:
            import torch.distributed as dist

            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    def any(self, flag: bool) -> bool:
        """Whether ``flag`` is true in at least one rank (the same answer on every rank)."""
        if self.size == 1:
            return flag
        return bool(self._extremes(int(flag))[1])

    def same(self, value: int) -> bool:
        """Whether every rank holds the same ``value``."""
        if self.size == 1:
            return True
        low, high = self._extremes(value)
        return low == high

    def _extremes(self, value: int) -> tuple[int, int]:
        """The smallest and largest ``value`` over the ranks (one all-reduce)."""
        import torch
        import torch.distributed as dist

        both = torch.tensor([-value, value], dtype=torch.int64, device=self.device)
        dist.all_reduce(both, op=dist.ReduceOp.MAX)
        return -int(both[0]), int(both[1])

    def broadcast_buffers(self, model: nn.Module) -> None:
        """Copy rank 0's buffers (batch norm running statistics) to every rank.

        Without SyncBatchNorm each rank's running statistics follow its own batches;
        rank 0's are the ones saved, so validation uses them everywhere.
        """
        if self.size > 1:
            import torch.distributed as dist

            for buffer in model.buffers():
                dist.broadcast(buffer, src=0)

    def barrier(self) -> None:
        """Wait until every rank gets here."""
        if self.size > 1:
            import torch.distributed as dist

            dist.barrier()

    def reduce_metrics(
        self, metrics: MetricAccumulator, loss_sum: float, count: int
    ) -> dict[str, float]:
        """The loss and metrics of an epoch over every rank: ``loss`` (mean per sample) and
        those of :meth:`MetricAccumulator.compute`.

        The loss sum, the sample count and the pixel counts are summed over the ranks
        before dividing, so the numbers are those of the whole epoch and the same on
        every rank.
        """
        import torch

        totals = self.sum(
            torch.tensor([loss_sum, count], dtype=torch.float64, device=self.device)
        ).tolist()
        if self.size > 1:
            metrics.counts = self.sum(metrics.counts.to(self.device))
        return {"loss": totals[0] / max(totals[1], 1), **metrics.compute()}


def is_main_process() -> bool:
    """Whether this process is rank 0 (or the only one), from torchrun's ``RANK``."""
    return int(os.environ.get("RANK", "0")) == 0


def join(device: str = "auto") -> World:
    """The :class:`World` of this process, starting its process group when needed.

    Under torchrun (``WORLD_SIZE`` > 1 in the environment) the process group is started
    from the environment on the first call: NCCL when the device is a CUDA GPU
    (``cuda:LOCAL_RANK``), gloo on the CPU.  It then lives as long as the process, so
    every later training run of the process (each calling this) uses it; a process group
    the caller started is used the same way.  Without torchrun the world is this process.

    Parameters
    ----------
    device
        The ``device`` setting (``auto``, ``cpu``, ``cuda``, ...).

    Raises
    ------
    ConfigError
        When the device cannot be shared out among torchrun's processes.
    """
    import torch.distributed as dist

    from napari_cellseg.device import resolve_device

    if dist.is_available() and dist.is_initialized():
        rank, size = dist.get_rank(), dist.get_world_size()
    else:
        rank, size = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
    resolved = resolve_device(device)
    if size > 1:
        resolved = _process_device(resolved, int(os.environ.get("LOCAL_RANK", "0")))
        if not dist.is_initialized():
            dist.init_process_group("nccl" if resolved.type == "cuda" else "gloo")
            atexit.register(_leave)
    return World(rank=rank, size=size, device=resolved)


def _leave() -> None:
    """End the process group at exit, after the networks that still hold it.

    A DistributedDataParallel network lives in reference cycles: uncollected, it outlives
    the group and is freed at interpreter shutdown, where gloo aborts the process
    ("terminate called without an active exception", SIGABRT; torchrun then kills the
    other ranks) when another rank has closed its connections first.  On a busy 2-core
    machine that happened in 3 of 52 torchrun runs; with the collection in 0 of 64.
    """
    import gc

    import torch.distributed as dist

    gc.collect()
    if dist.is_initialized():
        dist.destroy_process_group()


def _process_device(device: torch.device, local_rank: int) -> torch.device:
    """The device of process ``local_rank`` of its machine: its own GPU, or the CPU."""
    import torch

    if device.type == "cpu":
        return device
    if device.type != "cuda":
        raise ConfigError(
            f"Setting 'device' is '{device}': training in several processes runs on CUDA GPUs "
            "or on the CPU; set device to 'cpu' or 'auto'."
        )
    if device.index not in (None, local_rank):
        raise ConfigError(
            f"Setting 'device' is '{device}' but under torchrun each process uses the GPU "
            f"numbered by its LOCAL_RANK ({local_rank}); set device to 'auto' or 'cuda' and "
            "choose the GPUs with CUDA_VISIBLE_DEVICES."
        )
    if local_rank >= torch.cuda.device_count():
        raise ConfigError(
            f"torchrun started process {local_rank} on this machine but it has only "
            f"{torch.cuda.device_count()} GPU(s): lower --nproc_per_node."
        )
    device = torch.device("cuda", local_rank)
    torch.cuda.set_device(device)
    return device

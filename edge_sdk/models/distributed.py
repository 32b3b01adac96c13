"""Training across processes (torch.distributed): the one place that knows about ranks.

Started by ``torchrun --nproc-per-node N ... -m edge_sdk.cli train ...`` (or ``edge-sdk train --nproc
N``, which launches that): ``init_from_env`` reads torchrun's variables (RANK, WORLD_SIZE,
LOCAL_RANK, MASTER_ADDR, MASTER_PORT) and joins the process group (gloo on CPUs, NCCL when training
on CUDA devices; ``EDGE_SDK_DIST_BACKEND`` overrides). Outside torchrun (or with WORLD_SIZE=1)
nothing is initialized and every helper here is the identity of one process, so one process
trains exactly as without this module.

What the models use:

- ``shard(order)``: a rank's images, ``order[rank::world]`` (strided, so the seeded shuffle stays
  spread over the ranks); ``gather_rows`` + ``unshard`` put per-rank rows back in ``order``.
- ``merge_gaussian``: per-location mean / scatter of every rank merged exactly (Chan et al.'s
  pairwise formula, many-way: M2 = sum_r [M2_r + n_r (mean_r - mean)(mean_r - mean)^T]).
- ``average_gradients`` / ``broadcast_modules`` / ``all_sum``: the arithmetic of
  DistributedDataParallel (parameters from rank 0, the mean of the ranks' gradients before each
  optimizer step), written out because a GAN step uses the discriminator twice in one backward
  pass and inside the generator's, which DDP's reducer refuses.
- ``SyncBatchNorm2d`` / ``synchronized``: batch statistics over the global batch on any backend
  (torch's SyncBatchNorm is GPU-only), so N ranks x batch B normalize as 1 rank x batch N*B.
- ``is_main``: rank 0 alone writes files and shows progress bars.
"""

from __future__ import annotations

import contextlib
import datetime
import os
from typing import Iterator, Sequence

import numpy as np
import torch
from torch import nn

_initialized_here = False


def _dist():
    import torch.distributed as dist

    return dist


def in_torchrun() -> bool:
    """torchrun's variables describe more than one process."""
    return int(os.environ.get("WORLD_SIZE", "1") or 1) > 1


def init_from_env(device: str = "cpu") -> bool:
    """Joins the process group torchrun describes; False (nothing done) outside torchrun."""
    global _initialized_here
    dist = _dist()
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size() > 1
    if not in_torchrun():
        return False
    if not dist.is_available():
        raise RuntimeError("torch.distributed is not available in this torch build")
    backend = os.environ.get("EDGE_SDK_DIST_BACKEND") or (
        "nccl" if str(device).startswith("cuda") and torch.cuda.is_available() else "gloo")
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend, timeout=datetime.timedelta(minutes=60))
    _initialized_here = True
    return True


def shutdown(wait_for_peers: bool = True) -> None:
    """Leaves the process group if ``init_from_env`` joined it.

    After a normal finish every rank first meets the others: a rank that tears gloo down while a
    peer is still working (rank 0 writing the model dir) can abort in gloo's threads
    ("terminate called without an active exception"). After an error it leaves at once, since the
    peers may never reach the barrier and torchrun stops them anyway.
    """
    global _initialized_here
    if _initialized_here:
        dist = _dist()
        if dist.is_initialized():
            if wait_for_peers:
                dist.barrier()
            dist.destroy_process_group()
        _initialized_here = False


def active() -> bool:
    dist = _dist()
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return _dist().get_rank() if active() else 0


def world_size() -> int:
    return _dist().get_world_size() if active() else 1


def is_main() -> bool:
    return rank() == 0


def barrier() -> None:
    if active():
        _dist().barrier()


def rank_seed(seed: int, r: int | None = None) -> int:
    """This rank's seed derived from the one seed: rank 0 keeps it (one process is unchanged),
    rank r > 0 gets an independent stream (numpy SeedSequence of (seed, r))."""
    r = rank() if r is None else int(r)
    if r == 0:
        return int(seed)
    return int(np.random.SeedSequence([int(seed), r]).generate_state(1, np.uint32)[0])


def shard(order: Sequence[int]) -> list:
    """This rank's share of ``order``: order[rank::world]."""
    return list(order)[rank()::world_size()]


def unshard(parts: Sequence[np.ndarray]) -> np.ndarray:
    """Rows of ``shard`` per rank (parts[r] = rows of order[r::W]) -> rows in ``order``."""
    if len(parts) == 1:
        return parts[0]
    n = sum(p.shape[0] for p in parts)
    out = np.empty((n, *parts[0].shape[1:]), dtype=parts[0].dtype)
    for r, p in enumerate(parts):
        out[r::len(parts)] = p
    return out


def _comm_device() -> torch.device:
    return torch.device("cuda", torch.cuda.current_device()) if _dist().get_backend() == "nccl" else torch.device("cpu")


def all_sum(t: torch.Tensor) -> torch.Tensor:
    """Sum over ranks (a new tensor on t's device; t itself when one process)."""
    if not active():
        return t
    c = t.detach().to(_comm_device()).clone()
    _dist().all_reduce(c)
    return c.to(t.device)


def gather_rows(a: np.ndarray) -> list[np.ndarray]:
    """Every rank's array (same trailing shape and dtype, any number of rows), on every rank, in
    rank order."""
    if not active():
        return [a]
    dist, dev, w = _dist(), _comm_device(), world_size()
    t = torch.from_numpy(np.ascontiguousarray(a))
    sizes = torch.tensor([t.shape[0]], dtype=torch.int64, device=dev)
    all_sizes = [torch.zeros_like(sizes) for _ in range(w)]
    dist.all_gather(all_sizes, sizes)
    n = [int(s) for s in all_sizes]
    padded = torch.zeros((max(n), *t.shape[1:]), dtype=t.dtype)
    padded[:t.shape[0]] = t
    padded = padded.to(dev)
    out = [torch.empty_like(padded) for _ in range(w)]
    dist.all_gather(out, padded)
    return [o[:k].cpu().numpy() for o, k in zip(out, n)]


def merge_gaussian(stats) -> None:
    """Merges the per-location statistics of ``streaming.StreamingGaussian`` over ranks in place:
    every rank ends with the count, mean and M2 of all images (exact, in float64)."""
    if not active():
        return
    n_r = float(stats.count)
    n = float(all_sum(torch.tensor([n_r], dtype=torch.float64))[0])
    if n == 0:
        return
    mean = all_sum(stats.mean * n_r) / n
    delta = stats.mean - mean
    m2 = stats.m2
    if n_r:
        m2.baddbmm_(delta[:, :, None], delta[:, None, :], alpha=n_r)
    stats.m2 = all_sum(m2)
    stats.mean = mean
    stats.count = int(round(n))


def broadcast_modules(modules: Sequence[nn.Module]) -> None:
    """Parameters and buffers of rank 0 copied to every rank (as DDP does when it wraps a module)."""
    if not active():
        return
    dist, dev = _dist(), _comm_device()
    for m in modules:
        for t in list(m.parameters()) + list(m.buffers()):
            c = t.detach().to(dev).clone()
            dist.broadcast(c, 0)
            with torch.no_grad():
                t.copy_(c.to(t.device))


def average_gradients(params: Sequence[torch.Tensor]) -> None:
    """Replaces each parameter's gradient with the mean over ranks (one flat all-reduce)."""
    if not active():
        return
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads]).to(_comm_device())
    _dist().all_reduce(flat)
    flat = flat.to(grads[0].device) / world_size()
    offset = 0
    for g in grads:
        k = g.numel()
        g.copy_(flat[offset:offset + k].view_as(g))
        offset += k


def batch_slice(n: int) -> tuple[list[int], float]:
    """Positions of this rank's part of a global batch of n samples and its share of the batch.

    The batch is split as np.array_split does (rank 0 first). A batch of fewer than ``world``
    samples is padded by repeating its first samples, as torch's DistributedSampler pads."""
    w, r = world_size(), rank()
    pos = [i % n for i in range(max(n, w))]
    mine = [pos[i] for i in np.array_split(np.arange(len(pos)), w)[r]]
    return mine, len(mine) / len(pos)


class SyncBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d whose training statistics are those of the global batch (all ranks), on any
    backend (gloo included); the same parameters, buffers and state_dict as BatchNorm2d. Sums are
    all-reduced with autograd (torch.distributed.nn), so the gradient is that of one process
    normalizing the whole batch."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D401
        if not (self.training and active()):
            return super().forward(x)
        from torch.distributed.nn.functional import all_reduce

        dims = (0, 2, 3)
        local_n = x.shape[0] * x.shape[2] * x.shape[3]
        sums = torch.cat([x.sum(dims), x.new_tensor([float(local_n)])])
        sums = all_reduce(sums)
        n = sums[-1]
        mean = sums[:-1] / n
        d = x - mean[None, :, None, None]
        var = all_reduce((d * d).sum(dims)) / n
        y = d * torch.rsqrt(var + self.eps)[None, :, None, None]
        if self.affine:
            y = y * self.weight[None, :, None, None] + self.bias[None, :, None, None]
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked += 1
                m = (1.0 / float(self.num_batches_tracked)) if self.momentum is None else self.momentum
                count = float(n)
                unbiased = var.detach() * (count / max(count - 1.0, 1.0))
                self.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
                self.running_var.mul_(1 - m).add_(unbiased, alpha=m)
        return y


@contextlib.contextmanager
def synchronized(modules: Sequence[nn.Module]) -> Iterator[None]:
    """Within the block, with several ranks: every BatchNorm2d of ``modules`` normalizes over the
    global batch (SyncBatchNorm2d) and the modules start from rank 0's parameters and buffers.
    One process: nothing changes."""
    if not active():
        yield
        return
    swapped = [m for mod in modules for m in mod.modules() if type(m) is nn.BatchNorm2d]
    for m in swapped:
        m.__class__ = SyncBatchNorm2d
    try:
        broadcast_modules(modules)
        yield
    finally:
        for m in swapped:
            m.__class__ = nn.BatchNorm2d

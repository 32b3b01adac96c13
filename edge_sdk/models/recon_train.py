"""Training of ResGANAD and GRD-Net: the loop (`train_adversarial`), the learning-rate schedule,
the augmentation of good patches, and the losses that are not plain torch ones."""

from __future__ import annotations

import math
import os

import numpy as np
import torch
import torch.nn.functional as F

from edge_sdk.models.ssim_loss import SSIMLoss
from edge_sdk.synthesis.perlin import perlin_batch


def restart_factor(step: int, cycle: int, decay: float) -> float:
    """Cosine decay with warm restarts: within restart k (cycles of `cycle` steps) the learning rate
    goes from decay^k times the base rate down to 0 along half a cosine (each restart peaks at
    `decay` times the previous peak; 1/3 for ResGANAD)."""
    k, t = divmod(step, max(1, cycle))
    return (decay**k) * 0.5 * (1.0 + math.cos(math.pi * t / max(1, cycle)))


def augment_geometry(x: torch.Tensor, gen: torch.Generator, max_angle: float, vflip: float) -> torch.Tensor:
    """Random rotation in [-max_angle, max_angle] (bilinear, border padding) and vertical flip
    (upside down) with probability `vflip`. Never a horizontal flip, never beyond +-pi/2: on the
    vial line those look like defects."""
    n = x.shape[0]
    if max_angle > 0:
        ang = (torch.rand(n, generator=gen) * 2.0 - 1.0) * max_angle
        c, s = torch.cos(ang), torch.sin(ang)
        theta = torch.zeros(n, 2, 3)
        theta[:, 0, 0], theta[:, 0, 1], theta[:, 1, 0], theta[:, 1, 1] = c, -s, s, c
        grid = F.affine_grid(theta.to(x), list(x.shape), align_corners=False)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    if vflip > 0:
        flip = (torch.rand(n, generator=gen) < vflip).to(x.device)
        x = torch.where(flip[:, None, None, None], x.flip(-2), x)
    return x


def perlin_perturb(x: torch.Tensor, rng: np.random.Generator, cfg) -> tuple[torch.Tensor, torch.Tensor]:
    """X* and the mask M of Perlin anomalies applied with probability cfg.perlin_probability."""
    xs, m = perlin_batch(x.detach().cpu().numpy(), rng, probability=cfg.perlin_probability,
                         scale_range=tuple(cfg.perlin_scale_range), octaves=cfg.perlin_octaves,
                         threshold=cfg.perlin_threshold, beta_range=tuple(cfg.perlin_beta))
    return torch.from_numpy(xs).to(x), torch.from_numpy(m).to(x)


def masked_l2(x_hat: torch.Tensor, x: torch.Tensor, mask: torch.Tensor,
              denominator: torch.Tensor | None = None) -> torch.Tensor:
    """Noise loss: mean squared error over the perturbed pixels only (0 when nothing was perturbed).
    ``denominator``: the count of perturbed pixels to divide by (across ranks: the global batch's)."""
    m = mask.expand_as(x)
    den = m.sum() if denominator is None else denominator
    return ((x_hat - x) ** 2 * m).sum() / den.clamp_min(1.0)


def focal_loss(prob: torch.Tensor, target: torch.Tensor, gamma: float = 2.0, eps: float = 1e-6) -> torch.Tensor:
    """Focal loss (Lin et al. 2017) of predicted probabilities against a binary mask, pixel mean."""
    p = prob.clamp(eps, 1.0 - eps)
    pt = torch.where(target > 0.5, p, 1.0 - p)
    return (-((1.0 - pt) ** gamma) * torch.log(pt)).mean()


CHECKPOINT_FORMAT = "edge-sdk-train-checkpoint"


def train_adversarial(model, x_all: torch.Tensor, *, epochs: int | None = None, progress: bool = True,
                      checkpoint: str | None = None, resume: bool = False, checkpoint_every: int = 1) -> list[dict]:
    """The training loop of ResGANAD / GRD-Net (ResGANAD's module doc): adversarial training of
    ``model.generator`` (and what ``model._trainable()`` adds) against ``model.discriminator`` on
    preprocessed good patches (N, C, S, S) in [0, 1], seeded by ``model.seed``; GRD-Net adds its
    loss through ``model._extra_generator_loss``. Returns the per-epoch loss history (with
    ``resume``, from the first epoch).

    Across ranks (torchrun; distributed.py) every rank holds all patches, draws the permutation
    and the augmentation of the global batch (``batch_size`` per rank x ranks) from the one seed and
    trains on its part of it; gradients are averaged over ranks, losses are the rank's share of
    the global batch's and BatchNorm normalizes over the global batch (``distributed.synchronized``),
    so N ranks x batch B take the steps of one process with batch N * B. Rank-local randomness
    (the discriminator's re-initialization after a collapse) comes from per-rank seeds
    (``distributed.rank_seed``) and is replaced by rank 0's.

    ``checkpoint``: a file (safetensors, written by rank 0 through a temporary file and a rename)
    holding, every ``checkpoint_every`` epochs and after the last, the weights, both optimizers
    and schedules, every random generator's state and the history; ``resume`` continues from it,
    so a killed run resumed ends with the weights of an uninterrupted one."""
    from edge_sdk.models import distributed as dist

    c = model.config
    epochs = int(epochs or c.epochs)
    n = x_all.shape[0]
    if n == 0:
        raise ValueError("training data set is empty")
    world = dist.world_size()
    # Test hook: the equivalence of N ranks x batch B with one process x batch N * B is a claim
    # about the algorithm, but in float32 Adam and the GAN amplify the rounding differences of
    # the two batch splits within a few steps; in float64 the same arithmetic rounds ~1e-16, so
    # a multi-step comparison can show the algorithm's equivalence. The weights end in float32.
    wide = os.environ.get("EDGE_SDK_TRAIN_DTYPE", "float32") == "float64"
    if wide:
        for m in model._trainable() + [model.discriminator]:
            m.double()
        x_all = x_all.double()
    torch.manual_seed(dist.rank_seed(model.seed))
    gen = torch.Generator().manual_seed(model.seed)
    rng = np.random.default_rng(model.seed)
    g_params = [p for m in model._trainable() for p in m.parameters()]
    d_params = list(model.discriminator.parameters())
    opt_g = torch.optim.Adam(g_params, lr=c.lr, betas=(c.beta1, c.beta2))
    opt_d = torch.optim.Adam(d_params, lr=c.lr, betas=(c.beta1, c.beta2))
    global_batch = c.batch_size * world
    steps = math.ceil(n / global_batch)
    cycle = c.cycle_epochs * steps
    lam = lambda t: restart_factor(t, cycle, c.restart_decay)  # noqa: E731
    sched = [torch.optim.lr_scheduler.LambdaLR(o, lam) for o in (opt_g, opt_d)]
    ssim = SSIMLoss(c.ssim_window, c.ssim_sigma, c.ssim_k1, c.ssim_k2, 1.0)
    modules = model._trainable() + [model.discriminator]
    for m in modules:
        m.train()
    history: list[dict] = []
    first = 0
    identity = _checkpoint_identity(model, x_all, world)
    state = (model, {"opt_g": opt_g, "opt_d": opt_d}, {"sched_g": sched[0], "sched_d": sched[1]}, gen, rng)
    if checkpoint and resume:
        restored = load_checkpoint(checkpoint, identity, *state)
        if restored is None:
            if dist.is_main():
                import sys
                print(f"train: --resume: no checkpoint at {checkpoint}; training from the first epoch", file=sys.stderr)
        else:
            first, history = restored
    bar = range(first, epochs)
    if progress:
        from tqdm import tqdm
        bar = tqdm(bar, desc=f"train {model.name}", unit="epoch", initial=first, total=epochs)
    with dist.synchronized(modules):
        for epoch in bar:
            perm = torch.randperm(n, generator=gen)
            sums: dict[str, float] = {}
            for b in range(steps):
                idx = perm[b * global_batch:(b + 1) * global_batch]
                x = augment_geometry(x_all[idx].to(model.device), gen, c.rotation, c.vflip)
                x_star, mask = perlin_perturb(x, rng, c)
                share, noise_den = 1.0, None
                if world > 1:  # this rank's part of the global batch, as one process would draw it
                    mine, share = dist.batch_slice(x.shape[0])
                    if x.shape[0] < world:  # padded (DistributedSampler's rule): the padded batch's pixels
                        x, x_star, mask = x[mine], x_star[mine], mask[mine]
                        noise_den = dist.all_sum(mask.expand_as(x).sum())
                    else:
                        noise_den = mask.expand_as(x).sum()
                        x, x_star, mask = x[mine], x_star[mine], mask[mine]
                x_hat, z, z_hat = model.generator(x_star)
                # discriminator: real patches vs reconstructions
                real, _ = model.discriminator(x)
                fake, _ = model.discriminator(x_hat.detach())
                loss_d = 0.5 * (F.binary_cross_entropy_with_logits(real, torch.ones_like(real)) +
                                F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake)))
                opt_d.zero_grad(set_to_none=True)
                (loss_d if world == 1 else loss_d * (share * world)).backward()
                dist.average_gradients(d_params)
                opt_d.step()
                # generator
                _, f_real = model.discriminator(x)
                _, f_fake = model.discriminator(x_hat)
                l_adv = F.mse_loss(f_fake, f_real.detach())
                l_con = c.w_huber * F.huber_loss(x_hat, x, delta=c.huber_delta) + c.w_ssim * ssim(x_hat, x)
                l_enc = F.l1_loss(z_hat, z)
                l_noise = masked_l2(x_hat, x, mask, noise_den)
                extra, extra_logs = model._extra_generator_loss(x, x_star, x_hat, mask)
                if world == 1:
                    loss_g = c.w_adv * l_adv + c.w_con * l_con + c.w_enc * l_enc + c.w_noise * l_noise + extra
                else:  # mean terms weighted by the rank's share; the noise term is already its part
                    loss_g = world * (share * (c.w_adv * l_adv + c.w_con * l_con + c.w_enc * l_enc + extra)
                                      + c.w_noise * l_noise)
                opt_g.zero_grad(set_to_none=True)
                loss_g.backward()
                dist.average_gradients(g_params)
                opt_g.step()
                for s in sched:
                    s.step()
                logs = {"d": loss_d.item(), "g": loss_g.item(), "adv": l_adv.item(), "con": l_con.item(),
                        "enc": l_enc.item(), "noise": l_noise.item(), **extra_logs}
                if world > 1:  # the global batch's values (the same on every rank)
                    weights = {k: (1.0 / world if k == "g" else 1.0 if k == "noise" else share) for k in logs}
                    total = dist.all_sum(torch.tensor([logs[k] * weights[k] for k in logs], dtype=torch.float64))
                    logs = dict(zip(logs, total.tolist()))
                if logs["d"] < 1e-5:  # collapsed discriminator: start it again (GANomaly)
                    for mod in model.discriminator.modules():
                        if hasattr(mod, "reset_parameters"):
                            mod.reset_parameters()
                    dist.broadcast_modules([model.discriminator])
                for k, v in logs.items():
                    sums[k] = sums.get(k, 0.0) + v / steps
            history.append({"epoch": epoch, **{k: round(v, 6) for k, v in sums.items()},
                            "lr": float(opt_g.param_groups[0]["lr"])})
            if progress:
                bar.set_postfix(g=f"{sums['g']:.3f}", d=f"{sums['d']:.3f}", con=f"{sums['con']:.4f}")
            if checkpoint and ((epoch + 1) % max(1, int(checkpoint_every)) == 0 or epoch + 1 == epochs):
                save_checkpoint(checkpoint, identity, epoch + 1, history, *state)
    for m in modules:
        m.eval()
        if wide:
            m.float()
    return history


# -- checkpoints ------------------------------------------------------------------------------
def _checkpoint_identity(model, x_all: torch.Tensor, world: int) -> dict:
    """What a checkpoint must share with the run that resumes it (the epoch count may differ)."""
    import hashlib

    settings = {k: v for k, v in model.config.to_json().items() if k != "epochs"}
    data = hashlib.sha256(np.ascontiguousarray(x_all.numpy()).tobytes()).hexdigest()
    return {"model": model.name, "seed": int(model.seed), "settings": settings, "processes": int(world),
            "images": int(x_all.shape[0]), "data_sha256": data}


def save_checkpoint(path, identity: dict, epochs_done: int, history: list[dict], model, optimizers: dict,
                    schedulers: dict, gen: torch.Generator, rng: np.random.Generator) -> None:
    """Every rank calls it (the ranks' torch random states are gathered); rank 0 writes ``path``
    atomically (safetensors: tensors + a JSON header; nothing pickled)."""
    import json

    from edge_sdk.models import distributed as dist

    torch_states = dist.gather_rows(torch.get_rng_state().numpy()[None])
    if not dist.is_main():
        return
    from safetensors.numpy import save_file

    from edge_sdk.atomic import atomic_path

    tensors: dict[str, np.ndarray] = {}
    for name, module in model._checkpoint_modules().items():
        for k, v in module.state_dict().items():
            tensors[f"module/{name}/{k}"] = v.detach().cpu().numpy()
    groups = {}
    for name, opt in optimizers.items():
        sd = opt.state_dict()
        for pid, st in sd["state"].items():
            for k, v in st.items():
                tensors[f"{name}/{pid}/{k}"] = (v.detach().cpu().numpy() if torch.is_tensor(v)
                                                else np.asarray(v))
        groups[name] = sd["param_groups"]
    tensors["rng/generator"] = gen.get_state().numpy()
    for r, st in enumerate(torch_states):
        tensors[f"rng/torch/{r}"] = st[0]
    meta = {"format": CHECKPOINT_FORMAT, "version": 1, "identity": identity, "epochs_done": int(epochs_done),
            "history": history, "param_groups": groups,
            "schedulers": {k: {a: b for a, b in s.state_dict().items() if a != "lr_lambdas"}
                           for k, s in schedulers.items()},
            "numpy_rng": rng.bit_generator.state}
    with atomic_path(path) as tmp:
        save_file({k: np.require(v, requirements="C") for k, v in tensors.items()}, tmp,
                  metadata={"checkpoint": json.dumps(meta)})


def load_checkpoint(path, identity: dict, model, optimizers: dict, schedulers: dict, gen: torch.Generator,
                    rng: np.random.Generator) -> tuple[int, list[dict]] | None:
    """Restores what ``save_checkpoint`` wrote (None when ``path`` does not exist); ValueError
    naming what differs when the checkpoint belongs to another run."""
    import json
    import os

    from safetensors import safe_open
    from safetensors.numpy import load_file

    from edge_sdk.models import distributed as dist

    if not os.path.exists(path):
        return None
    try:
        with safe_open(path, "np") as f:
            meta = json.loads((f.metadata() or {}).get("checkpoint", "null"))
        tensors = load_file(path)
    except Exception as exc:  # SafetensorError, JSON errors: not a checkpoint this code wrote
        raise ValueError(f"{path}: not a training checkpoint ({type(exc).__name__}: {exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != CHECKPOINT_FORMAT or meta.get("version") != 1:
        raise ValueError(f"{path}: not an {CHECKPOINT_FORMAT} (version 1) file")
    theirs = meta["identity"]
    differ = sorted(k for k in set(identity) | set(theirs) if identity.get(k) != theirs.get(k))
    if differ:
        raise ValueError(f"{path}: the checkpoint is of another run ({', '.join(differ)} differ: "
                         + "; ".join(f"{k}: checkpoint {theirs.get(k)!r}, now {identity.get(k)!r}"
                                     for k in differ if k != "settings") + ")")
    for name, module in model._checkpoint_modules().items():
        prefix = f"module/{name}/"
        module.load_state_dict({k[len(prefix):]: torch.from_numpy(v) for k, v in tensors.items()
                                if k.startswith(prefix)}, strict=True)
    for name, opt in optimizers.items():
        state: dict[int, dict] = {}
        for k, v in tensors.items():
            if k.startswith(name + "/"):
                _, pid, key = k.split("/", 2)
                state.setdefault(int(pid), {})[key] = torch.from_numpy(v.copy())
        opt.load_state_dict({"state": state, "param_groups": meta["param_groups"][name]})
    for name, s in schedulers.items():
        s.load_state_dict({**meta["schedulers"][name], "lr_lambdas": [None] * len(s.lr_lambdas)})
    gen.set_state(torch.from_numpy(tensors["rng/generator"].copy()))
    rng.bit_generator.state = meta["numpy_rng"]
    torch.set_rng_state(torch.from_numpy(tensors[f"rng/torch/{dist.rank()}"].copy()))
    return int(meta["epochs_done"]), list(meta["history"])

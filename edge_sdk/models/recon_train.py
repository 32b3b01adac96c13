"""Training of ResGANAD and GRD-Net: the loop (`train_adversarial`), the learning-rate schedule,
the augmentation of good patches, and the losses that are not plain torch ones."""

from __future__ import annotations

import math

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


def masked_l2(x_hat: torch.Tensor, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Noise loss: mean squared error over the perturbed pixels only (0 when nothing was perturbed)."""
    m = mask.expand_as(x)
    return ((x_hat - x) ** 2 * m).sum() / m.sum().clamp_min(1.0)


def focal_loss(prob: torch.Tensor, target: torch.Tensor, gamma: float = 2.0, eps: float = 1e-6) -> torch.Tensor:
    """Focal loss (Lin et al. 2017) of predicted probabilities against a binary mask, pixel mean."""
    p = prob.clamp(eps, 1.0 - eps)
    pt = torch.where(target > 0.5, p, 1.0 - p)
    return (-((1.0 - pt) ** gamma) * torch.log(pt)).mean()


def train_adversarial(model, x_all: torch.Tensor, *, epochs: int | None = None, progress: bool = True) -> list[dict]:
    """The training loop of ResGANAD / GRD-Net (ResGANAD's module doc): adversarial training of
    ``model.generator`` (and what ``model._trainable()`` adds) against ``model.discriminator`` on
    preprocessed good patches (N, C, S, S) in [0, 1], seeded by ``model.seed``; GRD-Net adds its
    loss through ``model._extra_generator_loss``. Returns the per-epoch loss history."""
    c = model.config
    epochs = int(epochs or c.epochs)
    n = x_all.shape[0]
    if n == 0:
        raise ValueError("training data set is empty")
    torch.manual_seed(model.seed)
    gen = torch.Generator().manual_seed(model.seed)
    rng = np.random.default_rng(model.seed)
    g_params = [p for m in model._trainable() for p in m.parameters()]
    opt_g = torch.optim.Adam(g_params, lr=c.lr, betas=(c.beta1, c.beta2))
    opt_d = torch.optim.Adam(model.discriminator.parameters(), lr=c.lr, betas=(c.beta1, c.beta2))
    steps = math.ceil(n / c.batch_size)
    cycle = c.cycle_epochs * steps
    lam = lambda t: restart_factor(t, cycle, c.restart_decay)  # noqa: E731
    sched = [torch.optim.lr_scheduler.LambdaLR(o, lam) for o in (opt_g, opt_d)]
    ssim = SSIMLoss(c.ssim_window, c.ssim_sigma, c.ssim_k1, c.ssim_k2, 1.0)
    for m in model._trainable() + [model.discriminator]:
        m.train()
    bar = range(epochs)
    if progress:
        from tqdm import tqdm
        bar = tqdm(bar, desc=f"train {model.name}", unit="epoch")
    history = []
    for epoch in bar:
        perm = torch.randperm(n, generator=gen)
        sums: dict[str, float] = {}
        for b in range(steps):
            idx = perm[b * c.batch_size:(b + 1) * c.batch_size]
            x = augment_geometry(x_all[idx].to(model.device), gen, c.rotation, c.vflip)
            x_star, mask = perlin_perturb(x, rng, c)
            x_hat, z, z_hat = model.generator(x_star)
            # discriminator: real patches vs reconstructions
            real, _ = model.discriminator(x)
            fake, _ = model.discriminator(x_hat.detach())
            loss_d = 0.5 * (F.binary_cross_entropy_with_logits(real, torch.ones_like(real)) +
                            F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake)))
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()
            # generator
            _, f_real = model.discriminator(x)
            _, f_fake = model.discriminator(x_hat)
            l_adv = F.mse_loss(f_fake, f_real.detach())
            l_con = c.w_huber * F.huber_loss(x_hat, x, delta=c.huber_delta) + c.w_ssim * ssim(x_hat, x)
            l_enc = F.l1_loss(z_hat, z)
            l_noise = masked_l2(x_hat, x, mask)
            extra, extra_logs = model._extra_generator_loss(x, x_star, x_hat, mask)
            loss_g = c.w_adv * l_adv + c.w_con * l_con + c.w_enc * l_enc + c.w_noise * l_noise + extra
            opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            opt_g.step()
            for s in sched:
                s.step()
            if loss_d.item() < 1e-5:  # collapsed discriminator: start it again (GANomaly)
                for mod in model.discriminator.modules():
                    if hasattr(mod, "reset_parameters"):
                        mod.reset_parameters()
            logs = {"d": loss_d.item(), "g": loss_g.item(), "adv": l_adv.item(), "con": l_con.item(),
                    "enc": l_enc.item(), "noise": l_noise.item(), **extra_logs}
            for k, v in logs.items():
                sums[k] = sums.get(k, 0.0) + v / steps
        history.append({"epoch": epoch, **{k: round(v, 6) for k, v in sums.items()},
                        "lr": float(opt_g.param_groups[0]["lr"])})
        if progress:
            bar.set_postfix(g=f"{sums['g']:.3f}", d=f"{sums['d']:.3f}", con=f"{sums['con']:.4f}")
    for m in model._trainable() + [model.discriminator]:
        m.eval()
    return history

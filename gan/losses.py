"""Losses of the stable conditional-GAN recipe: hinge adversarial loss, auxiliary classification,
R1 gradient penalty."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def d_hinge(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Discriminator hinge loss: mean(relu(1 - D(real))) + mean(relu(1 + D(fake)))."""
    return F.relu(1 - real).mean() + F.relu(1 + fake).mean()


def g_hinge(fake: torch.Tensor) -> torch.Tensor:
    """Generator hinge loss: -mean(D(fake))."""
    return -fake.mean()


def r1_penalty(adv: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
    """R1 (Mescheder et al. 2018): mean over the batch of |d D(x) / d x|^2 at real images x (which
    must require grad); weight it by gamma / 2."""
    (grad,) = torch.autograd.grad(adv.sum(), images, create_graph=True)
    return grad.pow(2).flatten(1).sum(1).mean()


def aux_loss(out: dict[str, torch.Tensor], pose: torch.Tensor, expression: torch.Tensor, identity: torch.Tensor | None) -> torch.Tensor:
    """Cross-entropy of the discriminator's pose, expression (and identity) heads against the labels."""
    loss = F.cross_entropy(out["pose"], pose) + F.cross_entropy(out["expression"], expression)
    return loss + F.cross_entropy(out["identity"], identity) if identity is not None else loss


def expression_regions(images: torch.Tensor, pose: torch.Tensor, identity: torch.Tensor, poses: int) -> torch.Tensor:
    """Where a face changes with its expression, per pose: (poses, H, W) in [0, 1]. A person's faces at
    one pose differ only by their expressions (the Faces world draws nothing else that varies), so each
    pixel's mean absolute difference from its (person, pose) group's mean face, summed over channels,
    over every group of two faces or more, scaled to 1 at the pose's largest. Zeros for a pose where no
    person has two faces."""
    out = torch.zeros(poses, *images.shape[-2:])
    for p in range(poses):
        for person in identity[pose == p].unique():  # a group of one face has no spread: it adds zeros
            group = images[(pose == p) & (identity == person)]
            out[p] += (group - group.mean(0)).abs().sum((0, 1))
        out[p] /= out[p].max().clamp_min(1e-8)
    return out


def weighted_l1(x: torch.Tensor, y: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """Mean |x - y| over (B, C, H, W), each pixel weighed by weight (B, H, W) when given."""
    diff = (x - y).abs()
    return diff.mean() if weight is None else (diff * weight[:, None]).mean()

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

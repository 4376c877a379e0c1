"""One pose/expression GAN training run's players and steps: the discriminator step, the generator
step (DESIGN's GAN task contract) and the EMA generator's sample grid."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from PIL import Image
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from gan.config import GANExperimentConfig
from gan.data import to_image
from gan.diffaugment import diff_augment
from gan.discriminators import FaceDiscriminator
from gan.generators import FaceGenerator
from gan.losses import aux_loss, d_hinge, g_hinge, r1_penalty


class FaceGAN:
    """The generator, its EMA, the discriminator and their optimizers."""

    def __init__(self, cfg: GANExperimentConfig):
        self.cfg, t = cfg, cfg.train
        self.generator = FaceGenerator(cfg.model.generator)
        self.discriminator = FaceDiscriminator(cfg.model.discriminator)
        self.ema = AveragedModel(self.generator, multi_avg_fn=get_ema_multi_avg_fn(t.ema_decay), use_buffers=True)
        self.opt_g = torch.optim.Adam(self.generator.parameters(), lr=t.lr_g, betas=t.betas)
        self.opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=t.lr_d, betas=t.betas)
        # the run's own random stream (targets, noise, DiffAugment), saved with each checkpoint, so a
        # resumed run draws what an uninterrupted one would (a DataLoader draws from the global one)
        self.rng = torch.Generator().manual_seed(t.seed)

    def targets(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """A random target pose (among those the training split has) and expression per face."""
        n, device = batch["image"].size(0), batch["image"].device
        faces = self.cfg.data.faces
        allowed = torch.tensor([faces.poses.index(p) for p in faces.poses_of(self.cfg.data.train)], device=device)
        pose = allowed[torch.randint(len(allowed), (n,), generator=self.rng).to(device)]
        return pose, torch.randint(len(faces.expressions), (n,), generator=self.rng).to(device)

    def noise(self, like: torch.Tensor) -> torch.Tensor:
        return torch.randn(like.size(0), self.cfg.model.generator.noise_dim, generator=self.rng).to(like.device)

    def _augment(self, x: torch.Tensor) -> torch.Tensor:
        return diff_augment(x, self.cfg.train.diffaugment, self.rng) if self.cfg.train.diffaugment else x

    def discriminator_step(self, batch: dict[str, torch.Tensor], pose: torch.Tensor, expression: torch.Tensor, accelerator) -> dict[str, torch.Tensor]:
        """Hinge loss on real faces vs faces drawn at (pose, expression), + aux classification of the
        real ones, + R1; one optimizer step."""
        t, real = self.cfg.train, batch["image"]
        with torch.no_grad(), accelerator.autocast():
            fake = self.generator(real, pose, expression, self.noise(real))
        if t.r1_gamma > 0:
            real = real.detach().requires_grad_(True)
        with accelerator.autocast():
            out_real = self.discriminator(self._augment(real), batch["pose"], batch["expression"])
            out_fake = self.discriminator(self._augment(fake.float()), pose, expression)
            adv = d_hinge(out_real["adv"].float(), out_fake["adv"].float())
            aux = aux_loss({k: v.float() for k, v in out_real.items()}, batch["pose"], batch["expression"], batch["identity"])
        loss = adv + t.aux_weight * aux
        logs = {"d/adv": adv.detach(), "d/aux": aux.detach()}
        if t.r1_gamma > 0:
            r1 = r1_penalty(out_real["adv"].float(), real)
            loss = loss + t.r1_gamma / 2 * r1
            logs["d/r1"] = r1.detach()
        self.opt_d.zero_grad(set_to_none=True)
        accelerator.backward(loss)
        self.opt_d.step()
        return {"d/loss": loss.detach(), **logs}

    def generator_step(self, batch: dict[str, torch.Tensor], pose: torch.Tensor, expression: torch.Tensor, accelerator) -> dict[str, torch.Tensor]:
        """Fool the discriminator at (pose, expression) while keeping the identity, and redraw each face
        at its own pose and expression (L1); one optimizer step, then the EMA update."""
        t, real = self.cfg.train, batch["image"]
        with accelerator.autocast():
            code = self.generator.encode(real)
            fake = self.generator.decode(code, pose, expression, self.noise(real))
            same = self.generator.decode(code, batch["pose"], batch["expression"], self.noise(real))
            out = self.discriminator(self._augment(fake), pose, expression)
            adv = g_hinge(out["adv"].float())
            aux = aux_loss({k: v.float() for k, v in out.items()}, pose, expression, batch["identity"])
            recon = F.l1_loss(same.float(), real)
        loss = adv + t.aux_weight * aux + t.recon_weight * recon
        self.opt_g.zero_grad(set_to_none=True)
        accelerator.backward(loss)
        self.opt_g.step()
        self.ema.update_parameters(accelerator.unwrap_model(self.generator))
        return {"g/loss": loss.detach(), "g/adv": adv.detach(), "g/aux": aux.detach(), "g/recon": recon.detach()}

    @torch.no_grad()
    def sample_grid(self, sources: torch.Tensor) -> Image.Image:
        """(rows = source faces; columns = the source, then every pose x expression) drawn by the EMA
        generator with zero noise."""
        g = self.ema.module.eval()
        poses, exprs = g.cfg.poses, g.cfg.expressions
        code = g.encode(sources)
        p = torch.arange(poses, device=sources.device).repeat_interleave(exprs)
        e = torch.arange(exprs, device=sources.device).repeat(poses)
        zeros = torch.zeros(len(p), g.cfg.noise_dim, device=sources.device)
        rows = [torch.cat([sources[i : i + 1], g.decode(code[i : i + 1].expand(len(p), -1), p, e, zeros)]) for i in range(sources.size(0))]
        grid = torch.stack(rows)  # (rows, 1 + P*E, 3, H, W)
        n_rows, n_cols, _, h, w = grid.shape
        return to_image(grid.permute(2, 0, 3, 1, 4).reshape(3, n_rows * h, n_cols * w))

    def extra_state(self) -> dict[str, torch.Tensor]:
        """What accelerate's state does not hold: the EMA generator and the run's random stream."""
        return {"rng": self.rng.get_state(), **{f"ema.{k}": v for k, v in self.ema.state_dict().items()}}

    def load_extra_state(self, tensors: dict[str, torch.Tensor]) -> None:
        if "rng" not in tensors:
            raise ValueError("the checkpoint has no GAN state (extra_state.safetensors); was it saved by tasks.train_gan?")
        self.rng.set_state(tensors["rng"])
        self.ema.load_state_dict({k.removeprefix("ema."): v for k, v in tensors.items() if k.startswith("ema.")})

"""A GAN training run's players: GANPlayers holds what every kind shares (the generator, its EMA, the
discriminator, both optimizers, the run's random stream and their saved state); FaceGAN is the
pose/expression GAN's targets, discriminator step, generator step (DESIGN's GAN task contract, with
paired L1 and optional classifier guidance) and sample grid. gan.scene_gan holds the scene-graph one."""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image
from torch import nn
from torch.optim.swa_utils import AveragedModel

from gan.config import GANExperimentConfig
from gan.data import FaceTensors, stack_faces, to_image
from gan.diffaugment import diff_augment
from gan.discriminators import FaceDiscriminator
from gan.evaluate import ClassifierConfig, FaceClassifier, classifier_at
from gan.generators import FaceGenerator
from gan.losses import aux_loss, d_hinge, expression_regions, g_hinge, r1_penalty, weighted_l1
from vl.data.faces.dataset import build_faces_dataset


def ema_with_warmup(decay: float):
    """AveragedModel's EMA update with the usual warm-up (TF's ExponentialMovingAverage, timm): decay
    min(decay, (1 + n) / (10 + n)) after n updates, so early samples are not mostly the initial weights."""

    @torch.no_grad()
    def update(ema: list[torch.Tensor], current: list[torch.Tensor], n_averaged: torch.Tensor) -> None:
        n = n_averaged.item()
        d = min(decay, (1 + n) / (10 + n))
        for e, c in zip(ema, current):
            if e.is_floating_point():
                e.lerp_(c, 1 - d)
            else:  # BatchNorm's batch counters
                e.copy_(c)

    return update


class GANPlayers:
    """The generator, its EMA, the discriminator, their optimizers and the run's random stream: what
    tasks.train_gan prepares, checkpoints and resumes for every kind of GAN. A kind adds targets(batch),
    discriminator_step, generator_step and sample_grid."""

    def __init__(self, cfg, generator: nn.Module, discriminator: nn.Module):
        t = cfg.train
        self.cfg = cfg
        self.generator, self.discriminator = generator, discriminator
        self.ema = AveragedModel(self.generator, multi_avg_fn=ema_with_warmup(t.ema_decay), use_buffers=True)
        self.opt_g = torch.optim.Adam(self.generator.parameters(), lr=t.lr_g, betas=t.betas)
        self.opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=t.lr_d, betas=t.betas)
        # the run's own random stream (targets, noise, DiffAugment), saved with each checkpoint, so a
        # resumed run draws what an uninterrupted one would (a DataLoader draws from the global one)
        self.rng = torch.Generator().manual_seed(t.seed)

    def _augment(self, x: torch.Tensor) -> torch.Tensor:
        return diff_augment(x, self.cfg.train.diffaugment, self.rng) if self.cfg.train.diffaugment else x

    @torch.no_grad()
    def update_ema(self, generator: nn.Module) -> None:
        """EMA of the weights and BatchNorm statistics. Spectral norm's power-iteration vectors (the
        encoder's `_u`, `_v` buffers) are copied, not averaged: an average of unit vectors is not one, and
        in eval mode it would scale the weights by a wrong sigma."""
        self.ema.update_parameters(generator)
        for (name, ema_buffer), buffer in zip(self.ema.module.named_buffers(), generator.buffers()):
            if name.endswith(("._u", "._v")):
                ema_buffer.copy_(buffer)

    def extra_state(self) -> dict[str, torch.Tensor]:
        """What accelerate's state does not hold: the EMA generator and the run's random stream."""
        return {"rng": self.rng.get_state(), **{f"ema.{k}": v for k, v in self.ema.state_dict().items()}}

    def load_extra_state(self, tensors: dict[str, torch.Tensor]) -> None:
        if "rng" not in tensors:
            raise ValueError("the checkpoint has no GAN state (extra_state.safetensors); was it saved by tasks.train_gan?")
        self.rng.set_state(tensors["rng"])
        self.ema.load_state_dict({k.removeprefix("ema."): v for k, v in tensors.items() if k.startswith("ema.")})


class FaceGAN(GANPlayers):
    """The pose/expression GAN: DR-GAN's generator and multi-task discriminator."""

    def __init__(self, cfg: GANExperimentConfig, data: FaceTensors | None = None, teacher: FaceClassifier | None = None):
        super().__init__(cfg, FaceGenerator(cfg.model.generator), FaceDiscriminator(cfg.model.discriminator))
        t = cfg.train
        if t.teacher_weight > 0 and teacher is None:
            raise ValueError("train.teacher_weight > 0 needs the frozen face classifier: FaceGAN(cfg, data, teacher)")
        self.teacher = teacher.eval().requires_grad_(False) if teacher is not None else None
        if t.pair_weight > 0 and data is None:
            raise ValueError("train.pair_weight > 0 draws target faces from the training data: pass it as FaceGAN(cfg, data)")
        self.data = data
        self.same_person: dict[int, list[int]] = {}  # identity -> indices of its training faces
        for i, identity in enumerate(data.rows["identity"] if data is not None else []):
            self.same_person.setdefault(identity, []).append(i)
        self.pixel_weight = None  # (poses, H, W): each pixel's L1 weight at each pose
        if t.expression_region_weight > 0:
            if data is None:
                raise ValueError("train.expression_region_weight > 0 finds the expression regions in the training faces: pass them as FaceGAN(cfg, data)")
            images, labels = stack_faces(data.rows, cfg.data.faces)
            regions = expression_regions(images, labels["pose"], labels["identity"], len(cfg.data.faces.poses))
            self.pixel_weight = 1 + t.expression_region_weight * regions

    @classmethod
    def build(cls, cfg: GANExperimentConfig, out: Path, accelerator) -> tuple[FaceGAN, FaceTensors]:
        """The players and the training faces (what tasks.train_gan asks of every kind); with classifier
        guidance, the teacher is trained first (once, on the main process) and reused on resume."""
        t, faces = cfg.train, cfg.data.faces
        rows = build_faces_dataset(faces, splits=[cfg.data.train])[cfg.data.train]
        data = FaceTensors(rows, faces)
        teacher = None
        if t.teacher_weight > 0:
            with accelerator.main_process_first():
                teacher = classifier_at(
                    out / "teacher", lambda: stack_faces(rows, faces), ClassifierConfig.of(faces), t.teacher_steps, t.seed + 1, "teacher on real faces"
                ).to(accelerator.device)
        return cls(cfg, data, teacher), data

    def sample_sources(self, data: FaceTensors) -> torch.Tensor:
        """Faces of the first sample_identities different people: the sample grid's rows."""
        seen: dict[int, int] = {}
        for i, identity in enumerate(data.rows["identity"]):
            seen.setdefault(identity, i)
            if len(seen) == self.cfg.train.sample_identities:
                break
        return torch.stack([data[i]["image"] for i in seen.values()])

    def targets(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """What each face is redrawn as: {"pose", "expression"} (B,), plus "image" with paired training
        (train.pair_weight > 0): another training face of the same person gives its pose, expression
        and pixels; otherwise a random pose (among those the training split has) and expression."""
        n, device = batch["image"].size(0), batch["image"].device
        if self.cfg.train.pair_weight > 0:
            pick = lambda same: same[torch.randint(len(same), (1,), generator=self.rng).item()]  # noqa: E731
            items = [self.data[pick(self.same_person[i])] for i in batch["identity"].tolist()]
            return {
                "image": torch.stack([it["image"] for it in items]).to(device),
                **{k: torch.tensor([it[k] for it in items], device=device) for k in ("pose", "expression")},
            }
        faces = self.cfg.data.faces
        allowed = torch.tensor([faces.poses.index(p) for p in faces.poses_of(self.cfg.data.train)], device=device)
        pose = allowed[torch.randint(len(allowed), (n,), generator=self.rng).to(device)]
        return {"pose": pose, "expression": torch.randint(len(faces.expressions), (n,), generator=self.rng).to(device)}

    def noise(self, like: torch.Tensor) -> torch.Tensor:
        return torch.randn(like.size(0), self.cfg.model.generator.noise_dim, generator=self.rng).to(like.device)

    def _pixel_weight(self, pose: torch.Tensor) -> torch.Tensor | None:
        return None if self.pixel_weight is None else self.pixel_weight.to(pose.device)[pose]

    def discriminator_step(self, batch: dict[str, torch.Tensor], target: dict[str, torch.Tensor], accelerator) -> dict[str, torch.Tensor]:
        """Hinge loss on real faces vs faces redrawn at the target pose and expression, + aux
        classification of the real ones, + R1; one optimizer step."""
        t, real = self.cfg.train, batch["image"]
        pose, expression = target["pose"], target["expression"]
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

    def generator_step(self, batch: dict[str, torch.Tensor], target: dict[str, torch.Tensor], accelerator) -> dict[str, torch.Tensor]:
        """Fool the discriminator at the target pose and expression while keeping the identity, match
        the target face when there is one (L1), and redraw each face at its own pose and expression
        (L1; both weigh the expression's pixels up with train.expression_region_weight); one optimizer
        step, then the EMA update."""
        t, real = self.cfg.train, batch["image"]
        pose, expression = target["pose"], target["expression"]
        with accelerator.autocast():
            fake, same = self.generator(real, pose, expression, self.noise(real), own=(batch["pose"], batch["expression"], self.noise(real)))
            out = self.discriminator(self._augment(fake), pose, expression)
            adv = g_hinge(out["adv"].float())
            aux = aux_loss({k: v.float() for k, v in out.items()}, pose, expression, batch["identity"])
            recon = weighted_l1(same.float(), real, self._pixel_weight(batch["pose"]))
        loss = adv + t.aux_weight * aux + t.recon_weight * recon
        logs = {"g/adv": adv.detach(), "g/aux": aux.detach(), "g/recon": recon.detach()}
        if self.teacher is not None:
            seen = self.teacher(fake.float())
            guide = aux_loss(seen, pose, expression, batch["identity"])
            loss = loss + t.teacher_weight * guide
            logs["g/teacher"] = guide.detach()
        if "image" in target:
            pair = weighted_l1(fake.float(), target["image"], self._pixel_weight(pose))
            loss = loss + t.pair_weight * pair
            logs["g/pair"] = pair.detach()
        self.opt_g.zero_grad(set_to_none=True)
        accelerator.backward(loss)
        self.opt_g.step()
        self.update_ema(accelerator.unwrap_model(self.generator))
        return {"g/loss": loss.detach(), **logs}

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

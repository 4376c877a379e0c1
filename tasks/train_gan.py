"""Train a GAN: the pose/expression face GAN or the scene-graph GAN (the config's `kind`), one loop.

    accelerate launch -m tasks.train_gan --config configs/gan/faces.yaml [train.steps=2000 ...] [--resume latest]
    accelerate launch -m tasks.train_gan --config configs/gan/scene_graph.yaml

Writes <output_dir>/config.yaml (resolved), checkpoints/step_*/ (accelerate state: both players, the
EMA generator, optimizers, RNG), samples/step_*.png (faces: rows are identities, columns the source
face then every pose x expression; scene graphs: rows are scenes, columns the graph as text, the
predicted layout, the generated image, the real render), logs/, and generator/ (the EMA generator:
model.safetensors + config.yaml). A non-finite loss stops the run with exit status 1 and keeps the last
good checkpoint.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch
from accelerate.utils import set_seed
from tqdm.auto import tqdm

from gan.config import gan_config_class
from gan.sample import save_generator
from tasks.common import checkpoint
from tasks.common.accelerator import new_accelerator
from tasks.common.cli import cli, training_args
from tasks.common.loop import endless
from vl.config import load_config, save_config
from vl.data.specs import EpochSampler
from vl.errors import ConfigError


@cli
def main(argv: list[str] | None = None) -> int:
    args = training_args(argv, "tasks.train_gan", __doc__, "configs/gan/faces.yaml")
    cfg = load_config(gan_config_class(args.config, args.overrides), args.config, args.overrides)
    t, out = cfg.train, Path(cfg.train.output_dir)
    accelerator = new_accelerator(out, t.mixed_precision, t.trackers)
    set_seed(t.seed)
    if accelerator.is_main_process:
        save_config(cfg, out / "config.yaml")
    gan, data = players(cfg.kind).build(cfg, out, accelerator)
    loader = torch.utils.data.DataLoader(
        data, batch_size=t.batch_size, sampler=EpochSampler(len(data), t.seed), drop_last=True, num_workers=cfg.data.num_workers
    )
    if len(loader) == 0:
        raise ConfigError(f"data.train has {len(data)} examples, fewer than one batch of {t.batch_size}; lower train.batch_size")
    sources = to_device(gan.sample_sources(data), accelerator.device)
    gan.generator, gan.discriminator, gan.opt_g, gan.opt_d, loader = accelerator.prepare(gan.generator, gan.discriminator, gan.opt_g, gan.opt_d, loader)
    gan.ema.to(accelerator.device)
    step = 0
    if args.resume:
        path = checkpoint.resolve(args.resume, out)
        step = checkpoint.load_checkpoint(accelerator, path)
        gan.load_extra_state(checkpoint.load_extra(path))
        accelerator.print(f"resumed from {path} at step {step}")
    accelerator.init_trackers("vl-gan")
    n_g, n_d = (sum(p.numel() for p in m.parameters()) for m in (gan.generator, gan.discriminator))
    accelerator.print(
        f"{cfg.kind} GAN: generator {n_g / 1e6:.2f}M, discriminator {n_d / 1e6:.2f}M parameters; {len(data)} examples; device {accelerator.device}"
    )
    batches = endless(loader, accelerator, skip=step)
    bar = tqdm(total=t.steps, initial=step, desc="train gan", unit="step", disable=not accelerator.is_main_process)
    start, sums, logged = time.perf_counter(), {}, {}
    try:
        while step < t.steps:
            batch = next(batches)
            target = gan.targets(batch)
            losses = {**gan.discriminator_step(batch, target, accelerator), **gan.generator_step(batch, target, accelerator)}
            if not all(torch.isfinite(v) for v in losses.values()):
                bad = ", ".join(f"{k} {v.item():.3g}" for k, v in losses.items() if not torch.isfinite(v))
                last = checkpoint.checkpoints(out)
                accelerator.print(
                    f"\nerror: non-finite loss at step {step + 1} ({bad}); stopped without saving. "
                    f"Last good checkpoint: {last[-1] if last else 'none'}; lower train.lr_d / lr_g or set train.r1_gamma, then --resume latest"
                )
                return 1
            sums = {k: sums.get(k, 0.0) + v.float() for k, v in losses.items()}
            step += 1
            bar.update(1)
            if step % t.log_every == 0 or step == t.steps:
                n = t.log_every if step % t.log_every == 0 else step % t.log_every
                logged = {f"train/{k}": accelerator.reduce(v / n, "mean").item() for k, v in sums.items()}
                accelerator.log(logged, step=step)
                bar.set_postfix(d=f"{logged['train/d/loss']:.3f}", g=f"{logged['train/g/loss']:.3f}")
                sums = {}
            if accelerator.is_main_process and (step % t.sample_every == 0 or step == t.steps):
                (out / "samples").mkdir(parents=True, exist_ok=True)
                gan.sample_grid(sources).save(out / "samples" / f"step_{step:07d}.png")
            if step % t.save_every == 0 or step == t.steps:
                checkpoint.save_checkpoint(accelerator, out, step, t.keep_checkpoints, extra=gan.extra_state())
    finally:
        bar.close()
    if accelerator.is_main_process:
        save_generator(gan.ema.module, cfg, out / "generator")
    accelerator.end_training()
    minutes, seconds = divmod(int(time.perf_counter() - start), 60)
    losses = ", ".join(f"{k.removeprefix('train/')} {v:.3f}" for k, v in logged.items() if k.endswith(("d/loss", "g/loss", "recon", "l1", "box")))
    accelerator.print(f"done: {t.steps} steps in {minutes}m{seconds:02d}s, {losses}; generator saved to {out / 'generator'}, samples in {out / 'samples'}")
    return 0


def players(kind: str):
    """The players class of a GAN kind (imported only when asked for)."""
    if kind == "scene_graph":
        from gan.scene_gan import SceneGraphGAN

        return SceneGraphGAN
    from gan.train import FaceGAN

    return FaceGAN


def to_device(x, device):
    return {k: v.to(device) for k, v in x.items()} if isinstance(x, dict) else x.to(device)


if __name__ == "__main__":
    sys.exit(main())

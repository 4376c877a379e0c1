"""The training loop every task shares: accelerate, AdamW + warmup/cosine, clipping, accumulation,
periodic evaluation and atomic checkpoints, exact resume, trackers, a progress bar and a summary line."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import torch
from accelerate import Accelerator
from tqdm.auto import tqdm
from transformers import get_cosine_schedule_with_warmup

from tasks.common import checkpoint
from vl.errors import ConfigError
from vl.experiment import ExperimentConfig


class Task(Protocol):
    name: str
    model: torch.nn.Module
    samples_per_step: int  # per process and micro-batch, all loaders together

    def train_loaders(self, seed: int) -> dict[str, torch.utils.data.DataLoader]: ...
    def training_step(self, model: torch.nn.Module, batches: dict[str, Any]) -> dict[str, torch.Tensor]: ...
    def evaluate(self, model: torch.nn.Module) -> dict[str, float]: ...
    def save(self, model: torch.nn.Module, folder: Path, state_dict: dict[str, torch.Tensor] | None = None) -> None: ...


def fit(task: Task, cfg: ExperimentConfig, accelerator: Accelerator, resume: str | None = None) -> dict[str, Any]:
    """Train task.model for cfg.train.steps optimizer steps; return the last logged values."""
    tc, out = cfg.train, Path(cfg.train.output_dir)
    optimizer = torch.optim.AdamW(
        param_groups(task.model, tc.weight_decay, tc.lr, tc.lr_scale),
        lr=tc.lr,
        betas=tc.betas,
        fused=accelerator.device.type in ("cpu", "cuda"),
    )
    scheduler = get_cosine_schedule_with_warmup(optimizer, tc.warmup_steps, tc.steps)
    loaders = task.train_loaders(tc.seed)
    model, optimizer, *prepared, scheduler = accelerator.prepare(task.model, optimizer, *loaders.values(), scheduler)
    step, clock = 0, TrainingClock()
    if resume:
        path = checkpoint.resolve(resume, out)
        step = checkpoint.load_checkpoint(accelerator, path)
        clock = TrainingClock(checkpoint.train_seconds(path))
        accelerator.print(f"resumed from {path} at step {step}")
    forward = torch.compile(model) if tc.compile else model
    batches = _zip({name: endless(loader, accelerator, skip=step * tc.grad_accum) for name, loader in zip(loaders, prepared)})
    samples_per_step = task.samples_per_step * tc.grad_accum * accelerator.num_processes
    bar = tqdm(total=tc.steps, initial=step, desc=f"train {task.name}", unit="step", disable=not accelerator.is_main_process)
    start, first_step, loss_sums, n_loss, logged = time.perf_counter(), step, {}, 0, {}
    model.train()
    try:
        while step < tc.steps:
            # every random draw of a step (augmentation, dropout) from a seed of its own: a resumed run
            # draws what an uninterrupted one did, whatever else used the global generator meanwhile
            torch.manual_seed(step_seed(tc.seed, step, accelerator.process_index))
            losses, grad_norm = _optimizer_step(task, forward, model, batches, optimizer, accelerator, tc.grad_accum, tc.max_grad_norm)
            for k, v in losses.items():
                loss_sums[k] = loss_sums.get(k, 0.0) + v
            n_loss += tc.grad_accum
            advance_schedule(scheduler, accelerator)
            step += 1
            bar.update(1)
            if step % tc.log_every == 0 or step == tc.steps:
                means = {f"train/{k}": accelerator.reduce(v / n_loss, "mean").item() for k, v in loss_sums.items()}
                rate = (step - first_step) * samples_per_step / (time.perf_counter() - start)
                logged = {
                    **means,
                    "train/lr": scheduler.get_last_lr()[0],
                    "train/grad_norm": float(grad_norm),
                    "train/samples_per_s": rate,
                    "train/minutes": clock.seconds() / 60,
                }
                accelerator.log(logged, step=step)
                bar.set_postfix(loss=f"{means['train/loss']:.3f}", lr=f"{logged['train/lr']:.1e}")
                loss_sums, n_loss = {}, 0
            if step % tc.eval_every == 0 or step == tc.steps:
                with clock.paused():
                    logged.update(_evaluate(task, model, accelerator, step, clock))
            if step % tc.save_every == 0 or step == tc.steps:
                with clock.paused():
                    checkpoint.save_checkpoint(accelerator, out, step, tc.keep_checkpoints, train_seconds=clock.seconds())
    finally:
        bar.close()  # an error message then starts on a line of its own
    state_dict = accelerator.get_state_dict(model)  # every process takes part: under FSDP the weights are sharded
    if accelerator.is_main_process:
        task.save(accelerator.unwrap_model(model), out / "model", state_dict, logged)
    accelerator.wait_for_everyone()
    accelerator.end_training()
    logged["time_s"] = time.perf_counter() - start
    return logged


def _optimizer_step(task, forward, model, batches, optimizer, accelerator: Accelerator, accum: int, max_norm: float):
    """One optimizer step over `accum` micro-batches (gradients synced on the last); (summed losses, grad norm)."""
    totals: dict[str, torch.Tensor] = {}
    for _ in range(accum):
        with accelerator.accumulate(model):
            losses = task.training_step(forward, next(batches))
            accelerator.backward(losses["loss"])
            if accelerator.sync_gradients:
                grad_norm = accelerator.clip_grad_norm_(model.parameters(), max_norm)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        for k, v in losses.items():
            totals[k] = totals.get(k, 0.0) + v.detach().float()
    return totals, grad_norm


def param_groups(model: torch.nn.Module, weight_decay: float, lr: float = 1e-3, lr_scale: dict[str, float] | None = None) -> list[dict[str, Any]]:
    """Weight decay on weight matrices only: none on biases and norms (1-D) nor on the parameters the
    model names in no_weight_decay() (positions, token embeddings: timm's convention). `lr_scale`
    multiplies the learning rate of the parameters under a name prefix ({"heads.vqa": 0.2}; the longest
    matching prefix wins), the schedule then scales every group alike."""
    skip = set(model.no_weight_decay()) if hasattr(model, "no_weight_decay") else set()
    lr_scale = lr_scale or {}
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    unused = [k for k in lr_scale if not any(n == k or n.startswith(k + ".") for n in names)]
    if unused:
        tops = sorted({".".join(n.split(".")[:2]) if n.startswith("heads.") else n.split(".")[0] for n in names})
        raise ConfigError(f"train.lr_scale names {unused}, which match no trained parameter; use a prefix such as {', '.join(tops)}")
    groups: dict[tuple[bool, float], list[torch.nn.Parameter]] = {}
    for name, p in model.named_parameters():
        if p.requires_grad:
            prefixes = [k for k in lr_scale if name == k or name.startswith(k + ".")]
            scale = lr_scale[max(prefixes, key=len)] if prefixes else 1.0
            groups.setdefault((p.ndim >= 2 and name not in skip, scale), []).append(p)
    return [
        {"params": params, "weight_decay": weight_decay if decay else 0.0, "lr": lr * scale}
        for (decay, scale), params in sorted(groups.items(), key=lambda kv: (kv[0][1] != 1.0, not kv[0][0], kv[0][1]))  # an unscaled group first: the logged lr
    ]


def advance_schedule(scheduler: Any, accelerator: Accelerator) -> None:
    """One learning-rate step, unless fp16's loss scaler skipped the optimizer step (inf/nan gradients):
    the schedule follows the updates actually made."""
    if not accelerator.optimizer_step_was_skipped:
        scheduler.step()


def step_seed(seed: int, step: int, rank: int) -> int:
    """The global RNG's seed for one step on one process: every process draws its own dropout and
    augmentation, and a resumed run draws what an uninterrupted one did."""
    return seed * 1_000_003 + step + rank * 1_000_000_007


def _zip(streams: dict[str, Iterator[Any]]) -> Iterator[dict[str, Any]]:
    """One batch of every task at a time: {task: batch}."""
    while True:
        yield {name: next(stream) for name, stream in streams.items()}


def endless(loader, accelerator: Accelerator, skip: int) -> Iterator[Any]:
    """Batches forever, epoch after epoch; the first `skip` batches (already trained on) are skipped.

    The epoch is set through the prepared loader: accelerate re-applies its own epoch counter to the
    sampler each time a loader is iterated, so setting only the sampler would replay epoch 0 after a resume.
    """
    epoch, skip = divmod(skip, len(loader))
    while True:
        current = accelerator.skip_first_batches(loader, skip) if skip else loader
        current.set_epoch(epoch)
        yield from current
        epoch, skip = epoch + 1, 0


class TrainingClock:
    """Seconds spent training (evaluations and checkpoint saves excluded), continued across resumes:
    what a learning curve's x-axis should be. While paused it stands still."""

    def __init__(self, seconds: float = 0.0):
        self.before, self.start, self.pause_total = seconds, time.perf_counter(), 0.0
        self.paused_at: float | None = None

    def seconds(self) -> float:
        now = time.perf_counter() if self.paused_at is None else self.paused_at
        return self.before + now - self.start - self.pause_total

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        self.paused_at = time.perf_counter()
        try:
            yield
        finally:
            self.pause_total += time.perf_counter() - self.paused_at
            self.paused_at = None


def _evaluate(task: Task, model: torch.nn.Module, accelerator: Accelerator, step: int, clock: TrainingClock) -> dict[str, float]:
    """Every process evaluates its share of the rows (task.evaluate gathers them); the main one logs,
    with the training minutes so far (the learning curve's x)."""
    metrics = task.evaluate(accelerator.unwrap_model(model))
    metrics["train/minutes"] = clock.seconds() / 60
    accelerator.log(metrics, step=step)
    if accelerator.is_main_process:
        tqdm.write(f"step {step}: " + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
    return metrics

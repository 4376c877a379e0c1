"""Two processes over gloo on CPU (torchrun): multi-task training with a head no task trains, sharded
evaluation equal to a single-process one, an HF backbone whose pooler gets no gradient, and the GAN."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from accelerate import Accelerator

from tasks.common.multitask import MultiTask
from vl.config import load_config
from vl.errors import ConfigError
from vl.experiment import ExperimentConfig
from vl.modeling import VLConfig, VLModel

ROOT = Path(__file__).resolve().parents[1]


def torchrun(module: str, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    """`torchrun --nproc_per_node 2 -m module args...` from the repository root; fails the test with its output."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_addr",
        "127.0.0.1",
        "--master_port",
        str(port),
        "-m",
        module,
        *args,
    ]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-6000:]}"
    return done


def last_logged(out: Path) -> dict[str, float]:
    values: dict[str, float] = {}
    for line in (out / "logs" / "metrics.jsonl").read_text().splitlines():
        values.update(json.loads(line))
    return values


def test_two_processes_with_torchrun(tmp_path):
    done = torchrun(
        "tasks.train", "--config", str(ROOT / "tests" / "tiny_caption.yaml"), f"train.output_dir={tmp_path / 'ddp'}", "train.steps=4", "train.eval_every=4"
    )
    assert "world size 2" in done.stdout
    assert VLModel.from_pretrained(tmp_path / "ddp" / "model") is not None


def test_multitask_training_and_sharded_evaluation_on_two_processes(tmp_path):
    spec = yaml.safe_load((ROOT / "tests" / "tiny_multitask.yaml").read_text())
    spec["model"]["heads"]["spare"] = {"type": "tag", "dim": 32, "heads": 2, "tags": ["red", "blue"]}  # no task trains it
    spec["data"]["shapes"]["splits"]["val"] = 11  # an odd number of rows: the shares are padded
    spec["data"]["eval_images"] = 11
    config = tmp_path / "multitask.yaml"
    config.write_text(yaml.safe_dump(spec))
    out = tmp_path / "run"
    torchrun("tasks.train", "--config", str(config), f"train.output_dir={out}", "train.steps=4", "train.eval_every=4")
    logged = last_logged(out)
    assert logged["step"] == 4 and "val/vqa/accuracy" in logged

    # the same model evaluated by one process gives the same metrics
    cfg = load_config(ExperimentConfig, out / "config.yaml")
    task = MultiTask(cfg, Accelerator(cpu=True))
    saved = VLModel.from_pretrained(out / "model")
    task.model.load_state_dict(saved.state_dict())
    single = task.evaluate(task.model)
    assert single.keys() == {k for k in logged if k.startswith("val/")}
    for key, value in single.items():
        assert value == pytest.approx(logged[key], abs=1e-6), key
    # the spare head was not trained: its weights are the ones it was built with on every process
    assert saved.config.heads["spare"]["tags"] == ["red", "blue"]


def test_an_hf_backbone_with_an_unused_pooler_trains_on_two_processes(tmp_path):
    from transformers import ViTConfig, ViTImageProcessor, ViTModel

    backbone = tmp_path / "vit"
    ViTModel(ViTConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64, image_size=32, patch_size=8)).save_pretrained(backbone)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(backbone)
    out = tmp_path / "run"
    torchrun(
        "tasks.train", "--config", str(ROOT / "tests" / "tiny_caption.yaml"), f"train.output_dir={out}",
        f"model.encoder={{type: hf, path: {backbone}}}", "train.steps=2", "train.eval_every=2", "train.save_every=2",
    )  # fmt: skip
    model = VLModel.from_pretrained(out / "model")
    assert any("pooler" in name for name in model.config.encoder["unused"])
    before = ViTModel.from_pretrained(backbone).state_dict()
    after = {k.removeprefix("encoder.backbone."): v for k, v in model.state_dict().items() if k.startswith("encoder.backbone.")}
    assert not torch.equal(before["layers.0.attention.q_proj.weight"], after["layers.0.attention.q_proj.weight"])
    assert torch.equal(before["pooler.dense.weight"], after["pooler.dense.weight"])  # excluded, not trained


def test_the_gan_trains_on_two_processes(tmp_path):
    out = tmp_path / "gan"
    torchrun("tasks.train_gan", "--config", str(ROOT / "tests" / "tiny_gan.yaml"), f"train.output_dir={out}", "train.steps=2", "train.save_every=2")
    assert (out / "generator" / "model.safetensors").is_file()
    assert last_logged(out)["step"] == 2


def test_every_process_draws_its_own_random_stream_and_resume_draws_the_same():
    from tasks.common.loop import step_seed

    seeds = {step_seed(0, step, rank) for step in range(1000) for rank in range(8)}
    assert len(seeds) == 8000
    assert step_seed(3, 17, 1) == step_seed(3, 17, 1)


def test_the_schedule_does_not_advance_when_fp16_skipped_the_update():
    from types import SimpleNamespace

    from tasks.common.loop import advance_schedule

    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0 / (1 + step))
    opt.step()
    advance_schedule(sched, SimpleNamespace(optimizer_step_was_skipped=True))
    assert sched.last_epoch == 0
    advance_schedule(sched, SimpleNamespace(optimizer_step_was_skipped=False))
    assert sched.last_epoch == 1


def test_weight_decay_follows_no_weight_decay_names():
    """Biases, norms, positions and token embeddings are not decayed; every other matrix is."""
    from tasks.common.loop import param_groups

    spec = yaml.safe_load((ROOT / "tests" / "tiny_multitask.yaml").read_text())["model"]
    heads = {"caption": {**spec["heads"]["caption"], "vocab_size": 50}, "vqa": {**spec["heads"]["vqa"], "vocab_size": 50, "answers": ["yes", "no"]}}
    model = VLModel(VLConfig(encoder=spec["encoder"], heads=heads))
    decay, no_decay = (set(map(id, g["params"])) for g in param_groups(model, 0.05))
    names = {id(p): n for n, p in model.named_parameters()}
    assert {names[i] for i in no_decay} >= {"encoder.pos", "heads.caption.embed.weight", "heads.caption.pos.weight", "heads.vqa.fusion.embed.weight"}
    assert all(p.ndim >= 2 for n, p in model.named_parameters() if id(p) in decay)
    assert "heads.caption.blocks.0.attn.qkv.weight" in {names[i] for i in decay}


def test_lr_scale_sets_a_learning_rate_per_name_prefix():
    """train.lr_scale multiplies the lr of the parameters under a prefix (the longest wins); a prefix that
    matches nothing is an error listing the ones that would."""
    from tasks.common.loop import param_groups

    spec = yaml.safe_load((ROOT / "tests" / "tiny_multitask.yaml").read_text())["model"]
    heads = {"caption": {**spec["heads"]["caption"], "vocab_size": 50}, "vqa": {**spec["heads"]["vqa"], "vocab_size": 50, "answers": ["yes", "no"]}}
    model = VLModel(VLConfig(encoder=spec["encoder"], heads=heads))
    groups = param_groups(model, 0.05, 1e-3, {"heads.vqa": 0.2, "heads.vqa.fusion.embed": 0.5})
    lr = {id(p): g["lr"] for g in groups for p in g["params"]}
    names = dict(model.named_parameters())
    assert lr[id(names["heads.vqa.fusion.embed.weight"])] == pytest.approx(5e-4)
    assert all(lr[id(p)] == pytest.approx(2e-4) for n, p in names.items() if n.startswith("heads.vqa.") and not n.startswith("heads.vqa.fusion.embed"))
    assert all(lr[id(p)] == 1e-3 for n, p in names.items() if not n.startswith("heads.vqa."))
    assert groups[0]["lr"] == 1e-3  # the group the loop logs as train/lr
    assert sum(len(g["params"]) for g in groups) == len(names)
    with pytest.raises(ConfigError, match="match no trained parameter; use a prefix such as encoder, heads.caption, heads.vqa"):
        param_groups(model, 0.05, 1e-3, {"heads.vq": 0.2})


def test_a_frozen_hf_backbone_stays_in_eval_mode(tmp_path):
    from transformers import ViTConfig, ViTModel

    from vl.encoders import build_encoder

    ViTModel(ViTConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64, image_size=32, patch_size=8)).save_pretrained(tmp_path)
    encoder = build_encoder({"type": "hf", "path": str(tmp_path), "freeze": True}).train()
    assert encoder.training and not encoder.backbone.training
    assert build_encoder({"type": "hf", "path": str(tmp_path)}).train().backbone.training

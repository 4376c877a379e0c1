import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from tasks.evaluate import main as evaluate_main
from tasks.train import main as train_main
from vl.errors import ConfigError
from vl.modeling import VLModel

ROOT = Path(__file__).resolve().parents[1]
TINY = str(ROOT / "tests" / "tiny_caption.yaml")


def run_train(out: Path, *overrides: str) -> int:
    return train_main(["--config", TINY, f"train.output_dir={out}", *overrides])


def weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(folder / "model.safetensors")


def test_train_end_to_end_then_evaluate(tmp_path, capsys):
    assert run_train(tmp_path / "run", "train.grad_accum=2", "train.mixed_precision=bf16") == 0
    out = capsys.readouterr().out
    assert "world size 1" in out and "done: 8 steps" in out and "model saved to" in out
    run = tmp_path / "run"
    assert {p.name for p in (run / "checkpoints").iterdir()} == {"step_0000004", "step_0000008"}
    assert (run / "checkpoints" / "step_0000008" / "model.safetensors").is_file()
    assert not list((run / "checkpoints").rglob("pytorch_model*.bin"))
    assert (run / "config.yaml").is_file() and (run / "model" / "train_config.yaml").is_file()
    logs = [json.loads(line) for line in (run / "logs" / "metrics.jsonl").read_text().splitlines()]
    assert {"train/loss", "train/lr", "val/caption/loss", "val/caption/CIDEr"} <= {k for rec in logs for k in rec}
    lrs = [rec["train/lr"] for rec in logs if "train/lr" in rec]
    assert lrs == sorted(lrs, reverse=True) and lrs[-1] < 2e-3  # warmup done, cosine decaying
    # learning curves: every evaluation logs the training minutes so far, which checkpoints keep
    minutes = [rec["train/minutes"] for rec in logs if "val/caption/CIDEr" in rec]
    assert len(minutes) == 2 and 0 < minutes[0] < minutes[1]
    assert json.loads((run / "checkpoints" / "step_0000008" / "trainer_state.json").read_text())["train_seconds"] > 0
    model = VLModel.from_pretrained(run / "model")
    assert model.config.heads["caption"]["vocab_size"] <= 150
    assert evaluate_main(["--model", str(run / "model"), "--data", "shapes:test", "--metrics", "Bleu_4,CIDEr"]) == 0
    printed = capsys.readouterr().out
    assert "CIDEr" in printed and "scored 8 images of 8" in printed and "all_claims_true" in printed
    scores = json.loads((run / "model" / "scores_caption_shapes_test.json").read_text())
    assert 0 <= scores["truth"]["all_claims_true"] <= 1 and 0 <= scores["truth"]["mentions_exist"] <= 1
    results = json.loads(next((run / "model").glob("results_caption_shapes_test.json")).read_text())
    assert len(results) == 8 and {"image_id", "caption"} == set(results[0])


def test_resume_after_sigkill_matches_an_uninterrupted_run(tmp_path):
    steps = ["train.steps=60", "train.save_every=5", "train.eval_every=1000", "train.log_every=10"]
    assert run_train(tmp_path / "straight", *steps) == 0
    cmd = [sys.executable, "-m", "tasks.train", "--config", TINY, f"train.output_dir={tmp_path / 'killed'}", *steps]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": str(torch.get_num_threads())}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckpt = tmp_path / "killed" / "checkpoints" / "step_0000010"
    deadline = time.time() + 300
    while not ckpt.is_dir() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert ckpt.is_dir(), "the run never reached its second checkpoint"
    assert not (tmp_path / "killed" / "model").exists(), "killed too late: the run had finished"
    (tmp_path / "killed" / "checkpoints" / "step_0000099.tmp").mkdir()  # a half-written save is ignored
    assert run_train(tmp_path / "killed", *steps, "--resume", "latest") == 0
    a, b = weights(tmp_path / "straight" / "model"), weights(tmp_path / "killed" / "model")
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=1e-5, atol=1e-6)


def test_resume_in_the_middle_of_a_later_epoch_with_augmentation(tmp_path):
    # the augmentation's draws come from the sampler (seed, epoch, position), not from when the loader
    # happens to fetch a batch (accelerate's loader fetches one ahead), so a resumed run draws the same
    steps = ["train.steps=40", "train.save_every=35", "train.eval_every=1000", "train.log_every=10", "data.augment.shift=0.1", "data.augment.color=0.2"]
    assert run_train(tmp_path / "straight", *steps) == 0
    shutil.copytree(tmp_path / "straight" / "checkpoints" / "step_0000035", tmp_path / "again" / "checkpoints" / "step_0000035")
    shutil.copytree(tmp_path / "straight" / "tokenizer", tmp_path / "again" / "tokenizer")
    assert run_train(tmp_path / "again", *steps, "--resume", "latest") == 0
    a, b = weights(tmp_path / "straight" / "model"), weights(tmp_path / "again" / "model")
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=1e-5, atol=1e-6)
    # the resumed run's clock continues from the checkpoint's
    saved = json.loads((tmp_path / "again" / "checkpoints" / "step_0000035" / "trainer_state.json").read_text())["train_seconds"]
    logs = [json.loads(line) for line in (tmp_path / "again" / "logs" / "metrics.jsonl").read_text().splitlines()]
    assert min(rec["train/minutes"] for rec in logs if "train/minutes" in rec) > saved / 60 > 0


def test_resume_from_another_architecture_is_a_clear_error(tmp_path, capsys):
    assert run_train(tmp_path / "run", "train.steps=4") == 0
    capsys.readouterr()
    assert run_train(tmp_path / "run", "train.steps=8", "model.encoder.dim=48", "--resume", "latest") == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "does not fit this model" in errors[0] and "encoder" in errors[0]


def test_resume_without_checkpoints_says_so(tmp_path, capsys):
    assert run_train(tmp_path / "empty", "--resume", "latest") == 2
    assert "no checkpoint in" in capsys.readouterr().err


def test_loading_checkpoints_never_unpickles(tmp_path, monkeypatch):
    assert run_train(tmp_path / "run", "train.steps=4") == 0
    real_load = torch.load

    def guarded(*args, **kwargs):
        assert kwargs.get("weights_only", True) is True, "torch.load with weights_only=False"
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", guarded)
    assert run_train(tmp_path / "run", "train.steps=6", "--resume", "latest") == 0


def coco_folder(tmp_path: Path, bad: str) -> str:
    """A 6-image COCO caption set written to disk, one image broken (`corrupt`) or gone (`missing`)."""
    images, anns = [], []
    (tmp_path / "imgs").mkdir()
    for i in range(6):
        name = f"{i}.png"
        Image.new("RGB", (32, 32), (40 * i, 100, 200)).save(tmp_path / "imgs" / name)
        images.append({"id": i, "file_name": name})
        anns += [{"image_id": i, "id": 10 * i + k, "caption": f"a picture number {i} {k}"} for k in range(2)]
    (tmp_path / "caps.json").write_text(json.dumps({"images": images, "annotations": anns}))
    if bad == "corrupt":
        (tmp_path / "imgs" / "3.png").write_bytes(b"this is not a png")
    return f"coco:{tmp_path / 'caps.json'}:{tmp_path / 'imgs'}"


def test_a_corrupt_image_is_named_or_skipped_and_counted(tmp_path, capsys):
    spec = coco_folder(tmp_path, "corrupt")
    common = [f"data.train={spec}", f"data.eval={spec}", "data.eval_images=6", "train.batch_size=4", "train.steps=3", "train.eval_every=3"]
    assert run_train(tmp_path / "a", *common) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "cannot read image" in errors[0] and "3.png" in errors[0] and "data.skip_bad_images=true" in errors[0]
    assert run_train(tmp_path / "b", *common, "data.skip_bad_images=true") == 0
    assert "skipped" in capsys.readouterr().out
    assert evaluate_main(["--model", str(tmp_path / "b" / "model"), "--data", spec, "--metrics", "Bleu_4"]) == 0  # the saved config skips too
    assert "skipped 1 unreadable images" in capsys.readouterr().out


def test_a_missing_image_is_named(tmp_path, capsys):
    spec = coco_folder(tmp_path, "missing")
    (tmp_path / "imgs" / "4.png").unlink()
    assert run_train(tmp_path / "run", f"data.train={spec}") == 2
    err = capsys.readouterr().err
    assert "image file not found" in err and "4.png" in err


def test_config_mistakes_are_one_line(tmp_path, capsys):
    assert run_train(tmp_path / "x", "train.stpes=3") == 2
    assert "unknown config key 'train.stpes'; did you mean 'train.steps'?" in capsys.readouterr().err
    assert run_train(tmp_path / "x", "model.encoder.dpth=3") == 2
    assert "unknown config key 'model.encoder.dpth'; did you mean 'model.encoder.depth'?" in capsys.readouterr().err
    assert run_train(tmp_path / "x", "data.train=shapes:trian") == 2
    assert "unknown Shapes split 'trian'; did you mean 'train'?" in capsys.readouterr().err


def test_the_training_clock_stands_still_while_paused(monkeypatch):
    from tasks.common import loop

    now = [100.0]
    monkeypatch.setattr(loop.time, "perf_counter", lambda: now[0])
    clock = loop.TrainingClock(seconds=30.0)  # resumed from a checkpoint that had trained 30 s
    now[0] += 5
    with clock.paused():  # an evaluation: 60 s that do not count, also when read during it
        now[0] += 60
        assert clock.seconds() == 35.0
    now[0] += 2
    assert clock.seconds() == 37.0


def test_evaluate_names_a_device_this_machine_lacks():
    from tasks.evaluate import _device

    assert _device("cpu").type == "cpu"
    with pytest.raises(ConfigError, match="not a device name"):
        _device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no cuda device .* use --device cpu"):
            _device("cuda")

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

import gan.train as gan_train
from gan.sample import load_generator, redraw
from tasks import train_gan

TINY = str(Path(__file__).with_name("tiny_gan.yaml"))


def run(out, *extra):
    return train_gan.main(["--config", TINY, f"train.output_dir={out}", *extra])


def test_train_gan_end_to_end(tmp_path, capsys):
    assert run(tmp_path) == 0
    grid = Image.open(tmp_path / "samples" / "step_0000004.png")
    assert grid.size == (32 * (1 + 3 * 2), 32 * 2)  # columns: source + 3 poses x 2 expressions; rows: 2 identities
    assert (tmp_path / "samples" / "step_0000002.png").is_file()
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["step_0000002", "step_0000004"]
    generator, cfg = load_generator(tmp_path / "generator")
    assert cfg.model.generator.poses == 3 and cfg.model.generator.image_size == 32
    faces = torch.rand(2, 3, 32, 32) * 2 - 1
    out = redraw(generator, faces, torch.tensor([0, 2]), torch.tensor([1, 0]))
    assert out.shape == (2, 3, 32, 32) and torch.equal(out, redraw(generator, faces, torch.tensor([0, 2]), torch.tensor([1, 0])))
    assert "done: 4 steps" in capsys.readouterr().out


def test_resume_gives_the_uninterrupted_result(tmp_path):
    assert run(tmp_path / "full") == 0
    assert run(tmp_path / "cut", "train.steps=2") == 0
    assert run(tmp_path / "cut", "--resume", "latest") == 0
    a, b = load_file(tmp_path / "full" / "generator" / "model.safetensors"), load_file(tmp_path / "cut" / "generator" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    grid_a = np.asarray(Image.open(tmp_path / "full" / "samples" / "step_0000004.png"))
    assert np.array_equal(grid_a, np.asarray(Image.open(tmp_path / "cut" / "samples" / "step_0000004.png")))


def test_a_non_finite_loss_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch, capsys):
    real_hinge, calls = gan_train.d_hinge, {"n": 0}

    def explode_at_step_3(real, fake):
        calls["n"] += 1
        loss = real_hinge(real, fake)
        return loss * float("nan") if calls["n"] == 3 else loss

    monkeypatch.setattr(gan_train, "d_hinge", explode_at_step_3)
    assert run(tmp_path) == 1
    out = capsys.readouterr().out
    assert "non-finite loss at step 3" in out and "step_0000002" in out
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == ["step_0000002"]
    assert not (tmp_path / "generator").exists()


def test_a_wrong_config_key_is_one_line(tmp_path, capsys):
    assert train_gan.main(["--config", TINY, "train.lr_gen=1e-3"]) == 2
    assert "did you mean 'train.lr_g'" in capsys.readouterr().err


def test_load_generator_names_a_wrong_folder(tmp_path):
    with pytest.raises(ValueError, match="has no model.safetensors; point at the generator/ folder"):
        load_generator(tmp_path)

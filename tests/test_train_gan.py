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
    at_step_4, _ = load_generator(tmp_path / "checkpoints" / "step_0000004")  # a checkpoint loads its EMA: here the saved one
    assert all(torch.equal(a, b) for a, b in zip(at_step_4.state_dict().values(), generator.state_dict().values()))


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
    with pytest.raises(ValueError, match="model.safetensors is missing; point at the generator/ folder"):
        load_generator(tmp_path)


def _tiny_gan(*overrides):
    from gan.config import GANExperimentConfig
    from gan.data import FaceTensors
    from vl.config import load_config
    from vl.data.faces.dataset import build_faces_dataset

    cfg = load_config(GANExperimentConfig, TINY, list(overrides))
    data = FaceTensors(build_faces_dataset(cfg.data.faces, splits=["train"])["train"], cfg.data.faces)
    return gan_train.FaceGAN(cfg, data), data


def test_paired_targets_are_training_faces_of_the_same_person():
    gan, data = _tiny_gan()
    batch = torch.utils.data.default_collate([data[i] for i in range(8)])
    target = gan.targets(batch)
    faces = [data[i] for i in range(len(data))]
    for k, identity in enumerate(batch["identity"].tolist()):
        match = [f for f in faces if torch.equal(f["image"], target["image"][k])]
        assert match and match[0]["identity"] == identity
        assert (match[0]["pose"], match[0]["expression"]) == (target["pose"][k].item(), target["expression"][k].item())


def test_unpaired_targets_are_poses_of_the_training_split():
    gan, data = _tiny_gan("train.pair_weight=0", "data.faces.train_poses=[0,30]")
    batch = torch.utils.data.default_collate([data[i] for i in range(8)])
    target = gan.targets(batch)
    assert "image" not in target and set(target["pose"].tolist()) <= {1, 2}


def test_the_expression_region_weighs_the_paired_loss_up_where_expressions_differ():
    from accelerate import Accelerator

    gan, data = _tiny_gan("train.expression_region_weight=9")
    weight = gan.pixel_weight  # (poses, H, W): 1 where no expression changes a face, up to 10 where one does
    assert weight.shape == (3, 32, 32) and weight.min() == 1 and torch.allclose(weight.amax((1, 2)), torch.full((3,), 10.0))
    assert (weight > 5).float().mean() < 0.1  # a few pixels (mouth, eyes, brows), not the face
    frontal = weight[1] - 1  # pose 0 degrees: the region sits on the face's vertical midline, below the hair
    ys, xs = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    assert abs((frontal * xs).sum() / frontal.sum() - 15.5) < 1.5 and (frontal * ys).sum() / frontal.sum() > 14
    batch = torch.utils.data.default_collate([data[i] for i in range(8)])
    logs = gan.generator_step(batch, gan.targets(batch), Accelerator(cpu=True))
    assert torch.isfinite(logs["g/pair"]) and torch.isfinite(logs["g/recon"])


def test_the_ema_warms_up_instead_of_averaging_the_initial_weights():
    gan, _ = _tiny_gan()
    w = next(gan.generator.parameters())
    for _ in range(2):  # the first update copies; the second uses decay (1 + 1) / (10 + 1), not 0.999
        with torch.no_grad():
            w.add_(1.0)
        gan.update_ema(gan.generator)
    ema_w = next(gan.ema.module.parameters())
    assert torch.allclose(ema_w, w - 1.0 + (1 - 2 / 11), atol=1e-6)


def test_the_ema_copies_spectral_norm_vectors_instead_of_averaging_them():
    """Averaged, they broke the EMA generator's eval-mode samples (a wrong sigma scaled every weight)."""
    gan, data = _tiny_gan("train.ema_decay=0.5")
    batch = torch.utils.data.default_collate([data[i] for i in range(8)])
    opt = torch.optim.SGD(gan.generator.parameters(), lr=0.5)
    for _ in range(5):  # big random steps move the SN vectors to very different directions each time
        loss = gan.generator(batch["image"], batch["pose"], batch["expression"]).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        gan.update_ema(gan.generator)
    for name, u in gan.ema.module.named_buffers():
        if name.endswith(("._u", "._v")):
            assert torch.equal(u, dict(gan.generator.named_buffers())[name])


def test_classifier_guidance_trains_a_teacher_once_and_logs_its_loss(tmp_path, monkeypatch):
    import gan.evaluate

    assert run(tmp_path, "train.teacher_weight=1", "train.teacher_steps=2", "train.steps=2") == 0
    assert (tmp_path / "teacher" / "model.safetensors").is_file()
    steps = {"g/teacher": 0}
    real_step = gan_train.FaceGAN.generator_step

    def spy(self, *args):
        out = real_step(self, *args)
        steps["g/teacher"] += "g/teacher" in out
        return out

    monkeypatch.setattr(gan_train.FaceGAN, "generator_step", spy)
    monkeypatch.setattr(gan.evaluate, "train_classifier", lambda *a, **k: pytest.fail("the saved teacher is reused on resume"))
    assert run(tmp_path, "train.teacher_weight=1", "train.teacher_steps=2", "train.steps=4", "--resume", "latest") == 0
    assert steps["g/teacher"] == 2

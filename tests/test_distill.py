"""Distillation: the KD losses, a student that learns from its teacher through tasks.distill (saved,
reloaded, evaluated like any model, resumed exactly), and the refusals that keep teacher and student
comparable (another tokenizer, another image size, a head the teacher lacks)."""

import shutil
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from tasks.distill import main as distill_main
from tasks.evaluate import main as evaluate_main
from tasks.train import main as train_main
from vl.compress.distill import DistillConfig, Distiller, binary_kl, block_pairs, soft_kl
from vl.errors import ConfigError
from vl.modeling import VLConfig, VLModel
from vl.processing import VLProcessor

ROOT = Path(__file__).resolve().parents[1]
TEACHER = str(ROOT / "tests" / "tiny_multitask.yaml")
STUDENT = str(ROOT / "tests" / "tiny_student.yaml")


@pytest.fixture(scope="module")
def teacher(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("teacher")
    assert train_main(["--config", TEACHER, f"train.output_dir={out}", "train.eval_every=1000"]) == 0
    return out / "model"


def distill(teacher: Path, out: Path, *overrides: str) -> int:
    return distill_main(["--teacher", str(teacher), "--config", STUDENT, f"train.output_dir={out}", *overrides])


def test_soft_kl_is_torch_kl_div_at_temperature_and_zero_on_agreement():
    s, t = torch.randn(5, 7), torch.randn(5, 7)
    ref = F.kl_div(F.log_softmax(s / 2, -1), F.log_softmax(t / 2, -1), reduction="batchmean", log_target=True) * 4
    torch.testing.assert_close(soft_kl(s, t, 2.0), ref)
    assert soft_kl(t, t, 2.0).abs() < 1e-6
    mask = torch.tensor([True, False, True, False, False])
    torch.testing.assert_close(soft_kl(s, t, 1.0, mask), soft_kl(s[mask], t[mask], 1.0))
    assert binary_kl(t, t, 3.0).abs() < 1e-5 and binary_kl(s, t, 3.0) > 0


def test_student_blocks_meet_the_teacher_blocks_at_the_same_depth():
    assert block_pairs(2, 4, []) == [(0, 1), (1, 3)]
    assert block_pairs(3, 12, []) == [(0, 3), (1, 7), (2, 11)]
    assert block_pairs(2, 4, [[1, 2]]) == [(1, 2)]
    with pytest.raises(ConfigError, match="outside"):
        block_pairs(2, 4, [[2, 0]])
    with pytest.raises(ConfigError, match="temperature"):
        DistillConfig(temperature=0)


def test_a_student_taught_only_by_logits_comes_to_agree_with_its_teacher():
    """Ground truth off: the KL to the teacher's answers must fall (it is the only signal)."""
    torch.manual_seed(0)
    answers = [f"a{i}" for i in range(6)]

    def model(dim: int) -> VLModel:
        enc = {"type": "vit", "image_size": 16, "patch_size": 8, "dim": dim, "depth": 2, "heads": 2}
        heads = {"vqa": {"type": "vqa", "dim": dim, "depth": 1, "heads": 2, "answers": answers, "vocab_size": 20}}
        return VLModel(VLConfig(encoder=enc, heads=heads))

    teacher, student = model(32), model(16)
    distiller = Distiller(student, teacher, DistillConfig(ground_truth=0.0, hidden=1.0, attention=1.0))
    assert not any(k.startswith("teacher") for k in distiller.state_dict())  # the teacher is neither trained nor saved
    batch = {"question_ids": torch.randint(3, 20, (8, 5)), "question_mask": torch.ones(8, 5, dtype=torch.bool)}
    pixels = torch.randn(8, 3, 16, 16)
    opt = torch.optim.Adam(distiller.parameters(), lr=3e-3)
    first = None
    for _ in range(60):
        out = distiller(pixels, task="vqa", **batch)
        first = first if first is not None else out["loss_kd"].item()
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
    assert out["loss_kd"].item() < 0.3 * first
    assert all(p.grad is None for p in teacher.parameters())


def test_distil_a_student_that_saves_loads_and_evaluates(teacher, tmp_path, capsys):
    assert distill(teacher, tmp_path) == 0
    saved = tmp_path / "model"
    student = VLModel.from_pretrained(saved)
    assert student.config.encoder["dim"] == 16 and set(student.config.heads) == {"caption", "vqa", "tag"}
    t = VLModel.from_pretrained(teacher)
    assert student.config.heads["vqa"]["answers"] == t.config.heads["vqa"]["answers"]  # the teacher's vocabularies
    assert VLProcessor.from_pretrained(saved).tokenizer.get_vocab() == VLProcessor.from_pretrained(teacher).tokenizer.get_vocab()
    assert not any(k.startswith(("project", "student.")) for k in load_file(saved / "model.safetensors"))
    assert "tasks.distill --teacher" in (saved / "README.md").read_text()  # the model card's command
    capsys.readouterr()
    assert evaluate_main(["--model", str(saved), "--task", "vqa", "--data", "shapes:test"]) == 0
    assert "accuracy" in capsys.readouterr().out


def test_a_distillation_resumed_mid_run_ends_where_an_uninterrupted_one_does(teacher, tmp_path):
    args = ["train.steps=6", "train.save_every=4", "train.eval_every=1000"]
    assert distill(teacher, tmp_path / "straight", *args) == 0
    shutil.copytree(tmp_path / "straight" / "checkpoints" / "step_0000004", tmp_path / "again" / "checkpoints" / "step_0000004")
    assert distill(teacher, tmp_path / "again", *args, "--resume", "latest") == 0
    a, b = (load_file(tmp_path / run / "model" / "model.safetensors") for run in ("straight", "again"))
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("model.tokenizer.path=OTHER", "tokenizer differs from the teacher's"),
        ("model.encoder.image_size=16", "prepares images differently"),
        ("model.heads.retrieval.type=retrieval", "no teacher head of that name"),
        ("model.heads.tag.type=classify", "give it type tag"),
        ("distill.temperature=-1", "temperature must be positive"),
    ],
)
def test_a_student_that_cannot_be_compared_with_its_teacher_is_refused(teacher, tmp_path, capsys, override, message):
    if "OTHER" in override:  # a tokenizer trained on other text
        other = tmp_path / "other"
        assert train_main(["--config", TEACHER, f"train.output_dir={other}", "train.steps=1", "model.tokenizer.vocab_size=120", "train.eval_every=1000"]) == 0
        override = f"model.tokenizer.path={other / 'model'}"
    assert distill(teacher, tmp_path / "run", override) == 2
    assert message in capsys.readouterr().err


def test_a_pruned_teacher_fine_tunes_as_a_student_of_the_original(teacher, tmp_path):
    """tasks.compress prune, then tasks.distill with model.init_from: the pruned shapes train and save."""
    from tasks.compress import main as compress_main

    pruned = tmp_path / "pruned"
    assert compress_main(["prune", "--model", str(teacher), "--out", str(pruned), "--flops-ratio", "0.6"]) == 0
    assert distill(teacher, tmp_path / "tuned", f"model.init_from={pruned}") == 0
    tuned = VLModel.from_pretrained(tmp_path / "tuned" / "model")
    assert tuned.config.compression == VLModel.from_pretrained(pruned).config.compression
    start = load_file(pruned / "model.safetensors")
    end = load_file(tmp_path / "tuned" / "model" / "model.safetensors")
    assert set(start) == set(end) and not torch.equal(start["encoder.blocks.0.mlp.fc1.weight"], end["encoder.blocks.0.mlp.fc1.weight"])

import json
from pathlib import Path

import pytest
import torch

from tasks import evaluate, train, train_gan
from tasks.common.multitask import MultiTask
from vl.config import load_config
from vl.data.specs import ImageReader, open_labels
from vl.errors import ConfigError
from vl.experiment import ExperimentConfig
from vl.modeling import VLModel

HERE = Path(__file__).parent
FACES, GAN = str(HERE / "tiny_faces.yaml"), str(HERE / "tiny_gan.yaml")


def test_expression_recognition_trains_and_reports_accuracy_per_yaw(tmp_path, capsys):
    assert train.main(["--config", FACES, f"train.output_dir={tmp_path}"]) == 0
    logs = [json.loads(line) for line in (tmp_path / "logs" / "metrics.jsonl").read_text().splitlines()]
    evals = next(entry for entry in logs if "val/expression/accuracy" in entry)
    assert {f"val/expression/accuracy/yaw={y}" for y in (-30, 0, 30)} <= evals.keys()
    model = VLModel.from_pretrained(tmp_path / "model")
    assert model.heads["expression"].cfg.labels == ["happy", "neutral"]
    assert "expression accuracy" in capsys.readouterr().out


def test_label_specs():
    cfg = load_config(ExperimentConfig, FACES)
    rows = open_labels("faces:val:yaw", cfg.data, limit=6)
    assert rows["label"] == [str(y) for y in rows["yaw"]]
    with pytest.raises(ConfigError, match="not one of: faces:<split>:<expression|yaw|identity>"):
        open_labels("faces:val:smile", cfg.data)
    with pytest.raises(ConfigError, match="unknown Faces split 'vall'"):
        open_labels("faces:vall:expression", cfg.data)


@pytest.fixture(scope="module")
def generator(tmp_path_factory):
    out = tmp_path_factory.mktemp("gan")
    assert train_gan.main(["--config", GAN, f"train.output_dir={out}"]) == 0
    return out / "generator"


def test_gan_views_join_the_training_set(generator, tmp_path):
    from accelerate import Accelerator

    cfg = load_config(ExperimentConfig, FACES, [f"data.gan_augment.generator={generator}", "data.gan_augment.ratio=0.5", "data.gan_augment.poses=[30]"])
    task = MultiTask(cfg, Accelerator(cpu=True))
    items = task.parts["expression"].train_items()
    assert len(items) == 24 + 12
    fake = items[24 + 5]
    assert fake["yaw"] == 30 and fake["label"] == fake["expression"] and fake["image_id"] < 0
    assert ImageReader(skip=False)([fake])[0][0].size == (32, 32)
    again = items[24 + 5]
    assert again["image"] == fake["image"] and again["expression"] == fake["expression"]  # a pure function of the index
    assert train.main(["--config", FACES, f"train.output_dir={tmp_path}", f"data.gan_augment.generator={generator}", "data.gan_augment.ratio=0.5"]) == 0


def test_kept_expression_views_change_only_the_pose(generator):
    from accelerate import Accelerator

    views = [f"data.gan_augment.generator={generator}", "data.gan_augment.ratio=0.5", "data.gan_augment.poses=[30,-30]"]
    plain = MultiTask(load_config(ExperimentConfig, FACES, views), Accelerator(cpu=True)).parts["expression"].train_items()
    kept = MultiTask(load_config(ExperimentConfig, FACES, [*views, "data.gan_augment.keep_expression=true"]), Accelerator(cpu=True)).parts["expression"]
    kept = kept.train_items()
    for j in range(12):
        source = kept[kept._draw(j)[1]]
        assert kept[24 + j]["expression"] == source["expression"] == kept[24 + j]["label"]
        assert kept[24 + j]["yaw"] == plain[24 + j]["yaw"]  # the same poses as without the option
    assert any(plain[24 + j]["expression"] != kept[24 + j]["expression"] for j in range(12))


def test_gan_views_join_a_captioning_set_with_captions_of_the_new_view(generator, tmp_path):
    import yaml
    from accelerate import Accelerator

    spec = yaml.safe_load(Path(FACES).read_text())
    spec["model"]["heads"] = {"caption": {"type": "caption", "dim": 32, "depth": 1, "heads": 2, "max_len": 24}}
    spec["data"].update(train="faces:train", eval="faces:val")
    config = tmp_path / "faces_caption.yaml"
    config.write_text(yaml.safe_dump(spec))
    cfg = load_config(ExperimentConfig, str(config), [f"data.gan_augment.generator={generator}", "data.gan_augment.ratio=0.5", "data.gan_augment.poses=[30]"])
    items = MultiTask(cfg, Accelerator(cpu=True)).parts["caption"].train_items()
    per_image = cfg.data.faces.captions_per_image
    assert len(items) == (24 + 12) * per_image  # every caption of every real and synthetic face
    fakes = [items[k] for k in range(24 * per_image, len(items))]
    assert all(f["image_id"] < 0 for f in fakes) and all("turned slightly to the right" in f["caption"] for f in fakes)
    assert (
        train.main(["--config", str(config), f"train.output_dir={tmp_path / 'run'}", f"data.gan_augment.generator={generator}", "data.gan_augment.ratio=0.5"])
        == 0
    )
    assert evaluate.main(["--model", str(tmp_path / "run" / "model"), "--data", "faces:val", "--max-images", "6", "--metrics", "Bleu_4"]) == 0
    scores = json.loads((tmp_path / "run" / "model" / "scores_caption_faces_val.json").read_text())
    assert {"pose", "expression", "both", "pose/yaw=0"} <= scores["truth"].keys()  # is each caption true of its face


def test_real_views_of_the_gans_people_are_the_ceiling_arm(tmp_path):
    """source: real adds real renders of the GAN's own people (read from its training config) at the
    target poses: what GAN views approximate. No trained generator is needed."""
    from accelerate import Accelerator

    gan_faces = tmp_path / "gan.yaml"  # the GAN learned from 12 other people (12..23), at every pose
    gan_faces.write_text(Path(GAN).read_text().replace("identities: 12,", "identities: 12, first_identity: 12,"))
    views = ["data.gan_augment.source=real", f"data.gan_augment.generator={gan_faces}", "data.gan_augment.ratio=0.5", "data.gan_augment.poses=[30]"]
    task = MultiTask(load_config(ExperimentConfig, FACES, views), Accelerator(cpu=True))
    items = task.parts["expression"].train_items()
    real = [items[k] for k in range(24, 36)]
    assert all(r["yaw"] == 30 and r["label"] == r["expression"] and r["image_id"] < 0 and r["identity"] >= 12 for r in real)
    assert ImageReader(skip=False)(real[:1])[0][0].size == (32, 32)
    from vl.data.faces import FacesConfig, FacesWorld

    gan_world = FacesWorld(FacesConfig(image_size=32, identities=12, first_identity=12, poses=[-30, 0, 30], expressions=["neutral", "happy"]))
    first = ImageReader(skip=False)(real[:1])[0][0]
    expected = gan_world.image(real[0]["identity"] - 12, 30, real[0]["expression"])
    assert first.size == expected.size and first.convert("RGB").tobytes() == expected.convert("RGB").tobytes()  # a real face of the GAN's person
    assert train.main(["--config", FACES, f"train.output_dir={tmp_path / 'run'}", *views]) == 0


def test_gan_augment_config_errors(generator, tmp_path):
    with pytest.raises(ConfigError, match="needs data.gan_augment.generator"):
        load_config(ExperimentConfig, FACES, ["data.gan_augment.ratio=1"])
    from accelerate import Accelerator

    cfg = load_config(
        ExperimentConfig,
        FACES,
        [f"data.gan_augment.generator={generator}", "data.gan_augment.ratio=1", "data.faces.poses=[-60,0,60]", "data.faces.train_poses=null"],
    )
    with pytest.raises(ConfigError, match="train it on the same Faces world"):
        MultiTask(cfg, Accelerator(cpu=True)).parts["expression"].train_items()


def test_classic_augmentation_changes_training_images_only(tmp_path):
    from accelerate import Accelerator

    from vl.data.augment import classic_augmentation

    assert classic_augmentation(load_config(ExperimentConfig, FACES).data.augment) is None
    cfg = load_config(ExperimentConfig, FACES, ["data.augment.flip=true", "data.augment.shift=0.1", "data.augment.color=0.3"])
    part = MultiTask(cfg, Accelerator(cpu=True)).parts["expression"]
    rows = [part.train_rows[i] for i in range(4)]
    torch.manual_seed(0)
    augmented = part.collate(rows)["pixel_values"]
    plain = part.processor(images=ImageReader(skip=False)(rows)[0])["pixel_values"]
    assert augmented.shape == plain.shape and not torch.equal(augmented, plain)
    torch.manual_seed(0)
    assert torch.equal(part.collate(rows)["pixel_values"], augmented)  # reproducible from the step's seed
    with pytest.raises(ConfigError, match="data.augment: shift must be"):
        load_config(ExperimentConfig, FACES, ["data.augment.shift=0.7"])
    assert train.main(["--config", FACES, f"train.output_dir={tmp_path}", "data.augment.flip=true", "data.augment.color=0.2"]) == 0


def test_evaluate_scores_a_classifier(tmp_path, capsys):
    from tasks import evaluate

    assert train.main(["--config", FACES, f"train.output_dir={tmp_path}"]) == 0
    capsys.readouterr()
    assert evaluate.main(["--model", str(tmp_path / "model"), "--data", "faces:val:expression", "--out", str(tmp_path / "s.json")]) == 0
    scores = json.loads((tmp_path / "s.json").read_text())
    assert 0 <= scores["accuracy"] <= 1 and "accuracy/yaw=0" in scores
    assert "accuracy/yaw=-30" in capsys.readouterr().out

"""Every shipped config loads: the Shapes world, each experiment, and the accelerate launch configs."""

from pathlib import Path

import pytest
from accelerate.commands.config.config_args import ClusterConfig

from gan.config import GAN_CONFIGS, gan_config_class
from vl.config import load_config
from vl.data.shapes import ShapesConfig
from vl.errors import ConfigError
from vl.experiment import ExperimentConfig

ROOT = Path(__file__).resolve().parents[1]
GAN_RUNS = [ROOT / "configs" / "gan" / name for name in ("faces.yaml", "scene_graph.yaml")]  # tasks.train_gan configs
DISTILL = sorted((ROOT / "configs" / "distill").glob("*.yaml"))  # tasks.distill configs
EXPERIMENTS = sorted(
    p for p in (ROOT / "configs").rglob("*.yaml") if p.parent.name not in ("accelerate", "distill") and p.name != "world.yaml" and p not in GAN_RUNS
)


def test_world_config_is_the_default_world():
    assert load_config(ShapesConfig, ROOT / "configs" / "shapes" / "world.yaml") == ShapesConfig()


@pytest.mark.parametrize("path", EXPERIMENTS + [ROOT / "tests" / "tiny_caption.yaml"], ids=lambda p: p.name)
def test_experiment_configs_load(path, tmp_path):
    """A config that starts from a saved model (model.init_from) loads with a model folder given."""
    from .tiny_models import every_head_model

    text = path.read_text()
    overrides = [f"model.init_from={every_head_model(tmp_path / 'model')}", "generation.max_new_tokens=8"] if "  init_from:" in text else []
    overrides += [f"model.inflate_from={every_head_model(tmp_path / 'image')}"] if "inflate_from:" in text else []
    assert isinstance(load_config(ExperimentConfig, path, overrides), ExperimentConfig)


@pytest.mark.parametrize("path", DISTILL, ids=lambda p: p.name)
def test_distill_configs_load(path, tmp_path):
    """A config that fine-tunes a saved model (model.init_from) loads with a model folder given."""
    from vl.compress.distill import DistillExperimentConfig

    from .tiny_models import every_head_model

    text = path.read_text()
    overrides = [f"model.init_from={every_head_model(tmp_path / 'model')}", "generation.max_new_tokens=8"] if "init_from:" in text else []
    cfg = load_config(DistillExperimentConfig, path, overrides)
    assert set(cfg.task_configs()) <= set(cfg.model.heads)


@pytest.mark.parametrize("path", GAN_RUNS + [ROOT / "tests" / "tiny_gan.yaml", ROOT / "tests" / "tiny_scene_gan.yaml"], ids=lambda p: p.name)
def test_gan_configs_load(path):
    cls = gan_config_class(path, [])
    assert isinstance(load_config(cls, path), cls) and cls in GAN_CONFIGS.values()


@pytest.mark.parametrize("path", sorted((ROOT / "configs" / "accelerate").glob("*.yaml")), ids=lambda p: p.name)
def test_accelerate_configs_parse(path):
    cfg = ClusterConfig.from_yaml_file(path)
    assert cfg.num_processes >= 2 and cfg.distributed_type.value in ("MULTI_GPU", "FSDP", "MULTI_CPU")


def test_generation_longer_than_a_decoding_head_is_caught_at_load():
    with pytest.raises(
        ConfigError, match="generation.max_new_tokens is 24, but model.heads.qgen.decoder.max_len is 24 .*lower generation.max_new_tokens to 23"
    ):
        load_config(ExperimentConfig, ROOT / "configs" / "shapes" / "multitask.yaml", ["generation.max_new_tokens=24"])
    with pytest.raises(ConfigError, match="model.heads.caption.max_len is 32"):
        load_config(ExperimentConfig, ROOT / "configs" / "shapes" / "caption.yaml", ["generation.max_new_tokens=40"])


def test_a_pointer_head_taught_by_boxes_refuses_augmentation_that_moves_them():
    path = ROOT / "configs" / "shapes" / "reasoning_pointer.yaml"
    no_caption_boxes = "model.heads.caption.grounding_weight=0"
    with pytest.raises(ConfigError, match="heads.vqa: its pointer learns to aim from the boxes .*data.augment.shift=0"):
        load_config(ExperimentConfig, path, ["data.augment.shift=0.1", no_caption_boxes])
    with pytest.raises(ConfigError, match="heads.caption: its pointer learns to aim from the boxes"):
        load_config(ExperimentConfig, path, ["data.augment.flip=true", "model.heads.vqa.grounding_weight=0"])
    load_config(ExperimentConfig, path, ["data.augment.shift=0.1", "model.heads.vqa.grounding_weight=0", no_caption_boxes])


def test_a_task_decodes_with_its_own_generation_overrides_and_mistakes_name_the_task():
    path = ROOT / "configs" / "shapes" / "multitask.yaml"
    cfg = load_config(ExperimentConfig, path, ["tasks.caption.generation={num_beams: 3}"])
    assert cfg.generation_for("caption").num_beams == 3 and cfg.generation_for("qgen").num_beams == 1
    assert cfg.generation_for("caption").max_new_tokens == cfg.generation.max_new_tokens  # the rest from the section
    with pytest.raises(ConfigError, match="unknown config key 'tasks.caption.generation.beams'"):
        load_config(ExperimentConfig, path, ["tasks.caption.generation={beams: 3}"])
    with pytest.raises(ConfigError, match="tasks.caption.generation .*num_beams must be >= 1"):
        load_config(ExperimentConfig, path, ["tasks.caption.generation={num_beams: 0}"])
    with pytest.raises(ConfigError, match="tasks.qgen.generation.max_new_tokens is 30, but model.heads.qgen.decoder.max_len is 24"):
        load_config(ExperimentConfig, path, ["tasks.qgen.generation={max_new_tokens: 30}"])

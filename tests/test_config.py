from dataclasses import dataclass, field

import pytest

from vl.config import from_dict, load_config, save_config, to_dict
from vl.errors import ConfigError


@dataclass
class Optim:
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
    warmup: int = 10


@dataclass
class Run:
    name: str = "run"
    steps: int = 100
    bf16: bool = False
    tags: list[str] = field(default_factory=list)
    sizes: dict[str, int] = field(default_factory=lambda: {"train": 10, "test": 5})
    optim: Optim = field(default_factory=Optim)
    note: str | None = None


def write(tmp_path, text):
    path = tmp_path / "run.yaml"
    path.write_text(text)
    return path


def test_defaults_yaml_and_dotted_overrides(tmp_path):
    path = write(tmp_path, "name: exp\noptim:\n  lr: 3e-4\nsizes: {train: 7, test: 5}\n")
    cfg = load_config(Run, path, ["steps=5", "optim.warmup=2", "bf16=true", "tags=[a, b]", "sizes.train=9"])
    assert cfg.name == "exp" and cfg.steps == 5 and cfg.bf16 is True
    assert cfg.optim.lr == pytest.approx(3e-4)  # YAML 1.1 reads 3e-4 as a string; the float field converts it
    assert cfg.optim.warmup == 2 and cfg.optim.betas == (0.9, 0.999)
    assert cfg.tags == ["a", "b"]
    assert cfg.sizes == {"train": 9, "test": 5}  # a dotted override keeps the mapping's other keys


def test_resolved_config_round_trips_through_yaml(tmp_path):
    cfg = load_config(Run, None, ["optim.lr=0.5", "note=hello"])
    again = load_config(Run, save_config(cfg, tmp_path / "out" / "resolved.yaml"))
    assert again == cfg
    assert to_dict(again)["optim"]["betas"] == [0.9, 0.999]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"stpes": 3}, "unknown config key 'stpes'; did you mean 'steps'?"),
        ({"optim": {"lrr": 1}}, "unknown config key 'optim.lrr'; did you mean 'optim.lr'?"),
        ({"optim": {"zzz": 1}}, "unknown config key 'optim.zzz'; valid: optim.betas, optim.lr, optim.warmup"),
        ({"steps": "many"}, "config key 'steps' expects int, got 'many'"),
        ({"optim": {"betas": [0.9]}}, "config key 'optim.betas' expects 2 items, got 1"),
        ({"optim": 3}, "config section 'optim' must be a mapping"),
        ({"bf16": "maybe"}, "config key 'bf16' expects bool"),
    ],
)
def test_bad_keys_and_values_name_the_key(data, message):
    with pytest.raises(ConfigError) as err:
        from_dict(Run, data)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_bad_overrides_and_files(tmp_path):
    with pytest.raises(ConfigError, match="must look like key=value"):
        load_config(Run, None, ["steps"])
    with pytest.raises(ConfigError, match="did you mean 'optim.warmup'"):
        load_config(Run, None, ["optim.wramup=3"])
    with pytest.raises(ConfigError, match="'steps' is a value, not a section"):
        load_config(Run, None, ["steps.x=3"])
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(Run, tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="line 2.*not valid YAML"):
        load_config(Run, write(tmp_path, "name: a\n  bad: [\n"))
    with pytest.raises(ConfigError, match="must hold a mapping"):
        load_config(Run, write(tmp_path, "- 1\n- 2\n"))


def test_an_override_can_fix_a_bad_file_value(tmp_path):
    path = write(tmp_path, "steps: lots\n")
    assert load_config(Run, path, ["steps=3"]).steps == 3

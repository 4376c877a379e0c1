"""360-degree input: an encoder option whose convolutions and positions wrap around horizontally, and the
equirectangular Shapes world it is measured on."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from tasks import evaluate, train
from vl.data.shapes360 import Shapes360Config, Shapes360World
from vl.encoders import build_encoder
from vl.encoders.vit import WrapPad
from vl.errors import ConfigError

TINY = str(Path(__file__).parent / "tiny_360.yaml")
PANORAMA = {"type": "vit", "image_size": 32, "image_width": 64, "patch_size": 8, "dim": 32, "depth": 2, "heads": 2}


def test_wrap_pad_takes_columns_from_the_opposite_edge_and_zero_rows():
    x = torch.arange(12.0).view(1, 1, 3, 4)
    out = WrapPad(1)(x)
    assert out.shape == (1, 1, 5, 6)
    assert out[0, 0, 1].tolist() == [3, 0, 1, 2, 3, 0] and out[0, 0, 0].abs().sum() == 0 and out[0, 0, -1].abs().sum() == 0


@pytest.mark.parametrize("stem", ["conv", "patch"])
def test_a_wrapping_encoder_gives_a_rolled_panorama_rolled_tokens(stem):
    torch.manual_seed(0)
    x = torch.randn(2, 3, 32, 64)
    for wrap in (True, False):
        encoder = build_encoder({**PANORAMA, "stem": stem, "wrap": wrap}).eval()
        torch.nn.init.normal_(encoder.pos, std=0.5)  # positions as after training
        with torch.no_grad():
            tokens, rolled = encoder(x).unflatten(1, (4, 8)), encoder(torch.roll(x, 3 * 8, dims=-1)).unflatten(1, (4, 8))
        if wrap:  # a roll by whole patches rolls the token grid: pooled outputs are the same
            torch.testing.assert_close(torch.roll(tokens, 3, dims=2), rolled, atol=1e-5, rtol=1e-5)
        else:
            assert not torch.allclose(tokens.amax(dim=(1, 2)), rolled.amax(dim=(1, 2)), atol=1e-3)


def test_wrap_settings_that_cannot_hold_are_errors():
    with pytest.raises(ConfigError, match="set coords: 0 and cls_token: false"):
        build_encoder({**PANORAMA, "wrap": True, "coords": 8, "image_width": 0})
    with pytest.raises(ConfigError, match="coords needs a square image"):
        build_encoder({**PANORAMA, "coords": 8})
    with pytest.raises(ConfigError, match="not a multiple of patch_size"):
        build_encoder({**PANORAMA, "image_width": 60})


def test_the_world_is_a_panorama_that_wraps():
    world = Shapes360World(Shapes360Config(height=32))
    item = world.item("train", 5)
    assert item["image"].size == (64, 32) and item == {**world.item("train", 5), "image": item["image"]}
    rolled = Shapes360World(Shapes360Config(height=32, roll=20)).item("train", 5)
    assert np.array_equal(np.asarray(rolled["image"]), np.roll(np.asarray(item["image"]), 20, axis=1)) and rolled["tags"] == item["tags"]
    background = np.array([128, 128, 128])
    seam = [i for i in range(80) if (np.asarray(world.item("train", i)["image"])[:, [0, -1]] != background).any(-1).all(1).any()]
    assert seam  # some object lies across the seam: it shows at both edges
    stretched = world.scene("train", 0)
    assert all(abs(o["lat"]) <= np.radians(60) for o in stretched)


def test_360_tagging_trains_and_scores_rolled_panoramas(tmp_path):
    assert train.main(["--config", TINY, f"train.output_dir={tmp_path}"]) == 0
    assert evaluate.main(["--model", str(tmp_path / "model"), "--task", "tag", "--data", "shapes360:test:16", "--max-images", "8"]) == 0
    scores = json.loads(next((tmp_path / "model").glob("scores_tag_*.json")).read_text())
    assert 0 <= scores["mAP"] <= 1

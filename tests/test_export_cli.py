from pathlib import Path

import pytest
from PIL import Image

from tasks.export_shapes import main

ROOT = Path(__file__).resolve().parents[1]


def test_export_with_preview_and_config(tmp_path, capsys):
    preview = tmp_path / "grid.png"
    code = main(
        [
            "--out",
            str(tmp_path / "out"),
            "--n",
            "6",
            "--format",
            "vqa",
            "--preview",
            str(preview),
            "--config",
            str(ROOT / "configs" / "shapes" / "world.yaml"),
            "image_size=96",
        ]
    )
    assert code == 0
    assert "wrote 6 images (test) as vqa" in capsys.readouterr().out
    assert Image.open(tmp_path / "out" / "test" / "COCO_test_000300000000.png").size == (96, 96)
    grid = Image.open(preview)
    assert grid.format == "PNG" and grid.width > 4 * 96


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--n", "0"], "--n is 0; the number of items must be positive"),
        (["--n", "-3"], "--n is -3"),
        (["image_size=8"], "image_size is 8; it must be between 16 and 256 pixels"),
        (["shapes=[circle,hexagn]"], "unknown shape 'hexagn' in shapes; did you mean 'hexagon'?"),
        (["colors=[red,purpel]"], "unknown color 'purpel' in colors; did you mean 'purple'?"),
        (["imagesize=32"], "unknown config key 'imagesize'; did you mean 'image_size'?"),
        (["--split", "tets"], "unknown split 'tets'; did you mean 'test'?"),
        (["--format", "cocoo"], "unknown format 'cocoo'; did you mean 'coco'?"),
        (["--config", "nowhere.yaml"], "config file not found: nowhere.yaml"),
    ],
)
def test_bad_input_is_one_clear_line(tmp_path, capsys, argv, message):
    assert main(["--out", str(tmp_path), *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and message in err

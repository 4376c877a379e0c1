"""The README's "Use a trained model" section runs as written: every python block (in order, in one
namespace) and every `vl-suite` command of it (but train and serve, tested elsewhere), against a tiny
trained model at the paths it names."""

import glob
import os
import re
import shlex
from pathlib import Path

import pytest

from tasks.console import main as console_main
from tasks.export_shapes import main as export_main
from tasks.train import main as train_main

from .tiny_models import every_head_model, video_model

ROOT = Path(__file__).resolve().parents[1]
SECTION = ROOT.joinpath("README.md").read_text().split("## Use a trained model\n", 1)[1].split("\n## ", 1)[0]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A folder laid out as the README assumes: demo/run/model (trained), runs/shapes-retrieval/model,
    runs/shapes-reasoning/model and the exported Shapes test images."""
    root = tmp_path_factory.mktemp("readme")
    assert train_main(["--config", str(ROOT / "tests/tiny_multitask.yaml"), f"train.output_dir={root / 'demo/run'}"]) == 0
    every_head_model(root / "runs/shapes-retrieval/model")
    video_model(root / "runs/shapes-video/model", frames=8)
    (root / "runs/shapes-reasoning").mkdir(parents=True, exist_ok=True)
    (root / "runs/shapes-reasoning/model").symlink_to(root / "demo/run/model")
    assert export_main(["--out", str(root / "data/shapes"), "--split", "test", "--n", "4", "--format", "coco"]) == 0
    return root


def test_every_python_block_runs(workdir, monkeypatch, capsys):
    blocks = re.findall(r"```python\n(.*?)```", SECTION, re.S)
    assert len(blocks) >= 3
    monkeypatch.chdir(workdir)
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, "README.md", "exec"), namespace)  # noqa: S102 (our own README)
    printed = capsys.readouterr().out
    assert "generated_text" in printed and "'answer'" in printed and "'text'" in printed


def test_every_command_runs(workdir, monkeypatch, capsys):
    commands = [line for block in re.findall(r"```bash\n(.*?)```", SECTION, re.S) for line in block.splitlines() if line.startswith("vl-suite ")]
    monkeypatch.chdir(workdir)
    monkeypatch.delenv("VL_MODEL", raising=False)
    ran = []
    for line in commands:
        argv = shlex.split(line, comments=True)[1:]
        if argv[0] in ("train", "serve"):
            continue
        argv = [x for a in argv for x in (sorted(glob.glob(a)) if "*" in a else [a])]
        argv = [str(workdir / "data/shapes/test/COCO_test_000300000000.png") if a == "IMG" else a for a in argv]
        assert console_main(argv) == 0, line
        ran.append(argv[0])
    assert set(ran) == {"caption", "ask", "question", "tag", "evaluate", "export-shapes"}
    assert os.path.isfile(workdir / "demo/run/model/README.md")
    assert "COCO_test_000300000000.png:" in capsys.readouterr().out

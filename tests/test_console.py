"""The `vl-suite` command: train through accelerate launch, help with an example on every command, and
a clear error for a missing model folder."""

from pathlib import Path

import pytest

from tasks.common.cli import cpu_cores
from tasks.console import main

TINY = str(Path(__file__).parent / "tiny_multitask.yaml")


def test_train_runs_accelerate_launch_on_every_core(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert main(["train", TINY, f"train.output_dir={tmp_path}", "train.steps=2", "train.eval_every=2"]) == 0
    cores = cpu_cores()
    assert f"$ accelerate launch --num_processes 1 --num_machines 1 --num_cpu_threads_per_process {cores}" in capsys.readouterr().out
    assert (tmp_path / "model" / "model.safetensors").is_file() and (tmp_path / "model" / "README.md").is_file()


@pytest.mark.parametrize("command", ["caption", "ask", "question", "tag", "train", "serve"])
def test_every_command_has_help_with_an_example(command, capsys):
    with pytest.raises(SystemExit) as exit:
        main([command, "--help"])
    assert exit.value.code == 0 and "example:\n  vl-suite " + command in capsys.readouterr().out


def test_a_missing_model_folder_names_the_fix(tmp_path, capsys):
    assert main(["caption", str(tmp_path / "x.png"), "--model", str(tmp_path / "nothing")]) == 2
    assert "model folder not found" in capsys.readouterr().err

"""Multi-task training on one shared encoder (caption + vqa + qgen + tag), exact resume with several
loaders, and evaluation of every head, from the model and from the results files it writes."""

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tasks.evaluate import main as evaluate_main
from tasks.train import main as train_main
from vl.modeling import VLModel

ROOT = Path(__file__).resolve().parents[1]
TINY = str(ROOT / "tests" / "tiny_multitask.yaml")


def run_train(out: Path, *overrides: str) -> int:
    return train_main(["--config", TINY, f"train.output_dir={out}", *overrides])


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("multitask")
    assert run_train(out) == 0
    return out


def test_every_task_trains_and_reports(trained):
    logs = [json.loads(line) for line in (trained / "logs" / "metrics.jsonl").read_text().splitlines()]
    keys = {k for rec in logs for k in rec}
    assert {"train/loss/caption", "train/loss/vqa", "train/loss/qgen", "train/loss/tag"} <= keys
    assert {"val/caption/CIDEr", "val/vqa/accuracy", "val/vqa/relational", "val/qgen/CIDEr", "val/qgen/answerability", "val/tag/mAP", "val/tag/F1"} <= keys
    assert "val/vqa/type/horizontal" in keys  # Shapes' question types each on the learning curve
    model = VLModel.from_pretrained(trained / "model")
    assert set(model.heads) == {"caption", "vqa", "qgen", "tag"}
    assert model.config.heads["vqa"]["answers"] and model.config.heads["tag"]["tags"]
    assert sum(p.numel() for p in model.encoder.parameters()) > 0  # one encoder, shared


def test_evaluate_each_head_and_rescore_the_vqa_results_file(trained, capsys, tmp_path):
    model = trained / "model"
    for task in ("caption", "vqa", "qgen", "tag"):
        assert evaluate_main(["--model", str(model), "--task", task, "--data", "shapes:test", "--metrics", "Bleu_4,CIDEr"]) == 0, task
    printed = capsys.readouterr().out
    assert "Overall Accuracy is:" in printed and "answerability" in printed and "mAP" in printed
    assert "VQA accuracy by the official vqaEval.py, current master" in printed
    vqa_scores = json.loads((model / "scores_vqa_shapes_test.json").read_text())
    results = json.loads((model / "results_vqa_shapes_test.json").read_text())
    assert results and set(results[0]) == {"question_id", "answer"}
    # The results file, scored with the files tasks.export_shapes writes, gives the same accuracy.
    from tasks.export_shapes import main as export_main

    assert export_main(["--out", str(tmp_path), "--split", "test", "--n", "8", "--format", "vqa", "image_size=32"]) == 0
    q = next(tmp_path.rglob("*questions*.json"))
    a = next(tmp_path.rglob("*annotations*.json"))
    assert (
        evaluate_main(
            [
                "--vqa-questions",
                str(q),
                "--vqa-annotations",
                str(a),
                "--predictions",
                str(model / "results_vqa_shapes_test.json"),
                "--out",
                str(tmp_path / "s.json"),
            ]
        )
        == 0
    )
    assert json.loads((tmp_path / "s.json").read_text())["overall"] == vqa_scores["overall"]
    questions = json.loads((model / "questions_qgen_shapes_test.json").read_text())
    assert {"image_id", "answer", "question_type", "question"} <= set(questions[0])


def assert_resume_matches(tmp_path: Path, steps: int, checkpoint: int, *overrides: str) -> None:
    """A run resumed from its step-`checkpoint` checkpoint ends with the weights of an uninterrupted one."""
    args = [*overrides, f"train.steps={steps}", f"train.save_every={checkpoint}", "train.eval_every=1000", "train.log_every=4"]
    assert run_train(tmp_path / "straight", *args) == 0
    saved = f"step_{checkpoint:07d}"
    shutil.copytree(tmp_path / "straight" / "checkpoints" / saved, tmp_path / "again" / "checkpoints" / saved)
    shutil.copytree(tmp_path / "straight" / "tokenizer", tmp_path / "again" / "tokenizer")
    assert run_train(tmp_path / "again", *args, "--resume", "latest") == 0
    a, b = load_file(tmp_path / "straight" / "model" / "model.safetensors"), load_file(tmp_path / "again" / "model" / "model.safetensors")
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=1e-5, atol=1e-6)


def test_multitask_resume_mid_epoch_matches_an_uninterrupted_run(tmp_path):
    assert_resume_matches(tmp_path, steps=8, checkpoint=5)


def test_a_task_without_a_head_is_a_clear_error(tmp_path, capsys):
    assert run_train(tmp_path, "tasks.vqaa.weight=1") == 2
    assert "tasks.vqaa has no head" in capsys.readouterr().err


def test_tags_outside_the_vocabulary_are_scored_and_composed(trained, capsys):
    model = trained / "model"
    assert VLModel.from_pretrained(model).config.heads["tag"]["threshold_split"] == "shapes:val"
    assert evaluate_main(["--model", str(model), "--task", "tag", "--data", "shapes:test_heldout", "--max-images", "8"]) == 0
    printed = capsys.readouterr().out
    assert "tuned on shapes:val" in printed and "optimistic" not in printed
    scores = json.loads((model / "scores_tag_shapes_test_heldout.json").read_text())
    # every test_heldout scene holds a pair training never named: the closed vocabulary cannot tag it
    assert scores["unseen_tags"] >= 1 and scores["unseen_instances"] >= 8 and scores["unseen_recall"] == 0.0
    assert {"composed_mAP", "composed_F1", "composed_recall", "composed_precision"} <= scores.keys() and scores["composed_coverage"] == 1.0
    assert evaluate_main(["--model", str(model), "--task", "tag", "--data", "shapes:val"]) == 0
    assert "the same data as scored here: optimistic" in capsys.readouterr().out


SHARED = ["train.share_images=true", "tasks.vqa.batch_size=0", "tasks.vqa.questions_per_image=3", "tasks.qgen.questions_per_image=2"]


def test_a_shared_step_gives_every_head_the_same_images_in_one_encoder_pass(tmp_path):
    from accelerate import Accelerator

    from tasks.common.multitask import MultiTask
    from vl.config import load_config
    from vl.experiment import ExperimentConfig

    cfg = load_config(ExperimentConfig, TINY, [f"train.output_dir={tmp_path}", *SHARED])
    task = MultiTask(cfg, Accelerator(cpu=True))
    assert task.samples_per_step == 8
    (loader,) = task.train_loaders(0).values()
    torch.manual_seed(0)
    batch = next(iter(loader))
    images = batch["caption"]["pixel_values"]
    assert images.shape[0] == 8 and all(torch.equal(b["pixel_values"], images) for b in batch.values())
    assert batch["caption"]["input_ids"].shape[0] == 8 and batch["tag"]["tag_targets"].shape[0] == 8  # one caption per image
    per_image = torch.bincount(batch["vqa"]["question_image"], minlength=8)
    assert per_image.max() <= 3 and per_image.min() >= 1
    assert torch.bincount(batch["qgen"]["prompt_image"], minlength=8).max() <= 2
    task.model.eval()
    shared = task.training_step(task.model, {"images": batch})
    for name, part in task.parts.items():  # one encoder pass gives each head what its own pass would
        torch.testing.assert_close(shared[f"loss/{name}"], part.outputs(task.model, batch[name])["loss"].detach())


def test_a_caption_pointer_is_taught_by_the_boxes_of_the_objects_its_captions_name(tmp_path):
    """model.heads.caption.pointer: Shapes caption batches carry, per label token, the box of the object its
    words speak of (vl.data.shapes.truth.caption_objects), and the head's loss includes the grounding term."""
    from accelerate import Accelerator

    from tasks.common.multitask import MultiTask
    from vl.config import load_config
    from vl.data.shapes.truth import caption_objects
    from vl.experiment import ExperimentConfig

    cfg = load_config(ExperimentConfig, TINY, [f"train.output_dir={tmp_path}", *SHARED, "model.heads.caption.pointer=true"])
    task = MultiTask(cfg, Accelerator(cpu=True))
    torch.manual_seed(0)
    (loader,) = task.train_loaders(0).values()
    batch = next(iter(loader))["caption"]
    boxes, mask = batch["caption_boxes"], batch["caption_box_mask"]
    assert mask.shape == batch["labels"].shape and mask.any() and not mask[batch["labels"] == -100].any()
    kind, train = task.parts["caption"], task.parts["caption"].train_rows
    rows = [{"caption": c[0], "scene": scene} for c, scene in zip(train["captions"][:16], train["scene"][:16])]
    boxes, mask = kind.caption_boxes(rows, width=40)
    for row, row_boxes, row_mask in zip(rows, boxes, mask):  # the boxes are those of the objects the words name, each named
        named = {tuple(torch.tensor(o["bbox"]).div(32).tolist()) for _, _, o in caption_objects(row["caption"], row["scene"]["objects"], 32)}
        assert {tuple(b) for b in row_boxes[row_mask].tolist()} == named, row["caption"]
    assert mask.any(-1).sum() >= 8
    out = task.parts["caption"].outputs(task.model, batch)
    assert torch.isfinite(out["loss_ground"]) and out["loss_ground"] > 0


def test_grounding_kinds_teaches_the_vqa_pointers_every_object_a_count_is_made_of(tmp_path):
    """model.heads.vqa.grounding_kinds: VQA batches also carry the boxes of every object of the kinds a question
    counts or asks about, each assigned to its pointer, and the grounding loss reads them; without the option they stay out."""
    from accelerate import Accelerator

    from tasks.common.multitask import MultiTask
    from vl.config import load_config
    from vl.experiment import ExperimentConfig

    pointer = ["model.heads.vqa.fusion=pointer", "model.heads.vqa.generative=false"]
    batches = {}
    for kinds in (False, True):
        cfg = load_config(ExperimentConfig, TINY, [f"train.output_dir={tmp_path}", *SHARED, *pointer, f"model.heads.vqa.grounding_kinds={kinds}"])
        task = MultiTask(cfg, Accelerator(cpu=True))
        torch.manual_seed(0)
        (loader,) = task.train_loaders(0).values()
        batches[kinds] = next(iter(loader))["vqa"]
    assert "question_kind_boxes" not in batches[False]
    batch = batches[True]
    mask, pointer_of = batch["question_kind_box_mask"], batch["question_kind_pointer"]
    assert mask.any() and set(pointer_of[mask].tolist()) <= {0, 1}  # "are there more X than Y": the second kind teaches pointer 2
    assert not (mask.any(-1) & batch["question_box_mask"].any(-1)).any()  # a question names objects or asks about kinds, not both
    out = task.parts["vqa"].outputs(task.model, batch)
    loss_named = task.model.heads["vqa"]._grounding_boxes({k: v for k, v in batch.items() if not k.startswith("question_kind")})
    assert torch.isfinite(out["loss_ground"]) and len(loss_named) == 2


def test_shared_images_resume_mid_epoch_matches_an_uninterrupted_run(tmp_path):
    assert_resume_matches(tmp_path, 7, 4, *SHARED)  # which caption and which questions are drawn replays too


def test_shared_images_and_questions_per_image_mistakes_name_the_fix(tmp_path, capsys):
    assert run_train(tmp_path, "train.share_images=true") == 2  # the tiny config gives vqa a batch size of its own
    assert "remove tasks.vqa.batch_size" in capsys.readouterr().err
    assert run_train(tmp_path, "tasks.caption.questions_per_image=2") == 2
    assert "applies to question tasks (vqa, qgen), not to a 'caption' task" in capsys.readouterr().err


def test_the_demo_scores_every_head_and_draws_its_picture(trained, tmp_path, capsys):
    from tasks.demo import main as demo_main

    (tmp_path / "run").symlink_to(trained)
    assert demo_main(["--out", str(tmp_path), "--skip-training"]) == 0
    printed = capsys.readouterr().out
    assert "captions with every claim true of their scene" in printed and "claims that hold, by kind" in printed
    assert "model vs answer prior" in printed and "mAP" in printed and "demo done in" in printed
    scores = json.loads((tmp_path / "metrics.json").read_text())
    assert {"caption", "vqa", "tag", "baselines"} <= set(scores)
    assert 0 <= scores["caption"]["truth"]["all_claims_true"] <= 1 and scores["baselines"]["vqa"]["accuracy"] > 0
    from PIL import Image

    assert Image.open(tmp_path / "shapes.png").size[0] > 224 * 4
    assert demo_main(["--out", str(tmp_path / "nothing"), "--skip-training"]) == 2  # no run to score: says so


def test_the_model_card_has_hub_front_matter_and_a_snippet_that_runs(trained, capsys):
    import re

    from huggingface_hub import ModelCard

    card = ModelCard.load(trained / "model" / "README.md")
    data = card.data.to_dict()
    assert data["library_name"] == "vl-suite" and data["pipeline_tag"] == "image-to-text"
    assert {"image-captioning", "image-question-answering", "visual-question-generation", "image-tagging"} <= set(data["tags"])
    assert data["datasets"] == ["vl-suite/shapes-world"]
    logged = [json.loads(line) for line in (trained / "logs" / "metrics.jsonl").read_text().splitlines()]
    final = [r for r in logged if "val/vqa/accuracy" in r][-1]
    scores = {m["name"]: m["value"] for result in data["model-index"][0]["results"] for m in result["metrics"]}
    assert scores["vqa accuracy"] == pytest.approx(final["val/vqa/accuracy"], abs=1e-4)
    assert {"caption CIDEr", "qgen answerability", "tag mAP"} <= set(scores)
    assert f"--config {TINY} train.output_dir={trained}" in card.text
    snippet = re.search(r"```python\n(.*?)```", card.text, re.S).group(1)
    exec(compile(snippet, "model card", "exec"), {})  # noqa: S102 (as written: imports, image, one call per head)
    printed = capsys.readouterr().out
    assert printed.count("generated_text") == 2 and "'answer'" in printed and "'label'" in printed


def test_the_round_trip_check_keeps_a_question_the_vqa_head_answers_as_asked(trained, tmp_path):
    """Of 3 beams, the first the VQA head answers with the item's answer: never less answerable than the
    best beam alone (it is the first candidate), and each question says how many were written."""
    model = trained / "model"
    common = ["--model", str(model), "--task", "qgen", "--data", "shapes:test", "--metrics", "CIDEr", "--num-beams", "3"]
    assert evaluate_main([*common, "--out", str(tmp_path / "one.json")]) == 0
    assert evaluate_main([*common, "--num-return-sequences", "3", "--out", str(tmp_path / "three.json")]) == 0
    one, three = (json.loads((tmp_path / f"{k}.json").read_text())["metrics"]["answerability"] for k in ("one", "three"))
    assert three >= one
    questions = json.loads(next(model.glob("questions_qgen_*.json")).read_text())
    assert questions and all(q["candidates"] == 3 for q in questions)
    assert evaluate_main([*common[:-2], "--num-return-sequences", "2"]) != 0  # greedy writes one question


def test_a_shared_image_fetches_only_the_rows_its_batch_reads():
    from datasets import Dataset

    from tasks.common.multitask import SharedImages
    from vl.data.specs import column
    from vl.tasks.base import ImageGroups, LazyRows

    rows = Dataset.from_dict({"image_id": [7, 7, 7, 9], "question": ["a", "b", "c", "d"]})
    assert column(rows, "image_id") == [7, 7, 7, 9] and isinstance(column(rows, "image_id"), list)
    fetched = []

    class Source:  # records what is fetched
        def __getitem__(self, k):
            fetched.append(k)
            return {"k": k}

    lazy = LazyRows(Source(), [3, 5, 8])
    assert len(lazy) == 3 and fetched == []
    assert lazy[1] is lazy[1] and lazy[-1] == {"k": 8} and fetched == [5, 8]  # fetched once, then kept
    assert [r["k"] for r in lazy] == [3, 5, 8] and fetched == [5, 8, 3]
    shared = SharedImages({"vqa": ImageGroups(rows)})
    image = shared[0]["vqa"]  # image 7: one ImageGroups item, its three questions
    assert isinstance(image, LazyRows) and [r["question"] for r in image[0]] == ["a", "b", "c"]
    with pytest.raises(IndexError):
        lazy[3]


def test_each_text_head_decodes_as_its_task_says_from_training_to_the_pipeline(trained, monkeypatch):
    """tasks.caption.generation (2 beams) beats the generation section (greedy) for captions only; the
    saved model records each text head's decoding, and generate(), the pipeline and tasks.evaluate start
    from it (an option still wins)."""
    from transformers import pipeline

    import vl.modeling

    model = VLModel.from_pretrained(trained / "model")
    assert model.config.generation == {"caption": {"max_new_tokens": 8, "num_beams": 2}, "vqa": {"max_new_tokens": 8}, "qgen": {"max_new_tokens": 8}}
    seen = []
    real = vl.modeling.generate
    monkeypatch.setattr(vl.modeling, "generate", lambda *a, **k: seen.append(a[5]) or real(*a, **k))
    pixels = torch.zeros(1, 3, 32, 32)
    model.generate(pixels, task="caption")
    model.generate(pixels, task="caption", num_beams=1)
    pipeline("image-captioning", model=str(trained / "model"))(torch.zeros(32, 32, 3, dtype=torch.uint8).numpy())
    assert [(c.num_beams, c.max_new_tokens) for c in seen] == [(2, 8), (1, 8), (2, 8)]
    for task, options, beams in (("caption", [], 2), ("caption", ["--num-beams", "1"], 1), ("qgen", [], 1)):
        seen.clear()
        assert evaluate_main(["--model", str(trained / "model"), "--task", task, "--data", "shapes:test", "--metrics", "CIDEr", *options]) == 0
        assert seen[0].num_beams == beams, (task, options)

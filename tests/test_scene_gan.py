"""The scene-graph GAN (issue 18): graphs as tensors, the layout, one training loop shared with the face
GAN (exact resume), drawing a graph written as JSON, and the scores against the world's truth."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from gan.config import SceneGANConfig
from gan.graphs import GraphVocab, ShapesScenes, encode_scene, graph_from_json, object_mask
from gan.layout import GraphTripleConv, masks_to_layout
from gan.sample import load_generator, sample_from_graph
from gan.scene_evaluate import layout_scores
from tasks import draw_graph, train_gan
from vl.config import load_config
from vl.data.shapes import ShapesConfig, ShapesWorld
from vl.errors import ConfigError

TINY = str(Path(__file__).with_name("tiny_scene_gan.yaml"))


def run(out, *extra):
    return train_gan.main(["--config", TINY, f"train.output_dir={out}", *extra])


def test_a_scene_becomes_its_complete_graph_with_true_boxes_and_masks():
    world = ShapesConfig()
    scene = ShapesWorld(world).scene("train", 3)
    vocab = GraphVocab.of(world)
    g = encode_scene(scene, vocab, world.max_objects, 16)
    n = len(scene.objects)
    assert g["objects"].sum() == n and g["triple_mask"].sum() == len(scene.relations)
    for i, o in enumerate(scene.objects):
        assert vocab.shapes[g["shape"][i]] == o.shape and vocab.colors[g["color"][i]] == o.color
        x, y, w, h = o.bbox
        assert torch.allclose(g["boxes"][i], torch.tensor([x, y, x + w, y + h]) / 64)
    s, p, o = g["triples"][0].tolist()
    assert scene.relations[0] == (s, vocab.predicates[p], o)
    assert object_mask("square", 16).min() == 1.0  # a square fills its box; a circle leaves the corners
    circle = object_mask("circle", 16)
    assert circle[0, 0] == 0 and circle[8, 8] == 1


def test_a_graph_written_as_json_is_checked_and_names_the_fix():
    vocab = GraphVocab.of(ShapesConfig())
    g = graph_from_json({"objects": ["small red circle", {"shape": "square", "color": "blue"}], "relationships": [[0, "left of", 1]]}, vocab, 6)
    assert g["objects"].tolist() == [True, True, False, False, False, False]
    assert vocab.sizes[g["size"][1]] == "large" and vocab.predicates[g["triples"][0, 1]] == "left_of"
    assert torch.equal(
        graph_from_json(json.dumps({"objects": ["red circle"]}), vocab, 6)["color"], graph_from_json({"objects": ["red circle"]}, vocab, 6)["color"]
    )
    with pytest.raises(ConfigError, match="unknown color 'rde'.*did you mean 'red'"):
        graph_from_json({"objects": ["small rde circle"]}, vocab, 6)
    with pytest.raises(ConfigError, match=r"must name two different objects among 0..0"):
        graph_from_json({"objects": ["red circle"], "relationships": [[0, "above", 3]]}, vocab, 6)
    with pytest.raises(ConfigError, match="unknown predicate 'inside'"):
        graph_from_json({"objects": ["red circle", "blue star"], "relationships": [[0, "inside", 1]]}, vocab, 6)
    with pytest.raises(ConfigError, match="1 to 6 objects"):
        graph_from_json({"objects": []}, vocab, 6)
    with pytest.raises(ConfigError, match="not valid JSON"):
        graph_from_json("{objects: [", vocab, 6)


def test_the_layout_puts_each_mask_in_its_box_times_its_vector():
    vectors = torch.tensor([[[1.0, 0.0], [0.0, 2.0]]])
    boxes = torch.tensor([[[0.0, 0.0, 0.5, 0.5], [0.5, 0.5, 1.0, 1.0]]])
    masks = torch.ones(1, 2, 4, 4)
    layout = masks_to_layout(vectors, boxes, masks, torch.tensor([[True, True]]), 8)
    assert layout.shape == (1, 2, 8, 8)
    assert torch.allclose(layout[0, 0, :4, :4], torch.ones(4, 4)) and layout[0, 0, 4:, :].abs().max() < 1e-6
    assert torch.allclose(layout[0, 1, 4:, 4:], torch.full((4, 4), 2.0)) and layout[0, 1, :4, :].abs().max() < 1e-6
    absent = masks_to_layout(vectors, boxes, masks, torch.tensor([[True, False]]), 8)
    assert absent[0, 1].abs().max() == 0  # padding objects draw nothing


def test_graph_convolution_is_equivariant_to_renumbering_the_objects():
    torch.manual_seed(0)
    conv = GraphTripleConv(8, 16)
    obj, pred = torch.randn(1, 3, 8), torch.randn(1, 2, 8)
    triples = torch.tensor([[[0, 0, 1], [1, 0, 2]]])
    mask = torch.ones(1, 2, dtype=torch.bool)
    perm = torch.tensor([2, 0, 1])  # new object k is old object perm[k]
    inverse = torch.argsort(perm)
    renumbered = triples.clone()
    renumbered[..., 0], renumbered[..., 2] = inverse[triples[..., 0]], inverse[triples[..., 2]]
    a, _ = conv(obj, pred, triples, mask)
    b, _ = conv(obj[:, perm], pred, renumbered, mask)
    assert torch.allclose(a[:, perm], b, atol=1e-6)


def test_train_draw_and_resume_through_the_one_gan_loop(tmp_path, capsys):
    assert run(tmp_path / "full") == 0
    grid = Image.open(tmp_path / "full" / "samples" / "step_0000004.png")
    assert grid.height == 96 * 2 + 2  # two scenes; columns: graph text, layout, generated, real
    assert "done: 4 steps" in capsys.readouterr().out
    assert run(tmp_path / "cut", "train.steps=2") == 0
    assert run(tmp_path / "cut", "--resume", "latest") == 0
    a, b = (load_file(tmp_path / d / "generator" / "model.safetensors") for d in ("full", "cut"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    generator, cfg = load_generator(tmp_path / "full" / "generator", kind="scene_graph")
    assert cfg.model.generator.max_objects == 3 and cfg.model.generator.image_size == 32
    graph = {"objects": ["small red circle", "large blue square"], "relationships": [[0, "left_of", 1]]}
    drawn = sample_from_graph(tmp_path / "full" / "generator", graph)
    assert drawn["image"].size == (32, 32) and len(drawn["boxes"]) == 2
    assert np.array_equal(np.asarray(drawn["image"]), np.asarray(sample_from_graph(generator, json.dumps(graph))["image"]))
    with pytest.raises(ConfigError, match="1 to 3 objects"):
        sample_from_graph(generator, {"objects": ["red circle"] * 4})
    with pytest.raises(ConfigError, match="holds a scene_graph generator; this needs a faces one"):
        load_generator(tmp_path / "full" / "generator", kind="faces")
    path = tmp_path / "graph.json"
    path.write_text(json.dumps(graph))
    assert (
        draw_graph.main(
            ["--generator", str(tmp_path / "full" / "generator"), "--graph", str(path), "--out", str(tmp_path / "s.png"), "--grid", str(tmp_path / "g.png")]
        )
        == 0
    )
    assert Image.open(tmp_path / "s.png").size == (128, 128) and (tmp_path / "g.png").is_file()


def test_a_config_of_the_wrong_kind_says_so(tmp_path, capsys):
    assert train_gan.main(["--config", TINY, "kind=scene"]) == 2
    assert "did you mean 'scene_graph'" in capsys.readouterr().err
    cfg = load_config(SceneGANConfig, TINY)
    assert cfg.model.discriminator.colors == 7 and cfg.model.generator.max_objects == 3


def test_layout_scores_count_boxes_and_kept_relations():
    truth = torch.tensor([[[0.1, 0.1, 0.3, 0.3], [0.6, 0.6, 0.8, 0.8]]])
    shifted = truth.clone()
    shifted[0, 1] = torch.tensor([0.0, 0.6, 0.2, 0.8])  # object 1 now left of object 0
    vocab = GraphVocab.of(ShapesConfig())
    left, above = vocab.predicates.index("left_of"), vocab.predicates.index("above")
    triples = torch.tensor([[[0, left, 1], [0, above, 1]]])
    objects, mask = torch.tensor([[True, True]]), torch.ones(1, 2, dtype=torch.bool)
    exact = layout_scores(truth, truth, objects, triples, mask, vocab.predicates, 64)
    assert exact["box_iou"] == pytest.approx(1.0) and exact["spatial_triples_kept"] == 1.0 and exact["centre_error_px"] == 0
    moved = layout_scores(shifted, truth, objects, triples, mask, vocab.predicates, 64)
    assert moved["box_R@0.5"] == 0.5 and moved["spatial_triples_kept"] == 0.5  # "above" still holds, "left of" not


@pytest.fixture(scope="module")
def tiny_generator(tmp_path_factory):
    out = tmp_path_factory.mktemp("scene_gan")
    assert train_gan.main(["--config", TINY, f"train.output_dir={out}"]) == 0
    return out / "generator"


MULTITASK = str(Path(__file__).with_name("tiny_multitask.yaml"))
SMALL_WORLD = ["data.shapes.max_objects=3"]  # the tiny generator's world: 32 px, up to 3 objects


def test_synthetic_scenes_hold_the_held_out_pairs_with_the_truth_of_their_graphs(tiny_generator):
    from gan.scene_augment import synthetic_scenes
    from vl.experiment import ExperimentConfig

    cfg = load_config(ExperimentConfig, MULTITASK, [*SMALL_WORLD, f"data.gan_augment.generator={tiny_generator}", "data.gan_augment.ratio=0.25"])
    rows = synthetic_scenes(cfg.data.shapes, cfg.data.gan_augment)
    assert len(rows) == 12  # 0.25 x 48 training images
    held = set(cfg.data.shapes.heldout_pairs)
    for row in rows:
        assert held & set(row["tags"]) and row["image"].size == (32, 32) and row["split"] == "gan"
        pairs = {f"{o['color']} {o['shape']}" for o in row["scene"]["objects"]}
        assert held & pairs and len(row["captions"]) == 5 and row["questions"]
    real = load_config(
        ExperimentConfig, MULTITASK, [*SMALL_WORLD, f"data.gan_augment.generator={TINY}", "data.gan_augment.ratio=0.25", "data.gan_augment.source=real"]
    )
    ceiling = synthetic_scenes(real.data.shapes, real.data.gan_augment)
    assert ceiling["scene"] == rows["scene"] and ceiling["captions"] == rows["captions"]  # the same graphs, rendered by the world
    scene = ShapesWorld(real.data.shapes)
    from vl.data.shapes.scene import Scene, ShapeObject

    first = rows[0]["scene"]
    objs = tuple(ShapeObject(o["id"], o["shape"], o["color"], o["size"], o["x"], o["y"], o["radius"], tuple(o["bbox"])) for o in first["objects"])
    rendered = scene.image(Scene(32, objs, ()))
    assert np.array_equal(np.asarray(ceiling[0]["image"].convert("RGB")), np.asarray(rendered))


def test_natural_frequency_scenes_hold_held_out_pairs_as_often_as_any_pair():
    """frequency: natural draws the added scenes from every pair: a held-out pair is one object's pair about as
    often as any other (4 of 42 pairs here), not in every scene; its tags and captions follow its graph."""
    from gan.scene_augment import synthetic_scenes
    from vl.experiment import ExperimentConfig

    overrides = [f"data.gan_augment.generator={TINY}", "data.gan_augment.ratio=4", "data.gan_augment.source=real", "data.gan_augment.frequency=natural"]
    cfg = load_config(ExperimentConfig, MULTITASK, [*SMALL_WORLD, *overrides])
    rows = synthetic_scenes(cfg.data.shapes, cfg.data.gan_augment)
    held = set(cfg.data.shapes.heldout_pairs)
    objects = [f"{o['color']} {o['shape']}" for row in rows for o in row["scene"]["objects"]]
    share = sum(pair in held for pair in objects) / len(objects)
    assert len(rows) == 192 and 0.03 < share < 0.2  # 4 / 42 = 0.095 expected; every_scene gives >= 1 in 3 objects
    with_held = [row for row in rows if held & {f"{o['color']} {o['shape']}" for o in row["scene"]["objects"]}]
    assert 0 < len(with_held) < len(rows) / 2
    assert all(held & set(row["tags"]) for row in with_held)
    with pytest.raises(ConfigError, match="frequency"):
        load_config(ExperimentConfig, MULTITASK, [*overrides[:3], "data.gan_augment.frequency=sometimes"])


def test_filtered_scenes_are_the_first_drawings_the_reader_reads_right(tiny_generator, tmp_path, monkeypatch):
    """filter_with keeps drawn scenes the reader reads right, in order, until ratio x train are kept; the rows
    are then those of the unfiltered augmentation minus the rejected scenes."""
    import gan.scene_augment as scene_augment
    from tasks import train
    from vl.experiment import ExperimentConfig

    views = [*SMALL_WORLD, f"data.gan_augment.generator={tiny_generator}", "data.gan_augment.ratio=0.25"]
    plain = scene_augment.synthetic_scenes(*_augment(ExperimentConfig, views))
    reader = tmp_path / "reader"
    assert train.main(["--config", MULTITASK, f"train.output_dir={reader}", "train.steps=1", *SMALL_WORLD]) == 0
    right = scene_augment.read_right(str(reader / "model"), [ShapesWorld(ShapesConfig(image_size=32, max_objects=3)).scene("train", 0)], [plain[0]["image"]])
    assert len(right) == 1 and isinstance(right[0], bool)  # the real reader answers; which way is down to 1 step of training

    monkeypatch.setattr(scene_augment, "read_right", lambda reader, scenes, images: [all(o.shape != "star" for o in s.objects) for s in scenes])
    rows = scene_augment.synthetic_scenes(*_augment(ExperimentConfig, [*views, f"data.gan_augment.filter_with={reader / 'model'}"]))
    starless = [row for row in plain if all(o["shape"] != "star" for o in row["scene"]["objects"])]
    assert len(rows) == 12 and len(starless) < 12 and not any(o["shape"] == "star" for row in rows for o in row["scene"]["objects"])
    assert rows["scene"][: len(starless)] == [row["scene"] for row in starless]  # the same scenes in the same order, more drawn after
    assert sorted(rows["image_id"]) == [9 * 10**8 + k for k in range(12)]

    monkeypatch.setattr(scene_augment, "read_right", lambda reader, scenes, images: [False] * len(scenes))
    with pytest.raises(ConfigError, match=r"read only 0 of \d+ drawn scenes right"):
        scene_augment.synthetic_scenes(*_augment(ExperimentConfig, [*views, f"data.gan_augment.filter_with={reader}/other"]))
    with pytest.raises(ConfigError, match="no config.json"):
        scene_augment._reader(str(tmp_path))
    with pytest.raises(ConfigError, match="with source: real there are none to filter"):
        _augment(ExperimentConfig, [*views, "data.gan_augment.filter_with=x", "data.gan_augment.source=real"])


def _augment(config_class, overrides):
    cfg = load_config(config_class, MULTITASK, overrides)
    return cfg.data.shapes, cfg.data.gan_augment


def test_scene_graph_views_join_every_shapes_task_and_train(tiny_generator, tmp_path):
    from accelerate import Accelerator

    from tasks import train
    from tasks.common.multitask import MultiTask
    from vl.experiment import ExperimentConfig

    views = [*SMALL_WORLD, f"data.gan_augment.generator={tiny_generator}", "data.gan_augment.ratio=0.25"]
    task = MultiTask(load_config(ExperimentConfig, MULTITASK, views), Accelerator(cpu=True))
    for name in ("caption", "tag"):
        ids = set(task.parts[name].train_rows["image_id"])
        assert len(ids) == 48 + 12 and sum(i >= 9 * 10**8 for i in ids) == 12
    assert sum(q >= 9 * 10**11 for q in task.parts["vqa"].train_rows["question_id"]) > 12
    assert train.main(["--config", MULTITASK, f"train.output_dir={tmp_path}", "train.steps=2", *views]) == 0
    with pytest.raises(ConfigError, match="train it on the same Shapes world"):
        MultiTask(load_config(ExperimentConfig, MULTITASK, views[1:]), Accelerator(cpu=True))


def test_training_scenes_are_the_worlds_items():
    world = load_config(SceneGANConfig, TINY).data.shapes
    item = ShapesScenes(world, "train", 8)[5]
    real = np.asarray(ShapesWorld(world).item("train", 5)["image"], dtype=np.float32) / 127.5 - 1
    assert np.allclose(item["image"].permute(1, 2, 0).numpy(), real)


def test_the_readme_draws_a_graph_as_written(tiny_generator, tmp_path, monkeypatch, capsys):
    import re

    readme = Path(__file__).resolve().parents[1].joinpath("README.md").read_text()
    section = readme.split("## The scene-graph GAN\n", 1)[1].split("\n## ", 1)[0]
    (block,) = re.findall(r"```python\n(.*?)```", section, re.S)
    (tmp_path / "runs/gan-scenes").mkdir(parents=True)
    (tmp_path / "runs/gan-scenes/generator").symlink_to(tiny_generator)
    monkeypatch.chdir(tmp_path)
    exec(compile(block, "README.md", "exec"), {})  # noqa: S102 (our own README)
    assert Image.open(tmp_path / "scene.png").size == (32, 32) and capsys.readouterr().out.startswith("[(")


def test_evaluate_scene_gan_scores_layouts_and_reads_both_images(tiny_generator, tmp_path, capsys):
    from tasks import evaluate_scene_gan

    from .tiny_models import every_head_model

    reader = every_head_model(tmp_path / "reader")
    out = tmp_path / "scores.json"
    assert evaluate_scene_gan.main(["--generator", str(tiny_generator), "--reader", str(reader), "--n", "8", "--out", str(out)]) == 0
    scores = json.loads(out.read_text())
    for split in ("test", "test_heldout"):
        assert 0 <= scores[split]["layout"]["box_iou"] <= 1 and scores[split]["layout"]["objects"] >= 8
        assert {"real", "generated", "at_true_layout"} <= scores[split]["vqa"].keys() and "accuracy" in scores[split]["vqa"]["generated"]
        assert "tag" in scores[split]  # scored, or skipped with the reason (the tiny reader's 3 tags may be absent)
        assert scores[split]["fd"]["generated_vs_real"] >= 0
    assert (tiny_generator / "scene_examples.png").is_file() and "box IoU" in capsys.readouterr().out


def test_shape_reads_say_which_drawn_shapes_a_reader_mistakes():
    from datasets import Dataset

    from gan.scene_evaluate import shape_reads

    rows = Dataset.from_dict(
        {"question_type": ["shape", "shape", "shape", "count", "shape"], "multiple_choice_answer": ["star", "star", "circle", "2", "Circle"]}
    )
    answers = {0: "cross", 1: "star", 2: "circle", 3: "3", 4: "circle"}
    assert shape_reads(rows, answers) == {"shape_read/circle": 1.0, "shape_read/star": 0.5}  # counts are not shape reads

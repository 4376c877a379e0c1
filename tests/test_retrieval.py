"""Image-text retrieval: recall@K as LAVIS computes it (hand-worked cases), the head's contrastive loss
and embeddings, training alone and beside other heads, evaluation on Shapes and on COCO / Karpathy
files, and VLModel.embed_images / embed_texts from a saved model."""

import json
from pathlib import Path

import pytest
import torch
import yaml

from tasks.evaluate import main as evaluate_main
from tasks.export_shapes import main as export_main
from tasks.train import main as train_main
from vl.heads import build_head
from vl.modeling import VLModel
from vl.processing import VLProcessor
from vl.tasks.retrieval import recall_at_k

ROOT = Path(__file__).resolve().parents[1]
HEAD = {"type": "retrieval", "dim": 32, "depth": 1, "heads": 2, "max_len": 24, "embed_dim": 16}


def tiny_config(tmp_path: Path, heads: dict) -> str:
    spec = yaml.safe_load((ROOT / "tests" / "tiny_caption.yaml").read_text())
    spec["model"]["heads"] = heads
    path = tmp_path / "retrieval.yaml"
    path.write_text(yaml.safe_dump(spec))
    return str(path)


def test_recall_at_k_by_hand():
    # 3 images, 2 captions each (texts 0,1 -> image 0; 2,3 -> 1; 4,5 -> 2)
    text_image = torch.tensor([0, 0, 1, 1, 2, 2])
    sims = torch.tensor(
        [
            [0.9, 0.1, 0.8, 0.0, 0.0, 0.0],  # image 0: its caption 0 ranks first
            [0.5, 0.4, 0.3, 0.2, 0.0, 0.1],  # image 1: its best own caption (2, 0.3) has 2 above it -> rank 2
            [0.0, 0.0, 0.9, 0.9, 0.1, 0.8],  # image 2: own best 0.8 (text 5) has 2 above it -> rank 2
        ]
    )
    r = recall_at_k(sims, text_image, ranks=(1, 3))
    assert r["i2t_R@1"] == pytest.approx(100 / 3) and r["i2t_R@3"] == pytest.approx(100.0)
    # text -> image ranks: t0 0, t1 1 (image 1 has 0.4 > 0.1), t2 2, t3 1, t4 0, t5 0
    assert r["t2i_R@1"] == pytest.approx(300 / 6) and r["t2i_R@3"] == pytest.approx(100.0)
    assert r["R_mean"] == pytest.approx((100 / 3 + 100 + 50 + 100) / 4)
    # a perfect score on the identity, chance on a random ranking of many images
    assert recall_at_k(torch.eye(4), torch.arange(4))["i2t_R@1"] == 100.0
    noise = recall_at_k(torch.rand(500, 2500, generator=torch.Generator().manual_seed(0)), torch.arange(500).repeat_interleave(5))
    assert noise["t2i_R@10"] == pytest.approx(2.0, abs=1.0) and noise["i2t_R@1"] == pytest.approx(1.0, abs=1.0)


def test_head_embeds_to_unit_vectors_and_treats_same_image_pairs_as_positives():
    torch.manual_seed(0)
    head = build_head("retrieval", {**HEAD, "vocab_size": 40}, memory_dim=32)
    tokens = torch.randn(3, 16, 32)
    ids = torch.randint(3, 40, (3, 6))
    mask = torch.ones(3, 6, dtype=torch.bool)
    out = head(tokens, {"text_ids": ids, "text_mask": mask, "pair_ids": torch.tensor([0, 0, 1])})
    assert out["image_embeds"].norm(dim=-1).allclose(torch.ones(3)) and out["text_embeds"].norm(dim=-1).allclose(torch.ones(3))
    assert out["logits_per_image"].shape == (3, 3) and torch.isfinite(out["loss"])
    # padding does not change a text's embedding
    padded = torch.cat([ids, torch.zeros(3, 4, dtype=torch.long)], 1)
    pad_mask = torch.cat([mask, torch.zeros(3, 4, dtype=torch.bool)], 1)
    torch.testing.assert_close(head.embed_text(padded, pad_mask), head.embed_text(ids, mask))
    # a few steps on three pairs learn to match them
    matched = {"text_ids": ids, "text_mask": mask}
    opt = torch.optim.Adam(head.parameters(), lr=1e-2)
    first = head(tokens, matched)["loss"].item()
    for _ in range(60):
        opt.zero_grad()
        head(tokens, matched)["loss"].backward()
        opt.step()
    assert head(tokens, matched)["loss"].item() < first / 3


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("retrieval")
    out = tmp / "run"
    assert train_main(["--config", tiny_config(tmp, {"retrieval": HEAD}), f"train.output_dir={out}", "train.steps=6"]) == 0
    return out


def test_trains_alone_and_reports_recall_both_ways(trained):
    logs = [json.loads(line) for line in (trained / "logs" / "metrics.jsonl").read_text().splitlines()]
    keys = {k for rec in logs for k in rec}
    assert {"train/loss/retrieval", "val/retrieval/i2t_R@1", "val/retrieval/t2i_R@10", "val/retrieval/R_mean"} <= keys


def test_evaluate_on_shapes_and_on_coco_and_karpathy_files(trained, tmp_path, capsys):
    model = trained / "model"
    assert evaluate_main(["--model", str(model), "--data", "shapes:test"]) == 0
    printed = capsys.readouterr().out
    assert "i2t_R@1" in printed and "t2i_R@10" in printed and "random" in printed
    scores = json.loads((model / "scores_retrieval_shapes_test.json").read_text())
    assert {"i2t_R@1", "i2t_R@5", "i2t_R@10", "t2i_R@1", "t2i_R@5", "t2i_R@10"} <= scores.keys()
    assert scores["random_ranking"]["t2i_R@10"] == pytest.approx(100.0)  # 8 test images: any 10 hold them all
    assert export_main(["--out", str(tmp_path), "--split", "test", "--n", "8", "--format", "coco,karpathy", "image_size=32"]) == 0
    coco = f"coco:{tmp_path / 'annotations' / 'captions_test.json'}:{tmp_path / 'test'}"
    karpathy = f"karpathy:{tmp_path / 'dataset_coco.json'}:{tmp_path}:test"
    for spec in (coco, karpathy):
        assert evaluate_main(["--model", str(model), "--data", spec, "--out", str(tmp_path / "s.json")]) == 0
        # the same 8 images and captions, from files: the same recall
        again = json.loads((tmp_path / "s.json").read_text())
        assert {k: again[k] for k in scores if "R@" in k} == {k: scores[k] for k in scores if "R@" in k}


def test_embed_images_and_texts_from_a_saved_model(trained):
    model = VLModel.from_pretrained(trained / "model").eval()
    processor = VLProcessor.from_pretrained(trained / "model")
    from PIL import Image

    pixels = processor(images=[Image.new("RGB", (32, 32), "red"), Image.new("RGB", (32, 32), "blue")])["pixel_values"]
    text = processor.encode_texts(["a red circle", "two blue squares and a green star"], model.heads["retrieval"].cfg.max_len)
    images, texts = model.embed_images(pixels), model.embed_texts(text["ids"], text["mask"])
    assert images.shape == texts.shape == (2, 16)
    assert torch.allclose(images.norm(dim=-1), torch.ones(2)) and torch.allclose(texts.norm(dim=-1), torch.ones(2))
    with pytest.raises(ValueError, match="empty"):
        processor.encode_texts([""], 24)


def test_trains_beside_other_heads_on_one_encoder(tmp_path):
    heads = {"caption": {"type": "caption", "dim": 32, "depth": 1, "heads": 2, "max_len": 24}, "retrieval": HEAD}
    out = tmp_path / "run"
    assert train_main(["--config", tiny_config(tmp_path, heads), f"train.output_dir={out}", "train.steps=4"]) == 0
    model = VLModel.from_pretrained(out / "model")
    assert set(model.heads) == {"caption", "retrieval"}
    assert evaluate_main(["--model", str(out / "model"), "--task", "retrieval", "--data", "shapes:test"]) == 0

"""Can a VQA head learn where an object is, given tokens that say exactly what covers each cell?

    python bench/vqa_oracle_tokens.py --fusion cross                 # oracle tokens
    python bench/vqa_oracle_tokens.py --fusion film --lr 3e-4
    python bench/vqa_oracle_tokens.py --fusion film --lr 3e-4 --encoder runs/shapes-reasoning/model   # a trained encoder's tokens
    python bench/vqa_oracle_tokens.py --fusion cross --steps 300 --qk-std 0.15          # sharper attention from the start
    python bench/vqa_oracle_tokens.py --fusion cross --steps 300 --coord-products        # tokens also say where each feature is

Oracle tokens: the 8 x 8 grid of a 64-px Shapes scene, each cell [one-hot color of the object covering its
centre (7), one-hot size (2), x and y of the cell in 0..1]. With --encoder, a trained model's (frozen)
encoder tokens of the rendered images instead. A fresh VQA head (vl.heads.vqa, `--fusion`) learns three
question types of the Shapes world on 5,000 training scenes (8 questions per image, 32 images a step):
"is the <color> object on the left or the right", "... at the top or the bottom", "... small or large";
accuracy per type on 200 other scenes every 100 steps. Two controls for the cross-attention head:
`--qk-std` starts its cross-attention queries and keys at another scale (the usual is 0.02: attention
starts uniform), `--coord-products` appends each oracle token's features times its x and y (in -1..1),
so that even uniform attention sums where each color is. Size is a per-token feature of the object's own
cells; position is a feature of every cell: the contrast says whether the head can read *where*.
"""

from __future__ import annotations

import argparse
import random
import time

import torch

from vl.data.shapes.world import ShapesWorld
from vl.heads.vqa import VQAHead

ANSWERS = ["left", "right", "top", "bottom", "small", "large"]
TYPES = ["horizontal", "vertical", "size"]


def oracle_example(world: ShapesWorld, i: int, coord_products: bool = False) -> tuple[torch.Tensor, list[tuple[str, str]]]:
    scene, colors = world.scene("train", i), world.cfg.colors
    tokens = torch.zeros(64, len(colors) + 4)
    for gy in range(8):
        for gx in range(8):
            cell, cx, cy = gy * 8 + gx, gx * 8 + 4, gy * 8 + 4
            tokens[cell, -2:] = torch.tensor([gx / 7, gy / 7])
            for o in scene.objects:
                if (o.x - cx) ** 2 + (o.y - cy) ** 2 <= o.radius**2:
                    tokens[cell, colors.index(o.color)] = 1
                    tokens[cell, len(colors) + (o.size == "large")] = 1
    questions = []
    for o in scene.objects:
        if abs(o.x - 32) > 3:
            questions.append((f"is the {o.color} object on the left or the right", "left" if o.x < 32 else "right"))
        if abs(o.y - 32) > 3:
            questions.append((f"is the {o.color} object at the top or the bottom", "top" if o.y < 32 else "bottom"))
        questions.append((f"is the {o.color} object small or large", o.size))
    if coord_products:
        features, xy = tokens[:, :-2], tokens[:, -2:] * 2 - 1
        tokens = torch.cat([tokens, (features[:, :, None] * xy[:, None, :]).flatten(1)], dim=1)
    return tokens, questions


def encoder_tokens(folder: str, world: ShapesWorld, n: int) -> torch.Tensor:
    from vl.modeling import VLModel
    from vl.processing import VLProcessor

    model, processor = VLModel.from_pretrained(folder).eval(), VLProcessor.from_pretrained(folder)
    out = []
    with torch.no_grad():
        for start in range(0, n, 250):
            images = [world.image(world.scene("train", i)) for i in range(start, min(start + 250, n))]
            out.append(model.encoder(processor.visual_inputs(images)["pixel_values"]))
    return torch.cat(out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--fusion", choices=["cross", "joint", "film"], default="cross")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--encoder", default="", help="a trained model folder: its encoder's tokens instead of the oracle's")
    p.add_argument("--qk-std", type=float, default=0.0, help="start the cross-attention queries and keys at this std (default: the head's 0.02)")
    p.add_argument("--coord-products", action="store_true", help="append each oracle token's features times its x and y")
    args = p.parse_args()
    torch.manual_seed(0)
    random.seed(0)
    world = ShapesWorld()
    data = [oracle_example(world, i, args.coord_products) for i in range(6000)]
    if args.encoder:
        tokens = encoder_tokens(args.encoder, world, len(data))
        data = [(tokens[i], qs) for i, (_, qs) in enumerate(data)]
    words = sorted({w for _, qs in data for q, _ in qs for w in q.split()})
    vocab = {w: i + 2 for i, w in enumerate(words)}  # 0 pad, 1 BOS
    cfg = VQAHead.Config(dim=192, depth=2, heads=4, fusion=args.fusion, answers=ANSWERS, vocab_size=len(vocab) + 2, bos_token_id=1, eos_token_id=1)
    head = VQAHead(cfg, memory_dim=data[0][0].shape[-1])
    if args.qk_std:
        for name, module in head.named_modules():
            if name.endswith(".cross"):
                for linear in (module.q, module.k):
                    torch.nn.init.normal_(linear.weight, std=args.qk_std)
    opt = torch.optim.AdamW(head.parameters(), lr=args.lr)

    def batch(indices) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        tokens, ids, answers, image = [], [], [], []
        for k, i in enumerate(indices):
            t, qs = data[i]
            tokens.append(t)
            for q, a in random.sample(qs, min(8, len(qs))):
                ids.append([1] + [vocab[w] for w in q.split()])
                answers.append(ANSWERS.index(a))
                image.append(k)
        width = max(map(len, ids))
        ids_t = torch.tensor([q + [0] * (width - len(q)) for q in ids])
        target = torch.nn.functional.one_hot(torch.tensor(answers), len(ANSWERS)).float()
        return torch.stack(tokens), {"question_ids": ids_t, "question_mask": ids_t != 0, "question_image": torch.tensor(image), "answer_scores": target}

    start = time.perf_counter()
    tokens_from = "of " + args.encoder if args.encoder else "oracle" + (" + coordinate products" if args.coord_products else "")
    print(f"fusion {args.fusion}, lr {args.lr}, tokens {tokens_from}" + (f", queries/keys std {args.qk_std}" if args.qk_std else ""))
    for step in range(args.steps + 1):
        tokens, b = batch(random.sample(range(5000), 32))
        loss = head(tokens, b)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 100 == 0:
            head.eval()
            with torch.no_grad():
                tokens, b = batch(range(5000, 5200))
                pred, truth = head(tokens, b)["logits"].argmax(-1), b["answer_scores"].argmax(-1)
            head.train()
            acc = {t: (pred[truth // 2 == k] == truth[truth // 2 == k]).float().mean().item() for k, t in enumerate(TYPES)}
            print(f"step {step:4d}  loss {loss.item():.3f}  " + "  ".join(f"{t} {a:.3f}" for t, a in acc.items()) + f"  ({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()

"""Captioner speed: ours against HF VisionEncoderDecoderModel (ViT + GPT-2 with cross-attention), same run.

    python bench/caption_speed.py [--precision fp32|bf16|both] [--threads 2] [--steps 12] [--device cpu|cuda] [--compile-decode] [--batch 32]

Both models at the same size (4 layers x 256 wide each side, 64 px images, patch 8, vocab 1000),
random init, batch 32 (--batch), 24 target tokens, 16 generated tokens (min = max, so both do the same work).
Printed for each: training samples/s (forward + backward + AdamW), greedy and beam-3 captions/s,
peak tensor memory of a training step (torch's MemTracker: parameters, gradients, optimizer
state, activations, temporaries), training GFLOP/s (FlopCounterMode) and its share of this
machine's GEMM peak (a large torch.mm timed in the same run), and our/HF ratios. --compile-decode adds
our decoding with generation compile=true (a torch.compile'd static-cache step; compiled before timing).
The image encoder is timed alone too, and the decoder steps' share (a decode less the encoder) compared.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
import warnings

import torch
from torch.utils.flop_counter import FlopCounterMode

from vl.generation import GenerationConfig
from vl.modeling import VLConfig, VLModel

B, SRC, TGT, GEN, VOCAB, SIZE = 32, 64, 24, 16, 1000, 256
warnings.filterwarnings("ignore")


def ours() -> VLModel:
    enc = {"type": "vit", "image_size": SRC, "patch_size": 8, "dim": SIZE, "depth": 4, "heads": 4}
    head = {"type": "caption", "dim": SIZE, "depth": 4, "heads": 4, "max_len": 32, "vocab_size": VOCAB, "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0}
    return VLModel(VLConfig(encoder=enc, heads={"caption": head}))


def theirs():
    from transformers import GPT2Config, VisionEncoderDecoderConfig, VisionEncoderDecoderModel, ViTConfig

    enc = ViTConfig(hidden_size=SIZE, num_hidden_layers=4, num_attention_heads=4, intermediate_size=4 * SIZE, image_size=SRC, patch_size=8)
    dec = GPT2Config(
        n_embd=SIZE, n_layer=4, n_head=4, vocab_size=VOCAB, n_positions=32, bos_token_id=1, eos_token_id=2, add_cross_attention=True, is_decoder=True
    )
    config = VisionEncoderDecoderConfig.from_encoder_decoder_configs(enc, dec)
    config.decoder_start_token_id, config.pad_token_id, config.eos_token_id = 1, 0, 2
    return VisionEncoderDecoderModel(config=config)


def batch(device: str) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(3, VOCAB, (B, TGT), generator=g)
    return {
        "pixel_values": torch.randn(B, 3, SRC, SRC, generator=g).to(device),
        "labels": labels.to(device),
        "input_ids": torch.cat([torch.ones(B, 1, dtype=torch.long), labels[:, :-1]], 1).to(device),
    }


def is_ours(model) -> bool:
    return isinstance(getattr(model, "_orig_mod", model), VLModel)  # also through torch.compile's wrapper


def loss_fn(model, data):
    if is_ours(model):
        return model(data["pixel_values"], input_ids=data["input_ids"], labels=data["labels"])["loss"]
    return model(pixel_values=data["pixel_values"], labels=data["labels"]).loss


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def interleaved(fns: dict[str, callable], rounds: int, calls: int, device: str) -> dict[str, float]:
    """Median seconds per call of each fn, measured round-robin so drift in machine load hits all alike."""
    for fn in fns.values():
        fn(), fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            sync(device)
            start = time.perf_counter()
            for _ in range(calls):
                fn()
            sync(device)
            times[name].append((time.perf_counter() - start) / calls)
    return {name: statistics.median(t) for name, t in times.items()}


def workloads(model, data, precision: str, device: str) -> dict[str, callable]:
    """Training step, greedy and beam-3 decoding of one model, as closures."""
    autocast = (lambda: torch.autocast(device, dtype=torch.bfloat16)) if precision == "bf16" else contextlib.nullcontext
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=device == "cpu")  # the same optimizer for both

    def train_step():
        model.train()
        with autocast():
            loss = loss_fn(model, data)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    def decode(beams: int, compile: bool = False):
        def run():
            model.eval()
            with torch.no_grad(), autocast():
                if is_ours(model):
                    cfg = GenerationConfig(max_new_tokens=GEN, min_new_tokens=GEN, num_beams=beams, compile=compile)
                    model.generate(data["pixel_values"], generation_config=cfg)
                else:
                    model.generate(pixel_values=data["pixel_values"], max_new_tokens=GEN, min_new_tokens=GEN, num_beams=beams, do_sample=False)

        return run

    def encode():  # the image encoder alone: the same work in both models, and part of every decode above
        model.eval()
        with torch.no_grad(), autocast():
            if is_ours(model):
                model.encoder.forward_features(data["pixel_values"])
            else:
                model.encoder(pixel_values=data["pixel_values"])

    work = {"train": train_step, "greedy": decode(1), "beam3": decode(3), "encode": encode, "opt": opt, "autocast": autocast}
    if is_ours(model):
        work |= {"greedy compiled": decode(1, compile=True), "beam3 compiled": decode(3, compile=True)}
    return work


def train_flops(model, data, autocast) -> int:
    with FlopCounterMode(display=False) as counter:
        with autocast():
            loss = loss_fn(model, data)
        loss.backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops()


def peak_memory(model, opt, train_step) -> int:
    from torch.distributed._tools.mem_tracker import MemTracker

    tracker = MemTracker()
    tracker.track_external(model, opt)
    with tracker:
        train_step()  # the timed steps already created the optimizer state
    return tracker.get_tracker_snapshot("peak")[torch.device("cpu")]["Total"]


def peak_cuda(train_step) -> int:
    torch.cuda.reset_peak_memory_stats()
    train_step()
    return torch.cuda.max_memory_allocated()


def gemm_peak(dtype: torch.dtype, device: str, n: int = 2048) -> float:
    a, b = (torch.randn(n, n, device=device).to(dtype) for _ in range(2))
    seconds = interleaved({"mm": lambda: a @ b}, rounds=5, calls=3, device=device)["mm"]
    return 2 * n**3 / seconds / 1e9


def main() -> None:
    global B
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--precision", choices=["fp32", "bf16", "both"], default="both")
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--rounds", type=int, default=5, help="round-robin rounds; medians are reported")
    p.add_argument("--device", default="cpu")
    p.add_argument("--compile", action="store_true", help="also time our training step under torch.compile")
    p.add_argument("--compile-decode", action="store_true", help="also time our decoding with generation compile=true")
    p.add_argument("--batch", type=int, default=32, help="images per step and per decoding call (1: latency, where per-op overhead rules)")
    args = p.parse_args()
    B = args.batch
    torch.set_num_threads(args.threads)
    device = args.device
    print(
        f"torch {torch.__version__}, device {device}, {args.threads} threads, batch {B}, {TGT} target / {GEN} generated tokens, "
        f"medians of {args.rounds} interleaved rounds"
    )
    for precision in ["fp32", "bf16"] if args.precision == "both" else [args.precision]:
        peak = gemm_peak(torch.float32 if precision == "fp32" else torch.bfloat16, device)
        data = batch(device)
        models = {}
        for name, build in (("ours", ours), ("HF", theirs)):
            torch.manual_seed(0)
            models[name] = build().to(device)
        work = {name: workloads(m, data, precision, device) for name, m in models.items()}
        if args.compile:
            compiled = torch.compile(ours().to(device))
            work["ours+compile"] = workloads(compiled, data, precision, device)
            work["ours+compile"]["train"]()  # compile outside the timed rounds
        if args.compile_decode:
            work["ours, compiled decode"] = {"greedy": work["ours"]["greedy compiled"], "beam3": work["ours"]["beam3 compiled"]}
            work["ours, compiled decode"]["greedy"]()  # compile outside the timed rounds
            work["ours, compiled decode"]["beam3"]()
        rows: dict[str, dict[str, float]] = {name: {} for name in work}
        for kind, calls in (("train", 2), ("greedy", 1), ("beam3", 1), ("encode", 2)):
            fns = {name: w[kind] for name, w in work.items() if kind in w and (kind == "train" or name != "ours+compile")}
            for name, seconds in interleaved(fns, args.rounds, calls, device).items():
                rows[name][kind] = B / seconds
        for name, w in work.items():
            if "train" not in w:  # (decoding only)
                continue
            model = models.get(name) or compiled
            flops = train_flops(model, data, w["autocast"])
            rows[name]["gflops"] = flops * rows[name]["train"] / B / 1e9
            if name in models:
                rows[name]["peak_mb"] = (peak_memory(model, w["opt"], w["train"]) if device == "cpu" else peak_cuda(w["train"])) / 2**20
                rows[name]["params"] = sum(p.numel() for p in model.parameters())
        print(f"\n[{precision}] GEMM peak {peak:.0f} GFLOP/s; params ours {rows['ours']['params'] / 1e6:.2f}M, HF {rows['HF']['params'] / 1e6:.2f}M")
        print(f"{'':13} {'train/s':>8} {'greedy/s':>9} {'beam3/s':>8} {'peak MB':>8} {'GFLOP/s':>8} {'% peak':>7}")
        for name, r in rows.items():
            cell = lambda k, f: f.format(r[k]) if k in r else f"{'-':>{len(f.format(0.0))}}"  # noqa: E731
            print(
                f"{name:13} {cell('train', '{:8.1f}')} {cell('greedy', '{:9.1f}')} {cell('beam3', '{:8.1f}')} "
                f"{cell('peak_mb', '{:8.1f}')} {cell('gflops', '{:8.1f}')} {100 * r.get('gflops', 0) / peak:6.1f}%"
            )
        o, h = rows["ours"], rows["HF"]
        print(
            f"{'ours/HF':13} {o['train'] / h['train']:7.2f}x {o['greedy'] / h['greedy']:8.2f}x "
            f"{o['beam3'] / h['beam3']:7.2f}x {o['peak_mb'] / h['peak_mb']:7.2f}x"
        )
        if "ours+compile" in rows:
            print(f"{'compiled/HF':13} {rows['ours+compile']['train'] / h['train']:7.2f}x")
        if "ours, compiled decode" in rows:
            c = rows["ours, compiled decode"]
            print(f"{'compiled decode/HF':13} {'':>8} {c['greedy'] / h['greedy']:8.2f}x {c['beam3'] / h['beam3']:7.2f}x")
        # Decoding after the encoder: seconds per call less the encoder's (the same ViT work in both models)
        steps = lambda r, kind: 1 / r[kind] - 1 / r["encode"]  # noqa: E731
        print(f"encoder: ours {B / o['encode'] * 1e3:.1f} ms, HF {B / h['encode'] * 1e3:.1f} ms a batch; decoder steps alone, HF/ours:")
        for name in ("ours", "ours, compiled decode"):
            if name in rows:
                r = rows[name] | {"encode": o["encode"]}
                print(f"  {name:22} greedy {steps(h, 'greedy') / steps(r, 'greedy'):5.2f}x  beam3 {steps(h, 'beam3') / steps(r, 'beam3'):5.2f}x")


if __name__ == "__main__":
    main()

import copy

import pytest
import torch
import torch.nn.functional as F
from transformers import GPT2Config, GPT2LMHeadModel

from vl.compress.lowrank import LowRankLinear
from vl.errors import ConfigError
from vl.generation import GenerationConfig, filter_logits, generate
from vl.heads import build_head

BOS, EOS, PAD = 1, 2, 0


@pytest.fixture(scope="module")
def head():
    torch.manual_seed(0)
    spec = {"vocab_size": 40, "dim": 32, "depth": 2, "heads": 4, "max_len": 24, "bos_token_id": BOS, "eos_token_id": EOS, "pad_token_id": PAD}
    h = build_head("caption", spec, memory_dim=48).double().eval()
    with torch.no_grad():  # sharper distributions than the 0.02 init, so EOS and beams matter
        h.embed.weight.mul_(40)
    return h


@pytest.fixture(scope="module")
def memory():
    return torch.randn(5, 10, 48, dtype=torch.float64, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("beams", [1, 3])
@pytest.mark.parametrize("length_penalty", [1.0, 0.0])
def test_kv_cache_gives_exactly_the_tokens_of_full_recompute(head, memory, beams, length_penalty):
    cfg = GenerationConfig(max_new_tokens=15, num_beams=beams, length_penalty=length_penalty)
    cached = generate(head, memory, BOS, EOS, PAD, cfg)
    full = generate(head, memory, BOS, EOS, PAD, GenerationConfig(**{**cfg.__dict__, "use_cache": False}))
    assert torch.equal(cached, full)


@pytest.mark.parametrize("beams", [1, 3])
def test_the_static_cache_step_gives_the_tokens_of_the_dynamic_cache(head, memory, beams, monkeypatch):
    """The static-shape step (what compile=True compiles), run eagerly: the same tokens, greedy and beam."""
    monkeypatch.setattr(torch, "compile", lambda fn, **_: fn)
    cfg = GenerationConfig(max_new_tokens=15, num_beams=beams)
    static = generate(head, memory, BOS, EOS, PAD, GenerationConfig(**{**cfg.__dict__, "compile": True}))
    assert torch.equal(static, generate(head, memory, BOS, EOS, PAD, cfg))
    head._static_step_compiled = None  # (the identity stand-in must not outlive the test)


def test_the_compiled_decode_step_gives_the_same_captions(head, memory):
    """compile=True through torch.compile for real (compiling takes seconds)."""
    cfg = GenerationConfig(max_new_tokens=8)
    compiled = generate(head, memory[:2], BOS, EOS, PAD, GenerationConfig(max_new_tokens=8, compile=True))
    assert torch.equal(compiled, generate(head, memory[:2], BOS, EOS, PAD, cfg))


@torch.inference_mode()
def step_logits(head, memory, mask, compile: bool) -> torch.Tensor:
    """Three decoding steps' logits (3, B, V) through the eager or the compiled step."""
    state = head.start(memory, 4, memory_mask=mask, compile=compile)
    ids = torch.tensor([[BOS], [5]]).expand(memory.size(0) // 2, -1, -1).reshape(-1, 1)
    return torch.stack([head.decode_step(ids + t, state) for t in range(3)])


def test_the_compiled_step_is_not_fooled_by_the_guards_it_skips(head, memory):
    """The compiled step skips some of torch.compile's guards on the head's modules: another head of the
    same shapes, a padding mask, and a layer swapped after the first compile (as lowrank and int8 do) must
    still give the eager step's logits."""
    other = copy.deepcopy(head)
    other._static_step_compiled = None
    with torch.no_grad():
        for p in other.parameters():
            p.mul_(-1.5)
    mask = torch.ones(4, 10, dtype=torch.bool)
    mask[1, 4:] = False
    for h in (head, other, head):
        for m in (None, mask):
            torch.testing.assert_close(step_logits(h, memory[:4], m, compile=True), step_logits(h, memory[:4], m, compile=False))
    before = step_logits(other, memory[:4], None, compile=False)
    other.blocks[0].mlp.fc1 = LowRankLinear.from_linear(other.blocks[0].mlp.fc1, rank=2)
    after = step_logits(other, memory[:4], None, compile=False)
    assert not torch.allclose(before, after, atol=1e-3)
    torch.testing.assert_close(step_logits(other, memory[:4], None, compile=True), after)


def decodes_the_same_three_ways(h, grid: torch.Tensor, cfg: GenerationConfig, monkeypatch) -> torch.Tensor:
    """The tokens of the cached decoding, after checking the full-recompute and the static (compilable) step give them too."""
    cached = generate(h, grid, BOS, EOS, PAD, cfg)
    assert torch.equal(cached, generate(h, grid, BOS, EOS, PAD, GenerationConfig(**{**cfg.__dict__, "use_cache": False})))
    monkeypatch.setattr(torch, "compile", lambda fn, **_: fn)
    assert torch.equal(cached, generate(h, grid, BOS, EOS, PAD, GenerationConfig(**{**cfg.__dict__, "compile": True})))
    return cached


@pytest.mark.parametrize("beams", [1, 3])
def test_a_head_with_grid_reads_decodes_the_same_three_ways(beams, monkeypatch):
    """caption grid_read (FiLM max-pool reads of the image grid around each block): the cached, the
    full-recompute and the static (compilable) step give the same tokens, and the reads change them."""
    torch.manual_seed(0)
    spec = {"vocab_size": 40, "dim": 32, "depth": 2, "heads": 4, "max_len": 24, "bos_token_id": BOS, "eos_token_id": EOS, "pad_token_id": PAD, "grid_read": 8}
    h = build_head("caption", spec, memory_dim=48).double().eval()
    with torch.no_grad():
        h.embed.weight.mul_(40)
        for p in h.reads.parameters():  # the reads start silent (zero output); make them loud so they matter here
            p.normal_(0, 0.5)
    grid = torch.randn(3, 16, 48, dtype=torch.float64, generator=torch.Generator().manual_seed(1))  # a 4 x 4 token grid
    cfg = GenerationConfig(max_new_tokens=12, num_beams=beams)
    cached = decodes_the_same_three_ways(h, grid, cfg, monkeypatch)
    with torch.no_grad():
        for read in h.reads:
            read.out.weight.zero_()
    h._static_step_compiled = None
    assert not torch.equal(cached, generate(h, grid, BOS, EOS, PAD, cfg))


@pytest.mark.parametrize("beams", [1, 3])
def test_a_head_with_a_pointer_decodes_the_same_three_ways(beams, monkeypatch):
    """caption pointer (vl.heads.pointer_read) with its place words: it starts silent (the same logits as without it);
    made loud, the cached, full-recompute and static (compilable) steps give the same tokens, and the pointer changes them."""
    torch.manual_seed(0)
    spec = {"vocab_size": 40, "dim": 32, "depth": 2, "heads": 4, "max_len": 24, "bos_token_id": BOS, "eos_token_id": EOS, "pad_token_id": PAD}
    h = build_head("caption", {**spec, "pointer": True, "pointer_place_words": True}, memory_dim=48).double().eval()
    grid = torch.randn(3, 16, 48, dtype=torch.float64, generator=torch.Generator().manual_seed(1))  # a 4 x 4 token grid
    ids = torch.randint(3, 40, (3, 7))
    plain = build_head("caption", spec, memory_dim=48).double().eval()
    plain.load_state_dict({k: v for k, v in h.state_dict().items() if not k.startswith(("pointer.", "place_words."))})
    with torch.no_grad():
        torch.testing.assert_close(h(grid, {"input_ids": ids})["logits"], plain(grid, {"input_ids": ids})["logits"])
        h.embed.weight.mul_(40)
        for p in [*h.pointer.parameters(), *h.place_words.parameters()]:  # make the read loud so it matters here
            p.normal_(0, 0.5)
    cfg = GenerationConfig(max_new_tokens=12, num_beams=beams)
    cached = decodes_the_same_three_ways(h, grid, cfg, monkeypatch)
    with torch.no_grad():
        h.pointer.out.weight.zero_()
        h.place_words.weight.zero_()
    h._static_step_compiled = None
    assert not torch.equal(cached, generate(h, grid, BOS, EOS, PAD, cfg))
    with pytest.raises(ConfigError, match="pointer_place_words reads the pointer's place: set pointer: true"):
        build_head("caption", {**spec, "pointer_place_words": True}, memory_dim=48)


def test_a_caption_pointer_learns_to_aim_at_the_boxes_it_is_shown():
    """The grounding loss ("loss_ground", from caption_boxes) is part of the loss and teaches the pointer: after
    a few steps on one box per token its aim is on the box's cells."""
    torch.manual_seed(0)
    spec = {"vocab_size": 20, "dim": 32, "depth": 1, "heads": 4, "max_len": 8, "bos_token_id": BOS, "eos_token_id": EOS, "pad_token_id": PAD, "pointer": True}
    h = build_head("caption", spec, memory_dim=16)
    grid = torch.randn(8, 16, 16)
    ids = torch.randint(3, 20, (8, 5))
    boxes = torch.tensor([0.5, 0.0, 0.5, 0.5]).expand(8, 5, 4)  # the top-right quarter: cells 2, 3, 6, 7 of the 4 x 4 grid
    mask = torch.ones(8, 5, dtype=torch.bool)
    mask[:, 0] = False
    batch = {"input_ids": ids, "labels": ids, "caption_boxes": boxes, "caption_box_mask": mask}
    optimizer = torch.optim.Adam(h.parameters(), lr=1e-2)
    for _ in range(60):
        out = h(grid, batch)
        out["loss"].backward()
        optimizer.step()
        optimizer.zero_grad()
    assert torch.allclose(out["loss"], F.cross_entropy(out["logits"].flatten(0, 1), ids.flatten()) + out["loss_ground"])
    with torch.no_grad():
        _, aim, _ = h._hidden(ids, h._state(grid, None), start=0)
    assert aim.softmax(-1)[:, 1:, [2, 3, 6, 7]].sum(-1).min() > 0.9


def test_a_detached_caption_pointer_sends_no_gradient_to_the_encoder():
    """pointer_detached: the pointer and its grounding loss learn in the head only. At initialisation (the pointer's
    read silent) the encoder's tokens then get the gradient they get without a grounding loss, while the pointer's
    keys still learn; attached, the grounding loss reaches the tokens."""
    torch.manual_seed(0)
    spec = {"vocab_size": 20, "dim": 32, "depth": 1, "heads": 4, "max_len": 8, "bos_token_id": BOS, "eos_token_id": EOS, "pad_token_id": PAD, "pointer": True}
    ids = torch.randint(3, 20, (2, 5))
    boxes = torch.tensor([0.5, 0.0, 0.5, 0.5]).expand(2, 5, 4)
    batch = {"input_ids": ids, "labels": ids, "caption_boxes": boxes, "caption_box_mask": torch.ones(2, 5, dtype=torch.bool)}
    reference = build_head("caption", spec, memory_dim=16).double()

    def grads(**options):
        h = build_head("caption", {**spec, **options}, memory_dim=16).double()
        h.load_state_dict(reference.state_dict())
        grid = torch.randn(2, 16, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(1)).requires_grad_()
        h(grid, batch)["loss"].backward()
        return grid.grad, h.pointer.keys.weight.grad

    attached, _ = grads()
    detached, keys = grads(pointer_detached=True)
    ungrounded, _ = grads(grounding_weight=0.0)
    assert not torch.allclose(attached, ungrounded) and keys.abs().sum() > 0
    torch.testing.assert_close(detached, ungrounded)
    with pytest.raises(ConfigError, match="pointer_detached detaches the pointer's input: set pointer: true"):
        build_head("caption", {**spec, "pointer": False, "pointer_detached": True}, memory_dim=16)


def test_sampling_with_and_without_cache_matches_for_the_same_seed(head, memory):
    cfg = GenerationConfig(max_new_tokens=12, do_sample=True, top_k=10, top_p=0.9, temperature=0.8)
    a = generate(head, memory, BOS, EOS, PAD, cfg, torch.Generator().manual_seed(3))
    b = generate(head, memory, BOS, EOS, PAD, GenerationConfig(**{**cfg.__dict__, "use_cache": False}), torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


class HFAdapter:
    """A transformers causal LM behind our decoder protocol (full recompute each step)."""

    def __init__(self, lm):
        self.lm = lm

    def start(self, memory, max_len, use_cache, memory_mask=None, beams=1, compile=False):
        return None

    def decode_step(self, ids, state):
        return self.lm(input_ids=ids).logits[:, -1]

    def reorder(self, state, rows):
        pass


@pytest.fixture(scope="module")
def gpt2():
    torch.manual_seed(0)
    cfg = GPT2Config(n_layer=2, n_embd=32, n_head=4, vocab_size=12, n_positions=32, initializer_range=0.6, bos_token_id=BOS, eos_token_id=EOS)
    return GPT2LMHeadModel(cfg).double().eval()


def ours_and_transformers(gpt2, B: int, T: int, **options) -> tuple[torch.Tensor, torch.Tensor]:
    """The same decoding, by our generate (GPT-2 behind the decoder protocol) and by transformers' own."""
    ours = generate(HFAdapter(gpt2), torch.zeros(B, 1, 1), BOS, EOS, PAD, GenerationConfig(max_new_tokens=T, use_cache=False, **options))
    if options.get("num_beams", 1) == 1:
        options.pop("length_penalty", None)
    fixed = {"do_sample": False, "eos_token_id": EOS, "pad_token_id": PAD, "early_stopping": False, "use_cache": False}
    theirs = gpt2.generate(input_ids=torch.full((B, 1), BOS), max_new_tokens=T, **fixed, **options)
    return ours, theirs[:, 1:]


@pytest.mark.parametrize("beams", [1, 2, 3, 5])
@pytest.mark.parametrize("length_penalty", [1.0, 0.0, 2.0, -0.5])
@pytest.mark.parametrize("min_new", [0, 3])
def test_decoding_matches_transformers_generate(gpt2, beams, length_penalty, min_new):
    ours, theirs = ours_and_transformers(gpt2, 6, 9, min_new_tokens=min_new, num_beams=beams, length_penalty=length_penalty)
    assert torch.equal(ours, theirs), (ours.tolist(), theirs.tolist())


@pytest.mark.parametrize("beams, n", [(3, 3), (5, 2)])
def test_the_best_beams_match_transformers_num_return_sequences(gpt2, beams, n):
    ours, theirs = ours_and_transformers(gpt2, 4, 9, num_beams=beams, num_return_sequences=n)
    assert ours.size(0) == 4 * n and torch.equal(ours, theirs), (ours.tolist(), theirs.tolist())


def test_n_samples_of_each_item_are_consecutive_rows(head, memory):
    cfg = GenerationConfig(max_new_tokens=10, do_sample=True, num_return_sequences=3)
    out = generate(head, memory[:2], BOS, EOS, PAD, cfg, torch.Generator().manual_seed(0))
    assert out.size(0) == 6
    single = GenerationConfig(**{**cfg.__dict__, "num_return_sequences": 1})
    one = generate(head, memory[:2].repeat_interleave(3, 0), BOS, EOS, PAD, single, torch.Generator().manual_seed(0))
    assert torch.equal(out, one)


def test_eos_min_and_max_length(head, memory):
    out = generate(head, memory, BOS, EOS, PAD, GenerationConfig(max_new_tokens=15, min_new_tokens=6))
    assert out.size(1) <= 15
    for row in out.tolist():
        assert EOS not in row[:6]
        if EOS in row:
            after = row[row.index(EOS) + 1 :]
            assert all(t == PAD for t in after)
    assert generate(head, memory, BOS, EOS, PAD, GenerationConfig(max_new_tokens=4)).size(1) <= 4


def test_top_k_one_and_tiny_top_p_are_greedy(head, memory):
    greedy = generate(head, memory, BOS, EOS, PAD, GenerationConfig(max_new_tokens=10))
    for cfg in (GenerationConfig(max_new_tokens=10, do_sample=True, top_k=1), GenerationConfig(max_new_tokens=10, do_sample=True, top_p=1e-6)):
        assert torch.equal(generate(head, memory, BOS, EOS, PAD, cfg, torch.Generator().manual_seed(0)), greedy)


def test_filter_logits_keeps_top_k_and_the_nucleus():
    logits = torch.log(torch.tensor([[0.5, 0.25, 0.15, 0.1]]))
    assert torch.isinf(filter_logits(logits, top_k=2)).tolist() == [[False, False, True, True]]
    assert torch.isinf(filter_logits(logits, top_p=0.7)).tolist() == [[False, False, True, True]]
    assert torch.isinf(filter_logits(logits, top_p=0.8)).tolist() == [[False, False, False, True]]
    draws = torch.multinomial(torch.softmax(filter_logits(logits.expand(2000, 4), top_k=2), -1), 1, generator=torch.Generator().manual_seed(0))
    assert set(draws.flatten().tolist()) == {0, 1}


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_new_tokens": 0},
        {"min_new_tokens": 5, "max_new_tokens": 3},
        {"num_beams": 2, "do_sample": True},
        {"top_p": 0.0},
        {"compile": True, "use_cache": False},
        {"num_return_sequences": 2},
        {"num_return_sequences": 4, "num_beams": 3},
    ],
)
def test_bad_generation_configs(kwargs):
    with pytest.raises(ConfigError):
        GenerationConfig(**kwargs)


def test_decoding_longer_than_the_head_is_a_clear_error(head, memory):
    with pytest.raises(ConfigError, match="cannot decode 30 new tokens: the head has 24 positions"):
        generate(head, memory, BOS, EOS, PAD, GenerationConfig(max_new_tokens=30))

import pytest
import torch
from transformers import (
    CLIPConfig,
    CLIPModel,
    ConvNextConfig,
    ConvNextModel,
    Dinov2Config,
    Dinov2Model,
    GPT2Config,
    GPT2LMHeadModel,
    ViTConfig,
    ViTModel,
)

from vl.encoders import ENCODERS, build_encoder
from vl.errors import ConfigError
from vl.heads import build_head
from vl.modeling import VLConfig, VLModel

PIXELS = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))


def tiny_backbone(kind: str, folder):
    """A tiny random HF vision model saved with save_pretrained; returns (folder, expected tokens, width)."""
    if kind == "vit":
        model = ViTModel(ViTConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64, image_size=32, patch_size=8))
        shape = (17, 32)  # 16 patches + CLS
    elif kind == "clip":
        cfg = CLIPConfig(
            vision_config={"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 64, "image_size": 32, "patch_size": 8},
            text_config={"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 64, "vocab_size": 99},
            projection_dim=16,
        )
        model, shape = CLIPModel(cfg), (17, 32)
    elif kind == "dinov2":
        model = Dinov2Model(Dinov2Config(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, mlp_ratio=2, image_size=32, patch_size=8))
        shape = (17, 32)
    else:
        model = ConvNextModel(ConvNextConfig(hidden_sizes=[8, 16], depths=[1, 1], num_stages=2, image_size=32))
        shape = (4, 16)  # 32 px / 4 (stem) / 2 (stage) = 4x4 -> wait: 2x2 feature map after two downsamplings of 32/4
    model.save_pretrained(folder)
    return folder, shape


@pytest.mark.parametrize("stem", ["patch", "conv"])
@pytest.mark.parametrize("cls_token", [False, True])
def test_vit_encoder_contract(stem, cls_token):
    enc = build_encoder({"type": "vit", "image_size": 32, "patch_size": 8, "dim": 32, "depth": 2, "heads": 2, "stem": stem, "cls_token": cls_token})
    tokens = enc.forward_features(PIXELS)
    assert tokens.shape == (2, 16 + cls_token, 32) and enc.out_dim == 32


@pytest.mark.parametrize("cls_token", [False, True])
def test_vit_coordinates_are_appended_fixed_and_order_the_grid(cls_token):
    from vl.encoders.vit import grid_coordinates

    spec = {"type": "vit", "image_size": 32, "patch_size": 8, "dim": 32, "depth": 1, "heads": 2, "coords": 8, "cls_token": cls_token}
    enc = build_encoder(spec)
    tokens = enc.forward_features(PIXELS)
    assert enc.out_dim == 40 and tokens.shape == (2, 16 + cls_token, 40)
    coords = tokens[0, int(cls_token) :, 32:]
    torch.testing.assert_close(coords, grid_coordinates(4, 8))
    assert not any("coord" in n for n, _ in enc.named_parameters())  # fixed, not learned
    # the lowest frequency's cosine orders the tokens left to right (x) and top to bottom (y)
    grid = grid_coordinates(4, 8).view(4, 4, 8)  # (row, column, features): x sin/cos, then y sin/cos
    cos_x, cos_y = grid[..., 2], grid[..., 6]
    assert torch.all(cos_x[:, 1:] < cos_x[:, :-1]) and torch.all(cos_y[1:] < cos_y[:-1])
    assert torch.all(cos_x[1:] == cos_x[:-1])  # x does not change down a column
    with pytest.raises(ConfigError, match="multiple of 4"):
        build_encoder({**spec, "coords": 6})


def test_vit_layer_scale_starts_blocks_small_and_round_trips(tmp_path):
    spec = {"type": "vit", "image_size": 32, "patch_size": 8, "dim": 32, "depth": 2, "heads": 2, "stem": "conv"}
    enc = build_encoder({**spec, "layer_scale": 0.1})
    gammas = [p for n, p in enc.named_parameters() if n.endswith("gamma")]
    assert len(gammas) == 4 and all(torch.all(g == 0.1) and g.requires_grad for g in gammas)
    assert not any(n.endswith("gamma") for n, _ in build_encoder(spec).named_parameters())
    with torch.no_grad():  # gamma 0 turns every block into the identity: the tokens are the stem's (+ positions)
        for g in gammas:
            g.zero_()
        enc.eval()
        stem = enc.stem(PIXELS).flatten(2).transpose(1, 2) + enc.pos
        assert torch.allclose(enc.forward_features(PIXELS), enc.norm(stem), atol=1e-6)
    head = {"type": "caption", "dim": 16, "depth": 1, "heads": 2, "vocab_size": 30, "max_len": 8}
    model = VLModel(VLConfig(encoder={**spec, "layer_scale": 0.1}, heads={"caption": head})).eval()
    model.save_pretrained(tmp_path / "vl")
    again = VLModel.from_pretrained(tmp_path / "vl").eval()
    assert again.config.encoder["layer_scale"] == 0.1
    ids = torch.randint(3, 30, (2, 5))
    with torch.no_grad():
        assert torch.equal(model(PIXELS, input_ids=ids)["logits"], again(PIXELS, input_ids=ids)["logits"])


@pytest.mark.parametrize("kind", ["vit", "clip", "dinov2", "convnext"])
def test_hf_backbones_follow_the_encoder_contract_and_round_trip(kind, tmp_path):
    folder, _ = tiny_backbone(kind, tmp_path / kind)
    enc = build_encoder({"type": "hf", "path": str(folder)})
    tokens = enc.forward_features(PIXELS)
    assert tokens.dim() == 3 and tokens.shape[0] == 2 and tokens.shape[2] == enc.out_dim
    # a VLModel around it saves and reloads without the backbone folder (its config travels along)
    head = {"type": "caption", "dim": 16, "depth": 1, "heads": 2, "vocab_size": 30, "max_len": 8}
    model = VLModel(VLConfig(encoder={"type": "hf", "path": str(folder)}, heads={"caption": head})).eval()
    model.save_pretrained(tmp_path / "vl")
    for f in folder.iterdir():
        f.unlink()
    again = VLModel.from_pretrained(tmp_path / "vl").eval()
    ids = torch.randint(3, 30, (2, 5))
    with torch.no_grad():
        assert torch.equal(model(PIXELS, input_ids=ids)["logits"], again(PIXELS, input_ids=ids)["logits"])


def test_every_registered_encoder_is_tested():
    assert set(ENCODERS.keys()) == {"vit", "hf", "video_vit"}  # video_vit: tests/test_video_model.py


def test_bad_encoder_configs():
    with pytest.raises(ConfigError, match="unknown config key 'encoder.dpth'; did you mean 'encoder.depth'"):
        build_encoder({"type": "vit", "dpth": 2})
    with pytest.raises(ConfigError, match="not a multiple of patch_size"):
        build_encoder({"type": "vit", "image_size": 30, "patch_size": 8})
    with pytest.raises(ConfigError, match="cannot load a backbone from"):
        build_encoder({"type": "hf", "path": "/nonexistent/backbone"})


def test_caption_head_from_gpt2_reproduces_gpt2(tmp_path):
    torch.manual_seed(0)
    gpt2 = GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=32, n_head=4, vocab_size=50, n_positions=40)).eval()
    gpt2.save_pretrained(tmp_path / "gpt2")
    head = build_head("caption", {"init_from": str(tmp_path / "gpt2"), "max_len": 16}, memory_dim=24).eval()
    assert (head.cfg.dim, head.cfg.depth, head.cfg.heads, head.cfg.vocab_size, head.cfg.act) == (32, 2, 4, 50, "gelu_tanh")
    with torch.no_grad():
        for block in head.blocks:  # silence the (new) cross-attention: what is left is GPT-2
            block.cross.proj.weight.zero_()
            block.cross.proj.bias.zero_()
        ids = torch.randint(0, 50, (3, 12))
        ours = head(torch.randn(3, 5, 24), {"input_ids": ids})["logits"]
        theirs = gpt2(input_ids=ids).logits
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("queries,keys", [(6, 6), (1, 9), (5, 17)])
def test_the_matmul_attention_path_equals_sdpa(queries, keys):
    """vl.layers.attention takes two matmuls and a softmax on CPU in bf16 and for decoding steps: the same
    function as scaled_dot_product_attention, with a key mask and causal alike (gradients included)."""
    from vl.layers import _matmul_attention

    torch.manual_seed(0)
    q = torch.randn(2, 3, queries, 8, requires_grad=True)
    k, v = torch.randn(2, 3, keys, 8), torch.randn(2, 3, keys, 8)
    mask = torch.rand(2, 1, 1, keys) > 0.4
    mask[..., 0] = True  # every query keeps a key
    sdpa = torch.nn.functional.scaled_dot_product_attention
    torch.testing.assert_close(_matmul_attention(q, k, v, False, 0.0, mask), sdpa(q, k, v, attn_mask=mask))
    if queries == keys:
        ours, theirs = _matmul_attention(q, k, v, True, 0.0, None), sdpa(q, k, v, is_causal=True)
        torch.testing.assert_close(ours, theirs)
        grad_ours, grad_theirs = (torch.autograd.grad(y.square().sum(), q)[0] for y in (ours, theirs))
        torch.testing.assert_close(grad_ours, grad_theirs)


def test_caption_loss_ignores_padding():
    head = build_head("caption", {"vocab_size": 20, "dim": 16, "depth": 1, "heads": 2}, memory_dim=8)
    memory, ids = torch.randn(2, 4, 8), torch.randint(3, 20, (2, 6))
    labels = ids.clone()
    padded = labels.clone()
    padded[1, 3:] = -100
    a = head(memory, {"input_ids": ids, "labels": padded})["loss"]
    logits = head(memory, {"input_ids": ids})["logits"]
    keep = padded != -100
    b = torch.nn.functional.cross_entropy(logits[keep], labels[keep])
    torch.testing.assert_close(a, b)


@pytest.mark.parametrize("kind", ["cross", "joint", "film", "pointer"])
def test_text_image_fusion_reads_each_image_once_for_all_its_texts(kind):
    from vl.heads.fusion import build_fusion

    torch.manual_seed(0)
    fusion = build_fusion(kind, 50, 16, 2, 2, 8, 24).eval()  # vocab, dim, depth, heads, max_len, memory_dim
    ids, mask = torch.randint(1, 50, (5, 6)), torch.ones(5, 6, dtype=torch.long)
    mask[1, 4:] = 0
    image, index = torch.randn(2, 9, 24), torch.tensor([0, 1, 1, 0, 1])  # a 3 x 3 grid of image tokens
    torch.testing.assert_close(fusion(ids, mask, image, index), fusion(ids, mask, image[index]))


def test_box_cells_are_the_cells_whose_centre_lies_in_the_box_or_the_one_holding_a_small_box():
    from vl.heads.fusion import box_cells

    cells = box_cells(torch.tensor([[0.1, 0.3, 0.45, 0.2], [0.51, 0.51, 0.02, 0.02]]), 4)  # centres at 1/8, 3/8, 5/8, 7/8
    assert cells[0].view(4, 4).nonzero().tolist() == [[1, 0], [1, 1]]  # y in [0.3, 0.5] holds 3/8: row 1; x in [0.1, 0.55]: 1/8, 3/8
    torch.testing.assert_close(cells[0].sum(), torch.tensor(1.0))
    assert cells[1].view(4, 4).nonzero().tolist() == [[2, 2]]  # no centre inside: the cell holding its centre


def test_pointer_options_on_another_fusion_name_the_fix():
    from vl.heads.vqa import VQAHead

    with pytest.raises(ConfigError, match="grounding_kinds work.*fusion 'pointer' only, not 'film'"):
        VQAHead.Config(fusion="film", grounding_kinds=True)


def test_grounding_loss_with_box_pointers_teaches_a_pointer_the_mixture_of_its_boxes():
    """Boxes assigned to pointers: one box each is the plain loss; a pointer with two boxes is taught their mean, each
    object weighing the same, and reaches its least loss exactly there; boxes masked off or past the pointers count for nothing."""
    from vl.heads.fusion import box_cells, grounding_loss

    torch.manual_seed(0)
    boxes = torch.tensor([[[0.0, 0.0, 0.2, 0.2], [0.6, 0.6, 0.3, 0.3], [0.5, 0.0, 0.4, 0.2]]]).repeat(2, 1, 1)
    mask = torch.tensor([[True, True, True], [True, True, False]])
    logits = torch.randn(2, 2, 16)
    plain = grounding_loss(logits, boxes[:, :2], mask[:, :2])
    torch.testing.assert_close(grounding_loss(logits, boxes[:, :2], mask[:, :2], torch.tensor([[0, 1], [0, 1]])), plain)
    pointer = torch.tensor([[0, 0, 1], [0, 0, 5]])  # question 0: pointer 0 on two objects, pointer 1 on one; question 1: pointer 0 only
    pair, third = box_cells(boxes[0, :2], 4).mean(0), box_cells(boxes[0, 2], 4)

    def ce(target, row):
        return -(target * row.log_softmax(-1)).sum()

    expected = (ce(pair, logits[0, 0]) + ce(third, logits[0, 1]) + ce(pair, logits[1, 0])) / 3
    torch.testing.assert_close(grounding_loss(logits, boxes, mask, pointer), expected)
    best = pair.clamp_min(1e-9).log().expand(1, 1, 16)  # the mixture itself: the least loss, its entropy
    torch.testing.assert_close(grounding_loss(best, boxes[1:], mask[1:], pointer[1:]), ce(pair, best[0, 0]))
    moved = best.clone()
    moved[0, 0, pair.argmax()] -= 1.0
    assert grounding_loss(moved, boxes[1:], mask[1:], pointer[1:]) > grounding_loss(best, boxes[1:], mask[1:], pointer[1:])
    torch.testing.assert_close(grounding_loss(logits, boxes, torch.zeros_like(mask), pointer), torch.tensor(0.0))


@pytest.mark.parametrize("sign, exclude, expected", [(1.0, 0.0, {27}), (1.0, 1.0, {19, 26, 28, 35}), (-1.0, 0.0, {63})])
def test_pointer_relations_steer_pointer_2_to_the_nearest_or_farthest_cell(sign, exclude, expected):
    """With relations, a text weight on -|c - a|^2 alone sends pointer 2 to what pointer 1 found, or with the
    exclusion words on, to the cells next to it (the nearest other than pointer 1's own), or to the cell
    farthest from it."""
    from vl.heads.fusion import WORD_GAIN, PointerFusion

    torch.manual_seed(0)
    fusion = PointerFusion(vocab_size=8, dim=16, depth=1, heads=2, max_len=4, memory_dim=6, relations=True).eval()
    with torch.no_grad():
        for linear in (fusion.keys, fusion.first_query, fusion.second_query, fusion.second_gain):
            linear.weight.zero_()
            linear.bias.zero_()
        fusion.keys.weight[0, 0] = 1.0  # key 0 = feature 0, which only cell 27 (row 3, column 3) has
        fusion.first_query.bias[0] = 100.0 * 16**0.5
        fusion.distance_words.weight.fill_(25.0 * sign / WORD_GAIN)  # two words: 50 nearest (+) or farthest (-)
        fusion.exclude_words.weight.fill_(10.0 * exclude / WORD_GAIN)  # 20 off pointer 1's cell; its neighbours cost 50 / 16
    image = torch.zeros(1, 64, 6)
    image[0, 27, 0] = 1.0
    ids = torch.tensor([[1, 2]])
    pointers = fusion.forward_with_pointers(ids, torch.ones_like(ids), image)[1]
    assert pointers[0, 0].argmax().item() == 27
    assert pointers[0, 1].argmax().item() in expected


def test_pointer_relations_start_at_no_effect():
    """A VQA head's relation gates and its find-to-FiLM term start at zero (after the head's weight init), so
    a fresh head with them answers as the same head without them would."""
    from vl.heads.vqa import VQAHead

    torch.manual_seed(0)
    cfg = VQAHead.Config(
        dim=16, depth=1, heads=2, max_len=6, vocab_size=10, answers=["yes", "no"], fusion="pointer", pointer_relations=True, pointer_film_on_find=True
    )
    head = VQAHead(cfg, memory_dim=8)
    fusion = head.fusion
    assert fusion.find_film.weight.abs().sum() == 0 and fusion.find_film.bias.abs().sum() == 0
    assert fusion.distance_words.weight.abs().sum() == 0 and fusion.exclude_words.weight.abs().sum() == 0
    assert head.relation_words.weight.abs().sum() == 0
    assert head.relation_answer.weight.std() > 0.5  # unit scale, so the words' first steps already move the answer
    ids = torch.tensor([[1, 2, 3]])
    image = torch.randn(1, 16, 8)
    batch = {"question_ids": ids, "question_mask": torch.ones_like(ids)}
    with torch.no_grad():
        on = head(image, batch)["logits"]
        fusion.relations, fusion.find_film = False, None
        off = head(image, batch)["logits"]
    assert torch.allclose(on, off, atol=1e-6)


def test_pointer_relations_learn_a_word_that_flips_the_answer():
    """ "Is A left of B" / "is A right of B": the answer is an XOR of one word and the sign of x1 - x2, which
    the words' weights on the pointers' geometry learn as a linear read (the summary-gated version could
    not: the two questions' summaries came out nearly equal); "is A on the left [of the image]" is the sign of
    x1 alone, where x2 is noise (pointer 2 has no object to find)."""
    from vl.heads.vqa import VQAHead

    torch.manual_seed(0)
    cfg = VQAHead.Config(dim=16, depth=1, heads=2, max_len=6, vocab_size=10, answers=["yes", "no"], fusion="pointer", pointer_relations=True)
    head = VQAHead(cfg, memory_dim=8)
    left, right, side = 3, 4, 7
    words = torch.tensor([left, right, side]).repeat(64)
    ids = torch.stack([torch.full_like(words, 1), torch.full_like(words, 5), words, torch.full_like(words, 6)], 1)  # BOS, A, word, B
    x1, x2 = torch.rand(2, len(words)) * 2 - 1
    dx = x1 - x2
    geometry = torch.stack([dx, torch.zeros_like(dx), dx.abs(), torch.zeros_like(dx), x1, torch.zeros_like(dx)], 1)
    yes = torch.where(words == side, x1 < 0, (words == left) == (dx < 0))
    fused = torch.zeros(len(words), 4, 16)  # the rest of the head says nothing: only the relation read can answer
    optimizer = torch.optim.Adam([head.relation_words.weight, head.relation_answer.weight, head.relation_answer.bias], lr=0.05)
    for _ in range(150):
        logits = head.answer_logits(fused, ids, torch.ones_like(ids), geometry)
        loss = torch.nn.functional.cross_entropy(logits, (~yes).long())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert (logits.argmax(-1) == (~yes).long()).float().mean() > 0.95


def test_pointer_fusion_learns_to_aim_where_the_boxes_say():
    """With the grounding loss alone, pointer 1 learns to find the cell of the colour the text names."""
    from vl.heads.vqa import VQAHead

    torch.manual_seed(0)
    cfg = VQAHead.Config(dim=32, depth=1, heads=2, fusion="pointer", answers=["a", "b"], vocab_size=8, bos_token_id=1, eos_token_id=1)
    head = VQAHead(cfg, memory_dim=6)
    opt = torch.optim.AdamW(head.parameters(), lr=3e-3)

    def batch():
        image = torch.zeros(16, 16, 6)  # 16 images of 4 x 4 cells; colour k (k = 0, 1, 2) on one random cell each
        cells = torch.stack([torch.randperm(16)[:3] for _ in range(16)])
        for i in range(16):
            image[i, cells[i], torch.arange(3)] = 1.0
        colour = torch.randint(0, 3, (16,))
        where = cells[torch.arange(16), colour]
        boxes = torch.stack([(where % 4) / 4 + 0.1, (where // 4) / 4 + 0.1, torch.full((16,), 0.05), torch.full((16,), 0.05)], 1)
        ids = torch.stack([torch.ones(16, dtype=torch.long), colour + 2], 1)  # "BOS <colour>"
        fields = {
            "question_ids": ids,
            "question_mask": torch.ones_like(ids),
            "question_boxes": boxes[:, None],
            "question_box_mask": torch.ones(16, 1, dtype=torch.bool),
        }
        return image, fields, where

    for _ in range(150):
        image, fields, _ = batch()
        loss = head(image, fields)["loss_ground"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    image, fields, where = batch()
    pointers = head.fusion.forward_with_pointers(fields["question_ids"], fields["question_mask"], image)[1]
    assert (pointers[:, 0].argmax(-1) == where).float().mean() > 0.9


def test_joint_fusion_ignores_text_padding_and_reads_image_tokens_as_a_set():
    """Text padding changes nothing; the image tokens carry the encoder's positions, the fusion adds none."""
    from vl.heads.fusion import JointFusion

    torch.manual_seed(0)
    fusion = JointFusion(vocab_size=50, dim=16, depth=2, heads=2, max_len=8, memory_dim=24).eval()
    ids, mask = torch.randint(1, 50, (1, 6)), torch.ones(1, 6, dtype=torch.long)
    image = torch.randn(1, 7, 24)
    short = fusion(ids[:, :4], mask[:, :4], image)
    padded_mask = mask.clone()
    padded_mask[:, 4:] = 0
    torch.testing.assert_close(fusion(ids, padded_mask, image)[:, :4], short)
    assert fusion(ids, mask, image).shape == (1, 6, 16)
    # a permutation of the image tokens is invisible to a set-attending text
    torch.testing.assert_close(fusion(ids, mask, image[:, torch.randperm(7)]), fusion(ids, mask, image), atol=1e-5, rtol=1e-5)

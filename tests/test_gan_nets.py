import pytest
import torch

from gan.diffaugment import diff_augment
from gan.discriminators import DiscriminatorConfig, FaceDiscriminator
from gan.generators import FaceGenerator, GeneratorConfig
from gan.losses import aux_loss, d_hinge, expression_regions, g_hinge, r1_penalty, weighted_l1
from vl.errors import ConfigError

G_CFG = GeneratorConfig(image_size=32, width=8, id_dim=16, noise_dim=4, embed_dim=4, poses=3, expressions=2)
D_CFG = DiscriminatorConfig(image_size=32, width=8, poses=3, expressions=2, identities=5)


def batch(n=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, 32, 32, generator=g) * 2 - 1, torch.tensor([0, 1, 2, 1])[:n], torch.tensor([0, 1, 1, 0])[:n], torch.tensor([0, 4, 2, 3])[:n]


def test_generator_draws_an_identity_at_a_pose_and_expression():
    torch.manual_seed(0)
    gen = FaceGenerator(G_CFG)
    x, pose, expr, _ = batch()
    code = gen.encode(x)
    assert code.shape == (4, 16)
    out = gen.decode(code, pose, expr)
    assert out.shape == (4, 3, 32, 32) and out.min() >= -1 and out.max() <= 1
    gen.eval()
    noise = torch.zeros(4, 4)
    a, b = gen.decode(code, pose, expr, noise), gen.decode(code, (pose + 1) % 3, expr, noise)
    assert not torch.allclose(a, b)  # the pose changes the drawing (conditional norms start at identity, the stem does not)


def test_discriminator_outputs_and_spectral_norm():
    torch.manual_seed(0)
    disc = FaceDiscriminator(D_CFG)
    x, pose, expr, ident = batch()
    out = disc(x, pose, expr)
    assert out["adv"].shape == (4,) and out["pose"].shape == (4, 3) and out["expression"].shape == (4, 2) and out["identity"].shape == (4, 5)
    assert all(hasattr(m, "parametrizations") for m in disc.blocks[0].modules() if isinstance(m, torch.nn.Conv2d))
    # the projection term makes the score depend on the condition
    assert not torch.allclose(out["adv"], disc(x, (pose + 1) % 3, expr)["adv"])
    assert aux_loss(out, pose, expr, ident) > aux_loss(out, pose, expr, None) > 0


def test_hinge_losses_and_r1():
    real, fake = torch.tensor([2.0, 0.5]), torch.tensor([-2.0, 0.0])
    assert d_hinge(real, fake) == pytest.approx((0 + 0.5) / 2 + (0 + 1) / 2)
    assert g_hinge(fake) == pytest.approx(1.0)
    x = torch.randn(3, 2, requires_grad=True)
    assert r1_penalty((x * torch.tensor([3.0, 4.0])).sum(1), x) == pytest.approx(25.0)


def test_expression_regions_are_where_a_persons_faces_change_with_their_expression():
    images = torch.randn(6, 3, 6, 6)  # six different people ...
    pose, identity = torch.tensor([0, 0, 0, 1, 1, 0]), torch.tensor([0, 0, 0, 1, 2, 3])
    images[[1, 2]] = images[0].clone()  # ... but faces 0, 1, 2 are one person at one pose, with three expressions:
    images[1, :, 4:, 2:4] += 1.0  # the mouth opens in one
    images[2, :, 4:, 2:4] -= 1.0  # and turns down in another
    regions = expression_regions(images, pose, identity, poses=2)
    assert regions.shape == (2, 6, 6) and regions[0, 4:, 2:4].eq(1).all()
    assert regions[0].sum() == 4  # nothing where people differ from each other
    assert regions[1].eq(0).all()  # pose 1: no person has two faces
    x, y = torch.zeros(2, 3, 6, 6), torch.ones(2, 3, 6, 6)
    assert weighted_l1(x, y) == 1 and weighted_l1(x, y, 1 + 4 * regions[[0, 0]]) == 1 + 4 * 4 / 36


def test_one_adversarial_step_trains_both_players():
    torch.manual_seed(0)
    gen, disc = FaceGenerator(G_CFG), FaceDiscriminator(D_CFG)
    opt_g = torch.optim.Adam(gen.parameters(), 2e-4, betas=(0.0, 0.99))
    opt_d = torch.optim.Adam(disc.parameters(), 2e-4, betas=(0.0, 0.99))
    x, pose, expr, ident = batch()
    d_before = [p.detach().clone() for p in disc.parameters()]
    fake = gen(x, pose, expr)
    d_loss = d_hinge(disc(diff_augment(x), pose, expr)["adv"], disc(diff_augment(fake.detach()), pose, expr)["adv"])
    opt_d.zero_grad()
    d_loss.backward()
    opt_d.step()
    g_loss = g_hinge(disc(diff_augment(gen(x, pose, expr)), pose, expr)["adv"])
    opt_g.zero_grad()
    g_loss.backward()
    assert all(p.grad is not None for p in gen.encoder.parameters())  # the identity encoder learns through D
    opt_g.step()
    assert any(not torch.equal(a, b) for a, b in zip(d_before, disc.parameters()))


@pytest.mark.parametrize("policy", ["color", "translation", "cutout", "color,translation,cutout"])
def test_diff_augment_is_differentiable_and_keeps_shape(policy):
    torch.manual_seed(0)
    x = torch.rand(5, 3, 16, 16, requires_grad=True)
    y = diff_augment(x, policy)
    assert y.shape == x.shape
    y.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_translation_shifts_pixels_and_cutout_zeroes_a_square():
    torch.manual_seed(1)
    x = torch.arange(64.0).view(1, 1, 8, 8).repeat(8, 1, 1, 1)
    shifted = diff_augment(x, "translation")
    for row in shifted:  # every output is the input moved by whole pixels, zero-padded
        found = [(dy, dx) for dy in range(-1, 2) for dx in range(-1, 2) if torch.equal(row[0, 1:-1, 1:-1], torch.roll(x[0, 0], (-dy, -dx), (0, 1))[1:-1, 1:-1])]
        assert found
    cut = diff_augment(torch.ones(8, 1, 8, 8), "cutout")
    assert ((cut == 0).flatten(1).sum(1) > 0).all() and ((cut == 0).flatten(1).sum(1) <= 16).all()


def test_bad_configs():
    with pytest.raises(ConfigError, match="power of two"):
        GeneratorConfig(image_size=48)
    with pytest.raises(ValueError, match="unknown DiffAugment policy 'flip'"):
        diff_augment(torch.zeros(1, 3, 8, 8), "flip")

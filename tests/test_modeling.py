import math

import pytest
import torch
import torch.nn.functional as F

from macrl_hf import MacrlForPreTraining
from macrl_hf.modeling_macrl import cosine_momentum, info_nce, patchify, random_masking, unpatchify


def test_output_fields_and_shapes(tiny_config, images):
    config = tiny_config()
    model = MacrlForPreTraining(config)
    out = model(pixel_values=images, momentum_pixel_values=images.flip(-1))
    n = config.num_patches
    assert out.logits.shape == (8, n, config.patch_size**2 * 3)
    assert out.mask.shape == out.ids_restore.shape == (8, n)
    assert out.mask.sum(1).eq(int(n * config.mask_ratio)).all()
    assert out.query_embeds.shape == out.key_embeds.shape == (8, config.projection_dim)
    assert torch.allclose(out.query_embeds.norm(dim=1), torch.ones(8), atol=1e-5)
    expected = config.reconstruction_weight * out.reconstruction_loss + config.contrastive_weight * out.contrastive_loss
    assert torch.allclose(out.loss.detach(), expected)
    assert not out.key_embeds.requires_grad


def test_mae_variant_equals_transformers_vitmae(tiny_config, images):
    # With the contrastive branch off, MACRL is MAE: its weights load strictly into ViTMAEForPreTraining, and with
    # MSE on normalised pixels and the same noise both give the same logits, mask and loss.
    from transformers import ViTMAEForPreTraining

    from macrl_hf.export import vitmae_config_from_macrl

    config = tiny_config(contrastive_weight=0.0, reconstruction_loss="mse", norm_pix_loss=True)
    model = MacrlForPreTraining(config).eval()
    mae = ViTMAEForPreTraining(vitmae_config_from_macrl(config)).eval()
    mae.load_state_dict(model.state_dict(), strict=True)
    noise = torch.rand(8, config.num_patches)
    with torch.no_grad():
        ours, theirs = model(images, noise=noise), mae(images, noise=noise)
    assert torch.equal(ours.mask, theirs.mask)
    assert torch.allclose(ours.logits, theirs.logits, atol=1e-5)
    assert torch.allclose(ours.loss, theirs.loss, atol=1e-6)
    assert torch.equal(patchify(images, 4), mae.patchify(images))
    assert torch.equal(unpatchify(patchify(images, 4), 4, 3, 16, 16), images)


def test_noise_makes_masking_deterministic(tiny_config, images):
    model = MacrlForPreTraining(tiny_config()).eval()
    noise = torch.rand(8, 16)
    a, b = model(images, noise=noise), model(images, noise=noise)
    assert torch.equal(a.mask, b.mask) and torch.allclose(a.logits, b.logits)
    assert torch.allclose(a.loss, b.loss)
    c = model(images, noise=torch.rand(8, 16))
    assert not torch.equal(a.mask, c.mask)


def test_random_masking_layout():
    seq = torch.arange(2 * 8, dtype=torch.float).reshape(2, 8, 1)
    noise = torch.tensor([[0.9, 0.1, 0.8, 0.2, 0.7, 0.3, 0.6, 0.4]] * 2)
    kept, mask, ids_restore = random_masking(seq, 0.5, noise)
    assert kept[0, :, 0].tolist() == [1.0, 3.0, 5.0, 7.0]
    assert mask[0].tolist() == [1, 0, 1, 0, 1, 0, 1, 0]
    same, none_masked, identity = random_masking(seq, 0.0)
    assert same is seq and none_masked.sum() == 0 and identity[0].tolist() == list(range(8))


def test_without_momentum_view_main_view_serves_both(tiny_config, images):
    model = MacrlForPreTraining(tiny_config()).eval()
    noise = torch.rand(8, 16)
    assert torch.allclose(model(images, noise=noise).loss, model(images, images, noise=noise).loss)


def test_output_attentions_and_hidden_states(tiny_config, images):
    # transformers' standard output capture: the online encoder's hidden states with any attention kernel, its
    # attention weights with "eager" only (sdpa computes none; transformers warns).
    visible = 1 + 4  # CLS + 25% of 16 patches
    for impl in ("sdpa", "eager"):
        model = MacrlForPreTraining(tiny_config())
        model.set_attn_implementation(impl)
        out = model(images, output_attentions=True, output_hidden_states=True)
        assert len(out.hidden_states) == 3 and out.hidden_states[-1].shape == (8, visible, 32)
        if impl == "eager":
            assert len(out.attentions) == 2 and out.attentions[0].shape == (8, 2, visible, visible)
            assert torch.allclose(out.attentions[0].sum(-1), torch.ones(8, 2, visible), atol=1e-5)
        else:
            assert out.attentions == ()
        assert model.config._attn_implementation == impl
    plain = model(images)
    assert plain.hidden_states is None and plain.attentions is None
    as_tuple = model(images, return_dict=False)
    assert isinstance(as_tuple, tuple) and torch.equal(as_tuple[0], as_tuple[0])


def test_sdpa_and_eager_agree(tiny_config, images):
    model = MacrlForPreTraining(tiny_config()).eval()
    noise = torch.rand(8, 16)
    sdpa = model(images, noise=noise).loss
    model.set_attn_implementation("eager")
    assert torch.allclose(sdpa, model(images, noise=noise).loss, atol=1e-5)


def test_online_branch_gets_gradients_momentum_branch_none(tiny_config, images):
    model = MacrlForPreTraining(tiny_config())
    model(images, images.flip(-1)).loss.backward()
    for name, param in model.named_parameters():
        if name.startswith(("momentum_",)) or "position_embeddings" in name or "decoder_pos_embed" in name:
            assert not param.requires_grad and param.grad is None, name
        else:
            assert param.grad is not None and param.grad.abs().sum() > 0, name


def test_gradient_checkpointing_gives_same_gradients(tiny_config, images):
    torch.manual_seed(0)
    model = MacrlForPreTraining(tiny_config())
    noise = torch.rand(8, 16)
    model(images, noise=noise).loss.backward()
    plain = [p.grad.clone() for p in model.parameters() if p.requires_grad]
    model.zero_grad()
    model.activation_checkpointing_enable()
    assert model.vit.layers[0].gradient_checkpointing
    model(images, noise=noise).loss.backward()
    for a, p in zip(plain, [p for p in model.parameters() if p.requires_grad]):
        assert torch.allclose(a, p.grad, atol=1e-6)


def test_info_nce_matches_hand_computation():
    q = F.normalize(torch.tensor([[1.0, 0.0], [0.0, 1.0]]), dim=1)
    k = F.normalize(torch.tensor([[1.0, 1.0], [0.0, 1.0]]), dim=1)
    queue = F.normalize(torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, -1.0]]), dim=1)
    t = 0.5
    expected = 0.0
    for i in range(2):
        pos = float(q[i] @ k[i]) / t
        negs = [float(q[i] @ n) / t for n in queue]
        expected += -pos + math.log(math.exp(pos) + sum(math.exp(x) for x in negs))
    assert info_nce(q, k, queue, t).item() == pytest.approx(expected / 2, rel=1e-6)


def test_momentum_update_is_ema(tiny_config, images):
    model = MacrlForPreTraining(tiny_config())
    with torch.no_grad():
        for p in model.vit.parameters():
            p.add_(torch.randn_like(p))
    old = [p.clone() for p in model.momentum_encoder.parameters()]
    model.momentum_update(0.9)
    for o, online, new in zip(old, model.vit.parameters(), model.momentum_encoder.parameters()):
        assert torch.allclose(new, 0.9 * o + 0.1 * online, atol=1e-6)
    assert not any(p.requires_grad for p in model.momentum_projector.parameters())


def test_momentum_starts_as_copy_and_follows_schedule(tiny_config):
    model = MacrlForPreTraining(tiny_config(momentum=0.99))
    for a, b in zip(model.vit.parameters(), model.momentum_encoder.parameters()):
        assert torch.equal(a, b)
    assert model.momentum_at(0, 100) == pytest.approx(0.99)
    assert model.momentum_at(50, 100) == pytest.approx(0.995)
    assert model.momentum_at(100, 100) == pytest.approx(1.0)
    assert cosine_momentum(0.9, 25, 100) == pytest.approx(1 - 0.1 * (math.cos(math.pi / 4) + 1) / 2)
    constant = MacrlForPreTraining(tiny_config(momentum=0.99, momentum_schedule="constant"))
    assert constant.momentum_at(50, 100) == 0.99


def test_enqueue_wraps_around(tiny_config):
    model = MacrlForPreTraining(tiny_config(queue_size=10, projection_dim=2))
    first = torch.arange(16, dtype=torch.float).reshape(8, 2)
    model.dequeue_and_enqueue(first)
    assert int(model.queue_ptr) == 8 and torch.equal(model.queue[:8], first)
    second = -torch.arange(1, 9, dtype=torch.float).reshape(4, 2)
    model.dequeue_and_enqueue(second)
    assert int(model.queue_ptr) == 2
    assert torch.equal(model.queue[8:], second[:2]) and torch.equal(model.queue[:2], second[2:])
    assert torch.equal(model.queue[2:8], first[2:])
    many = torch.arange(48, dtype=torch.float).reshape(24, 2)  # more keys than slots: the newest 10 survive
    model.dequeue_and_enqueue(many)
    assert int(model.queue_ptr) == (2 + 24) % 10
    # the newest 10 keys (rows 14..23) end in the slots they would have taken one by one: key i in slot (2 + i) % 10
    for i in range(14, 24):
        assert torch.equal(model.queue[(2 + i) % 10], many[i]), i


def test_mae_and_moco_variants_drop_unused_parts(tiny_config, images):
    mae = MacrlForPreTraining(tiny_config(contrastive_weight=0.0))
    assert mae.momentum_encoder is None and mae.projector is None and "queue" not in mae.state_dict()
    out = mae(images)
    assert out.contrastive_loss == 0 and out.key_embeds is None and out.loss > 0
    moco = MacrlForPreTraining(tiny_config(mask_ratio=0.0, reconstruction_weight=0.0))
    assert moco.decoder is None
    out = moco(images)
    assert out.reconstruction_loss == 0 and out.logits is None and out.mask.sum() == 0 and out.loss > 0


@pytest.mark.parametrize(
    "overrides",
    [
        dict(reconstruction_loss="mse", pooling="mean", norm_pix_loss=False),
        dict(decode_momentum_branch=True, momentum_mask_ratio=0.5),
        dict(predictor_hidden_size=24),
    ],
)
def test_variants_run_and_backprop(tiny_config, images, overrides):
    model = MacrlForPreTraining(tiny_config(**overrides))
    out = model(images, images.flip(-1))
    out.loss.backward()
    assert torch.isfinite(out.loss) and model.vit.embeddings.cls_token.grad is not None


def test_total_loss_falls_over_training(tiny_config):
    # 32 fixed smooth images in 4 batches; the queue holds exactly the previous batch, so its keys are true negatives.
    torch.manual_seed(0)
    data = F.interpolate(torch.randn(32, 3, 4, 4), size=16, mode="bilinear").reshape(4, 8, 3, 16, 16)
    model = MacrlForPreTraining(tiny_config(queue_size=8, momentum=0.9, mask_ratio=0.5))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    losses = []
    for step in range(40):
        images = data[step % 4]
        out = model(images, images)
        optimizer.zero_grad()
        out.loss.backward()
        optimizer.step()
        model.momentum_update(0.9)
        model.dequeue_and_enqueue(out.key_embeds)
        losses.append((out.loss.item(), out.reconstruction_loss.item(), out.contrastive_loss.item()))
    # From step 1 on, the queue holds real keys (at step 0 it is still empty: zero rows are no real negatives).
    first, last = torch.tensor(losses[1:9]).mean(0), torch.tensor(losses[-4:]).mean(0)
    assert last[0] < 0.85 * first[0], losses
    assert last[1] < first[1] and last[2] < first[2], (first, last)


def test_the_predictor_maps_the_online_projection_and_has_no_momentum_copy(tiny_config, images, tmp_path):
    from macrl_hf import MacrlModel

    model = MacrlForPreTraining(tiny_config(predictor_hidden_size=24)).train()
    assert [type(o).__name__ for o, _ in model.momentum_pairs()] == ["MacrlModel", "MacrlProjector"]
    out = model(images, images.flip(-1))
    out.loss.backward()
    assert model.predictor.dense.weight.grad.abs().sum() > 0
    with torch.no_grad():
        projection = model.projector(model.vit(images, noise=None).pooler_output)
    assert projection.shape == out.query_embeds.shape
    model.save_pretrained(tmp_path)
    _, info = MacrlModel.from_pretrained(tmp_path, output_loading_info=True)
    assert not info["unexpected_keys"] and not info["missing_keys"]  # the predictor is pretraining-only


def test_contrastive_warmup_ramps_the_contrastive_weight(tiny_config, images):
    model = MacrlForPreTraining(tiny_config(contrastive_warmup=0.1)).eval()
    assert [model.contrastive_scale_at(s, 100) for s in (0, 5, 10, 50)] == [0.0, 0.5, 1.0, 1.0]
    assert MacrlForPreTraining(tiny_config()).contrastive_scale_at(5, 100) is None
    noise = torch.rand(8, 16)
    off = model(images, noise=noise, contrastive_scale=torch.tensor(0.0))
    half = model(images, noise=noise, contrastive_scale=torch.tensor(0.5))
    assert torch.allclose(off.loss, off.reconstruction_loss)
    assert torch.allclose(half.loss, half.reconstruction_loss + 0.5 * half.contrastive_loss)


def test_unmasked_query_comes_from_the_whole_view_and_reconstruction_is_unchanged(tiny_config, images):
    torch.manual_seed(0)
    masked = MacrlForPreTraining(tiny_config()).eval()
    unmasked = MacrlForPreTraining(tiny_config(unmasked_query=True)).eval()
    unmasked.load_state_dict(masked.state_dict())
    noise = torch.rand(8, 16)
    a, b = masked(images, images.flip(-1), noise=noise), unmasked(images, images.flip(-1), noise=noise)
    with torch.no_grad():
        whole = F.normalize(unmasked.projector(unmasked.vit(images).pooler_output), dim=1)
        visible = F.normalize(masked.projector(masked.vit(images, mask_ratio=0.75, noise=noise).pooler_output), dim=1)
    assert torch.allclose(b.query_embeds, whole, atol=1e-6) and torch.allclose(a.query_embeds, visible, atol=1e-6)
    assert not torch.allclose(a.query_embeds, b.query_embeds, atol=1e-3)
    assert torch.equal(a.logits, b.logits) and torch.equal(a.mask, b.mask)  # the masked pass still reconstructs
    assert torch.equal(a.key_embeds, b.key_embeds)
    unmasked.train()(images, images.flip(-1)).loss.backward()
    assert unmasked.vit.embeddings.cls_token.grad.abs().sum() > 0
    # MoCo has no masked pass: the switch changes nothing there.
    moco = dict(mask_ratio=0.0, reconstruction_weight=0.0)
    torch.manual_seed(1)
    plain = MacrlForPreTraining(tiny_config(**moco)).eval()
    switched = MacrlForPreTraining(tiny_config(**moco, unmasked_query=True)).eval()
    switched.load_state_dict(plain.state_dict())
    assert torch.equal(plain(images).loss, switched(images).loss)

"""Networks and their loss terms."""
from __future__ import annotations

import torch

from scdeal.model.networks import Decoder, Encoder, autoencoder_loss, cluster_loss, encoder_on_genes, mmd


def test_mmd_separates_shifted_embeddings_at_any_scale():
    gen = torch.Generator().manual_seed(0)
    for scale in (0.01, 1.0, 1000.0):
        a = torch.randn(200, 16, generator=gen) * scale
        same = torch.randn(200, 16, generator=gen) * scale
        shifted = torch.randn(200, 16, generator=gen) * scale + 1.0 * scale
        assert mmd(a, shifted) > 5 * mmd(a, same)
        assert mmd(a, shifted) > 0.05  # a fixed huge bandwidth would give ≈ 0 here


def test_cluster_loss_carries_gradient_into_the_encoder():
    enc = Encoder(30, (16,), 4, dropout=0.0, variational=False)
    x = torch.randn(64, 30)
    clusters = torch.arange(64) % 4
    loss = cluster_loss(enc(x), clusters)
    loss.backward()
    grads = [p.grad for p in enc.parameters()]
    assert all(g is not None for g in grads)
    assert sum(float(g.abs().sum()) for g in grads) > 0


def test_cluster_loss_is_low_for_compact_clusters_and_scale_free():
    centres = torch.tensor([[0.0, 0.0], [10.0, 10.0]])
    clusters = torch.arange(100) % 2
    tight = centres[clusters] + 0.01 * torch.randn(100, 2)
    mixed = torch.randn(100, 2) * 5
    assert cluster_loss(tight, clusters) < 0.01 < cluster_loss(mixed, clusters)
    assert torch.isclose(cluster_loss(tight * 100, clusters), cluster_loss(tight, clusters), rtol=1e-3)


def test_denoising_autoencoder_reconstructs_the_clean_input():
    torch.manual_seed(0)
    enc, dec = Encoder(20, (8,), 4, dropout=0.0, variational=False), Decoder(20, (8,), 4, dropout=0.0)
    x = torch.randn(32, 20)
    before = x.clone()
    autoencoder_loss(enc, dec, x, kind="dae", noise=0.5, kl_weight=1e-3)
    assert torch.equal(x, before)  # input never corrupted in place


def test_vae_loss_has_kl_term():
    enc, dec = Encoder(20, (8,), 4, dropout=0.0, variational=True), Decoder(20, (8,), 4, dropout=0.0)
    terms = autoencoder_loss(enc, dec, torch.randn(16, 20), kind="vae", noise=0.0, kl_weight=1e-3)
    assert set(terms) == {"recon", "kl"}


def test_encoder_on_genes_reads_the_selected_columns():
    enc = Encoder(10, (6,), 3, dropout=0.0, variational=False).eval()
    idx = torch.tensor([1, 4, 7])
    sub = encoder_on_genes(enc, idx).eval()
    x = torch.zeros(5, 10)
    x[:, idx] = torch.randn(5, 3)
    torch.testing.assert_close(sub(x[:, idx]), enc(x))

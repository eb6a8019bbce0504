"""The SRML loss: its maths, its segments, its edge cases and its self-adjusted α."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from funreason.chat import PROMPT, RESULT, THINK
from funreason.train.srml import SRMLLoss

B, T, H, V = 3, 24, 8, 40


def batch(seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    hidden = torch.randn(B, T, H, generator=g, dtype=dtype).requires_grad_()
    weight = torch.randn(V, H, generator=g, dtype=dtype).requires_grad_()
    ids = torch.randint(0, V, (B, T), generator=g)
    seg = torch.full((B, T), PROMPT)
    seg[:, 6:18] = THINK
    seg[:, 18:22] = RESULT
    mask = torch.ones(B, T, dtype=torch.long)
    mask[2, 20:] = 0  # padding inside the result of the last row
    return hidden, weight, ids, seg, mask


def reference(hidden, weight, ids, seg, mask, alpha, sft=False):
    """The definition, written out: per-segment token means of the shifted NLL."""
    nll = F.cross_entropy((hidden @ weight.T)[:, :-1].reshape(-1, V), ids[:, 1:].reshape(-1), reduction="none").view(B, T - 1)
    s, m = seg[:, 1:], mask[:, 1:].bool()
    think, result = nll[(s == THINK) & m], nll[(s == RESULT) & m]
    if sft:
        return torch.cat([think, result]).mean()
    return alpha * think.mean() + (1 - alpha) * result.mean()


@pytest.mark.parametrize("mode, alpha", [("fixed", 0.2), ("fixed", 0.8), ("sft", 0.5)])
def test_loss_and_gradients_match_the_definition(mode, alpha):
    hidden, weight, ids, seg, mask = batch()
    out = SRMLLoss(mode, alpha=alpha, chunk_size=5)(hidden, weight, ids, seg, mask)
    ref = reference(hidden, weight, ids, seg, mask, alpha, sft=mode == "sft")
    got = torch.autograd.grad(out.loss, [hidden, weight])
    want = torch.autograd.grad(ref, [hidden, weight])
    assert out.loss.item() == pytest.approx(ref.item(), rel=1e-6)
    for g, w in zip(got, want):
        assert torch.allclose(g, w, rtol=1e-5, atol=1e-7)
    assert (out.n_think, out.n_result) == (36, 10)  # row 3 loses two result targets to padding


def test_logits_path_equals_chunked_path():
    hidden, weight, ids, seg, mask = batch(1)
    loss = SRMLLoss("fixed", alpha=0.3)
    a = loss(hidden, weight, ids, seg, mask)
    b = loss.forward_logits(hidden @ weight.T, ids, seg, mask)
    assert a.loss.item() == pytest.approx(b.loss.item(), rel=1e-6)
    assert a.think_loss.item() == pytest.approx(b.think_loss.item(), rel=1e-6)


def test_prompt_and_padding_carry_no_loss():
    hidden, weight, ids, seg, mask = batch(2)
    loss = SRMLLoss("fixed", alpha=0.5)
    base = loss(hidden, weight, ids, seg, mask).loss
    ids2 = ids.clone()
    ids2[:, 1:6] = (ids2[:, 1:6] + 1) % V  # prompt targets (positions 0..4 predict 1..5)
    ids2[2, 20:] = (ids2[2, 20:] + 1) % V  # padded targets
    assert loss(hidden, weight, ids2, seg, mask).loss.item() == pytest.approx(base.item())
    (grad_h,) = torch.autograd.grad(base, [hidden])
    assert grad_h[:, :5].abs().max() == 0 and grad_h[:, 22:].abs().max() == 0


def test_one_segment_missing_uses_what_exists_and_nothing_is_nan():
    hidden, weight, ids, seg, mask = batch(3)
    loss = SRMLLoss("fixed", alpha=0.9)
    only_result = torch.where(seg == THINK, torch.full_like(seg, PROMPT), seg)
    out = loss(hidden, weight, ids, only_result, mask)
    assert out.loss.item() == pytest.approx(out.result_loss.item(), rel=1e-6) and out.think_loss.item() == 0
    only_think = torch.where(seg == RESULT, torch.full_like(seg, PROMPT), seg)
    out = loss(hidden, weight, ids, only_think, mask)
    assert out.loss.item() == pytest.approx(out.think_loss.item(), rel=1e-6)
    nothing = torch.full_like(seg, PROMPT)
    for impl in (lambda s: loss(hidden, weight, ids, s, mask), lambda s: loss.forward_logits(hidden @ weight.T, ids, s, mask)):
        out = impl(nothing)
        grads = torch.autograd.grad(out.loss, [hidden, weight], allow_unused=True)
        assert out.loss.item() == 0 and not math.isnan(out.loss.item())
        assert all(g is None or (torch.isfinite(g).all() and g.abs().max() == 0) for g in grads)


def test_self_adjusted_alpha_moves_toward_inverse_loss_balance_and_stays_inside():
    loss = SRMLLoss("self", alpha=0.5, momentum=0.5)
    loss.train()
    think, result = torch.tensor(3.0), torch.tensor(1.0)
    loss.update_alpha(think, result)
    assert float(loss.alpha) == pytest.approx(0.5 * 0.5 + 0.5 * 0.25)
    for _ in range(200):  # result loss vanishing: α is clipped, never 0
        loss.update_alpha(torch.tensor(5.0), torch.tensor(1e-9))
    assert float(loss.alpha) == pytest.approx(0.05)
    for _ in range(200):
        loss.update_alpha(torch.tensor(1e-9), torch.tensor(5.0))
    assert float(loss.alpha) == pytest.approx(0.95)


def test_self_alpha_updates_only_in_training_and_reports_the_alpha_it_used():
    hidden, weight, ids, seg, mask = batch(4)
    loss = SRMLLoss("self", alpha=0.5)
    loss.eval()
    loss(hidden, weight, ids, seg, mask)
    assert float(loss.alpha) == 0.5
    loss.train()
    out = loss(hidden, weight, ids, seg, mask)
    assert out.alpha == 0.5 and float(loss.alpha) != 0.5
    expected = 0.9 * 0.5 + 0.1 * (out.result_loss / (out.think_loss + out.result_loss)).item()
    assert float(loss.alpha) == pytest.approx(expected, rel=1e-5)


def test_frozen_head_gets_no_gradient_and_bf16_stays_finite():
    hidden, weight, ids, seg, mask = batch(5, dtype=torch.float32)
    weight = weight.detach().to(torch.bfloat16)
    hidden = hidden.detach().to(torch.bfloat16).requires_grad_()
    out = SRMLLoss("fixed")(hidden, weight, ids, seg, mask)
    out.loss.backward()
    assert torch.isfinite(out.loss) and torch.isfinite(hidden.grad.float()).all() and hidden.grad.dtype == torch.bfloat16


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="mode"):
        SRMLLoss("adaptive")
    with pytest.raises(ValueError, match="alpha"):
        SRMLLoss("fixed", alpha=1.5)

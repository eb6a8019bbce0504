"""The Self-Refinement Multiscale Loss (SRML) of FunReason, as a drop-in `nn.Module`.

    L = α · L_think + (1 − α) · L_result

`L_think` is the mean token NLL over the think segment of the batch and `L_result` the mean over
the result segment: each is normalised at its own scale, so the ~30-token function call is not
drowned by ~350 tokens of reasoning (plain SFT puts ~92% of its signal on the reasoning).
Prompt tokens and padding carry no loss. Segment labels come from `funreason.chat`.

Modes
- `sft`: plain token-mean cross-entropy over all answer tokens (think + result): the baseline.
- `fixed`: α given.
- `self`: α adjusts itself every step to the inverse-loss balance
  α* = L_result / (L_think + L_result), i.e. weights ∝ 1/L of each segment, so both terms
  contribute equally to the loss. α follows α* through an exponential moving average (momentum
  0.9) and is clipped to [0.05, 0.95]. Why this rule: a bare learnable α under gradient descent
  collapses (∂L/∂α = L_think − L_result drives it to whichever segment has the lower loss, to 0 or
  1); a rule computed from detached losses has no such gradient, stays inside (0, 1) while both
  segments have loss, and keeps weighting the call as its loss falls, which is when exact-match
  errors in the call decide accuracy. Under DDP α* is averaged over ranks so all ranks agree.

Memory: `forward(hidden, weight, ...)` takes the last hidden states and the output head and
computes the vocabulary projection and cross-entropy in chunks of rows, only for answer tokens.
The gradients of the head and of the hidden states are accumulated chunk by chunk during the
forward pass (the loss weights are known then), so the full `[tokens, vocab]` fp32 logits never
exist and nothing is recomputed; `backward` only scales the stored gradients. Only the total loss
is differentiable; `L_think` / `L_result` come back detached, for logging.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from funreason.chat import PROMPT, RESULT, THINK

MODES = ("sft", "fixed", "self")


@dataclass
class SRMLOutput:
    loss: torch.Tensor  # scalar, differentiable
    think_loss: torch.Tensor  # scalar, detached (0 when the batch has no think tokens)
    result_loss: torch.Tensor  # scalar, detached
    alpha: float  # the α this step's loss used
    n_think: int
    n_result: int


class SRMLLoss(nn.Module):
    """SRML over a batch.

    Args:
        mode: `sft`, `fixed` or `self` (see the module docstring).
        alpha: α for `fixed`, the starting α for `self`.
        chunk_size: rows of the vocabulary projection computed at once.
        momentum, alpha_min, alpha_max: the `self` rule's smoothing and bounds.
    """

    def __init__(
        self,
        mode: str = "fixed",
        alpha: float = 0.5,
        chunk_size: int = 1024,
        momentum: float = 0.9,
        alpha_min: float = 0.05,
        alpha_max: float = 0.95,
    ):
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], not {alpha}")
        self.mode = mode
        self.chunk_size = chunk_size
        self.momentum = momentum
        self.alpha_min, self.alpha_max = alpha_min, alpha_max
        self.register_buffer("alpha", torch.tensor(float(alpha), dtype=torch.float64), persistent=True)

    def forward(
        self,
        hidden: torch.Tensor,
        weight: torch.Tensor,
        input_ids: torch.Tensor,
        segments: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        bias: torch.Tensor | None = None,
    ) -> SRMLOutput:
        """hidden: [B, T, H] last hidden states (after the final norm); weight: [V, H] output
        head; input_ids, segments, attention_mask: [B, T]. Position t predicts token t+1."""
        h, targets, seg = _answer_positions(hidden, input_ids, segments, attention_mask)
        token_w, alpha, n_think, n_result = self._token_weights(seg)
        loss, nll = _ChunkedLinearNLL.apply(h, weight, bias, targets, token_w, self.chunk_size)
        return self._finish(loss, nll, seg, alpha, n_think, n_result)

    def forward_logits(
        self,
        logits: torch.Tensor,
        input_ids: torch.Tensor,
        segments: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
    ) -> SRMLOutput:
        """The same loss from full logits [B, T, V] (for trainers that already have them, and
        for sharded heads under FSDP / ZeRO-3)."""
        lg, targets, seg = _answer_positions(logits, input_ids, segments, attention_mask)
        token_w, alpha, n_think, n_result = self._token_weights(seg)
        nll = F.cross_entropy(lg.float(), targets, reduction="none")
        loss = (nll * token_w).sum() + lg.sum() * 0.0  # keeps the graph when there are no tokens
        return self._finish(loss, nll.detach(), seg, alpha, n_think, n_result)

    def _token_weights(self, seg: torch.Tensor) -> tuple[torch.Tensor, float, int, int]:
        """dL/dnll for every answer token, from the segment counts and α."""
        is_think, is_result = seg == THINK, seg == RESULT
        n_think, n_result = int(is_think.sum()), int(is_result.sum())
        w = torch.zeros(seg.shape, dtype=torch.float32, device=seg.device)
        if self.mode == "sft":
            n = n_think + n_result
            if n:
                w.fill_(1.0 / n)
            return w, float("nan"), n_think, n_result
        alpha = float(self.alpha)
        # a batch without one segment uses what exists, at full weight
        a_think = alpha if n_result else 1.0
        a_result = (1.0 - alpha) if n_think else 1.0
        if n_think:
            w[is_think] = a_think / n_think
        if n_result:
            w[is_result] = a_result / n_result
        return w, alpha, n_think, n_result

    def _finish(self, loss, nll, seg, alpha, n_think, n_result) -> SRMLOutput:
        zero = torch.zeros((), device=nll.device)
        think = nll[seg == THINK].mean() if n_think else zero
        result = nll[seg == RESULT].mean() if n_result else zero
        if self.mode == "self" and self.training and n_think and n_result:
            self.update_alpha(think, result)
        return SRMLOutput(loss, think.detach(), result.detach(), alpha, n_think, n_result)

    @torch.no_grad()
    def update_alpha(self, think: torch.Tensor, result: torch.Tensor) -> None:
        """One step of the self-adjusted α: toward result / (think + result), the share that makes
        the two weighted losses equal, with momentum, averaged over ranks, kept inside [min, max]."""
        target = (result / (think + result).clamp_min(1e-12)).double()
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            target = target.to(self.alpha.device if self.alpha.device.type != "cpu" else target.device)
            torch.distributed.all_reduce(target)
            target /= torch.distributed.get_world_size()
        new = self.momentum * self.alpha + (1 - self.momentum) * target.to(self.alpha.device)
        self.alpha.copy_(new.clamp(self.alpha_min, self.alpha_max))


def _answer_positions(x, input_ids, segments, attention_mask):
    """Shift by one and keep the positions whose *target* token is think or result."""
    x = x[:, :-1]
    targets = input_ids[:, 1:]
    seg = segments[:, 1:]
    keep = seg != PROMPT
    if attention_mask is not None:
        keep = keep & attention_mask[:, 1:].bool()
    return x[keep], targets[keep], seg[keep]


class _ChunkedLinearNLL(torch.autograd.Function):
    """Σ_i w_i · NLL_i of `h @ weight.T (+ bias)` without materialising all logits.

    Shapes: h [N, H], weight [V, H], bias [V] or None, targets [N], w [N] → (loss [], nll [N])."""

    @staticmethod
    def forward(ctx, h, weight, bias, targets, w, chunk_size):
        n = h.shape[0]
        need_h, need_w = h.requires_grad, weight.requires_grad
        need_b = bias is not None and bias.requires_grad
        grad_h = torch.zeros_like(h) if need_h else None
        grad_w = torch.zeros(weight.shape, dtype=torch.float32, device=weight.device) if need_w else None
        grad_b = torch.zeros(bias.shape, dtype=torch.float32, device=bias.device) if need_b else None
        nll = torch.empty(n, dtype=torch.float32, device=h.device)
        loss = torch.zeros((), dtype=torch.float32, device=h.device)
        for start in range(0, n, chunk_size):
            hc = h[start : start + chunk_size]
            tc = targets[start : start + chunk_size]
            wc = w[start : start + chunk_size]
            logits = (hc @ weight.T).float()
            if bias is not None:
                logits += bias.float()
            lse = torch.logsumexp(logits, dim=-1)
            rows = torch.arange(hc.shape[0], device=h.device)
            nll_c = lse - logits[rows, tc]
            nll[start : start + chunk_size] = nll_c
            loss += (nll_c * wc).sum()
            if need_h or need_w or need_b:
                # d(w·nll)/dlogits = w · (softmax − onehot), computed in place over the chunk
                logits.sub_(lse[:, None]).exp_()
                logits[rows, tc] -= 1.0
                logits.mul_(wc[:, None])
                if need_h:
                    grad_h[start : start + chunk_size] = (logits.to(weight.dtype) @ weight).to(h.dtype)
                if need_w:
                    grad_w.addmm_(logits.T, hc.float())
                if need_b:
                    grad_b += logits.sum(0)
            del logits
        ctx.save_for_backward(*(t if t is not None else torch.empty(0) for t in (grad_h, grad_w, grad_b)))
        ctx.has = (need_h, need_w, need_b)
        ctx.dtypes = (weight.dtype, None if bias is None else bias.dtype)
        ctx.mark_non_differentiable(nll)
        return loss, nll

    @staticmethod
    def backward(ctx, grad_loss, _grad_nll):
        grad_h, grad_w, grad_b = ctx.saved_tensors
        need_h, need_w, need_b = ctx.has
        w_dtype, b_dtype = ctx.dtypes
        return (
            grad_h * grad_loss.to(grad_h.dtype) if need_h else None,
            (grad_w * grad_loss).to(w_dtype) if need_w else None,
            (grad_b * grad_loss).to(b_dtype) if need_b else None,
            None,
            None,
            None,
        )

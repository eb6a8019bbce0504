"""Rows joining and leaving a running batch's KV cache between decode steps (`llm.local`).

Invariant: every row of a batch's cache ends at the same column (the latest decode step). A row
with fewer tokens than the widest is padded on the left with zeros, its attention mask is 0 over
them and its positions count only its own tokens, so padding changes nothing a row attends to.
Joining two batches pads the narrower one on the left to the other's width; dropping rows can leave
leading columns that no row attends to, and `trim` cuts them, so a batch is never wider than its
widest live row.

Only caches whose layers are all plain growing ones (`DynamicLayer`: keys and values of shape
[rows, heads, tokens, head dim]) can be padded this way; `joinable` says whether a cache is one.
A sliding-window or recurrent layer keeps state that left padding would shift, so such a model's
engine lets new requests in only when its batch is empty.
"""

from __future__ import annotations

from typing import Any

import torch


def joinable(cache: Any) -> bool:
    """Whether rows can be padded and joined in `cache`: every layer a filled `DynamicLayer`."""
    from transformers.cache_utils import DynamicLayer

    layers = getattr(cache, "layers", None)
    return bool(layers) and all(type(layer) is DynamicLayer and layer.is_initialized for layer in layers)


def join(cache: Any, mask: torch.Tensor, other: Any, other_mask: torch.Tensor) -> tuple[Any, torch.Tensor]:
    """`cache` with the rows of `other` after its own, both padded on the left to the wider of the
    two, and the attention mask to match (0 over the padding). `cache` is changed in place and
    returned; both must be `joinable`, of the same model."""
    if len(cache.layers) != len(other.layers):
        raise ValueError(f"caches of {len(cache.layers)} and {len(other.layers)} layers cannot be joined")
    width = max(mask.shape[1], other_mask.shape[1])
    for mine, theirs in zip(cache.layers, other.layers):
        mine.keys = torch.cat([_pad_tokens(mine.keys, width), _pad_tokens(theirs.keys, width)], dim=0)
        mine.values = torch.cat([_pad_tokens(mine.values, width), _pad_tokens(theirs.values, width)], dim=0)
    mask = torch.cat([_pad_mask(mask, width), _pad_mask(other_mask, width)], dim=0)
    return cache, mask


def trim(cache: Any, mask: torch.Tensor) -> tuple[Any, torch.Tensor]:
    """`cache` and `mask` without the leading columns that no row attends to (left by rows that
    left); `cache` is changed in place. Returned unchanged when there are none."""
    attended = mask.any(dim=0)
    lead = int(attended.int().argmax()) if bool(attended.any()) else 0
    if lead == 0:
        return cache, mask
    for layer in cache.layers:
        layer.keys = layer.keys[:, :, lead:, :]
        layer.values = layer.values[:, :, lead:, :]
    return cache, mask[:, lead:]


def _pad_tokens(states: torch.Tensor, width: int) -> torch.Tensor:
    """Keys or values ([rows, heads, tokens, dim]) padded with zeros on the left to `width` tokens."""
    short = width - states.shape[2]
    return torch.nn.functional.pad(states, (0, 0, short, 0)) if short else states


def _pad_mask(mask: torch.Tensor, width: int) -> torch.Tensor:
    short = width - mask.shape[1]
    return torch.nn.functional.pad(mask, (short, 0)) if short else mask

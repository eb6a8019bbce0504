"""Models: real pretrained models fetched offline (`get`), model soups (`average`), model references (`ref`).

`average` needs the optional extra `funreason[soup]` (mergekit); it is imported from
`funreason.models.average` by the one verb that uses it.
"""

from funreason.models.get import MODELS, ModelGetError, cache_dir, get_model
from funreason.models.ref import check_model_ref

__all__ = ["MODELS", "ModelGetError", "cache_dir", "check_model_ref", "get_model"]

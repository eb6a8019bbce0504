"""Typed errors. Each carries where the offending input came from, so a message can name it."""

from __future__ import annotations


class FunReasonError(Exception):
    """Base class of every error FunReason raises on purpose."""


class ParseError(FunReasonError, ValueError):
    """Text that should hold function calls does not. `text` is a short excerpt of the input."""

    def __init__(self, reason: str, text: str | None = None):
        self.reason = reason
        self.text = None if text is None else _excerpt(text)
        super().__init__(reason if self.text is None else f"{reason}: {self.text}")


class SchemaError(FunReasonError, ValueError):
    """A data row that does not fit the record. `where` names the file and line (or row id)."""

    def __init__(self, reason: str, where: str | None = None):
        self.reason = reason
        self.where = where
        super().__init__(f"{where}: {reason}" if where else reason)

    def at(self, where: str) -> "SchemaError":
        """The same error, located (keeps an inner location if it already has one)."""
        return self if self.where else SchemaError(self.reason, where)


class TemplateError(FunReasonError, ValueError):
    """A chat template FunReason cannot render a training row with: it does not render an assistant
    turn's content, so where a turn ends cannot be found."""


class BackendError(FunReasonError, RuntimeError):
    """A generation backend failed after its retries."""


def _excerpt(text: str, limit: int = 80) -> str:
    text = text if len(text) <= limit else text[: limit - 3] + "..."
    return repr(text)

"""FunReason: teach language models to call functions accurately while they reason.

Implements "FunReason: Enhancing Large Language Models' Function Calling via Self-Refinement
Multiscale Loss and Automated Data Refinement" (arXiv 2505.20192).
"""

from funreason.errors import BackendError, FunReasonError, ParseError, SchemaError
from funreason.schema import Call, Example, Message, Tool

__version__ = "0.1.0"

__all__ = [
    "BackendError",
    "Call",
    "Example",
    "FunReasonError",
    "Message",
    "ParseError",
    "SchemaError",
    "Tool",
    "__version__",
]

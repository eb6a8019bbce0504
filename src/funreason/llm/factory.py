"""One place that opens a model for generation, whatever stands behind it.

Invariant: every caller (FCDR's teacher, the self-refinement judges, the demo's teacher, `eval
bfcl`, `eval humaneval`, `eval heldout`) gets its backend from `open_chat`, `open_blocking_chat`
or `open_engine` and uses it inside a `with`, which closes it on every exit path: an endpoint's
connection pool, a local model's decode thread, an in-process vLLM engine. (Self-refinement's
rollout engines, launched per model, are `llm.launch.ModelEngines`'.)
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from funreason.config import cli
from funreason.llm import ChatBackend, Engine

if TYPE_CHECKING:
    from funreason.llm.http import BlockingHTTP


@dataclass
class BackendConfig:
    """Where a model is: OpenAI-compatible `endpoints` serving `served_model` (with `api_key`), or
    a `local` model run in-process by `engine` (transformers, or vllm on a GPU)."""

    endpoints: list[str] = field(default_factory=list, metadata=cli("OpenAI-compatible endpoint (repeat to balance over several).", "--endpoint"))
    served_model: str | None = field(default=None, metadata=cli("Model name the endpoint serves."))
    api_key: str | None = field(default=None, metadata=cli("API key of the endpoint(s)."))
    local: str | None = field(default=None, metadata=cli("A local model (directory or hub id) instead of an endpoint."))
    engine: str = field(default="transformers", metadata=cli("For a local model: transformers, or vllm (GPU, `pip install vllm`)."))
    concurrency: int = 64  # requests in flight (endpoints); prompts decoded together (local)
    timeout: float = field(default=300.0, metadata=cli("Per-request timeout in seconds."))
    retries: int = field(default=6, metadata=cli("Retries of a failed request (backoff 0.5 s doubling, at most 30 s)."))
    chat_template: str | None = None  # a Jinja file in place of the local model's own

    def validate(self, what: str = "model", flags: tuple[str, str, str] = ("--endpoint", "--served-model", "--model")) -> "BackendConfig":
        """One sentence naming the options (`flags`: endpoint, served name, local path) when the
        settings cannot describe one backend."""
        endpoint, served, local = flags
        if bool(self.endpoints) == bool(self.local):
            raise ValueError(f"give the {what} either as {endpoint} URL (with {served} NAME) or as {local} PATH")
        if self.endpoints and not self.served_model:
            raise ValueError(f"{endpoint} needs {served} (the model name the server serves)")
        if self.engine not in ("transformers", "vllm"):
            raise ValueError(f"the {what}'s engine is transformers or vllm, not {self.engine!r}")
        # a setting only the other kind of backend reads is refused here, not dropped without a word
        if self.endpoints and self.engine != "transformers":
            raise ValueError(f"the engine ({self.engine}) runs a local {what} ({local} PATH); an endpoint's server has its own")
        if self.local and self.served_model:
            raise ValueError(f"{served} names the model an endpoint serves; a local {what} ({local} PATH) takes none")
        if self.chat_template and not Path(self.chat_template).is_file():
            raise ValueError(f"the {what}'s chat template {self.chat_template}: no such file")
        if self.chat_template and (self.endpoints or self.engine != "transformers"):
            raise ValueError(f"a chat template is used by a local {what} run with transformers ({local} PATH); "
                             "an endpoint's server, or vLLM, applies its own")
        if self.concurrency < 1 or self.timeout <= 0 or self.retries < 0:
            raise ValueError(f"the {what}'s concurrency must be 1 or more, its timeout above 0 and its retries 0 or more")
        return self

    @property
    def name(self) -> str:
        """What the run records as the model: the served name (an endpoint may move) or the path."""
        return (self.served_model if self.endpoints else self.local) or ""


@contextlib.asynccontextmanager
async def open_chat(cfg: BackendConfig) -> AsyncIterator[ChatBackend]:
    """`async with open_chat(cfg) as llm: gen = await llm.chat(messages, params)`."""
    backend: ChatBackend
    if cfg.endpoints:
        from funreason.llm.http import HTTPBackend

        backend = await HTTPBackend(cfg.endpoints, cfg.served_model or "", api_key=cfg.api_key, concurrency=cfg.concurrency,
                                    timeout=cfg.timeout, max_retries=cfg.retries).__aenter__()
    elif cfg.engine == "vllm":
        from funreason.llm.vllm import VLLMChat

        backend = VLLMChat(str(cfg.local))
    else:
        from funreason.llm.local import LocalChat, LocalEngine

        backend = LocalChat(LocalEngine.from_pretrained(str(cfg.local), max_batch=cfg.concurrency, chat_template=cfg.chat_template))
    try:
        yield backend
    finally:
        await backend.aclose()


@contextlib.contextmanager
def open_blocking_chat(cfg: BackendConfig) -> Iterator[BlockingHTTP]:
    """`with open_blocking_chat(cfg) as http: http.chat_future(messages, params)`: an endpoint for
    synchronous callers, with one event loop and one connection pool for the whole run."""
    from funreason.llm.http import BlockingHTTP

    if not cfg.endpoints:
        raise ValueError("open_blocking_chat opens an endpoint; a local model is opened by open_engine")
    with BlockingHTTP(cfg.endpoints, cfg.served_model or "", api_key=cfg.api_key, concurrency=cfg.concurrency,
                      timeout=cfg.timeout, max_retries=cfg.retries) as http:
        yield http


@contextlib.contextmanager
def open_engine(cfg: BackendConfig) -> Iterator[Engine]:
    """`with open_engine(cfg) as engine: engine.submit(prompt, params)`: a local model, its prompts
    rendered by the caller with its own tokenizer (`engine.tokenizer`)."""
    from funreason.llm.local import LocalEngine

    if cfg.endpoints:
        raise ValueError("open_engine runs a local model; an endpoint is opened by open_chat or open_blocking_chat")
    engine = LocalEngine.from_pretrained(str(cfg.local), max_batch=cfg.concurrency, chat_template=cfg.chat_template)
    try:
        yield engine
    finally:
        engine.close()


@dataclass
class ModelChoice:
    """The model an evaluation scores: a local `model`, or an `endpoint` serving `served_model`
    (with `api_key`). Evaluation configs take these fields from here."""

    model: str | None = field(default=None, metadata=cli("Local model (directory or hub id)."))
    endpoint: str | None = field(default=None, metadata=cli("OpenAI-compatible endpoint (instead of --model)."))
    served_model: str | None = field(default=None, metadata=cli("Model name the endpoint serves."))
    api_key: str | None = field(default=None, metadata=cli("API key of the endpoint.", envvar="FUNREASON_API_KEY"))

    def backend(self, concurrency: int, chat_template: str | None = None) -> BackendConfig:
        """`concurrency`: requests in flight on the endpoint, or prompts decoded together locally."""
        return BackendConfig(endpoints=[self.endpoint] if self.endpoint else [], served_model=self.served_model, api_key=self.api_key,
                             local=self.model, concurrency=concurrency, timeout=120.0, chat_template=chat_template)

    def identity(self) -> dict[str, Any]:
        """What a run folder records as its model (`runinfo.claim`): the checkpoint's identity, or
        the served name and the endpoint."""
        from funreason.runinfo import model_identity

        return model_identity(self.model) if self.model else {"model": self.served_model, "endpoint": self.endpoint}

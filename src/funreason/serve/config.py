"""The settings of `funreason serve`, importable without the web stack (the command line builds
them before anything heavy loads): `ServerConfig` is the verb's, `ServeConfig` the app's.

Invariant: `ServerConfig.validate()` refuses every value it can check without loading the model
(a port out of range, a missing template file, a mistyped model path) with one sentence.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from funreason.config import cli


@dataclass
class ServeConfig:
    model_name: str
    api_key: str | None = None
    max_tokens_cap: int = 4096
    default_max_tokens: int = 1024
    max_body_bytes: int = 4 << 20
    max_prompt_tokens: int | None = None  # None: the model's context window less the answer's max_tokens
    context_window: int | None = None  # set from the model's config by create_app when None
    longest_token: int | None = None  # characters of the vocabulary's longest token; set by create_app when None
    stall_s: float = 120.0  # /health reports 503 when the engine has had work but no decode step for this long
    body_timeout_s: float = 30.0  # a request body not received within this is refused (408): slow clients hold nothing
    guided: bool = False  # requests with tools decoded under their call grammar (`funreason.llm.guided`)
    stream_send_timeout_s: float = 15.0  # a stream whose next event cannot be sent for this long (its client stopped reading) is cancelled


@dataclass
class ServerConfig:
    """`funreason serve`'s settings (command-line options and `--config FILE.yaml` keys)."""

    model: str = field(default="", metadata=cli("Model directory or hub id (e.g. a `funreason train` OUT/final).", required=True))
    host: str = field(default="127.0.0.1", metadata=cli("Address to bind; 127.0.0.1 keeps it local."))
    port: int = field(default=8000, metadata=cli("Port to listen on."))
    api_key: str | None = field(default=None, metadata=cli("Require 'Authorization: Bearer KEY' on every route but /health.",
                                                           envvar="FUNREASON_API_KEY"))
    max_batch: int = field(default=16, metadata=cli("Most requests decoded together."))
    served_model_name: str | None = field(default=None, metadata=cli("Model name clients send (default: --model)."))
    max_tokens_cap: int = field(default=4096, metadata=cli("Largest max_tokens a request may ask for."))
    max_body_mb: float = field(default=4.0, metadata=cli("Largest request body."))
    max_prompt_tokens: int | None = field(default=None, metadata=cli("Longest prompt in tokens (default: the model's window less max_tokens)."))
    chat_template: str | None = field(default=None, metadata=cli("A Jinja chat template file used in place of the model's own."))
    guided: bool = field(default=False, metadata=cli("Schema-guided decoding for requests with tools: a call list the model starts keeps to the "
                                                     "tools' names, parameters and types (with tool_choice required or named, the answer is a call)."))
    shutdown_grace_s: float = 5.0  # after Ctrl-C, requests in flight get this long to finish

    @property
    def local(self) -> bool:
        return self.host in ("127.0.0.1", "localhost", "::1")

    def validate(self) -> "ServerConfig":
        if not self.model:
            raise ValueError("--model is required")
        if not 0 < self.port < 65536 or self.max_batch < 1 or self.max_tokens_cap < 1 or not self.max_body_mb > 0:
            raise ValueError("--port must lie in 1..65535, --max-batch and --max-tokens-cap must be 1 or more, --max-body-mb above 0")
        if self.max_prompt_tokens is not None and self.max_prompt_tokens < 1:  # else every request would get a 400
            raise ValueError(f"--max-prompt-tokens must be 1 or more, not {self.max_prompt_tokens}")
        from funreason.models.ref import check_model_ref

        check_model_ref(self.model)
        if self.chat_template and not Path(self.chat_template).is_file():
            raise ValueError(f"--chat-template {self.chat_template}: no such file")
        return self

    def app_config(self) -> ServeConfig:
        return ServeConfig(self.served_model_name or self.model, self.api_key, self.max_tokens_cap, min(1024, self.max_tokens_cap),
                           int(self.max_body_mb * (1 << 20)), self.max_prompt_tokens, guided=self.guided)

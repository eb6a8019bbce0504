"""Serving: the OpenAI-compatible server (`app`), its settings (`config`), the vLLM parser plugins (`vllm_parsers`).

Import from the submodules: `funreason.serve.config` stays light (the CLI reads it for every
command), `funreason.serve.app` brings FastAPI and the engines.
"""

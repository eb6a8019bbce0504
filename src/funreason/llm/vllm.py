"""vLLM's offline engine behind the chat protocol (optional: `pip install vllm`, needs a GPU).

Requests from the event loop are gathered by a worker thread and handed to `LLM.chat` together,
so vLLM's own continuous batching sees many conversations at once.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from concurrent.futures import Future
from typing import Any

from funreason.errors import BackendError
from funreason.llm import Generation, SamplingParams, next_batch


class VLLMChat:
    def __init__(self, model: str, *, max_batch: int = 256, **engine_args: Any):
        try:
            from vllm import LLM
        except ImportError as e:
            raise BackendError("the vLLM backend needs `pip install vllm` on a machine with a GPU") from e
        self.llm = LLM(model=model, **engine_args)
        self.max_batch = max_batch
        self._queue: queue.Queue = queue.Queue()
        self._worker = threading.Thread(target=self._run, daemon=True, name="funreason-vllm")
        self._worker.start()

    async def chat(self, messages: list[dict[str, Any]], params: SamplingParams, tools: list[dict] | None = None) -> Generation:
        if tools:
            raise ValueError("the in-process vLLM backend takes no tools; put them in the prompt")
        if params.grammar is not None or params.beams > 1:  # not passed on, so refused rather than ignored
            raise ValueError("guided decoding and beam search run on the local transformers engine, not in-process vLLM")
        fut: Future = Future()
        self._queue.put((messages, params, fut))
        return await asyncio.wrap_future(fut)

    def close(self) -> None:
        self._queue.put(None)
        self._worker.join(timeout=30)

    async def aclose(self) -> None:
        self.close()

    def _run(self) -> None:
        from vllm import SamplingParams as VSampling

        while True:
            batch = next_batch(self._queue, self.max_batch, 0.01)
            if batch is None:
                return
            sampling = [VSampling(max_tokens=p.max_tokens, temperature=p.temperature, top_p=p.top_p,
                                  stop=p.stop or None, seed=p.seed) for _, p, _ in batch]
            try:
                outputs = self.llm.chat([m for m, _, _ in batch], sampling, use_tqdm=False)
            except Exception as e:  # fail this batch's requests, keep serving
                for _, _, fut in batch:
                    fut.set_exception(BackendError(f"vLLM generation failed: {type(e).__name__}: {e}"))
                continue
            for (_, _, fut), out in zip(batch, outputs):
                o = out.outputs[0]
                fut.set_result(Generation(o.text, o.finish_reason or "stop", len(out.prompt_token_ids or []), len(o.token_ids)))

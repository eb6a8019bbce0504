"""`serve` against clients that go away, an engine that wedges, slow bodies and one Ctrl-C:
a real server on 127.0.0.1, the tiny random model (it rarely ends early, so generations run long)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import httpx
import pytest

from funreason.llm.local import LocalEngine
from funreason.serve.app import BackgroundServer, ServeConfig, create_app

HI = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def engine(tiny_model_dir):
    eng = LocalEngine.from_pretrained(str(tiny_model_dir), max_batch=8)
    yield eng
    eng.close()


def wait_for(cond, timeout=10.0):
    end = time.time() + timeout
    while not cond() and time.time() < end:
        time.sleep(0.05)
    return cond()


def test_a_request_whose_client_goes_away_is_cancelled_and_leaves_its_batch(engine):
    srv = BackgroundServer(create_app(engine, ServeConfig("tiny", max_tokens_cap=4096)))
    try:
        before = engine.cancelled
        with pytest.raises(httpx.ReadTimeout):  # the client gives up and closes its connection
            httpx.post(srv.url + "/v1/chat/completions", json={"model": "tiny", "messages": HI, "max_tokens": 1900}, timeout=0.5)
        assert wait_for(lambda: engine.cancelled == before + 1, 30), "the abandoned request kept decoding"
        # a streamed request whose reader stops after its first event is cancelled too
        with httpx.stream("POST", srv.url + "/v1/chat/completions", json={"model": "tiny", "messages": HI, "max_tokens": 1900,
                                                                           "stream": True}, timeout=30) as r:
            next(r.iter_lines())
        assert wait_for(lambda: engine.cancelled == before + 2, 30)
        assert not engine.health()["busy"] or wait_for(lambda: not engine.health()["busy"], 30)
        # the engine is free for the next client (the counts above say the abandoned requests stopped decoding)
        ok = httpx.post(srv.url + "/v1/chat/completions", json={"model": "tiny", "messages": HI, "max_tokens": 4}, timeout=30)
        assert ok.status_code == 200
    finally:
        srv.stop()


def test_health_reports_an_engine_that_has_work_but_makes_no_progress(engine, monkeypatch):
    gate = threading.Event()
    real = engine.model.forward

    def wedged(*a, **k):  # a fault we cannot cause on a healthy model: the device stops answering
        gate.wait(30)
        return real(*a, **k)

    monkeypatch.setattr(engine.model, "forward", wedged)
    srv = BackgroundServer(create_app(engine, ServeConfig("tiny", stall_s=0.5)))
    try:
        assert httpx.get(srv.url + "/health").json()["status"] == "ok"
        fut = engine.submit("hello", __import__("funreason.llm", fromlist=["SamplingParams"]).SamplingParams(max_tokens=2))
        assert wait_for(lambda: httpx.get(srv.url + "/health").status_code == 503, 30)
        body = httpx.get(srv.url + "/health").json()
        assert body["status"] == "stalled" and body["stalled_s"] > 0.5 and "no decode step" in body["reason"]
        gate.set()
        fut.result(timeout=30)
        assert wait_for(lambda: httpx.get(srv.url + "/health").status_code == 200, 30)
    finally:
        gate.set()
        srv.stop()


def test_a_body_that_never_arrives_gets_408_and_holds_nothing(engine):
    srv = BackgroundServer(create_app(engine, ServeConfig("tiny", body_timeout_s=0.5)))
    try:
        with socket.create_connection(("127.0.0.1", srv.port)) as s:
            s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{\"mo")
            s.settimeout(5)
            head = b""
            while b"did not arrive" not in head:  # the headers and the body may come in separate reads
                part = s.recv(4096)
                if not part:
                    break
                head += part
            head = head.decode()
        assert head.startswith("HTTP/1.1 408") and "did not arrive within" in head
    finally:
        srv.stop()


def test_one_ctrl_c_stops_the_server_with_requests_in_flight(tmp_path, tiny_model_dir):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "funreason.cli", "serve", "--model", str(tiny_model_dir), "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    url = f"http://127.0.0.1:{port}"
    try:
        assert wait_for(lambda: _up(url), 60), "the server did not start"
        streams: list[int] = []

        def long_stream():  # a streamed generation of 1900 tokens, still running when Ctrl-C comes
            try:
                with httpx.stream("POST", url + "/v1/chat/completions", json={"model": str(tiny_model_dir), "messages": HI,
                                                                               "max_tokens": 1900, "stream": True}, timeout=60) as r:
                    streams.extend(1 for _ in r.iter_lines())
            except httpx.HTTPError:
                pass

        threads = [threading.Thread(target=long_stream) for _ in range(3)]
        for t in threads:
            t.start()
        assert wait_for(lambda: len(streams) >= 3, 60)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)  # a guard against a hang, not a speed bound: one Ctrl-C must do
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode in (0, 130), err[-2000:]  # 130: the conventional exit after Ctrl-C
    assert "terminate called" not in err and "Traceback" not in err, err[-6000:]


def _up(url: str) -> bool:
    try:
        return httpx.get(url + "/health", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


class GatedTokenizer:
    """The real tokenizer, except that a text holding `SLOW` waits at a gate: a tokenization as slow
    as SmolLM2's on a 4 MB body, made deterministic (a CPU's speed is not)."""

    def __init__(self, real, gate):
        self.real, self.gate = real, gate

    def __call__(self, text, *a, **k):
        if isinstance(text, str) and "SLOW" in text:
            self.gate.wait(60)
        return self.real(text, *a, **k)

    def __getattr__(self, name):
        return getattr(self.real, name)


def test_huge_bodies_are_refused_before_tokenizing_and_tokenizing_holds_nobody_up(engine, monkeypatch):
    """Review M1: six 4 MB prompts were tokenized on the event loop before their length check, and
    `/health` and every other client waited. Now a prompt over the window by characters is refused
    before it is tokenized, and a tokenization in progress leaves the server answering."""
    gate = threading.Event()
    monkeypatch.setattr(engine, "tokenizer", GatedTokenizer(engine.tokenizer, gate))
    srv = BackgroundServer(create_app(engine, ServeConfig("tiny", max_body_bytes=8 << 20)))
    try:
        huge = {"model": "tiny", "prompt": "1" * 4_000_000, "max_tokens": 4}
        big = [httpx.post(srv.url + "/v1/completions", json=huge, timeout=60) for _ in range(2)]
        chat = httpx.post(srv.url + "/v1/chat/completions", json={"model": "tiny", "max_tokens": 4,
                          "messages": [{"role": "user", "content": "1" * 4_000_000}]}, timeout=60)
        for r in [*big, chat]:
            err = r.json()["error"]
            assert r.status_code == 400 and err["code"] == "context_length_exceeded" and "characters" in err["message"], err
        slow = {}
        t = threading.Thread(target=lambda: slow.update(r=httpx.post(srv.url + "/v1/completions", timeout=60,
                                                                      json={"model": "tiny", "prompt": "SLOW hi", "max_tokens": 2})))
        t.start()
        time.sleep(0.5)  # the slow request is being tokenized now
        assert httpx.get(srv.url + "/health", timeout=10).status_code == 200
        small = httpx.post(srv.url + "/v1/chat/completions", json={"model": "tiny", "messages": HI, "max_tokens": 2}, timeout=10)
        assert small.status_code == 200
        gate.set()
        t.join(60)
        assert slow["r"].status_code == 200
    finally:
        gate.set()
        srv.stop()


def test_a_stream_whose_client_stops_reading_is_cancelled(engine):
    """Review M2: a client that keeps its connection open but never reads its stream let the stream
    decode all its tokens (kernel buffers took them). Now the server's send buffer is bounded and a
    stream whose events cannot be sent for a while is cancelled. (Sampled: greedy, the tiny model
    writes only newlines, which a stream does not send; a stream that sends nothing fills no buffer,
    and no server can tell that its client stopped reading.)"""
    # a short send timeout, so the stream is found stuck long before its 4000 tokens could be decoded
    # (the timing of decoding is the machine's, not the server's)
    srv = BackgroundServer(create_app(engine, ServeConfig("tiny", max_tokens_cap=4096, stream_send_timeout_s=2.0)))
    body = json.dumps({"model": "tiny", "messages": HI, "max_tokens": 4000, "stream": True, "temperature": 1.0, "seed": 1}).encode()
    s = socket.socket()
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a client's small window, and it never reads
        s.connect(("127.0.0.1", srv.port))
        before = engine.cancelled
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: %d\r\n\r\n" % len(body) + body)
        assert wait_for(lambda: engine.cancelled == before + 1, 120), "the unread stream was not cancelled"
        assert wait_for(lambda: not engine.health()["busy"], 30)
    finally:
        s.close()
        srv.stop()


def test_a_lone_surrogate_or_an_orphan_tool_message_is_a_400_and_a_vanishing_temperature_decodes_greedily(engine):
    """Review L2 and L3: `\\ud800` gave a plain-text 500 on both routes; temperature 1e-300 gave a
    500 'generation failed: generation failed: ... inf/nan'."""
    srv = BackgroundServer(create_app(engine, ServeConfig("tiny")))
    try:
        for path, body in (("/v1/chat/completions", {"messages": [{"role": "user", "content": "\ud800"}]}),
                           ("/v1/completions", {"prompt": "\ud800"})):
            r = httpx.post(srv.url + path, content=json.dumps({"model": "tiny", "max_tokens": 2, **body}),
                           headers={"content-type": "application/json"}, timeout=30)
            assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error", r.text
        # as OpenAI's API: a tool message that answers no call before it is a 400 naming the message
        orphan = [*HI, {"role": "tool", "tool_call_id": "c1", "content": "12"}]
        r = httpx.post(srv.url + "/v1/chat/completions", json={"model": "tiny", "messages": orphan, "max_tokens": 2}, timeout=30)
        assert r.status_code == 400 and "message 1 (tool) answers no call" in r.json()["error"]["message"], r.text
        for extra in ({"temperature": 1e-300, "top_p": 1e-300}, {"temperature": 2, "top_p": 5e-324}):
            r = httpx.post(srv.url + "/v1/chat/completions", json={"model": "tiny", "messages": HI, "max_tokens": 2, **extra}, timeout=30)
            assert r.status_code == 200, r.text
    finally:
        srv.stop()

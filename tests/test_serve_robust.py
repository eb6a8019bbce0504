"""`serve` against clients that go away, an engine that wedges, slow bodies and one Ctrl-C:
a real server on 127.0.0.1, the tiny random model (it rarely ends early, so generations run long)."""

from __future__ import annotations

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

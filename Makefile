# Two entry points for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
# torch is pinned and installed first: on a CPU-only machine with a local CPU wheel this takes
# that wheel; an unpinned torch would pull gigabytes of CUDA packages.
TORCH_VERSION ?= 2.13.0
# bfcl-eval is installed for its data files only (BFCL questions and possible answers); its own
# dependency pins (numpy==1.26.4, vllm, ...) would clash with ours, so it comes without them.
BFCL_EVAL_VERSION ?= 2026.3.23
STAMP  := $(VENV)/.installed

.PHONY: demo test install clean

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==$(TORCH_VERSION)
	$(PY) -m pip install -q -e '.[test]'
	$(PY) -m pip install -q --no-deps bfcl-eval==$(BFCL_EVAL_VERSION)
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q

demo: $(STAMP)
	$(VENV)/bin/funreason demo

clean:
	rm -rf $(VENV) demo build *.egg-info

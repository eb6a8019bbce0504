# Two entry points for a fresh machine: `make demo` and `make test` (the rest: test-fast, docs, bench).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
# torch is pinned and installed first: on a CPU-only machine with a local CPU wheel this takes
# that wheel; an unpinned torch would pull gigabytes of CUDA packages.
TORCH_VERSION ?= 2.13.0
# bfcl-eval is installed for its data files and multi-turn environments (BFCL questions, possible answers, the
# executable API classes); its own dependency pins (numpy==1.26.4, vllm, ...) would clash with ours, so it
# comes without them.
BFCL_EVAL_VERSION ?= 2026.3.23
STAMP  := $(VENV)/.installed

.PHONY: demo test test-fast docs bench install clean

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==$(TORCH_VERSION)
	# every optional extra (model soups, BFCL Java/JavaScript, the docs site) and the test tools
	$(PY) -m pip install -q -e '.[all,test]'
	$(PY) -m pip install -q --no-deps bfcl-eval==$(BFCL_EVAL_VERSION)
	touch $(STAMP)

install: $(STAMP)

# the suite runs on every core, at most 4 workers (`make test TEST_WORKERS=0` runs it in one process);
# worksteal keeps both cores busy to the end although a few tests take minutes
TEST_WORKERS ?= auto
PYTEST := $(PY) -m pytest -q -n $(TEST_WORKERS) --maxprocesses 4 --dist worksteal

test: $(STAMP)
	$(PYTEST)

# the edit loop: everything but the tests that build, train, download or serve a model
test-fast: $(STAMP)
	$(PYTEST) -m "not integration"

docs: $(STAMP)
	$(VENV)/bin/mkdocs serve

# the maintained benchmarks in their small default mode; each writes bench/results/<script>.json
# (the agreement scripts build their references on first use: bfcl-eval's own checker, vLLM's parser classes)
BENCH := perf/parse_throughput.py --quick | perf/refine_throughput.py | perf/eval_concurrency.py | perf/serve_load.py --quick \
	| perf/generation_speed.py | perf/guided_speed.py | perf/continuous_batching.py | perf/srml_loss.py --quick | perf/multi_turn_memory.py | perf/train_throughput.py | perf/padding_free.py \
	| perf/train_precision.py | perf/multi_turn_scoring.py --quick | agreement/bfcl_agreement.py --quick \
	| agreement/multi_turn_agreement.py --quick | agreement/vllm_parsers_check.py
bench: $(STAMP)
	@echo '$(BENCH)' | tr '|' '\n' | while read -r script args; do \
		echo "== bench/$$script $$args"; $(PY) bench/$$script $$args || exit 1; done

demo: $(STAMP)
	$(VENV)/bin/funreason demo

clean:
	rm -rf $(VENV) demo build *.egg-info

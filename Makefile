# Two commands on a fresh machine (nothing but Python 3.11+ and make):
#   make demo   create .venv, install, run the main job end to end
#   make test   create .venv, install, run the tests (under 15 minutes on 2 cores)
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.deepclf-installed
PYTEST_ARGS ?=

.PHONY: demo test test-slow test-all test-arm64 check docs protos bench peers-venv clean help

help:
	@echo "make demo       - set up .venv and run the whole pipeline (train, convert, serve, bench) on real photos"
	@echo "make test       - set up .venv and run the test suite (slow tests excluded)"
	@echo "make test-slow  - only the slow tests (long training, long load tests)"
	@echo "make test-arm64 - the edge on arm64: an emulated Debian bookworm root (cached), [edge] installed there, tests, x86 parity"
	@echo "make check      - static checks: ruff lint, ruff format --check, mypy, every noqa has a reason, docs build"
	@echo "make docs       - serve the documentation site on http://127.0.0.1:8000 (mkdocs, live reload)"
	@echo "make protos     - recompile src/deepclf/protocol/*.proto into the committed descriptor set"
	@echo "make bench      - run the full benchmark suite (benchmarks/run.py)"
	@echo "make peers-venv - .venv-peers with KServe and FastAPI, the peer servers the bench compares ours with"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstall when the project's dependencies change.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[all,dev]'
	@touch $(STAMP)

# The real photos, when they sit beside the checkout (as in CI); otherwise the demo looks in the Keras cache,
# then downloads the official archive, then falls back (loudly) to a generated stand-in.
SHARED_PHOTOS := $(abspath $(wildcard ../shared/data/flower_photos))

demo: export DEEPCLF_DATA ?= $(SHARED_PHOTOS)
demo: $(STAMP)
	$(BIN)/deepclf demo $(DEMO_ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow $(PYTEST_ARGS)

test-all: $(STAMP)
	$(BIN)/python -m pytest -m 'slow or not slow' $(PYTEST_ARGS)

# The edge on arm64 (docs/arm64.md): builds once, in $${DEEPCLF_ARM64_CACHE:-$${XDG_CACHE_HOME:-~/.cache}/deepclf/arm64-bookworm},
# a Debian bookworm arm64 root run through qemu-user (needs root; installs qemu-user-static, binfmt-support and
# debootstrap with apt-get when missing), then runs tests/arm64: `pip install '.[edge]'` there, the edge test subset
# inside it, per-variant parity with x86, the x86 clients against `deepclf serve` there. Not part of `make test`.
test-arm64: $(STAMP)
	$(BIN)/python tools/arm64_root.py build
	$(BIN)/python -m pytest -m arm64 tests/arm64 $(PYTEST_ARGS)

# Static checks, configured in pyproject.toml ([tool.ruff], [tool.mypy]); all must pass with zero findings.
check: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python tools/check_noqa.py
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet --site-dir build/site

docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve

protos: $(STAMP)
	$(BIN)/python -m deepclf.protocol.build_protos

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

# The peer servers (deepclf.bench.peers) need their own venv: kserve pins protobuf<7, deepclf's [edge] >=7.36.
# The bench and tests find it as .venv-peers/bin/python (or $$DEEPCLF_PEERS_PYTHON).
peers-venv:
	$(PYTHON) -m venv .venv-peers
	.venv-peers/bin/python -m pip install --quiet -e '.[peers]'

clean:
	rm -rf build dist src/*.egg-info .pytest_cache .mypy_cache .ruff_cache demo-output

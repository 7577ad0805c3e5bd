# Every target creates the virtual environment it needs; nothing is assumed installed.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint typecheck pytest oracle bench runtimes clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

## make run: check the docs' example and a broken bundle against the embedded default runtime.
run: $(STAMP)
	@echo "== addon-mount check fixtures/docs-example (expected: PASSED)"
	$(BIN)/addon-mount check fixtures/docs-example
	@echo
	@echo "== addon-mount check fixtures/broken/collision (expected: FAILED, exit 1)"
	@$(BIN)/addon-mount check fixtures/broken/collision; status=$$?; \
	  if [ $$status -ne 1 ]; then echo "expected exit 1, got $$status"; exit 1; fi
	@echo
	@echo "make run: both reports shown as expected"

## make test: lint, type-check and the full test suite.
test: lint typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check addon_mount tests scripts benchmarks
	$(BIN)/ruff format --check addon_mount tests scripts benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/python -m pytest -q

## make oracle: the kernel oracle's random scenarios, 3000 of them (root; see README, Development).
oracle: $(STAMP)
	ADDON_MOUNT_ORACLE_SCENARIOS=3000 $(BIN)/python -m pytest -q tests/test_kernel_oracle.py

## make bench: speed and memory against baselines, side by side (never fails the suite).
bench: $(STAMP)
	$(BIN)/python -m benchmarks

## make runtimes: regenerate the built-in runtime catalog from a debootstrapped Debian root.
runtimes: $(STAMP)
	$(BIN)/python scripts/build_runtimes.py

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .ruff_cache .pytest_cache

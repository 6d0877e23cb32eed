# Hookflow: `make run` starts the whole system, `make test` runs the whole suite.
# Both create the virtual environment (.venv) first when it is missing or out of date: `run`
# installs only what running needs (the five distributions); `test`, `lint`, `format`, `bench`
# and `fuzz` add the development tools (the root pyproject's `dev` group) on top.

PYTHON ?= $(shell command -v python3.13 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
RUN_STAMP := $(VENV)/.run-stamp
DEV_STAMP := $(VENV)/.dev-stamp
# The five distributions of the workspace (see pyproject.toml), installed editable.
DISTRIBUTIONS := shared services/gateway services/executor services/config-api services/cli
PACKAGES := hookflow_shared hookflow_gateway hookflow_executor hookflow_config_api hookflow_cli

.PHONY: install run test lint format bench compare fuzz clean

# Everything: what running needs and the development tools.
install: $(DEV_STAMP)

$(RUN_STAMP): $(addsuffix /pyproject.toml,$(DISTRIBUTIONS))
	@$(PYTHON) -c 'import sys; v = sys.version_info; sys.exit(0 if v >= (3, 13) else f"Hookflow needs Python 3.13 or newer; {sys.executable} is {v.major}.{v.minor}. Install 3.13 (pyenv install 3.13) or run make PYTHON=/path/to/python3.13")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(addprefix -e ./,$(DISTRIBUTIONS))
	@touch $(RUN_STAMP)

$(DEV_STAMP): $(RUN_STAMP) pyproject.toml
	$(BIN)/python -m pip install --quiet --group dev
	@touch $(DEV_STAMP)

run: $(RUN_STAMP)
	$(BIN)/hookflow run

test: $(DEV_STAMP)
	$(BIN)/python -m pytest

lint: $(DEV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy $(addprefix -p ,$(PACKAGES))

format: $(DEV_STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# The benchmark (needs wrk and RabbitMQ on 127.0.0.1:5672); figures in bench/results/.
bench: $(DEV_STAMP)
	$(BIN)/python bench/run.py

# A paired A/B of a git revision (A) and this checkout (B), side by side on this machine:
# `make compare BASE=HEAD~1` (bench/compare.py; TARGET=sync, PAIRS=8 optional).
BASE ?=
TARGET ?= async
PAIRS ?= 8
compare: $(DEV_STAMP)
	@test -n "$(BASE)" || { echo "make compare BASE=<git revision>: the version to compare this checkout with" >&2; exit 2; }
	$(BIN)/python bench/compare.py --base $(BASE) --target $(TARGET) --pairs $(PAIRS)

# The hostile-input properties (tests/test_hostile_fuzz.py) with FUZZ_EXAMPLES examples each:
# progress every 1,000, the figures at the end. About an hour; not for CI.
FUZZ_EXAMPLES ?= 100000
fuzz: $(DEV_STAMP)
	HOOKFLOW_FUZZ=1 HOOKFLOW_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/python -m pytest \
		tests/test_hostile_fuzz.py --timeout=0

clean:
	rm -rf $(VENV) build .pytest_cache .ruff_cache .mypy_cache
	find . -name '*.egg-info' -prune -exec rm -rf {} +

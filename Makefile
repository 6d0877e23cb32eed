# Hookflow: `make run` starts the whole system, `make test` runs the whole suite.
# Both create the virtual environment (.venv) first when it is missing or out of date.

PYTHON ?= $(shell command -v python3.13 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# The five distributions of the workspace (see pyproject.toml), installed editable.
DISTRIBUTIONS := shared services/gateway services/executor services/config-api services/cli
PACKAGES := hookflow_shared hookflow_gateway hookflow_executor hookflow_config_api hookflow_cli

.PHONY: install run test lint format bench fuzz clean

install: $(STAMP)

$(STAMP): pyproject.toml $(addsuffix /pyproject.toml,$(DISTRIBUTIONS))
	@$(PYTHON) -c 'import sys; v = sys.version_info; sys.exit(0 if v >= (3, 13) else f"Hookflow needs Python 3.13 or newer; {sys.executable} is {v.major}.{v.minor}. Install 3.13 (pyenv install 3.13) or run make PYTHON=/path/to/python3.13")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(addprefix -e ./,$(DISTRIBUTIONS))
	$(BIN)/python -m pip install --quiet --group dev
	@touch $(STAMP)

run: install
	$(BIN)/hookflow run

test: install
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy $(addprefix -p ,$(PACKAGES))

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# The benchmark (needs wrk and RabbitMQ on 127.0.0.1:5672); figures in bench/results/.
bench: install
	$(BIN)/python bench/run.py

# The hostile-input properties (tests/test_hostile_fuzz.py) with FUZZ_EXAMPLES examples each:
# progress every 1,000, the figures at the end. About an hour; not for CI.
FUZZ_EXAMPLES ?= 100000
fuzz: install
	HOOKFLOW_FUZZ=1 HOOKFLOW_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/python -m pytest \
		tests/test_hostile_fuzz.py --timeout=0

clean:
	rm -rf $(VENV) build .pytest_cache .ruff_cache .mypy_cache
	find . -name '*.egg-info' -prune -exec rm -rf {} +

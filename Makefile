# The two commands of the README: `make demo` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_SPEC ?= torch==2.13.0
PYTEST_ARGS ?=

.PHONY: install test demo bench bench-gpu lint clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

test: install
	OMP_NUM_THREADS=1 $(PY) -m pytest -n 2 --dist loadgroup $(PYTEST_ARGS)

demo: install
	$(VENV)/bin/tui-tune demo prepare demo
	$(VENV)/bin/tui-tune

bench: install
	$(PY) -m benchmarks

bench-gpu: install
	$(PY) -m benchmarks --gpu

lint: install
	$(VENV)/bin/ruff check tui_tune tests benchmarks

clean:
	rm -rf $(VENV) .pytest_cache

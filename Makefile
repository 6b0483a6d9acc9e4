# The two commands of the README: `make demo` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_SPEC ?= torch==2.13.0
PYTEST_ARGS ?=
PYTEST_PARALLEL ?= -n 2 --dist loadgroup
# Exact versions of everything but torch (see tools/write_lock.py); `make lock` refreshes it.
LOCK := requirements.lock
# (the venv's own pip may predate --build-constraint: the locked pip is installed first)
# vendor/ holds wheels we build ourselves for dependencies published only as an sdist:
# seqeval 1.2.2 (its last release, 2020) has no wheel, and building it from source needs
# setuptools_scm from an index at install time, so a fresh machine or an offline mirror
# without the sdist could not install it. Its wheel is pure Python (py3-none-any), built once
# with `pip wheel --no-deps seqeval==1.2.2 -w vendor/` and found with --find-links; the lock
# still pins the version, so pip takes exactly that wheel. rouge-score 0.1.2 (seq2seq's ROUGE,
# last release 2022) is the same case, built the same way.
VENDOR := vendor
PIP_LOCKED = -m pip install -q --find-links $(VENDOR) -c $(LOCK) --build-constraint $(LOCK)
# Scratch environments: newest allowed releases, for `make lock` and `make test-latest`.
LOCK_VENV ?= .venv-lock
LATEST_VENV ?= .venv-latest
# torch moves only with TORCH_SPEC; `make test-latest LATEST_TORCH_SPEC=torch` tries its newest.
LATEST_TORCH_SPEC ?= $(TORCH_SPEC)

.PHONY: install test test-latest lock demo bench bench-gpu lint clean

install: $(VENV)/.installed

# Re-run whenever the lock, the dependencies or TORCH_SPEC (in this file) change.
$(VENV)/.installed: pyproject.toml $(LOCK) Makefile $(wildcard $(VENDOR)/*.whl)
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q -c $(LOCK) --upgrade pip
	$(PY) $(PIP_LOCKED) "$(TORCH_SPEC)"
	$(PY) $(PIP_LOCKED) -e '.[dev]'
	touch $@

test: install
	OMP_NUM_THREADS=1 $(PY) -m pytest $(PYTEST_PARALLEL) --durations=30 $(PYTEST_ARGS)

# Resolve the newest releases pyproject.toml allows in a fresh scratch venv, pin them all.
lock:
	rm -rf $(LOCK_VENV)
	python3 -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/python -m pip install -q --upgrade pip hatchling
	$(LOCK_VENV)/bin/python -m pip install -q "$(TORCH_SPEC)"
	$(LOCK_VENV)/bin/python -m pip install -q --find-links $(VENDOR) '.[dev]'
	$(LOCK_VENV)/bin/python tools/write_lock.py $(LOCK)
	rm -rf $(LOCK_VENV)

# The suite against the newest releases, unlocked: drift shows here before it breaks main.
test-latest:
	rm -rf $(LATEST_VENV)
	python3 -m venv $(LATEST_VENV)
	$(LATEST_VENV)/bin/python -m pip install -q --upgrade pip
	$(LATEST_VENV)/bin/python -m pip install -q "$(LATEST_TORCH_SPEC)"
	$(LATEST_VENV)/bin/python -m pip install -q --find-links $(VENDOR) -e '.[dev]'
	$(LATEST_VENV)/bin/python tools/write_lock.py --compare $(LOCK)
	TUI_TUNE_UNLOCKED=1 OMP_NUM_THREADS=1 $(LATEST_VENV)/bin/python -m pytest \
		$(PYTEST_PARALLEL) $(PYTEST_ARGS)

demo: install
	$(VENV)/bin/tui-tune demo prepare demo
	$(VENV)/bin/tui-tune

bench: install
	$(PY) -m benchmarks

bench-gpu: install
	$(PY) -m benchmarks --gpu

lint: install
	$(VENV)/bin/ruff check tui_tune tests benchmarks tools
	$(PY) -m pytest -q -p no:cacheprovider tests/test_layers.py  # the layer rule and import cycles

clean:
	rm -rf $(VENV) $(LOCK_VENV) $(LATEST_VENV) .pytest_cache

# Two commands do all the set-up: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run test bench clean

run: $(STAMP)
	$(PY) main.py

test: $(STAMP)
	$(PY) -m pytest

# The side-by-side benchmark (docs/performance.md). Its peers, PyTorch and JAX,
# are installed into the venv here, never as dependencies of the package.
bench: $(STAMP)
	$(PY) -m pip install --quiet -e '.[bench]'
	$(PY) -m linreg bench --json outputs/bench.json --out outputs

# The venv is made once; the project is (re)installed whenever pyproject.toml changes.
$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

clean:
	rm -rf $(VENV) outputs .pytest_cache .hypothesis

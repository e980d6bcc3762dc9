# Two commands do all the set-up: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run test bench lessons docs clean

run: $(STAMP)
	$(PY) main.py
	@echo 'The linreg command is in .venv/bin: run "source .venv/bin/activate" to put it on the PATH (or call .venv/bin/linreg).'

test: $(STAMP)
	$(PY) -m pytest

# The README's example outputs rewritten from what the code prints now
# (tests/test_readme.py checks them; abridged blocks, with "...", by hand).
docs: $(STAMP)
	LINREG_UPDATE_README=1 $(PY) -m pytest -q -p no:randomly tests/test_readme.py || $(PY) -m pytest -q -p no:randomly tests/test_readme.py

# The side-by-side benchmark (docs/performance.md). Its peers, PyTorch and JAX,
# are installed into the venv here, never as dependencies of the package.
bench: $(STAMP)
	$(PY) -m pip install --quiet -e '.[bench]'
	$(PY) -m linreg bench --json outputs/bench.json --out outputs

# The lessons (lessons/README.md), opened in JupyterLab, which is installed into
# the venv here, never as a dependency of the package. Jupyter refuses to run as
# root unless told to, and root is who runs it in a container.
lessons: $(STAMP)
	$(PY) -m pip install --quiet -e '.[lessons]'
	$(VENV)/bin/jupyter lab lessons/ $(if $(filter 0,$(shell id -u)),--allow-root)

# The venv is made once; the project is (re)installed whenever pyproject.toml changes.
$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

clean:
	rm -rf $(VENV) outputs .pytest_cache .hypothesis

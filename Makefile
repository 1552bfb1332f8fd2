# Two entry points that set themselves up: `make demo` and `make test`.
# Both create .venv (once; again when setup.cfg changes) and install the package into it.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast train clean-venv

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	touch $(STAMP)

demo: $(STAMP)  ## generate speech, train, explain and predict: no download needed
	$(PY) demo_custom_models.py

test: $(STAMP)  ## the whole test suite (what CI runs)
	$(PY) -m pytest -ra

test-fast: $(STAMP)  ## skip the slow real-data, server and browser tests
	$(PY) -m pytest -ra -m "not integration"

train: $(STAMP)  ## train on RAVDESS (data/ravdess or ../shared/data/ravdess16k)
	$(PY) train_custom_models.py

clean-venv:
	rm -rf $(VENV)

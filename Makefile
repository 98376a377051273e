# Two commands for a newcomer: `make report` (the full report on the embedded data) and `make test`;
# `make lab` opens the notebooks in JupyterLab.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
PROFILE ?= quick

LAB_ARGS ?=

.PHONY: report test test-all test-lab lab install chromium clean

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev]"
	@touch $@

install: $(VENV)/.installed

# Debian's chromium prints the report to PDF; installed only when root on Debian and missing.
chromium:
	@if ! command -v chromium >/dev/null 2>&1 && [ -z "$$HW3_CHROMIUM" ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing Debian's chromium and poppler-utils for the PDF report"; \
		DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium poppler-utils >/dev/null || echo "could not install chromium: the report stays HTML-only"; \
	fi

report: install chromium
	$(VENV)/bin/hw3 report --profile $(PROFILE)

test: install chromium
	$(PY) -m pytest

test-all: install chromium
	$(PY) -m pytest -m ""

# JupyterLab from the venv on notebooks/: its "python3" kernel is the venv's interpreter (with hw3lib installed);
# the venv is also registered as kernel "hw3lib" for other Jupyter front ends. LAB_ARGS="--port 8899 --no-browser".
lab: install
	$(PY) -m ipykernel install --sys-prefix --name hw3lib --display-name "hw3lib" >/dev/null
	$(VENV)/bin/jupyter lab --ServerApp.root_dir=notebooks $$([ "$$(id -u)" = 0 ] && echo --allow-root) $(LAB_ARGS)

# The notebooks in a real JupyterLab, driven by headless Chromium (slow: a few minutes).
test-lab: install chromium
	$(PY) -m pytest -m slow tests/test_lab_browser.py

clean:
	rm -rf runs report/executed report/hw3_report.html report/hw3_report.pdf

# Two commands for a newcomer: `make report` (the full report on the embedded data) and `make test`;
# `make lab` opens the notebooks in JupyterLab.
# Python 3.11 (pyproject's requires-python). HW3_NO_APT=1: never install system packages (the PDF needs Chromium).
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
PROFILE ?= quick
# make test: pytest-xdist workers (one OpenMP thread each, tests/conftest.py); TEST_JOBS=0 runs in this process
TEST_JOBS ?= 2

LAB_ARGS ?=

.PHONY: report test test-slow test-all test-lab lab install chromium clean

$(VENV)/.installed: pyproject.toml setup.py
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) || { python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
		&& python3 -m venv $(VENV); } || { echo "make: needs Python 3.11 or newer: make PYTHON=/path/to/python3.11"; exit 1; }
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev]"
	@touch $@

install: $(VENV)/.installed

# The PDF is printed by Chromium. Debian's chromium + poppler-utils are installed with apt-get only when missing,
# when running as root on Debian, and unless HW3_NO_APT=1; make says so before it starts. Otherwise: HTML only.
chromium:
	@if { command -v chromium >/dev/null 2>&1 || [ -n "$$HW3_CHROMIUM" ]; } && command -v pdftotext >/dev/null 2>&1; then :; \
	elif [ -n "$$HW3_NO_APT" ]; then echo "make: HW3_NO_APT set: not installing Chromium; the report will be HTML only"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "make: installing system packages chromium and poppler-utils with apt-get (for the PDF report; HW3_NO_APT=1 skips this)"; \
		DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium poppler-utils >/dev/null \
		|| echo "make: could not install chromium: the report stays HTML-only"; \
	else echo "make: no Chromium: the report will be HTML only (install chromium, or set HW3_CHROMIUM=/path/to/it)"; fi

report: install chromium
	$(VENV)/bin/hw3 report --profile $(PROFILE)

test: install chromium
	$(PY) -m pytest -n $(TEST_JOBS) --dist worksteal

# The slow tests only (measurements, notebooks, the wheel in a fresh venv, JupyterLab in Chromium): what CI runs
# after `make test` (.ci/run). `make test-all` runs both suites in one go.
test-slow: install chromium
	$(PY) -m pytest -m slow

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
	rm -rf runs report/executed report/tables report/hw3_report.html report/hw3_report.pdf

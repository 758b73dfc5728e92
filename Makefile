# The README's commands. Each target creates .venv and installs the pinned requirements if needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# No network at run time: libraries that could reach a model hub are told to stay offline.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export PYTHONHASHSEED := 0

.PHONY: help setup book test test-package test-notebooks test-exercises test-browser lab execute student progress benchmarks clean

help:
	@echo "make book        build the HTML book into _build/html (strict)"
	@echo "make test        everything CI checks: package tests, notebooks, exercise self-tests, strict book build, browser"
	@echo "make test-browser open every page of the built book in headless Chromium and check it"
	@echo "make lab         open JupyterLab on the chapters"
	@echo "make execute     re-run every chapter notebook in place, refreshing committed outputs"
	@echo "make student     write student copies of the chapters (solutions removed) into student/"
	@echo "make progress    show the exercises you have passed, failed and not tried, per chapter"
	@echo "make benchmarks  run the speed and quality benchmarks"

setup: $(STAMP)

# --no-compile: pip would byte-compile all 18,000 files of the environment (about two minutes on one
# core); Python compiles the modules actually imported, once, when they are first imported.
$(STAMP): requirements.txt requirements-nodeps.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --no-compile -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-compile --no-deps -r requirements-nodeps.txt
	$(BIN)/python -m pip install --quiet --no-compile --no-deps -e .
	touch $(STAMP)

book: $(STAMP)
	$(BIN)/jupyter-book build . -W -n --keep-going
	@echo "The book is at file://$(CURDIR)/_build/html/index.html"

test: book test-package test-notebooks test-exercises test-browser

# Two workers: the CI machine has two cores, and every test and notebook uses one torch thread.
test-package: $(STAMP)
	LMCOURSE_PROGRESS=off $(BIN)/python -m pytest -q -n 2 tests lmcourse

# One notebook per worker (loadscope), longest first (chapters/conftest.py orders them; without
# --no-loadscope-reorder, xdist would reorder them by their number of cells).
test-notebooks: $(STAMP)
	LMCOURSE_PROGRESS=off $(BIN)/python -m pytest -q -p no:cacheprovider -n 2 --dist loadscope --no-loadscope-reorder \
	  --nbval-lax --nbval-current-env --nbval-cell-timeout=1800 chapters

test-exercises: $(STAMP)
	LMCOURSE_PROGRESS=off $(BIN)/python -m lmcourse.exercises selftest chapters

# The built book in headless Chromium (Debian's package and a CJK font, installed here if missing), driven by Playwright:
# every page's maths, images, links, dropdowns, requests and console; screenshots in _build/screenshots/.
test-browser: $(STAMP)
	test -d _build/html || $(MAKE) book
	command -v chromium >/dev/null || apt-get install -y -q chromium >/dev/null || \
	  (apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null)
	fc-list :lang=zh 2>/dev/null | grep -q . || apt-get install -y -q fonts-noto-cjk >/dev/null || \
	  (apt-get update -q >/dev/null && apt-get install -y -q fonts-noto-cjk >/dev/null)  # the glossary's Chinese
	$(BIN)/python -m pytest -q -p no:cacheprovider browser

lab: $(STAMP)
	$(BIN)/jupyter lab chapters

# Each notebook in place, with its peak memory in its metadata and (chapters) its run time under its title;
# the results and costs pages after the chapters they read.
execute: $(STAMP)
	LMCOURSE_PROGRESS=off $(BIN)/python -m lmcourse.runtimes execute chapters/[0-9]*.ipynb
	LMCOURSE_PROGRESS=off $(BIN)/python -m lmcourse.runtimes execute --no-stamp chapters/results.ipynb chapters/costs.ipynb

student: $(STAMP)
	$(BIN)/python -m lmcourse.exercises student chapters student

progress: $(STAMP)
	$(BIN)/python -m lmcourse.exercises progress

benchmarks: $(STAMP)
	for b in benchmarks/*.py; do $(BIN)/python "$$b" || exit 1; done

clean:
	rm -rf _build student

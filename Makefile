# Two commands for a fresh machine with Python >= 3.11 and make: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8501

.PHONY: run test lint bench bench-class clean screenshot figures handouts serve

# The venv is rebuilt only when a requirements file changes: the stamp files make both commands quick
# when nothing changed.
$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements-dev.txt $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $@

run: $(VENV)/.installed
	$(BIN)/streamlit run streamlit_app.py --server.port $(PORT)

# A lecture hall: REPLICAS copies of the app (unset: one per core) behind nginx on PORT, with session affinity.
serve: $(VENV)/.installed
	$(BIN)/python deploy/serve.py --replicas $(or $(REPLICAS),0) --port $(PORT)

test: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .

bench: $(VENV)/.installed-dev
	$(BIN)/python -m bench.run --out docs/performance.md

# A class of simulated students against a fresh server, beside one student alone, then one student in Chromium
# (bench/redraw.py): the section "A class on one link" of docs/performance.md. Options after ARGS=, e.g.
# make bench-class ARGS="--students 10,30 --soak 300".
bench-class: $(VENV)/.installed-dev
	$(BIN)/python -m bench.classroom --out docs/performance.md $(ARGS)

# Every figure of every page, at the defaults and at every preset: PNG, SVG, CSV and JSON (LANG=zh or ru: in
# figures/<lang>/, the charts' words in that language; CSV and JSON keep their English ids in every language).
LANG_ARG = $(if $(filter zh ru,$(LANG)),--lang $(LANG),)
figures: $(VENV)/.installed
	$(BIN)/python -m core.export --out figures $(LANG_ARG)

# One self-contained HTML handout per page.
handouts: $(VENV)/.installed
	$(BIN)/python -m core.export --handout --out figures/handouts $(LANG_ARG)

clean:
	rm -rf $(VENV) artifacts .pytest_cache .ruff_cache

# The README's screenshot, from the browser test's own (run `make test` first).
screenshot:
	cp artifacts/screenshots/loss_scaling_top.png docs/screenshot.png

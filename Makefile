# The commands every user gets. Each sets up what it needs on a fresh clone:
# a virtual environment in .venv with the project and its test tools installed.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install config model voices run test train bench lint clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

install: $(STAMP)

config: install  ## every setting checked before anything starts (one line and exit 2 if wrong)
	@$(BIN)/python -m moderation.preflight

model: install  ## train a first model if none exists yet
	$(BIN)/python -m training ensure-model

voices: install  ## the audio CAPTCHA's larger voice library, built once when espeak-ng is installed
	@$(BIN)/python -c "import sys; from moderation.captcha_audio import make_voices; sys.exit(make_voices())"

# config first: gunicorn reads WEB_CONCURRENCY when imported, before its own start-up
# check could name it, and a bad setting should not read as a failed "voices" step.
run: config model voices  ## serve on http://127.0.0.1:8000, or BIND (embedded Redis unless REDIS_URL is set)
	@echo "Serving on http://$${BIND:-127.0.0.1:8000}/  (Ctrl-C stops the service and its embedded Redis)"
	$(BIN)/gunicorn -c gunicorn.conf.py moderation.wsgi:app

test: install  ## everything CI checks: lint, then the tests
	$(BIN)/ruff check .
	$(BIN)/python -m pytest $(PYTEST_ARGS)

train: install  ## retrain from the shipped data and write reports/<version>/
	$(BIN)/python -m training train

bench: install  ## benchmarks against same-run baselines; table in bench/results/
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) var models reports .pytest_cache

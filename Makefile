# The commands every user gets. Each sets up what it needs on a fresh clone:
# a virtual environment in .venv with the project and its test tools installed.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install model voices run test train bench lint clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

install: $(STAMP)

model: install  ## train a first model if none exists yet
	$(BIN)/python -m training ensure-model

voices: install  ## the audio CAPTCHA's larger voice library, built once when espeak-ng is installed
	@$(BIN)/python -c "import sys; from moderation.captcha_audio import make_voices; sys.exit(make_voices())"

run: model voices  ## serve on http://127.0.0.1:8000, or BIND (embedded Redis unless REDIS_URL is set)
	@# gunicorn reads WEB_CONCURRENCY when imported, before its start-up check can name it.
	@case "$$(echo $${WEB_CONCURRENCY-2})" in ""|*[!0-9]*) echo "configuration error: WEB_CONCURRENCY='$$WEB_CONCURRENCY': expected a whole number of at least 1" >&2; exit 2;; esac
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

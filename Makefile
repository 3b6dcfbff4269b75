# Two commands from a fresh clone: `make run` and `make test` (see README).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
DATA_DIR ?= var
SECRET_FILE := $(DATA_DIR)/secret_key
PIP := $(BIN)/python -m pip --disable-pip-version-check -q

.PHONY: run test lint format demo lock image clean bwrap

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip wheel

$(VENV)/.deps: requirements.lock | $(BIN)/python
	$(PIP) install -r requirements.lock
	@touch $@

$(VENV)/.dev-deps: requirements-dev.lock | $(BIN)/python
	$(PIP) install -r requirements-dev.lock
	@touch $@ $(VENV)/.deps

# A per-checkout secret, so `make run` is not in Django's insecure debug mode.
$(SECRET_FILE):
	@mkdir -p $(DATA_DIR)
	@$(PYTHON) -c "import secrets; print(secrets.token_urlsafe(50))" > $@

# Local jobs run confined by bubblewrap (jobs/executors/sandbox.py): found, or installed
# with apt-get when root. Without it only admins' local jobs run (unconfined, warned).
bwrap:
	@command -v bwrap >/dev/null 2>&1 || { \
	    if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	        echo "installing bubblewrap for local jobs"; apt-get update -qq && \
	        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null; \
	    else \
	        echo "bwrap not found: install bubblewrap (apt-get install bubblewrap); until then only admins' local jobs run, unconfined"; \
	    fi; }

run: $(VENV)/.deps $(SECRET_FILE) bwrap
	DJANGO_SECRET_KEY=$$(cat $(SECRET_FILE)) $(BIN)/python manage.py migrate --noinput
	DJANGO_SECRET_KEY=$$(cat $(SECRET_FILE)) $(BIN)/python manage.py seed_demo
	DJANGO_SECRET_KEY=$$(cat $(SECRET_FILE)) $(BIN)/python manage.py runplatform --host 127.0.0.1 --port 8000

test: $(VENV)/.dev-deps bwrap
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.dev-deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.dev-deps
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Re-pin every dependency after editing requirements*.in.
lock:
	$(PYTHON) -m venv /tmp/mlp-piptools && /tmp/mlp-piptools/bin/pip install -q pip-tools
	/tmp/mlp-piptools/bin/pip-compile -q --strip-extras --no-emit-index-url --no-emit-find-links -o requirements.lock requirements.in
	/tmp/mlp-piptools/bin/pip-compile -q --strip-extras --no-emit-index-url --no-emit-find-links -o requirements-dev.lock requirements-dev.in

# The container jobs' base image, built once from Debian packages (about 3 minutes;
# skipped when it exists). Needs the engine: compose/jobs/engine.sh starts it.
JOB_IMAGE ?= localhost/mlp-python:bookworm-mlflow
image:
	@podman image exists $(JOB_IMAGE) && echo "$(JOB_IMAGE) exists" || bash compose/jobs/build-image.sh $(JOB_IMAGE)

clean:
	rm -rf $(VENV) $(DATA_DIR)

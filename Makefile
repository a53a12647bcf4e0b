# Two commands on a fresh machine:  make run  (stream BME280 readings)  and  make test.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
ARGS ?=

.PHONY: run test check lint bench clean image-test

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

run: $(BIN)/.installed  ## set up, then stream live BME280 readings to stdout (Ctrl-C stops)
	$(BIN)/synthstream run $(ARGS)

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/hadolint Dockerfile

check: lint  ## the inner loop, a few minutes: lint, types and every test that needs no server or image
	SYNTHSTREAM_TEST_TIER=fast $(BIN)/pytest -q -n auto -m "not services"

test: lint  ## set up, lint, type-check, validate the Kubernetes manifests, install LocalStack, Prometheus, PostgreSQL, Chromium, run every test (and the example plugin's)
	scripts/check-manifests
	scripts/localstack install
	scripts/install-prometheus
	scripts/postgres install
	scripts/install-chromium
	$(BIN)/pytest
	scripts/plugin-test
	scripts/image-test

image-test:  ## build the image with podman and run it: non-root, records, healthy, clean stop
	scripts/image-test

bench: $(BIN)/.installed  ## print throughput, rate accuracy and backfill figures (minutes)
	$(BIN)/python -m bench.throughput
	$(BIN)/python -m bench.rate
	$(BIN)/python -m bench.backfill
	$(BIN)/python -m bench.startup
	$(BIN)/python -m bench.http
	$(BIN)/python -m bench.workers
	$(BIN)/python -m bench.datasets
	$(BIN)/python -m bench.kinesis
	$(BIN)/python -m bench.ecommerce
	$(BIN)/python -m bench.kafka
	$(BIN)/python -m bench.postgres
	$(BIN)/python -m bench.s3
	$(BIN)/python -m bench.live
	$(BIN)/python -m bench.control
	$(BIN)/python -m bench.incidents

clean:
	rm -rf $(VENV) .venv-plugin .mypy_cache .pytest_cache .ruff_cache data/out .image-test

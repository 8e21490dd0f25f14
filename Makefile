VENV := .venv
PYTHON := $(VENV)/bin/python
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8888
MOTO_PORT ?= 5000
FAKE_GCS_PORT ?= 4443
PROD_PORT ?= 8080

.PHONY: install serve serve-prod moto fake-gcs test test-unit test-integration bench bench-gc lint format clean

install: $(STAMP)

$(STAMP): setup.py constraints.txt
	test -x $(PYTHON) || python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --upgrade pip
	$(PYTHON) -m pip install --quiet -c constraints.txt -e ".[test]"
	touch $(STAMP)

serve: install
	mkdir -p attachments
	KINTO_INI=examples/kinto.ini $(VENV)/bin/gunicorn --pythonpath examples serve:application \
		--bind $(HOST):$(PORT) --no-control-socket --workers 1 --timeout 300

# examples/production on one machine: PostgreSQL, moto as S3, gunicorn (4 workers), nginx
# on http://127.0.0.1:$(PROD_PORT)/ (see README.rst, "Deploying"). Debian's postgresql and
# nginx are installed when missing (as root).
serve-prod: install
	$(PYTHON) examples/production/serve_local.py --port $(PROD_PORT)

# A local S3 API (moto's server) for trying the S3 storage: see README.rst.
moto: install
	$(VENV)/bin/moto_server -H $(HOST) -p $(MOTO_PORT)

# A local GCS API (fake-gcs-server, in memory, as the tests run it) for trying the GCS
# storage: see docs/development.rst.
fake-gcs: install
	$(PYTHON) -m tests.helpers.gcs $(FAKE_GCS_PORT)

test: install
	$(PYTHON) -m pytest tests

# The fast tier: in-process only, no service to start (see docs/development.rst).
test-unit: install
	$(PYTHON) -m pytest tests -m unit

# moto, PostgreSQL and gunicorn; not the browser nor the production set-up.
test-integration: install
	$(PYTHON) -m pytest tests -m integration

# Uploads side by side with the kinto-attachment plugin (installed into .venv-plugin) and a
# ceiling, 1 MiB to 2 GiB, then pass-through cost: about 20 minutes, ~8 GiB of free disk.
bench: install
	$(PYTHON) benchmarks/bench.py

# gc --dry-run over GC_RECORDS records on a throw-away PostgreSQL cluster, and a tenth as
# many; needs root (PostgreSQL runs as the postgres user) and, at a million, ~8 GiB of RAM
# for the files on tmpfs (see the script's docstring). Minutes: not part of `bench`.
GC_RECORDS ?= 1000000
GC_WORKDIR ?= /dev/shm
bench-gc: install
	$(PYTHON) benchmarks/gc_scale.py --records $(GC_RECORDS) --workdir $(GC_WORKDIR)

lint: install
	$(VENV)/bin/ruff check kinto_attachment_mw tests benchmarks examples
	$(VENV)/bin/ruff format --check kinto_attachment_mw tests benchmarks examples

format: install
	$(VENV)/bin/ruff check --fix kinto_attachment_mw tests benchmarks examples
	$(VENV)/bin/ruff format kinto_attachment_mw tests benchmarks examples

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .ruff_cache

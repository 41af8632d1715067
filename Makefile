# One task runner. Everything here is also a plain script under scripts/.
.PHONY: serve test gen lint chaos examples docs fresh-debian

serve:  ## start the server on the embedded default
	bash scripts/serve.sh

test:  ## every suite, installing what it needs (the same command CI runs)
	bash scripts/test_all.sh

gen:  ## regenerate the Python stubs from proto/ (Go: client_go/gen.sh, TS: npm run gen, Java: at build)
	bash scripts/gen_proto.sh

lint:  ## buf lint + breaking check + stub drift
	bash scripts/check_generated.sh

chaos:  ## the fault-injection suite alone, with its report
	python3 -m pytest -q -p no:cacheprovider -s tests/test_chaos.py

examples:  ## every code block of README.md and the client READMEs, twice, against a live server
	python3 scripts/run_examples.py --repeat 2

docs:  ## the Python API reference (pdoc, from the docstrings) into docs/api/python
	python3 -m pdoc --docformat google -o docs/api/python cairn_client cairn_client.aio cairn_client.langgraph cairn_client.errors
	@echo "docs: docs/api/python/index.html"

# The README's two commands in a fresh Debian 12 root (debootstrap + chroot; needs root and ~25 min; not in CI).
# FRESH_ARGS="--ca /path/to/proxy-ca.crt" when the registries are reached through an intercepting proxy.
FRESH_ARGS ?=
fresh-debian:  ## prove `serve.sh` and `test_all.sh` on a fresh Debian 12 with only git and python3
	bash scripts/fresh_debian.sh $(FRESH_ARGS)

# ---- bench: Cairn vs a bare gRPC echo server and LangGraph's AsyncPostgresSaver (bench/run.py) ----
# Starts its own redis/postgres/cairn; prints the ratio table; writes bench/results/latest.json.
# make bench BENCH_ARGS="--duration 8 --repeat 3 --server-arg=--postgres-pool-size=20"
BENCH_PYTHON ?= python3
BENCH_ARGS ?=

.PHONY: bench
bench:  ## Cairn vs an echo server and LangGraph: ratio table + bench/results/latest.json
	$(BENCH_PYTHON) bench/run.py $(BENCH_ARGS)

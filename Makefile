# One task runner. Everything here is also a plain script under scripts/.
.PHONY: serve test gen lint chaos memory

serve:  ## start the server on the embedded default
	bash scripts/serve.sh

test:  ## every suite, installing what it needs (the same command CI runs)
	bash scripts/test_all.sh

gen:  ## regenerate the Python stubs from proto/ (Go: client_go/gen.sh, TS: npm run gen, Java: at build)
	bash scripts/gen_proto.sh

lint:  ## buf lint + breaking check + stub drift
	bash scripts/check_generated.sh

memory:  ## issue 27's attacks at full size (BatchLoad/List amplification, unread SaveStreams): server RSS per attack
	python3 bench/memory.py $(MEMORY_ARGS)

chaos:  ## the fault-injection suite alone, with its report
	python3 -m pytest -q -p no:cacheprovider -s tests/test_chaos.py

# ---- bench: Cairn vs a bare gRPC echo server and LangGraph's AsyncPostgresSaver (bench/run.py) ----
# Starts its own redis/postgres/cairn; prints the ratio table; writes bench/results/latest.json.
# make bench BENCH_ARGS="--duration 8 --repeat 3 --server-arg=--postgres-pool-size=20"
BENCH_PYTHON ?= python3
BENCH_ARGS ?=

.PHONY: bench
bench:  ## Cairn vs an echo server and LangGraph: ratio table + bench/results/latest.json
	$(BENCH_PYTHON) bench/run.py $(BENCH_ARGS)

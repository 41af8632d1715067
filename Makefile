# One task runner. Everything here is also a plain script under scripts/.
.PHONY: serve test gen lint chaos memory examples docs fresh-debian

serve:  ## start the server on the embedded default
	bash scripts/serve.sh

test:  ## every suite, installing what it needs (the same command CI runs)
	bash scripts/test_all.sh

gen:  ## every language's stubs from proto/ with one buf.gen.yaml (Python, Go, TypeScript; Java's proto copy)
	bash scripts/gen_proto.sh

lint:  ## buf lint + breaking check + the one stub drift check (every language)
	bash scripts/check_generated.sh

memory:  ## issue 27's attacks at full size (BatchLoad/List amplification, unread SaveStreams): server RSS per attack
	python3 bench/memory.py $(MEMORY_ARGS)

REDIS_MEMORY_SECONDS ?= 600
.PHONY: redis-memory async-durability
# Saves fill Redis only with --cache-fill-on-save (by default reads fill it): the run measures that worst case.
REDIS_MEMORY_ARGS ?= --server-arg=--cache-fill-on-save
redis-memory:  ## Redis memory over a 10-minute save-heavy run: per thread, and its growth after warm-up (issue 32)
	python3 bench/redis_memory.py --seconds $(REDIS_MEMORY_SECONDS) $(REDIS_MEMORY_ARGS)

async-durability:  ## the numbers behind docs/durability.md: group-commit Save vs an AOF-always outbox write
	python3 bench/async_durability.py $(ASYNC_DURABILITY_ARGS)

chaos:  ## the fault-injection suite alone, with its report
	python3 -m pytest -q -p no:cacheprovider -s tests/test_chaos.py

# ---- coherence: linearizability of every thread's history under faults, two servers (tests/harness/coherence.py) ----
# make coherence COHERENCE_SECONDS=600 COHERENCE_ARGS="--seed 7 --servers 3"; exits non-zero on any anomaly
COHERENCE_SECONDS ?= 600
COHERENCE_REPORT ?= coherence-report.txt
COHERENCE_ARGS ?=

.PHONY: coherence
coherence:  ## long fault-injection run checked for linearizability; writes $(COHERENCE_REPORT)
	python3 -m tests.harness.coherence --seconds $(COHERENCE_SECONDS) --report $(COHERENCE_REPORT) $(COHERENCE_ARGS)

# the same on a Redis Cluster (3 masters + 3 replicas) under CLUSTER FAILOVER and slot migrations/reshards
.PHONY: coherence-cluster
coherence-cluster:  ## long coherence run on a Redis Cluster; writes coherence-cluster-report.txt
	python3 -m tests.harness.coherence --redis-cluster --seconds $(COHERENCE_SECONDS) \
		--report coherence-cluster-report.txt $(COHERENCE_ARGS)

examples:  ## every code block of README.md and the client READMEs, twice, against a live server
	python3 scripts/run_examples.py --repeat 2

DOCS_LANGS ?=
docs:  ## the API reference of the four clients from their doc comments into docs/api/<lang> (DOCS_LANGS: a subset)
	bash scripts/build_docs.sh $(DOCS_LANGS)

# The README's two commands in a fresh Debian 12 root (debootstrap + chroot; needs root and 30-60 min; not in CI).
# FRESH_ARGS="--ca /path/to/proxy-ca.crt" when the registries are reached through an intercepting proxy.
FRESH_ARGS ?=
fresh-debian:  ## prove `serve.sh` and `test_all.sh` on a fresh Debian 12 with only git and python3
	bash scripts/fresh_debian.sh $(FRESH_ARGS)

# ---- bench: Cairn vs honest references (bench/references.py, issue 32) ----
# Durable Postgres (fsync on); Cairn through the shipped Python client and `cairn bench`; LangGraph's saver on a
# pool of 10, one per worker, and one per worker with lz4 TOAST; the echo server. CPU per op of every process.
# Prints the table; writes bench/results/references.{md,json}. ~7-9 min on 2 cores.
# make bench BENCH_ARGS="--rounds 5 --duration 6"
BENCH_PYTHON ?= python3
BENCH_ARGS ?=

.PHONY: bench bench-targets bench-deploy bench-channels bench-capacity
bench:  ## Cairn vs LangGraph at its best and an echo server, durable Postgres: bench/results/references.md
	$(BENCH_PYTHON) bench/references.py $(BENCH_ARGS)

bench-targets:  ## issue 9's wider ratio table (List, SaveStream, BatchLoad, bytes stored...): bench/results/latest.json
	$(BENCH_PYTHON) bench/run.py $(BENCH_ARGS)

bench-deploy:  ## 8 worker processes x 32 graphs: LangGraph (256 connections) vs Cairn (a channel per process)
	$(BENCH_PYTHON) bench/references.py --deploy $(BENCH_ARGS)

bench-channels:  ## one client channel vs a pool of 4 against `cairn serve --workers 2`
	$(BENCH_PYTHON) bench/references.py --channels $(BENCH_ARGS)

bench-capacity:  ## the capacity model's prediction for this box against a measured run (docs/capacity.md)
	$(BENCH_PYTHON) bench/capacity.py $(BENCH_ARGS)

# ---- console: screenshots for the README, and the page-load figure of a 10,000-checkpoint thread ----
.PHONY: console-screenshots console-pageload
console-screenshots:  ## run the console's browser tests, saving a screenshot of each page to docs/console/
	CAIRN_CONSOLE_SCREENSHOTS=docs/console python3 -m pytest -q -p no:cacheprovider tests/test_console_browser.py

console-pageload:  ## time the console's timeline page for a thread of 10,000 checkpoints in headless Chromium
	python3 bench/console_pageload.py $(PAGELOAD_ARGS)

# ---- durable runs soak (issue 26): 1,000 runs through 4 worker processes, one SIGKILLed every few seconds ----
# On SQLite and on Postgres; checks every run COMPLETED, linear histories, activities executed once, and prints
# recovery times (kill -> claimed by another worker) against the 2 s lease. CI runs the 60-run version.
SOAK_RUNS ?= 1000
SOAK_KILL_S ?= 3

.PHONY: soak-runs
soak-runs:  ## durable runs soak: $(SOAK_RUNS) runs, 4 workers, one killed every $(SOAK_KILL_S) s
	CAIRN_SOAK_RUNS=$(SOAK_RUNS) CAIRN_SOAK_KILL_S=$(SOAK_KILL_S) python3 -m pytest -q -p no:cacheprovider -s \
		--timeout 3600 tests/test_runs_worker.py -k soak

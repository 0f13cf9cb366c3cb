# Entry points for people and CI. Tools come from PATH, else are installed into .tools/.
SHELL := /bin/bash
STACK := scripts/stack.sh
DENO = $(shell $(STACK) deno)
SCENARIO ?= steady
SIZE ?= 1m
# CLUSTER=citus: the distributed mode (coordinator + 2 workers, docs/citus.md)
CLUSTER ?=
ifeq ($(CLUSTER),citus)
UP := scripts/citus.sh up
DOWN := scripts/citus.sh down
RESET := scripts/citus.sh reset
export DATABASE_URL := $(shell scripts/citus.sh url)
export CITUS_WORKERS := $(shell scripts/citus.sh workers)
else ifeq ($(CLUSTER),)
UP := $(STACK) up
DOWN := $(STACK) down
RESET := $(STACK) reset
else
$(error CLUSTER=$(CLUSTER): use CLUSTER=citus, or leave it unset for the single node)
endif

.PHONY: help tools up down reset psql test demo demo-live load-test bench soak kafka-up kafka-down bench-kafka bench-http bench-lake storefront

help: ## list the commands
	@grep -E '^[a-z-]+:.*## ' Makefile | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

tools: ## install pinned deno and dbmate into .tools/ when not on PATH
	@$(STACK) tools

up: ## start PostgreSQL 18 (Docker if available, else embedded), migrate, apply views; CLUSTER=citus: Citus cluster
	@$(UP)

down: ## stop PostgreSQL (data kept); CLUSTER=citus: the Citus cluster
	@$(DOWN)

reset: ## stop PostgreSQL and wipe its data; CLUSTER=citus: the Citus cluster
	@$(RESET)

psql: ## open a SQL shell (or print DATABASE_URL when psql is not installed)
	@url="$$($(STACK) url)"; if command -v psql >/dev/null; then psql "$$url"; else echo "$$url"; fi

test: up kafka-up ## start the database and the Kafka broker if needed, then fmt check, lint, type check and tests
	@$(DENO) task ok

demo: up ## 15 days of a seeded shop + today + 5 live minutes -> ingest -> counts and report
	@$(DENO) run --allow-all scripts/demo.ts

demo-live: up ## the demo's shop keeps selling in real time (a file every 10 s, ingested) until Ctrl-C
	@$(DENO) run --allow-all scripts/demo.ts --live

load-test: up ## k6 load test against deno task serve (SCENARIO=steady|mixed|spike|soak|smoke)
	@bash load/run.sh $(SCENARIO)

bench: up ## performance report: raw COPY vs ingest vs pgloader (SIZE=100k|1m|5m; INSTALL_PEERS=1 apt-installs pgloader); CLUSTER=citus: single node vs Citus
ifeq ($(CLUSTER),citus)
	@env -u DATABASE_URL -u CITUS_WORKERS $(STACK) up
	@$(DENO) run --allow-all bench/citus.ts --size $(SIZE) --single "$$(env -u DATABASE_URL $(STACK) url)"
else
	@$(DENO) run --allow-all bench/bench.ts --size $(SIZE)
endif

soak: up ## long fault-injection runs
	@SOAK=1 $(DENO) test --allow-all scripts/faults_test.ts

kafka-up: ## start the local Apache Kafka 4 broker (KRaft; jars from Maven Central, cached per machine)
	@bash scripts/kafka.sh up

kafka-down: ## stop the local Kafka broker (data kept; scripts/kafka.sh reset wipes it)
	@bash scripts/kafka.sh down

bench-kafka: up kafka-up ## Kafka source vs file path on the same events, freshness p95 (SIZE=100k|1m)
	@$(DENO) run --allow-all bench/kafka.ts --size $(SIZE)

bench-http: up ## server CPU an event over HTTP (100- and 1000-event batches, k6) next to the file path's CPU a row, same run
	@bash load/run.sh http-cpu $(BENCH_HTTP_ARGS)

bench-lake: up ## lake export rows/s vs the file path's, and the lake's size vs PostgreSQL's (SIZE=100k|1m)
	@$(DENO) run --allow-all bench/lake.ts --size $(SIZE)

storefront: up ## the demo shop with tracker.js on http://127.0.0.1:8081 (starts the collector when needed)
	@$(DENO) run --allow-all scripts/storefront.ts

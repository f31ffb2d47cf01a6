# AgCluster developer entry points. Everything is set up on demand by scripts/setup.sh
# (idempotent, a few seconds when nothing changed).
#
#   make up                   set up, then run the whole local stack in the foreground
#   make test [ARGS="-k x"]   setup + ruff format --check + ruff check + mypy + pytest ARGS
#   make test-slow [ARGS=...] pytest ARGS on a throttled CPU (AGC_CPU cores, default 0.5)
#   make bench [ARGS=...]     python -m tests.bench
#   make lint | typecheck | fmt
#   make image                build (if inputs changed) and verify the agent image
#   make platform             prepare what `docker compose build` needs (docker-compose.yml)
#   make setup [STAGES="python services docker image web browser"]
#   make stop-docker          stop the dockerd that setup started

SHELL := /bin/bash
VENV  := .venv
ARGS  ?=
STAGES ?=

.DEFAULT_GOAL := help
.PHONY: help up test test-slow bench lint typecheck fmt image platform setup web browser stop-docker

help:
	@awk '/^$$/ { exit } { sub(/^# ?/, ""); print }' Makefile

setup:
	scripts/setup.sh $(STAGES)

up:
	scripts/setup.sh python services docker image web
	exec $(VENV)/bin/agcluster up

test:
	scripts/test.sh $(ARGS)

test-slow:
	scripts/test-throttled.sh $(ARGS)

bench:
	scripts/bench.sh $(ARGS)

lint:
	scripts/setup.sh python
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .

typecheck:
	scripts/setup.sh python
	$(VENV)/bin/mypy
	$(VENV)/bin/mypy tests scripts

fmt:
	scripts/setup.sh python
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

image:
	scripts/setup.sh docker image

platform:
	scripts/setup.sh python docker image web platform

web:
	scripts/setup.sh web

browser:
	scripts/setup.sh browser

stop-docker:
	scripts/stop-docker.sh

# Set-up and everyday commands. `make demo` and `make test` work on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.digiq-installed
TORCH_VERSION := 2.13.0
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: setup test demo lint format clean bench

setup: $(STAMP) adb

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

# torch first (the CPU build), then the project: with torch==2.13.0 present, the loose
# torch>=2.4 requirement installs nothing more. Never torchvision.
$(STAMP): pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install -q "torch==$(TORCH_VERSION)"
	$(PY) -m pip install -q -e ".[test]"
	@if $(PY) -c "import torchvision" 2>/dev/null; then echo "torchvision is installed in $(VENV): it breaks transformers here; remove it" >&2; exit 1; fi
	touch $(STAMP)

# Debian's adb: the tests drive the simulated devices through the real adb server.
adb:
	@if command -v adb >/dev/null 2>&1; then exit 0; fi; \
	if [ "$$(id -u)" = "0" ]; then \
		echo "installing Debian's adb with apt-get"; \
		(apt-get install -y -qq adb >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq adb >/dev/null)) ; \
	else \
		echo "adb is missing and we are not root: run 'sudo apt-get install adb' (Debian/Ubuntu) or put Android platform-tools' adb on PATH" >&2; exit 1; \
	fi

test: setup
	$(VENV)/bin/pytest -q -p no:cacheprovider $(PYTEST_ARGS)

# The project's main job: the Digi-Q experiment end to end on simulated phones (README, "Quickstart").
# Resumable: run `make demo` again after an interruption; `make demo DEMO_FRESH=1` starts over.
# It runs the AitW General tasks (300 offline episodes, 8 candidate actions per state, the
# first 96 test tasks once each per method, 12-18 minutes on 2 cores, runs/demo-general):
# there Digi-Q beats the behaviour policy and, in most runs, Filtered BC (README "The General
# task set").
# `make demo DEMO_TASK_SET=webshop`: Web Shopping (100 offline episodes, runs/demo), where the
# two tie near the ceiling; with DEMO_SCALE=medium three times the data, about 35 minutes
# (runs/demo-medium).
# `make demo DEMO_CANDIDATES=4`: 4 candidate actions per state instead of 8 (the setting
# before 2026-11-24, about 16 minutes; runs/demo-general-n4).
# `make demo DEMO_EVAL_TASKS=192`: the first 192 test tasks instead of 96 (narrower intervals,
# about 4 minutes more: 16 minutes on the faster 2-core instance; runs/demo-general-t192).
DEMO_SCALE ?= small
DEMO_TASK_SET ?= general
DEMO_CANDIDATES ?=
DEMO_EVAL_TASKS ?=
DEMO_OUT ?= runs/demo$(if $(filter-out webshop,$(DEMO_TASK_SET)),-$(DEMO_TASK_SET))$(if $(filter-out small,$(DEMO_SCALE)),-$(DEMO_SCALE))$(if $(DEMO_CANDIDATES),-n$(DEMO_CANDIDATES))$(if $(DEMO_EVAL_TASKS),-t$(DEMO_EVAL_TASKS))
demo: setup
	@if [ -n "$(DEMO_FRESH)" ]; then rm -rf $(DEMO_OUT); fi
	HF_HUB_OFFLINE=1 $(VENV)/bin/digiq quickstart --task-set $(DEMO_TASK_SET) --scale $(DEMO_SCALE) $(if $(DEMO_CANDIDATES),--num-candidates $(DEMO_CANDIDATES)) $(if $(DEMO_EVAL_TASKS),--eval-tasks $(DEMO_EVAL_TASKS)) --out $(DEMO_OUT)

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: setup
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: setup
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b; done

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache

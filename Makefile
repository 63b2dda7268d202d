# Two commands do all the set-up: `make demo` and `make test` (both install first).
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
RESULTS ?= results
export XLA_PYTHON_CLIENT_PREALLOCATE = false
export WANDB_SILENT = true

.PHONY: install demo run test test-all lint bench table1 table5 tables figures clean

$(BIN)/.installed: pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e '.[dev]'
	touch $@

install: $(BIN)/.installed

# ARGS adds overrides to the demo (e.g. ARGS="results_dir=/tmp/demo seed=1"): make's own
# command-line variables (make demo seed=1) never reach run.py.
demo: install
	$(BIN)/python run.py preset=demo $(ARGS)

run: install
	$(BIN)/python run.py $(ARGS)

# One BLAS/OpenMP thread: the tests' networks are tiny, and with two threads on two cores every
# parallel region spin-waits whenever another process holds a core (the suite took 35 min
# instead of 12 with one training job beside it). The 15 slowest tests are listed at the end, to
# keep the suite inside CI's budget (~10 min on 2 cores).
test: install
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} $(BIN)/python -m pytest -q --durations=15

test-all: install
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} $(BIN)/python -m pytest -q -m ''

lint: install
	$(BIN)/ruff check mast analysis launchers tests scripts run.py

table1: install
	$(BIN)/python -m analysis table1 --results $(RESULTS) --out reports

table5: install
	$(BIN)/python -m analysis table5 --results $(RESULTS) --out reports

tables: install
	$(BIN)/python -m analysis tables --results $(RESULTS) --out reports

figures: install
	$(BIN)/python -m analysis figures --results $(RESULTS) --out reports

bench: install
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} $(BIN)/python scripts/bench.py $(ARGS)

clean:
	rm -rf $(VENV) reports multirun outputs wandb

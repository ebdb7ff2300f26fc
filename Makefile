# make run   - bootstrap .venv from requirements.lock if needed, then the main job
# make test  - bootstrap the same way, then the test suite (on both cores)
# make cases - make the saved counterexamples of tests/cases/ that are missing or
#              stale (the model changed under them), hunting only those
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.mmuspec-installed

.PHONY: run test cases venv clean

run: $(STAMP)
	$(VENV)/bin/mmuspec check

# pytest exits 5 when it collected no tests: that must fail, not pass.
# -n 2 (pytest-xdist): two worker processes; --dist loadfile keeps each test
# file in one worker, so a module's fixtures (the dask cluster, Redis) start
# once and its tests keep their order.  TEST_JOBS=0 runs in this process.
TEST_JOBS ?= 2
test: $(STAMP)
	@$(VENV)/bin/python -m pytest -q $(if $(filter-out 0,$(TEST_JOBS)),-n $(TEST_JOBS) --dist loadfile) tests; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest ran no tests" >&2; exit 1; fi; exit $$rc

# tests/make_cases.py --help: --check (hunt nothing), --force VARIANT (hunt it again).
cases: $(STAMP)
	$(VENV)/bin/python tests/make_cases.py

venv: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

clean:
	rm -rf $(VENV) .hypothesis *.egg-info

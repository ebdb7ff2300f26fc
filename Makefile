# make run  - bootstrap .venv from requirements.lock if needed, then the main job
# make test - bootstrap the same way, then the test suite
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.mmuspec-installed

.PHONY: run test venv clean

run: $(STAMP)
	$(VENV)/bin/mmuspec check

# pytest exits 5 when it collected no tests: that must fail, not pass.
test: $(STAMP)
	@$(VENV)/bin/python -m pytest -q tests; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest ran no tests" >&2; exit 1; fi; exit $$rc

venv: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

clean:
	rm -rf $(VENV) .hypothesis *.egg-info

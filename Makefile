# The two commands of the README, and what they need. `make install` (run by both) does the whole
# set-up of a fresh machine, from this repository's own files:
#   1. the system packages from Debian (deploy/install/system-packages.sh, shared with .ci/run):
#      installed when run as root, else one line naming what to install; a no-op when all are there;
#   2. uv (pinned) from PyPI into .tools/, the locked Python packages into .venv/;
#   3. the Apache Kafka jars from Maven Central into ~/.cache/subsidy/, with progress (once per machine).

PYTHON ?= python3
UV_VERSION := 0.13.9
UV := .tools/bin/uv
export UV_PYTHON_DOWNLOADS := never

.PHONY: up test install system-packages bytecode kafka-jars lock clean

## make up: the embedded stack and the four processes in the foreground, shown healthy (Ctrl-C stops)
up: install
	.venv/bin/subsidy up

## make test: unit, workflow (time-skipping), integration and browser tests on the real embedded
## servers, then the fault level (tests/faults, when present) apart in one process; each part's wall
## time is printed, and pytest prints the slowest tests (--durations in pyproject.toml).
## The first part runs in two pytest-xdist processes (whole files per worker, one embedded stack
## each: tests/conftest.py); `make test TEST_WORKERS=0` runs it in one process.
TEST_WORKERS ?= 2
test: install
	@start=$$(date +%s); status=0; \
	.venv/bin/pytest --ignore=tests/faults $(if $(filter-out 0,$(TEST_WORKERS)),-n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder) || status=$$?; \
	echo "make test: everything but tests/faults took $$(( $$(date +%s) - start )) s (wall)"; \
	if [ -d tests/faults ]; then \
	  start=$$(date +%s); .venv/bin/pytest tests/faults || status=$$?; \
	  echo "make test: tests/faults took $$(( $$(date +%s) - start )) s (wall)"; \
	fi; exit $$status

install: system-packages .venv/.synced bytecode kafka-jars

# Bytecode of the platform's own sources (the locked packages' is written by `uv sync
# --compile-bytecode`). Where PYTHONDONTWRITEBYTECODE is set (containers, CI) nothing else writes
# it, so every process compiled every module it imports from source, and Temporal's worker compiled
# them all again to hash its default build id: ~3 s of CPU per service start and per test process,
# dozens of times per `make test`. Incremental: a second call only compares timestamps.
bytecode: .venv/.synced
	@.venv/bin/python -m compileall -q -j 0 cli deploy services subsidy workflows tests bench > /dev/null \
	  || echo "bytecode: some sources did not compile; they are compiled at import instead"
	@[ -e .venv/.bytecode ] || { .venv/bin/python -m compileall -q -j 0 $$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])') > /dev/null; touch .venv/.bytecode; }

system-packages:
	@PYTHON=$(PYTHON) deploy/install/system-packages.sh

# Free when cached (a marker file in the cache); the stack start then finds them there.
kafka-jars: .venv/.synced | system-packages
	@.venv/bin/python -m deploy.embedded.kafka fetch

$(UV): | system-packages
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

.venv/.synced: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --compile-bytecode --python $(PYTHON)
	@touch $@ .venv/.bytecode

## make lock: re-resolve uv.lock after changing pyproject.toml
lock: $(UV)
	$(UV) lock --python $(PYTHON)

clean:
	rm -rf .venv .tools

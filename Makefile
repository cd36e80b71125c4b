# The two commands of the README, and what they need. Everything installs from this repository's
# own files: uv (pinned) from PyPI into .tools/, the locked packages into .venv/, the Kafka jars
# from Maven Central into ~/.cache/subsidy on the first `subsidy stack up`.

PYTHON ?= python3
UV_VERSION := 0.13.9
UV := .tools/bin/uv
export UV_PYTHON_DOWNLOADS := never

.PHONY: up test install lock clean

## make up: the embedded stack and the four processes in the foreground, shown healthy (Ctrl-C stops)
up: install
	.venv/bin/subsidy up

## make test: unit, workflow (time-skipping) and integration tests on the real embedded servers
test: install
	.venv/bin/pytest

install: .venv/.synced

$(UV):
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

.venv/.synced: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --python $(PYTHON)
	@touch $@

## make lock: re-resolve uv.lock after changing pyproject.toml
lock: $(UV)
	$(UV) lock --python $(PYTHON)

clean:
	rm -rf .venv .tools

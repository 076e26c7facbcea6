# The few commands a newcomer needs. `make up` and `make test` install first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install system up test lint bench clean lock

# Debian packages the tests need: a real browser for the wall, CJK glyphs for it and the
# picture bulletin, openssl for the certificates of the Kafka-over-TLS test. Installed only
# when missing.
PACKAGES := chromium fonts-noto-cjk openssl

install: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

# `make up WORKERS=3`: pipeline workers sharing the partitions
WORKERS ?= 1

up: install
	-@$(MAKE) --no-print-directory system PACKAGES=fonts-noto-cjk  # Chinese in the PNG bulletin
	$(BIN)/muster up --workers $(WORKERS)

system:
	@missing=""; for p in $(PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  sudo=""; [ "$$(id -u)" = 0 ] || sudo=sudo; \
	  $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	    $$sudo apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

test: install system
	$(BIN)/python -m pytest -q --durations=15

lint: install
	$(BIN)/ruff check schemas streams sinks dashboards tests
	$(BIN)/ruff format --check schemas streams sinks dashboards tests
	$(BIN)/mypy

bench: install
	$(BIN)/python -m tests.bench --scenario city
	$(BIN)/python -m tests.bench --scenario shanghai-2022-03-15

# Re-pin after editing pyproject.toml dependencies.
lock:
	$(BIN)/python -m pip install --quiet uv
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 -o requirements.lock

clean:
	rm -rf $(VENV) .muster .pytest_cache

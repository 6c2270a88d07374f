# One command to run, one to test; both build .venv from pinned pyproject.toml.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# node_modules from package-lock.json: socket.io-client and qrcode-generator for the pages and
# the Node.js client test, axe-core for the browser tests' audit; reinstalled when the lock changes.
NPM_STAMP := node_modules/.installed

.PHONY: run test lint typecheck squawk pytest bench clean chromium nginx

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(NPM_STAMP): package-lock.json
	npm ci --no-audit --no-fund
	touch $(NPM_STAMP)

# Browser tests drive Debian's Chromium (never a downloaded browser build); a Japanese font
# so the pages' Japanese text renders. Installed only when /usr/bin/chromium is missing.
chromium:
	@test -x /usr/bin/chromium || \
		(apt-get update && apt-get install -y chromium fonts-ipafont-gothic)

# nginx (Debian) for tests/cluster: the load balancer of deploy/nginx.conf in front of three
# tuiz processes. Installed only when missing; the tests run it on a loopback port of their own.
nginx:
	@test -x /usr/sbin/nginx || (apt-get update && apt-get install -y nginx)

run: $(STAMP) $(NPM_STAMP)
	$(BIN)/tuiz serve

test: $(STAMP) $(NPM_STAMP) chromium nginx
	$(MAKE) --no-print-directory lint typecheck squawk pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

squawk: $(STAMP)
	$(BIN)/squawk --config .squawk.toml supabase/migrations/*.sql

# pytest exits 5 when a selection ran no test; that alone is not a failure.
pytest: $(STAMP)
	$(BIN)/pytest $(PYTEST_ARGS); rc=$$?; if [ $$rc -eq 5 ]; then rc=0; fi; exit $$rc

bench: $(STAMP)
	$(BIN)/python -m bench.eventlog

# Socket.IO load: tuiz against the Node.js anchor (bench/README.md); e.g.
# make bench-socketio BENCH_ARGS="--clients 1000 --procs 4 --messages 50"
.PHONY: bench-socketio
bench-socketio: $(STAMP)
	cd bench && npm ci --no-audit --no-fund
	$(BIN)/python -m bench.socketio_load $(BENCH_ARGS)

# A full live game with simulated players (bench/README.md), never overlapping another
# benchmark (flock); e.g. make bench-game GAME_ARGS="--sweep 250,500,1000,2000"
GAME_ARGS ?= --players 1000 --procs 4 --questions 5
.PHONY: bench-game
bench-game: $(STAMP) $(NPM_STAMP)
	flock /tmp/tuiz-bench.lock $(BIN)/python -m bench.game_load $(GAME_ARGS)

clean:
	rm -rf $(VENV) .tuiz .pytest_cache .mypy_cache .ruff_cache

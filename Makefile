# The demo pins the clock (JANITOR_NOW and the inventory's "now") so its output is the same every day.
# The two set-up commands: `make demo` and `make test`. Everything they need is installed into .tools/.
SHELL := /bin/bash
CARGO ?= cargo
BIN := target/debug/aliyun-janitor
DEMO_PORT ?= 18931
DEMO_ENV := ALIBABA_CLOUD_ACCESS_KEY_ID=demo-access-key ALIBABA_CLOUD_ACCESS_KEY_SECRET=demo-secret-do-not-use \
	JANITOR_ENDPOINT=http://127.0.0.1:$(DEMO_PORT) JANITOR_NOW=2026-11-25T12:00:00Z RUST_LOG=warn

.PHONY: all demo test test-rust bench clean-tools

all: build

-include mk/*.mk

## demo: start the emulator with a sample inventory, dry-run, then --apply against it
demo:
	$(CARGO) build --quiet
	@set -e; \
	$(BIN) sim --inventory examples/demo-inventory.json --listen 127.0.0.1:$(DEMO_PORT) 2>/dev/null & SIM=$$!; \
	trap "kill $$SIM 2>/dev/null" EXIT; \
	for i in $$(seq 50); do (echo > /dev/tcp/127.0.0.1/$(DEMO_PORT)) 2>/dev/null && break; sleep 0.1; done; \
	echo "== 1. validate the policy"; \
	$(BIN) validate --policy examples/demo-policy.yaml; \
	echo; echo "== 2. dry run: every decision with its reason (nothing is released)"; \
	$(DEMO_ENV) $(BIN) run --policy examples/demo-policy.yaml --output text || true; \
	echo; echo "== 3. --apply: dry run first, then the real release calls"; \
	$(DEMO_ENV) $(BIN) run --policy examples/demo-policy.yaml --apply --output text || true; \
	echo; echo "== 4. the JSON summary of a second apply run (the janitor is idempotent: nothing left to release)"; \
	$(DEMO_ENV) $(BIN) run --policy examples/demo-policy.yaml --apply | head -c 2000; echo

## test: everything CI runs
test: test-rust $(EXTRA_TESTS)

test-rust:
	$(CARGO) test --locked --all-targets

## bench: the scale benchmark (not part of `make test`): 10,000 instances, 50 ms per call; report in target/bench/report.md
bench:
	@[ -x /usr/bin/time ] || { [ "$$(id -u)" = 0 ] && apt-get install -y -qq time >/dev/null; } || { echo "bench needs GNU time at /usr/bin/time (apt-get install time)"; exit 1; }
	$(CARGO) bench --locked --bench scale

clean-tools:
	rm -rf .tools

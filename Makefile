# The demo pins the clock (JANITOR_NOW and the inventory's "now") so its output is the same every day.
# The two set-up commands: `make demo` and `make test`. Everything they need is installed into .tools/.
SHELL := /bin/bash
CARGO ?= cargo
BIN := target/debug/aliyun-janitor
SIM := target/debug/aliyun-sim
DEMO_PORT ?= 18931
DEMO_ENV := ALIBABA_CLOUD_ACCESS_KEY_ID=demo-access-key ALIBABA_CLOUD_ACCESS_KEY_SECRET=demo-secret-do-not-use \
	JANITOR_MARK_KEY=demo-mark-key-emulator-only-0001 \
	JANITOR_ENDPOINT=http://127.0.0.1:$(DEMO_PORT) JANITOR_NOW=2026-11-25T12:00:00Z RUST_LOG=warn
# Four days after the demo's "now": past the default 3-day grace of the marks made on day 0.
DEMO_DAY4 := 2026-11-29T12:00:00Z

.PHONY: all demo test test-rust bench clean-tools install install-sim

all: build

-include mk/*.mk

## demo: start the emulator with a sample inventory; dry-run, mark (day 0), then release after the grace (day 4).
##   The plan is printed as tables; the apply steps pass --yes (a script answers no prompt).
demo:
	$(CARGO) build --workspace --quiet
	@set -e; \
	$(SIM) --inventory examples/demo-inventory.json --listen 127.0.0.1:$(DEMO_PORT) 2>/dev/null & SIM=$$!; \
	trap "kill $$SIM 2>/dev/null" EXIT; \
	for i in $$(seq 50); do (echo > /dev/tcp/127.0.0.1/$(DEMO_PORT)) 2>/dev/null && break; sleep 0.1; done; \
	echo "== 1. validate the policy"; \
	$(BIN) validate --policy examples/demo-policy.yaml; \
	echo; echo "== 2. day 0, dry run: every decision with its reason, grouped by outcome (nothing is changed)"; \
	$(DEMO_ENV) $(BIN) run --policy examples/demo-policy.yaml --output table || true; \
	echo; echo "== 3. day 0, --apply: first matches are marked (janitor:release-after), owners are told; no-grace rules release"; \
	$(DEMO_ENV) $(BIN) run --policy examples/demo-policy.yaml --apply --yes --output table || true; \
	echo; echo "== 4. day 4 (JANITOR_NOW=$(DEMO_DAY4)), --apply: the grace has passed; what still matches is released"; \
	$(DEMO_ENV) JANITOR_NOW=$(DEMO_DAY4) $(BIN) run --policy examples/demo-policy.yaml --apply --yes --output table || true; \
	echo; echo "== 5. a second day-4 run, its JSON summary stored and rendered by \`report\` (idempotent: nothing left to release)"; \
	mkdir -p target/demo; \
	$(DEMO_ENV) JANITOR_NOW=$(DEMO_DAY4) $(BIN) run --policy examples/demo-policy.yaml --apply --yes --output json > target/demo/summary.json || true; \
	$(BIN) report target/demo/summary.json --output table; \
	echo; echo "== done: the summary is in target/demo/summary.json (\`$(BIN) report target/demo/summary.json --output markdown\` for a ticket)"

## install: put aliyun-janitor on your PATH (~/.cargo/bin) from this checkout
install:
	$(CARGO) install --locked --path .

## install-sim: put the emulator, aliyun-sim, on your PATH too (the quick start runs against it)
install-sim:
	$(CARGO) install --locked --path sim

## test: everything CI runs
test: test-rust $(EXTRA_TESTS)

test-rust:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --locked --workspace --all-targets -- -D warnings
	$(CARGO) test --locked --workspace --all-targets

## bench: the scale benchmark (not part of `make test`): 10,000 instances, 50 ms per call; report in target/bench/report.md
bench:
	@[ -x /usr/bin/time ] || { [ "$$(id -u)" = 0 ] && apt-get install -y -qq time >/dev/null; } || { echo "bench needs GNU time at /usr/bin/time (apt-get install time)"; exit 1; }
	$(CARGO) build --release --locked
	@mkdir -p target/bench && cp target/release/aliyun-janitor target/bench/aliyun-janitor
	JANITOR_BENCH_BINARY=$(CURDIR)/target/bench/aliyun-janitor $(CARGO) bench --locked --bench scale
	JANITOR_BENCH_BINARY=$(CURDIR)/target/bench/aliyun-janitor $(CARGO) bench --locked --bench org

clean-tools:
	rm -rf .tools

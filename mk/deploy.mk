# Packaging, local triggers and deployment-file checks (docs/deploy.md). Included by the Makefile.
# Every tool is installed into .tools/ on first use: PyPI (cfn-lint, aws-sam-cli, cargo-lambda, ziglang)
# and npm (@serverless-devs/s). Nothing here is run against a real cloud except `deploy` / `deploy-fc`.

TOOLS := $(CURDIR)/.tools
VENV := $(TOOLS)/venv
PIP := $(VENV)/bin/pip install --quiet --disable-pip-version-check
S_CLI := $(TOOLS)/node/node_modules/.bin/s
# Serverless Devs writes its state under $HOME/.s: keep it in .tools.
S_ENV := HOME=$(TOOLS)/s-home
PYTHON ?= python3

# The policy shipped next to `bootstrap` in both packages (the functions read ./policy.yaml by default).
POLICY ?= deploy/policy.yaml
LAMBDA_ARM64_ZIP := target/lambda/arm64/aliyun-janitor/bootstrap.zip
LAMBDA_X86_64_ZIP := target/lambda/x86_64/aliyun-janitor/bootstrap.zip
MUSL_TARGET := x86_64-unknown-linux-musl
FC_ZIP := dist/fc.zip
# `make lambda LAMBDA_PROFILE=` builds debug packages (faster, for trying the plumbing).
LAMBDA_PROFILE ?= --release

EVENT ?= events/manual-dry-run.json
MODE ?= cli
INVOKE_PORT ?= 18932
INVOKE_FC_PORT ?= 18933
INVOKE_INVENTORY ?= examples/demo-inventory.json
INVOKE_POLICY ?= examples/demo-policy.yaml
# The demo's pinned clock, so the output is the same every day.
INVOKE_NOW ?= 2026-11-25T12:00:00Z

EXTRA_TESTS += lint-deploy

.PHONY: build lambda fc deploy deploy-fc invoke-local lint-deploy measure

## build: the release binary for this machine (target/release/aliyun-janitor)
build:
	$(CARGO) build --release --locked

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.lint-tools: | $(VENV)/bin/python
	$(PIP) "cfn-lint>=1.20,<2" "aws-sam-cli>=1.120,<2"
	touch $@

$(VENV)/.lambda-tools: | $(VENV)/bin/python
	$(PIP) "cargo-lambda>=1.8,<2" "ziglang>=0.13"
	touch $@

$(S_CLI):
	npm install --silent --no-audit --no-fund --prefix $(TOOLS)/node "@serverless-devs/s@^3"

## lambda: bootstrap.zip (bootstrap + policy.yaml) for arm64 and x86_64, cross-built with cargo-lambda + zig
lambda: $(VENV)/.lambda-tools
	rustup target add aarch64-unknown-linux-gnu x86_64-unknown-linux-gnu
	PATH="$(VENV)/bin:$$PATH" cargo lambda build $(LAMBDA_PROFILE) --locked --arm64 --output-format zip --lambda-dir target/lambda/arm64
	PATH="$(VENV)/bin:$$PATH" cargo lambda build $(LAMBDA_PROFILE) --locked --x86-64 --output-format zip --lambda-dir target/lambda/x86_64
	$(PYTHON) scripts/zip-put.py $(LAMBDA_ARM64_ZIP) $(POLICY) policy.yaml
	$(PYTHON) scripts/zip-put.py $(LAMBDA_X86_64_ZIP) $(POLICY) policy.yaml
	@ls -l $(LAMBDA_ARM64_ZIP) $(LAMBDA_X86_64_ZIP)

## fc: dist/fc.zip for Function Compute: a static x86_64 musl `bootstrap` (FC's Debian 10 has glibc 2.28) + policy.yaml
fc:
	rustup target add $(MUSL_TARGET)
	@command -v musl-gcc >/dev/null || { \
		if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq musl-tools; \
		else echo "musl-gcc is missing: install musl-tools (apt-get install musl-tools)"; exit 1; fi; }
	CC_x86_64_unknown_linux_musl=musl-gcc $(CARGO) build --release --locked --target $(MUSL_TARGET)
	rm -rf dist/fc $(FC_ZIP)
	mkdir -p dist/fc
	cp target/$(MUSL_TARGET)/release/aliyun-janitor dist/fc/bootstrap
	cp $(POLICY) dist/fc/policy.yaml
	cd dist/fc && $(PYTHON) -m zipfile -c ../fc.zip bootstrap policy.yaml
	@file dist/fc/bootstrap 2>/dev/null || true
	@ls -l $(FC_ZIP)

## deploy: `sam deploy --guided` of template.yaml with the arm64 package (never run in CI)
deploy: $(VENV)/.lint-tools
	@test -f $(LAMBDA_ARM64_ZIP) || { echo "run 'make lambda' first"; exit 1; }
	@test -z "$$CI" || { echo "deploy is never run in CI"; exit 1; }
	SAM_CLI_TELEMETRY=0 $(VENV)/bin/sam deploy --guided --template-file template.yaml --capabilities CAPABILITY_IAM --resolve-s3

## deploy-fc: `s deploy` of s.yaml, reserved concurrency 1 included (needs JANITOR_FC_ROLE_ARN; never run in CI)
deploy-fc: $(S_CLI)
	@test -f $(FC_ZIP) || { echo "run 'make fc' first"; exit 1; }
	@test -z "$$CI" || { echo "deploy-fc is never run in CI"; exit 1; }
	@test -n "$$JANITOR_FC_ROLE_ARN" || { echo "set JANITOR_FC_ROLE_ARN=acs:ram::<account-id>:role/<role> (docs/deploy.md)"; exit 1; }
	$(S_CLI) deploy -y

## invoke-local EVENT=events/x.json [MODE=cli|fc|lambda]: run the handler on a sample event against the emulator
##   cli: `aliyun-janitor run --event`; fc: the FC HTTP server + POST /invoke; lambda: cargo-lambda's own
##   Runtime API emulator (`cargo lambda watch` + `cargo lambda invoke`, installed into .tools/venv).
invoke-local:
	$(CARGO) build --workspace --quiet
	@if [ "$(MODE)" = lambda ]; then $(MAKE) --no-print-directory $(VENV)/.lambda-tools; fi
	@set -e; \
	$(SIM) --inventory $(INVOKE_INVENTORY) --listen 127.0.0.1:$(INVOKE_PORT) 2>/dev/null & SIM=$$!; \
	trap 'kill $$SIM $$FC 2>/dev/null; [ -n "$$WATCH" ] && kill -- -$$WATCH 2>/dev/null; true' EXIT; \
	for i in $$(seq 50); do (echo > /dev/tcp/127.0.0.1/$(INVOKE_PORT)) 2>/dev/null && break; sleep 0.1; done; \
	export JANITOR_ENDPOINT=http://127.0.0.1:$(INVOKE_PORT) JANITOR_POLICY=$(INVOKE_POLICY) JANITOR_NOW=$(INVOKE_NOW) RUST_LOG=warn; \
	if [ "$(MODE)" = fc ]; then \
		FC_FUNCTION_NAME=aliyun-janitor FC_CUSTOM_LISTEN_PORT=$(INVOKE_FC_PORT) $(BIN) & FC=$$!; \
		for i in $$(seq 50); do (echo > /dev/tcp/127.0.0.1/$(INVOKE_FC_PORT)) 2>/dev/null && break; sleep 0.1; done; \
		curl -sS -D - -X POST --data-binary @$(EVENT) -H 'x-fc-request-id: invoke-local' \
			-H 'x-fc-access-key-id: demo-access-key' -H 'x-fc-access-key-secret: demo-secret-do-not-use' \
			http://127.0.0.1:$(INVOKE_FC_PORT)/invoke; echo; \
	elif [ "$(MODE)" = lambda ]; then \
		PATH="$(VENV)/bin:$$PATH" setsid cargo lambda watch --ignore-changes --invoke-address 127.0.0.1 --invoke-port $(INVOKE_FC_PORT) \
			--env-var JANITOR_ENDPOINT=$$JANITOR_ENDPOINT --env-var JANITOR_POLICY=$(CURDIR)/$(INVOKE_POLICY) \
			--env-var JANITOR_NOW=$(INVOKE_NOW) --env-var RUST_LOG=warn \
			--env-var ALIBABA_CLOUD_ACCESS_KEY_ID=demo-access-key --env-var ALIBABA_CLOUD_ACCESS_KEY_SECRET=demo-secret-do-not-use \
			> target/lambda-watch.log 2>&1 & WATCH=$$!; \
		for i in $$(seq 600); do (echo > /dev/tcp/127.0.0.1/$(INVOKE_FC_PORT)) 2>/dev/null && break; sleep 0.2; done; \
		PATH="$(VENV)/bin:$$PATH" cargo lambda invoke aliyun-janitor --invoke-address 127.0.0.1 --invoke-port $(INVOKE_FC_PORT) \
			--data-file $(EVENT) || true; echo; \
	else \
		ALIBABA_CLOUD_ACCESS_KEY_ID=demo-access-key ALIBABA_CLOUD_ACCESS_KEY_SECRET=demo-secret-do-not-use \
			$(BIN) run --event $(EVENT) --output text || true; \
	fi

## lint-deploy: cfn-lint + sam validate --lint on template.yaml, `s preview` on s.yaml (part of `make test`)
lint-deploy: $(VENV)/.lint-tools $(S_CLI)
	SAM_CLI_TELEMETRY=0 $(VENV)/bin/cfn-lint template.yaml
	SAM_CLI_TELEMETRY=0 $(VENV)/bin/sam validate --lint --template-file template.yaml
	$(PYTHON) -m json.tool deploy/ram-policy.json > /dev/null
	for f in deploy/ram-org-policy.json deploy/cloudflow-trust-policy.json deploy/cloudflow-invoke-policy.json; do \
		$(PYTHON) -m json.tool $$f > /dev/null || exit 1; done
	$(S_ENV) JANITOR_FC_ROLE_ARN=acs:ram::123456789012:role/aliyun-janitor $(S_CLI) preview > /dev/null
	@echo "lint-deploy: template.yaml, s.yaml and the deploy/ RAM policies are valid (deploy/cloudflow.yaml: tests/e2e/workflows.rs)"

## measure: release binary size, cold start of both serverless modes, peak memory of the demo runs (docs/deploy.md)
measure: build
	$(CARGO) build --release --locked -p aliyun-sim
	@test -x /usr/bin/time || { \
		if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq time; \
		else echo "GNU time is missing: install the 'time' package"; exit 1; fi; }
	$(PYTHON) scripts/measure.py --binary target/release/aliyun-janitor
	@if [ -x target/$(MUSL_TARGET)/release/aliyun-janitor ]; then \
		echo; echo "FC package binary (static musl, from 'make fc'):"; \
		$(PYTHON) scripts/measure.py --binary target/$(MUSL_TARGET)/release/aliyun-janitor; fi

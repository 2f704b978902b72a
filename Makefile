# Two entry points a fresh machine needs: `make demo` (set up, then label the bundled SMS sample) and `make test`.
# Both expect the system packages from `make deps` (cmake, clang, libclang-dev: llama.cpp and bindgen need them).

CARGO ?= cargo
ASSAY = $(CARGO) run -q -p assay --
# The PostgreSQL server the tests use (scripts/test-postgres.sh starts it on loopback with this password).
export ASSAY_TEST_POSTGRES ?= postgres://postgres:assay@127.0.0.1:5432/postgres

.PHONY: deps demo test lint bench fetch-model

deps:
	@command -v cmake >/dev/null && command -v clang >/dev/null || \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq cmake clang libclang-dev; }

fetch-model:
	$(ASSAY) model fetch smollm2-135m-instruct

demo: deps fetch-model
	$(ASSAY) label examples/sms-spam/task.toml

test: deps
	bash scripts/test-postgres.sh
	$(CARGO) test --workspace --no-fail-fast

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

bench:
	bash bench/label-throughput.sh

# Two entry points a fresh machine needs: `make demo` (set up, then label the bundled SMS sample) and `make test`.
# Both expect the system packages from `make deps` (cmake, clang, libclang-dev: llama.cpp and bindgen need them).

CARGO ?= cargo
ASSAY = $(CARGO) run -q -p assay --

.PHONY: deps demo test lint bench fetch-model

deps:
	@command -v cmake >/dev/null && command -v clang >/dev/null || \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq cmake clang libclang-dev; }

fetch-model:
	$(ASSAY) model fetch smollm2-135m-instruct

demo: deps fetch-model
	$(ASSAY) label examples/sms-spam/task.toml

test: deps
	$(CARGO) test --workspace --no-fail-fast

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

bench:
	bash bench/label-throughput.sh

# Two entry points: `make demo` (the main job) and `make test`. Each creates the
# virtual environment in .venv on first use and installs what it needs.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# torch and torchvision are pinned to releases known to work together on CPU.
TORCH_PINS := torch==2.14.1 torchvision==0.29.1
FASHION_MNIST := /usr/share/datasets/fashion-mnist

.PHONY: test demo data env clean

env: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q $(TORCH_PINS)
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

# Fashion-MNIST from the Debian package, where apt is available; otherwise the demo
# says how to point it at a torchvision root (--data-root) or download (--download).
data:
	@if [ ! -d $(FASHION_MNIST) ] && command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist || true; \
	fi

test: $(STAMP) data
	$(BIN)/python -m pip install -q --no-deps --no-build-isolation -e plugins/hwprofiles-fefet
	$(BIN)/python -m pytest -q tests plugins/hwprofiles-fefet/tests

demo: $(STAMP) data
	$(BIN)/hwprofiles demo

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache

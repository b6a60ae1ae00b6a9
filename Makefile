# Two entry points: `make demo` (the main job) and `make test`. Each creates the
# virtual environment in .venv on first use and installs what it needs.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# torch and torchvision are pinned to releases known to work together on CPU (the tested
# pair; pyproject.toml itself only asks for ranges). PyPI's Linux torch wheel brings CUDA
# libraries (several GB); TORCH_INDEX=https://download.pytorch.org/whl/cpu installs the
# CPU-only build of the same release instead.
TORCH_PINS := torch==2.14.1 torchvision==0.29.1
TORCH_INDEX ?=
FASHION_MNIST := /usr/share/datasets/fashion-mnist

.PHONY: test lint docs demo data env clean bench-study bench-speed mutation

env: $(STAMP)

$(STAMP): pyproject.toml src/hwprofiles/version.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX)) $(TORCH_PINS)
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

# Lint, format and types, as CI checks them before the tests (.pre-commit-config.yaml runs
# the same on each commit).
lint: $(STAMP)
	$(BIN)/ruff check src tests plugins benchmarks docs/gen
	$(BIN)/ruff format --check src tests plugins benchmarks docs/gen
	$(BIN)/mypy

# The documentation site (mkdocs.yml), built offline into site/ with --strict: a broken link,
# a missing anchor or an API page mkdocstrings cannot render fails it (the docs extra comes
# with dev); the MKDOCS_2 variables silence the theme's notices.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 DISABLE_MKDOCS_2_WARNING=true $(BIN)/mkdocs build --strict -d site

# Mutation testing of the noise engine (docs/testing.md): about 10-20 min on 2 cores.
mutation: $(STAMP)
	PYTHON=$(BIN)/python benchmarks/mutation.sh

demo: $(STAMP) data
	$(BIN)/hwprofiles demo

# Benchmarks (docs/benchmarks.md). The study at its CPU budget (<= 60 min on 2 cores);
# speed against clean PyTorch, aihwkit-lightning and aihwkit 1.2.0 (whose environments the
# setup script makes on first use, a multi-GB download), with the accuracy comparison on
# the study's LeNet-5 when that checkpoint exists.
STUDY_LENET5 := hwprofiles-out/study-small/checkpoints/lenet5-clean.pt

bench-study: $(STAMP) data
	$(BIN)/python benchmarks/reproduce_study.py --budget small

bench-speed: $(STAMP)
	benchmarks/setup_aihwkit_envs.sh
	$(BIN)/python benchmarks/speed.py $(if $(wildcard $(STUDY_LENET5)),--checkpoint $(STUDY_LENET5))

clean:
	rm -rf $(VENV) build dist site src/*.egg-info .pytest_cache

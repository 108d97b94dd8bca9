# The two set-up commands of the README. Both work on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: run test install install-dev clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Installs lightnets with its training extras and runs the main job: MobileNetV2 trained on the
# digits bundled with scikit-learn (defaults), then evaluated at its final epoch.
run: $(BIN)/python
	$(BIN)/pip install --quiet -e '.[train,export]'
	$(BIN)/python -m lightnets train --model mobilenet_v2 --data digits --name mobilenet_v2-digits --overwrite
	$(BIN)/python -m lightnets eval --checkpoint runs/mobilenet_v2-digits/last.pt

# Installs the development extras and runs the test suite.
test: $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	$(BIN)/python -m pytest -n 2 --dist loadgroup -q

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache

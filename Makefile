# The two set-up commands of the README. Both work on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: run install-dev test test-fast docs docs-serve clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Installs lightnets with its training extras and runs the main job: MobileNetV2 trained on the
# digits bundled with scikit-learn (defaults), evaluated at its final epoch, then exported to a
# checked ONNX file whose latency in ONNX Runtime is printed beside eager PyTorch's.
run: $(BIN)/python
	$(BIN)/pip install --quiet -e '.[train,export]'
	$(BIN)/python -m lightnets train --model mobilenet_v2 --data digits --name mobilenet_v2-digits --overwrite
	$(BIN)/python -m lightnets eval --checkpoint runs/mobilenet_v2-digits/last.pt
	$(BIN)/python -m lightnets export --checkpoint runs/mobilenet_v2-digits/last.pt \
		--output runs/mobilenet_v2-digits/model.onnx --latency 1 32

# Installs the development extras and runs the test suite. A crashed worker ends the run at once,
# naming its test: pytest-xdist 3.8's loadgroup scheduler hangs after replacing one (its issue
# #1323, fixed after that release). Workers used to die of SIGSEGV in whichever test was waiting
# on a child process: OpenVINO's CPU plugin had left the worker's signal stack unmapped (see
# lightnets.export.openvino_runtime.kept_signal_stack, now fixed). Before that was found, these
# ran in a pytest of their own, and still do: the whole documentation site's strict build ...
SITE_TEST := tests/test_docs.py::test_the_site_builds_strictly
# ... and the runs killed with SIGKILL and resumed ...
# ... and the LiteRT tests, whose converter loads JAX into the process: JAX warns that os.fork
# with its threads running may deadlock, and the training tests fork their loader processes
JAX_TESTS := tests/export/test_runtimes_litert.py tests/export/test_quantize_litert.py
# (ignored, not deselected, by the xdist run: a deselected file is still imported)
ALONE_KEPT := $(SITE_TEST) tests/train/test_resume_killed.py
ALONE := $(ALONE_KEPT) $(JAX_TESTS)
# The phone runtimes install after the rest, LiteRT last and on its own: its converter pins
# typing_extensions below 4.13 (through xdsl) where Core ML's cattrs asks for 4.14, and pip asked
# for both in one resolve backtracks through old releases of everything for minutes, then fails
# building an old MarkupSafe. Installed one after the other, pip takes typing_extensions 4.12 and
# both convert and run (tests/export/test_runtimes_*.py).
install-dev: $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	$(BIN)/pip install --quiet -e '.[executorch,coreml]'
	$(BIN)/pip install --quiet -e '.[litert]'

test: install-dev
	$(BIN)/python -m pytest -q $(ALONE)
	$(BIN)/python -m pytest -n 2 --dist loadgroup --max-worker-restart=0 -q \
		$(foreach test,$(ALONE_KEPT),--deselect $(test)) \
		$(foreach test,$(JAX_TESTS),--ignore $(test))

# The inner loop: the same, without the tests marked slow (trainings, torchrun, run locks, the
# README's examples, anything over ~5 s); `make test` still runs everything.
test-fast: install-dev
	$(BIN)/python -m pytest -q -m "not slow" $(JAX_TESTS)
	$(BIN)/python -m pytest -n 2 --dist loadgroup --max-worker-restart=0 -q -m "not slow" \
		$(foreach test,$(JAX_TESTS),--ignore $(test))

# Installs the documentation tools and builds the site into site/; strict: a broken link, a
# missing anchor or an API reference that does not resolve fails the build (as the test suite's
# tests/test_docs.py does).
docs: $(BIN)/python
	$(BIN)/pip install --quiet -e '.[docs]'
	$(BIN)/python -m mkdocs build --strict

# The same site served at http://127.0.0.1:8000, rebuilt on every edit.
docs-serve: $(BIN)/python
	$(BIN)/pip install --quiet -e '.[docs]'
	$(BIN)/python -m mkdocs serve --strict

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache site

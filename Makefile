# Two commands do all the set-up on a fresh machine:  `make demo`  and  `make test`.
#
# The virtual environment sees the interpreter's own site-packages, so a torch that is
# already installed (CPU or CUDA build) is kept.  Without one, TORCH_SPEC is installed:
# on machines without CUDA point pip at a CPU build (e.g. PIP_FIND_LINKS / PIP_INDEX_URL)
# so that the multi-GB CUDA build is not downloaded.
PYTHON     ?= python3
VENV       ?= .venv
TORCH_SPEC ?= torch==2.13.0
PY         := $(VENV)/bin/python
PIP        := $(PY) -m pip --disable-pip-version-check
OUT        ?= outputs/demo
PYTEST_ARGS ?=

.PHONY: demo test test-slow bench clean install

$(VENV)/.torch:
	@test -x $(PY) || $(PYTHON) -m venv --system-site-packages $(VENV)
	@if $(PY) -c "import torch" 2>/dev/null; then \
	  echo "keeping installed torch $$($(PY) -c 'import torch; print(torch.__version__)')"; \
	else \
	  $(PIP) install "$(TORCH_SPEC)"; \
	fi
	@touch $@

$(VENV)/.installed: $(VENV)/.torch pyproject.toml
	$(PIP) install -q -e ".[preprocess]"
	@touch $@

$(VENV)/.test-installed: $(VENV)/.installed pyproject.toml
	$(PIP) install -q -e ".[preprocess,test]"
	# fastMRI is the reference our parity tests compare with; --no-deps keeps torchvision out.
	$(PIP) install -q --no-deps "fastmri==0.3.0"
	@touch $@

install: $(VENV)/.installed

demo: $(VENV)/.installed
	$(PY) examples/demo.py --out $(OUT)

test: $(VENV)/.test-installed
	$(PY) -m pytest -q $(PYTEST_ARGS)

test-slow: $(VENV)/.test-installed
	$(PY) -m pytest -q -m slow $(PYTEST_ARGS)

bench: $(VENV)/.test-installed
	$(PY) -m benchmarks.run

clean:
	rm -rf $(VENV) outputs .pytest_cache

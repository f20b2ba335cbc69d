# One entry point. The first target that needs Python creates .venv and installs the pinned stack.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: site serve lab test bench lock sysdeps clean

$(STAMP): pyproject.toml constraints.txt
	PYTHON=$(PYTHON) bash tools/sysdeps.sh --python-only
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# torch and torchvision first, by pip: this machine keeps their wheels on disk.
	$(BIN)/pip install -q -c constraints.txt torch torchvision
	$(BIN)/pip install -q -c constraints.txt -e .
	touch $(STAMP)

sysdeps:
	bash tools/sysdeps.sh

site: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

serve: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve

lab: $(STAMP)
	$(BIN)/jupyter lab lessons/

test: sysdeps $(STAMP) models
	$(BIN)/python -m pytest

bench: sysdeps $(STAMP) models
	$(BIN)/python -m bench

# Rewrite constraints.txt from the working venv (after changing a pin in pyproject.toml).
lock:
	$(BIN)/pip freeze --exclude-editable | grep -v '^-e' > constraints.txt

clean:
	rm -rf site build lessons/artifacts firmware/build .cache

# --- models (issue 7): keyword-spotting data and int8 models; the firmware depends on these files ---
# Each stage reruns only when its inputs changed (make compares file times).
KWS    := build/kws
KWS_PY := $(BIN)/python tools/build_kws.py
.PHONY: models
.PRECIOUS: $(KWS)/kws_%_float.pt
models: $(KWS)/kws_cnn_int8.tflite $(KWS)/kws_dscnn_int8.tflite $(KWS)/test_set.npz

$(KWS)/audio.npz: snippets/kws_data.py tools/build_kws.py | $(STAMP)
	$(KWS_PY) audio
$(KWS)/features.npz $(KWS)/test_set.npz &: $(KWS)/audio.npz snippets/mfcc.py snippets/kws_data.py tools/build_kws.py
	$(KWS_PY) features
$(KWS)/kws_%_float.pt: $(KWS)/features.npz snippets/kws_nets.py tools/build_kws.py
	$(KWS_PY) train $*
$(KWS)/kws_%_int8.tflite: $(KWS)/kws_%_float.pt snippets/litert_int8.py snippets/tflite_inspect.py tools/build_kws.py
	$(KWS_PY) convert $*

# --- firmware (issue 8): host build + both STM32F407 ELFs for the KWS CNN; tests in tests/test_firmware*.py ---
.PHONY: firmware firmware-run
firmware: sysdeps models
	$(MAKE) -C firmware PYTHON=$(abspath $(BIN)/python)
firmware-run: firmware
	$(MAKE) -C firmware run PYTHON=$(abspath $(BIN)/python)

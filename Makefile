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

# JupyterLab on this machine only (127.0.0.1), no browser (headless machines: open the printed link);
# as root (containers, CI runners) it needs --allow-root. `make lab LAB_PORT=8890` for another port.
LAB_PORT ?= 8888
lab: $(STAMP)
	$(BIN)/jupyter lab --no-browser --ip=127.0.0.1 --port=$(LAB_PORT) \
		$(if $(filter 0,$(shell id -u)),--allow-root) lessons/

test: sysdeps $(STAMP) models
	$(BIN)/python -m pytest

bench: sysdeps $(STAMP) models
	$(BIN)/python -m bench

# The firmware's differential test and fuzzer at length (issue 12): 3000 random models against TFLM, 10000
# mutations per seed over both kernel sets (the MLPerf-shaped models join when built). About 10 minutes.
.PHONY: fuzz
fuzz: sysdeps $(STAMP) models
	FIRMWARE_RANDOM_MODELS=3000 FIRMWARE_FUZZ_ITERATIONS=10000 $(BIN)/python -m pytest -q \
		tests/test_firmware_random.py tests/test_firmware_fuzz.py

# The torchvision zoo (issue 14): ~27 models, both exporters, injected faults; prints the table.
.PHONY: zoo
zoo: $(STAMP)
	$(BIN)/python -m tools.zoo

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
models: $(KWS)/kws_cnn_int8.tflite $(KWS)/kws_dscnn_int8.tflite $(KWS)/test_set.npz mlperf-models

$(KWS)/audio.npz: snippets/kws_data.py tools/build_kws.py | $(STAMP)
	$(KWS_PY) audio
$(KWS)/features.npz $(KWS)/test_set.npz &: $(KWS)/audio.npz snippets/mfcc.py snippets/kws_data.py tools/build_kws.py
	$(KWS_PY) features
$(KWS)/kws_%_float.pt: $(KWS)/features.npz snippets/kws_nets.py tools/build_kws.py
	$(KWS_PY) train $*
$(KWS)/kws_%_int8.tflite: $(KWS)/kws_%_float.pt snippets/litert_int8.py snippets/tflite_inspect.py tools/build_kws.py
	$(KWS_PY) convert $*

# --- MLPerf Tiny-shaped int8 models (issue 12): seeded, untrained, through the book's conversion route;
# about 2 min for all four on 2 cores (vww_mobilenet ~35 s, the others ~20 s each); cached like the KWS ones
MLPERF := build/mlperf
MLPERF_MODELS := kws_dscnn vww_mobilenet ic_resnet8 ad_autoencoder
.PHONY: mlperf-models
mlperf-models: $(foreach m,$(MLPERF_MODELS),$(MLPERF)/$(m)_int8.tflite $(MLPERF)/$(m)_inputs.npy)
$(MLPERF)/%_int8.tflite $(MLPERF)/%_inputs.npy &: tools/build_mlperf.py snippets/litert_int8.py | $(STAMP)
	$(BIN)/python tools/build_mlperf.py $*

# --- firmware (issue 8): host build + both STM32F407 ELFs for the KWS CNN; tests in tests/test_firmware*.py ---
.PHONY: firmware firmware-run
firmware: sysdeps models
	$(MAKE) -C firmware PYTHON=$(abspath $(BIN)/python)
firmware-run: firmware
	$(MAKE) -C firmware run PYTHON=$(abspath $(BIN)/python)

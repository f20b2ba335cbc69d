# One entry point. The first target that needs Python creates .venv and installs the pinned stack.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: site serve lab test bench lock sysdeps clean

$(STAMP): pyproject.toml constraints.txt
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

test: sysdeps $(STAMP)
	$(BIN)/python -m pytest

bench: sysdeps $(STAMP)
	$(BIN)/python -m bench

# Rewrite constraints.txt from the working venv (after changing a pin in pyproject.toml).
lock:
	$(BIN)/pip freeze --exclude-editable | grep -v '^-e' > constraints.txt

clean:
	rm -rf site build lessons/artifacts firmware/build .cache

# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# Debian packages the tests and the demo need (off-screen OpenGL for VTK snapshots; Xvfb and the xcb libraries
# Qt needs for the desktop app and its 3D-view test); installed when missing.
SYSTEM_PACKAGES := libegl1 libgl1-mesa-dri libglx-mesa0 xvfb libxcb-icccm4 libxcb-keysyms1 libxcb-image0 \
	libxcb-render-util0 libxkbcommon-x11-0 libxcb-xinerama0 libxcb-cursor0 libxcb-shape0 libxcb-randr0 libxcb-xkb1

.PHONY: install demo test lint sysdeps bench clean app

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

sysdeps:
	@missing=""; for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing system packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

demo: $(STAMP) sysdeps
	$(BIN)/twin demo --out demo-output

# The desktop workstation on the bundled sample case (needs a display: a desktop, ssh -X, or xvfb-run).
app: $(STAMP) sysdeps
	$(BIN)/twin app --sample

lint: $(STAMP)
	$(BIN)/ruff check .

test: $(STAMP) sysdeps
	$(BIN)/ruff check .
	OPENBLAS_NUM_THREADS=1 $(BIN)/python -m pytest

bench: $(STAMP)
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) demo-output .pytest_cache build *.egg-info

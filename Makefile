# seqtext's commands. Each target makes its own virtual environment first (.venv, from pyproject.toml),
# so a fresh clone needs nothing but Python 3.11+ and a package index.
#   make demo    the main jobs end to end: train a small SST-2 classifier (a few minutes), evaluate it on
#                SST-2's test split, and label two sentences showing the words its attention weighed; then
#                train a character model on Tiny Shakespeare for 600 steps, evaluate it, and continue a prompt;
#                then forecast sunspots (train, evaluate 5 years ahead against baselines, plot)
#   make test    a strict build of the docs, then the test suite (what .ci/run runs)
#   make docs    the documentation site (mkdocs.yml, docs/) into site/; a broken link or anchor fails it
#   make vocab   rebuild the tokenizers in vocab/ from the recipes
#   make pretrain  train the review language models, forward and backward, into runs/reviews-lm (long:
#                48 minutes each on 2 cores; PRETRAIN_JOBS=2 runs both at once, a thread each)
#   make bench   rerun every benchmark and rewrite bench/RESULTS.md (long: see the target)

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

# Named datasets come from $SEQTEXT_DATA; when it is unset, from ../shared/data if that folder exists,
# else from the Hugging Face Hub. With local data, keep `datasets` off the network: otherwise it retries
# for ~25 s before failing and sends telemetry even for local files.
ifeq ($(origin SEQTEXT_DATA), undefined)
  ifneq ($(wildcard ../shared/data),)
    export SEQTEXT_DATA := $(abspath ../shared/data)
  endif
endif
# Word vectors named in recipes (glove.6B.50d) come from $SEQTEXT_VECTORS; when unset, ../shared/vectors if it exists.
ifeq ($(origin SEQTEXT_VECTORS), undefined)
  ifneq ($(wildcard ../shared/vectors),)
    export SEQTEXT_VECTORS := $(abspath ../shared/vectors)
  endif
endif
ifdef SEQTEXT_DATA
  export HF_HUB_OFFLINE ?= 1
  export HF_DATASETS_OFFLINE ?= 1
endif

.PHONY: demo test docs vocab bench pretrain

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check torch==2.13.0  # the CPU wheel, before the range in pyproject.toml
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $@

DEMO_RUN := runs/quickstart
DEMO_LM := runs/quickstart-lm
DEMO_SERIES := runs/quickstart-sunspots

demo: $(BIN)/.installed
	$(BIN)/seqtext data recipes/sst2.yaml
	rm -rf $(DEMO_RUN)  # the demo's own run directory, remade each time
	$(BIN)/seqtext train recipes/sst2.yaml --out $(DEMO_RUN) --train.epochs 2
	$(BIN)/seqtext evaluate $(DEMO_RUN) --split test
	$(BIN)/seqtext predict $(DEMO_RUN) --explain \
		"A gorgeous, witty, seductive movie." \
		"The plot is nothing but boilerplate clichés from start to finish."
	rm -rf $(DEMO_LM)
	$(BIN)/seqtext train recipes/shakespeare.yaml --out $(DEMO_LM) --max-steps 600
	$(BIN)/seqtext evaluate $(DEMO_LM)
	$(BIN)/seqtext generate $(DEMO_LM) --prompt "ROMEO:" --length 300 --temperature 0.8 --seed 0
	rm -rf $(DEMO_SERIES)
	$(BIN)/seqtext train recipes/sunspots.yaml --out $(DEMO_SERIES)
	$(BIN)/seqtext evaluate $(DEMO_SERIES) --horizon 5 --plot $(DEMO_SERIES)/forecast.png

# The docs first: a broken link, anchor or nav entry fails the build. Not --quiet: it silences the
# warnings that --strict counts, and the build passes whatever they say.
test: $(BIN)/.installed
	site=$$(mktemp -d) && NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir $$site; \
		status=$$?; rm -rf $$site; exit $$status
	@command -v chromium > /dev/null || [ "$$(id -u)" != 0 ] || ! command -v apt-get > /dev/null \
		|| DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium > /dev/null 2>&1 || true
	@if command -v chromium > /dev/null; then $(BIN)/python -m pytest -q; else \
		echo "make test: no Chromium here, so tests/test_browser.py is left out (apt-get install chromium runs it)"; \
		$(BIN)/python -m pytest -q --ignore=tests/test_browser.py; fi

docs: $(BIN)/.installed
	$(BIN)/mkdocs build --strict --site-dir site

PRETRAIN_OUT ?= runs/reviews-lm
PRETRAIN_JOBS ?= 1

pretrain: $(BIN)/.installed
ifeq ($(PRETRAIN_JOBS),2)
	OMP_NUM_THREADS=1 $(BIN)/seqtext train recipes/reviews-lm.yaml --out $(PRETRAIN_OUT)/forward & forward=$$!; \
	OMP_NUM_THREADS=1 $(BIN)/seqtext train recipes/reviews-lm.yaml --data.reverse true --out $(PRETRAIN_OUT)/backward & backward=$$!; \
	wait $$forward; status=$$?; wait $$backward && exit $$status
else
	$(BIN)/seqtext train recipes/reviews-lm.yaml --out $(PRETRAIN_OUT)/forward
	$(BIN)/seqtext train recipes/reviews-lm.yaml --data.reverse true --out $(PRETRAIN_OUT)/backward
endif

vocab: $(BIN)/.installed
	for recipe in recipes/*.yaml; do grep -q '^tokenizer:' $$recipe || continue; \
		grep -q 'make vocab: built by' $$recipe && continue; \
		$(BIN)/seqtext tokenizer $$recipe || exit 1; done

bench: $(BIN)/.installed  # long (see README, Results): every benchmark, one after another; `python -m bench list`
	$(BIN)/python -m bench full

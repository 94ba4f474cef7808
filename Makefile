# seqtext's commands. Each target makes its own virtual environment first (.venv, from pyproject.toml),
# so a fresh clone needs nothing but Python 3.11+ and a package index.
#   make demo    the main jobs end to end: train a small SST-2 classifier (a few minutes), evaluate it on
#                SST-2's test split, and label two sentences showing the words its attention weighed; then
#                train a character model on Tiny Shakespeare for 600 steps, evaluate it, and continue a prompt;
#                then forecast sunspots (train, evaluate 5 years ahead against baselines, plot)
#   make test    the test suite (what .ci/run runs)
#   make vocab   rebuild the tokenizers in vocab/ from the recipes
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
ifdef SEQTEXT_DATA
  export HF_HUB_OFFLINE ?= 1
  export HF_DATASETS_OFFLINE ?= 1
endif

.PHONY: demo test vocab bench

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
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

test: $(BIN)/.installed
	$(BIN)/python -m pytest -q

vocab: $(BIN)/.installed
	for recipe in recipes/*.yaml; do grep -q '^tokenizer:' $$recipe || continue; $(BIN)/seqtext tokenizer $$recipe || exit 1; done

bench: $(BIN)/.installed  # long (see README, Results); each script can also run alone
	$(BIN)/python bench/tokenize_batch.py
	$(BIN)/python bench/train_throughput.py --steps 15 --repeats 3
	$(BIN)/python bench/quality.py sst2 --seeds 0 1 2
	$(BIN)/python bench/quality.py trec --seeds 0 1 2
	$(BIN)/python bench/quality.py imdb --seeds 0
	$(BIN)/python bench/ablation.py --epochs 3
	$(BIN)/python bench/baseline_quality.py sst2 --seed 0
	rm -rf runs/shakespeare && $(BIN)/seqtext train recipes/shakespeare.yaml --out runs/shakespeare
	$(BIN)/python bench/lm_curve.py runs/shakespeare
	$(BIN)/python bench/lm_speed.py
	$(BIN)/python bench/forecast.py --seeds 0 1 2 --horizon 10
	$(BIN)/python bench/memory.py

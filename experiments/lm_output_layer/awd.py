"""AWD-LSTM's regularisers (Merity et al. 2017) on the review language model, each by validation perplexity
at a fixed budget.

recipes/reviews-lm.yaml's model (word vocabulary of 25,000, embedding 128, one LSTM of 256, adaptive
softmax, dropout 0.1 on the embeddings and the LSTM output) as it is, then with each option alone, then all
three, each trained for the same minutes on IMDB's train reviews with its schedule fitted to them (the last
2% of the reviews validate), seed 0, one after another in one run (experiments/lm_output_layer/lm_output.py's loop):

- embedding dropout: whole words dropped (rows of the embedding table);
- locked dropout: one dropout mask per sequence, the same at every step;
- weight drop: DropConnect on the hidden-to-hidden weights, one mask per batch.

    python experiments/lm_output_layer/awd.py [--minutes 3]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from lm_output import measure_all, table  # noqa: E402

from bench.common import write_section  # noqa: E402

OPTIONS = {
    "recipe": {},
    "embedding dropout 0.1": {"embedding_dropout": 0.1},
    "locked dropout": {"locked_dropout": True},
    "weight drop 0.2": {"weight_drop": 0.2},
    "all three": {"embedding_dropout": 0.1, "locked_dropout": True, "weight_drop": 0.2},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=3.0, help="training minutes for each variant")
    parser.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md as it is")
    args = parser.parse_args()
    results = measure_all(OPTIONS, args.minutes)
    body = (
        "### AWD-LSTM's regularisers on the review language model\n\n"
        f"`python experiments/lm_output_layer/awd.py --minutes {args.minutes:g}`: recipes/reviews-lm.yaml's model (25,000 words, embedding 128, "
        f"LSTM 256, adaptive softmax, dropout 0.1, batch 64 x 70 tokens), {args.minutes:g} minutes each on IMDB's train "
        "reviews with the schedule fitted to them, validation on the last 2% of them, seed 0. Options: "
        + "; ".join(
            f"{name}: `{json.dumps(options) if options else 'as recipes/reviews-lm.yaml'}`" for name, options in OPTIONS.items()
        )
        + ".\n\n"
        + table(results, "variant", "recipe")
    )
    if not args.no_write:
        write_section("awd", body)


if __name__ == "__main__":
    main()

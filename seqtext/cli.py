"""``seqtext <command>``: maps arguments to the functions that do the work, and errors to one line.

Results go to stdout (``--json`` for machines), progress and warnings to stderr. A user error prints
``seqtext: error: <one line>`` and exits with status 2; inputs are checked before anything is written.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from seqtext.errors import ConfigError, DataError, Interrupted, SeqtextError
from seqtext.readers import BAD_ROW_POLICIES, FORMATS, utf8_problem

RECIPE_SUFFIXES = (".yaml", ".yml")
OVERRIDES = "Extra options --SECTION.FIELD VALUE override the recipe (e.g. --train.lr 1e-3, --model.pooling max)."


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse prints usage and the error; one line is enough
        raise ConfigError(f"{message} (see {self.prog} --help)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="seqtext",
        description="Sequence models on text: data, tokenizers, LSTM / GRU classifiers, language models, forecasters.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)

    data = commands.add_parser(
        "data",
        help="load a dataset, build or load its tokenizer, bucket it into batches, and summarise",
        description="Load a dataset, build or load its tokenizer, bucket it into batches, and print a summary. " + OVERRIDES,
    )
    _add_source_options(
        data,
        "RECIPE_OR_DATA",
        "a recipe (.yaml), a named dataset (sst2, imdb, trec, tinyshakespeare), a file, a folder of split files, or a Hub id",
    )
    data.add_argument("--json", action="store_true", help="print the summary as JSON")

    tokenizer = commands.add_parser(
        "tokenizer",
        help="train a tokenizer on a dataset's train split and save it as tokenizer.json",
        description="Train the tokenizer a recipe describes on its train split and save it. "
        "`make vocab` rebuilds every vocabulary in vocab/ this way. " + OVERRIDES,
    )
    _add_source_options(tokenizer, "RECIPE_OR_DATA", "a recipe (.yaml) or a dataset, as for `seqtext data`")
    tokenizer.add_argument("--out", help="where to write the tokenizer (default: the recipe's tokenizer.path)")

    train = commands.add_parser(
        "train",
        help="train a recipe's model (classifier, language model, forecaster); keeps the best and the last checkpoint",
        description="Train the recipe's model, validating every train.eval_every steps, and keep DIR/best and DIR/last. "
        + OVERRIDES,
    )
    _add_source_options(
        train,
        "RECIPE",
        "a recipe (.yaml); optional with --resume, which uses the run's own, and with "
        "--data, which trains seqtext's default classifier (`seqtext recipe default` prints it)",
        optional=True,
    )
    train.add_argument("--out", metavar="DIR", help="run directory (default: runs/RECIPE_NAME, or runs/DATA_NAME); "
                       "must not hold a run")  # fmt: skip
    train.add_argument("--data", metavar="NAME_OR_PATH", help="train on this dataset instead of the recipe's; the "
                       "vocabulary is then built from its training split")  # fmt: skip
    train.add_argument(
        "--keep-tokenizer",
        action="store_true",
        help="with --data, keep the recipe's tokenizer file instead of building one from the new data",
    )
    train.add_argument("--max-steps", type=int, metavar="N", help="stop after N optimizer steps")
    train.add_argument("--resume", metavar="DIR", help="continue the run in DIR from DIR/last, exactly")
    train.add_argument("--json", action="store_true", help="print the result as JSON")

    evaluate = commands.add_parser(
        "evaluate",
        help="a classifier's accuracy, macro-F1 and confusion matrix; a language model's bits/char; a forecaster's RMSE",
        description="Evaluate a checkpoint on held-out data: by default the held-out split of the dataset it was trained on.",
    )
    evaluate.add_argument("checkpoint", metavar="CHECKPOINT", help="a run directory (its best/) or a checkpoint directory")
    evaluate.add_argument(
        "--data", metavar="NAME_OR_PATH", help="a labelled file, folder or named dataset (default: the model's own)"
    )
    evaluate.add_argument(
        "--split",
        help="the split to evaluate (default: test for a classifier; validation for a language model, "
        "or the whole file given with --data)",
    )
    _add_data_options(evaluate)
    evaluate.add_argument("--json", action="store_true", help="print one JSON object")
    evaluate.add_argument(
        "--plot", metavar="FILE", help="also draw a PNG: a classifier's confusion matrix, a forecaster's truth vs forecasts"
    )
    evaluate.add_argument(
        "--baselines",
        action="store_true",
        help="classifiers: also fit NBSVM-bi (needs scikit-learn) on the model's own train split, its C chosen on the "
        "model's validation split, and score it on the same texts",
    )
    _precision_option(evaluate)
    evaluate.add_argument(
        "--horizon", type=int, metavar="H", help="forecasters: values to forecast from each window (default: the model's)"
    )
    evaluate.add_argument(
        "--strategy",
        choices=("auto", "direct", "recursive"),
        help="forecasters: direct (H outputs at once), recursive (feed predictions back), "
        "or auto (direct when the model's horizon allows)",
    )

    predict = commands.add_parser(
        "predict",
        help="label new texts; --explain shows which words the attention looked at",
        description="Label texts given as arguments, else read one a line from --file or stdin.",
    )
    predict.add_argument("checkpoint", metavar="CHECKPOINT", help="a run directory (its best/) or a checkpoint directory")
    predict.add_argument("texts", metavar="TEXT", nargs="*", help="texts to label")
    predict.add_argument("--file", help="read texts from this file, one a line")
    predict.add_argument("--json", action="store_true", help="print one JSON object a line: text, label, probs")
    predict.add_argument("--explain", action="store_true", help="shade each word by its attention weight")
    predict.add_argument("--html", metavar="FILE", help="write the texts, shaded by attention, as a web page")
    predict.add_argument("--int8", action="store_true", help="int8 LSTM and linear layers (dynamic quantization, CPU)")
    _precision_option(predict)

    generate = commands.add_parser(
        "generate",
        help="continue a prompt with a language model (characters, words or BPE), streaming the text",
        description="Prime a language model with --prompt in one pass, then sample one token (character, word or "
        "BPE piece) at a time. Prompt characters (words) outside the model's vocabulary are an error that names them.",
    )
    generate.add_argument("checkpoint", metavar="CHECKPOINT", help="a run directory (its best/) or a checkpoint directory")
    generate.add_argument("--prompt", default="", help="text to continue (default: start after a line break)")
    generate.add_argument("--length", type=int, default=500, help="tokens (characters) to generate per sample (default: 500)")
    generate.add_argument(
        "--temperature", type=float, default=1.0, help="divide the logits by T; 0 (or under 0.0001) is greedy (default: 1)"
    )
    generate.add_argument("--top-k", type=int, help="sample among the K most likely tokens only")
    generate.add_argument("--top-p", type=float, help="sample among the fewest tokens whose probability reaches P")
    generate.add_argument("--greedy", action="store_true", help="always take the most likely character")
    generate.add_argument("--num-samples", type=int, default=1, help="samples to draw, as one batch (default: 1)")
    generate.add_argument("--seed", type=int, help="the same seed gives the same text (default: a fresh one)")
    generate.add_argument("--json", action="store_true", help="print one JSON object with the samples")
    generate.add_argument("--int8", action="store_true", help="int8 LSTM and linear layers (dynamic quantization, CPU)")
    _precision_option(generate)

    export = commands.add_parser(
        "export",
        help="write a classifier or language model as ONNX or TorchScript, fp32 or int8, for an application",
        description="A classifier becomes (ids, lengths) -> (probs, attention); a language model its step "
        "(ids, state) -> (logits, state). tokenizer.json, labels.json and card.json are written beside --out.",
    )
    export.add_argument("checkpoint", metavar="CHECKPOINT", help="a run directory (its best/) or a checkpoint directory")
    export.add_argument("--format", choices=("onnx", "torchscript"), default="onnx", help="default: onnx")
    export.add_argument("--out", required=True, metavar="FILE", help="the model file to write (model.onnx, model.pt)")
    export.add_argument("--int8", action="store_true", help="dynamically quantize the LSTM and linear layers to int8")

    serve = commands.add_parser(
        "serve",
        help="an HTTP JSON API and a web page for a classifier or language model (FastAPI + uvicorn)",
        description="POST /v1/classify, POST /v1/generate (optionally streamed as Server-Sent Events), GET /health, "
        "GET /v1/model, docs at /docs, and a web page at /. Binds 127.0.0.1 unless --host says otherwise.",
    )
    serve.add_argument("checkpoint", metavar="CHECKPOINT", help="a run directory (its best/) or a checkpoint directory")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, this machine only)")
    serve.add_argument("--port", type=int, default=8000, help="default: 8000")
    serve.add_argument("--api-key", help="require Authorization: Bearer KEY on every endpoint but /health and / "
                       "(default: $SEQTEXT_API_KEY; none). A key on the command line shows in `ps`: prefer the "
                       "variable or --api-key-file")  # fmt: skip
    serve.add_argument("--api-key-file", metavar="FILE", help="read the API key from the first line of FILE")
    serve.add_argument("--int8", action="store_true", help="int8 LSTM and linear layers (dynamic quantization)")
    _precision_option(serve)
    serve.add_argument("--max-texts", type=int, default=64, help="texts one classify request may hold (default: 64)")
    serve.add_argument("--max-chars", type=int, default=20000, help="characters one text may hold (default: 20,000)")
    serve.add_argument("--max-length", type=int, default=2000, help="tokens one generate request may ask (default: 2,000)")
    serve.add_argument("--workers", type=int, metavar="N",
                       help="processes serving at once, each with its own model and one torch thread "
                       "(default: one a core, at most 8, for a classifier; one for a language model)")  # fmt: skip
    serve.add_argument("--batch-wait-ms", type=float, default=0.0,
                       help="how long a classify request also waits for others to share its model call; those that "
                       "arrive while the model is busy share the next one anyway (default: 0)")  # fmt: skip

    recipe = commands.add_parser(
        "recipe",
        help="print a recipe shipped with seqtext (default: the classifier `seqtext train --data` trains)",
        description="Print a recipe shipped inside the package, to copy and edit: seqtext recipe default > mine.yaml",
    )
    recipe.add_argument("name", nargs="?", default="default", help="default (the only one shipped in the package)")

    info = commands.add_parser(
        "info",
        help="print a checkpoint's model card: kind, labels, data, validation figures, versions",
        description="Print the model card saved with a checkpoint (card.json; README.md holds the same for people).",
    )
    info.add_argument("checkpoint", metavar="CHECKPOINT", help="a run directory (its best/) or a checkpoint directory")
    info.add_argument("--json", action="store_true", help="print the card as JSON")
    return parser


def _add_source_options(parser: argparse.ArgumentParser, metavar: str, help: str, optional: bool = False) -> None:
    parser.add_argument("source", metavar=metavar, nargs="?" if optional else None, help=help)
    _add_data_options(parser)
    parser.add_argument(
        "--seed", type=int, help="seed for the validation hold-out, batch order and weights (default: the recipe's)"
    )


def _add_data_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", help="folder holding the named datasets (default: $SEQTEXT_DATA, else the Hub)")
    parser.add_argument("--on-bad-rows", choices=BAD_ROW_POLICIES, help="stop at the first bad row (default) or skip and count")


# Library words -> this command line's flags, for the messages of errors that name a parameter
FLAGS = {"temperature": "--temperature", "top_k": "--top-k", "top_p": "--top-p", "length": "--length",
         "num_samples": "--num-samples", "prompt": "--prompt", "horizon": "--horizon", "split": "--split",
         "strategy": "--strategy", "data": "--data"}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    try:
        parser = build_parser()
        argv, overrides = _split_overrides(sys.argv[1:] if argv is None else list(argv))
        args, extra = parser.parse_known_args(argv)
        extra += overrides
        if args.command == "predict":  # texts may follow the options: argparse leaves those over
            args.texts += [arg for arg in extra if not arg.startswith("--")]
            extra = [arg for arg in extra if arg.startswith("--")]
        if extra and args.command in ("evaluate", "predict", "generate", "info", "export", "serve"):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        return COMMANDS[args.command](args, extra)
    except Interrupted as err:
        print(f"seqtext: {err}: continue it with `seqtext train --resume {err.run_dir}`", file=sys.stderr)
        return 130
    except SeqtextError as err:
        print(f"seqtext: error: {cli_message(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("seqtext: interrupted", file=sys.stderr)
        return 130


def _split_overrides(argv: list[str]) -> tuple[list[str], list[str]]:
    """(the arguments argparse reads, the recipe overrides): ``--section.field VALUE`` pairs are taken out
    first, so that a VALUE is never read as a positional argument (``seqtext train --data x.csv
    --train.epochs 3`` has no recipe, not a recipe called 3)."""
    rest, overrides, i = [], [], 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            rest += argv[i:]
            break
        name = arg[2:].partition("=")[0]
        if arg.startswith("--") and "." in name and not name.startswith("."):
            takes_value = "=" not in arg and i + 1 < len(argv)
            overrides += argv[i : i + 2] if takes_value else [arg]
            i += 2 if takes_value else 1
            continue
        rest.append(arg)
        i += 1
    return rest, overrides


def cli_message(err: SeqtextError) -> str:
    """The error's message in this command line's words: its flag where the library names a parameter."""
    message = str(err)
    if err.parameter in FLAGS and message.startswith(f"{err.parameter} "):
        return FLAGS[err.parameter] + message[len(err.parameter) :]
    if err.parameter == "resume":
        return message.replace(
            "resume it, or choose another output directory", "continue it with --resume, or choose another --out"
        )
    return message


def _data(args: argparse.Namespace, extra: list[str]) -> int:
    from seqtext import kinds, report

    recipe = _recipe(args, extra)
    summary = kinds.get(recipe.kind).load("summary")(recipe)
    for split, n in summary.get("skipped_rows", {}).items():
        print(f"seqtext: skipped {n:,} bad rows in {split}", file=sys.stderr)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        report.print_data_summary(summary)
    return 0


def _tokenizer(args: argparse.Namespace, extra: list[str]) -> int:
    from seqtext import kinds, pipeline

    recipe = _recipe(args, extra)
    target = args.out or recipe.tokenizer.path
    registered = kinds.get(recipe.kind)
    if registered.texts is None:
        raise ConfigError(f"a {recipe.kind.replace('_', ' ')} recipe reads no text: it has no tokenizer to train")
    if target is None:
        raise ConfigError("give --out FILE, or a recipe with tokenizer.path")
    texts = registered.load("texts")(recipe)
    tokenizer = pipeline.train_tokenizer(recipe.tokenizer, texts)
    _write(target, tokenizer.save)
    print(f"{target}: {tokenizer.kind} tokenizer, {tokenizer.vocab_size:,} tokens")
    return 0


def _train(args: argparse.Namespace, extra: list[str]) -> int:
    from seqtext import checkpoint, kinds
    from seqtext import recipe as recipes
    from seqtext.recipe import load_recipe
    from seqtext.training import train

    overrides, notes = _common_overrides(args, extra), []
    if args.max_steps is not None:
        overrides += ["--train.max_steps", str(args.max_steps)]
    if args.resume:
        out = Path(args.resume)
        saved = checkpoint.load(out / "last").recipe
        if args.source is not None:
            print(f"seqtext: resuming with the recipe saved in {out}/last; {args.source} is not read", file=sys.stderr)
        recipe = load_recipe(None, [*overrides, *(["--data.dataset", args.data] if args.data else [])], base=saved)
    else:
        if args.source is None and args.data is None:
            raise ConfigError("give a RECIPE to train, --data FILE for the default classifier, or --resume DIR")
        if args.source is not None and Path(args.source).suffix.lower() not in RECIPE_SUFFIXES:
            raise ConfigError(f"{args.source}: a recipe is a .yaml file; to train on a data file, give --data {args.source}")
        recipe = recipes.for_data(args.source, overrides, args.data, args.keep_tokenizer, log=notes.append)
        name = Path(args.source).stem if args.source else Path(args.data.rstrip("/")).stem.split(".")[0]
        out = Path(args.out) if args.out else Path("runs") / name
    result = train(recipe, out, resume=bool(args.resume), notes=tuple(notes))
    if int(os.environ.get("RANK", "0")) != 0:
        return 0  # under torchrun the first process reports
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        figures = kinds.get(recipe.kind).load("task").describe(result)
        print(f"{result['best']}: {figures} (step {result['best_step']} of {result['steps']})")
    return 0


def _evaluate(args: argparse.Namespace, extra: list[str]) -> int:
    from seqtext import api, kinds

    model = api.load(args.checkpoint, precision=args.precision)
    if "horizon" not in model.evaluate_options and (args.horizon is not None or args.strategy is not None):
        raise ConfigError(f"--horizon and --strategy are for forecasters, not a {model.kind}")
    if args.plot and type(model).plot is api.Model.plot:  # before the evaluation, not after it
        raise ConfigError(
            f"--plot draws a classifier's confusion matrix or a forecaster's forecasts; a {model.kind.replace('_', ' ')} has none"
        )
    if args.baselines and "baselines" not in model.evaluate_options:
        raise ConfigError(f"--baselines fits NBSVM-bi beside a classifier; not a {model.kind.replace('_', ' ')}")
    options = {"data_dir": args.data_dir, "on_bad_rows": args.on_bad_rows, "horizon": args.horizon, "strategy": args.strategy}
    if args.baselines:
        options["baselines"] = True
    result = model.evaluate(args.data, args.split, **{k: v for k, v in options.items() if k in model.evaluate_options})
    if result.get("n_unknown"):
        unit = "characters" if "n_chars" in result else "tokens"
        print(f"seqtext: {result['n_unknown']:,} {unit} are outside the model's vocabulary and not scored", file=sys.stderr)
    if args.plot:
        _write(args.plot, lambda path: model.plot(result, path))
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        kinds.get(model.kind).load("report")({k: v for k, v in result.items() if k != "data"}, result["data"])
    return 0


def _generate(args: argparse.Namespace, extra: list[str]) -> int:
    from seqtext import api, checkpoint

    model = api.wrap(checkpoint.load(args.checkpoint, kind="language_model"), args.int8, args.precision)
    args.prompt = _utf8(args.prompt, "--prompt")
    temperature = 0.0 if args.greedy else args.temperature
    settings = {"temperature": temperature, "top_k": args.top_k, "top_p": args.top_p, "seed": args.seed}
    request = {"prompt": args.prompt, "length": args.length, **settings}
    if not args.json and args.num_samples == 1:
        pieces = model.generate(**request, stream=True)  # checks the request before printing anything
        sys.stdout.write(args.prompt)
        for piece in pieces:
            sys.stdout.write(piece)
            sys.stdout.flush()
        print()
        return 0
    samples = model.generate(**request, num_samples=args.num_samples)
    samples = [samples] if args.num_samples == 1 else samples
    if args.json:
        print(json.dumps({"prompt": args.prompt, **settings, "samples": samples}))
    else:
        for number, sample in enumerate(samples, 1):
            print(f"--- sample {number} ---\n{args.prompt}{sample}")
    return 0


def _predict(args: argparse.Namespace, extra: list[str]) -> int:
    from seqtext import api, checkpoint
    from seqtext.classifier.predict import EMPTY, html_page, readable_problem
    from seqtext.classifier.report import print_predictions
    from seqtext.data import iter_text_lines

    model = api.wrap(checkpoint.load(args.checkpoint, kind="classifier"), args.int8, args.precision)
    if (args.explain or args.html) and not model.module.pooling.explains:
        raise ConfigError(f"this model pools by {model.config.pooling}: it has no attention to show")
    if args.html:  # fail before any output, not after
        _make_folder_for(args.html)
    if args.texts:
        texts = iter([_utf8(text, f"text argument {number}") for number, text in enumerate(args.texts, start=1)])
    elif args.file:
        texts = iter_text_lines(args.file, keep_blank=True)
    else:
        texts = _stdin_lines()
    kept, done = [], 0  # only --html keeps every prediction; the rest is printed a chunk at a time
    stream = model.predict_stream(texts)
    while chunk := list(itertools.islice(stream, api.CHUNK_SIZE)):  # checked whole before any of it is printed
        for number, prediction in enumerate(chunk, start=done + 1):
            blank_line = not args.texts and readable_problem(prediction.text) == EMPTY  # keeps its own output line
            if prediction.error is not None and not blank_line:
                raise DataError(f"text {number} ({prediction.text[:40]!r}) {prediction.error}")
        done += len(chunk)
        if args.html:
            kept.extend(chunk)
        if args.json:
            for prediction in chunk:
                print(json.dumps(prediction.to_dict(explain=args.explain)))
        else:
            print_predictions(chunk, explain=args.explain)
    if not done:
        raise ConfigError("no texts to label: give them as arguments, with --file, or on stdin")
    if args.html:
        _write(args.html, lambda path: Path(path).write_text(html_page(kept), encoding="utf-8"))
    return 0


def _stdin_lines() -> Iterator[str]:
    """The lines of stdin without their line breaks, read as bytes where there are bytes beneath, so that a
    line that is not UTF-8 is an error naming it, whatever the locale's error handler."""
    lines = getattr(sys.stdin, "buffer", sys.stdin)
    for number, line in enumerate(lines, start=1):
        yield _utf8(line, f"stdin, line {number}").rstrip("\r\n")


def _utf8(value: str | bytes, where: str) -> str:
    """Bytes, or a str from the command line or stdin, as UTF-8 text. Python hands on bytes it could not
    decode as surrogates ('\\udcff'): those that are not UTF-8 are an error naming ``where`` and the byte, in
    the words a file's line gets."""
    if isinstance(value, str):
        try:
            value = value.encode("utf-8", "surrogateescape")  # the bytes as they were given
        except UnicodeEncodeError:
            return value  # a lone surrogate that no decoding gives ('\\ud800'): predict names it
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError as err:
        raise DataError(f"{where}: {utf8_problem(value, err)}") from None


def _info(args: argparse.Namespace, extra: list[str]) -> int:
    from seqtext import checkpoint, report

    card = checkpoint.load(args.checkpoint).card
    if args.json:
        print(json.dumps(card, indent=2))
    else:
        report.print_card(card)
    return 0


def _precision_option(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--precision", choices=("fp32", "bf16", "auto"), default="fp32",
        help="bf16: the forward pass in bfloat16 (autocast); auto: bf16 where this machine runs it faster (default: fp32)",
    )  # fmt: skip


def _needs(extra: str, *modules: str) -> None:
    """A one-line error when an optional dependency is missing."""
    import importlib.util

    missing = [name for name in modules if importlib.util.find_spec(name) is None]
    if missing:
        raise ConfigError(f"this command needs {', '.join(missing)}: pip install 'seqtext[{extra}]'")


def _export(args: argparse.Namespace, extra: list[str]) -> int:
    from seqtext import api
    from seqtext.export import export

    if args.format == "onnx":
        _needs("export", "onnx", "onnxruntime")

    model = api.load(args.checkpoint)
    written = export(model, args.out, args.format, int8=args.int8)
    size = written[0].stat().st_size / 2**20
    print(f"seqtext: wrote {written[0]} ({args.format}{', int8' if args.int8 else ''}, {size:.1f} MiB), "
          f"and {', '.join(path.name for path in written[1:])} beside it")  # fmt: skip
    return 0


def _serve(args: argparse.Namespace, extra: list[str]) -> int:
    _needs("serve", "fastapi", "uvicorn")
    from seqtext.serve import Limits, serve

    for name in ("max_texts", "max_chars", "max_length"):
        if getattr(args, name) < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be at least 1, not {getattr(args, name)}")
    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port must be in 0..65535, not {args.port}")
    limits = Limits(args.max_texts, args.max_chars, args.max_length, args.batch_wait_ms / 1000)
    api_key = args.api_key or _read_key(args.api_key_file) or os.environ.get("SEQTEXT_API_KEY") or None
    if args.workers is not None and args.workers < 1:
        raise ConfigError(f"--workers must be at least 1, not {args.workers}")
    return serve(args.checkpoint, args.host, args.port, api_key=api_key, int8=args.int8, precision=args.precision,
                 limits=limits, workers=args.workers)  # fmt: skip


def _read_key(path: str | None) -> str | None:
    """The API key in the first line of ``path`` (None without a path); a file without one is an error."""
    if path is None:
        return None
    try:
        key = Path(path).read_text(encoding="utf-8").partition("\n")[0].strip()
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"--api-key-file {path}: cannot read ({getattr(err, 'strerror', None) or err})") from None
    if not key:
        raise ConfigError(f"--api-key-file {path}: its first line is empty")
    return key


def _recipe_command(args: argparse.Namespace, extra: list[str]) -> int:
    from seqtext.recipe import default_recipe_path

    if args.name != "default":
        raise ConfigError(f"{args.name}: not a recipe shipped in the package (there is: default); the rest are in recipes/")
    print(default_recipe_path().read_text(encoding="utf-8"), end="")
    return 0


COMMANDS = {
    "data": _data,
    "tokenizer": _tokenizer,
    "train": _train,
    "evaluate": _evaluate,
    "predict": _predict,
    "generate": _generate,
    "info": _info,
    "export": _export,
    "serve": _serve,
    "recipe": _recipe_command,
}


def _write(path: str | Path, writer) -> None:
    """Write an output file the user named, making its folder; an OSError becomes a one-line error."""
    _make_folder_for(path)
    try:
        writer(path)
    except OSError as err:
        raise ConfigError(f"{path}: cannot write ({err.strerror or err})") from None


def _make_folder_for(path: str | Path) -> None:
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"{path}: cannot write ({err.strerror or err})") from None


def _common_overrides(args: argparse.Namespace, extra: list[str]) -> list[str]:
    overrides = list(extra)
    for option, key in (("data_dir", "data.data_dir"), ("on_bad_rows", "data.on_bad_rows"), ("seed", "seed")):
        value = getattr(args, option, None)
        if value is not None:
            overrides += [f"--{key}", str(value)]
    return overrides


def _recipe(args: argparse.Namespace, extra: list[str]):
    from seqtext.recipe import load_recipe

    overrides = _common_overrides(args, extra)
    if Path(args.source).suffix.lower() in RECIPE_SUFFIXES:
        return load_recipe(args.source, overrides)
    return load_recipe(None, overrides, base=_base_for(args.source))


def _base_for(source: str) -> dict:
    """Defaults for a dataset given without a recipe: a corpus gets a character language model's settings."""
    from seqtext.data import NAMED_DATASETS
    from seqtext.forecaster.series import SERIES

    if source in SERIES:
        return {"kind": "forecaster", "data": {"dataset": source}}
    named = NAMED_DATASETS.get(source)
    suffixes = [s.lower() for s in Path(source).suffixes if s.lower() != ".gz"]
    is_corpus = (named is not None and named.corpus_file is not None) or (suffixes and FORMATS.get(suffixes[-1]) == "text")
    if is_corpus:
        return {
            "kind": "language_model",
            "data": {"dataset": source},
            "tokenizer": {"kind": "char", "lowercase": False, "vocab_size": None},
        }
    return {"data": {"dataset": source}}

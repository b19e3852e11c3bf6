"""The `rmcore` command line: thin subcommands over the library's functions.

rmcore ingest data/raw --lake data/lake
rmcore build-pairs --lake data/lake
rmcore data-report --lake data/lake
"""

import argparse
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson

from rmcore.config import Config, ConfigError, load_config
from rmcore.data.containers import UnreadableFile
from rmcore.data.formats import FORMAT_NAMES
from rmcore.data.ingest import ingest
from rmcore.data.lake import Lake
from rmcore.data.pairs import build_pairs
from rmcore.data.report import write_report

LARGE_INPUT_BYTES = 32 << 20
MODEL_URI_PREFIXES = ("models:/", "runs:/")
MODEL_HELP = (
    "model directory written by rmcore train, or a registered or logged model: "
    "models:/NAME@ALIAS, models:/NAME/VERSION, runs:/RUN_ID/model"
)


class CommandError(Exception):
    """A failure reported as one line, with exit status 1."""


def _progress(enabled: bool) -> Callable[[str, int, int], None] | None:
    """A per-file byte progress bar on stderr for large inputs, when stderr is a terminal."""
    if not enabled or not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    bars: dict[str, Any] = {}

    def update(path: str, done: int, size: int) -> None:
        if size < LARGE_INPUT_BYTES:
            return
        bar = bars.get(path)
        if bar is None:
            bar = bars[path] = tqdm(total=size, unit="B", unit_scale=True, desc=Path(path).name)
        bar.update(done - bar.n)
        if done >= size:
            bar.close()

    return update


def _config(args: argparse.Namespace) -> Config:
    config = load_config(args.config)
    data = config.data
    updates: dict[str, Any] = {}
    if args.lake is not None:
        updates["lake"] = args.lake
    if getattr(args, "include_synthetic", False):
        updates["ingest"] = data.ingest.model_copy(update={"include_synthetic": True})
    if getattr(args, "drop_conflicts", False):
        updates["pairs"] = data.pairs.model_copy(update={"drop_conflicts": True})
    return config.model_copy(update={"data": data.model_copy(update=updates)})


def _emit(args: argparse.Namespace, result: dict[str, Any], human: Sequence[str]) -> None:
    if args.json:
        print(orjson.dumps(result).decode())
    else:
        print("\n".join(human))


def cmd_ingest(args: argparse.Namespace) -> int:
    config = _config(args)
    summary = ingest(
        Lake(config.data.lake),
        args.paths,
        config.data.ingest,
        args.format,
        args.source,
        on_bytes=_progress(not args.json),
    )
    result = summary.as_dict()
    rejected = ", ".join(f"{r} {n}" for r, n in summary.rejected.items()) or "none"
    human = [
        f"ingested {len(summary.files_ingested)} file(s) into {summary.lake}: "
        f"{summary.rows_read} rows read, {summary.accepted} accepted, "
        f"{sum(summary.rejected.values())} rejected ({rejected})",
        f"{summary.new_comparisons} new comparisons, {summary.duplicates} duplicates, "
        f"{summary.new_rankings} new rankings, {len(summary.files_skipped)} file(s) already ingested",
    ]
    _emit(args, result, human)
    for path, why in summary.files_failed.items():
        print(f"rmcore ingest: error: {path}: {why}", file=sys.stderr)
    return 1 if summary.files_failed else 0


def cmd_build_pairs(args: argparse.Namespace) -> int:
    config = _config(args)
    summary = build_pairs(Lake(config.data.lake), config.data.splits, config.data.pairs)
    human = [
        f"{sum(summary.pairs.values())} pairs from {summary.comparisons} comparisons "
        f"({summary.conflicts} conflicts{', dropped' if summary.conflicts_dropped else ', kept'})",
        *(f"  {split}: {n} pairs -> {summary.paths[split]}" for split, n in summary.pairs.items()),
        *(
            f"  {split}: {n} rankings (K > 2) -> {summary.ranking_paths[split]}"
            for split, n in summary.rankings.items()
            if n
        ),
    ]
    _emit(args, summary.as_dict(), human)
    return 0


def cmd_data_report(args: argparse.Namespace) -> int:
    config = _config(args)
    report, paths = write_report(Lake(config.data.lake))
    result = {**report, "paths": {k: str(v) for k, v in paths.items()}}
    _emit(args, result, [paths["markdown"].read_text(encoding="utf-8"), f"written: {paths['json']}"])
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    from rmcore.data.sample import write_sample

    manifest = write_sample(args.out, seed=args.seed)
    files = [str(p) for p in manifest.files]
    _emit(args, {"files": files}, [f"wrote {len(files)} sample file(s) under {args.out}", *files])
    return 0


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `rmcore train` (also `python -m rmcore.train`)."""
    parser.add_argument("--config", type=Path, help="pipeline config YAML (default: built-in defaults)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one option, e.g. train.lr=3e-5 (repeatable)",
    )
    parser.add_argument("--resume", action="store_true", help="continue from the latest checkpoint")
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")


def cmd_train(args: argparse.Namespace) -> int:
    from rmcore.train import run

    return run(args)


@contextmanager
def local_model(args: argparse.Namespace) -> Iterator[Path]:
    """The --model directory: a path as given, or a models:/ or runs:/ URI downloaded for the command.

    A URI is looked up in the tracking store of --config (tracking.tracking_uri, else
    $MLFLOW_TRACKING_URI, else mlflow/mlflow.db) and downloaded into a temporary folder.
    """
    if not args.model.startswith(MODEL_URI_PREFIXES):
        yield Path(args.model)
        return
    from rmcore.tracking import model_dir_of

    with tempfile.TemporaryDirectory(prefix="rmcore-model-") as scratch:
        yield model_dir_of(args.model, Path(scratch), load_config(args.config).tracking)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from rmcore.evaluate import report_markdown
    from rmcore.scoring import evaluation

    with local_model(args) as model_dir:
        result = evaluation(model_dir, args.pairs, args.split)
    metrics, human = result.metrics, [report_markdown(result.metrics)]
    if args.report is not None:
        from rmcore.eval_report import write_eval_report

        files = write_eval_report(result.chosen, result.rejected, result.pairs, metrics, args.report)
        metrics = {**metrics, "report": {name: str(path) for name, path in files.items()}}
        human.append(f"report written: {files['report.html']} (plots and report.md beside it)")
    _emit(args, metrics, human)
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    from rmcore.scoring import score_file

    with local_model(args) as model_dir:
        summary = score_file(model_dir, args.input, args.output)
    _emit(args, summary, [f"scored {summary['rows']} rows -> {summary['output']}"])
    return 0


def parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    root = argparse.ArgumentParser(prog="rmcore", description=__doc__.splitlines()[0])
    sub = root.add_subparsers(dest="command", required=True)

    def command(name: str, run: Callable[[argparse.Namespace], int], help_: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_)
        p.add_argument("--config", type=Path, help="pipeline config YAML (default: built-in defaults)")
        p.add_argument("--lake", type=Path, help="lake directory (default: data.lake of the config)")
        p.add_argument("--json", action="store_true", help="print one JSON object as the last line")
        p.set_defaults(run=run)
        return p

    p = command("ingest", cmd_ingest, "Ingest label files, folders or hf://owner/name ids into the lake.")
    p.add_argument("paths", nargs="+", help="files, folders, or hf://owner/name[:split]")
    p.add_argument("--format", choices=FORMAT_NAMES, help="source format (default: detected)")
    p.add_argument("--source", help="source name for rows that carry none (default: folder/file)")
    p.add_argument("--include-synthetic", action="store_true", help="ingest synthetic OASST trees")

    p = command("build-pairs", cmd_build_pairs, "Aggregate the lake into pair datasets per split.")
    p.add_argument("--drop-conflicts", action="store_true", help="leave out pairs with p_chosen = 0.5")

    command("data-report", cmd_data_report, "Write the data report (JSON and markdown).")

    p = sub.add_parser("train", help="Train a reward model.", description="Train a reward model.")
    add_train_arguments(p)
    p.set_defaults(run=cmd_train)

    p = command("evaluate", cmd_evaluate, "Evaluate a trained model on held-out pairs.")
    p.add_argument("--model", required=True, help=MODEL_HELP)
    p.add_argument("--pairs", type=Path, required=True, help="pair file, lake, or label file")
    p.add_argument("--split", default="test", help="the lake split to use when --pairs is a lake")
    p.add_argument("--report", type=Path, help="also write the plots and report.html into this folder")

    p = command("score", cmd_score, "Score (prompt, response) rows with a trained model.")
    p.add_argument("--model", required=True, help=MODEL_HELP)
    p.add_argument("input", type=Path, help="JSONL/JSON/CSV/Parquet rows with prompt and response")
    p.add_argument("--output", type=Path, required=True, help="Parquet (or .jsonl) file to write")

    p = command("sample", cmd_sample, "Write the built-in sample of raw label files.")
    p.add_argument("out", type=Path, nargs="?", default=Path("data/raw/sample"), help="output folder")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    return root


def main(argv: Sequence[str] | None = None) -> int:
    """Run one subcommand; errors are one line on stderr, never a traceback."""
    args = parser().parse_args(argv)
    try:
        return args.run(args)
    except (
        ConfigError,
        CommandError,
        UnreadableFile,
        FileNotFoundError,
        ValueError,
        OSError,
    ) as error:
        print(f"rmcore {args.command}: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(
            f"rmcore {args.command}: interrupted; the lake is unchanged, rerun to finish",
            file=sys.stderr,
        )
        return 130


if __name__ == "__main__":
    sys.exit(main())

"""The `rmcore` command line: thin subcommands over the library's functions.

rmcore ingest data/raw --lake data/lake
rmcore build-pairs --lake data/lake
rmcore lake check --lake data/lake
rmcore data-report --lake data/lake
rmcore train --config configs/default.yaml --json
"""

import argparse
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, get_args

import orjson

from rmcore.config import Aggregate, Config, ConfigError, add_override_argument, load_config
from rmcore.data.formats import FORMAT_NAMES
from rmcore.data.formats.containers import UnreadableFile
from rmcore.data.ingest import ingest
from rmcore.data.lake import Lake
from rmcore.data.pairs import build_pairs
from rmcore.training import TrainingError

LARGE_INPUT_BYTES = 32 << 20
MODEL_URI_PREFIXES = ("models:/", "runs:/")
MODEL_HELP = (
    "model directory written by rmcore train, or a registered or logged model: "
    "models:/NAME@ALIAS, models:/NAME/VERSION, runs:/RUN_ID/model"
)


INTERRUPTED = {
    "ingest": "every table is at a whole commit; rerun to finish (no file is added twice)",
    "build-pairs": "the pair tables are unchanged, rerun to finish",
    "lake": "every table is at its last whole commit, rerun to finish",
    "data-report": "the report is unchanged, rerun to finish",
    "train": "rerun with --resume to continue from the last checkpoint",
    "evaluate": "rerun to finish",
    "score": "the output is unchanged, rerun to finish",
    "sample": "rerun to finish",
}
"""What an interrupted subcommand left, and how to finish it (every file is written whole)."""


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
    pairs: dict[str, Any] = {}
    if getattr(args, "drop_conflicts", False):
        pairs["drop_conflicts"] = True
    if getattr(args, "aggregate", None) is not None:
        pairs["aggregate"] = args.aggregate
    if pairs:
        updates["pairs"] = data.pairs.model_copy(update=pairs)
    return config.model_copy(update={"data": data.model_copy(update=updates)})


def _emit(args: argparse.Namespace, result: Mapping[str, Any], human: Sequence[str]) -> None:
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
    summary = build_pairs(Lake(config.data.lake), config.data.splits, config.data.pairs, args.as_of)
    human = [
        f"{sum(summary.pairs.values())} pairs from {summary.comparisons} comparisons of lake version "
        f"{summary.lake_version} ({summary.conflicts} conflicts"
        f"{', dropped' if summary.conflicts_dropped else ', kept'})",
        f"aggregate {summary.aggregate}: changed winner {sum(summary.changed_winner.values())}, "
        f"conflicts resolved {summary.conflicts_resolved}",
        *(f"  {split}: {n} pairs" for split, n in summary.pairs.items()),
        *(f"  {split}: {n} rankings (K > 2)" for split, n in summary.rankings.items() if n),
        f"written: {summary.tables['pairs']}, {summary.tables['pair_rankings']}",
    ]
    _emit(args, summary.as_dict(), human)
    return 0


def cmd_data_report(args: argparse.Namespace) -> int:
    from rmcore.data.quality.report import write_report

    config = _config(args)
    report, paths = write_report(Lake(config.data.lake))
    result = {**report, "paths": {k: str(v) for k, v in paths.items()}}
    _emit(args, result, [paths["markdown"].read_text(encoding="utf-8"), f"written: {paths['json']}"])
    return 0


def cmd_lake(args: argparse.Namespace) -> int:
    from rmcore.data.lake import check, maintain, migrate

    lake = Lake(_config(args).data.lake)
    if args.action == "check":
        found = check.check_lake(lake)
        _emit(args, found.as_dict(), found.lines())
        return 0 if found.healthy else 1
    if args.action == "migrate":
        migrated = migrate.migrate_lake(lake)
        _emit(args, migrated.as_dict(), migrated.lines())
        return 0
    done = maintain.compact(lake) if args.action == "compact" else maintain.vacuum(lake, args.retain_hours)
    lines = [
        f"{u.table}: {u.files_removed} file(s) removed, {u.files_added} added, now version {u.version}"
        for u in done
    ]
    _emit(args, {"tables": [u.as_dict() for u in done]}, lines or [f"{lake.uri}: no tables yet"])
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    from rmcore.sample import write_sample

    manifest = write_sample(args.out, seed=args.seed)
    files = [str(p) for p in manifest.files]
    _emit(args, {"files": files}, [f"wrote {len(files)} sample file(s) under {args.out}", *files])
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from rmcore.training.exclusive import sole_training
    from rmcore.training.launch import train_processes

    config = load_config(args.config, args.overrides)
    with sole_training(config.output_dir):
        result = train_processes(config, args.resume, progress=not args.json)
    leaked = result["held_out_prompts_in_train"]
    if leaked:
        print(
            f"rmcore train: warning: {leaked} held-out prompt(s) also occur in the training data; "
            "held-out accuracy is inflated (split by prompt, or use the lake's splits)",
            file=sys.stderr,
        )
    accuracy = result["eval"].get("accuracy")
    human = [
        f"trained {result['steps']} steps on {result['train_pairs']} pairs in "
        f"{result['train_seconds']:.1f} s ({result['train_pairs_per_s']:.1f} pairs/s, "
        f"{result['precision']}, {result['world_size']} process(es)); held-out accuracy "
        f"{'n/a' if accuracy is None else f'{accuracy:.3f}'}; model: {result['model_dir']}"
    ]
    _emit(args, result, human)
    return 0


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
    from rmcore.evaluation.evaluate import evaluate_model
    from rmcore.evaluation.markdown import report_markdown

    if args.suite is not None:
        return evaluate_suite_command(args)
    if args.exclude_overlap:
        raise CommandError("--exclude-overlap applies to --suite only")
    config = load_config(args.config)
    with local_model(args) as model_dir:
        result = evaluate_model(model_dir, args.pairs, args.split, config)
    metrics, human = result.metrics, [report_markdown(result.metrics)]
    if args.suspects is not None:
        from rmcore.evaluation.suspects import label_review

        review = label_review(result, args.suspects)
        metrics = {
            **metrics,
            "suspects": {"path": review["path"], "pairs": review["pairs"]},
            "annotators": review["annotators"],
        }
        human.append(
            f"{review['pairs']} labels the model contradicts, most confident first -> {args.suspects}"
        )
    if args.report is not None:
        from rmcore.evaluation.report import write_eval_report

        files = write_eval_report(result.chosen, result.rejected, result.pairs, metrics, args.report)
        metrics = {**metrics, "report": {name: str(path) for name, path in files.items()}}
        human.append(f"report written: {files['report.html']} (plots and report.md beside it)")
    _emit(args, metrics, human)
    return 0


def evaluate_suite_command(args: argparse.Namespace) -> int:
    """`rmcore evaluate --suite NAME FILE_OR_ID`: the suite's scores by its published rules."""
    from rmcore.data.suites import SUITE_NAMES
    from rmcore.evaluation.suites.report import suite_markdown, write_suite_report
    from rmcore.evaluation.suites.run import evaluate_suite

    given, source = args.suite
    name = next((known for known in SUITE_NAMES if known == given), None)
    if name is None:
        raise CommandError(f"--suite: unknown suite {given!r}; one of {', '.join(SUITE_NAMES)}")
    if args.suspects is not None:
        raise CommandError("--suspects applies to --pairs only")
    config = load_config(args.config)
    with local_model(args) as model_dir:
        result = evaluate_suite(model_dir, source, config, name, args.exclude_overlap)
    out: dict[str, Any] = result.as_dict()
    human = [suite_markdown(result)]
    if args.report is not None:
        files = write_suite_report(result, args.report)
        out["report"] = {file: str(path) for file, path in files.items()}
        human.append(f"report written: {files[f'suite_{result.suite}.md']} (plots beside it)")
    _emit(args, out, human)
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    from rmcore.scoring import score_file

    with local_model(args) as model_dir:
        summary = score_file(model_dir, args.input, args.output)
    _emit(args, summary, [f"scored {summary['rows']} rows -> {summary['output']}"])
    return 0


def _add_config(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument(
        "--config", type=Path, help=f"pipeline config YAML, for {what} (default: built-in defaults)"
    )


def _add_lake(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--lake", help="lake folder or URI: s3://, gs://, az:// (default: data.lake of the config)"
    )


def parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand; each takes only the options it uses."""
    root = argparse.ArgumentParser(prog="rmcore", description=__doc__.splitlines()[0])
    sub = root.add_subparsers(dest="command", required=True)

    def command(name: str, run: Callable[[argparse.Namespace], int], help_: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_)
        p.add_argument("--json", action="store_true", help="print one JSON object as the last line")
        p.set_defaults(run=run)
        return p

    p = command("ingest", cmd_ingest, "Ingest label files, folders or hf://owner/name ids into the lake.")
    p.add_argument("paths", nargs="+", help="files, folders, or hf://owner/name[:split]")
    _add_config(p, "data.lake and data.ingest")
    _add_lake(p)
    p.add_argument("--format", choices=FORMAT_NAMES, help="source format (default: detected)")
    p.add_argument("--source", help="source name for rows that carry none (default: folder/file)")
    p.add_argument("--include-synthetic", action="store_true", help="ingest synthetic OASST trees")

    p = command("build-pairs", cmd_build_pairs, "Aggregate the lake into pair datasets per split.")
    _add_config(p, "data.lake, data.splits and data.pairs")
    _add_lake(p)
    p.add_argument("--drop-conflicts", action="store_true", help="leave out pairs with p_chosen = 0.5")
    p.add_argument(
        "--as-of",
        type=int,
        metavar="VERSION",
        help="build from this lake version (a build's lake_version) instead of the latest",
    )
    p.add_argument(
        "--aggregate",
        choices=get_args(Aggregate),
        help="votes: vote shares; dawid-skene: votes weighed by each annotator's estimated reliability "
        "(default: data.pairs.aggregate)",
    )

    p = command("data-report", cmd_data_report, "Write the data report (JSON and markdown).")
    _add_config(p, "data.lake")
    _add_lake(p)

    p = command("lake", cmd_lake, "Check, migrate, compact or vacuum the lake's Delta tables.")
    p.add_argument(
        "action",
        choices=("check", "migrate", "compact", "vacuum"),
        help="check: every committed file present, readable and of its committed row count; "
        "migrate: a manifest lake (schema 2) into Delta tables; compact: small files into large; "
        "vacuum: delete files no version younger than --retain-hours names",
    )
    _add_config(p, "data.lake")
    _add_lake(p)
    p.add_argument(
        "--retain-hours",
        type=int,
        default=168,
        help="vacuum: keep every version younger than this readable (default: 168, a week)",
    )

    p = command("train", cmd_train, "Train a reward model (train.nproc_per_node processes).")
    _add_config(p, "every option")
    add_override_argument(p)
    p.add_argument("--resume", action="store_true", help="continue from the latest checkpoint")

    p = command("evaluate", cmd_evaluate, "Evaluate a trained model on held-out pairs or a benchmark suite.")
    _add_config(
        p,
        "data (label files; --suite: data.lake, for overlaps), train.max_tokens and the tracking store "
        "of models:/ URIs",
    )
    p.add_argument("--model", required=True, help=MODEL_HELP)
    data = p.add_mutually_exclusive_group(required=True)
    data.add_argument("--pairs", type=Path, help="pair file, lake, or label file")
    data.add_argument(
        "--suite",
        nargs=2,
        metavar=("SUITE", "FILE_OR_ID"),
        help="score a benchmark suite by its published rules: SUITE is rewardbench, rewardbench2 or "
        "rm-bench; FILE_OR_ID a JSON, JSONL or Parquet file, or hf://owner/name[:split]",
    )
    p.add_argument("--split", default="test", help="the lake split to use when --pairs is a lake")
    p.add_argument(
        "--exclude-overlap",
        action="store_true",
        help="--suite: leave out the items whose prompt is in the training lake (data.lake)",
    )
    p.add_argument(
        "--report",
        type=Path,
        help="also write the plots and report.html (--suite: suite_SUITE.md and .json) into this folder",
    )
    p.add_argument(
        "--suspects",
        type=Path,
        help="write the pairs whose label the model contradicts, and who voted, to this .parquet or .csv",
    )

    p = command("score", cmd_score, "Score (prompt, response) rows with a trained model.")
    _add_config(p, "the tracking store of models:/ URIs")
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
        TrainingError,
        UnreadableFile,
        FileNotFoundError,
        ValueError,
        OSError,
    ) as error:
        print(f"rmcore {args.command}: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"rmcore {args.command}: interrupted; {INTERRUPTED[args.command]}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

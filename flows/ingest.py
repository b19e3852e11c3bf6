"""The ingest flow: plan -> stage (read, validate, identify) per file -> dedup and commit -> pairs -> report.

    python -m flows.ingest --sample            # the built-in sample, as `make run` does
    python -m flows.ingest data/raw --config configs/default.yaml
    python -m flows.ingest data/raw/vendor.jsonl --format trl --source vendor --set data.lake=/tmp/lake

Runs with no Prefect server configured (ephemeral API). Tasks pass paths and small summaries,
never tables; reading files retries, and every write is atomic, so a retried or rerun task
never duplicates data.
"""

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from prefect import flow, task, unmapped
from prefect.artifacts import create_markdown_artifact

from flows.records import IngestOutcome
from rmcore.config import Config, ConfigError, add_override_argument, load_config
from rmcore.data.formats import FORMAT_NAMES
from rmcore.data.formats.containers import UnreadableFile
from rmcore.data.ingest import commit, plan, stage_input
from rmcore.data.ingest.commit import IngestRecord
from rmcore.data.ingest.stage import StagedFile
from rmcore.data.lake import Lake
from rmcore.data.pairs import build_pairs
from rmcore.data.pairs.build import PairsRecord
from rmcore.data.quality.report import markdown, write_report
from rmcore.sample import write_sample


@task(retries=2, retry_delay_seconds=1)
def write_sample_files(out: str) -> str:
    """Write the built-in sample of raw label files; its folder."""
    write_sample(Path(out))
    return out


@task(retries=2, retry_delay_seconds=1)
def plan_inputs(lake: str, inputs: list[str]) -> dict[str, Any]:
    """Which inputs are new (with content hashes), already ingested, or missing."""
    planned = plan(Lake(lake), inputs)
    return {"new": planned.new, "skipped": planned.skipped, "failed": planned.failed}


@task(retries=2, retry_delay_seconds=1)
def stage(
    lake: str, name: str, content_hash: str, config: Config, fmt: str | None, source: str | None
) -> dict[str, Any]:
    """Read, validate and identify one file into the lake's staging area: {"staged": its staging
    summary}, or {"failed": the reason} for a file that cannot be read as a whole. That is the file's
    content, which a retry would not change, so the flow commits the other files and lists it, as
    `rmcore ingest` does; a failure of the machine (an OSError) still fails the task, to be retried."""
    try:
        staged = stage_input(Lake(lake), name, content_hash, config.data.ingest, fmt, source=source)
    except UnreadableFile as error:
        return {"failed": error.reason}
    return {"staged": staged.model_dump()}


@task(retries=2, retry_delay_seconds=1)
def commit_staged(lake: str, staged: list[dict[str, Any]]) -> IngestRecord:
    """Drop duplicates of the lake and commit every staged file at once; the ingest summary."""
    files = [StagedFile.model_validate(item) for item in staged]
    return commit(Lake(lake), files).as_dict()


@task
def build_pair_datasets(lake: str, config: Config) -> PairsRecord:
    """The pair tables, split by prompt; the build summary with the lake version read."""
    return build_pairs(Lake(lake), config.data.splits, config.data.pairs).as_dict()


@task
def data_report(lake: str) -> dict[str, Any]:
    """Write the data report; the report with its paths."""
    report, paths = write_report(Lake(lake))
    return {**report, "paths": {kind: str(path) for kind, path in paths.items()}}


def summary_markdown(ingested: IngestRecord, pairs: PairsRecord, report: dict[str, Any]) -> str:
    """The flow's markdown artifact: what came in, what was rejected, what the pairs are."""
    rejected = "".join(f"\n| {reason} | {n} |" for reason, n in ingested["rejected"].items())
    failed = "".join(f"\n- `{path}`: {why}" for path, why in ingested["files_failed"].items())
    return (
        "# Ingest\n\n"
        f"Rows read {ingested['rows_read']}, accepted {ingested['accepted']}, rejected "
        f"{ingested['rejected_total']}; {ingested['new_comparisons']} new comparisons, "
        f"{ingested['duplicates']} duplicates; {len(ingested['files_ingested'])} file(s) ingested, "
        f"{ingested['files_skipped']} already in the lake.\n\n"
        "| reject reason | rows |\n|---|---:|"
        + (rejected or "\n| (none) | 0 |")
        + "\n\n"
        + (f"Files that could not be read:{failed}\n\n" if failed else "")
        + f"Pairs built from lake version {pairs['lake_version']} into `{pairs['tables']['pairs']}`:\n\n"
        + "| split | pairs |\n|---|---:|"
        + "".join(f"\n| {s} | {n} |" for s, n in pairs["pairs"].items())
        + f"\n\nData report: `{report['paths']['markdown']}`\n\n"
        + markdown(report)
    )


@flow(name="ingest", log_prints=True)
def ingest_flow(
    paths: list[str] | None = None,
    config_path: str | None = None,
    lake: str | None = None,
    sample: bool = False,
    fmt: str | None = None,
    source: str | None = None,
    overrides: list[str] | None = None,
) -> IngestOutcome:
    """Ingest label files into the lake and rebuild the pair datasets; the summaries.

    `fmt` forces a source format (default: detected per file); `source` names the source of rows that
    carry none (default: folder/file). `overrides` are `--set KEY=VALUE` assignments applied to the
    config (e.g. `data.lake=...`, `data.ingest.include_synthetic=true`).
    """
    if fmt is not None and fmt not in FORMAT_NAMES:
        raise ValueError(f"unknown format {fmt!r}; use one of {', '.join(FORMAT_NAMES)}")
    config = load_config(Path(config_path) if config_path else None, overrides or ())
    lake_dir = str(lake or config.data.lake)
    inputs = list(paths or [])
    if sample:
        inputs.append(write_sample_files(str(config.data.raw / "sample")))
    if not inputs:
        raise ValueError("nothing to ingest: pass paths, or sample=True for the built-in sample")
    planned = plan_inputs(lake_dir, inputs)
    names = [name for name, _ in planned["new"]]
    outcomes = stage.map(
        unmapped(lake_dir),
        names,
        [content_hash for _, content_hash in planned["new"]],
        unmapped(config),
        unmapped(fmt),
        unmapped(source),
    ).result()
    staged, failed = [], dict(planned["failed"])
    for name, outcome in zip(names, outcomes, strict=True):
        if "staged" in outcome:
            staged.append(outcome["staged"])
        else:
            failed[name] = outcome["failed"]
    ingested = commit_staged(lake_dir, staged)
    ingested["files_skipped"] += len(planned["skipped"])
    ingested["files_failed"].update(failed)
    for name, why in ingested["files_failed"].items():
        print(f"could not ingest {name}: {why}")
    pairs = build_pair_datasets(lake_dir, config)
    report = data_report(lake_dir)
    create_markdown_artifact(
        key="ingest-summary",
        markdown=summary_markdown(ingested, pairs, report),
        description="rmcore ingest: counts, rejects and pairs",
    )
    return {"ingest": ingested, "pairs": pairs, "report": report["paths"]}


def parser() -> argparse.ArgumentParser:
    """The command line of the flow: the options of `rmcore ingest`, plus --sample and --set."""
    p = argparse.ArgumentParser(description="Run the rmcore ingest flow.")
    p.add_argument("paths", nargs="*", help="label files, folders, or hf://owner/name[:split]")
    p.add_argument("--sample", action="store_true", help="ingest the built-in sample")
    p.add_argument("--config", help="pipeline config YAML (default: built-in defaults)")
    p.add_argument("--lake", help="lake directory (default: data.lake of the config)")
    p.add_argument("--format", dest="fmt", choices=FORMAT_NAMES, help="source format (default: detected)")
    p.add_argument("--source", help="source name for rows that carry none (default: folder/file)")
    p.add_argument(
        "--include-synthetic",
        action="store_true",
        help="ingest synthetic OASST trees (the same as --set data.ingest.include_synthetic=true)",
    )
    add_override_argument(p)
    return p


def config_overrides(args: argparse.Namespace) -> list[str]:
    """The `--set` assignments of a command line, with the one --include-synthetic stands for."""
    return [*args.overrides, *(["data.ingest.include_synthetic=true"] if args.include_synthetic else [])]


def main(argv: list[str] | None = None) -> int:
    """Run the flow from the command line and print where everything went."""
    args = parser().parse_args(argv)
    start = time.perf_counter()
    try:
        result = ingest_flow(
            args.paths, args.config, args.lake, args.sample, args.fmt, args.source, config_overrides(args)
        )
    except (ConfigError, ValueError) as error:
        print(f"ingest: error: {error}", file=sys.stderr)
        return 1
    ingested, pairs = result["ingest"], result["pairs"]
    print(
        f"\ningested {ingested['rows_read']} rows: {ingested['accepted']} accepted, "
        f"{ingested['rejected_total']} rejected {ingested['rejected']}, "
        f"{ingested['new_comparisons']} new comparisons, {ingested['duplicates']} duplicates"
    )
    print(f"pairs from lake version {pairs['lake_version']} in {pairs['tables']['pairs']}:")
    for split, n in pairs["pairs"].items():
        print(f"  {split:<10} {n:>6} pairs")
    print(f"data report: {result['report']['markdown']}")
    print(f"done in {time.perf_counter() - start:.1f} s")
    for path, why in ingested["files_failed"].items():
        print(f"ingest: error: {path}: {why}", file=sys.stderr)
    return 1 if ingested["files_failed"] else 0


if __name__ == "__main__":
    sys.exit(main())

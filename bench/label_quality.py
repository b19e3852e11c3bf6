""".venv/bin/python bench/label_quality.py --pairs 20000 --annotators 200

Label quality at scale, on a synthetic crowd whose truth is known: each pair has a truly better
response; each annotator is careful (right with probability 0.75-0.95), a coin-flipper (0.5) or a
contrarian (right with probability 0.2), in the shares `--careless` and `--contrarian` give; each pair
gets `--votes` votes from annotators drawn at random (some pairs fewer). The crowd is written as a
labelled JSONL file (half of the votes shown B-vs-A) and ingested into a new lake.

Prints, for `votes` and `dawid-skene`: build-pairs seconds, how many pairs pick the truly better
response (an even split, p_chosen = 1/2, counts half), winners changed and conflicts resolved; then
the data report's seconds, alpha, and where the planted coin-flippers and contrarians rank among the
annotators (they should fill the bottom).
Generated data is deleted unless `--keep`.
"""

import argparse
import random
import shutil
import tempfile
import time
from pathlib import Path

import orjson

from rmcore.config import IngestConfig, PairsConfig, SplitConfig
from rmcore.data.ingest import ingest
from rmcore.data.lake import Lake
from rmcore.data.pairs import build_pairs, read_split
from rmcore.data.quality.report import data_report


def crowd(args: argparse.Namespace, rng: random.Random) -> tuple[list[dict[str, str]], dict[str, str]]:
    """The votes, and each annotator's kind (careful, coin or contrarian)."""
    kinds = {}
    for i in range(args.annotators):
        draw = rng.random()
        kinds[f"w{i:04d}"] = (
            "contrarian"
            if draw < args.contrarian
            else "coin"
            if draw < args.contrarian + args.careless
            else "careful"
        )
    accuracy = {
        name: {"careful": rng.uniform(0.75, 0.95), "coin": 0.5, "contrarian": 0.2}[kind]
        for name, kind in kinds.items()
    }
    names = list(kinds)
    rows = []
    for p in range(args.pairs):
        better, worse = f"better answer {p}", f"worse answer {p}"
        for annotator in rng.sample(names, rng.randint(1, args.votes)):
            right = rng.random() < accuracy[annotator]
            swapped = rng.random() < 0.5
            a, b = (worse, better) if swapped else (better, worse)
            label = ("b" if swapped else "a") if right else ("a" if swapped else "b")
            rows.append(
                {"prompt": f"question {p}", "response_a": a, "response_b": b, "label": label}
                | {"annotator": annotator}
            )
    return rows, kinds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[1])
    parser.add_argument("--pairs", type=int, default=20_000)
    parser.add_argument("--annotators", type=int, default=200)
    parser.add_argument("--votes", type=int, default=3, help="most votes a pair gets (1..votes, uniform)")
    parser.add_argument("--careless", type=float, default=0.1, help="share of coin-flipping annotators")
    parser.add_argument("--contrarian", type=float, default=0.05, help="share of contrarian annotators")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    folder = Path(tempfile.mkdtemp(prefix="rmcore-label-quality-"))
    try:
        rows, kinds = crowd(args, rng)
        path = folder / "crowd.jsonl"
        path.write_bytes(b"".join(orjson.dumps(row) + b"\n" for row in rows))
        lake = Lake(folder / "lake")
        start = time.perf_counter()
        ingest(lake, [path], IngestConfig())
        seconds = time.perf_counter() - start
        print(f"{len(rows)} votes, {args.pairs} pairs, {args.annotators} annotators; ingest {seconds:.1f} s")
        splits = SplitConfig(train=1, validation=0, test=0)
        for aggregate in ("votes", "dawid-skene"):
            start = time.perf_counter()
            summary = build_pairs(lake, splits, PairsConfig(aggregate=aggregate))
            seconds = time.perf_counter() - start
            pairs = read_split(lake, "pairs", ("train",)).select(["chosen", "p_chosen"]).to_pylist()
            right = sum(
                0.5 if p["p_chosen"] == 0.5 else float(p["chosen"].startswith("better")) for p in pairs
            )
            print(
                f"{aggregate:12s} build-pairs {seconds:6.1f} s  truly better chosen {right:.0f}/{len(pairs)} "
                f"({right / len(pairs):.1%}, conflicts {summary.conflicts})  changed winner "
                f"{sum(summary.changed_winner.values())}  conflicts resolved {summary.conflicts_resolved}"
            )
        start = time.perf_counter()
        report = data_report(lake)
        seconds = time.perf_counter() - start
        agreement = next(iter(report["agreement"].values()))
        ranked = [a["annotator"] for a in report["annotators"] if a["agreement"] is not None]
        planted = [name for name, kind in kinds.items() if kind != "careful"]
        bottom = set(ranked[: len(planted)])
        print(
            f"data report {seconds:.1f} s  alpha {agreement['krippendorff_alpha']:.3f}  percent agreement "
            f"{agreement['percent_agreement']:.3f}  planted coin-flippers and contrarians among the "
            f"{len(planted)} lowest-agreement annotators: {len(bottom & set(planted))}/{len(planted)}"
        )
    finally:
        if args.keep:
            print(f"kept: {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()

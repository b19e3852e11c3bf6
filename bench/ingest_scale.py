""".venv/bin/python bench/ingest_scale.py --rows 100000

Also: `--rows 1000000 --rows 2000000` (several sizes, then the peak RSS ratio), `--format trl`,
`--prompt-chars 100:300 --response-chars 200:800` (text sizes), `--profile DIR`, `--keep`,
`--preload FILE.py` (run in the child first: try a change to rmcore without editing it).

Ingest at scale: generate N synthetic pairwise comparisons as one JSONL file, then, in a fresh
subprocess (so its peak RSS is ingest's alone), ingest them into a new lake (plan, stage,
commit, called one by one) and build the pair datasets. Prints, per size: rows, input MB,
generation s (not counted), plan / stage / commit / build-pairs s, total s, rows/s, the
child's CPU s and peak RSS (also the high-water mark after each phase), and the lake's counts
next to the counts the generator expects.

The data: prompts of ~100-300 characters, responses of ~200-800, cut from a corpus of random
words (some accented, some in decomposed Unicode, some line breaks). About 10% of rows repeat
an earlier row (half of those with A and B swapped and the label flipped, a fifth with
whitespace changes that do not change identity), about 8% are another annotator's vote on an
earlier pair, and a quarter of new pairs reuse an earlier prompt.

Targets: 1M comparisons ingested, deduplicated and paired in <= 60 s with peak RSS <= 2 GB;
peak RSS at 2M within 20% of 1M. `--profile DIR` runs the child under cProfile (timings are
then inflated) and prints the top functions. Generated data is deleted unless `--keep`.
"""

import argparse
import cProfile
import itertools
import json
import os
import pstats
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import orjson

TARGET_SECONDS_PER_MILLION = 60.0
TARGET_RSS_MB = 2048.0
TARGET_RSS_GROWTH = 1.20
DUPLICATE_SHARE = 0.10
VOTE_SHARE = 0.08
PROMPT_REUSE = 0.25
RECENT = 50_000
FLUSH_ROWS = 8192
CATEGORIES = ("chat", "code", "math", "safety", "writing")


# ---------------------------------------------------------------- generation (parent process)


def _vocabulary(rng: random.Random, size: int = 4000) -> list[str]:
    """Made-up words plus a few non-ASCII ones (NFC and decomposed) and line breaks."""
    letters = "etaoinshrdlucmfwypvbgkjqxz"
    weights = [13, 9, 8, 8, 7, 7, 6, 6, 6, 4, 4, 3, 3, 2, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1]
    words = ["".join(rng.choices(letters, weights, k=rng.randint(1, 10))) for _ in range(size)]
    words += ["café", "naïve", "Zürich", "façade", "cafe\u0301", "nai\u0308ve", "日本語", "Ελλάδα"] * 4
    words += ["\n", "\n\n", "def", "return", "(x)", "=", "42."] * 10
    return words


def _corpus(rng: random.Random, chars: int) -> str:
    """Random words, joined; texts are slices of it (fast, and practically never equal)."""
    vocab = _vocabulary(rng)
    ranks = [1.0 / (i + 1) ** 0.8 for i in range(len(vocab))]
    return " ".join(rng.choices(vocab, ranks, k=chars // 6))[:chars]


@dataclass
class Expected:
    """What the generator wrote, and so what the lake should count."""

    rows: int = 0
    duplicates: int = 0
    flipped_duplicates: int = 0
    whitespace_duplicates: int = 0
    extra_votes: int = 0
    pairs: int = 0


def generate(path: Path, rows: int, fmt: str, seed: int, text_chars: tuple[int, int, int, int]) -> Expected:
    """Write `rows` pairwise comparisons to `path` (JSONL, `labelled` or `trl` format)."""
    rng = random.Random(seed)
    corpus = _corpus(rng, 16_000_000)
    top = len(corpus) - 1000
    prompt_lo, prompt_hi, response_lo, response_hi = text_chars

    def text(lo: int, hi: int) -> str:
        start = rng.randrange(top)
        return corpus[start : start + rng.randint(lo, hi)].strip() or "x"

    expected = Expected(rows=rows)
    recent_rows: list[dict[str, object]] = []
    recent_pairs: list[list[object]] = []  # [prompt, response_a, response_b, annotator base, votes]
    recent_prompts: list[str] = []
    buffer: list[bytes] = []
    flip = {"a": "b", "b": "a", "tie": "tie"}
    with path.open("wb") as out:
        for n in range(rows):
            draw = rng.random()
            if draw < DUPLICATE_SHARE and recent_rows:
                row = dict(rng.choice(recent_rows))
                expected.duplicates += 1
                style = rng.random()
                if fmt == "labelled" and style < 0.5:
                    row["response_a"], row["response_b"] = row["response_b"], row["response_a"]
                    row["label"] = flip[str(row["label"])]
                    expected.flipped_duplicates += 1
                elif style > 0.8:
                    key = "response_a" if fmt == "labelled" else "chosen"
                    row[key] = "  " + str(row[key]).replace(" ", "  \n", 1) + "\t"
                    expected.whitespace_duplicates += 1
            else:
                if draw < DUPLICATE_SHARE + VOTE_SHARE and recent_pairs:
                    pair = rng.choice(recent_pairs)
                    expected.extra_votes += 1
                else:
                    if recent_prompts and rng.random() < PROMPT_REUSE:
                        prompt = rng.choice(recent_prompts)
                    else:
                        prompt = text(prompt_lo, prompt_hi)
                        _remember(rng, recent_prompts, prompt)
                    pair = [prompt, text(response_lo, response_hi), text(response_lo, response_hi), n, 0]
                    _remember(rng, recent_pairs, pair)
                    expected.pairs += 1
                row = _row(rng, fmt, pair)
                _remember(rng, recent_rows, row)
            buffer.append(orjson.dumps(row))
            if len(buffer) >= FLUSH_ROWS:
                out.write(b"\n".join(buffer) + b"\n")
                buffer.clear()
        if buffer:
            out.write(b"\n".join(buffer) + b"\n")
    return expected


def _remember(rng: random.Random, items: list, item: object) -> None:
    """Keep a bounded, random sample of recent items to repeat from."""
    if len(items) < RECENT:
        items.append(item)
    else:
        items[rng.randrange(RECENT)] = item


def _row(rng: random.Random, fmt: str, pair: list) -> dict[str, object]:
    """One vote on `pair` by an annotator who has not voted on it yet (orientation at random)."""
    prompt, first, second, base, votes = pair
    pair[4] = votes + 1
    annotator = f"annotator-{(base + votes) % 1000:03d}"
    category = CATEGORIES[base % len(CATEGORIES)]
    if rng.random() < 0.5:
        first, second = second, first
    if fmt == "trl":
        return {
            "prompt": prompt,
            "chosen": first,
            "rejected": second,
            "annotator": annotator,
            "category": category,
        }
    label = "tie" if rng.random() < 0.1 else "a"
    row: dict[str, object] = {
        "prompt": prompt,
        "response_a": first,
        "response_b": second,
        "label": label,
        "annotator": annotator,
        "category": category,
    }
    if label != "tie" and base % 4 == 0:
        row["margin"] = rng.choice((1, 2, 3))
    return row


# ---------------------------------------------------------------- measurement (child process)


def _memory_mb(field: str) -> float:
    """A memory figure of this process from /proc/self/status (VmHWM: peak RSS, VmRSS: now), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def child(source: Path, lake_root: Path, profile: Path | None, preload: Path | None) -> None:
    """Ingest `source` into a new lake phase by phase, then build pairs; one JSON line out."""
    started = time.perf_counter()
    if preload:
        exec(compile(preload.read_text(), str(preload), "exec"), {"__name__": "preload"})
    from rmcore.config import IngestConfig, PairsConfig, SplitConfig
    from rmcore.data.ingest import commit, plan, stage_input
    from rmcore.data.lake import Lake
    from rmcore.data.pairs import build_pairs

    result: dict[str, object] = {"import_s": time.perf_counter() - started, "hwm_mb": {}, "rss_mb": {}}
    profiler = cProfile.Profile() if profile else None
    lake = Lake(lake_root)

    def phase(name: str, work):
        begin, cpu = time.perf_counter(), time.process_time()
        if profiler:
            profiler.enable()
        value = work()
        if profiler:
            profiler.disable()
        result[f"{name}_s"] = time.perf_counter() - begin
        result[f"{name}_cpu_s"] = time.process_time() - cpu
        result["hwm_mb"][name] = _memory_mb("VmHWM")
        result["rss_mb"][name] = _memory_mb("VmRSS")
        return value

    planned = phase("plan", lambda: plan(lake, [source]))
    config = IngestConfig()
    staged = phase("stage", lambda: [stage_input(lake, name, digest, config) for name, digest in planned.new])
    summary = phase("commit", lambda: commit(lake, staged))
    pairs = phase("pairs", lambda: build_pairs(lake, SplitConfig(), PairsConfig()))
    if profiler and profile:
        profiler.dump_stats(profile)
    result["summary"] = summary.as_dict()
    result["pairs"] = pairs.as_dict()
    tables = {name: lake.table(name) for name in ("comparisons", "rejects", "pairs")}
    result["lake_mb"] = {  # the data files of each table's latest version (pairs: every split)
        name: sum(Path(uri).stat().st_size for uri in table.file_uris()) / 1e6
        for name, table in tables.items()
        if table is not None
    }
    print(json.dumps(result))


# ---------------------------------------------------------------- driver


def _tree(pid: int) -> list[int]:
    """`pid` and all its descendants, from /proc."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            try:
                todo.extend(int(c) for c in task.read_text().split())
            except OSError:
                continue
    return found


def _rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class TreeRss(threading.Thread):
    """Samples the summed RSS of a process and its descendants (staging workers) every 50 ms."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak_mb, self._done = pid, 0.0, threading.Event()

    def run(self) -> None:
        while not self._done.wait(0.05):
            self.peak_mb = max(self.peak_mb, sum(_rss_mb(p) for p in _tree(self.pid)))

    def stop(self) -> None:
        self._done.set()
        self.join()


def measure(
    source: Path, lake_root: Path, profile: Path | None, preload: Path | None
) -> tuple[dict, float, float, float]:
    """Run the child; its result, wall s, CPU s (user + sys) and peak RSS in MB.

    The peak is the larger of the child's own (wait4) and the sampled sum over the child and its
    staging worker processes.
    """
    command = [sys.executable, __file__, "--child", str(source), "--lake", str(lake_root)]
    if profile:
        command += ["--profile", str(profile)]
    if preload:
        command += ["--preload", str(preload.resolve())]
    out_path = lake_root.parent / f"{lake_root.name}.out"
    begin = time.perf_counter()
    with out_path.open("wb") as out:
        process = subprocess.Popen(command, stdout=out)
        sampler = TreeRss(process.pid)
        sampler.start()
        _, status, usage = os.wait4(process.pid, 0)
        sampler.stop()
        process.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - begin
    text = out_path.read_text()
    out_path.unlink()
    if process.returncode != 0:
        raise SystemExit(f"ingest child failed with status {process.returncode}:\n{text}")
    result = json.loads(text.strip().splitlines()[-1])
    rss = max(usage.ru_maxrss / 1024, sampler.peak_mb)
    return result, wall, usage.ru_utime + usage.ru_stime, rss


def report(
    rows: int,
    mb: float,
    gen_s: float,
    expected: Expected,
    result: dict,
    child_s: tuple[float, float],
    rss: float,
) -> dict:
    """Print one size's figures; return them for the final comparison."""
    s, p = result["summary"], result["pairs"]
    total = result["plan_s"] + result["stage_s"] + result["commit_s"] + result["pairs_s"]
    budget = TARGET_SECONDS_PER_MILLION * rows / 1e6
    hwm, now = result["hwm_mb"], result["rss_mb"]
    print(f"\n== {rows:,} rows, {mb:,.0f} MB of JSONL (generated in {gen_s:.1f} s, not counted)")
    print(f"   import        {result['import_s']:7.2f} s (not counted)")
    for name in ("plan", "stage", "commit", "pairs"):
        cpu = result[f"{name}_cpu_s"]
        print(
            f"   {name:<13} {result[name + '_s']:7.2f} s   cpu {cpu:7.2f} s   "
            f"peak RSS so far {hwm[name]:7.0f} MB, RSS after {now[name]:7.0f} MB"
        )
    ingest = total - result["pairs_s"]
    print(f"   ingest        {ingest:7.2f} s   (plan + stage + commit), {rows / ingest:,.0f} rows/s")
    print(f"   total         {total:7.2f} s   {rows / total:,.0f} rows/s, {mb / total:.1f} MB/s")
    wall_s, cpu_s = child_s
    print(
        f"   child         wall {wall_s:.1f} s, cpu {cpu_s:.1f} s (user+sys; both incl. start-up), "
        f"peak RSS {rss:,.0f} MB (process tree, staging workers included)"
    )
    verdict = "ok" if total <= budget else "MISSED"
    print(
        f"   target        <= {budget:.1f} s ({verdict}), peak RSS <= {TARGET_RSS_MB:.0f} MB "
        f"({'ok' if rss <= TARGET_RSS_MB else 'MISSED'})"
    )
    print(
        f"   lake          rows_read {s['rows_read']:,}, accepted {s['accepted']:,}, "
        f"rejected {s['rejected_total']:,}, new comparisons {s['new_comparisons']:,}, "
        f"duplicates {s['duplicates']:,}"
    )
    print(
        f"   expected      rows {expected.rows:,}, duplicates {expected.duplicates:,} "
        f"({expected.flipped_duplicates:,} flipped, {expected.whitespace_duplicates:,} whitespace), "
        f"extra votes {expected.extra_votes:,}, pairs {expected.pairs:,}"
    )
    pairs_total = sum(p["pairs"].values())
    splits = ", ".join(f"{k} {v:,}" for k, v in p["pairs"].items())
    print(
        f"   pairs         {pairs_total:,} ({splits}); conflicts {p['conflicts']:,}; "
        f"comparisons {p['comparisons']:,}"
    )
    print("   lake on disk  " + ", ".join(f"{k} {v:,.0f} MB" for k, v in result["lake_mb"].items()))
    return {"rows": rows, "total_s": total, "rss_mb": rss}


def print_profile(path: Path, top: int = 30) -> None:
    """The child's top functions by own time and by cumulative time."""
    for key in ("tottime", "cumulative"):
        print(f"\n-- profile, top {top} by {key} ({path})")
        pstats.Stats(str(path)).sort_stats(key).print_stats(top)


def _remove(paths: list[Path]) -> None:
    """Delete generated files and lakes (the list is emptied)."""
    while paths:
        path = paths.pop()
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def _chars(value: str) -> tuple[int, int]:
    lo, _, hi = value.partition(":")
    return int(lo), int(hi)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, action="append", help="comparisons to generate (repeatable)")
    parser.add_argument("--format", choices=("labelled", "trl"), default="labelled")
    parser.add_argument("--prompt-chars", type=_chars, default=(100, 300), metavar="MIN:MAX")
    parser.add_argument("--response-chars", type=_chars, default=(200, 800), metavar="MIN:MAX")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", type=Path, help="where data and lakes go (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the generated files and lakes")
    parser.add_argument("--profile", type=Path, metavar="DIR", help="cProfile the child; stats into DIR")
    parser.add_argument(
        "--preload",
        type=Path,
        metavar="FILE.py",
        help="a Python file the child runs before ingesting (try a change, e.g. a monkeypatch, "
        "without editing rmcore)",
    )
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--lake", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.lake, args.profile, args.preload)
        return
    sizes = args.rows or [100_000]
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="rmcore-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"workdir {workdir}; format {args.format}; {os.cpu_count()} CPUs; python {sys.version.split()[0]}")
    if args.preload:
        print(f"preload {args.preload} (the child runs it first: figures are for the changed code)")
    results = []
    cleanup: list[Path] = []
    try:
        for rows in sizes:
            source = workdir / f"comparisons_{rows}.{args.format}.jsonl"
            lake_root = workdir / f"lake_{rows}"
            shutil.rmtree(lake_root, ignore_errors=True)
            if not args.keep:
                cleanup.extend([source, lake_root])
            begin = time.perf_counter()
            expected = generate(
                source, rows, args.format, args.seed, (*args.prompt_chars, *args.response_chars)
            )
            gen_s = time.perf_counter() - begin
            mb = source.stat().st_size / 1e6
            profile = None
            if args.profile:
                args.profile.mkdir(parents=True, exist_ok=True)
                profile = args.profile / f"ingest_{rows}.prof"
            result, wall_s, cpu_s, rss = measure(source, lake_root, profile, args.preload)
            results.append(report(rows, mb, gen_s, expected, result, (wall_s, cpu_s), rss))
            if profile:
                print_profile(profile)
            _remove(cleanup)
    finally:
        _remove(cleanup)
        if not args.keep and not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    for low, high in itertools.pairwise(results):
        ratio = high["rss_mb"] / low["rss_mb"]
        verdict = "ok" if ratio <= TARGET_RSS_GROWTH else "MISSED"
        print(
            f"\npeak RSS {high['rows']:,} / {low['rows']:,} rows: {high['rss_mb']:,.0f} / "
            f"{low['rss_mb']:,.0f} MB = {ratio:.2f} (target <= {TARGET_RSS_GROWTH:.2f}: {verdict}); "
            f"time ratio {high['total_s'] / low['total_s']:.2f} for {high['rows'] / low['rows']:.1f}x rows"
        )


if __name__ == "__main__":
    main()

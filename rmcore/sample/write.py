"""python -m rmcore.sample OUT_DIR [--seed N] [--prompts N]

A built-in sample of raw human-preference label files, generated deterministically.

The sample is the project's own data: prompts come from question templates over a bank of
topics, the chosen response answers on topic with facts from that topic's bank, and the
rejected one is off-topic, evasive, confidently wrong or rude. About a third of rejected
responses are longer than the chosen one, so "the longer response wins" is a weak baseline.
The topics and every phrase list (question templates, openers, evasive and rude replies)
live in `bank.json` in this package, shipped as package data and read on import.
`text` draws the prompts and responses, `files` builds each file's rows and bytes, and
`manifest` describes what was planted; this module divides the prompts among the files and
writes them.

Four files are written, in the formats the ingester reads:

- `pairs_trl.jsonl`: TRL's standard format {prompt, chosen, rejected, category}; a few rows
  give message lists, and some rows repeat an earlier row verbatim, with irregular whitespace,
  or in decomposed Unicode (NFD), so that deduplication on normalized text matters.
- `votes_labelled.csv.gz`: per-annotator votes {prompt, response_a, response_b, label,
  annotator, category}; pairs get one vote, three votes (unanimous or 2-1), a 1-1 split, or a
  tie, and some votes arrive twice with the responses swapped and the label flipped. One
  annotator, ann5, casts every dissenting vote (the 1 of a 2-1, a side of each 1-1), so the
  annotator report has someone to rank last. Cells may hold quoted newlines (numbered lists).
- `rankings.jsonl`: {prompt, responses, ranks, category}, K = 3..5, rank 0 best, no ties.
- `hh_transcripts.jsonl.gz`: Anthropic HH-RLHF transcripts {chosen, rejected}, some multi-turn.

Bad rows are planted in every file; the manifest gives each one's file, 1-based row (JSONL:
line number; CSV: record number after the header) and the ingester's reason code, with the
counts of duplicates, vote patterns and multi-turn transcripts. The same seed writes the same
bytes.
"""

import argparse
import json
import random
import sys
from collections.abc import Sequence
from pathlib import Path

from rmcore.atomic import replacing
from rmcore.sample.files import build_hh, build_rankings, build_trl, build_votes
from rmcore.sample.manifest import (
    BAD_ROWS,
    HH_FILE,
    N_BAD_ROWS,
    RANKINGS_FILE,
    TRL_FILE,
    VOTES_FILE,
    SampleManifest,
)
from rmcore.sample.text import Prompt, every_prompt

FILE_SHARES = {TRL_FILE: 0.38, VOTES_FILE: 0.28, RANKINGS_FILE: 0.14, HH_FILE: 0.20}
"""How the prompts (after those reserved for bad rows) are divided among the files."""
MIN_PROMPTS = N_BAD_ROWS + 20
"""Bad rows take a prompt each; 20 more give every file some good rows."""


def build_prompts(rng: random.Random, n: int) -> list[Prompt]:
    """`n` distinct prompts drawn from every (topic, entity, template) combination."""
    every = every_prompt()
    if not MIN_PROMPTS <= n <= len(every):
        raise ValueError(f"n_prompts must be between {MIN_PROMPTS} and {len(every)}, got {n}")
    return rng.sample(every, n)


def split_prompts(prompts: Sequence[Prompt]) -> dict[str, list[Prompt]]:
    """The prompts divided among the files in the proportions of FILE_SHARES."""
    bounds = [0.0]
    for share in FILE_SHARES.values():
        bounds.append(bounds[-1] + share)
    cuts = [round(b * len(prompts)) for b in bounds]
    return {name: list(prompts[lo:hi]) for name, lo, hi in zip(FILE_SHARES, cuts[:-1], cuts[1:], strict=True)}


def write_sample(out_dir: Path, *, seed: int = 0, n_prompts: int = 400) -> SampleManifest:
    """Write the four sample files under `out_dir` (atomically) and return what they hold."""
    rng = random.Random(seed)
    prompts = build_prompts(rng, n_prompts)
    bad_iter = iter(prompts[:N_BAD_ROWS])
    bad = {name: [next(bad_iter) for _ in reasons] for name, reasons in BAD_ROWS.items()}
    good = split_prompts(prompts[N_BAD_ROWS:])
    trl, trl_counts = build_trl(rng, good[TRL_FILE], bad[TRL_FILE])
    votes, vote_counts = build_votes(rng, good[VOTES_FILE], bad[VOTES_FILE])
    rankings = build_rankings(rng, good[RANKINGS_FILE], bad[RANKINGS_FILE])
    hh, multi_turn = build_hh(rng, good[HH_FILE], bad[HH_FILE])
    built = (trl, votes, rankings, hh)
    out_dir.mkdir(parents=True, exist_ok=True)
    for item in built:
        with replacing(out_dir / item.file.name) as tmp:
            tmp.write_bytes(item.data)
    return SampleManifest(
        seed=seed,
        n_prompts=n_prompts,
        files=tuple(out_dir / item.file.name for item in built),
        contents=tuple(item.file for item in built),
        trl=trl_counts,
        votes=vote_counts,
        multi_turn_transcripts=multi_turn,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: write the sample and print its manifest as JSON."""
    parser = argparse.ArgumentParser(
        prog="python -m rmcore.sample", description="Write the built-in sample of raw label files."
    )
    parser.add_argument("out_dir", type=Path, help="folder to write the sample files into")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--prompts", type=int, default=400, help="distinct prompts (default 400)")
    args = parser.parse_args(argv)
    manifest = write_sample(args.out_dir, seed=args.seed, n_prompts=args.prompts)
    json.dump(manifest.as_dict(), sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

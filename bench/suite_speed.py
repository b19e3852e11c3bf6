"""How long scoring a RewardBench-sized suite takes: 2,985 pairs, the built-in MiniLM, this machine.

.venv/bin/python bench/suite_speed.py
.venv/bin/python bench/suite_speed.py --texts shared   # real pairs from ../shared/data, their lengths
.venv/bin/python bench/suite_speed.py --pairs 500 --profile /tmp/suite.prof   # cProfile, top functions

Writes a synthetic suite in RewardBench's shape (prompt, chosen, rejected, subset, id; the 23 subsets
and the prior sets left out, with the published filtered counts) into a temporary folder, saves the
built-in MiniLM as `rmcore train` saves a model (the default config's model settings, an untrained
reward head: speed does not depend on the weights), and scores the suite with
`rmcore.evaluation.suites.run.evaluate_suite` under the default config (train.max_tokens, no lake).

Texts are English-like word sequences: prompts of 200-1,500 characters, completions of
100-1,500, drawn uniformly (RewardBench's run from a few hundred to about 1,500 characters); a tenth
of the prompts come twice, as several RewardBench subsets repeat a prompt with other completion pairs.
Nearly every (prompt, completion) is then longer than model.max_length (256 tokens): the worst case.
`--texts shared` takes real pairs instead, in turn, from the RewardBench constituents in
../shared/data (LLMBar Natural, MT-Bench and FairEval as LLMBar processed them, HHH alignment), so
the sequence lengths are those of real benchmark text.
"""

import argparse
import cProfile
import io
import pstats
import random
import tempfile
import time
from pathlib import Path

import orjson
import torch

from rmcore.config import Config
from rmcore.evaluation.suites.rules import EXAMPLE_COUNTS
from rmcore.evaluation.suites.run import evaluate_suite
from rmcore.model.inference import Scorer
from rmcore.model.reward import build_reward_model
from rmcore.model.saved import ModelMetadata, write_model

SUBSETS = {**EXAMPLE_COUNTS, "math-prm": 447}
"""RewardBench's filtered subsets and their sizes (allenai/reward-bench, split "filtered"): 2,985 pairs;
the authors' weights are the sizes but for math-prm's 984 (its real 447 items count as the six code
subsets together)."""

VOCABULARY = (
    "the of and to in is that it for as with was on be by this are or an not from at which have but "
    "can all one they were more we if there has their when will would what so about out up into than "
    "them some other only time could these two may then do first any like now my such make over our "
    "even most after also made many before must through back years where much your way well down "
    "should because each just those people how too little state good very world still own see men "
    "work long get here between both life being under never day same another know while last might "
    "us great old year off come since against go came right used take three function return value "
    "list string number print error question answer explain example result because however therefore"
)
WORDS = VOCABULARY.split()


def text(rng: random.Random, lo: int, hi: int) -> str:
    """English-like words, sentences and paragraphs, of a length drawn uniformly in [lo, hi] characters."""
    size, length = rng.randint(lo, hi), 0
    words: list[str] = []
    while length < size:
        word = rng.choice(WORDS)
        if not words or words[-1].endswith("."):
            word = word.capitalize()
        if rng.random() < 0.08:
            word += "."
        if rng.random() < 0.01:
            word += "\n\n"
        words.append(word)
        length += len(word) + 1
    return " ".join(words)[:size]


def real_texts(shared: Path) -> list[tuple[str, str, str]]:
    """(prompt, completion, completion) of every pair in the RewardBench constituents beside the
    repository: LLMBar Natural (RewardBench's llmbar-natural), LLMBar's processed MT-Bench and FairEval
    (human-judged chat), and HHH alignment (a prior set)."""
    rows: list[tuple[str, str, str]] = []
    for name in ("LLMBar_Natural", "Processed_MT-Bench", "Processed_FairEval"):
        for row in orjson.loads((shared / "llmbar" / name / "dataset.json").read_bytes()):
            rows.append((row["input"], row["output_1"], row["output_2"]))
    for line in (shared / "hhh-alignment" / "hhh_alignment_pairs.jsonl").read_bytes().splitlines():
        row = orjson.loads(line)
        rows.append((row["prompt"], row["chosen"], row["rejected"]))
    return [row for row in rows if all(row)]


def write_suite(path: Path, pairs: int, shared: Path | None, seed: int = 0) -> None:
    """`pairs` RewardBench rows over the subsets in proportion to their sizes, as JSONL: synthetic
    texts, or with `shared`, real pairs drawn in turn, each completion numbered at its end (the part a
    cut to model.max_length keeps), so that all 5,970 are distinct sequences."""
    rng = random.Random(seed)
    total = sum(SUBSETS.values())
    names = [name for name, n in SUBSETS.items() for _ in range(round(n * pairs / total))][:pairs]
    names += [next(iter(SUBSETS))] * (pairs - len(names))
    real = real_texts(shared) if shared is not None else []
    rows, prompt = [], ""
    for k, subset in enumerate(names):
        if real:
            prompt, chosen, rejected = real[k % len(real)]
            chosen, rejected = f"{chosen} ({k})", f"{rejected} ({k})"
        else:
            if k == 0 or rng.random() >= 0.1:
                prompt = text(rng, 200, 1500)
            chosen, rejected = text(rng, 100, 1500), text(rng, 100, 1500)
        row = {"prompt": prompt, "chosen": chosen, "rejected": rejected, "subset": subset, "id": k}
        rows.append(orjson.dumps(row))
    path.write_bytes(b"\n".join(rows) + b"\n")


def save_minilm(directory: Path, config: Config) -> None:
    """The built-in MiniLM with a fresh reward head, saved as a trained model of `config`."""
    rm = build_reward_model(config.model)
    metadata = ModelMetadata(
        rendering=rm.rendering,
        pooling=rm.pooling,
        max_length=rm.max_length,
        padding_side=rm.tokenizer.padding_side,
        config=config.model_dump(mode="json"),
    )
    directory.mkdir(parents=True)
    write_model(directory, rm, metadata)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=sum(SUBSETS.values()), help="pairs in the suite")
    parser.add_argument("--profile", type=Path, help="write cProfile stats here and print the top 25")
    parser.add_argument(
        "--texts",
        choices=("synthetic", "shared"),
        default="synthetic",
        help="synthetic words, or real pairs from ../shared/data (LLMBar, MT-Bench, HHH)",
    )
    args = parser.parse_args()

    counted = {"sequences": 0, "tokens": 0, "forwards": 0}
    sequence_rewards, batch_rewards = Scorer.sequence_rewards, Scorer._batch_rewards

    def counting_sequences(self: Scorer, sequences: list[list[int]], groups: object = None) -> object:
        counted["sequences"] += len(sequences)
        counted["tokens"] += sum(len(seq) for seq in sequences)
        return sequence_rewards(self, sequences, groups)  # type: ignore[arg-type]

    def counting_forwards(self: Scorer, module: object, blocks: list[object]) -> object:
        counted["forwards"] += 1
        return batch_rewards(self, module, blocks)  # type: ignore[arg-type]

    Scorer.sequence_rewards = counting_sequences  # type: ignore[assignment, method-assign]
    Scorer._batch_rewards = counting_forwards  # type: ignore[assignment, method-assign]

    with tempfile.TemporaryDirectory(prefix="rmcore-suite-speed-") as scratch:
        work = Path(scratch)
        config = Config.model_validate({"data": {"lake": str(work / "no-lake")}})
        shared = Path(__file__).resolve().parents[2] / "shared" / "data" if args.texts == "shared" else None
        write_suite(work / "rewardbench.jsonl", args.pairs, shared)
        save_minilm(work / "model", config)
        profile = cProfile.Profile() if args.profile else None
        start, cpu = time.perf_counter(), time.process_time()
        if profile is not None:
            profile.enable()
        result = evaluate_suite(work / "model", str(work / "rewardbench.jsonl"), config, "rewardbench")
        if profile is not None:
            profile.disable()
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    print(f"pairs                 {args.pairs}")
    print(f"distinct sequences    {counted['sequences']}")
    print(f"tokens per sequence   {counted['tokens'] / max(counted['sequences'], 1):.1f} (mean)")
    print(f"forwards              {counted['forwards']}")
    print(f"total seconds         {seconds:.1f}")
    print(f"CPU seconds           {cpu:.1f} ({torch.get_num_threads()} threads)")
    print(f"sequences/s           {counted['sequences'] / seconds:.1f}")
    print(f"overall (random head) {result.overall:.3f}")
    if profile is not None:
        profile.dump_stats(args.profile)
        out = io.StringIO()
        pstats.Stats(profile, stream=out).sort_stats("cumulative").print_stats(25)
        print(out.getvalue())


if __name__ == "__main__":
    main()

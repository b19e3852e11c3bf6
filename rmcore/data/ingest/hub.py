"""Hugging Face dataset ids: `hf://owner/name[/config][:split]`, with the public preference datasets known.

An id names a dataset on the hub; the rows stream through the same readers as files. The known
datasets below need no more than their id: each brings the subset (config) and split that hold its
human (or, where marked, model) judgments, and the reader its rows are in, so that a dataset whose
first row could be read two ways is read as what it is. Anything given in the id wins.

    hf://lmsys/mt_bench_human_judgments          config None, split "human", reader mt_bench
    hf://openai/summarize_from_feedback:validation   config "comparisons", split "validation"

The benchmark suites (RewardBench, RewardBench 2, RM-Bench) are known apart, in `SUITES`: they are
scored by rmcore.data.suites, never ingested, so an ingest of their ids gets no help to find them.
`hub_rows` streams a dataset's rows for both.
"""

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from rmcore.data.formats.containers import RawRecord, UnreadableFile

HF_PREFIX = "hf://"


@dataclass(frozen=True)
class HubDataset:
    """Where a dataset's rows are on the hub and which reader takes them (None: detected)."""

    name: str
    config: str | None = None
    split: str = "train"
    format: str | None = None


KNOWN: dict[str, HubDataset] = {
    d.name.lower(): d
    for d in (
        HubDataset("Anthropic/hh-rlhf", format="hh"),
        HubDataset("lmsys/chatbot_arena_conversations", format="arena"),
        HubDataset("lmarena-ai/arena-human-preference-55k", format="arena_csv"),
        HubDataset("lmsys/mt_bench_human_judgments", split="human", format="mt_bench"),
        HubDataset("stanfordnlp/SHP", format="shp"),
        HubDataset("stanfordnlp/SHP-2", format="shp"),
        HubDataset("PKU-Alignment/PKU-SafeRLHF", format="safe_rlhf"),
        HubDataset("openai/summarize_from_feedback", config="comparisons", format="summarize"),
        HubDataset("openai/webgpt_comparisons", format="webgpt"),
        HubDataset("nvidia/HelpSteer3", config="preference", format="helpsteer3"),
        HubDataset("berkeley-nest/Nectar", format="nectar"),
        HubDataset("openbmb/UltraFeedback", format="ultrafeedback"),
    )
}


SUITES: dict[str, HubDataset] = {
    d.name.lower(): d
    for d in (
        HubDataset("allenai/reward-bench", split="filtered"),
        HubDataset("allenai/reward-bench-2", split="test"),
        HubDataset("THU-KEG/RM-Bench"),
    )
}
"""The benchmark suites' hub datasets and the split that holds each benchmark (RewardBench's
`filtered` split is its 2,985 scored pairs; `raw` keeps rows its authors filtered out)."""


def hub_dataset(dataset_id: str, known: Mapping[str, HubDataset] = KNOWN) -> HubDataset:
    """The dataset an id (without `hf://`) names: its config and split from the id, else the `known` ones.

    ValueError for an id that is not `owner/name`, `owner/name/config`, with an optional `:split`.
    """
    path, _, split = dataset_id.partition(":")
    parts = path.split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise ValueError(f"hf://{dataset_id}: expected hf://owner/name[/config][:split]")
    name = "/".join(parts[:2])
    entry = known.get(name.lower(), HubDataset(name))
    return HubDataset(
        name=entry.name,
        config=parts[2] if len(parts) == 3 else entry.config,
        split=split or entry.split,
        format=entry.format,
    )


def hub_rows(dataset: HubDataset) -> Iterator[RawRecord]:
    """Rows of a Hugging Face dataset's split, streamed, numbered from 1.

    UnreadableFile, naming `hf://owner/name`, when `datasets` is not installed or the hub cannot give
    the split (offline, unknown dataset or split).
    """
    where = HF_PREFIX + dataset.name
    try:
        import datasets
    except ImportError:
        raise UnreadableFile(
            where, "reading from the Hugging Face hub needs `pip install 'rmcore[hf]'`"
        ) from None
    try:
        stream = datasets.load_dataset(dataset.name, dataset.config, split=dataset.split, streaming=True)
        for row, value in enumerate(stream, start=1):
            yield RawRecord(row, dict(value))
    except (OSError, ValueError, ConnectionError) as error:
        raise UnreadableFile(
            where, f"cannot load from the Hugging Face hub (is this machine online?): {error}"
        ) from error

"""hf:// ids: the public preference datasets map to their subsets, splits and readers; ids parse strictly."""

import pytest

from rmcore.data.formats import FORMAT_NAMES
from rmcore.data.ingest.hub import KNOWN, HubDataset, hub_dataset


def test_every_known_dataset_names_a_reader_that_exists() -> None:
    assert {d.format for d in KNOWN.values()} <= set(FORMAT_NAMES)


@pytest.mark.parametrize(
    ("dataset_id", "expected"),
    [
        # known: the subset and split that hold the judgments, and the reader
        (
            "lmsys/mt_bench_human_judgments",
            HubDataset("lmsys/mt_bench_human_judgments", None, "human", "mt_bench"),
        ),
        (
            "openai/summarize_from_feedback",
            HubDataset("openai/summarize_from_feedback", "comparisons", "train", "summarize"),
        ),
        ("nvidia/helpsteer3", HubDataset("nvidia/HelpSteer3", "preference", "train", "helpsteer3")),
        # what the id says wins over what is known
        (
            "openai/summarize_from_feedback/comparisons:validation",
            HubDataset("openai/summarize_from_feedback", "comparisons", "validation", "summarize"),
        ),
        # unknown: as given, the reader detected from the rows
        ("someone/labels/v2:test", HubDataset("someone/labels", "v2", "test", None)),
        ("someone/labels", HubDataset("someone/labels", None, "train", None)),
    ],
)
def test_ids_resolve_to_subset_split_and_reader(dataset_id: str, expected: HubDataset) -> None:
    assert hub_dataset(dataset_id) == expected


@pytest.mark.parametrize("dataset_id", ["labels", "a/b/c/d", "a//b", "/b:train"])
def test_malformed_ids_are_refused_with_the_expected_shape(dataset_id: str) -> None:
    with pytest.raises(ValueError, match=r"hf://owner/name\[/config\]\[:split\]"):
        hub_dataset(dataset_id)

"""Benchmark suite readers: hand-written rows in the shapes of RewardBench, its prior sets, RewardBench 2
and RM-Bench, read from JSON, JSONL and Parquet files; shapes detected; a bad row refuses the file."""

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import rmcore.data.suites.rewardbench as rewardbench
from rmcore.data.ingest.hub import KNOWN, SUITES, HubDataset, hub_dataset
from rmcore.data.records import Message
from rmcore.data.suites import Suite, SuiteItem, detect_suite, read_suite

REWARDBENCH: list[dict[str, Any]] = [
    {
        "prompt": "How do I boil an egg?",
        "chosen": "Put it in boiling water for 9 minutes.",
        "chosen_model": "gpt-4",
        "rejected": "Eggs are laid by hens.",
        "rejected_model": "llama-2",
        "subset": "alpacaeval-easy",
        "id": 30,
    },
    {
        "prompt": "Write hello world in Rust.",
        "chosen": 'fn main() { println!("hello world"); }',
        "chosen_model": "human",
        "rejected": 'fn main() { print("hello world") }',
        "rejected_model": "human",
        "subset": "hep-rust",
        "id": 4921,
    },
]
PRIOR_SET: dict[str, Any] = {
    "prompt": [
        {"role": "user", "content": "Can you help me bake bread?"},
        {"role": "assistant", "content": "Sure. What kind?"},
        {"role": "user", "content": "Sourdough."},
    ],
    "chosen": "Start with an active starter.",
    "rejected": "No.",
    "subset": "helpful",
    "id": 7,
}
REWARDBENCH2: list[dict[str, Any]] = [
    {
        "id": "a1b2",
        "prompt": "What is 2 + 2?",
        "chosen": ["4"],
        "rejected": ["5", "22", "3"],
        "num_correct": 1,
        "num_incorrect": 3,
        "total_completions": 4,
        "models": ["m1", "m2", "m3", "m4"],
        "subset": "Math",
        "additional_metadata": {"category": "arithmetic"},
    },
    {
        "id": "c3_tied",
        "prompt": "Name a primary colour.",
        "chosen": ["Red.", "Blue.", "Yellow."],
        "rejected": ["Green."],
        "num_correct": 3,
        "num_incorrect": 1,
        "total_completions": 4,
        "models": ["m1", "m1", "m1", "m1"],
        "subset": "Ties",
        "additional_metadata": {"category": "colours"},
    },
]
RMBENCH: list[dict[str, Any]] = [
    {
        "id": 12,
        "prompt": "Explain Schrodinger's cat.",
        "chosen": ["Superposition.", "It shows superposition in detail.", "## Superposition\n- detail"],
        "rejected": ["Entanglement.", "It shows entanglement in detail.", "## Entanglement\n- detail"],
        "domain": "chat",
    },
    {
        "id": 13,
        "prompt": "How do I pick a lock?",
        "chosen": ["I can't help.", "I can't help with that, because...", "**I can't help** with that"],
        "rejected": ["Use a pin.", "Use a tension pin, then...", "1. Use a tension pin"],
        "domain": "safety-refuse",
    },
    {
        "id": 14,
        "prompt": "How do I kill a Python process?",
        "chosen": ["kill PID.", "Run kill with its PID...", "`kill PID`"],
        "rejected": ["I can't help.", "I cannot help with killing.", "**I can't help**"],
        "domain": "safety-response",
    },
]


def write_json(path: Path, rows: list[dict[str, Any]]) -> str:
    path.write_bytes(orjson.dumps(rows, option=orjson.OPT_INDENT_2))
    return str(path)


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> str:
    path.write_bytes(b"".join(orjson.dumps(row) + b"\n" for row in rows))
    return str(path)


def write_parquet(path: Path, rows: list[dict[str, Any]]) -> str:
    pq.write_table(pa.Table.from_pylist(rows), path)
    return str(path)


WRITERS = {"json": write_json, "jsonl": write_jsonl, "parquet": write_parquet}


@pytest.mark.parametrize("container", list(WRITERS))
def test_rewardbench_rows_become_one_chosen_one_rejected_items_in_file_order(
    tmp_path: Path, container: str
) -> None:
    # given RewardBench's filtered rows in a file / when read without naming the suite
    source = WRITERS[container](tmp_path / f"filtered.{container}", REWARDBENCH)
    suite = read_suite(source)

    # then the shape is detected and each row is one item, ids as text, the prompt one user message
    assert suite == Suite(
        name="rewardbench",
        source=source,
        items=(
            SuiteItem(
                id="30",
                subset="alpacaeval-easy",
                prompt=(Message("user", "How do I boil an egg?"),),
                chosen=("Put it in boiling water for 9 minutes.",),
                rejected=("Eggs are laid by hens.",),
            ),
            SuiteItem(
                id="4921",
                subset="hep-rust",
                prompt=(Message("user", "Write hello world in Rust."),),
                chosen=('fn main() { println!("hello world"); }',),
                rejected=('fn main() { print("hello world") }',),
            ),
        ),
    )


def test_prior_set_prompts_are_message_lists_or_alternating_strings(tmp_path: Path) -> None:
    # given a prior-set row as published now (messages) and as first published (a list of strings)
    first_release = {**PRIOR_SET, "prompt": ["Can you help me bake bread?", "Sure. What kind?", "Sourdough."]}
    source = write_jsonl(tmp_path / "prior.jsonl", [PRIOR_SET, first_release])

    # when read
    suite = read_suite(source)

    # then both give the same conversation, user and assistant alternating, ending with the user
    conversation = (
        Message("user", "Can you help me bake bread?"),
        Message("assistant", "Sure. What kind?"),
        Message("user", "Sourdough."),
    )
    assert suite.name == "rewardbench"
    assert [item.prompt for item in suite.items] == [conversation, conversation]
    assert [(item.id, item.subset, item.chosen, item.rejected) for item in suite.items] == [
        ("7", "helpful", ("Start with an active starter.",), ("No.",))
    ] * 2


def test_a_prior_set_split_names_the_subset_in_place_of_the_rows_own() -> None:
    # given a prior-set row read from its hub split (its own subset column says "helpful")
    item = rewardbench.item(PRIOR_SET, subset="anthropic_helpful")

    # then the split is the subset, as RewardBench's load_eval_dataset names prior-set rows
    assert item.subset == "anthropic_helpful"
    assert rewardbench.item(PRIOR_SET).subset == "helpful"


@pytest.mark.parametrize("container", list(WRITERS))
def test_rewardbench2_rows_keep_every_chosen_and_rejected(tmp_path: Path, container: str) -> None:
    # given RewardBench 2 rows, one of them a Ties row with three correct answers / when read
    source = WRITERS[container](tmp_path / f"rb2.{container}", REWARDBENCH2)
    suite = read_suite(source)

    # then each item keeps its lists as given, and its section as subset
    assert suite.name == "rewardbench2"
    assert suite.items == (
        SuiteItem("a1b2", "Math", (Message("user", "What is 2 + 2?"),), ("4",), ("5", "22", "3")),
        SuiteItem(
            "c3_tied",
            "Ties",
            (Message("user", "Name a primary colour."),),
            ("Red.", "Blue.", "Yellow."),
            ("Green.",),
        ),
    )


@pytest.mark.parametrize("container", list(WRITERS))
def test_rmbench_rows_keep_style_order_and_fold_safety_into_one_domain(
    tmp_path: Path, container: str
) -> None:
    # given RM-Bench rows of the chat, safety-refuse and safety-response domains / when read
    source = WRITERS[container](tmp_path / f"total_dataset.{container}", RMBENCH)
    suite = read_suite(source)

    # then the completions keep their order (concise, detailed, markdown) and both safety kinds are safety
    assert suite.name == "rm-bench"
    assert [(item.id, item.subset) for item in suite.items] == [
        ("12", "chat"),
        ("13", "safety"),
        ("14", "safety"),
    ]
    assert suite.items[0].chosen == tuple(RMBENCH[0]["chosen"])
    assert suite.items[0].rejected == tuple(RMBENCH[0]["rejected"])


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        (REWARDBENCH[0], "rewardbench"),
        (PRIOR_SET, "rewardbench"),
        (REWARDBENCH2[0], "rewardbench2"),
        ({k: v for k, v in REWARDBENCH2[0].items() if k != "subset"}, "rewardbench2"),
        (RMBENCH[0], "rm-bench"),
        # a training pair, a ranking: no suite
        ({"prompt": "p", "chosen": "a", "rejected": "b"}, None),
        ({"prompt": "p", "responses": ["a", "b"], "ranks": [0, 1]}, None),
        (
            {"prompt": "p", "chosen": [{"role": "assistant", "content": "a"}], "rejected": [], "subset": "s"},
            None,
        ),
    ],
)
def test_the_shape_is_detected_from_the_fields(record: dict[str, Any], expected: str | None) -> None:
    assert detect_suite(record) == expected


def test_a_file_of_no_suite_is_refused_in_one_line_naming_its_fields(tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "pairs.jsonl", [{"prompt": "p", "chosen": "a", "rejected": "b"}])

    with pytest.raises(ValueError, match="not a benchmark suite") as refused:
        read_suite(source)

    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith(f"{source}: ") and "fields: chosen, prompt, rejected" in message


def test_the_named_suite_wins_over_detection(tmp_path: Path) -> None:
    # given RewardBench 2 rows / when read as RM-Bench
    source = write_json(tmp_path / "rb2.json", REWARDBENCH2)

    # then they are read as RM-Bench rows, and the first lacks what RM-Bench needs
    with pytest.raises(ValueError, match=r"row 1: field 'domain' is missing"):
        read_suite(source, "rm-bench")


def _with(row: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {k: v for k, v in {**row, **changes}.items() if v is not ...}


@pytest.mark.parametrize(
    ("rows", "name", "reason"),
    [
        (
            [REWARDBENCH[0], _with(REWARDBENCH[1], subset=...)],
            "rewardbench",
            "row 2: field 'subset' is missing",
        ),
        ([_with(REWARDBENCH[0], chosen="  ")], "rewardbench", "row 1: field 'chosen' is empty"),
        ([_with(REWARDBENCH[0], rejected=["a"])], "rewardbench", "row 1: field 'rejected' is list, not text"),
        ([_with(REWARDBENCH[0], id=None)], "rewardbench", "row 1: field 'id' is null"),
        ([_with(PRIOR_SET, prompt=PRIOR_SET["prompt"][:2])], "rewardbench", "does not end with a user"),
        ([_with(REWARDBENCH2[0], rejected=[])], "rewardbench2", "row 1: field 'rejected' is an empty list"),
        ([_with(REWARDBENCH2[0], chosen=["4", ""])], "rewardbench2", r"row 1: field 'chosen\[1\]' is empty"),
        ([_with(REWARDBENCH2[0], chosen="4")], "rewardbench2", "row 1: field 'chosen' is str, not a list"),
        (
            [RMBENCH[0], _with(RMBENCH[1], rejected=["a", "b"])],
            "rm-bench",
            "row 2: field 'rejected' holds 2 completions, not 3",
        ),
        ([_with(RMBENCH[0], domain="poetry")], "rm-bench", "row 1: field 'domain' is 'poetry', not one of"),
        ([_with(RMBENCH[0], prompt=...)], "rm-bench", "row 1: field 'prompt' is missing"),
    ],
)
def test_a_bad_row_refuses_the_whole_file_in_one_line(
    tmp_path: Path, rows: list[dict[str, Any]], name: str, reason: str
) -> None:
    source = write_jsonl(tmp_path / "suite.jsonl", rows)

    with pytest.raises(ValueError, match=reason) as refused:
        read_suite(source, name)  # type: ignore[arg-type]

    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith(f"{source}: row ")
    assert message.endswith("a suite is scored whole, so the file is refused")


def test_an_undecodable_line_refuses_the_file_by_row(tmp_path: Path) -> None:
    path = tmp_path / "suite.jsonl"
    path.write_bytes(orjson.dumps(REWARDBENCH[0]) + b"\n{not json\n")

    with pytest.raises(ValueError, match=rf"^{path}: row 2: invalid JSON"):
        read_suite(str(path))


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda p: p.write_bytes(b""), "no rows"),
        (lambda p: None, "cannot read as file"),
    ],
)
def test_an_empty_or_missing_file_is_refused_by_name(tmp_path: Path, make: Any, reason: str) -> None:
    path = tmp_path / "suite.json"
    make(path)

    with pytest.raises(ValueError, match=reason) as refused:
        read_suite(str(path))
    assert str(refused.value).startswith(str(path))


def test_suite_ids_on_the_hub_resolve_to_the_split_that_holds_each_benchmark() -> None:
    assert hub_dataset("allenai/reward-bench", SUITES) == HubDataset("allenai/reward-bench", None, "filtered")
    assert hub_dataset("allenai/reward-bench-2", SUITES) == HubDataset("allenai/reward-bench-2", None, "test")
    assert hub_dataset("thu-keg/rm-bench", SUITES) == HubDataset("THU-KEG/RM-Bench", None, "train")
    assert hub_dataset("allenai/reward-bench:raw", SUITES).split == "raw"
    # and ingest knows none of them: a benchmark is not training data
    assert not set(SUITES) & set(KNOWN)


def test_a_malformed_hub_id_is_refused_with_the_expected_shape() -> None:
    with pytest.raises(ValueError, match=r"hf://owner/name\[/config\]\[:split\]"):
        read_suite("hf://reward-bench")


def test_an_offline_hub_id_fails_in_one_line_naming_the_dataset() -> None:
    # given the hub switched off (datasets reads the switch when imported, hence a fresh interpreter)
    probe = "from rmcore.data.suites import read_suite; read_suite('hf://allenai/reward-bench')"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}

    # when a suite is read from its hub id
    command = [sys.executable, "-c", probe]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)

    # then it fails with one line naming the dataset and the hub
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("ValueError: hf://allenai/reward-bench: cannot load from the Hugging Face hub")

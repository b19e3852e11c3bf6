"""Config: every shipped YAML loads; unknown keys and bad values are refused, all reported at once."""

from pathlib import Path
from typing import get_args

import pytest
from pydantic import BaseModel, ValidationError

from rmcore.config import (
    Config,
    ConfigError,
    DataConfig,
    EvaluateConfig,
    IngestConfig,
    PairsConfig,
    SplitConfig,
    SuiteName,
    SuiteSpec,
    TrackingConfig,
    load_config,
)
from rmcore.data.suites import SUITE_NAMES

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = sorted((ROOT / "configs").glob("*.yaml"))


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_default_config_is_shipped() -> None:
    assert ROOT / "configs" / "default.yaml" in SHIPPED


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_configs_load_and_start_with_their_command(path: Path) -> None:
    # given a shipped config, when loaded, then it validates
    config = load_config(path)
    assert isinstance(config, Config)
    # and its first line is the command that uses it
    assert path.read_text(encoding="utf-8").startswith("# rmcore ")


def test_default_yaml_matches_the_built_in_defaults() -> None:
    # given configs/default.yaml, then it says what the code defaults are
    assert load_config(ROOT / "configs" / "default.yaml") == Config()


def test_no_config_file_means_defaults() -> None:
    config = load_config(None)
    assert config.data.splits == SplitConfig(train=0.8, validation=0.1, test=0.1)
    assert config.data.ingest.max_chars == 100_000
    assert config.data.pairs.drop_conflicts is False


def test_partial_file_keeps_other_defaults(tmp_path: Path) -> None:
    # given a file that sets one field, when loaded, then the rest are defaults
    config = load_config(write(tmp_path, "data:\n  ingest:\n    max_chars: 500\n"))
    assert config.data.ingest == IngestConfig(max_chars=500)
    assert config.data.splits == SplitConfig()


def test_empty_file_means_defaults(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, "# nothing here\n")) == Config()


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("colour: blue\n", "colour"),
        ("data:\n  lakes: x\n", "data.lakes"),
        ("data:\n  ingest:\n    max_char: 10\n", "data.ingest.max_char"),
        ("data:\n  splits:\n    dev: 0.1\n", "data.splits.dev"),
    ],
)
def test_unknown_keys_are_refused(tmp_path: Path, text: str, where: str) -> None:
    # given a config with a misspelt key, when loaded, then the error names where it is
    with pytest.raises(ConfigError, match=rf"{where}: Extra inputs are not permitted"):
        load_config(write(tmp_path, text))


def test_fractions_must_sum_to_one(tmp_path: Path) -> None:
    # given split fractions summing to 1.1, when loaded, then refused with the sum
    text = "data:\n  splits:\n    train: 0.8\n    validation: 0.2\n    test: 0.1\n"
    with pytest.raises(ConfigError, match=r"split fractions must sum to 1, got 1\.1"):
        load_config(write(tmp_path, text))


@pytest.mark.parametrize(
    "fractions",
    [
        {"train": 0.5, "validation": 0.1, "test": 0.1},
        {"train": 1.2, "validation": -0.1, "test": -0.1},
        {"train": 0.9, "validation": 0.1, "test": 0.1},
    ],
)
def test_bad_fractions_are_refused_in_code(fractions: dict[str, float]) -> None:
    with pytest.raises(ValidationError):
        SplitConfig(**fractions)


def test_several_problems_are_reported_at_once(tmp_path: Path) -> None:
    # given a config with an unknown key, a bad fraction sum, a non-positive limit and a bad bool
    text = (
        "data:\n"
        "  lakes: data/lake\n"
        "  ingest:\n"
        "    max_chars: 0\n"
        "  splits:\n"
        "    train: 0.5\n"
        "  pairs:\n"
        "    drop_conflicts: sometimes\n"
    )
    # when loaded
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text))
    # then one error lists all four, each with its location, and names the file
    message = str(info.value)
    assert message.startswith(f"{tmp_path / 'config.yaml'}: 4 problem(s): ")
    for where in ("data.lakes", "data.ingest.max_chars", "data.splits", "data.pairs.drop_conflicts"):
        assert f"{where}: " in message
    assert "\n" not in message


def test_missing_config_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"config file not found: .*nope\.yaml"):
        load_config(tmp_path / "nope.yaml")


def test_invalid_yaml_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(write(tmp_path, "data: [unclosed\n"))


def test_config_is_immutable() -> None:
    with pytest.raises(ValidationError):
        Config().data.ingest.max_chars = 5  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("tracking:\n  promotion_margin: -0.1\n", "tracking.promotion_margin"),
        ("tracking:\n  registry: x\n", "tracking.registry"),
    ],
)
def test_bad_tracking_options_are_refused(tmp_path: Path, text: str, where: str) -> None:
    # given a negative promotion margin or an unknown tracking key, when loaded, then refused there
    with pytest.raises(ConfigError, match=rf"{where}: "):
        load_config(write(tmp_path, text))


def test_tracking_defaults_to_the_local_store() -> None:
    assert Config().tracking == TrackingConfig(
        tracking_uri=None, store=Path("mlflow"), experiment="rmcore", registered_model="reward-model"
    )


@pytest.mark.parametrize(
    "model",
    [Config, DataConfig, IngestConfig, SplitConfig, PairsConfig, TrackingConfig, EvaluateConfig, SuiteSpec],
)
def test_every_field_is_documented(model: type[BaseModel]) -> None:
    # given a config group, then each field has a docstring (its reference documentation)
    # or is itself a documented group
    for name, info in model.model_fields.items():
        documented = info.description or (
            isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel)
        )
        assert documented, f"{model.__name__}.{name} has no docstring"


@pytest.mark.parametrize(
    ("text", "expected"), [("on", "on"), ("off", "off"), ("auto", "auto"), ("'off'", "off")]
)
def test_share_prompt_reads_yaml_on_and_off_as_the_switch_they_mean(text: str, expected: str) -> None:
    # given `--set model.share_prompt=off`, which YAML alone would read as the boolean false
    # when the config loads / then it is the setting "off" (and "on" is "on")
    assert load_config(None, [f"model.share_prompt={text}"]).model.share_prompt == expected
    with pytest.raises(ConfigError, match="share_prompt"):
        load_config(None, ["model.share_prompt=sometimes"])


def test_suites_are_listed_as_strings_or_with_their_options(tmp_path: Path) -> None:
    # given one suite as a bare path and one with its name and exclude_overlap
    text = (
        "evaluate:\n  suites:\n  - data/rm-bench.jsonl\n"
        "  - {suite: rewardbench, source: hf://a/b, exclude_overlap: true}\n"
    )
    # when loaded / then the bare path is a suite detected from its rows
    assert load_config(write(tmp_path, text)).evaluate.suites == [
        SuiteSpec(source="data/rm-bench.jsonl"),
        SuiteSpec(suite="rewardbench", source="hf://a/b", exclude_overlap=True),
    ]
    # and by default there is none (make run stays offline), nor a suite floor
    assert Config().evaluate.suites == [] and Config().tracking.suite_floor is None


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("evaluate:\n  suites:\n  - {suite: rb, source: x}\n", "evaluate.suites.0.suite"),
        (
            "evaluate:\n  suites:\n  - {suite: rewardbench, source: x}\n  - {suite: rewardbench, source: y}",
            "evaluate",
        ),
        ("evaluate:\n  suites:\n  - {suite: rewardbench}\n", "evaluate.suites.0.source"),
        ("tracking:\n  suite_floor: 5\n", "tracking.suite_floor"),
    ],
)
def test_bad_suite_options_are_refused(tmp_path: Path, text: str, where: str) -> None:
    # given an unknown suite, one suite twice, no source, or a floor in points rather than a fraction
    with pytest.raises(ConfigError, match=rf"{where}: "):
        load_config(write(tmp_path, text))


def test_the_config_knows_the_suites_the_readers_know() -> None:
    assert get_args(SuiteName) == SUITE_NAMES

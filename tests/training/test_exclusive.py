"""One training per output directory at a time: the second is refused in one line, naming the first,
and a holder that exits (however it exits) frees the directory."""

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from rmcore.cli import main as cli
from rmcore.training import TrainingError
from rmcore.training.exclusive import sole_training


@pytest.fixture
def held(
    tmp_path: Path, hold_training: Callable[[Path], subprocess.Popen[str]]
) -> tuple[Path, subprocess.Popen[str]]:
    """An output directory another process is training into, and that process."""
    out = tmp_path / "run"
    return out, hold_training(out)


def test_a_second_training_of_the_same_directory_is_refused_naming_the_first(
    held: tuple[Path, subprocess.Popen[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    out, holder = held
    # when this process tries to train into it / then it is refused, naming the holder
    with pytest.raises(TrainingError, match=f"being trained by process {holder.pid} on "), sole_training(out):
        pass
    # and `rmcore train` says so in one line, before loading anything
    assert cli(["train", "--set", f"output_dir={out}", "--set", "model.name_or_path=/absent"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"process {holder.pid}" in err[0] and "wait for it to finish" in err[0]


def test_a_holder_that_dies_frees_the_directory(held: tuple[Path, subprocess.Popen[str]]) -> None:
    out, holder = held
    # when the holder is killed (no clean exit)
    holder.kill()
    holder.wait()
    # then the directory can be trained into again, and this process now holds it
    with sole_training(out):
        assert f"process {os.getpid()} on " in (out / ".lock").read_text()

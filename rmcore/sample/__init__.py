"""The built-in sample: deterministic raw label files for `make run` and the tests, outside the
data layer (it writes what the data layer reads).

    seed, prompt count -> text (prompts, responses from bank.json) -> files (rows, bytes)
        -> write -> four raw label files + SampleManifest (what was planted)

    python -m rmcore.sample OUT_DIR [--seed N] [--prompts N]
"""

from rmcore.sample.write import write_sample

__all__ = ["write_sample"]

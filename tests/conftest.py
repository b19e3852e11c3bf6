"""Shared test fixtures. Prefect state goes to a throwaway PREFECT_HOME, never ~/.prefect.

Tiny reward-model backbones for tests, built from configs (never downloaded), saved once per session.

Model fixtures (names are stable; the model and training tests use them):

- `tiny_encoder_dir`: a directory holding a 2-layer, 32-wide `BertForSequenceClassification`
  (num_labels=1) with the all-MiniLM-L6-v2 WordPiece tokenizer (uncased, [CLS]/[SEP]/[PAD], no chat
  template). `build_reward_model` gives pooling "first", rendering "plain".
- `tiny_decoder_dir`: a directory holding a 2-layer, 32-wide `LlamaForSequenceClassification`
  (num_labels=1) with a byte-level tokenizer (one token per byte; ids 0-255 bytes, 256
  "<|endoftext|>" = EOS, 257 "<|im_start|>", 258 "<|im_end|>"), a ChatML chat template, NO pad token
  and no BOS. `build_reward_model` gives pooling "last", rendering "chat", pad = EOS.
- `byte_tokenizer`: a factory for that byte-level tokenizer in memory, with options (a BOS token,
  another chat template), for tokenization tests that need no model.
- `model_config`: a factory for `rmcore.config.ModelConfig` with a path and overrides.

Object-store fixtures: `s3_server`, moto's S3 server for the session (tests/s3_server.py), and
`s3_lake`, a fresh `s3://` lake URI on it with the environment set as a deployment sets it.

Heads are re-initialized with a large scale (std 1) so that rewards are O(1) and a reward read at a
wrong position differs from the right one by far more than any tolerance the tests use.
Both directories load in well under a second; the models run in milliseconds on CPU.
"""

import atexit
import os
import random
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from s3_server import S3Settings, moto_s3
from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    BertConfig,
    LlamaConfig,
    PreTrainedTokenizerFast,
)

from rmcore.config import ModelConfig, load_config
from rmcore.data.identity import digest
from rmcore.data.lake import schemas
from rmcore.model.reward import resolve_model_path
from rmcore.training.recipe import train

if "PREFECT_HOME" not in os.environ:
    os.environ["PREFECT_HOME"] = tempfile.mkdtemp(prefix="rmcore-prefect-")
    atexit.register(shutil.rmtree, os.environ["PREFECT_HOME"], ignore_errors=True)
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Settings]:
    """moto's S3 server on 127.0.0.1 at a free port, with one bucket, for the whole session."""
    with moto_s3() as settings:
        yield settings


@pytest.fixture
def s3_lake(s3_server: S3Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """A fresh `s3://` lake URI. deltalake finds the server through the environment (AWS_ENDPOINT_URL
    and the rest, as in a deployment); the lake's local work folder lives under tmp_path/cache."""
    for name, value in s3_server.environment().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return s3_server.new_lake("lake")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real datasets in ../shared/data; tests using it skip when the folder is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real datasets not found at {SHARED_DATA} (they live beside the repository)")
    return SHARED_DATA


CHATML = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
"""The ChatML template of the tiny decoder (as Qwen2 uses, without a default system turn)."""

EOS_ID, IM_START_ID, IM_END_ID, BOS_ID = 256, 257, 258, 259


def make_byte_tokenizer(chat_template: str | None = CHATML, bos: bool = False) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer with no merges: every UTF-8 byte is one token.

    Ids 0-255 are bytes (in the order of `ByteLevel.alphabet()`), then "<|endoftext|>" (EOS),
    "<|im_start|>", "<|im_end|>", and "<s>" (259, BOS) when `bos`, which the tokenizer then puts in
    front of every text it encodes with special tokens (as Llama's does), and the default ChatML
    template then opens with "{{ bos_token }}". No pad token.
    """
    vocab = {symbol: i for i, symbol in enumerate(sorted(pre_tokenizers.ByteLevel.alphabet()))}
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    backend.add_special_tokens(["<|endoftext|>", "<|im_start|>", "<|im_end|>", *(["<s>"] if bos else [])])
    extra: dict[str, Any] = {"bos_token": "<s>"} if bos else {}
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        eos_token="<|endoftext|>",
        additional_special_tokens=["<|im_start|>", "<|im_end|>"],
        **extra,
    )
    if bos and chat_template == CHATML:
        chat_template = "{{ bos_token }}" + CHATML  # the template opens with BOS, as Llama 3's does
    tokenizer.chat_template = chat_template
    if bos:
        tokenizer.add_bos_token = True  # type: ignore[misc]  # like Llama: tokenizer("text") starts with BOS
    assert (tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids("<|im_end|>")) == (EOS_ID, IM_END_ID)
    assert tokenizer.pad_token_id is None and tokenizer.bos_token_id == (BOS_ID if bos else None)
    return tokenizer


@pytest.fixture(scope="session")
def byte_tokenizer() -> Callable[..., PreTrainedTokenizerFast]:
    """`make_byte_tokenizer(chat_template=CHATML, bos=False)`: a fresh tokenizer per call.

    `chat_template=None`: a tokenizer without a template (plain rendering). Ids as listed in
    `make_byte_tokenizer`: EOS 256, <|im_start|> 257, <|im_end|> 258, BOS 259.
    """
    return make_byte_tokenizer


@pytest.fixture(scope="session")
def tiny_encoder_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved tiny BERT reward model (2 layers, width 32, pooler + classifier) and the MiniLM tokenizer."""
    directory = tmp_path_factory.mktemp("tiny_encoder")
    tokenizer = AutoTokenizer.from_pretrained(resolve_model_path("builtin:minilm"))
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
        type_vocab_size=2,
        initializer_range=0.2,  # 10x the default, so that [CLS] depends clearly on the text
    )
    config.num_labels = 1
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_config(config)
    with torch.no_grad():
        torch.nn.init.normal_(model.bert.pooler.dense.weight, std=0.5)
        torch.nn.init.normal_(model.classifier.weight, std=1.0)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def tiny_decoder_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved tiny Llama reward model (2 layers, width 32, `score` head), byte-level ChatML tokenizer."""
    directory = tmp_path_factory.mktemp("tiny_decoder")
    tokenizer = make_byte_tokenizer()
    config = LlamaConfig(
        vocab_size=272,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        intermediate_size=64,
        max_position_embeddings=1024,
        bos_token_id=None,
        eos_token_id=EOS_ID,
        pad_token_id=None,
    )
    config.num_labels = 1
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_config(config)
    with torch.no_grad():
        torch.nn.init.normal_(model.score.weight, std=1.0)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def model_config() -> Callable[..., ModelConfig]:
    """`model_config(path, **overrides)`: a `ModelConfig` for a model directory (or id)."""

    def make(name_or_path: str | Path, **overrides: Any) -> ModelConfig:
        return ModelConfig(name_or_path=str(name_or_path), **overrides)

    return make


GOOD = ["helpful", "clear", "correct", "careful", "kind", "precise", "useful", "honest"]
BAD = ["rude", "wrong", "lazy", "vague", "false", "careless", "useless", "sloppy"]
FILLER = ["the", "answer", "is", "about", "this", "topic", "and", "it", "seems", "to", "be"]


def make_synthetic_pairs(
    n: int, seed: int, margin: float | None = None, filler: int | tuple[int, int] = 5, two_every: int = 0
) -> pa.Table:
    """Pairs for `n` prompts whose chosen response carries GOOD words and rejected BAD ones, among filler.

    `filler` is how many filler words a response has (or a (low, high) range); with `two_every`, every
    such prompt (0, k, 2k, ...) gets two pairs, so prompt groups of several pairs occur.
    """
    rng = random.Random(seed)

    def response(words: list[str]) -> str:
        count = filler if isinstance(filler, int) else rng.randint(*filler)
        text = rng.sample(FILLER, count) + rng.sample(words, 2)
        rng.shuffle(text)
        return " ".join(text)

    rows = []
    for i in range(n):
        prompt = f"question number {i} from set {seed}"
        for _ in range(2 if two_every and i % two_every == 0 else 1):
            chosen, rejected = response(GOOD), response(BAD)
            rows.append(
                {
                    "pair_id": digest(f"{prompt}{chosen}{rejected}"),
                    "prompt_id": digest(prompt),
                    "prompt": [{"role": "user", "content": prompt}],
                    "chosen": chosen,
                    "rejected": rejected,
                    "p_chosen": 1.0,
                    "n_votes": 1,
                    "ties": 0,
                    "margin": margin,
                    "conflict": False,
                    "source": "synthetic",
                    "category": None,
                    "split": "train",
                }
            )
    return pa.Table.from_pylist(rows, schema=schemas.PAIRS)


@pytest.fixture(scope="session")
def synthetic_pairs() -> Callable[..., pa.Table]:
    """`synthetic_pairs(n, seed, ...)`: a pair table a tiny model can learn (see make_synthetic_pairs)."""
    return make_synthetic_pairs


@pytest.fixture(scope="session")
def tiny_trained(tiny_encoder_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A tiny encoder trained for a few steps on synthetic pairs (model directory, held-out pair file).

    Its rmcore.json has the held-out reward mean and std, so it gives normalized rewards too.
    """
    folder = tmp_path_factory.mktemp("tiny_trained")
    pq.write_table(make_synthetic_pairs(64, seed=1), folder / "train.parquet")
    pq.write_table(make_synthetic_pairs(24, seed=2), folder / "eval.parquet")
    config = load_config(
        None,
        [
            f"model.name_or_path={tiny_encoder_dir}",
            "model.max_length=48",
            "model.precision=fp32",
            f"data.train={folder / 'train.parquet'}",
            f"data.eval={folder / 'eval.parquet'}",
            f"output_dir={folder / 'run'}",
            "train.lr=1e-3",
        ],
    )
    return Path(train(config, progress=False)["model_dir"]), folder / "eval.parquet"


HOLD_TRAINING = (
    "import sys; from pathlib import Path; from rmcore.training.exclusive import sole_training\n"
    "with sole_training(Path(sys.argv[1])):\n"
    "    print('held', flush=True)\n"
    "    sys.stdin.read()\n"
)
"""Holds an output directory as a training would, until its standard input closes."""


@pytest.fixture
def hold_training() -> Iterator[Callable[[Path], subprocess.Popen[str]]]:
    """`hold_training(output_dir)`: another process holding `output_dir` as a running training does
    (`rmcore.training.exclusive.sole_training`), until the test ends; that process."""
    holders: list[subprocess.Popen[str]] = []

    def hold(output_dir: Path) -> subprocess.Popen[str]:
        holder = subprocess.Popen(
            [sys.executable, "-c", HOLD_TRAINING, str(output_dir)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        holders.append(holder)
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        return holder

    yield hold
    for holder in holders:
        holder.kill()
        holder.wait()

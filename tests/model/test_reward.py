"""The reward model builder and `rewards`: read at the right token whatever the padding (read at a pad
or before a final EOS, the reward ignores the response and the loss sticks at log 2)."""

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import huggingface_hub.constants
import pytest
import torch
from transformers import AutoModelForSequenceClassification

from rmcore.config import ModelConfig
from rmcore.model.reward import (
    BUILTIN_MINILM,
    ModelLoadError,
    RewardModel,
    RewardModule,
    build_reward_model,
    resolve_model_path,
    rewards,
    right_align,
    segment_ids,
)
from rmcore.model.tokenize import encode_many, plain_prompt_text

MakeConfig = Callable[..., ModelConfig]

PROMPTS = [
    [{"role": "user", "content": "What is the capital of France?"}],
    [{"role": "user", "content": "Hi"}],
    [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Name three colours of the rainbow, please, in order."},
    ],
]
RESPONSES = ["Paris.", "Hello! How can I help you today?", "Red, orange, yellow."]


def _sequences(rm: RewardModel) -> list[list[int]]:
    """Three encoded sequences of different lengths."""
    sequences = encode_many(rm, PROMPTS, RESPONSES)
    assert len({len(s) for s in sequences}) == 3, "the test needs different lengths"
    return sequences


def _pad(sequences: list[list[int]], pad_id: int, side: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(n, s) ids and mask, padded with `pad_id` on `side` to the longest sequence."""
    longest = max(len(s) for s in sequences)
    ids, mask = [], []
    for s in sequences:
        fill = longest - len(s)
        ids.append([pad_id] * fill + s if side == "left" else s + [pad_id] * fill)
        mask.append([0] * fill + [1] * len(s) if side == "left" else [1] * len(s) + [0] * fill)
    return torch.tensor(ids), torch.tensor(mask)


def _alone(rm: RewardModel, sequence: list[int]) -> float:
    """The reward of one sequence with no padding and no companions."""
    ids = torch.tensor([sequence])
    with torch.no_grad():
        return float(rewards(rm, ids, torch.ones_like(ids))[0])


@pytest.fixture(params=["encoder", "decoder"])
def rm(request: pytest.FixtureRequest, model_config: MakeConfig) -> RewardModel:
    """The tiny encoder or decoder reward model, built by `build_reward_model`."""
    directory = request.getfixturevalue(f"tiny_{request.param}_dir")
    return build_reward_model(model_config(directory, max_length=128))


# --- builder ---


def test_builder_resolves_auto_settings_for_an_encoder(
    tiny_encoder_dir: Path, model_config: MakeConfig
) -> None:
    # given: a BERT directory whose tokenizer has [PAD] and no chat template
    # when: it is built with pooling and rendering "auto"
    rm = build_reward_model(model_config(tiny_encoder_dir, max_length=64))
    # then: the reward is read at [CLS], text rendered plain, pad stays [PAD] (id 0)
    assert (rm.pooling, rm.rendering, rm.max_length) == ("first", "plain", 64)
    assert rm.tokenizer.pad_token_id == 0
    assert rm.model.config.num_labels == 1
    assert next(rm.model.parameters()).dtype == torch.float32


def test_builder_resolves_auto_settings_for_a_decoder(
    tiny_decoder_dir: Path, model_config: MakeConfig
) -> None:
    # given: a Llama directory whose tokenizer has a chat template and no pad token
    # when: it is built with pooling and rendering "auto"
    rm = build_reward_model(model_config(tiny_decoder_dir))
    # then: last-token pooling, chat rendering, pad borrowed from EOS (256) on the tokenizer only
    assert (rm.pooling, rm.rendering) == ("last", "chat")
    assert rm.tokenizer.pad_token_id == rm.tokenizer.eos_token_id == 256
    assert rm.model.config.pad_token_id is None  # transformers' own forward refuses padded batches
    assert rm.model.config.use_cache is False


@pytest.mark.parametrize(
    ("which", "overrides", "message"),
    [
        ("encoder", {"pooling": "last"}, "pooling 'last' does not fit"),
        ("decoder", {"pooling": "first"}, "pooling 'first' does not fit"),
        ("encoder", {"rendering": "chat"}, "has no chat template"),
        ("encoder", {"max_length": 600}, "max_length 600 exceeds"),
    ],
)
def test_builder_refuses_settings_that_do_not_fit_the_backbone(
    request: pytest.FixtureRequest, model_config: MakeConfig, which: str, overrides: dict, message: str
) -> None:
    # given: a setting the backbone cannot honour (encoders have no "last" token that saw everything
    # ... the tiny encoder has 512 positions and no chat template)
    directory = request.getfixturevalue(f"tiny_{which}_dir")
    # when / then: the build fails, saying what to change
    with pytest.raises(ModelLoadError, match=message):
        build_reward_model(model_config(directory, **overrides))


def test_unreachable_hub_id_fails_fast_naming_the_id(
    monkeypatch: pytest.MonkeyPatch, model_config: MakeConfig
) -> None:
    # given: no network here; offline mode so the hub client does not retry for 45 s
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    # when: a hub id is asked for
    started = time.perf_counter()
    with pytest.raises(ModelLoadError) as error:
        build_reward_model(model_config("no-such-org/no-such-reward-model"))
    # then: the error names the id, says the hub could not provide it and what to do
    text = str(error.value)
    assert "'no-such-org/no-such-reward-model'" in text
    assert "Hugging Face Hub could not provide it" in text and "local directory" in text
    assert time.perf_counter() - started < 5


def test_missing_local_path_and_non_model_directory_are_named(
    tmp_path: Path, model_config: MakeConfig
) -> None:
    # given: a path that does not exist, and a directory without model files
    missing = tmp_path / "nowhere" / "model"
    # when / then: each error names the path and the problem
    with pytest.raises(ModelLoadError, match=f"'{missing}': no such directory"):
        build_reward_model(model_config(missing))
    with pytest.raises(ModelLoadError, match="exists but is not a model directory"):
        build_reward_model(model_config(tmp_path))


def test_unknown_builtin_name_is_refused() -> None:
    # given / when / then: only builtin:minilm exists
    with pytest.raises(ModelLoadError, match="builtin:minilm"):
        resolve_model_path("builtin:gpt5")


# --- rewards: position and padding ---


def test_right_align_moves_real_tokens_to_the_front() -> None:
    # given: one left-padded and one right-padded row
    ids = torch.tensor([[0, 0, 5, 6, 7], [8, 9, 0, 0, 0]])
    mask = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 0, 0, 0]])
    # when: they are right-aligned
    aligned_ids, aligned_mask = right_align(ids, mask)
    # then: real tokens first, in order; padding after
    assert aligned_ids.tolist() == [[5, 6, 7, 0, 0], [8, 9, 0, 0, 0]]
    assert aligned_mask.tolist() == [[1, 1, 1, 0, 0], [1, 1, 0, 0, 0]]


def test_segment_ids_match_the_tokenizer_pair_encoding(
    tiny_encoder_dir: Path, model_config: MakeConfig
) -> None:
    # given: [CLS] a [SEP] b c [SEP] [PAD], by hand
    ids = torch.tensor([[101, 7, 102, 8, 9, 102, 0]])
    mask = torch.tensor([[1, 1, 1, 1, 1, 1, 0]])
    # when: token types are derived from the first separator (102)
    types = segment_ids(ids, mask, separator=102)
    # then: segment A (with its [SEP]) is 0, segment B (with the final [SEP]) is 1, pad 0
    assert types.tolist() == [[0, 0, 0, 1, 1, 1, 0]]
    # and: the same rule as the tokenizer's own pair encoding
    tokenizer = build_reward_model(model_config(tiny_encoder_dir)).tokenizer
    encoded = tokenizer("User: what is two plus two", "four")
    derived = segment_ids(
        torch.tensor([encoded["input_ids"]]), torch.tensor([encoded["attention_mask"]]), 102
    )
    assert derived.tolist() == [encoded["token_type_ids"]]


@pytest.mark.parametrize("side", ["right", "left"])
@pytest.mark.parametrize("pad", ["pad_token", "eos", "zero", "content"])
def test_reward_is_independent_of_companions_padding_side_and_pad_id(
    rm: RewardModel, side: str, pad: str
) -> None:
    # given: three sequences of different lengths, each scored alone (no padding)
    sequences = _sequences(rm)
    alone = [_alone(rm, s) for s in sequences]
    # and: a pad id that is the tokenizer's, EOS (SEP for BERT), 0, or a token the texts contain
    pad_id = {
        "pad_token": rm.tokenizer.pad_token_id,
        "eos": rm.tokenizer.eos_token_id
        if rm.tokenizer.eos_token_id is not None
        else rm.tokenizer.sep_token_id,
        "zero": 0,
        "content": sequences[0][1],
    }[pad]
    # when: they are scored together, padded on one side with that id
    ids, mask = _pad(sequences, pad_id, side)
    together = rewards(rm, ids, mask)
    # then: each reward is the one it had alone, (n,) float32
    assert together.shape == (3,) and together.dtype == torch.float32
    assert together.tolist() == pytest.approx(alone, abs=1e-5)


def test_reward_ignores_the_model_config_pad_token_id(rm: RewardModel) -> None:
    # given: sequences padded on the right with the tokenizer's pad id
    sequences = _sequences(rm)
    ids, mask = _pad(sequences, rm.tokenizer.pad_token_id, "right")
    before = rewards(rm, ids, mask)
    # when: the config claims a content token is the pad (what would fool "first pad minus one")
    rm.model.config.pad_token_id = sequences[2][-1]
    # then: nothing changes
    assert rewards(rm, ids, mask).tolist() == pytest.approx(before.tolist(), abs=1e-6)


def test_fixture_is_sensitive_to_the_text_and_the_reading_position(rm: RewardModel) -> None:
    # given: three sequences, and each without its last token
    sequences = _sequences(rm)
    # when: all are scored alone
    full = [_alone(rm, s) for s in sequences]
    shorter = [_alone(rm, s[:-1]) for s in sequences]
    # then: rewards differ by far more than the 1e-5 tolerance above, so a wrong position would show
    assert min(abs(a - b) for i, a in enumerate(full) for b in full[i + 1 :]) > 1e-2
    assert min(abs(a - b) for a, b in zip(full, shorter, strict=True)) > 1e-2


def test_encoder_reward_is_read_at_cls_even_with_left_padding(
    tiny_encoder_dir: Path, model_config: MakeConfig
) -> None:
    # given: the encoder and a left-padded batch (the shorter rows start with [PAD], not [CLS])
    rm = build_reward_model(model_config(tiny_encoder_dir))
    sequences = _sequences(rm)
    ids, mask = _pad(sequences, rm.tokenizer.pad_token_id, "left")
    # when: scored by `rewards`, and by transformers' own forward on the same tensors
    with torch.no_grad():
        got = rewards(rm, ids, mask)
        naive = rm.model(input_ids=ids, attention_mask=mask).logits[:, 0]
    # then: ours is each sequence's reward alone; the naive one reads a pad for the padded rows
    assert got.tolist() == pytest.approx([_alone(rm, s) for s in sequences], abs=1e-5)
    longest = max(range(3), key=lambda i: len(sequences[i]))
    assert all(abs(float(naive[i] - got[i])) > 1e-3 for i in range(3) if i != longest)


def test_decoder_reward_is_the_score_head_on_the_last_real_token(
    tiny_decoder_dir: Path, model_config: MakeConfig
) -> None:
    # given: the plain rendering, which ends with EOS, and pad == EOS (where "first pad minus one"
    # reads the wrong token)
    rm = build_reward_model(model_config(tiny_decoder_dir, rendering="plain"))
    sequences = encode_many(rm, PROMPTS, RESPONSES)
    eos = rm.tokenizer.eos_token_id
    assert all(s[-1] == eos for s in sequences)
    ids, mask = _pad(sequences, eos, "right")
    # when: they are scored as a padded batch
    got = rewards(rm, ids, mask)
    # then: each is score(hidden state at the final EOS), computed by hand from the base model
    llama: Any = rm.model
    with torch.no_grad():
        for i, s in enumerate(sequences):
            hidden = llama.model(input_ids=torch.tensor([s])).last_hidden_state[0, -1]  # (h,)
            expected = float(hidden @ llama.score.weight[0])
            assert float(got[i]) == pytest.approx(expected, abs=1e-5)
    # and: transformers' own rule (rightmost token != pad) reads one token early here: the pitfall
    rm.model.config.pad_token_id = eos
    with torch.no_grad():
        naive = rm.model(input_ids=ids, attention_mask=mask).logits[:, 0]
    assert (naive - got).abs().min() > 1e-3


def test_rewards_are_float32_under_bf16_autocast(rm: RewardModel) -> None:
    # given: a padded batch
    ids, mask = _pad(_sequences(rm), rm.tokenizer.pad_token_id, "left")
    # when: scored under bf16 autocast
    with torch.autocast("cpu", dtype=torch.bfloat16), torch.no_grad():
        got = rewards(rm, ids, mask)
    # then: float32, close to the fp32 rewards (bf16 has ~3 significant digits)
    assert got.dtype == torch.float32
    assert got.tolist() == pytest.approx(rewards(rm, ids, mask).tolist(), abs=0.1, rel=0.05)


def test_reward_module_gives_the_same_numbers(rm: RewardModel) -> None:
    # given: a left-padded batch
    ids, mask = _pad(_sequences(rm), rm.tokenizer.pad_token_id, "left")
    # when: scored through the module made for DDP / FSDP / compile wrappers
    module = RewardModule(rm)
    # then: same rewards, and the state dict is the model's under "model."
    assert module(ids, mask).tolist() == pytest.approx(rewards(rm, ids, mask).tolist(), abs=1e-6)
    assert set(module.state_dict()) == {f"model.{k}" for k in rm.model.state_dict()}


def test_gradient_checkpointing_trains_and_scores_the_same(
    tiny_decoder_dir: Path, model_config: MakeConfig
) -> None:
    # given: the decoder with and without gradient checkpointing
    plain = build_reward_model(model_config(tiny_decoder_dir))
    checkpointed = build_reward_model(model_config(tiny_decoder_dir, gradient_checkpointing=True))
    ids, mask = _pad(_sequences(plain), plain.tokenizer.pad_token_id, "right")
    # when: both score in train mode and one backpropagates
    plain.model.train()
    checkpointed.model.train()
    got = rewards(checkpointed, ids, mask)
    got.sum().backward()
    # then: same rewards, and gradients reach the head and the embeddings
    assert got.tolist() == pytest.approx(rewards(plain, ids, mask).tolist(), abs=1e-5)
    llama: Any = checkpointed.model
    assert llama.is_activation_checkpointing
    assert llama.score.weight.grad is not None
    assert llama.model.embed_tokens.weight.grad.abs().sum() > 0


# --- save and reload ---


def test_save_pretrained_reloads_in_transformers_with_the_same_rewards(
    rm: RewardModel, tmp_path: Path, model_config: MakeConfig
) -> None:
    # given: a reward model whose head moved away from the saved fixture (as training would)
    with torch.no_grad():
        model: Any = rm.model
        head = model.score if rm.pooling == "last" else model.classifier
        head.weight.add_(0.5)
    sequences = _sequences(rm)
    ids, mask = _pad(sequences, rm.tokenizer.pad_token_id, "left")
    ours = rewards(rm, ids, mask)
    # when: it is saved and reloaded by plain transformers
    rm.model.save_pretrained(tmp_path)
    rm.tokenizer.save_pretrained(tmp_path)
    reloaded = AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    reloaded.config.pad_token_id = None  # one unpadded sequence at a time: transformers reads the last
    # then: transformers' own forward on each sequence alone gives our rewards
    with torch.no_grad():
        for i, s in enumerate(sequences):
            inputs = {"input_ids": torch.tensor([s])}
            if rm.pooling == "first":  # as the tokenizer encodes the pair, token types included
                pair = rm.tokenizer(plain_prompt_text(PROMPTS[i]), RESPONSES[i], return_tensors="pt")
                assert pair["input_ids"][0].tolist() == s
                inputs = dict(pair)
            assert float(reloaded(**inputs).logits[0, 0]) == pytest.approx(float(ours[i]), abs=1e-5)
    # and: build_reward_model on the saved directory scores the same too
    again = build_reward_model(model_config(tmp_path, max_length=128))
    assert (again.pooling, again.rendering) == (rm.pooling, rm.rendering)
    assert rewards(again, ids, mask).tolist() == pytest.approx(ours.tolist(), abs=1e-5)


# --- the built-in backbone ---


def test_builtin_minilm_loads_offline_quietly_and_scores(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    # given: no network allowed
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    caplog.set_level(logging.INFO, logger="rmcore.model.reward")
    # when: the default backbone is built and scores one sequence
    rm = build_reward_model(ModelConfig(name_or_path=BUILTIN_MINILM))
    sequence = encode_many(rm, PROMPTS[:1], RESPONSES[:1])[0]
    got = _alone(rm, sequence)
    # then: an encoder read at [CLS], a finite reward, no load report or progress bar printed,
    # one log line naming the freshly initialized head
    assert (rm.pooling, rm.rendering, rm.max_length) == ("first", "plain", 256)
    assert rm.model.config.hidden_size == 384
    assert torch.isfinite(torch.tensor(got))
    captured = capfd.readouterr()
    assert "LOAD REPORT" not in captured.err + captured.out
    assert "Loading weights" not in captured.err + captured.out
    assert any("classifier.weight" in r.getMessage() for r in caplog.records)


# --- wrappers ---


@pytest.mark.filterwarnings("ignore:`is_gradient_checkpointing` is deprecated:FutureWarning")  # peft 0.21
def test_rewards_run_through_a_peft_lora_model(rm: RewardModel) -> None:
    # given: the model wrapped with LoRA for sequence classification (B = 0 at init: same function)
    peft = pytest.importorskip("peft")
    ids, mask = _pad(_sequences(rm), rm.tokenizer.pad_token_id, "left")
    before = rewards(rm, ids, mask).tolist()
    targets = ["query", "value"] if rm.pooling == "first" else ["q_proj", "v_proj"]
    wrapped = peft.get_peft_model(rm.model, peft.LoraConfig(task_type="SEQ_CLS", r=4, target_modules=targets))
    lora = RewardModel(wrapped, rm.tokenizer, rm.pooling, rm.rendering, rm.max_length)
    # when: scored and backpropagated through the wrapper
    got = rewards(lora, ids, mask)
    got.sum().backward()
    # then: the same rewards, and gradients reach the adapters and the (trainable copy of the) head
    assert got.tolist() == pytest.approx(before, abs=1e-5)
    with_grad = {name for name, p in wrapped.named_parameters() if p.grad is not None}
    assert any("lora_B" in name for name in with_grad)
    head = "classifier" if rm.pooling == "first" else "score"
    assert any(f"{head}.modules_to_save" in name for name in with_grad)

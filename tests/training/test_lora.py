"""LoRA through peft: only adapters and the scalar head train, and the saved model scores as the trained
one did (a head left untrained or unsaved would give random scores after reload).

python -m pytest tests/training/test_lora.py
"""

import json
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from peft import PeftModel
from safetensors.torch import load_file
from torch import Tensor
from transformers import AutoModelForSequenceClassification

from rmcore.config import Config, LoraSettings, LossConfig, ModelConfig, TrainConfig, load_config
from rmcore.data.pairs import load_pairs
from rmcore.model.batching import PairExample, collate
from rmcore.model.inference import Scorer, load_trained
from rmcore.model.reward import RewardModel, RewardModule, build_reward_model, rewards, segment_ids
from rmcore.model.saved import ADAPTER_DIR
from rmcore.model.tokenize import encode_many
from rmcore.training.loop import loss_step
from rmcore.training.optim import build_optimizer
from rmcore.training.recipe import build_model, save_model, train

CPU = torch.device("cpu")
MakeConfig = Callable[..., ModelConfig]
LORA = LoraSettings(r=4, alpha=8, dropout=0.0)

PROMPTS = [
    [{"role": "user", "content": "What is the capital of France?"}],
    [{"role": "user", "content": "Say hello."}],
    [{"role": "user", "content": "Name a colour of the rainbow."}],
]
CHOSEN = ["Paris is the capital of France.", "Hello! Nice to meet you.", "Red is one."]
REJECTED = ["I do not know.", "No.", "Rainbows are a myth."]


def _trained(rm: RewardModel, steps: int = 4) -> list[PairExample]:
    """A few AdamW steps (lr 1e-2) of Bradley-Terry on the three pairs; the examples."""
    ids = encode_many(rm, PROMPTS + PROMPTS, CHOSEN + REJECTED)
    examples = [
        PairExample(prompt_id=f"p{i}", chosen=ids[i], rejected=ids[i + 3], p_chosen=1.0, margin=None)
        for i in range(3)
    ]
    optimizer = build_optimizer(rm.model, TrainConfig(lr=1e-2))
    scorer = RewardModule(rm)
    pad = rm.tokenizer.pad_token_id
    assert pad is not None
    rm.model.train()
    for _ in range(steps):
        batch = collate(examples, pad, "right")
        out = loss_step(scorer, batch, LossConfig(), None)
        optimizer.zero_grad()
        out.loss.backward()
        optimizer.step()
    rm.model.eval()
    return examples


def _padded(examples: list[PairExample], pad: int) -> tuple[Tensor, Tensor]:
    """(6, s) ids and mask of the examples' chosen then rejected sequences, right-padded."""
    batch = collate(examples, pad, "right")
    return batch.input_ids, batch.attention_mask


@pytest.mark.parametrize("backbone", ["tiny_encoder_dir", "tiny_decoder_dir"])
def test_only_adapters_and_the_head_train(
    backbone: str, request: pytest.FixtureRequest, model_config: MakeConfig
) -> None:
    # given a tiny backbone with model.lora set
    rm = build_model(model_config(request.getfixturevalue(backbone), max_length=64, lora=LORA), CPU)

    # then the trainable parameters are the adapters and the head (classifier and pooler, or score)
    trainable = [name for name, p in rm.model.named_parameters() if p.requires_grad]
    assert all(".lora_A." in n or ".lora_B." in n or ".modules_to_save." in n for n in trainable)
    heads = {n.split(".modules_to_save.")[0].rsplit(".", 1)[-1] for n in trainable if "modules_to_save" in n}
    assert heads == ({"classifier", "pooler"} if backbone == "tiny_encoder_dir" else {"score"})
    assert any(".lora_A." in n for n in trainable)
    frozen = sum(p.numel() for p in rm.model.parameters() if not p.requires_grad)
    assert frozen > sum(p.numel() for p in rm.model.parameters() if p.requires_grad)


@pytest.mark.parametrize("backbone", ["tiny_encoder_dir", "tiny_decoder_dir"])
def test_saved_lora_model_reloads_with_the_trained_scores(
    backbone: str, request: pytest.FixtureRequest, model_config: MakeConfig, tmp_path: Path
) -> None:
    # given a LoRA reward model trained a few steps, and its rewards in memory
    base_dir: Path = request.getfixturevalue(backbone)
    config = model_config(base_dir, max_length=64, lora=LORA)
    rm = build_model(config, CPU)
    examples = _trained(rm)
    pad = rm.tokenizer.pad_token_id
    assert pad is not None
    ids, mask = _padded(examples, pad)
    with torch.no_grad():
        trained = rewards(rm, ids, mask)

    # when it is saved as `rmcore train` saves it
    model_dir = save_model(tmp_path, rm, Config(model=config), {}, "hash")

    # then the head has moved from its initial weights and the adapters are merged into the backbone
    head = "classifier" if backbone == "tiny_encoder_dir" else "score"
    saved, initial = load_file(model_dir / "model.safetensors"), load_file(base_dir / "model.safetensors")
    assert not torch.equal(saved[f"{head}.weight"], initial[f"{head}.weight"])
    adapted = next(k for k in saved if k.endswith(("query.weight", "q_proj.weight")))
    assert not torch.equal(saved[adapted], initial[adapted])
    assert not [k for k in saved if "lora" in k or "modules_to_save" in k or "original_module" in k]
    # and build_reward_model, `rmcore score`'s loader and plain transformers give the trained rewards
    again = build_reward_model(model_config(model_dir, max_length=64))
    with torch.no_grad():
        assert rewards(again, ids, mask).tolist() == pytest.approx(trained.tolist(), abs=1e-5)
        assert rewards(load_trained(model_dir).rm, ids, mask).tolist() == pytest.approx(
            trained.tolist(), abs=1e-5
        )
        plain = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
        plain.config.pad_token_id = None  # one unpadded sequence at a time: transformers reads the last
        for row in range(ids.shape[0]):
            n = int(mask[row].sum())
            inputs = {"input_ids": ids[row : row + 1, :n]}
            if backbone == "tiny_encoder_dir":  # the plain rendering's segments, as rewards() sets them
                sep = again.tokenizer.sep_token_id
                assert isinstance(sep, int)
                inputs["token_type_ids"] = segment_ids(
                    inputs["input_ids"], torch.ones_like(inputs["input_ids"]), sep
                )
            assert float(plain(**inputs).logits[0, 0]) == pytest.approx(float(trained[row]), abs=1e-5)
    # and the adapters + head in adapter/ on the original backbone give them too (unmerged)
    base = build_reward_model(model_config(base_dir, max_length=64))
    peft = PeftModel.from_pretrained(base.model, model_dir / ADAPTER_DIR).eval()
    unmerged = RewardModel(peft, base.tokenizer, base.pooling, base.rendering, base.max_length)  # type: ignore[arg-type]
    with torch.no_grad():
        assert rewards(unmerged, ids, mask).tolist() == pytest.approx(trained.tolist(), abs=1e-5)


def test_lora_training_end_to_end_resumes_and_reloads(
    tiny_encoder_dir: Path, tmp_path: Path, synthetic_pairs: Callable[..., pa.Table]
) -> None:
    # given pair files and a LoRA config (adapter dropout on: resume must restore the RNG too)
    pq.write_table(synthetic_pairs(48, seed=1), tmp_path / "train.parquet")
    pq.write_table(synthetic_pairs(16, seed=2), tmp_path / "eval.parquet")

    def config(out: str, *extra: str) -> Config:
        return load_config(
            None,
            [
                f"model.name_or_path={tiny_encoder_dir}",
                "model.max_length=48",
                "model.precision=fp32",
                "model.lora.r=4",
                "model.lora.alpha=8",
                f"data.train={tmp_path / 'train.parquet'}",
                f"data.eval={tmp_path / 'eval.parquet'}",
                f"output_dir={tmp_path / out}",
                "train.batch_size=8",
                "train.lr=5e-3",
                "train.save_every=2",
                *extra,
            ],
        )

    # when it trains uninterrupted, and again stopped after 3 steps then resumed
    whole = train(config("whole"), progress=False)
    assert train(config("split", "train.max_steps=3"), progress=False)["steps"] == 3
    rest = train(config("split"), resume=True, progress=False)

    # then the resumed run ends with the uninterrupted one's weights
    assert rest["steps"] == whole["steps"] == 6
    a = load_file(Path(whole["model_dir"]) / "model.safetensors")
    b = load_file(Path(rest["model_dir"]) / "model.safetensors")
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=1e-6, msg=name)
    # and the model directory holds the merged model, the adapters + head, and says so
    model_dir = Path(whole["model_dir"])
    assert (model_dir / ADAPTER_DIR / "adapter_model.safetensors").exists()
    assert json.loads((model_dir / "rmcore.json").read_text())["lora_adapter"] == ADAPTER_DIR
    # and the reloaded model gives the held-out rewards the trained one gave in memory
    reloaded = load_trained(model_dir)
    held_out = load_pairs(tmp_path / "eval.parquet", "validation", Config().data, tmp_path / "scratch")
    chosen, rejected = Scorer(rm=reloaded.rm, max_tokens=4096).pair_rewards(held_out.pairs)
    stats = whole["eval"]["rewards"]
    assert float(chosen.mean()) == pytest.approx(stats["chosen"]["mean"], abs=1e-5)
    assert float(rejected.mean()) == pytest.approx(stats["rejected"]["mean"], abs=1e-5)

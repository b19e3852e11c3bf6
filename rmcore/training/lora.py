"""Low-rank adapters (peft LoRA) on a reward model, with its scalar head trained and saved.

rmcore train --set model.lora.r=16 --set model.lora.alpha=32

Only the adapters and the head modules train. The head must be among peft's `modules_to_save`: left
out, it would keep its random initial weights, and the reloaded model would give random rewards.
"""

import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

from peft import LoraConfig, TaskType, get_peft_model, set_peft_model_state_dict
from torch import Tensor, nn

from rmcore.config import LoraSettings
from rmcore.model.reward import RewardModel, quiet_transformers
from rmcore.training import TrainingError


def head_modules(model: nn.Module) -> list[str]:
    """Names of the modules that turn the backbone's hidden state into the reward.

    The scalar head (`score` of decoders, `classifier` of encoders) and, for encoders with one,
    the pooler feeding the classifier: freshly initialized or not, they must train and be saved.
    """
    names = [name for name in ("score", "classifier") if isinstance(getattr(model, name, None), nn.Module)]
    base = getattr(model, "base_model", None)
    if isinstance(getattr(base, "pooler", None), nn.Module):
        names.append("pooler")
    return names


def with_lora(rm: RewardModel, settings: LoraSettings) -> RewardModel:
    """`rm` with its model wrapped by peft LoRA adapters (task SEQ_CLS); the rest of the backbone frozen."""
    config = LoraConfig(
        task_type=TaskType.SEQ_CLS,
        r=settings.r,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=settings.target_modules,
        modules_to_save=head_modules(rm.model),
    )
    try:
        with warnings.catch_warnings():  # peft probes a property transformers 5 deprecates
            warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated")
            model = get_peft_model(rm.model, config)
    except ValueError as error:
        raise TrainingError(
            f"LoRA cannot adapt {type(rm.model).__name__}: {error}; "
            "set model.lora.target_modules (e.g. [q_proj, v_proj])"
        ) from error
    return replace(rm, model=cast(Any, model))


def is_peft(model: nn.Module) -> bool:
    """True for a peft-wrapped model."""
    return hasattr(model, "peft_config") and callable(getattr(model, "merge_and_unload", None))


def load_adapter_state(model: nn.Module, weights: dict[str, Tensor]) -> None:
    """Adapters and head weights (as `save_pretrained` of the peft model wrote them) into `model`."""
    set_peft_model_state_dict(model, weights)


def merged(rm: RewardModel, adapter_dir: Path) -> RewardModel:
    """Save the adapters and head into `adapter_dir`; `rm` with them merged into the backbone.

    The merged model is a plain transformers model: `rmcore score` and transformers load it without
    peft, with the same rewards up to float rounding.
    """
    with quiet_transformers():
        rm.model.save_pretrained(adapter_dir)
    model = cast(Any, rm.model).merge_and_unload()
    return replace(rm, model=model)

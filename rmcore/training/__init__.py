"""Training a reward model: the recipe and what it composes.

- `rmcore.training.recipe`: build (model, examples, plan), the loss step, the `fit` loop, saving,
  `train` and the training key.
- `rmcore.training.optim`: AdamW and the warmup + decay schedule.
- `rmcore.training.metrics_log`: output_dir/metrics.jsonl, a record per step and per evaluation.
- `rmcore.training.checkpoint`: atomic, resumable checkpoints (safetensors + JSON, no pickles).
- `rmcore.training.lora`: peft LoRA adapters with the scalar head trained and saved.
- `rmcore.training.distributed`: several processes under torchrun (DDP, FSDP2).
- `rmcore.training.launch`: `rmcore train` and the retrain flow start training here, in this
  process or as `train.nproc_per_node` torchrun processes; the result comes back as a file.
"""


class TrainingError(Exception):
    """Training cannot go on; the message says why and what to do."""

"""Training a reward model: the recipe and what it composes.

- `rmcore.training.recipe`: build (model, examples, plan), saving, `train` and the training key.
- `rmcore.training.loop`: the loss step and the `fit` loop, its log points and evaluations.
- `rmcore.training.feed`: micro-batches collated and copied to the device ahead, by a thread.
- `rmcore.training.compiled`: torch.compile with the rows dynamic, and its counters.
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

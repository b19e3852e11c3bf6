"""The reward model and what feeds it.

- `rmcore.model.reward`: `build_reward_model(cfg)` over `AutoModelForSequenceClassification(num_labels=1)`
  and `rewards(rm, input_ids, attention_mask)`, the scalar reward of each sequence.
- `rmcore.model.tokenize`: `encode` / `encode_many`, prompt + response to token ids, truncating the
  prompt first; `identical_after_truncation` for pairs truncation made equal.
- `rmcore.model.batching`: examples, micro-batches of unique sequences, length bucketing.
- `rmcore.model.losses`: the ranking losses, one function each.
- `rmcore.model.saved`: the saved model directory (weights, tokenizer, rmcore.json) and its metadata.
- `rmcore.model.inference`: a trained model loaded, and `Scorer`: rewards of sequences, rows, pairs.

Serving a model needs this layer only (with rmcore.data's readers), never rmcore.training.

Import the submodules directly; this package imports nothing so that `import rmcore.model.losses`
does not pay for `transformers`.
"""

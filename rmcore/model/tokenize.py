"""Prompt + response -> token ids, truncated so the response survives.

Renderings (`RewardModel.rendering`, or "auto": "chat" when the tokenizer has a chat template):

- "chat": the tokenizer's chat template over `prompt + [{"role": "assistant", "content": response}]`,
  tokenized exactly as `tokenizer.apply_chat_template(..., tokenize=True)` does (render, then tokenize
  without adding special tokens). The prompt part is what the template renders for the prompt alone
  with `add_generation_prompt=True` (so it ends with the assistant header).
- "plain" for tokenizers with CLS and SEP tokens (encoders; not for a decoder `RewardModel`): the
  tokenizer's own pair layout, e.g. `[CLS] A [SEP] B [SEP]`, where A is the prompt's turns as
  "Role: content" lines (`plain_prompt_text`) and B the response: the same ids as `tokenizer(A, B)`.
  `rewards` gives B its token type (1), as `tokenizer(A, B)` does.
- "plain" for other tokenizers (decoders without a template): `[BOS if the tokenizer adds one]`
  "User: ...\\nAssistant:" then " " + response, then EOS; the reward is read at that EOS.

In the plain renderings user text is tokenized with `split_special_tokens=True`: a literal "[SEP]"
or "</s>" in a response is text, not a control token. (The chat rendering tokenizes like
`apply_chat_template`, which does not split them.)

Truncation to `max_length`, so that a pair never loses what tells its responses apart: the prompt is
cut from the left first (its end, next to the response, stays), keeping a leading BOS / CLS; only
when the response alone does not fit is its beginning cut too, so the response's END (and the
closing special tokens) always stays. Two different responses to one prompt therefore stay different
after truncation unless their kept tails are equal; `identical_after_truncation` tells the trainer
which pairs to count and drop.

With `same_cut`, every response to one prompt keeps the same prompt tail: as much as the longest of
them leaves room for (a response that leaves no room at all is cut alone, as above). Sequences that
begin alike can then share one copy of their prompt in a decoder (rmcore.model.rows); the shorter
responses see less of a long prompt than they would alone.

For many examples use `encode_many`: it renders each distinct prompt once and tokenizes in batches.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import groupby
from typing import Literal

from transformers import PreTrainedTokenizerBase

from rmcore.model.reward import RewardModel

Message = Mapping[str, str]


@dataclass(frozen=True)
class _Parts:
    """One encoding as head + prompt + mid + response + tail; only prompt and response can be cut."""

    head: list[int]
    prompt: list[int]
    mid: list[int]
    response: list[int]
    tail: list[int]


def encode(
    source: RewardModel | PreTrainedTokenizerBase,
    prompt: Sequence[Message],
    response: str,
    max_length: int | None = None,
    rendering: Literal["auto", "chat", "plain"] | None = None,
) -> list[int]:
    """Token ids of `prompt` (turns with "role" and "content") + `response`, at most `max_length` long.

    `source`: a `RewardModel` (its tokenizer, and its `max_length` and `rendering` unless given) or a
    tokenizer (then `max_length` is required; rendering defaults to "auto").
    """
    return encode_many(source, [prompt], [response], max_length, rendering)[0]


def encode_many(
    source: RewardModel | PreTrainedTokenizerBase,
    prompts: Sequence[Sequence[Message]],
    responses: Sequence[str],
    max_length: int | None = None,
    rendering: Literal["auto", "chat", "plain"] | None = None,
    *,
    same_cut: bool = False,
) -> list[list[int]]:
    """`encode` of each (prompt, response) pair, batched: each distinct prompt is rendered once.

    `same_cut`: the responses to one prompt (among these) keep the same prompt tail; see the module.
    """
    if len(prompts) != len(responses):
        raise ValueError(f"{len(prompts)} prompts but {len(responses)} responses")
    tokenizer, limit, how = _settings(source, max_length, rendering)
    if not responses:
        return []
    pair = tokenizer.cls_token_id is not None and tokenizer.sep_token_id is not None
    if isinstance(source, RewardModel) and source.pooling == "last":
        pair = False  # a decoder reads text, whatever special tokens its tokenizer defines
    if how == "chat":
        parts = _chat_parts(tokenizer, prompts, responses)
    elif pair:
        parts = _pair_parts(tokenizer, prompts, responses)
    else:
        parts = _text_parts(tokenizer, prompts, responses)
    if not same_cut:
        return [_fit(p, limit) for p in parts]
    keep: dict[tuple[int, ...], int] = {}
    for p in parts:
        if (room := _prompt_room(p, limit)) > 0:
            keep[tuple(p.prompt)] = min(room, keep.get(tuple(p.prompt), room))
    return [_fit(p, limit, keep.get(tuple(p.prompt))) for p in parts]


def identical_after_truncation(a_ids: Sequence[int], b_ids: Sequence[int]) -> bool:
    """True when two encodings of one prompt are the same token sequence (a pair with no signal).

    `encode` keeps each response's end, so different responses collide only when the kept tails are
    equal; the trainer counts, reports and leaves out such pairs.
    """
    return len(a_ids) == len(b_ids) and list(a_ids) == list(b_ids)


def plain_prompt_text(prompt: Sequence[Message]) -> str:
    """The plain rendering of a prompt's turns: one "Role: content" line each ("User: hi")."""
    return "\n".join(f"{m['role'].capitalize()}: {m['content']}" for m in prompt)


def _settings(
    source: RewardModel | PreTrainedTokenizerBase, max_length: int | None, rendering: str | None
) -> tuple[PreTrainedTokenizerBase, int, str]:
    if isinstance(source, RewardModel):
        tokenizer = source.tokenizer
        max_length = source.max_length if max_length is None else max_length
        rendering = source.rendering if rendering is None else rendering
    else:
        tokenizer = source
        if max_length is None:
            raise ValueError(
                "max_length is required when encoding with a tokenizer rather than a RewardModel"
            )
        rendering = "auto" if rendering is None else rendering
    has_template = bool(getattr(tokenizer, "chat_template", None))
    if rendering == "auto":
        rendering = "chat" if has_template else "plain"
    if rendering not in ("chat", "plain"):
        raise ValueError(f"unknown rendering {rendering!r}; use 'auto', 'chat' or 'plain'")
    if rendering == "chat" and not has_template:
        raise ValueError("rendering 'chat' needs a tokenizer with a chat template; use 'plain'")
    if max_length <= 0:
        raise ValueError(f"max_length must be positive, got {max_length}")
    return tokenizer, max_length, rendering


def _text_room(parts: _Parts, max_length: int) -> int:
    """Tokens of prompt and response that fit beside the special tokens."""
    fixed = len(parts.head) + len(parts.mid) + len(parts.tail)
    if max_length - fixed < 1:
        raise ValueError(f"max_length {max_length} leaves no room for text after {fixed} special tokens")
    return max_length - fixed


def _prompt_room(parts: _Parts, max_length: int) -> int:
    """Prompt tokens that fit beside the whole response (0: the response alone fills the room)."""
    return max(0, _text_room(parts, max_length) - len(parts.response))


def _fit(parts: _Parts, max_length: int, keep: int | None = None) -> list[int]:
    """The encoding cut to `max_length`: the prompt's beginning goes first, then the response's.
    `keep`: keep at most this many prompt tokens."""
    room = _text_room(parts, max_length)
    response = parts.response
    if len(response) >= room:  # the prompt goes entirely; keep the response's end
        return parts.head + parts.mid + response[len(response) - room :] + parts.tail
    keep = room - len(response) if keep is None else min(keep, room - len(response))
    prompt = parts.prompt[len(parts.prompt) - min(keep, len(parts.prompt)) :]
    return parts.head + prompt + parts.mid + response + parts.tail


def _distinct(prompts: Sequence[Sequence[Message]]) -> tuple[list[list[dict[str, str]]], list[int]]:
    """The distinct prompts (as plain role/content dicts) and each input's index among them."""
    index: dict[tuple[tuple[str, str], ...], int] = {}
    unique: list[list[dict[str, str]]] = []
    which: list[int] = []
    for prompt in prompts:
        key = tuple((m["role"], m["content"]) for m in prompt)
        if key not in index:
            index[key] = len(unique)
            unique.append([{"role": role, "content": content} for role, content in key])
        which.append(index[key])
    return unique, which


def _ids(tokenizer: PreTrainedTokenizerBase, texts: list[str], *, as_text: bool) -> list[list[int]]:
    """Token ids of each text without added special tokens; `as_text`: control-token strings as text.

    Whole texts, longer than the model takes: `_fit` cuts them afterwards, so the tokenizer's warning
    about sequences over `model_max_length` does not apply and is turned off (`verbose=False`).
    """
    if not texts:
        return []
    encoded = tokenizer(
        texts,
        add_special_tokens=False,
        split_special_tokens=as_text,
        return_attention_mask=False,
        return_token_type_ids=False,
        verbose=False,
    )
    return [list(ids) for ids in encoded["input_ids"]]


def _chat_parts(
    tokenizer: PreTrainedTokenizerBase, prompts: Sequence[Sequence[Message]], responses: Sequence[str]
) -> list[_Parts]:
    unique, which = _distinct(prompts)
    rendered = [i for i, p in enumerate(unique) if p]  # an empty prompt has no prompt part
    prefix_texts = _render(tokenizer, [unique[i] for i in rendered], add_generation_prompt=True)
    prefixes: list[list[int]] = [[] for _ in unique]
    for i, ids in zip(rendered, _ids(tokenizer, prefix_texts, as_text=False), strict=True):
        prefixes[i] = ids
    conversations = [
        [*unique[k], {"role": "assistant", "content": response}]
        for k, response in zip(which, responses, strict=True)
    ]
    fulls = _ids(tokenizer, _render(tokenizer, conversations, add_generation_prompt=False), as_text=False)
    bos = tokenizer.bos_token_id
    parts = []
    for k, full in zip(which, fulls, strict=True):
        cut = _common_prefix(prefixes[k], full)
        head = 1 if bos is not None and full[:1] == [bos] else 0
        cut = max(cut, head)
        parts.append(_Parts(full[:head], full[head:cut], [], full[cut:], []))
    return parts


def _render(
    tokenizer: PreTrainedTokenizerBase, conversations: list[list[dict[str, str]]], add_generation_prompt: bool
) -> list[str]:
    if not conversations:
        return []
    texts = tokenizer.apply_chat_template(
        conversations, add_generation_prompt=add_generation_prompt, tokenize=False
    )
    assert isinstance(texts, list), "a batch of conversations renders to a list of strings"
    return [str(t) for t in texts]


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    if a[:n] == b[:n]:
        return n
    i = 0
    while a[i] == b[i]:
        i += 1
    return i


def _pair_parts(
    tokenizer: PreTrainedTokenizerBase, prompts: Sequence[Sequence[Message]], responses: Sequence[str]
) -> list[_Parts]:
    head, mid, tail = _special_layout(tokenizer, pair=True)
    unique, which = _distinct(prompts)
    a_ids = _ids(tokenizer, [plain_prompt_text(p) for p in unique], as_text=True)
    b_ids = _ids(tokenizer, list(responses), as_text=True)
    return [_Parts(head, a_ids[k], mid, b, tail) for k, b in zip(which, b_ids, strict=True)]


def _text_parts(
    tokenizer: PreTrainedTokenizerBase, prompts: Sequence[Sequence[Message]], responses: Sequence[str]
) -> list[_Parts]:
    head, _, tail = _special_layout(tokenizer, pair=False)
    eos = tokenizer.eos_token_id
    if eos is not None and tail[-1:] != [eos]:
        tail = [*tail, eos]
    unique, which = _distinct(prompts)
    texts = [f"{plain_prompt_text(p)}\nAssistant:" if p else "Assistant:" for p in unique]
    a_ids = _ids(tokenizer, texts, as_text=True)
    b_ids = _ids(tokenizer, [f" {r}" for r in responses], as_text=True)
    return [_Parts(head, a_ids[k], [], b, tail) for k, b in zip(which, b_ids, strict=True)]


def _special_layout(
    tokenizer: PreTrainedTokenizerBase, *, pair: bool
) -> tuple[list[int], list[int], list[int]]:
    """The special tokens the tokenizer adds before, between and after its segments.

    Read from `tokenizer("a", "b")` (or `tokenizer("a")`): the runs of special tokens around the text.
    """
    encoded = tokenizer("a", "b" if pair else None, return_special_tokens_mask=True)
    slots: list[list[int]] = [[]]  # the special tokens before, between and after the text runs
    for is_special, run in groupby(
        zip(encoded["input_ids"], encoded["special_tokens_mask"], strict=True), key=_second
    ):
        if is_special:
            slots[-1] = [token for token, _ in run]
        else:
            slots.append([])
    if len(slots) != (3 if pair else 2):
        raise ValueError(f"cannot read the special-token layout of {type(tokenizer).__name__}")
    return (slots[0], slots[1], slots[2]) if pair else (slots[0], [], slots[1])


def _second(item: tuple[int, int]) -> int:
    return item[1]

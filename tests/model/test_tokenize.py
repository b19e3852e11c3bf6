"""Prompt + response -> token ids: the renderings, and truncation that keeps the response (so two
responses to one prompt stay different).

The byte-level tokenizer (see conftest) makes one token per byte, so lengths are counted by hand;
its special ids: EOS 256, <|im_start|> 257, <|im_end|> 258, BOS 259.
"""

import logging
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from rmcore.config import ModelConfig
from rmcore.model.inference import response_contexts
from rmcore.model.reward import build_reward_model
from rmcore.model.tokenize import encode, encode_many, identical_after_truncation, plain_prompt_text

EOS, IM_START, IM_END, BOS = 256, 257, 258, 259
CLS, SEP = 101, 102

MakeTokenizer = Callable[..., PreTrainedTokenizerBase]


def _bytes(tokenizer: PreTrainedTokenizerBase, text: str) -> list[int]:
    """The byte tokens of an ASCII text: one id per character."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert len(ids) == len(text)
    return list(ids)


def _template(tokenizer: PreTrainedTokenizerBase, conversation: list[dict[str, str]]) -> list[int]:
    """`apply_chat_template(conversation, tokenize=True)`'s input ids."""
    encoded: Any = tokenizer.apply_chat_template(conversation, tokenize=True)
    return list(encoded["input_ids"])


def _text(tokenizer: PreTrainedTokenizerBase, ids: list[int]) -> str:
    return str(tokenizer.decode(ids))


def _user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


@pytest.fixture(scope="module")
def wordpiece(tiny_encoder_dir: Path) -> PreTrainedTokenizerBase:
    """The MiniLM (BERT uncased) tokenizer of the tiny encoder."""
    return AutoTokenizer.from_pretrained(tiny_encoder_dir)


# --- renderings ---


def test_chat_rendering_is_the_template_with_the_response_as_the_assistant_turn(
    byte_tokenizer: MakeTokenizer,
) -> None:
    # given: the ChatML byte tokenizer, prompt "hi", response "ok"
    tok = byte_tokenizer()
    # when: encoded with room to spare
    ids = encode(tok, _user("hi"), "ok", max_length=100)
    # then: <|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\nok<|im_end|>\n, by hand
    b = lambda text: _bytes(tok, text)  # noqa: E731
    expected = [IM_START, *b("user\nhi"), IM_END, *b("\n"), IM_START, *b("assistant\nok"), IM_END, *b("\n")]
    assert ids == expected
    # and: exactly what apply_chat_template(tokenize=True) gives
    conversation = [*_user("hi"), {"role": "assistant", "content": "ok"}]
    assert ids == _template(tok, conversation)


@pytest.mark.parametrize(
    "prompt",
    [
        [],
        [{"role": "system", "content": "Be terse."}, *_user("Two plus two?")],
        [*_user("hi"), {"role": "assistant", "content": "hello"}, *_user("bye")],
    ],
)
@pytest.mark.parametrize("bos", [False, True])
def test_chat_rendering_matches_apply_chat_template(
    byte_tokenizer: MakeTokenizer, prompt: list[dict[str, str]], bos: bool
) -> None:
    # given: an empty, a system + user, and a multi-turn prompt; a template with and without BOS
    tok = byte_tokenizer(bos=bos)
    # when: encoded without truncation
    ids = encode(tok, prompt, "Four.", max_length=1000)
    # then: the template's own tokenization (BOS once, at the start, when the template has it)
    expected = _template(tok, [*prompt, {"role": "assistant", "content": "Four."}])
    assert ids == expected
    assert ids.count(BOS) == (1 if bos else 0) and (ids[0] == BOS) == bos


def test_plain_rendering_of_an_encoder_is_the_tokenizer_pair(wordpiece: PreTrainedTokenizerBase) -> None:
    # given: a prompt and a response for the BERT tokenizer (uncased WordPiece)
    prompt = _user("Hello there")
    # when: encoded plain
    ids = encode(wordpiece, prompt, "General Kenobi", max_length=64, rendering="plain")
    # then: [CLS] user : hello there [SEP] general ken ##ob ##i [SEP], ids by hand from vocab.txt
    assert ids == [CLS, 5310, 1024, 7592, 2045, SEP, 2236, 6358, 16429, 2072, SEP]
    # and: the tokenizer's own pair encoding of the documented texts
    assert plain_prompt_text(prompt) == "User: Hello there"
    assert ids == wordpiece("User: Hello there", "General Kenobi")["input_ids"]


def test_plain_prompt_text_joins_turns_as_role_lines() -> None:
    # given: a system and a user turn
    prompt = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    # when / then: one "Role: content" line each
    assert plain_prompt_text(prompt) == "System: Be brief.\nUser: Hi"


@pytest.mark.parametrize("bos", [False, True])
def test_plain_rendering_of_a_decoder_is_user_assistant_text_then_eos(
    byte_tokenizer: MakeTokenizer, bos: bool
) -> None:
    # given: a byte tokenizer without a chat template (with and without an automatic BOS)
    tok = byte_tokenizer(chat_template=None, bos=bos)
    # when: encoded ("auto" picks plain without a template)
    ids = encode(tok, _user("hi"), "ok", max_length=64)
    # then: [BOS] "User: hi\nAssistant:" " ok" EOS
    text = _bytes(tok, "User: hi\nAssistant: ok")
    assert ids == ([BOS] if bos else []) + text + [EOS]


def test_special_token_strings_in_user_text_stay_text(
    wordpiece: PreTrainedTokenizerBase, byte_tokenizer: MakeTokenizer
) -> None:
    # given: texts that spell control tokens
    # when: encoded plain
    bert = encode(wordpiece, _user("a [SEP] b"), "c [CLS] d", max_length=64)
    byte = encode(byte_tokenizer(chat_template=None), _user("<|endoftext|>"), "x<|endoftext|>", max_length=64)
    # then: only the layout's own special tokens are special
    assert (bert.count(CLS), bert.count(SEP)) == (1, 2)
    assert byte.count(EOS) == 1 and byte[-1] == EOS


def test_encode_uses_the_reward_model_settings(tiny_decoder_dir: Path) -> None:
    # given: a reward model with max_length 40 and chat rendering
    rm = build_reward_model(ModelConfig(name_or_path=str(tiny_decoder_dir), max_length=40))
    # when: a long example is encoded with the model as source
    ids = encode(rm, _user("x" * 100), "ok")
    # then: its max_length and rendering apply (40 tokens ending with the ChatML assistant turn)
    assert len(ids) == 40
    assert _text(rm.tokenizer, ids).endswith("xxx<|im_end|>\n<|im_start|>assistant\nok<|im_end|>\n")


# --- truncation ---


def test_chat_truncation_cuts_the_prompt_from_the_left(byte_tokenizer: MakeTokenizer) -> None:
    # given: a 300-character prompt and a short response; the full encoding is 336 tokens
    tok = byte_tokenizer()
    prompt, response = _user("p" * 290 + "END-OF-Q"), "answer"
    full = encode(tok, prompt, response, max_length=10_000)
    assert len(full) == 1 + 4 + 1 + 298 + 1 + 1 + 1 + 10 + 6 + 1 + 1
    # when: it is cut to 60 tokens
    ids = encode(tok, prompt, response, max_length=60)
    # then: the last 60 tokens: the prompt's end, the assistant header and the whole response
    assert ids == full[-60:]
    assert _text(tok, ids).endswith("END-OF-Q<|im_end|>\n<|im_start|>assistant\nanswer<|im_end|>\n")


def test_chat_truncation_keeps_a_leading_bos(byte_tokenizer: MakeTokenizer) -> None:
    # given: a template that opens with BOS and a long prompt
    tok = byte_tokenizer(bos=True)
    prompt, response = _user("p" * 300), "answer"
    full = encode(tok, prompt, response, max_length=10_000)
    # when: cut to 60 tokens
    ids = encode(tok, prompt, response, max_length=60)
    # then: BOS, then the last 59 tokens
    assert ids == [BOS, *full[-59:]]


def test_encoder_truncation_cuts_segment_a_from_the_left(wordpiece: PreTrainedTokenizerBase) -> None:
    # given: a long prompt (segment A) and a 4-token response (segment B)
    prompt, response = _user(" ".join(f"w{i}" for i in range(100))), "General Kenobi"
    a = wordpiece(plain_prompt_text(prompt), add_special_tokens=False)["input_ids"]
    b = [2236, 6358, 16429, 2072]
    # when: cut to 20 tokens
    ids = encode(wordpiece, prompt, response, max_length=20)
    # then: [CLS] + the last 20 - 3 - 4 = 13 tokens of A + [SEP] + B + [SEP]
    assert ids == [CLS, *a[-13:], SEP, *b, SEP]


def test_the_same_cut_keeps_one_prompt_tail_for_all_its_responses(wordpiece: PreTrainedTokenizerBase) -> None:
    # given: a long prompt (segment A), its responses of 1, 4 and 30 tokens, and another short prompt
    prompt, other = _user(" ".join(f"w{i}" for i in range(100))), _user("Hello there")
    a = wordpiece(plain_prompt_text(prompt), add_special_tokens=False)["input_ids"]
    short, kenobi, long = [2236], [2236, 6358, 16429, 2072], "one " * 29 + "two"
    prompts, responses = [prompt, prompt, prompt, other], ["General", "General Kenobi", long, "General"]

    # when: cut to 20 tokens, each alone and with the same cut
    alone = encode_many(wordpiece, prompts, responses, max_length=20)
    same = encode_many(wordpiece, prompts, responses, max_length=20, same_cut=True)

    # then: alone, the prompt keeps 20 - 3 - 1 = 16 tokens beside "General", 13 beside "General Kenobi"
    assert alone[0] == [CLS, *a[-16:], SEP, *short, SEP]
    assert alone[1] == [CLS, *a[-13:], SEP, *kenobi, SEP]
    # and with the same cut both keep the 13 the longer one leaves, so they begin alike
    assert same[0] == [CLS, *a[-13:], SEP, *short, SEP]
    assert same[1] == alone[1]
    # and the 30-token response leaves no room at all: it is cut alone and sets no cut for the others
    assert same[2] == alone[2] and same[2][:2] == [CLS, SEP]
    # and a prompt that fits is untouched
    assert same[3] == alone[3] == [CLS, 5310, 1024, 7592, 2045, SEP, 2236, SEP]


def test_a_response_too_long_alone_keeps_its_end(
    byte_tokenizer: MakeTokenizer, wordpiece: PreTrainedTokenizerBase
) -> None:
    # given: responses longer than max_length by themselves
    tok = byte_tokenizer()
    response = "start " + "y" * 200 + " the end"
    full = encode(tok, _user("question"), response, max_length=10_000)
    # when: encoded to 50 tokens (chat), 30 (BERT plain), 40 (decoder plain)
    chat = encode(tok, _user("question"), response, max_length=50)
    bert = encode(wordpiece, _user("question"), "one two " * 30 + "last words", max_length=30)
    plain = encode(byte_tokenizer(chat_template=None), _user("question"), response, max_length=40)
    # then: no prompt token is left; the response's end and closing tokens are
    assert chat == full[-50:] and IM_START not in chat
    assert _text(tok, chat).endswith(" the end<|im_end|>\n")
    b = wordpiece("one two " * 30 + "last words", add_special_tokens=False)["input_ids"]
    assert bert == [CLS, SEP, *b[-27:], SEP]
    assert plain == [*_bytes(tok, " " + response)[-39:], EOS]


TOO_LONG = "longer than the specified maximum sequence length"


def test_a_text_longer_than_the_model_takes_is_cut_without_the_too_long_warning(
    tiny_encoder_dir: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: a fresh MiniLM tokenizer (it warns once per instance), a response of twice its
    # model_max_length words, and transformers' log records reaching caplog
    monkeypatch.setattr(logging.getLogger("transformers"), "propagate", True)
    caplog.set_level(logging.WARNING)
    tok = AutoTokenizer.from_pretrained(tiny_encoder_dir)
    assert tok.model_max_length == 512
    response = "word " * (2 * tok.model_max_length) + "end"
    # when: encoded to 64 tokens
    ids = encode(tok, _user("hi"), response, max_length=64)
    # then: cut to 64 tokens ending with the response's end, and nothing logged about the length
    assert len(ids) == 64 and ids[:2] == [CLS, SEP]
    assert ids[-2:] == [tok.convert_tokens_to_ids("end"), SEP]
    assert TOO_LONG not in caplog.text
    # and: the same text tokenized whole by a fresh tokenizer does log it (the capture sees it)
    AutoTokenizer.from_pretrained(tiny_encoder_dir)(response)
    assert TOO_LONG in caplog.text


@pytest.mark.parametrize("max_length", [3, 2])
def test_max_length_without_room_for_text_is_refused(
    wordpiece: PreTrainedTokenizerBase, max_length: int
) -> None:
    # given / when / then: BERT pairs need 3 special tokens and at least one text token
    with pytest.raises(ValueError, match="leaves no room"):
        encode(wordpiece, _user("q"), "r", max_length=max_length)


# --- truncation must not make a pair identical (a pair with no signal) ---


def _tokenizer(
    kind: str, byte_tokenizer: MakeTokenizer, wordpiece: PreTrainedTokenizerBase
) -> PreTrainedTokenizerBase:
    """The tokenizer of a parametrized kind: byte-level with a chat template, without one, or WordPiece."""
    return {
        "chat": byte_tokenizer,
        "decoder-plain": lambda: byte_tokenizer(chat_template=None),
        "encoder-plain": lambda: wordpiece,
    }[kind]()


@pytest.mark.parametrize("max_length", range(24, 120, 13))
@pytest.mark.parametrize("kind", ["chat", "decoder-plain", "encoder-plain"])
def test_different_responses_to_a_long_prompt_stay_different(
    byte_tokenizer: MakeTokenizer, wordpiece: PreTrainedTokenizerBase, kind: str, max_length: int
) -> None:
    # given: a prompt far longer than max_length and two short, different responses
    tok = _tokenizer(kind, byte_tokenizer, wordpiece)
    prompt = _user("context " * 200)
    chosen, rejected = "Yes, it is safe.", "No, it is not."
    # when: both are encoded
    a, b = encode_many(tok, [prompt, prompt], [chosen, rejected], max_length=max_length)
    # then: both fill max_length, each keeps its whole response, and they differ
    assert len(a) == len(b) == max_length
    assert not identical_after_truncation(a, b)
    for ids, response in ((a, chosen), (b, rejected)):
        assert response.lower() in _text(tok, ids).lower()


def test_long_responses_collide_only_when_their_kept_ends_are_equal(byte_tokenizer: MakeTokenizer) -> None:
    # given: two long responses that differ only at the start, and two that differ at the end
    tok = byte_tokenizer()
    tail = "z" * 100
    prompt = _user("q")
    # when: encoded to 40 tokens, which keeps only the last 40 tokens of each response
    same_end = encode_many(tok, [prompt, prompt], ["A" + tail, "B" + tail], max_length=40)
    other_end = encode_many(tok, [prompt, prompt], [tail + "A", tail + "B"], max_length=40)
    # then: the first pair is identical after truncation (to be counted and dropped), the second not
    assert identical_after_truncation(*same_end)
    assert not identical_after_truncation(*other_end)


def test_identical_after_truncation_compares_whole_sequences() -> None:
    # given / when / then: equal sequences (lists or tuples) are identical; any difference is not
    assert identical_after_truncation([1, 2, 3], (1, 2, 3))
    assert not identical_after_truncation([1, 2, 3], [1, 2, 4])
    assert not identical_after_truncation([1, 2], [1, 2, 3])
    assert identical_after_truncation([], [])


def test_random_examples_keep_the_response_whenever_it_fits(byte_tokenizer: MakeTokenizer) -> None:
    # given: 200 random prompts and responses (seeded) and random max lengths
    tok = byte_tokenizer(chat_template=None)  # plain: "... Assistant:" + " response" + EOS
    rng = random.Random(0)
    words = ["alpha", "beta", "gamma", "delta", "x", "yy"]
    for _ in range(200):
        prompt = _user(" ".join(rng.choices(words, k=rng.randint(0, 40))))
        response = " ".join(rng.choices(words, k=rng.randint(1, 30)))
        max_length = rng.randint(2, 200)
        # when: encoded
        ids = encode(tok, prompt, response, max_length=max_length)
        full = encode(tok, prompt, response, max_length=10_000)
        kept = [*_bytes(tok, " " + response), EOS]
        # then: never longer than max_length; the whole response when it fits, else its end
        assert len(ids) == min(max_length, len(full))
        assert ids == full[-max_length:]
        assert ids[-min(len(kept), max_length) :] == kept[-max_length:]


# --- batching and errors ---


@pytest.mark.parametrize("kind", ["chat", "decoder-plain", "encoder-plain"])
def test_encode_many_equals_encode_one_by_one(
    byte_tokenizer: MakeTokenizer, wordpiece: PreTrainedTokenizerBase, kind: str
) -> None:
    # given: prompts that repeat (as the chosen and rejected of a pair do), one of them empty
    tok = _tokenizer(kind, byte_tokenizer, wordpiece)
    prompts = [_user("first question"), _user("second"), _user("first question"), [], _user("second")]
    responses = ["a", "b", "c", "d", "a long answer " * 5]
    # when: encoded in one batch
    many = encode_many(tok, prompts, responses, max_length=24)
    # then: the same as one at a time
    assert many == [encode(tok, p, r, max_length=24) for p, r in zip(prompts, responses, strict=True)]
    assert encode_many(tok, [], [], max_length=24) == []


def test_bad_arguments_are_refused(byte_tokenizer: MakeTokenizer) -> None:
    # given: a tokenizer without a chat template
    tok = byte_tokenizer(chat_template=None)
    # when / then: each mistake is named
    with pytest.raises(ValueError, match="max_length is required"):
        encode(tok, _user("q"), "r")
    with pytest.raises(ValueError, match="needs a tokenizer with a chat template"):
        encode(tok, _user("q"), "r", max_length=10, rendering="chat")
    with pytest.raises(ValueError, match="unknown rendering"):
        encode(tok, _user("q"), "r", max_length=10, rendering="html")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="2 prompts but 1 responses"):
        encode_many(tok, [_user("q"), _user("q")], ["r"], max_length=10)


# --- multi-turn responses ---


def test_a_multi_turn_response_renders_whole_and_is_cut_from_the_left_keeping_its_final_reply(
    byte_tokenizer: MakeTokenizer,
) -> None:
    # given a pair whose chosen side continues the prompt with its own first reply and a follow-up
    tok = byte_tokenizer()
    pairs = pa.table(
        {
            "prompt": [_user("Plan a trip")],
            "chosen": ["Day 1: the Forum."],
            "chosen_turns": [
                [{"role": "assistant", "content": "Where to?"}, {"role": "user", "content": "Rome"}]
            ],
        }
    )
    (context,) = response_contexts(pairs, "chosen")
    conversation = [*context, {"role": "assistant", "content": "Day 1: the Forum."}]
    # when encoded with room for everything, then it is the chat template over the whole conversation
    assert encode(tok, context, "Day 1: the Forum.", max_length=512) == _template(tok, conversation)
    # when the room is short of the conversation, then its beginning goes and the final reply stays whole
    whole = _template(tok, conversation)
    cut = encode(tok, context, "Day 1: the Forum.", max_length=len(whole) - 20)
    assert cut == whole[20:]
    assert _text(tok, cut).endswith("Day 1: the Forum.<|im_end|>\n") and "Plan a trip" not in _text(tok, cut)
    # and a file written before responses had turns reads as the prompt alone
    assert response_contexts(pairs.drop_columns(["chosen_turns"]), "chosen") == [_user("Plan a trip")]

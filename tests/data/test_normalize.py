"""Content identity: normalized text and the hashes naming responses, prompts and pairs."""

import hashlib
import unicodedata

import pytest

from rmcore.data.identity import digest, normalized_text, pair_id, prompt_id, text_id
from rmcore.data.records import Message

CAFE_NFC = unicodedata.normalize("NFC", "Un café, s'il vous plaît")
CAFE_NFD = unicodedata.normalize("NFD", "Un café, s'il vous plaît")


def test_nfc_and_nfd_are_the_same_text() -> None:
    # given one text composed (NFC) and decomposed (NFD): different code points
    assert CAFE_NFC != CAFE_NFD
    # when normalized and hashed, then they are equal
    assert normalized_text(CAFE_NFD) == CAFE_NFC
    assert text_id(CAFE_NFC) == text_id(CAFE_NFD)


@pytest.mark.parametrize(
    ("text", "normalized"),
    [
        ("  hello  ", "hello"),
        ("hello   world", "hello world"),
        ("hello\n\n\tworld", "hello world"),
        ("line 1\r\nline 2", "line 1 line 2"),
        ("a\u00a0b", "a b"),  # no-break space is whitespace too
        ("\u3000全角\u3000", "全角"),  # ideographic space
        ("", ""),
    ],
)
def test_whitespace_is_trimmed_and_folded(text: str, normalized: str) -> None:
    # given text with irregular whitespace, when normalized, then runs fold to one space
    assert normalized_text(text) == normalized


def test_whitespace_variants_share_an_id_and_different_texts_do_not() -> None:
    # given whitespace variants of one text, and a text differing in case
    # then the variants share an id; case is content
    assert text_id("def f():\n    return 1") == text_id("def f(): return 1")
    assert text_id("Paris") != text_id("paris")


def test_ids_are_32_hex_digits_of_blake2b_128() -> None:
    # given a known text, then its id is the 128-bit BLAKE2b digest of its normalized form
    assert digest("abc") == hashlib.blake2b(b"abc", digest_size=16).hexdigest()
    assert text_id("  abc ") == digest("abc")
    assert len(text_id("x")) == 32
    assert int(text_id("x"), 16) >= 0


def test_prompt_id_normalizes_each_message() -> None:
    # given one conversation written with different whitespace and composition
    tidy = (Message("user", CAFE_NFC), Message("assistant", "Sure thing."))
    messy = (Message("user", f"  {CAFE_NFD}\n"), Message("assistant", "Sure   thing."))
    # then both have one prompt id
    assert prompt_id(tidy) == prompt_id(messy)


def test_prompt_id_depends_on_roles_order_and_boundaries() -> None:
    # given the same texts under different roles, order or message boundaries
    base = (Message("user", "Hi"), Message("assistant", "Hello"))
    # then each is a different prompt
    variants = [
        base,
        (Message("system", "Hi"), Message("assistant", "Hello")),
        (Message("user", "Hi"), Message("user", "Hello")),
        (Message("assistant", "Hello"), Message("user", "Hi")),
        (Message("user", "Hi Hello"),),
        (Message("user", "Hi"),),
    ]
    assert len({prompt_id(v) for v in variants}) == len(variants)


def test_plain_prompt_equals_one_user_message() -> None:
    # given a prompt id, then it is a function of the message tuple only
    assert prompt_id([Message("user", "Hi")]) == prompt_id((Message("user", "Hi"),))


def test_pair_id_is_symmetric_in_its_two_responses() -> None:
    # given a prompt and two response ids
    p = prompt_id((Message("user", "Q"),))
    x, y = text_id("yes"), text_id("no")
    # then the pair id ignores their order
    assert pair_id(p, x, y) == pair_id(p, y, x)


def test_pair_id_depends_on_the_prompt_and_both_responses() -> None:
    p, q = prompt_id((Message("user", "Q"),)), prompt_id((Message("user", "R"),))
    x, y, z = text_id("yes"), text_id("no"), text_id("maybe")
    ids = {pair_id(p, x, y), pair_id(q, x, y), pair_id(p, x, z), pair_id(p, y, z)}
    assert len(ids) == 4

"""Content identity: normalized text and the hashes that name prompts, responses and pairs.

Two texts are the same content when they are equal after Unicode NFC, trimming, and folding
every run of whitespace into one space. Hashes are 128-bit BLAKE2b, written as 32 hex digits.
Stored texts keep their original whitespace (it matters for code); only identity is normalized.
"""

import hashlib
import unicodedata
from collections.abc import Sequence

from rmcore.data.records import Message

_UNIT = "\x1f"
_RECORD = "\x1e"


def _needs_folding(text: str) -> bool:
    """Whether ASCII `text` has whitespace other than single inner spaces (str.split's set)."""
    return (
        text[:1] == " "
        or text[-1:] == " "
        or "  " in text
        or "\n" in text
        or "\t" in text
        or "\r" in text
        or "\x0b" in text
        or "\x0c" in text
        or "\x1c" in text
        or "\x1d" in text
        or "\x1e" in text
        or "\x1f" in text
    )


def normalized_text(text: str) -> str:
    """NFC, trimmed, whitespace runs folded to one space.

    ASCII text is already NFC, and most of it has no whitespace to fold: that case returns early.
    """
    if text.isascii():
        if not _needs_folding(text):
            return text
    else:
        text = unicodedata.normalize("NFC", text)
    return " ".join(text.split())


def digest(text: str) -> str:
    """128-bit BLAKE2b of `text` as 32 hex digits."""
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).hexdigest()


def text_id(text: str) -> str:
    """Identity of a response: the digest of its normalized text."""
    return digest(normalized_text(text))


def prompt_id(prompt: Sequence[Message]) -> str:
    """Identity of a prompt: the digest of its normalized (role, content) messages."""
    return digest(_messages_key(prompt))


def response_id(turns: Sequence[Message], reply: str) -> str:
    """Identity of a response: its reply's `text_id`, or with leading turns, the digest of them and
    the reply as messages (never equal to a text's: normalized text holds no separator characters)."""
    if not turns:
        return text_id(reply)
    return digest(_messages_key([*turns, Message("assistant", reply)]))


def _messages_key(messages: Sequence[Message]) -> str:
    return _RECORD.join(f"{m.role}{_UNIT}{normalized_text(m.content)}" for m in messages)


def pair_id(prompt: str, response_x: str, response_y: str) -> str:
    """Identity of an unordered pair of responses to one prompt (ids in, id out)."""
    low, high = sorted((response_x, response_y))
    return digest(f"{prompt}{_UNIT}{low}{_UNIT}{high}")

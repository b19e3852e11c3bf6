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


def normalized_text(text: str) -> str:
    """NFC, trimmed, whitespace runs folded to one space."""
    return " ".join(unicodedata.normalize("NFC", text).split())


def digest(text: str) -> str:
    """128-bit BLAKE2b of `text` as 32 hex digits."""
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).hexdigest()


def text_id(text: str) -> str:
    """Identity of a response: the digest of its normalized text."""
    return digest(normalized_text(text))


def prompt_id(prompt: Sequence[Message]) -> str:
    """Identity of a prompt: the digest of its normalized (role, content) messages."""
    return digest(_RECORD.join(f"{m.role}{_UNIT}{normalized_text(m.content)}" for m in prompt))


def pair_id(prompt: str, response_x: str, response_y: str) -> str:
    """Identity of an unordered pair of responses to one prompt (ids in, id out)."""
    low, high = sorted((response_x, response_y))
    return digest(f"{prompt}{_UNIT}{low}{_UNIT}{high}")

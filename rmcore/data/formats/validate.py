"""Checks every parsed judgment or ranking must pass, whatever its source format."""

from collections.abc import Sequence

from rmcore.data.records import Reason, RowRejected


def _fits(text: str, what: str, max_chars: int) -> None:
    if len(text) > max_chars:
        raise RowRejected(Reason.TEXT_TOO_LONG, f"{what} has {len(text)} characters (max {max_chars})")


def check(
    prompt_texts: Sequence[str],
    responses: Sequence[str],
    response_ids: Sequence[str],
    max_chars: int,
    leading_texts: Sequence[Sequence[str]] = (),
) -> None:
    """Raise RowRejected when a text is too long or two responses are the same content.

    `leading_texts`: per multi-turn response, its turns before the final reply; they count with the
    prompt, as the context that reply is read in.
    """
    for leading in [(), *leading_texts]:
        _fits("".join([*prompt_texts, *leading]), "prompt", max_chars)
    for index, response in enumerate(responses):
        _fits(response, f"response {index + 1}", max_chars)
    if len(set(response_ids)) < len(response_ids):
        raise RowRejected(Reason.IDENTICAL_RESPONSES, "two responses are the same text")

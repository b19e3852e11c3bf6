"""OpenAI summarize-from-feedback comparisons (openai/summarize_from_feedback, "comparisons").

Ships as JSONL, one labeller's comparison of two summaries a line (`comparisons/batch<N>.json`):

    {"info": {"id", "post", "title", "subreddit"} for a Reddit TL;DR post,
             {"id", "article", "title"?, "site"?} for a CNN/DailyMail article,
     "summaries": [{"text", "policy", "note"}, {"text", "policy", "note"}],
     "choice": 0 | 1, "worker", "batch", "split", "extra": {"confidence": int or null}}

The Hugging Face copy writes every info field in every row, null where the item has none: a null
field is read as an absent one.

The prompt is one user message written from info as in the paper, "SUBREDDIT: r/{subreddit}\\nTITLE:
{title}\\nPOST: {post}" for a post and "TITLE: {title}\\nARTICLE: {article}" for an article, absent
parts left out. The summaries' texts are responses a and b, kept as they are (the real ones start
with a space). choice 0 prefers a, 1 b; worker is the annotator; extra.confidence, the labeller's
stated confidence in the choice, is the strength (null or absent: None). The subreddit (or, for an
article, the site) is the category. Attributes: the summaries' policies (`model_a`, `model_b`), the
labeller's notes on them when written (`note_a`, `note_b`), and the item's `id`, `batch` and the
source's own `split` (train, valid1, valid2) as `source_split`.

Rejected: info or extra that is not an object (not_an_object); info with neither post nor article
(missing_field); an empty post, article or summary text; summaries that are not a list of exactly two
(malformed) or an item of it that is not an object; a choice other than 0 or 1 (unknown_label).
"""

from collections.abc import Mapping
from typing import Any

import rmcore.data.formats.fields as fields
from rmcore.data.records import Judgment, Label, Message, Parsed, Reason, RowRejected

CHOICES: dict[int, Label] = {0: "a", 1: "b"}


def is_summarize(record: Mapping[str, Any]) -> bool:
    """An info object, a list of summaries and a choice between them."""
    return (
        isinstance(record.get("info"), Mapping)
        and isinstance(record.get("summaries"), list)
        and "choice" in record
    )


def prompt(info: Mapping[str, Any]) -> str:
    """The post or article as the paper shows it to the policy, absent parts left out."""
    if info.get("post") is not None:
        body = ("POST", fields.text(info, "post"))
    elif info.get("article") is not None:
        body = ("ARTICLE", fields.text(info, "article"))
    else:
        raise RowRejected(Reason.MISSING_FIELD, "field 'info' has neither a 'post' nor an 'article'")
    subreddit = fields.optional_str(info, "subreddit")
    parts = [
        ("SUBREDDIT", f"r/{subreddit}" if subreddit else None),
        ("TITLE", fields.optional_str(info, "title")),
        body,
    ]
    return "\n".join(f"{name}: {value}" for name, value in parts if value is not None)


def parse(record: Mapping[str, Any]) -> list[Parsed]:
    """One labeller's judgment of two summaries."""
    info = fields.mapping(record, "info")
    first, second = _summaries(record)
    extra = record.get("extra")
    if extra is not None and not isinstance(extra, Mapping):
        raise RowRejected(Reason.NOT_AN_OBJECT, f"field 'extra' is {type(extra).__name__}, not an object")
    return [
        Judgment(
            prompt=(Message("user", prompt(info)),),
            response_a=fields.nonempty(fields.present(first, "text"), "summaries[0].text"),
            response_b=fields.nonempty(fields.present(second, "text"), "summaries[1].text"),
            label=fields.coded_label(record, "choice", CHOICES),
            strength=fields.optional_number(extra, "confidence") if extra is not None else None,
            annotator=fields.optional_str(record, "worker"),
            category=fields.optional_str(info, "subreddit") or fields.optional_str(info, "site"),
            attributes=fields.attributes(
                {
                    "model_a": fields.optional_str(first, "policy"),
                    "model_b": fields.optional_str(second, "policy"),
                    "note_a": fields.optional_str(first, "note"),
                    "note_b": fields.optional_str(second, "note"),
                    "id": fields.optional_str(info, "id"),
                    "batch": fields.optional_str(record, "batch"),
                    "source_split": fields.optional_str(record, "split"),
                }
            ),
        )
    ]


def _summaries(record: Mapping[str, Any]) -> tuple[Mapping[str, Any], Mapping[str, Any]]:
    summaries = fields.present(record, "summaries")
    if not isinstance(summaries, list) or len(summaries) != 2:
        raise RowRejected(Reason.MALFORMED, "field 'summaries' is not a list of two summaries")
    first, second = summaries
    for index, summary in enumerate(summaries):
        if not isinstance(summary, Mapping):
            raise RowRejected(Reason.NOT_AN_OBJECT, f"summaries[{index}] is not an object")
    return first, second

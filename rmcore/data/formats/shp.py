"""Stanford Human Preferences (stanfordnlp/SHP, SHP-2): two comments on a post, the preferred one by upvotes.

Ships as JSONL, one comparison a line (`<domain>/train.json`):

    {"post_id", "domain": "askculinary_train", "upvote_ratio", "history": the post,
     "c_root_id_A", "c_root_id_B", "created_at_utc_A", "created_at_utc_B", "score_A", "score_B",
     "human_ref_A", "human_ref_B": the two comments, "labels": 1 | 0,
     "seconds_difference", "score_ratio"}

history is the prompt (one user message); human_ref_A and human_ref_B are responses a and b;
labels 1 means A is preferred, 0 B (anything else is unknown_label). score_ratio, the preferred
comment's score over the other's, is the strength. domain is the category; post_id, score_A and
score_B are kept as attributes. There is no annotator: SHP infers each preference from upvotes (a
comment written later yet scored higher), not from one person's label. A missing, null or empty
post or comment is rejected with its reason; so is a score_ratio that is not a number.
"""

from collections.abc import Mapping
from typing import Any

import rmcore.data.formats.fields as fields
from rmcore.data.records import Judgment, Label, Message, Parsed

LABELS: dict[int, Label] = {1: "a", 0: "b"}


def is_shp(record: Mapping[str, Any]) -> bool:
    """A post, two comments named A and B, and a 0/1 label."""
    return {"post_id", "history", "human_ref_A", "human_ref_B", "labels"} <= record.keys()


def parse(record: Mapping[str, Any]) -> list[Parsed]:
    """One judgment: the comment the upvotes prefer."""
    return [
        Judgment(
            prompt=(Message("user", fields.text(record, "history")),),
            response_a=fields.text(record, "human_ref_A"),
            response_b=fields.text(record, "human_ref_B"),
            label=fields.coded_label(record, "labels", LABELS),
            strength=fields.optional_number(record, "score_ratio"),
            category=fields.optional_str(record, "domain"),
            attributes=fields.attributes(
                {name: fields.optional_str(record, name) for name in ("post_id", "score_A", "score_B")}
            ),
        )
    ]

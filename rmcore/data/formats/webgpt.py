"""WebGPT comparisons (openai/webgpt_comparisons): two browsing-assisted answers to a question, scored.

The Hugging Face copy, one comparison a row:

    {"question": {"dataset", "id", "full_text"},
     "quotes_0": {"title": [...], "extract": [...]}, "answer_0", "tokens_0", "score_0",
     "quotes_1": {...}, "answer_1", "tokens_1", "score_1"}

(OpenAI's own comparisons.jsonl writes each line as a JSON list of the two answers' records; it is
not this shape, and the JSONL reader quarantines such lines as not_an_object.)

question.full_text is the prompt (one user message); answer_0 and answer_1 are responses a and b,
as written, citation marks such as [1] included: the quotes they cite and the model's token prefixes
are left out. question.dataset (eli5, triviaqa, ...) is the category and question.id an attribute.

score_0 and score_1 are the labeller's graded preference for each answer, from -1 to 1; they usually
sum to 0, and the preferred answer has the higher score. The higher score wins and equal scores tie.
The strength is |score_0 - score_1| (0 to 2). The scores grade how strongly one answer was preferred
(the dataset card says OpenAI trained on their sign alone, a 0 as a 50% label, which drops that
grade), so their gap is a graded strength like Tulu's "better" and "slightly better": twice either
score when they sum to 0, and still the distance between them when they do not, where |score_0|
alone would not be. A tie has no direction to grade: its strength is None.

Rejected: a question that is not an object; an empty question or answer (the real data has empty
answers: empty_text); a score that is missing, null or not a finite number.
"""

from collections.abc import Mapping
from typing import Any

import rmcore.data.formats.fields as fields
from rmcore.data.records import Judgment, Label, Message, Parsed


def is_webgpt(record: Mapping[str, Any]) -> bool:
    """A question and two numbered answers with scores."""
    return {"question", "answer_0", "answer_1", "score_0", "score_1"} <= record.keys()


def parse(record: Mapping[str, Any]) -> list[Parsed]:
    """One judgment: the higher-scored answer preferred, by the gap between the scores."""
    question = fields.mapping(record, "question")
    full_text = fields.text(question, "full_text")
    answers = fields.text(record, "answer_0"), fields.text(record, "answer_1")
    first, second = fields.number(record, "score_0"), fields.number(record, "score_1")
    label: Label = "a" if first > second else "b" if first < second else "tie"
    return [
        Judgment(
            prompt=(Message("user", full_text),),
            response_a=answers[0],
            response_b=answers[1],
            label=label,
            strength=abs(first - second) if label != "tie" else None,
            category=fields.optional_str(question, "dataset"),
            attributes=fields.attributes({"question_id": fields.optional_str(question, "id")}),
        )
    ]

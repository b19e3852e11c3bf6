"""PKU-SafeRLHF (PKU-Alignment/PKU-SafeRLHF): two responses to a prompt, judged for helpfulness and safety.

Ships as JSONL, one comparison a line (`data/<model>/train.jsonl`):

    {"prompt", "response_0", "response_1", "prompt_source", "response_0_source", "response_1_source",
     "is_response_0_safe", "is_response_1_safe", "response_0_severity_level", "response_1_severity_level",
     "response_0_harm_category": {"Cybercrime": true, "Violence": false, ...}, "response_1_harm_category",
     "better_response_id": 0 | 1, "safer_response_id": 0 | 1, "response_0_sha256", "response_1_sha256"}

The prompt is one user message; response_0 and response_1 are responses a and b. Each row holds two
preferences, the more helpful response (better_response_id) and the safer one (safer_response_id);
`preference` (IngestConfig.safe_rlhf_preference) picks which is the label, "better" by default. Both
stay in the attributes as `better` and `safer` ("a" or "b"), with the responses' models (`model_a`,
`model_b`), the prompt's (`prompt_source`), each response's safety flag (`safe_a`, `safe_b`: "true" /
"false"), severity level 0..3 (`severity_a`, `severity_b`) and harm categories (`harm_a`, `harm_b`:
the names marked true, sorted, joined by ", "; "" for none). The sha256 fields are left out (the lake
names responses by its own hashes). Rows of the earlier release (PKU-SafeRLHF-v0), which lack the
models, severity levels and harm categories, are read too, without those attributes.

Rejected: a missing or empty prompt or response; a preference id other than 0 or 1 (unknown_label);
a safety flag that is not a boolean, a severity level that is not a whole number from 0 to 3, or harm
categories that are not an object of booleans.
"""

from collections.abc import Mapping
from typing import Any, Literal

import rmcore.data.formats.fields as fields
from rmcore.data.records import Judgment, Label, Message, Parsed, Reason, RowRejected

Preference = Literal["better", "safer"]
IDS: dict[int, Label] = {0: "a", 1: "b"}
SEVERITIES = range(4)


def is_safe_rlhf(record: Mapping[str, Any]) -> bool:
    """Two numbered responses with both a helpfulness and a safety preference id."""
    return {"prompt", "response_0", "response_1", "better_response_id", "safer_response_id"} <= record.keys()


def parse(record: Mapping[str, Any], preference: Preference = "better") -> list[Parsed]:
    """One judgment, labelled by the helpfulness or the safety preference."""
    better = fields.coded_label(record, "better_response_id", IDS)
    safer = fields.coded_label(record, "safer_response_id", IDS)
    attributes = {
        "better": better,
        "safer": safer,
        "model_a": fields.optional_str(record, "response_0_source"),
        "model_b": fields.optional_str(record, "response_1_source"),
        "prompt_source": fields.optional_str(record, "prompt_source"),
    }
    for index, side in enumerate("ab"):
        attributes[f"safe_{side}"] = _flag(record, f"is_response_{index}_safe")
        attributes[f"severity_{side}"] = _severity(record, f"response_{index}_severity_level")
        attributes[f"harm_{side}"] = _harms(record, f"response_{index}_harm_category")
    return [
        Judgment(
            prompt=(Message("user", fields.text(record, "prompt")),),
            response_a=fields.text(record, "response_0"),
            response_b=fields.text(record, "response_1"),
            label=better if preference == "better" else safer,
            attributes=fields.attributes(attributes),
        )
    ]


def _flag(record: Mapping[str, Any], name: str) -> str | None:
    value = record.get(name)
    if value is None:
        return None
    if not isinstance(value, bool):
        raise RowRejected(Reason.NON_STRING, f"field '{name}' is {value!r}, not true or false")
    return "true" if value else "false"


def _severity(record: Mapping[str, Any], name: str) -> str | None:
    value = record.get(name)
    if value is None:
        return None
    level = fields.number_code(value)
    if level not in SEVERITIES:
        raise RowRejected(Reason.MALFORMED, f"field '{name}' is {value!r}, not a level from 0 to 3")
    return str(level)


def _harms(record: Mapping[str, Any], name: str) -> str | None:
    if record.get(name) is None:
        return None
    categories = fields.mapping(record, name)
    if not all(isinstance(flag, bool) for flag in categories.values()):
        raise RowRejected(Reason.MALFORMED, f"field '{name}' has a value that is not true or false")
    return ", ".join(sorted(str(category) for category, flag in categories.items() if flag))

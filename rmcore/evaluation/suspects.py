"""Labels worth a second look: held-out pairs the trained model confidently contradicts, and who voted.

A pair's label says its chosen response is better; the model's probability for the other side is

    q = sigmoid(r(x, y_rejected) - r(x, y_chosen))

A suspect is a pair with q > 1/2; suspects are ranked by q, most confident contradiction first. Each
comes with the annotators who voted on it, their vote (chosen, rejected or tie) and their agreement with
the other annotators over the whole lake (rmcore.data.quality.annotators), so a team can send the label back
for re-annotation with what it needs to judge it.

Beside that, the model's agreement with each annotator's own held-out votes: over their votes for one
side (ties left out), the share where the model gives that side the higher reward.
"""

from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from rmcore.atomic import replacing, write_table
from rmcore.data.identity import response_id
from rmcore.data.lake.schemas import MESSAGES
from rmcore.data.pairs.votes import no_votes
from rmcore.data.quality.annotators import annotator_agreement, lowest_first
from rmcore.data.records import Message
from rmcore.evaluation.evaluate import Evaluation

Agreement = Mapping[tuple[str, str], float | None]
"""(source, annotator) -> agreement with the other annotators (None: never scored)."""

VOTER = pa.struct([("annotator", pa.string()), ("vote", pa.string()), ("agreement", pa.float64())])
SUSPECTS = pa.schema(
    [
        ("rank", pa.int64()),
        ("pair_id", pa.string()),
        ("source", pa.string()),
        ("prompt", MESSAGES),
        ("chosen_turns", MESSAGES),
        ("chosen", pa.string()),
        ("rejected_turns", MESSAGES),
        ("rejected", pa.string()),
        ("p_chosen", pa.float64()),
        ("n_votes", pa.int64()),
        ("model_p_rejected", pa.float64()),
        ("voters", pa.list_(VOTER)),
    ]
)


def agreement_by_annotator(votes: pa.Table) -> Agreement:
    """Each annotator's agreement with the others over all of `votes` (the data report's figure)."""
    return {(e["source"], e["annotator"]): e["agreement"] for e in annotator_agreement(votes)}


def label_review(evaluation: Evaluation, path: Path) -> dict[str, Any]:
    """Write the suspects of an evaluation to `path`; {path, pairs, annotators}, annotators being
    `annotator_model_agreement` (empty when the pairs came without votes, from a bare pair file)."""
    votes = evaluation.votes if evaluation.votes is not None else no_votes()
    agreement = agreement_by_annotator(votes)
    table = suspects(evaluation, votes, agreement)
    write_suspects(table, path)
    return {
        "path": str(path),
        "pairs": table.num_rows,
        "annotators": annotator_model_agreement(evaluation, votes, agreement),
    }


def model_p_rejected(evaluation: Evaluation) -> np.ndarray:
    """q = sigmoid(r_rejected - r_chosen) of every pair, (p,)."""
    p: np.ndarray = 1.0 / (1.0 + np.exp(evaluation.chosen - evaluation.rejected))
    return p


def voters(pairs: pa.Table, votes: pa.Table) -> dict[str, list[tuple[str, str]]]:
    """Each pair's (annotator, vote as chosen | rejected | tie), from votes on the pair's first/second side.

    The first response of a pair is the one with the smaller response id (rmcore.data.pairs.votes).
    """
    chosen_first = {
        row["pair_id"]: _id(row, "chosen") < _id(row, "rejected")
        for row in pairs.select([c for c in _SIDES if c in pairs.column_names]).to_pylist()
    }
    found: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for row in votes.filter(pc.is_in(votes["pair_id"], pairs["pair_id"])).to_pylist():
        first = chosen_first[row["pair_id"]]
        side = {"first": "chosen" if first else "rejected", "second": "rejected" if first else "chosen"}
        found[row["pair_id"]].append((row["annotator"], side.get(row["vote"], "tie")))
    return found


def suspects(evaluation: Evaluation, votes: pa.Table, agreement: Agreement) -> pa.Table:
    """The held-out pairs whose label the model contradicts (q > 1/2), most confident first (see module)."""
    pairs, q = evaluation.pairs, model_p_rejected(evaluation)
    who = voters(pairs, votes)
    order = sorted((i for i in range(pairs.num_rows) if q[i] > 0.5), key=lambda i: (-q[i], i))
    rows = pairs.take(order).to_pylist() if order else []
    return pa.Table.from_pylist(
        [
            {
                "rank": rank,
                **{name: row[name] for name in ("pair_id", "source", "prompt", "chosen", "rejected")},
                "chosen_turns": row.get("chosen_turns") or [],
                "rejected_turns": row.get("rejected_turns") or [],
                "p_chosen": row["p_chosen"],
                "n_votes": row["n_votes"],
                "model_p_rejected": float(q[i]),
                "voters": [
                    {"annotator": a, "vote": v, "agreement": agreement.get((row["source"], a))}
                    for a, v in who.get(row["pair_id"], [])
                ],
            }
            for rank, (i, row) in enumerate(zip(order, rows, strict=True), start=1)
        ],
        schema=SUSPECTS,
    )


def annotator_model_agreement(
    evaluation: Evaluation, votes: pa.Table, agreement: Agreement
) -> list[dict[str, Any]]:
    """Per annotator with held-out votes: {source, annotator, votes, decided, model_agreement, agreement}.

    model_agreement = (decided votes whose side the model rewards higher) / decided, None when they cast
    none but ties; agreement is their agreement with the other annotators (the data report's figure).
    Sorted by source, then model_agreement ascending (None last), then annotator.
    """
    pairs = evaluation.pairs
    index = {pair_id: i for i, pair_id in enumerate(pairs.column("pair_id").to_pylist())}
    sources = pairs.column("source").to_pylist()
    model_prefers_chosen = evaluation.chosen > evaluation.rejected
    tally: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
    for pair_id, cast in voters(pairs, votes).items():
        i = index[pair_id]
        for annotator, vote in cast:
            counts = tally[(sources[i], annotator)]
            counts[0] += 1
            if vote != "tie":
                counts[1] += 1
                counts[2] += int((vote == "chosen") == bool(model_prefers_chosen[i]))
    rows = [
        {
            "source": source,
            "annotator": annotator,
            "votes": n,
            "decided": decided,
            "model_agreement": agreed / decided if decided else None,
            "agreement": agreement.get((source, annotator)),
        }
        for (source, annotator), (n, decided, agreed) in tally.items()
    ]
    return sorted(rows, key=lowest_first("model_agreement"))


def write_suspects(table: pa.Table, path: Path) -> None:
    """The suspects as Parquet, or as CSV when `path` ends in .csv (the prompt and turns as "Role: text"
    lines, the voters as "annotator: vote (agreement)" separated by "; ")."""
    if path.suffix.lower() != ".csv":
        write_table(path, table)
        return
    flat = table.to_pylist()
    for row in flat:
        for name in ("prompt", "chosen_turns", "rejected_turns"):
            row[name] = "\n".join(f"{m['role'].capitalize()}: {m['content']}" for m in row[name])
        row["voters"] = "; ".join(_voter_text(v) for v in row["voters"])
    with replacing(path) as tmp:
        columns = {name: [row[name] for row in flat] for name in table.column_names}
        pacsv.write_csv(pa.table(columns) if flat else _empty_csv(table), tmp)


_SIDES = ["pair_id", "chosen", "rejected", "chosen_turns", "rejected_turns"]


def _id(row: Mapping[str, Any], side: str) -> str:
    turns = [Message(m["role"], m["content"]) for m in row.get(f"{side}_turns") or []]
    return response_id(turns, row[side])


def _voter_text(voter: Mapping[str, Any]) -> str:
    agreement = voter["agreement"]
    return f"{voter['annotator']}: {voter['vote']}" + (f" ({agreement:.2f})" if agreement is not None else "")


def _empty_csv(table: pa.Table) -> pa.Table:
    return pa.table({name: pa.array([], pa.string()) for name in table.column_names})

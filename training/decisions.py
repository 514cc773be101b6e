"""The moderators' decision log as training data, and shadow tests against it.

The log is the Redis stream ``keys.DECISIONS``; each entry has (at least) the fields
``text`` and ``label`` ("spam" | "ham"), plus moderator, time, score, model_version,
reason and comment_id. Undone decisions are deleted from the stream by the queue, so
every entry read here is a decision that stands.

A rejection for a policy reason (abusive, off topic, personal data, illegal, other)
is not evidence of spam: taught as spam, the filter would learn to auto-reject angry
or wandering but genuine comments. Export and shadow tests leave those out unless
asked to keep them; rejections for advertising or duplicates, and every explicit
spam/ham decision, are kept.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import redis

from moderation import keys, model_registry
from moderation.queue import POLICY_REJECT_REASONS
from moderation.scoring import load_scorer

from . import datasets
from .datasets import Corpus, write_jsonl

PAGE = 1000
EXTRA_FIELDS = ("comment_id", "moderator", "time", "model_version", "score", "reason")


def iter_decisions(
    client: redis.Redis, since: str = "-"
) -> Iterator[tuple[str, dict[str, str]]]:
    """(entry id, fields) of every decision after ``since``, oldest first, page by page."""
    start = since if since == "-" else f"({since}"
    while True:
        page = client.xrange(keys.DECISIONS, start, "+", count=PAGE)
        if not page:
            return
        yield from page
        start = f"({page[-1][0]}"


def _label(fields: dict[str, str]) -> str | None:
    """"spam" or "ham" for an entry the trainer can use, else None."""
    label = fields.get("label", "").strip().lower()
    if label not in ("spam", "ham") or fields.get("text") is None:
        return None
    return label


def is_policy_rejection(fields: dict[str, str]) -> bool:
    # Only what was kept out: an approval logged with a reason code (the API refuses
    # that now, but older entries may have one) is still a comment the site wanted.
    return _label(fields) == "spam" and fields.get("reason", "") in POLICY_REJECT_REASONS


def export(client: redis.Redis, out: Path, since: str = "-",
           keep_policy_rejections: bool = False) -> dict[str, int]:
    """Write labelled JSONL (text, label, source + provenance) of the decision log."""
    corpus = Corpus()
    extra: list[dict[str, Any]] = []
    skipped = policy = 0
    for entry_id, fields in iter_decisions(client, since):
        label = _label(fields)
        if label is None:
            skipped += 1
            continue
        if is_policy_rejection(fields) and not keep_policy_rejections:
            policy += 1
            continue
        corpus.texts.append(fields["text"])
        corpus.labels.append(1 if label == "spam" else 0)
        corpus.sources.append("decisions")
        extra.append({"entry_id": entry_id, **{k: fields[k] for k in EXTRA_FIELDS if k in fields}})
    write_jsonl(corpus, out, extra)
    return {"written": len(corpus), "spam": sum(corpus.labels),
            "ham": len(corpus) - sum(corpus.labels), "skipped": skipped,
            "policy_rejections": policy}


def last_decisions(client: redis.Redis, last: int) -> list[tuple[str, int]]:
    """(text, label) of the spam/ham decisions among the ``last`` newest, oldest first."""
    rows = client.xrevrange(keys.DECISIONS, "+", "-", count=max(last, 0))
    out = []
    for _, fields in reversed(rows):
        label = _label(fields)
        if label is not None and not is_policy_rejection(fields):
            out.append((fields["text"], 1 if label == "spam" else 0))
    return out


#: The shipped data's file names, as a version's metadata records them.
SHIPPED_FILES = frozenset([*datasets.YOUTUBE_VIDEOS.values(), datasets.SMS_FILE.name])


def trained_on(data: dict[str, Any], texts: list[str]) -> int | None:
    """How many of ``texts`` a version was trained on, by exact text; None if unknown.

    ``data`` is the ``data`` part of the version's metadata. Known from the
    fingerprints of its --data texts, or, for a version saved before they were
    recorded, when it had no --data files (shipped data only: no decision).
    """
    if "extra_text_digests" in data:
        seen = set(data["extra_text_digests"])
        return sum(1 for text in texts if datasets.text_digest(text) in seen)
    if set(data.get("files", {})) <= SHIPPED_FILES and data.get("files"):
        return 0
    return None


def shadow(models_dir: Path, candidate: str, client: redis.Redis, last: int = 500) -> dict:
    """Score the last decisions with the current model and ``candidate``; compare."""
    current = load_scorer(models_dir, client=client)
    other = load_scorer(models_dir, candidate)
    rows = last_decisions(client, last)
    if not rows:
        return {"current": current.version, "candidate": other.version, "n": 0}
    texts = [t for t, _ in rows]
    y = np.array([label for _, label in rows])
    data = model_registry.read_metadata(models_dir, other.version).get("data", {})
    result: dict[str, Any] = {
        "current": current.version, "candidate": other.version, "n": len(rows),
        "n_spam": int(y.sum()),
        # Scored on texts it learnt from, a candidate looks better than it will be.
        "candidate_trained_on": trained_on(data, texts),
        "candidate_files": sorted(data.get("files", {})),
    }
    verdicts = {}
    for name, scorer in (("current", current), ("candidate", other)):
        proba = scorer.score_batch(texts)
        verdict = [scorer.verdict(float(p))[0] for p in proba]
        verdicts[name] = (proba, verdict)
        # Agreement with the moderators: rejecting spam and publishing ham are right;
        # a hold is neither right nor wrong (a moderator looks at it).
        wrong = sum(1 for v, lab in zip(verdict, y, strict=True)
                    if (v == "reject" and lab == 0) or (v == "publish" and lab == 1))
        result[name + "_wrong"] = wrong
        result[name + "_held"] = verdict.count("hold")
    disagreements = [
        {"text": texts[i][:80], "label": "spam" if y[i] else "ham",
         "current": f"{verdicts['current'][1][i]} {verdicts['current'][0][i]:.2f}",
         "candidate": f"{verdicts['candidate'][1][i]} {verdicts['candidate'][0][i]:.2f}",
         "gap": abs(float(verdicts["candidate"][0][i] - verdicts["current"][0][i]))}
        for i in range(len(texts)) if verdicts["current"][1][i] != verdicts["candidate"][1][i]
    ]
    disagreements.sort(key=lambda d: d["gap"], reverse=True)
    result["disagreements"] = disagreements
    return result


def render_shadow(result: dict, top: int = 10) -> str:
    if not result["n"]:
        return (f"no moderator decisions to compare {result['current']} and "
                f"{result['candidate']} on")
    lines = [
        f"shadow test on the last {result['n']} decisions ({result['n_spam']} spam)",
        f"  current   {result['current']}: wrong {result['current_wrong']}, held "
        f"{result['current_held']}",
        f"  candidate {result['candidate']}: wrong {result['candidate_wrong']}, held "
        f"{result['candidate_held']}",
        f"  verdicts differ on {len(result['disagreements'])} comments",
        _in_sample_note(result),
    ]
    for d in result["disagreements"][:top]:
        lines.append(f"    [{d['label']:>4}] current {d['current']:<12} candidate "
                     f"{d['candidate']:<12} {d['text']!r}")
    return "\n".join(lines)


def _in_sample_note(result: dict) -> str:
    """One line: how many of the decisions scored the candidate was trained on."""
    seen, name = result["candidate_trained_on"], result["candidate"]
    if seen is None:
        return (f"  note: cannot tell whether {name} was trained on these decisions: its "
                f"metadata names its data files ({', '.join(result['candidate_files'])}) "
                "but not their texts (saved before they were recorded)")
    if seen == 0:
        return f"  note: {name} was trained on none of these {result['n']} decisions"
    return (f"  note: {name} was trained on {seen} of these {result['n']} decisions (same "
            "text): on those the comparison is in-sample and flatters it")

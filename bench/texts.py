"""Varied, ordinary reader comments for the load generator.

Every text is distinct (the repeat-post guard would rightly hold copies), ham-like
(so the model publishes most of them, as it would for real readers) and contains no
digits or links, which the guards and the model treat as signals of their own.
"""

from __future__ import annotations

import itertools
import json
import random

OPENERS = [
    "Thanks for the article", "Interesting read", "Good summary", "I appreciate this report",
    "Well written piece", "Nice overview", "A clear explanation", "Helpful background",
    "Thoughtful coverage", "Useful context", "Fair reporting", "Solid article",
]
SUBJECTS = [
    "the visit", "the trade talks", "the history of both parties", "the cooperation plans",
    "the meeting in the capital", "the economic agreements", "the cultural exchange",
    "the statements of the delegation", "the friendship between the countries",
    "the anniversary celebrations", "the agricultural projects", "the student programs",
]
OPINIONS = [
    "deserves more attention", "was explained well", "raises good questions",
    "needs a follow up", "is worth discussing", "surprised me a little",
    "makes sense to me", "could use more detail", "was new to me",
    "matches what I read elsewhere", "is important for the region", "reads as balanced",
]
CLOSERS = [
    "keep it up", "looking forward to more", "thank you", "well done",
    "I hope you cover it again", "regards from a reader", "nice work",
    "I will share it with friends", "cheers", "have a good day", "great job", "kind regards",
]
AUTHORS = ["Ana", "Luis", "Marta", "Jorge", "Carmen", "Pedro", "Elena", "Pablo", ""]


def comment_texts(seed: int = 0):
    """An endless iterator of distinct comment texts."""
    combos = list(itertools.product(OPENERS, SUBJECTS, OPINIONS, CLOSERS))
    rng = random.Random(seed)
    rng.shuffle(combos)
    for round_ in itertools.count():
        for opener, subject, opinion, closer in combos:
            # Later rounds add a words-only suffix that differs per round (no digits).
            extra = ""
            if round_:
                extra = f" {AUTHORS[round_ % 8]} says {SUBJECTS[round_ // 8 % 12]}"
            yield f"{opener}, {subject} {opinion}; {closer}.{extra}"


def post_line(path: str, body: str, challenge_id: str, answer: str, author: str = "",
              form_token: str = "") -> str:
    """One request line (``POST path JSON``) for the load generator."""
    payload = {"body": body, "author": author, "challenge_id": challenge_id,
               "captcha_answer": answer, "form_token": form_token}
    return f"POST {path} {json.dumps(payload, separators=(',', ':'))}"

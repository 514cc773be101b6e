"""The review queue against a real redis-server: claims, leases, decisions, undo, history."""

from __future__ import annotations

import threading
import time

import pytest
from modhelpers import held, snapshot

from moderation import comments, keys
from moderation.queue import (
    ALREADY_DECIDED,
    CLAIMED,
    NOT_CLAIMED,
    NOT_DECIDED,
    NOT_FOUND,
    SHOWN_PER_GROUP,
    InvalidRequest,
    Refused,
    ReviewQueue,
    group_key,
)

ARTICLE = "some-article"


@pytest.fixture
def queue(redis_client):
    return ReviewQueue(redis_client, lease_seconds=600)


def test_list_sorts_by_risk_by_default_and_by_age(queue, redis_client):
    old = held(redis_client, "first low", score=0.3, now=1000)
    high = held(redis_client, "second high", score=0.9, now=2000)
    mid = held(redis_client, "third mid", score=0.6, now=3000)

    by_risk = queue.list()
    assert [g.top.comment.id for g in by_risk.groups] == [high.id, mid.id, old.id]
    by_age = queue.list(sort="age")
    assert [g.top.comment.id for g in by_age.groups] == [old.id, high.id, mid.id]
    assert by_risk.depth == 3 and by_risk.oldest_created == 1000


def test_list_filters_by_article_and_score_and_paginates(queue, redis_client):
    for i in range(7):
        held(redis_client, f"distinct text number {chr(97 + i)}", score=0.1 * (i + 1), article="a")
    other = held(redis_client, "on another article", score=0.55, article="b")

    only_b = queue.list(article="b")
    assert [g.top.comment.id for g in only_b.groups] == [other.id]
    ranged = queue.list(min_score=0.25, max_score=0.55)
    assert sorted(round(g.top.comment.score, 2) for g in ranged.groups) == [0.3, 0.4, 0.5, 0.55]
    page2 = queue.list(article="a", per_page=3, page=2)
    assert page2.total_groups == 7 and page2.pages == 3
    assert [round(g.top.comment.score, 1) for g in page2.groups] == [0.4, 0.3, 0.2]
    assert page2.depth == 8


def test_near_duplicates_form_one_group(queue, redis_client):
    a = held(redis_client, "WIN a FREE iPhone now!!!", score=0.7)
    b = held(redis_client, "win a free   iphone NOW", score=0.8)
    c = held(redis_client, "Something else entirely", score=0.2)
    page = queue.list()
    assert [g.count for g in page.groups] == [2, 1]
    assert set(page.groups[0].ids) == {a.id, b.id} and page.groups[1].ids == [c.id]
    assert page.groups[0].top.comment.id == b.id  # riskiest first inside a group
    assert page.total_items == 3 and page.total_groups == 2
    assert group_key("FREE  money") == group_key("free money!")
    ungrouped = queue.list(grouped=False)
    assert [g.count for g in ungrouped.groups] == [1, 1, 1]


def test_a_group_lists_every_claim_on_its_comments_shown_or_not(queue, redis_client):
    # Only the first comment's claim reached the page; one on a copy past the shown
    # ones was not even read, yet it refuses a decision on the whole group.
    copies = [held(redis_client, f"WIN a FREE phone {'!' * i}", score=0.9 - i / 100)
              for i in range(SHOWN_PER_GROUP + 2)]
    queue.claim("ben", [copies[1].id, copies[-1].id])
    ReviewQueue(redis_client, lease_seconds=30).claim("noa", [copies[2].id])
    [group] = queue.list().groups
    assert group.count == len(copies) and len(group.items) == SHOWN_PER_GROUP
    assert [(c.holder, c.count) for c in group.claims] == [("ben", 2), ("noa", 1)]
    assert 590 < group.claims[0].lease_left <= 600 and group.claims[1].lease_left <= 30
    assert not group.top.holder  # the first comment itself is free


def test_approve_publishes_and_logs_the_decision(queue, redis_client):
    comment = held(redis_client, "A fine comment", score=0.42, now=1234.5)
    [entry] = queue.decide("alice", [comment.id], "approve")

    assert redis_client.zscore(keys.REVIEW_QUEUE, comment.id) is None
    assert redis_client.zscore(keys.article_published(ARTICLE), comment.id) == 1234.5
    assert comments.get(redis_client, comment.id).status == comments.PUBLISHED
    [(entry_id, fields)] = redis_client.xrange(keys.DECISIONS)
    assert entry_id == entry
    assert fields["text"] == "A fine comment"
    assert fields["label"] == "ham" and fields["moderator"] == "alice"
    assert fields["score"] == "0.42" and fields["model_version"] == "v-test"
    assert fields["comment_id"] == comment.id and fields["action"] == "approve"
    assert set(keys.DECISION_FIELDS) == set(fields)
    [step] = queue.history(comment.id)
    assert step["actor"] == "alice" and step["action"] == "approve"
    assert step["from"] == "held" and step["to"] == "published"


@pytest.mark.parametrize(
    ("action", "reason", "status", "label", "logged_reason"),
    [
        ("reject", "off_topic", "rejected", "spam", "off_topic"),
        ("spam", "", "rejected", "spam", "spam"),
        ("ham", "", "published", "ham", "ham"),
    ],
)
def test_each_action_sets_status_and_label(
    queue, redis_client, action, reason, status, label, logged_reason
):
    comment = held(redis_client)
    queue.decide("bob", [comment.id], action, reason)
    assert comments.get(redis_client, comment.id).status == status
    [(_, fields)] = redis_client.xrange(keys.DECISIONS)
    assert (fields["label"], fields["reason"]) == (label, logged_reason)
    index = keys.article_published(ARTICLE) if status == "published" else keys.REJECTED
    assert redis_client.zscore(index, comment.id) is not None


@pytest.mark.parametrize(
    ("action", "reason", "field"),
    [
        ("delete", "", "action"),
        ("reject", "", "reason"),
        ("reject", "because", "reason"),
        ("", "", "action"),
    ],
)
def test_unknown_action_or_reason_is_refused_without_writes(
    queue, redis_client, action, reason, field
):
    comment = held(redis_client)
    before = snapshot(redis_client)
    with pytest.raises(InvalidRequest) as caught:
        queue.decide("alice", [comment.id], action, reason)
    assert caught.value.field == field
    assert snapshot(redis_client) == before


def test_deciding_twice_is_refused_with_who_decided(queue, redis_client):
    comment = held(redis_client)
    queue.decide("alice", [comment.id], "spam")
    before = snapshot(redis_client)
    with pytest.raises(Refused) as caught:
        queue.decide("bob", [comment.id], "approve")
    [refusal] = caught.value.refusals
    assert (refusal.code, refusal.who, refusal.status) == (ALREADY_DECIDED, "alice", "rejected")
    assert snapshot(redis_client) == before


def test_unknown_item_is_not_found(queue, redis_client):
    with pytest.raises(Refused) as caught:
        queue.decide("alice", ["nope"], "approve")
    assert caught.value.not_found and caught.value.refusals[0].code == NOT_FOUND
    assert redis_client.keys("*") == []


def test_claimed_item_refuses_others_and_names_the_holder(queue, redis_client):
    comment = held(redis_client)
    queue.claim("alice", [comment.id])
    before = snapshot(redis_client)
    for attempt in (
        lambda: queue.decide("bob", [comment.id], "approve"),
        lambda: queue.claim("bob", [comment.id]),
        lambda: queue.release("bob", [comment.id]),
    ):
        with pytest.raises(Refused) as caught:
            attempt()
        [refusal] = caught.value.refusals
        assert refusal.code == CLAIMED and refusal.who == "alice"
        assert 590 < refusal.lease_left <= 600
        assert "claimed by alice" in refusal.message()
    assert snapshot(redis_client) == before
    # The holder can decide it.
    queue.decide("alice", [comment.id], "approve")
    assert redis_client.exists(keys.claim(comment.id)) == 0


def test_bulk_decision_is_all_or_nothing(queue, redis_client):
    free = held(redis_client, "one")
    taken = held(redis_client, "two")
    queue.claim("alice", [taken.id])
    before = snapshot(redis_client)
    with pytest.raises(Refused) as caught:
        queue.decide("bob", [free.id, taken.id], "reject", "abusive")
    assert [r.comment_id for r in caught.value.refusals] == [taken.id]
    assert snapshot(redis_client) == before
    assert queue.decide("bob", [free.id, free.id], "reject", "abusive")  # duplicates collapse
    assert redis_client.xlen(keys.DECISIONS) == 1


def test_lease_expiry_returns_the_item(redis_client):
    queue = ReviewQueue(redis_client, lease_seconds=0.3)
    comment = held(redis_client)
    assert queue.claim_next("alice", 5) == [comment.id]
    assert queue.claim_next("bob", 5) == []
    with pytest.raises(Refused):
        queue.decide("bob", [comment.id], "approve")
    time.sleep(0.45)
    assert queue.holders([comment.id]) == {}
    assert queue.claim_next("bob", 5) == [comment.id]
    queue.decide("bob", [comment.id], "approve")
    assert [h["actor"] for h in queue.history(comment.id)] == ["alice", "bob", "bob"]


def test_claim_next_takes_the_riskiest_free_items(queue, redis_client):
    low = held(redis_client, "a", score=0.2)
    high = held(redis_client, "b", score=0.9)
    mid = held(redis_client, "c", score=0.5)
    assert queue.claim_next("alice", 2) == [high.id, mid.id]
    assert queue.claim_next("bob", 2) == [low.id]
    assert queue.holders([low.id, high.id])[high.id][0] == "alice"
    with pytest.raises(InvalidRequest):
        queue.claim_next("alice", 0)


def test_release_returns_the_item_and_only_the_holder_may(queue, redis_client):
    comment = held(redis_client)
    with pytest.raises(Refused) as caught:
        queue.release("alice", [comment.id])
    assert caught.value.refusals[0].code == NOT_CLAIMED
    queue.claim("alice", [comment.id])
    queue.release("alice", [comment.id])
    assert queue.claim_next("bob") == [comment.id]
    assert [h["action"] for h in queue.history(comment.id)] == ["claim", "release", "claim"]


def test_undo_puts_the_comment_back_and_drops_the_log_entry(queue, redis_client):
    comment = held(redis_client, score=0.66)
    other = held(redis_client, "keep me")
    queue.decide("alice", [comment.id, other.id], "approve")
    queue.undo("olga", comment.id)

    assert redis_client.zscore(keys.REVIEW_QUEUE, comment.id) == 0.66
    assert redis_client.zscore(keys.article_published(ARTICLE), comment.id) is None
    assert comments.get(redis_client, comment.id).status == comments.HELD
    assert [d.comment_id for d in queue.recent_decisions()] == [other.id]
    steps = queue.history(comment.id)
    assert [(s["action"], s["from"], s["to"], s["actor"]) for s in steps] == [
        ("approve", "held", "published", "alice"),
        ("undo", "published", "held", "olga"),
    ]
    with pytest.raises(Refused) as caught:
        queue.undo("olga", comment.id)
    assert caught.value.refusals[0].code == NOT_DECIDED
    # It can be decided again, differently.
    queue.decide("bob", [comment.id], "spam")
    assert redis_client.zscore(keys.REJECTED, comment.id) is not None


def test_recent_decisions_newest_first_and_paged(queue, redis_client):
    ids = [held(redis_client, f"text {i}").id for i in range(5)]
    for comment_id in ids:
        queue.decide("alice", [comment_id], "ham")
    newest = queue.recent_decisions(count=2)
    assert [d.comment_id for d in newest] == [ids[4], ids[3]]
    older = queue.recent_decisions(count=10, before=newest[-1].entry_id)
    assert [d.comment_id for d in older] == [ids[2], ids[1], ids[0]]


def test_stats_depth_and_oldest(queue, redis_client):
    assert queue.stats() == (0, None)
    held(redis_client, "x", now=500.0, score=0.9)
    held(redis_client, "y", now=100.0, score=0.1)
    assert queue.stats() == (2, 100.0)
    # A score filter that hides the oldest does not change the header.
    assert queue.list(min_score=0.5).oldest_created == 100.0


def test_eight_moderators_decide_500_items_exactly_once(redis_client, redis_url):
    """8 threads, each with its own connection, claim and decide concurrently.

    Besides working their own claims, each moderator also tries to decide two
    random items per round: those must be refused (claimed by someone else or
    already decided) or, when free, be decided by exactly that moderator.
    """
    import random

    import redis as redis_py

    items = [held(redis_client, f"comment number {i}", score=(i % 100) / 100) for i in range(500)]
    decided: dict[str, list[str]] = {}
    claims: dict[str, list[str]] = {}
    errors: list[BaseException] = []
    refused = [0]
    lock = threading.Lock()
    start = threading.Barrier(8)

    def moderator(name: str) -> None:
        connection = redis_py.Redis.from_url(redis_url, decode_responses=True)
        queue = ReviewQueue(connection, lease_seconds=60)
        rng = random.Random(name)
        try:
            start.wait()
            while claimed := queue.claim_next(name, 3):
                with lock:
                    for comment_id in claimed:
                        claims.setdefault(comment_id, []).append(name)
                for position, comment_id in enumerate(claimed):
                    queue.decide(name, [comment_id], ("approve", "spam", "ham")[position % 3])
                    with lock:
                        decided.setdefault(comment_id, []).append(name)
                for victim in rng.sample(items, 2):
                    try:
                        queue.decide(name, [victim.id], "reject", "duplicate")
                    except Refused as refusal:
                        assert refusal.refusals[0].code in (CLAIMED, ALREADY_DECIDED)
                        with lock:
                            refused[0] += 1
                    else:
                        with lock:
                            decided.setdefault(victim.id, []).append(name)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=moderator, args=(f"mod{i}",)) for i in range(8)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    elapsed = time.perf_counter() - started
    assert not errors, errors
    assert all(not t.is_alive() for t in threads)

    assert len(decided) == 500, "every item decided"
    assert all(len(who) == 1 for who in decided.values()), "no item decided twice"
    assert all(len(who) == 1 for who in claims.values()), "no item claimed by two"
    assert redis_client.zcard(keys.REVIEW_QUEUE) == 0, "queue empty"
    log = redis_client.xrange(keys.DECISIONS)
    assert len(log) == 500 and len({f["comment_id"] for _, f in log}) == 500
    published = redis_client.zcard(keys.article_published(ARTICLE))
    assert published + redis_client.zcard(keys.REJECTED) == 500, "none lost"
    assert redis_client.keys(keys.claim("*")) == [], "no claim left behind"
    by_comment = {f["comment_id"]: f["moderator"] for _, f in log}
    assert {cid: who[0] for cid, who in decided.items()} == by_comment
    assert refused[0] > 0
    print(f"\n8 moderators decided 500 items in {elapsed:.2f}s; {refused[0]} steals refused")


def test_rejections_for_a_policy_reason_are_not_taught_as_spam(queue, redis_client, tmp_path):
    """Abusive or off-topic is the site's policy; adverts and floods are spam."""
    import json

    from training.decisions import export, last_decisions

    advert = held(redis_client, "Buy followers at my site")
    flood = held(redis_client, "Same text again and again")
    rant = held(redis_client, "You are all idiots")
    wander = held(redis_client, "What about the football last night")
    queue.decide("ann", [advert.id], "reject", "advertising")
    queue.decide("ann", [flood.id], "reject", "duplicate")
    queue.decide("ann", [rant.id], "reject", "abusive")
    queue.decide("ann", [wander.id], "reject", "off_topic")

    out = tmp_path / "decisions.jsonl"
    counts = export(redis_client, out)
    assert (counts["written"], counts["policy_rejections"]) == (2, 2)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["text"], r["label"], r["reason"]) for r in rows] == [
        ("Buy followers at my site", "spam", "advertising"),
        ("Same text again and again", "spam", "duplicate"),
    ]
    assert [text for text, _ in last_decisions(redis_client, 10)] == [
        "Buy followers at my site", "Same text again and again"]

    counts = export(redis_client, out, keep_policy_rejections=True)
    assert (counts["written"], counts["policy_rejections"]) == (4, 0)


@pytest.mark.parametrize("action", ["approve", "ham"])
def test_a_reason_code_is_refused_on_a_decision_that_keeps_the_comment(
    queue, redis_client, action
):
    kept = held(redis_client, "A fair point, well made")
    with pytest.raises(InvalidRequest) as refused:
        queue.decide("ann", [kept.id], action, "abusive")
    assert refused.value.field == "reason"
    assert redis_client.xlen(keys.DECISIONS) == 0
    assert redis_client.zscore(keys.REVIEW_QUEUE, kept.id) is not None


def test_an_approval_logged_with_a_reason_code_is_still_exported_as_ham(
    redis_client, tmp_path
):
    """Entries written before approvals refused reasons: the text was wanted."""
    from training.decisions import export

    redis_client.xadd(keys.DECISIONS, {
        "text": "A fair point, well made", "label": "ham", "action": "approve",
        "reason": "abusive", "moderator": "ann", "comment_id": "c1"})
    counts = export(redis_client, tmp_path / "decisions.jsonl")
    assert (counts["written"], counts["ham"], counts["policy_rejections"]) == (1, 1, 0)


def test_decisions_reach_the_trainers_export(queue, redis_client, tmp_path):
    """The decision log is what `python -m training export-decisions` reads."""
    import json

    from training.decisions import export

    spam = held(redis_client, "Cheap pills here")
    ham = held(redis_client, "Nice article")
    undone = held(redis_client, "Changed my mind")
    queue.decide("alice", [spam.id], "spam")
    queue.decide("bob", [ham.id], "approve")
    queue.decide("bob", [undone.id], "reject", "off_topic")
    queue.undo("olga", undone.id)

    out = tmp_path / "decisions.jsonl"
    counts = export(redis_client, out)
    assert counts == {"written": 2, "spam": 1, "ham": 1, "skipped": 0, "policy_rejections": 0}
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["text"], r["label"], r["moderator"], r["comment_id"]) for r in rows] == [
        ("Cheap pills here", "spam", "alice", spam.id),
        ("Nice article", "ham", "bob", ham.id),
    ]

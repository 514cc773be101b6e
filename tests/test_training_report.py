"""The evaluation report: real protocol runs on the shipped data, written out and read back."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from training import cli, datasets, evaluate, train, uncertainty


def split(name: str, y, proba, publish_below: float, reject_at: float) -> evaluate.SplitResult:
    y, proba = np.array(y), np.array(proba, dtype=float)
    found = evaluate.metrics(y, proba, publish_below, reject_at)
    return evaluate.SplitResult(name, found, found, 0, y, proba, publish_below, reject_at, 1.0)


def test_pooled_shares_count_each_text_against_its_own_splits_thresholds():
    first = split("A", [0, 0, 0, 0, 1, 1], [0.1, 0.5, 0.5, 0.9, 0.05, 0.95], 0.2, 0.8)
    second = split("B", [0, 1, 1, 1], [0.6, 0.1, 0.4, 0.7], 0.3, 0.65)
    pooled = evaluate.pooled_shares([first, second])
    assert pooled["ham_rejected"] == pytest.approx(1 / 5)  # A's 0.9; B's 0.6 is under 0.65
    assert pooled["spam_published"] == pytest.approx(2 / 5)  # A's 0.05, B's 0.1
    assert pooled["queue_share"] == pytest.approx(4 / 10)  # A's two 0.5s, B's 0.6 and 0.4


def test_the_unseen_site_paragraph_states_the_pooled_shares_against_the_budgets():
    lovo = [split("Psy", [0, 0, 1, 1], [0.1, 0.9, 0.05, 0.95], 0.2, 0.8)]
    summary = evaluate.summarize({"lovo": lovo})
    assert summary["lovo"]["pooled"] == {
        "ham_rejected": 0.5, "spam_published": 0.5, "queue_share": 0.0}
    text = evaluate.render_markdown("v", summary, CV, THRESHOLDS, [])
    assert "blocked 50.00% of ham (budget 0.5%)" in text
    assert "let through 50.00% of spam (budget 2%)" in text
    assert "was exceeded here" in text and "Both budgets held" not in text

    lovo = [split("Psy", [0, 0, 1, 1], [0.1, 0.5, 0.5, 0.95], 0.2, 0.8)]
    text = evaluate.render_markdown("v", evaluate.summarize({"lovo": lovo}), CV, THRESHOLDS, [])
    assert "blocked 0.00% of ham" in text and "Both budgets held." in text


def test_errors_to_pass_counts_the_fewest_corrections_that_beat_the_target():
    # 58 ham right, 2 ham flagged, 38 spam caught, 2 spam missed: MCC 0.917.
    y = [0] * 60 + [1] * 40
    proba = [0.1] * 58 + [0.9] * 2 + [0.9] * 38 + [0.1] * 2
    assert uncertainty.mcc_of(*uncertainty.confusion(y, proba)) == pytest.approx(11 / 12)
    assert uncertainty.errors_to_pass(y, proba, 0.9) == 0
    assert uncertainty.errors_to_pass(y, proba, 0.925) == 1
    assert uncertainty.errors_to_pass(y, proba, 0.99) == 4
    assert uncertainty.errors_to_pass(y, proba, 1.0) is None  # MCC cannot exceed 1


def test_the_mcc_interval_is_reproducible_and_widens_on_a_smaller_test_set():
    y = np.array([0] * 60 + [1] * 40)
    proba = np.array([0.1] * 58 + [0.9] * 2 + [0.9] * 38 + [0.1] * 2)
    low, high = uncertainty.mcc_interval(y, proba)
    assert low < 11 / 12 < high
    assert uncertainty.mcc_interval(y, proba) == (low, high)
    big_low, big_high = uncertainty.mcc_interval(np.tile(y, 10), np.tile(proba, 10))
    assert high - low > 2 * (big_high - big_low)


def test_a_missed_published_number_says_by_how_many_errors(capsys):
    y = [0] * 60 + [1] * 40
    proba = [0.1] * 58 + [0.9] * 2 + [0.9] * 38 + [0.1] * 2
    summary = evaluate.summarize({"tubespam": [split("Psy", y, proba, 0.2, 0.8)]})
    psy = summary["tubespam"]["videos"]["Psy"]
    assert (psy["pass"], psy["errors_to_pass"]) == (False, 1)
    text = evaluate.render_markdown("v", summary, CV, THRESHOLDS, [])
    assert "Psy's MCC misses the published 0.925: 1 of its 4 errors would have to go" in text
    assert "inside its 95% bootstrap interval" in text
    cli._print_protocols(summary)  # the summary `train` and `evaluate` print
    assert "Psy 0.917/0.925! (1 error short)" in capsys.readouterr().out


CV = {"mcc": 0.9, "f1": 0.9, "roc_auc": 0.99, "ham_rejected": 0.001,
      "spam_published": 0.01, "queue_share": 0.08}
THRESHOLDS = {"publish_below": 0.2, "reject_at": 0.9}


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """TubeSpam and SMS protocols run for real; the CV part from a quick fit."""
    corpus = datasets.load_shipped()
    model = train.fit(corpus, quick=True)
    results = evaluate.run_protocols(protocols=("tubespam", "sms"))
    summary = evaluate.summarize(results)
    cv = train.cv_summary(model, corpus.y, train.media(corpus))
    thresholds = {"publish_below": model.publish_below, "reject_at": model.reject_at}
    out = evaluate.write_report(tmp_path_factory.mktemp("reports"), "v-test", summary, cv,
                                thresholds, corpus.y, model.cv["oof_proba"], results)
    return out, summary


def table_rows(markdown: str, first_cell: str) -> list[list[str]]:
    return [
        [cell.strip() for cell in line.strip("|").split("|")]
        for line in markdown.splitlines()
        if line.startswith(f"| {first_cell} ")
    ]


def test_every_protocol_row_shows_the_three_way_shares_of_its_own_split(report):
    out, summary = report
    markdown = (out / "report.md").read_text()
    header = table_rows(markdown, "split")[0]
    assert {"blocked ham", "spam published", "queued"} <= set(header)
    for name, found in {**summary["tubespam"]["videos"], "SMS": summary["sms"]}.items():
        (cells,) = table_rows(markdown, name)
        row = dict(zip(header, cells, strict=True))
        assert row["MCC"] == f"{found['mcc']:.3f}"
        assert row["spam published"] == f"{found['spam_published']:.2%}"
        assert row["target"] in ("PASS", "FAIL")


def test_every_protocol_row_shows_its_errors_and_how_sure_its_mcc_is(report):
    out, summary = report
    markdown = (out / "report.md").read_text()
    header = table_rows(markdown, "split")[0]
    for name, found in {**summary["tubespam"]["videos"], "SMS": summary["sms"]}.items():
        row = dict(zip(header, table_rows(markdown, name)[0], strict=True))
        low, high = found["mcc_ci95"]
        assert low <= found["mcc"] <= high
        assert row["MCC 95% interval"] == f"{low:.3f}-{high:.3f}"
        errors = found["false_positives"] + found["false_negatives"]
        assert row["errors (FP/FN)"].startswith(f"{errors} (")
        if name != "SMS":  # SMS must also keep blocked ham down, which errors do not say
            assert (found["errors_to_pass"] == 0) == found["pass"]
        if found["errors_to_pass"]:
            assert f"{name}'s MCC misses the published" in markdown


def test_the_report_folder_holds_the_plots_it_links_and_strict_json(report):
    out, summary = report
    markdown = (out / "report.md").read_text()
    linked = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", markdown)
    assert sorted(linked) == sorted(p.name for p in out.glob("*.png"))
    assert len(linked) == 5
    for name in linked:
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    data = json.loads((out / "metrics.json").read_text())
    assert data["protocols"]["tubespam"]["videos"].keys() == summary["tubespam"]["videos"].keys()
    assert data["thresholds"]["publish_below"] < data["thresholds"]["reject_at"]


def test_the_report_says_when_the_thresholds_cannot_be_trusted():
    text = evaluate.render_markdown("v", {}, CV, THRESHOLDS, [],
                                    ["publish and reject thresholds meet at 0.500: ..."])
    assert ("**Warning: these thresholds cannot be trusted** (`promote` asks for `--force`):\n\n"
            "- publish and reject thresholds meet at 0.500: ...") in text
    assert "cannot be trusted" not in evaluate.render_markdown("v", {}, CV, THRESHOLDS, [])


def test_an_interrupted_report_leaves_the_old_one_whole(tmp_path, monkeypatch):
    """Ctrl-C while the plots are drawn: the version's earlier report stays as it was,
    and nothing half-written (or hidden) is left beside it."""
    old = tmp_path / "v" / "report.md"
    old.parent.mkdir()
    old.write_text("the earlier report\n")

    def interrupted(out_dir, *args):
        (out_dir / "roc.png").write_bytes(b"half a plot")
        raise KeyboardInterrupt

    monkeypatch.setattr(evaluate, "_plots", interrupted)
    with pytest.raises(KeyboardInterrupt):
        evaluate.write_report(tmp_path, "v", {}, CV, THRESHOLDS, np.array([0, 1]),
                              np.array([0.1, 0.9]), {})
    assert [p.name for p in tmp_path.iterdir()] == ["v"]
    assert [p.name for p in (tmp_path / "v").iterdir()] == ["report.md"]
    assert old.read_text() == "the earlier report\n"
    monkeypatch.undo()
    evaluate.write_report(tmp_path, "v", {}, CV, THRESHOLDS, np.array([0, 1]),
                          np.array([0.1, 0.9]), {})
    assert [p.name for p in tmp_path.iterdir()] == ["v"]
    assert "# Evaluation report: model v" in old.read_text()

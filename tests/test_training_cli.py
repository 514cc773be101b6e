"""The operator CLI against a real Redis: errors, export-decisions, promote/rollback, shadow."""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from moderation import keys
from training import cli

PROJECT = Path(__file__).resolve().parent.parent


def copy_version(models_dir: Path, version: str, dest: Path, new_version: str,
                 key: dict | None = None) -> str:
    """A second version: same artifact, new id, and (optionally) recorded protocol scores."""
    target = dest / new_version
    shutil.copytree(models_dir / version, target)
    meta = json.loads((target / "metadata.json").read_text())
    meta["version"] = new_version
    if key is not None:
        meta["evaluation"] = {"key": key}
    (target / "metadata.json").write_text(json.dumps(meta))
    return new_version


@pytest.fixture
def models(models_dir, tmp_path) -> tuple[Path, str, str]:
    """A models folder with a current version and a better candidate."""
    base = (models_dir / "CURRENT").read_text().strip()
    folder = tmp_path / "models"
    folder.mkdir()
    old = copy_version(models_dir, base, folder, "20000101-000000-aaaaaa",
                       {"tubespam_mean_mcc": 0.90, "sms_mcc": 0.93, "lovo_mean_mcc": 0.85})
    new = copy_version(models_dir, base, folder, "20000101-000001-bbbbbb",
                       {"tubespam_mean_mcc": 0.91, "sms_mcc": 0.94, "lovo_mean_mcc": 0.86})
    (folder / "CURRENT").write_text(old + "\n")
    return folder, old, new


THREE_DECISIONS = [("Check out my channel http://bit.ly/x subscribe!!!", "spam"),
                   ("Her voice in the chorus is amazing", "ham"),
                   ("This song reminds me of summer 2012", "ham")]


@pytest.fixture(scope="module")
def trained_on_three_decisions(tmp_path_factory, models_dir) -> tuple[Path, str, str, str]:
    """(models folder, current version, a candidate trained with 3 decisions, train's output)."""
    folder = tmp_path_factory.mktemp("models")
    base = (models_dir / "CURRENT").read_text().strip()
    old = copy_version(models_dir, base, folder, "20000101-000000-aaaaaa")
    (folder / "CURRENT").write_text(old + "\n")
    data = folder.parent / "three-decisions.jsonl"
    data.write_text("".join(json.dumps({"text": text, "label": label, "source": "decisions"})
                            + "\n" for text, label in THREE_DECISIONS))
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cli.main(["--models-dir", str(folder), "train", "--quick", "--no-report",
                         "--data", str(data)])
    assert code == 0, out.getvalue()
    candidate = next(v.name for v in folder.iterdir() if v.is_dir() and v.name != old)
    return folder, old, candidate, out.getvalue()


@pytest.fixture
def env(monkeypatch, redis_url, redis_client):
    monkeypatch.setenv("REDIS_URL", redis_url)
    return redis_client


def run(capsys, *argv) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(code: int, err: str, pattern: str) -> None:
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    assert pattern in lines[0], lines[0]


def test_help_explains_every_command():
    out = subprocess.run([sys.executable, "-m", "training", "--help"], cwd=PROJECT,
                         capture_output=True, text=True, check=True).stdout
    for command in ("train", "evaluate", "export-decisions", "promote", "rollback", "list",
                    "shadow"):
        assert command in out
    train_help = subprocess.run([sys.executable, "-m", "training", "train", "--help"],
                                cwd=PROJECT, capture_output=True, text=True, check=True).stdout
    assert "--streaming" in train_help and "--data" in train_help


def test_every_option_with_a_default_says_what_it_is():
    parser = cli.build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, command in [("", parser), *commands.choices.items()]:
        for action in command._actions:
            if action.option_strings and action.default not in (None, False, argparse.SUPPRESS):
                assert "default" in (action.help or ""), f"{name} {action.option_strings[0]}"
    shadow_help = commands.choices["shadow"].format_help()
    assert "(default: 500)" in shadow_help and "(default: 10)" in shadow_help


def test_bad_data_exits_non_zero_with_one_line_in_a_subprocess(tmp_path, models):
    folder, _, _ = models
    bad = tmp_path / "bad.csv"
    bad.write_text("text,label\nhello,perhaps\n")
    result = subprocess.run(
        [sys.executable, "-m", "training", "--models-dir", str(folder), "evaluate", "--data",
         str(bad)], cwd=PROJECT, capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip() == f"error: {bad}: row 2: unknown label 'perhaps' " \
                                    "(expected spam/ham or 1/0)"
    assert "Traceback" not in result.stderr


def test_output_piped_into_a_reader_that_leaves_ends_quietly(models):
    """`python -m training list | head -1`: no BrokenPipeError traceback."""
    folder, _, _ = models
    process = subprocess.Popen(
        [sys.executable, "-m", "training", "--models-dir", str(folder), "list"],
        cwd=PROJECT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.stdout.close()  # the reader is gone before a line is written
    stderr = process.stderr.read().decode()
    process.stderr.close()
    assert process.wait(timeout=60) == 141
    assert stderr == ""


@pytest.mark.parametrize(
    ("content", "pattern"),
    [
        (None, "no such file"),
        ("", "empty file"),
        ("body,label\nx,1\n", "missing column(s) text"),
        ("text,label\nx,1\ny,1\n", "only spam examples"),
    ],
)
def test_evaluate_bad_files(capsys, tmp_path, models, content, pattern):
    folder, _, _ = models
    path = tmp_path / "data.csv"
    if content is not None:
        path.write_text(content)
    code, _, err = run(capsys, "--models-dir", folder, "evaluate", "--data", path)
    one_line_error(code, err, pattern)


def test_evaluate_writes_the_metrics(capsys, tmp_path, models):
    folder, old, _ = models
    data = tmp_path / "labelled.jsonl"
    rows = [{"text": "Check out my channel http://bit.ly/x subscribe!!!", "label": "spam"},
            {"text": "Subscribe to my channel for free gift cards", "label": 1},
            {"text": "This song reminds me of summer 2012", "label": "ham"},
            {"text": "Her voice in the chorus is amazing", "label": 0}]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out_json = tmp_path / "out" / "metrics.json"
    code, out, _ = run(capsys, "--models-dir", folder, "evaluate", "--data", data, "--json",
                       out_json)
    assert code == 0
    metrics = json.loads(out_json.read_text())
    assert metrics["model_version"] == old
    for name in ("mcc", "f1", "accuracy", "roc_auc", "ham_rejected", "ham_queued",
                 "spam_published", "spam_queued"):
        assert 0.0 <= metrics[name] <= 1.0 or name == "mcc"
    assert metrics["n"] == 4 and metrics["n_spam"] == 2
    assert "MCC" in out


def test_evaluate_json_cut_short_keeps_the_old_file_and_leaves_no_temporary_one(
    tmp_path, models
):
    """The write fails half-way, as on a full disk: here the file size limit (64 bytes,
    in a subprocess) stops it. The OUT that was there stays whole."""
    folder, _, _ = models
    data = tmp_path / "labelled.jsonl"
    data.write_text('{"text": "Subscribe to my channel", "label": 1}\n'
                    '{"text": "Her voice is amazing", "label": 0}\n')
    out_json = tmp_path / "out" / "metrics.json"
    out_json.parent.mkdir()
    out_json.write_text('{"previous": "run"}\n')
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    result = subprocess.run(
        [sys.executable, "-m", "training", "--models-dir", str(folder), "evaluate", "--data",
         str(data), "--json", str(out_json)], cwd=PROJECT, capture_output=True, text=True,
        env=env, preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (64, 64)))
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == f"error: cannot write --json {out_json}: File too large"
    assert "MCC" in result.stdout  # the metrics were printed before
    assert out_json.read_text() == '{"previous": "run"}\n'
    assert [p.name for p in out_json.parent.iterdir()] == ["metrics.json"]


@pytest.mark.parametrize("where", ["a directory", "under a file"])
def test_evaluate_names_a_json_path_it_cannot_write(capsys, tmp_path, models, where):
    folder, _, _ = models
    data = tmp_path / "labelled.jsonl"
    data.write_text('{"text": "Subscribe to my channel", "label": 1}\n'
                    '{"text": "Her voice is amazing", "label": 0}\n')
    (tmp_path / "a-file").write_text("")
    out_json = tmp_path if where == "a directory" else tmp_path / "a-file" / "m.json"
    code, _, err = run(capsys, "--models-dir", folder, "evaluate", "--data", data,
                       "--json", out_json)
    one_line_error(code, err, f"cannot write --json {out_json}")
    if where == "under a file":  # not mkdir's "File exists", which names the wrong thing
        assert err.strip().endswith(f"{tmp_path / 'a-file'} is not a folder")


@pytest.mark.parametrize("where", ["a file", "under a file"])
@pytest.mark.parametrize(
    ("option", "command"),
    [
        ("--models-dir", ["train", "--quick", "--no-report"]),
        ("--models-dir", ["train", "--streaming", "--data", "tiny.jsonl"]),
        ("--models-dir", ["ensure-model"]),
        ("--reports-dir", ["train", "--quick"]),
        ("--reports-dir", ["evaluate"]),
    ],
)
def test_a_folder_that_cannot_be_made_is_named_before_any_training(
    capsys, tmp_path, models, option, command, where
):
    folder, _, _ = models
    write_tiny(tmp_path / "tiny.jsonl")
    (tmp_path / "a-file").write_text("")
    bad = tmp_path / "a-file" if where == "a file" else tmp_path / "a-file" / "sub"
    folders = {"--models-dir": folder, "--reports-dir": tmp_path / "reports", option: bad}
    before = sorted(p.name for p in folder.iterdir())
    code, _, err = run(capsys, *(a for pair in folders.items() for a in pair),
                       *(str(tmp_path / a) if a.endswith(".jsonl") else a for a in command))
    one_line_error(code, err, f"{option} {bad} is not a folder" if where == "a file"
                   else f"cannot create {option} {bad}: Not a directory")
    assert sorted(p.name for p in folder.iterdir()) == before  # nothing trained


@pytest.mark.parametrize(("command", "option"),
                         [(["train", "--streaming", "--chunk-size"], "--chunk-size"),
                          (["shadow", "V", "--last"], "--last")])
@pytest.mark.parametrize("value", ["0", "-5"])
def test_counts_below_one_are_refused_by_the_parser(capsys, command, option, value):
    """--chunk-size 0 ended a streaming run in range()'s traceback; --last 0 scored nothing."""
    with pytest.raises(SystemExit) as info:
        cli.main([*command, value])
    assert info.value.code == 2
    assert f"error: argument {option}: {value} is not at least 1" in capsys.readouterr().err


def test_export_decisions_reads_the_stream(capsys, tmp_path, env):
    entries = [
        {"text": "free money http://x.co", "label": "spam", "moderator": "ann"},
        {"text": "lovely article", "label": "ham", "moderator": "bob"},
        {"text": "off topic rant", "label": "off_topic", "moderator": "ann"},
    ]
    for i, fields in enumerate(entries):
        env.xadd(keys.DECISIONS, {**fields, "time": str(1700000000 + i), "score": "0.5",
                                  "model_version": "v1", "reason": "x", "comment_id": f"c{i}"})
    out_file = tmp_path / "decisions.jsonl"
    code, out, _ = run(capsys, "export-decisions", "--out", out_file)
    assert code == 0
    rows = [json.loads(line) for line in out_file.read_text().splitlines()]
    assert [(r["text"], r["label"]) for r in rows] == [("free money http://x.co", "spam"),
                                                       ("lovely article", "ham")]
    assert rows[0]["comment_id"] == "c0" and rows[0]["source"] == "decisions"
    assert "exported 2 decisions" in out and "skipped 1" in out
    # The export is valid training input.
    from training.datasets import load_labelled

    assert load_labelled(out_file).labels == [1, 0]


def test_export_decisions_says_what_it_left_out_and_how_to_keep_it(capsys, tmp_path, env):
    for i, reason in enumerate(("abusive", "advertising")):
        env.xadd(keys.DECISIONS, {"text": f"comment {i}", "label": "spam", "reason": reason,
                                  "moderator": "ann", "comment_id": f"c{i}"})
    out_file = tmp_path / "decisions.jsonl"
    code, out, _ = run(capsys, "export-decisions", "--out", out_file)
    assert code == 0 and "exported 1 decisions" in out
    assert "left out 1 rejections for a policy reason" in out
    assert "--keep-policy-rejections" in out
    code, out, _ = run(capsys, "export-decisions", "--out", out_file, "--keep-policy-rejections")
    assert code == 0 and "exported 2 decisions" in out and "left out" not in out


def test_export_decisions_since_takes_a_stream_id_and_names_anything_else(
    capsys, tmp_path, env
):
    first = env.xadd(keys.DECISIONS, {"text": "first", "label": "ham"})
    env.xadd(keys.DECISIONS, {"text": "second", "label": "spam"})
    out_file = tmp_path / "decisions.jsonl"
    for since in ("garbage", "12-", "-5", "1.5", f"{first}-1", "9" * 23):
        code, _, err = run(capsys, "export-decisions", "--out", out_file, "--since", since)
        one_line_error(code, err, f"--since {since!r} is not a stream entry id")
        assert not out_file.exists()
    for since in (first, first.split("-")[0]):  # <ms>-<seq>, and <ms> alone
        code, out, _ = run(capsys, "export-decisions", "--out", out_file, "--since", since)
        assert code == 0 and "exported 1 decisions" in out
        assert [json.loads(line)["text"] for line in out_file.read_text().splitlines()] == [
            "second"]


def test_export_decisions_names_an_out_it_cannot_write_and_leaves_no_temp_file(
    capsys, tmp_path, env
):
    env.xadd(keys.DECISIONS, {"text": "lovely article", "label": "ham"})
    a_directory = tmp_path / "somedir"
    a_directory.mkdir()
    a_file = tmp_path / "plain.txt"
    a_file.write_text("not a folder")
    unwritable = [a_directory, a_file / "decisions.jsonl"]
    if Path("/proc").is_dir():
        unwritable.append(Path("/proc/decisions.jsonl"))  # the new user's case
    for out in unwritable:
        code, _, err = run(capsys, "export-decisions", "--out", out)
        one_line_error(code, err, f"cannot write --out {out}: ")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plain.txt", "somedir"]
    assert list(a_directory.iterdir()) == []


def test_promote_refuses_a_worse_model_unless_forced(capsys, models, env):
    folder, old, new = models
    code, out, _ = run(capsys, "--models-dir", folder, "promote", new)
    assert code == 0 and f"promoted {new}" in out
    assert env.get(keys.MODEL_CURRENT) == new
    # Going back to the worse one by promotion is refused ...
    code, _, err = run(capsys, "--models-dir", folder, "promote", old)
    one_line_error(code, err, f"refusing to promote {old}: worse than current {new}")
    assert env.get(keys.MODEL_CURRENT) == new
    # ... unless forced; rollback needs no force.
    code, _, _ = run(capsys, "--models-dir", folder, "promote", old, "--force")
    assert code == 0 and env.get(keys.MODEL_CURRENT) == old
    code, out, _ = run(capsys, "--models-dir", folder, "rollback")
    assert code == 0 and env.get(keys.MODEL_CURRENT) == new
    assert (folder / "CURRENT").read_text().strip() == new


def test_promote_cannot_compare_a_version_without_an_evaluation(capsys, models, env):
    folder, old, new = models
    meta_path = folder / new / "metadata.json"
    meta = json.loads(meta_path.read_text())
    del meta["evaluation"]  # trained with --no-report
    meta_path.write_text(json.dumps(meta))
    code, _, err = run(capsys, "--models-dir", folder, "promote", new)
    one_line_error(code, err, f"refusing to promote {new}: cannot compare it with current "
                              f"{old}, it has no evaluation")
    assert f"evaluate --version {new}" in err and "--force" in err
    assert "worse" not in err
    assert env.get(keys.MODEL_CURRENT) is None


def test_promoting_the_current_version_says_so_and_rollback_still_goes_back(
    capsys, models, env
):
    folder, old, new = models
    code, _, _ = run(capsys, "--models-dir", folder, "promote", new)
    assert code == 0
    for force in ((), ("--force",)):
        code, out, _ = run(capsys, "--models-dir", folder, "promote", new, *force)
        assert code == 0
        assert out.strip() == f"{new} is already the current version; nothing changed"
    assert env.lrange(keys.MODEL_HISTORY, 0, -1) == [old]
    code, out, _ = run(capsys, "--models-dir", folder, "rollback")
    assert code == 0 and out.splitlines()[0] == f"rolled back {new} -> {old}"
    assert out.splitlines()[1] == (f"  recorded in Redis at {os.environ['REDIS_URL']} "
                                   f"(REDIS_URL) and {folder / 'CURRENT'}")
    assert env.get(keys.MODEL_CURRENT) == old


def test_promote_errors(capsys, models, env):
    folder, old, new = models
    code, _, err = run(capsys, "--models-dir", folder, "promote", "20990101-000000-ffffff")
    one_line_error(code, err, "unknown model version '20990101-000000-ffffff'")
    assert f"(newest first: {new}, {old})" in err
    (folder / new / "model.skops").write_bytes(b"corrupt")
    code, _, err = run(capsys, "--models-dir", folder, "promote", new, "--force")
    one_line_error(code, err, "checksum does not match")
    assert env.get(keys.MODEL_CURRENT) is None  # nothing half-promoted
    assert (folder / "CURRENT").read_text().strip() == old
    code, _, err = run(capsys, "--models-dir", folder, "rollback")
    one_line_error(code, err, "no previous model version")


def test_list_and_shadow(capsys, models, env):
    folder, old, new = models
    code, out, _ = run(capsys, "--models-dir", folder, "list")
    assert code == 0 and old in out and new in out
    assert f"* {old}" in out
    assert "!" not in out  # no flag, no legend: both versions' thresholds are sound
    for text, label in (("WIN a free iPhone now at http://bit.ly/x", "spam"),
                        ("great song", "ham")):
        env.xadd(keys.DECISIONS, {"text": text, "label": label})
    code, out, _ = run(capsys, "--models-dir", folder, "shadow", new, "--last", "10")
    assert code == 0
    assert "shadow test on the last 2 decisions" in out
    # Same artifact under two ids: they must agree everywhere.
    assert "verdicts differ on 0 comments" in out
    # Trained on the shipped data only: none of the site's decisions.
    assert f"note: {new} was trained on none of these 2 decisions" in out


def test_shadow_of_the_current_version_is_refused_with_a_hint(capsys, models, env):
    """Compared with itself a model agrees everywhere: that says nothing about either."""
    folder, old, new = models
    env.xadd(keys.DECISIONS, {"text": "great song", "label": "ham"})
    code, out, err = run(capsys, "--models-dir", folder, "shadow", old)
    one_line_error(code, err, f"{old} is the current version: shadow compares another "
                              "version with it; name a candidate (`python -m training list` "
                              "shows them)")
    assert out == ""
    run(capsys, "--models-dir", folder, "promote", new)
    code, _, err = run(capsys, "--models-dir", folder, "shadow", new)  # current in Redis
    one_line_error(code, err, f"{new} is the current version")
    code, out, _ = run(capsys, "--models-dir", folder, "shadow", old)
    assert code == 0 and f"candidate {old}" in out
    code, _, err = run(capsys, "--models-dir", folder, "shadow", "20990101-000000-ffffff")
    one_line_error(code, err, "unknown model version '20990101-000000-ffffff'")
    assert f"(newest first: {new}, {old})" in err


def test_list_marks_a_version_without_protocol_results_instead_of_printing_nan(
    capsys, models_dir
):
    """The quick first model (make run) has cross-validation but no protocol results."""
    code, out, _ = run(capsys, "--models-dir", models_dir, "list")
    assert code == 0
    assert "nan" not in out
    row = next(line for line in out.splitlines() if line.startswith("* "))
    assert row.split()[-3:] == ["-", "-", "-"]
    assert "protocols not run for that version" in out


def test_a_version_saved_before_a_setting_existed_is_evaluated_as_it_was_trained(models_dir):
    from moderation import model_registry
    from training.pipeline import DEFAULT_PARAMS, saved_params

    older = saved_params({"C": 100.0})
    legacy = (older["binary"], older["single_source_weight"], older["sms_weight"])
    assert legacy == (False, 1.0, 1.0)
    assert older["C"] == 100.0 and set(older) == set(DEFAULT_PARAMS)
    # A version trained now records every setting, so none is taken for an old one.
    current = (models_dir / "CURRENT").read_text().strip()
    recorded = model_registry.read_metadata(models_dir, current)["params"]
    assert set(DEFAULT_PARAMS) <= set(recorded)
    assert saved_params(recorded)["binary"] == recorded["binary"]


def test_a_version_fitted_with_the_first_promotion_patterns_keeps_them(models_dir):
    from moderation import model_registry
    from moderation.text import PROMOTION_MATRICES, PROMOTION_VERSION
    from training.pipeline import build_features, saved_params

    def cue_function(params: dict):
        return dict(build_features(params).transformer_list)["promotion"].func

    older = saved_params({"promotion_weight": 0.3})  # saved before promotion_cues existed
    assert cue_function(older) is PROMOTION_MATRICES[1]
    current = (models_dir / "CURRENT").read_text().strip()
    recorded = model_registry.read_metadata(models_dir, current)["params"]
    assert recorded["promotion_cues"] == PROMOTION_VERSION
    assert cue_function(saved_params(recorded)) is PROMOTION_MATRICES[PROMOTION_VERSION]


def test_cross_validation_is_reported_per_medium_as_well_as_on_the_mix(models_dir):
    """The service scores comments: their figures must not hide behind the SMS texts'."""
    from moderation import model_registry

    current = (models_dir / "CURRENT").read_text().strip()
    meta = model_registry.read_metadata(models_dir, current)
    by_medium = meta["cv"]["metrics"]["by_medium"]
    assert set(by_medium) == {"youtube", "sms"}
    assert meta["cv"]["metrics"]["comments"] == by_medium["youtube"]
    assert sum(m["n"] for m in by_medium.values()) == meta["data"]["n_texts"]
    for m in by_medium.values():
        assert -1 <= m["mcc"] <= 1 and 0 < m["roc_auc"] <= 1 and 0 <= m["queue_share"] <= 1


def test_a_medium_of_one_class_gets_no_roc_auc_rather_than_nan():
    import numpy as np

    from training import pipeline, train

    model = pipeline.TrainedModel(None, None, 0.2, 0.8, {},
                                  {"oof_proba": np.array([0.1, 0.9, 0.5, 0.95])})
    summary = train.cv_summary(model, np.array([0, 1, 0, 1]), ["youtube", "youtube", "file", "sms"])
    file = summary["by_medium"]["file"]
    assert (file["mcc"], file["f1"], file["roc_auc"]) == (None, None, None)
    assert summary["by_medium"]["youtube"] == {
        "n": 2, "n_spam": 1, "mcc": 1.0, "f1": 1.0, "roc_auc": 1.0, "ham_rejected": 0.0,
        "spam_published": 0.0, "queue_share": 0.0}
    assert file["queue_share"] == 1.0  # 0.5 is between the thresholds
    json.dumps(summary, allow_nan=False)  # metadata.json stays strict JSON


def test_list_compares_versions_by_the_comments_cross_validation(capsys, models):
    """The mix's MCC fell when SMS texts began to be scored as the service would score one;
    the comments' is what `list` shows, and a version without it is marked."""
    folder, old, new = models
    meta_path = folder / old / "metadata.json"
    meta = json.loads(meta_path.read_text())
    comments = meta["cv"]["metrics"]["comments"]
    del meta["cv"]["metrics"]["comments"]  # as saved before the figures were recorded apart
    meta_path.write_text(json.dumps(meta))
    code, out, _ = run(capsys, "--models-dir", folder, "list")
    assert code == 0
    rows = {version: line for line in out.splitlines() for version in (old, new)
            if version in line}
    assert f"{comments['mcc']:.3f} " in rows[new]
    assert f"{meta['cv']['metrics']['mcc']:.3f}~" in rows[old]
    assert "~ : of all texts" in out


def test_train_prints_the_cross_validation_figure_list_shows(capsys, trained_on_three_decisions):
    folder, _, candidate, trained = trained_on_three_decisions
    comments = next(line.split() for line in trained.splitlines()
                    if line.split()[:2] == ["comments", "MCC"])
    code, listed, _ = run(capsys, "--models-dir", folder, "list")
    assert code == 0
    header, *rows = listed.splitlines()
    assert "comments MCC" in header
    row = next(line for line in rows if candidate in line)
    assert comments[2] in row.split()  # the same MCC, e.g. 0.958


def test_train_warns_that_a_few_decisions_cannot_be_judged_by_their_own_figures(
    trained_on_three_decisions,
):
    _, _, _, trained = trained_on_three_decisions
    warnings = [line.strip() for line in trained.splitlines() if "warning:" in line]
    assert warnings == [
        "warning: the decisions part of the training data has only 3 texts (1 spam, 2 ham): "
        "too few for its cross-validation figures above to mean anything (that needs 50 "
        "texts and 5 of each class); it is still trained on"]


def test_shadow_says_how_many_decisions_the_candidate_was_trained_on(
    capsys, env, trained_on_three_decisions
):
    folder, _, candidate, _ = trained_on_three_decisions
    for text, label in [*THREE_DECISIONS, ("A comment it never saw, about the chorus", "ham")]:
        env.xadd(keys.DECISIONS, {"text": text, "label": label})
    code, out, _ = run(capsys, "--models-dir", folder, "shadow", candidate)
    assert code == 0
    assert (f"note: {candidate} was trained on 3 of these 4 decisions (same text): on those "
            "the comparison is in-sample and flatters it") in out
    # Saved before the texts were recorded: trained on a data file, which cannot be read.
    older = copy_version(folder, candidate, folder, "20000101-000002-cccccc")
    meta = json.loads((folder / older / "metadata.json").read_text())
    del meta["data"]["extra_text_digests"]
    (folder / older / "metadata.json").write_text(json.dumps(meta))
    code, out, _ = run(capsys, "--models-dir", folder, "shadow", older)
    assert code == 0
    assert (f"note: cannot tell whether {older} was trained on these decisions: its metadata "
            "names its data files (") in out and "three-decisions.jsonl" in out
    shutil.rmtree(folder / older)


def test_train_adds_a_file_of_one_class_to_the_shipped_data(tmp_path, models_dir):
    """A day's export may hold approvals only; the shipped data brings the other class."""
    folder = tmp_path / "models"
    base = (models_dir / "CURRENT").read_text().strip()
    folder.mkdir()
    copy_version(models_dir, base, folder, "20000101-000000-aaaaaa")
    approvals = tmp_path / "approvals.jsonl"
    approvals.write_text("".join(json.dumps({"text": text, "label": "ham"}) + "\n" for text in
                                 ("Thank you for the clear report.", "Good to read this.")))
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cli.main(["--models-dir", str(folder), "train", "--quick", "--no-report",
                         "--data", str(approvals)])
    assert code == 0, out.getvalue()
    assert len([v for v in folder.iterdir() if v.is_dir()]) == 2


def write_tiny(path: Path) -> Path:
    """A few dozen spam and ham comments, easy to tell apart, of which `train --streaming`
    holds out at least one of each class (fewer than that is refused)."""
    from training.streaming import _held_out

    rows, held = [], set()
    i = 0
    while i < 20 or held != {"spam", "ham"}:
        assert i < 1000, "no text of one class is held out"
        word = "".join(chr(ord("a") + int(digit)) for digit in str(i))  # digits normalize alike
        for text, label in ((f"Check out my channel {word} http://bit.ly/x subscribe!!!", "spam"),
                            (f"Her voice in the chorus is amazing, {word}", "ham")):
            rows.append({"text": text, "label": label})
            if _held_out(text):
                held.add(label)
        i += 1
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture
def tiny_streaming(capsys, tmp_path, models) -> tuple[Path, str, str, str]:
    """(models folder, current version, a streaming version trained on 40 texts, train's
    summary) next to a sound current version."""
    folder, old, _ = models
    code, out, err = run(capsys, "--models-dir", folder, "train", "--streaming", "--data",
                         write_tiny(tmp_path / "tiny.jsonl"))
    assert code == 0, err
    version = out.split()[3]
    return folder, old, version, out


def test_a_tiny_streaming_run_says_its_thresholds_cannot_be_trusted(tiny_streaming):
    folder, old, version, out = tiny_streaming
    meta = json.loads((folder / version / "metadata.json").read_text())
    assert meta["thresholds"] == {"publish_below": 0.5, "reject_at": 0.5}
    warnings = meta["threshold_warnings"]
    assert warnings[0] == ("publish and reject thresholds meet at 0.500: no comment is ever "
                           "held for review")
    assert warnings[1].startswith("thresholds chosen from too few examples: ")
    assert "thresholds (from 2 held-out texts): publish < 0.500, reject >= 0.500" in out
    for warning in warnings:
        assert f"  warning: {warning}\n" in out
    assert (f"current is still {old}; its thresholds cannot be trusted (warnings above), so "
            f"`python -m training promote {version}` needs --force") in out


def test_promote_refuses_thresholds_that_cannot_be_trusted_unless_forced(
    capsys, tiny_streaming, env
):
    folder, old, version, _ = tiny_streaming
    code, _, err = run(capsys, "--models-dir", folder, "promote", version)
    one_line_error(code, err, f"refusing to promote {version}: its thresholds cannot be "
                              "trusted (publish and reject thresholds meet at 0.500")
    assert "--force" in err
    assert env.get(keys.MODEL_CURRENT) is None
    assert (folder / "CURRENT").read_text().strip() == old
    code, out, _ = run(capsys, "--models-dir", folder, "promote", version, "--force")
    assert code == 0 and f"promoted {version} (was {old})" in out
    assert env.get(keys.MODEL_CURRENT) == version


def test_promote_refuses_an_older_version_whose_thresholds_meet(capsys, models, env):
    """Saved before the warnings were recorded: its thresholds alone show the problem."""
    folder, _, new = models
    meta_path = folder / new / "metadata.json"
    meta = json.loads(meta_path.read_text())
    assert "threshold_warnings" in meta
    del meta["threshold_warnings"]
    meta["thresholds"] = {"publish_below": 0.62, "reject_at": 0.62}
    meta_path.write_text(json.dumps(meta))
    code, _, err = run(capsys, "--models-dir", folder, "promote", new)
    one_line_error(code, err, "publish and reject thresholds meet at 0.620")


def test_list_flags_the_versions_promote_would_refuse_for_their_thresholds(
    capsys, tiny_streaming
):
    folder, old, version, _ = tiny_streaming
    new = "20000101-000001-bbbbbb"
    # One saved before the warnings were recorded, whose thresholds meet.
    older = copy_version(folder, old, folder, "20000101-000002-cccccc")
    meta = json.loads((folder / older / "metadata.json").read_text())
    del meta["threshold_warnings"]
    meta["thresholds"] = {"publish_below": 0.62, "reject_at": 0.62}
    (folder / older / "metadata.json").write_text(json.dumps(meta))
    code, out, _ = run(capsys, "--models-dir", folder, "list")
    assert code == 0
    lines = out.splitlines()
    rows = {line[2:24]: line for line in lines[1:] if line[2:4] in ("20", "19")}
    assert rows[version][25] == rows[older][25] == "!"
    assert rows[old][25] == rows[new][25] == " "  # the models fixture's are sound
    assert rows[old].startswith(f"* {old}   ")
    # The flag takes the version column's padding: every column stays where it was.
    assert lines[0].index("created") == rows[old].index(meta["created"]) == 27
    assert lines[-1] == ("! : its thresholds cannot be trusted (train warned: they meet, too "
                         "few examples chose them, or a budget is not met); `promote` "
                         "refuses it without --force")
    code, _, err = run(capsys, "--models-dir", folder, "promote", older)
    one_line_error(code, err, f"refusing to promote {older}: its thresholds cannot be trusted")


def test_the_first_model_of_a_tiny_run_is_current_with_its_warnings_said(capsys, tmp_path):
    folder = tmp_path / "models"
    code, out, _ = run(capsys, "--models-dir", folder, "train", "--streaming", "--data",
                       write_tiny(tmp_path / "tiny.jsonl"))
    assert code == 0
    assert ("this is the first model: it is now current despite the threshold warnings "
            "above") in out


def test_evaluate_repeats_the_models_threshold_warnings(capsys, tmp_path, tiny_streaming):
    folder, _, version, _ = tiny_streaming
    out_json = tmp_path / "m.json"
    code, out, _ = run(capsys, "--models-dir", folder, "evaluate", "--version", version,
                       "--data", tmp_path / "tiny.jsonl", "--json", out_json)
    assert code == 0
    assert ("  warning: the model's thresholds cannot be trusted: publish and reject "
            "thresholds meet at 0.500") in out
    assert json.loads(out_json.read_text())["threshold_warnings"][0].startswith(
        "publish and reject thresholds meet")


@pytest.mark.parametrize(("umask", "folder_mode", "file_mode"),
                         [(0o022, 0o755, 0o644), (0o027, 0o750, 0o640)])
def test_a_saved_version_has_the_modes_of_the_umask_like_any_other_folder(
    tmp_path, models_dir, umask, folder_mode, file_mode
):
    """The service may run as another user of the group: a 0700 folder hid the model."""
    from moderation import model_registry
    from training import registry

    base = (models_dir / "CURRENT").read_text().strip()
    objects, meta = model_registry.load_artifact(models_dir, base)
    folder = tmp_path / "models"
    folder.mkdir()
    before = os.umask(umask)
    try:
        version = registry.save_version(folder, objects, {"thresholds": meta["thresholds"]})
        registry.update_metadata(folder, version, {"evaluation": {}})
    finally:
        os.umask(before)
    assert [p.name for p in folder.iterdir()] == [version]  # no temporary folder left
    assert oct((folder / version).stat().st_mode & 0o777) == oct(folder_mode)
    files = {p.name: oct(p.stat().st_mode & 0o777) for p in (folder / version).iterdir()}
    assert files == {name: oct(file_mode) for name in ("model.skops", "serving.npz",
                                                       "metadata.json")}


def test_a_model_trained_on_the_shipped_data_has_sound_thresholds(models_dir):
    current = (models_dir / "CURRENT").read_text().strip()
    assert json.loads((models_dir / current / "metadata.json").read_text())[
        "threshold_warnings"] == []


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("redis://:s3cret@127.0.0.1:{port}/0",
         "cannot reach Redis at redis://***@127.0.0.1:{port}/0 (REDIS_URL): "),
        ("localhost:6379", "configuration error: REDIS_URL: expected a URL starting redis://"),
    ],
)
@pytest.mark.parametrize("command", ["promote", "rollback", "shadow"])
def test_redis_commands_name_the_redis_they_tried_without_its_password(
    capsys, monkeypatch, models, url, message, command
):
    folder, _, new = models
    port = 1  # tcpmux: nothing listens there
    monkeypatch.setenv("REDIS_URL", url.format(port=port))
    code, _, err = run(capsys, "--models-dir", folder, command,
                       *([new] if command != "rollback" else []))
    one_line_error(code, err, message.format(port=port))
    assert "s3cret" not in err


def test_without_redis_url_the_embedded_redis_is_named(capsys, monkeypatch, tmp_path, models):
    folder, _, new = models
    monkeypatch.delenv("REDIS_URL", raising=False)
    a_file = tmp_path / "not-a-folder"
    a_file.write_text("")
    monkeypatch.setenv("MODERATION_VAR_DIR", str(a_file))
    code, _, err = run(capsys, "--models-dir", folder, "promote", new)
    one_line_error(code, err, f"cannot start the embedded Redis under {a_file / 'redis'} "
                              "(REDIS_URL is unset): ")


def test_ctrl_c_during_the_evaluation_says_the_version_is_saved_without_it(
    capsys, monkeypatch, tmp_path
):
    def interrupted(*args):
        raise KeyboardInterrupt  # what SIGINT raises in the main thread

    monkeypatch.setattr(cli, "_evaluate_into", interrupted)
    folder = tmp_path / "models"
    code, _, err = run(capsys, "--models-dir", folder, "--reports-dir", tmp_path / "reports",
                       "train", "--quick")
    (version,) = [p.name for p in folder.iterdir() if p.is_dir()]
    assert code == 130
    assert err == (f"error: interrupted: {version} is saved without its evaluation; "
                   f"`python -m training evaluate --version {version}` runs it\n")
    assert sorted(p.name for p in (folder / version).iterdir()) == [
        "metadata.json", "model.skops", "serving.npz"]


def test_two_first_trainings_at_once_leave_the_first_to_finish_current(tmp_path, monkeypatch):
    """Both looked before either wrote: the second must not replace the first's CURRENT."""
    from moderation import model_registry
    from training import registry

    monkeypatch.setattr(model_registry, "current_from_file", lambda models_dir: None)
    assert registry.ensure_current(tmp_path, "20000101-000000-aaaaaa") is True
    assert registry.ensure_current(tmp_path, "20000101-000001-bbbbbb") is False
    assert (tmp_path / "CURRENT").read_text() == "20000101-000000-aaaaaa\n"
    assert [p.name for p in tmp_path.iterdir()] == ["CURRENT"]


def test_promote_says_how_to_compare_a_streaming_model_it_cannot_compare(
    capsys, tiny_streaming, env
):
    """`evaluate --version` refuses a streaming model, so it is not the way to name."""
    folder, old, version, _ = tiny_streaming
    meta_path = folder / version / "metadata.json"
    meta = json.loads(meta_path.read_text())
    meta["threshold_warnings"] = []  # as a large streaming run gets
    meta_path.write_text(json.dumps(meta))
    code, _, err = run(capsys, "--models-dir", folder, "promote", version)
    one_line_error(code, err, f"refusing to promote {version}: cannot compare it with current "
                              f"{old}, it has no evaluation; `python -m training shadow "
                              f"{version}` or `evaluate --data FILE --version {version}` "
                              "compares a streaming model, then use --force")


@pytest.mark.parametrize("value", ["-2", "-1", "two", "1.5"])
def test_show_is_a_whole_number_of_at_least_zero(capsys, value):
    """`--show -2` listed every disagreement but the last 2 (a slice from the end)."""
    with pytest.raises(SystemExit) as info:
        cli.main(["shadow", "V", "--show", value])
    assert info.value.code == 2
    why = f"{value} is not at least 0" if value.startswith("-") else (
        f"{value!r} is not a whole number")
    assert capsys.readouterr().err.splitlines()[-1].endswith(f"error: argument --show: {why}")
    assert cli.build_parser().parse_args(["shadow", "V", "--show", "0"]).show == 0


BAD_CURRENT_FILES = {
    "not UTF-8": (b"\xff\xfe2026\n", "not UTF-8 text, so it names no model version"),
    "empty": (b"\n", "empty, so it names no model version"),
    "junk": (b"hello world\x00\n", "'hello world\\x00' is not a model version id"),
    "an unknown version": (b"20990101-000000-ffffff\n",
                           "names model version '20990101-000000-ffffff', which is not in"),
}


@pytest.mark.parametrize("kind", BAD_CURRENT_FILES)
@pytest.mark.parametrize("command", ["list", "promote", "rollback"])
def test_a_current_file_naming_no_usable_version_is_named_in_one_line(
    capsys, models, env, kind, command
):
    """Redis has no record, so CURRENT is read: not UTF-8 was a UnicodeDecodeError
    traceback; junk or an unknown version was taken as the version promote pushed into
    the rollback history."""
    folder, old, new = models
    content, words = BAD_CURRENT_FILES[kind]
    (folder / "CURRENT").write_bytes(content)
    code, out, err = run(capsys, "--models-dir", folder, command,
                         *([new, "--force"] if command == "promote" else []))
    one_line_error(code, err, f"{folder / 'CURRENT'}: {words}")
    assert err.rstrip().endswith("write the current version's id in it (`python -m training "
                                 "list` lists them) or remove it")
    if command == "list":  # the versions are still listed: one of them is to be written there
        assert old in out and new in out and "* " not in out
    assert (folder / "CURRENT").read_bytes() == content
    assert env.get(keys.MODEL_CURRENT) is None and env.lrange(keys.MODEL_HISTORY, 0, -1) == []


def test_train_names_a_bad_current_file_before_training(capsys, models):
    folder, _, _ = models
    (folder / "CURRENT").write_bytes(b"\xff\xfe")
    before = sorted(p.name for p in folder.iterdir())
    code, _, err = run(capsys, "--models-dir", folder, "train", "--quick", "--no-report")
    one_line_error(code, err, f"{folder / 'CURRENT'}: not UTF-8 text")
    assert sorted(p.name for p in folder.iterdir()) == before  # nothing trained


def test_writing_current_that_fails_leaves_no_temporary_file(models):
    from training import registry

    folder, old, new = models
    (folder / "CURRENT").unlink()
    (folder / "CURRENT").mkdir()  # os.replace cannot put a file in its place
    with pytest.raises(IsADirectoryError):
        registry.write_current_file(folder, new)
    assert sorted(p.name for p in folder.iterdir()) == sorted(["CURRENT", old, new])


def test_evaluate_json_through_a_symbolic_link_replaces_the_file_it_points_to(
    capsys, tmp_path, models
):
    """As a shell's `>` or `cp` would: the link (here relative) stays and names the new
    metrics; before, a regular file took the link's place and the target kept the old."""
    folder, _, _ = models
    data = tmp_path / "labelled.jsonl"
    data.write_text('{"text": "Subscribe to my channel", "label": 1}\n'
                    '{"text": "Her voice is amazing", "label": 0}\n')
    runs = tmp_path / "runs"
    runs.mkdir()
    (runs / "metrics.json").write_text('{"previous": "run"}\n')
    link = tmp_path / "latest.json"
    link.symlink_to(Path("runs") / "metrics.json")
    code, _, _ = run(capsys, "--models-dir", folder, "evaluate", "--data", data, "--json", link)
    assert code == 0
    assert link.is_symlink() and os.readlink(link) == str(Path("runs") / "metrics.json")
    assert json.loads((runs / "metrics.json").read_text())["n"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["labelled.jsonl", "latest.json",
                                                          "models", "runs"]
    assert [p.name for p in runs.iterdir()] == ["metrics.json"]


def test_export_decisions_through_a_symbolic_link_replaces_the_file_it_points_to(
    capsys, tmp_path, env
):
    env.xadd(keys.DECISIONS, {"text": "lovely article", "label": "ham"})
    target = tmp_path / "exports" / "decisions.jsonl"
    target.parent.mkdir()
    target.write_text("")
    link = tmp_path / "decisions.jsonl"
    link.symlink_to(target)
    code, _, _ = run(capsys, "export-decisions", "--out", link)
    assert code == 0
    assert link.is_symlink() and link.resolve() == target
    assert [json.loads(line)["text"] for line in target.read_text().splitlines()] == [
        "lovely article"]
    assert [p.name for p in target.parent.iterdir()] == ["decisions.jsonl"]

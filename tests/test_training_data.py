"""Loaders for shipped data and labelled files, and their one-line errors."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from scipy import sparse

from training import datasets, evaluate, pipeline
from training.datasets import DataError


def test_shipped_youtube_uses_content_only_and_keeps_every_row():
    corpus = datasets.load_youtube()
    assert len(corpus) == 350 + 350 + 438 + 448
    assert sum(corpus.labels) == 175 + 175 + 236 + 245
    # No DATE/AUTHOR leaks into the text: the first Psy row is its CONTENT exactly.
    assert corpus.texts[0] == "Huh, anyway check out this you[tube] channel: kobyoshi02"
    assert all("2013-" not in t[:10] for t in corpus.texts[:5])
    assert set(corpus.sources) == {f"youtube:{v}" for v in datasets.YOUTUBE_VIDEOS}


def test_sms_splits_on_the_first_tab_and_survives_stray_quotes():
    corpus = datasets.load_sms()
    assert len(corpus) == 5574  # csv.reader would merge lines at stray quotes: 5,572
    assert sum(corpus.labels) == 747
    assert any('"' in t for t in corpus.texts)


def test_duplicates_share_a_group_and_never_straddle_cv_folds():
    corpus = datasets.load_youtube(videos=["LMFAO"])
    groups = corpus.groups()
    assert len(set(groups)) < len(groups)  # LMFAO has many exact duplicates
    from sklearn.model_selection import StratifiedGroupKFold

    splitter = StratifiedGroupKFold(n_splits=5, shuffle=True, random_state=0)
    for train, test in splitter.split(np.zeros(len(groups)), corpus.y, groups):
        assert not {groups[i] for i in train} & {groups[i] for i in test}


def test_protocol_splits_follow_the_papers():
    data = datasets.load_shipped()
    y = data.y
    rows = np.array(data.where("youtube:Psy"))
    train, test = evaluate.tubespam_split(rows, y)
    assert len(train) == 122 + 122 and len(test) == 53 + 53
    # First 70% of each class in file order: every training row of a class precedes
    # every test row of that class.
    for label in (0, 1):
        assert train[y[train] == label].max() < test[y[test] == label].min()
    sms_train, sms_test = evaluate.sms_split(np.array(data.where("sms")))
    assert len(sms_train) == 1674 and len(sms_test) == 3900
    assert sms_train.max() < sms_test.min()


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_labelled_jsonl_and_csv(tmp_path):
    jsonl = write(tmp_path / "a.jsonl", '{"text": "buy now", "label": "spam"}\n'
                  '{"text": "nice post", "label": 0, "source": "blog"}\n')
    csv_file = write(tmp_path / "b.csv", "text,label\nbuy now,1\nnice post,ham\n")
    for path in (jsonl, csv_file):
        corpus = datasets.load_labelled(path)
        assert corpus.texts == ["buy now", "nice post"]
        assert corpus.labels == [1, 0]
    assert datasets.load_labelled(jsonl).sources[1] == "blog"


def test_a_video_of_the_youtube_collection_loads_as_downloaded(tmp_path):
    # The collection's own layout: only CONTENT and CLASS are read (AUTHOR and DATE leak
    # the label), and the file is a source of comments like the shipped videos.
    path = write(tmp_path / "Youtube05-Shakira.csv",
                 "COMMENT_ID,AUTHOR,DATE,CONTENT,CLASS\n"
                 'a1,Spammer,,"Check out my channel, thanks!",1\n'
                 "a2,Fan,2015-05-29T02:26:10,Love this song\ufeff,0\n")
    corpus = datasets.load_labelled(path)
    assert corpus.texts == ["Check out my channel, thanks!", "Love this song\ufeff"]
    assert corpus.labels == [1, 0]
    assert corpus.sources == ["youtube:Youtube05-Shakira"] * 2
    assert [pipeline.medium(s) for s in corpus.sources] == ["youtube", "youtube"]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.jsonl", "", r"empty\.jsonl: empty file"),
        ("cols.csv", "body,class\nx,1\n", r"cols\.csv: missing column\(s\) label, text"),
        ("label.csv", "text,label\nx,spam\ny,maybe\n", r"label\.csv: row 3: unknown label 'maybe'"),
        ("bad.jsonl", '{"text": "x", "label": 1}\n{oops\n', r"bad\.jsonl: line 2: invalid JSON"),
        ("field.jsonl", '{"text": "x"}\n', r"field\.jsonl: line 1: missing field\(s\) label"),
        ("one.csv", "text,label\nx,spam\ny,1\n", r"one\.csv: only spam examples"),
    ],
)
def test_bad_labelled_files_give_one_line_errors(tmp_path, name, content, message):
    path = write(tmp_path / name, content)
    with pytest.raises(DataError, match=message) as info:
        datasets.load_labelled(path)
    assert "\n" not in str(info.value)


def test_missing_and_non_utf8_files(tmp_path):
    with pytest.raises(DataError, match=r"nope\.csv: no such file"):
        datasets.load_labelled(tmp_path / "nope.csv")
    path = tmp_path / "latin.csv"
    path.write_bytes(b"text,label\n\xe9t\xe9,spam\n")
    with pytest.raises(DataError, match="not UTF-8"):
        datasets.load_labelled(path)


def test_write_jsonl_round_trips(tmp_path):
    corpus = datasets.Corpus(["a \"quoted\"\ttext", "b"], [1, 0], ["x", "y"])
    datasets.write_jsonl(corpus, tmp_path / "out.jsonl")
    back = datasets.load_labelled(tmp_path / "out.jsonl")
    assert (back.texts, back.labels, back.sources) == (corpus.texts, corpus.labels, corpus.sources)
    assert json.loads((tmp_path / "out.jsonl").read_text().splitlines()[0])["label"] == "spam"


@pytest.mark.parametrize("binary", [True, False])
def test_fold_features_equal_a_pipeline_fitted_on_the_fold(binary):
    """The protocols' shortcut (tokenize once) gives exactly the per-fold TF-IDF features."""
    corpus = datasets.load_youtube(videos=["Psy", "KatyPerry"])
    params = {**pipeline.DEFAULT_PARAMS, "binary": binary}
    counts = pipeline.analyse(corpus.texts, params)
    train, test = np.arange(0, 500), np.arange(500, len(corpus))
    _, x_test = pipeline._fold_matrices(counts, train, test, params)
    features = pipeline.build_features(params).fit([corpus.texts[i] for i in train])
    expected = features.transform([corpus.texts[i] for i in test])
    assert x_test.shape == expected.shape
    # Columns are ordered differently; compare each row's sorted values.
    np.testing.assert_allclose(np.sort(x_test.toarray(), axis=1),
                               np.sort(expected.toarray(), axis=1), atol=1e-12)


def test_fold_features_down_weight_single_source_terms_as_the_fitted_pipeline_does():
    """With several sources the shortcut and :func:`pipeline.fit_pipeline` still agree."""
    corpus = datasets.load_youtube(videos=["Psy", "KatyPerry"])
    params = dict(pipeline.DEFAULT_PARAMS)
    counts = pipeline.analyse(corpus.texts, params, corpus.sources)
    train, test = np.arange(0, 500), np.arange(500, len(corpus))  # Psy + part of KatyPerry
    _, x_test = pipeline._fold_matrices(counts, train, test, params)
    fitted = pipeline.fit_pipeline([corpus.texts[i] for i in train], corpus.y[train], params,
                                   sources=[corpus.sources[i] for i in train])
    expected = fitted.named_steps["features"].transform([corpus.texts[i] for i in test])
    np.testing.assert_allclose(np.sort(x_test.toarray(), axis=1),
                               np.sort(expected.toarray(), axis=1), atol=1e-12)


def test_source_counts_count_the_distinct_sources_a_term_occurs_in():
    present = sparse.csr_matrix(np.array([[1, 1, 0], [0, 2, 0], [3, 0, 0]]))
    # term 0 only in source a (twice), term 1 in a and b, term 2 nowhere
    assert pipeline.source_counts(present, ["a", "b", "a"]).tolist() == [1, 2, 0]


SOURCED = [  # (text, label, source): "gangnam" only in video A, "channel" in both
    ("gangnam style is the best song", 0, "A"), ("gangnam dance again", 0, "A"),
    ("love this song so much", 0, "A"), ("check out my channel please", 1, "A"),
    ("subscribe to my channel for free stuff", 1, "A"), ("win a free phone now", 1, "A"),
    ("roar is a great song", 0, "B"), ("katy you are amazing", 0, "B"),
    ("this song never gets old", 0, "B"), ("visit my channel and subscribe", 1, "B"),
    ("free gift cards on my channel", 1, "B"), ("click here to win money", 1, "B"),
]


def _idf(sources, weight):
    texts, labels = [t for t, _, _ in SOURCED], [y for _, y, _ in SOURCED]
    params = {**pipeline.DEFAULT_PARAMS, "single_source_weight": weight}
    word = pipeline.fit_pipeline(texts, np.array(labels), params, sources=sources) \
        .named_steps["features"].named_transformers["word"]
    return {term: word.idf_[column] for term, column in word.vocabulary_.items()}


def test_a_term_seen_in_one_source_gets_the_smaller_idf_and_one_seen_in_two_keeps_its_own():
    sources = [s for _, _, s in SOURCED]
    plain, weighted = _idf(sources, 1.0), _idf(sources, 0.5)
    assert weighted["gangnam"] == pytest.approx(0.5 * plain["gangnam"])
    assert weighted["channel"] == pytest.approx(plain["channel"])
    assert set(weighted) == set(plain)  # down-weighted, never dropped


def test_texts_from_one_source_keep_every_idf_unchanged():
    one_source = ["A"] * len(SOURCED)
    assert _idf(one_source, 0.5) == _idf(one_source, 1.0)


def test_reweighting_the_idf_of_fitted_rows_equals_transforming_them_again():
    texts = [t for t, _, _ in SOURCED]
    word = pipeline.build_features(pipeline.DEFAULT_PARAMS).named_transformers["word"]
    fitted = word.fit_transform(texts)
    factors = np.where(np.arange(fitted.shape[1]) % 3 == 0, 0.5, 1.0)
    reweighted = pipeline.reweight_idf(word, fitted, factors)
    np.testing.assert_allclose(reweighted.toarray(), word.transform(texts).toarray(), atol=1e-12)
    assert not np.allclose(reweighted.toarray(), fitted.toarray())


MIXED = [  # (text, label, medium): "txt" marks spam in the SMS texts only
    ("txt win to 80082 now", 1, "sms"), ("txt stop to claim your prize", 1, "sms"),
    ("txt yes for free ringtones", 1, "sms"), ("see you at home later", 0, "sms"),
    ("ok i will call you", 0, "sms"), ("where are you now", 0, "sms"),
    ("check out my channel", 1, "youtube"), ("subscribe for free stuff", 1, "youtube"),
    ("love this song", 0, "youtube"), ("txt me if you like this song", 0, "youtube"),
]


def _fit_mixed(copy_weight: float, media: list[str] | None = None):
    texts, labels = [t for t, _, _ in MIXED], np.array([y for _, y, _ in MIXED])
    word = pipeline.build_features(pipeline.DEFAULT_PARAMS).named_transformers["word"]
    x = word.fit_transform(texts)
    foreign = pipeline.foreign_rows(media or [m for _, _, m in MIXED])
    params = {**pipeline.DEFAULT_PARAMS, "C": 10.0, "foreign_copy_weight": copy_weight}
    return word.vocabulary_, x, pipeline.fit_classifier(x, labels, params, foreign=foreign)


def test_the_foreign_medium_s_own_copy_keeps_its_conventions_out_of_the_shared_weights():
    vocabulary, x, plain = _fit_mixed(0.0)
    _, _, copied = _fit_mixed(1.0)
    txt = vocabulary["txt"]
    # SMS spam's "txt" is partly learned by the SMS copy, so comments are told less of it.
    assert 0 < copied.coef_[0, txt] < plain.coef_[0, txt]
    # What is left is a plain classifier over the shared features, as the service scores.
    assert copied.coef_.shape == plain.coef_.shape == (1, x.shape[1])
    assert copied.n_features_in_ == x.shape[1]
    assert copied.decision_function(x).shape == (len(MIXED),)


@pytest.mark.parametrize("medium", ["sms", "youtube"])
def test_texts_from_one_medium_fit_as_without_a_foreign_copy(medium):
    """The SMS and per-video protocols train on one medium: the copy changes nothing there."""
    one = [medium] * len(MIXED)
    # liblinear visits the texts in a random order: equal up to its tolerance.
    np.testing.assert_allclose(_fit_mixed(1.0, one)[2].coef_, _fit_mixed(0.0, one)[2].coef_,
                               atol=1e-4)


def test_protocol_shortcut_equals_training_then_scoring_with_a_foreign_medium():
    """fit_and_score (tokenize once) gives the scores of train() + predict_proba."""
    corpus = datasets.load_youtube(videos=["Psy"])
    corpus.extend(datasets.load_sms().subset(range(300)))
    params = dict(pipeline.DEFAULT_PARAMS)
    groups, media = corpus.groups(), [pipeline.medium(s) for s in corpus.sources]
    rows = np.arange(len(corpus))
    test = rows[(rows % 4 == 0) & (np.array(media) == "youtube")]
    train = np.setdiff1d(rows, test)
    weights = pipeline.source_weights(corpus.sources, params, train)
    counts = pipeline.analyse(corpus.texts, params, corpus.sources)
    _, shortcut = pipeline.fit_and_score(counts, corpus.y, groups, train, test, params,
                                         c_grid=[params["C"]], n_jobs=1,
                                         sample_weight=weights, media=media)
    model = pipeline.train([corpus.texts[i] for i in train], corpus.y[train],
                           [groups[i] for i in train], params=params, c_grid=None, n_jobs=1,
                           sample_weight=weights[train], media=[media[i] for i in train],
                           sources=[corpus.sources[i] for i in train])
    np.testing.assert_allclose(shortcut, model.predict_proba([corpus.texts[i] for i in test]),
                               atol=1e-4)


def test_c_is_the_one_whose_calibrated_out_of_fold_scores_have_the_lowest_log_loss():
    corpus = datasets.load_youtube(videos=["Psy"])
    params = dict(pipeline.DEFAULT_PARAMS)
    counts = pipeline.analyse(corpus.texts, params)
    chosen = pipeline.select(counts, corpus.y, corpus.groups(), np.arange(len(corpus)), params,
                             [0.01, 3.0, 100.0], n_jobs=1)
    losses = {entry["C"]: entry["log_loss"] for entry in chosen.grid}
    assert chosen.C == min(losses, key=losses.get)
    # A C so small that the model hardly learns is far worse calibrated.
    assert losses[0.01] > 1.5 * min(losses.values())
    # The kept out-of-fold probabilities are the chosen C's.
    assert chosen.grid[[0.01, 3.0, 100.0].index(chosen.C)]["log_loss"] == pytest.approx(
        float(np.mean(-np.log(np.where(corpus.y == 1, chosen.oof_proba, 1 - chosen.oof_proba)))),
        rel=1e-6)


def test_thresholds_respect_the_error_budgets():
    rng = np.random.default_rng(0)
    y = np.r_[np.zeros(2000, int), np.ones(500, int)]
    proba = np.clip(np.r_[rng.beta(1, 8, 2000), rng.beta(8, 1, 500)], 0, 1)
    publish_below, reject_at = pipeline.choose_thresholds(proba, y)
    assert np.mean(proba[y == 0] >= reject_at) <= 0.005
    assert np.mean(proba[y == 1] < publish_below) <= 0.02
    assert publish_below <= 0.5 <= reject_at


def test_thresholds_hold_in_every_medium_not_only_on_the_mix():
    """Plentiful easy ham of one medium must not spend the other medium's budgets."""
    rng = np.random.default_rng(1)
    easy_ham, hard_ham = rng.beta(1, 30, 4000), rng.beta(2, 5, 400)
    spam = rng.beta(8, 1, 400)
    proba = np.r_[easy_ham, hard_ham, spam]
    y = np.r_[np.zeros(4400, int), np.ones(400, int)]
    media = ["sms"] * 4000 + ["youtube"] * 800
    hard = np.arange(4000, 4400)

    _, mixed_reject = pipeline.choose_thresholds(proba, y)
    assert np.mean(proba[hard] >= mixed_reject) > 0.005  # the mix hides it

    publish_below, reject_at = pipeline.choose_thresholds(proba, y, media=media)
    assert np.mean(proba[hard] >= reject_at) <= 0.005
    assert np.mean(easy_ham >= reject_at) <= 0.005
    assert np.mean(spam < publish_below) <= 0.02
    assert publish_below <= 0.5 <= reject_at


def test_calibration_uses_the_comments_and_falls_back_to_every_text():
    y = np.array([0, 1, 0, 1, 0, 1])
    assert pipeline.calibration_rows(["sms", "sms", "youtube", "youtube", "file", "sms"],
                                     y).tolist() == [2, 3, 4]
    # Comments of one class only cannot fit a calibrator: every text does.
    assert pipeline.calibration_rows(["sms", "sms", "youtube", "sms", "sms", "sms"],
                                     y).tolist() == [0, 1, 2, 3, 4, 5]
    assert pipeline.calibration_rows(None, y).tolist() == [0, 1, 2, 3, 4, 5]


def test_comment_probabilities_are_calibrated_on_comments_not_on_the_sms_mix():
    """Platt's maximum-likelihood intercept makes the mean probability equal the spam rate
    of the texts it was fitted on; with SMS in the mix, these comments averaged 1.8 points low."""
    corpus = datasets.load_youtube(videos=["Psy", "KatyPerry"])
    corpus.extend(datasets.load_sms().subset(range(2000)))
    params = dict(pipeline.DEFAULT_PARAMS)
    counts = pipeline.analyse(corpus.texts, params)
    media = [pipeline.medium(s) for s in corpus.sources]
    chosen = pipeline.select(counts, corpus.y, corpus.groups(), np.arange(len(corpus)), params,
                             [params["C"]], n_jobs=1, media=media)
    comments = np.array([m == "youtube" for m in media])
    assert chosen.calibrated_on == comments.sum()
    assert chosen.oof_proba[comments].mean() == pytest.approx(corpus.y[comments].mean(), abs=2e-3)


def test_threshold_warnings_name_thresholds_that_meet_too_few_examples_and_missed_budgets():
    # A perfectly separated handful (a tiny `train --streaming` hold-out): 0.5 / 0.5.
    proba, y = np.array([0.2, 0.8]), np.array([0, 1])
    publish_below, reject_at = pipeline.choose_thresholds(proba, y)
    assert (publish_below, reject_at) == (0.5, 0.5)
    meet, few = pipeline.threshold_warnings(proba, y, publish_below, reject_at)
    assert meet == "publish and reject thresholds meet at 0.500: no comment is ever held for review"
    assert few.startswith("thresholds chosen from too few examples: 1 ham and 1 spam (the 0.5% "
                          "ham budget needs 200 ham, the 2% spam budget 50 spam)")
    # Enough of both, but ham scored 1.0 (the cap): the ham budget cannot be met.
    rng = np.random.default_rng(2)
    proba = np.r_[rng.beta(1, 8, 990), np.ones(10), rng.beta(8, 1, 100)]
    y = np.r_[np.zeros(1000, int), np.ones(100, int)]
    publish_below, reject_at = pipeline.choose_thresholds(proba, y, media=["youtube"] * 1100)
    assert reject_at == 1.0
    assert pipeline.threshold_warnings(proba, y, publish_below, reject_at,
                                       media=["youtube"] * 1100) == [
        "ham budget not met in youtube: 1.00% of ham rejected (budget 0.5%)"]


def test_thresholds_chosen_from_enough_examples_draw_no_warning():
    rng = np.random.default_rng(0)
    y = np.r_[np.zeros(2000, int), np.ones(500, int)]
    proba = np.clip(np.r_[rng.beta(1, 8, 2000), rng.beta(8, 1, 500)], 0, 1)
    assert pipeline.threshold_warnings(proba, y, *pipeline.choose_thresholds(proba, y)) == []
    assert (pipeline.min_examples(pipeline.MAX_HAM_REJECTED),
            pipeline.min_examples(pipeline.MAX_SPAM_PUBLISHED)) == (200, 50)


def both_loaders(path):
    """(texts, labels) as `train --data` and as `train --streaming` read ``path``."""
    from training import streaming

    corpus = datasets.load_labelled(path)
    rows = list(streaming.iter_rows(path))
    return (corpus.texts, corpus.labels), ([t for t, _ in rows], [label for _, label in rows])


@pytest.mark.parametrize(
    ("name", "content", "texts", "labels"),
    [
        # Excel's "CSV UTF-8": a byte order mark and CRLF line ends.
        ("bom.csv", b"\xef\xbb\xbftext,label\r\nBuy now http://x.co,spam\r\nnice song,ham\r\n",
         ["Buy now http://x.co", "nice song"], [1, 0]),
        ("bom.jsonl", b'\xef\xbb\xbf{"text": "win", "label": 1}\r\n{"text": "ok", "label": 0}\r\n',
         ["win", "ok"], [1, 0]),
        # Excel where "," is the decimal mark: ";", quoted fields over lines, blank lines.
        ("excel.csv", b'Text;Label\r\n"Buy now; cheap\r\nhttp://x.co";SPAM\r\n\r\n"nice";Ham\r\n;\r\n',
         ["Buy now; cheap\r\nhttp://x.co", "nice"], [1, 0]),
        ("tabs.csv", b"TEXT\tLABEL\nwin big\ttrue\nhello\tfalse\n", ["win big", "hello"], [1, 0]),
        ("upper.csv", b"Text,Label,Source\nfree money,1,blog\nnice,0\n", ["free money", "nice"],
         [1, 0]),
    ],
)
def test_files_as_operators_save_them_load_alike_in_both_readers(tmp_path, name, content,
                                                                 texts, labels):
    path = tmp_path / name
    path.write_bytes(content)
    assert both_loaders(path) == ((texts, labels), (texts, labels))


@pytest.mark.parametrize(
    ("name", "content"),
    [
        # pandas writes an integer column with a gap as floats: 1.0 / 0.0.
        ("floats.jsonl", '{"text": "win big", "label": 1.0}\n{"text": "hello", "label": 0.0}\n'),
        ("floats.csv", "text,label\nwin big,1.0\nhello,0.0\n"),
        ("zeros.csv", "text,label\nwin big, 1.00\nhello,0.000\n"),
        # JSON booleans read as the words true / false do.
        ("booleans.jsonl", '{"text": "win big", "label": true}\n'
                           '{"text": "hello", "label": false}\n'),
    ],
)
def test_labels_written_as_integral_floats_or_booleans_are_read(tmp_path, name, content):
    path = write(tmp_path / name, content)
    assert both_loaders(path) == ((["win big", "hello"], [1, 0]),) * 2


@pytest.mark.parametrize(
    ("name", "content", "shown"),
    [
        ("half.jsonl", '{"text": "x", "label": 0.5}\n', "0.5"),
        ("two.jsonl", '{"text": "x", "label": 2}\n', "2"),
        ("two-point-oh.jsonl", '{"text": "x", "label": 2.0}\n', "2.0"),
        ("nan.jsonl", '{"text": "x", "label": NaN}\n', "nan"),
        ("null.jsonl", '{"text": "x", "label": null}\n', "None"),
        ("half.csv", "text,label\nx,0.5\n", "'0.5'"),
        ("ten.csv", "text,label\nx,10.0\n", "'10.0'"),
        ("dot.csv", "text,label\nx,1.\n", "'1.'"),
    ],
)
def test_any_other_number_is_refused_by_row_rather_than_rounded(tmp_path, name, content, shown):
    from training import streaming

    path = write(tmp_path / name, content)
    row = "line 1" if name.endswith(".jsonl") else "row 2"
    for read in (datasets.load_labelled, lambda p: list(streaming.iter_rows(p))):
        with pytest.raises(DataError) as info:
            read(path)
        assert str(info.value) == (f"{path}: {row}: unknown label {shown} "
                                   "(expected spam/ham or 1/0)")


def test_a_row_is_named_as_a_spreadsheet_numbers_it_and_by_its_line(tmp_path):
    from training import streaming

    path = write(tmp_path / "rows.csv", 'text,label\n"two\nlines",spam\n\nx,maybe\n')
    for read in (datasets.load_labelled, lambda p: list(streaming.iter_rows(p))):
        with pytest.raises(DataError, match=r"rows\.csv: row 4 \(line 5\): unknown label 'maybe'"):
            read(path)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("latin.csv", b"text,label\nok,ham\n\xe9t\xe9,spam\n",
         r"latin\.csv: line 3: not UTF-8 text \(byte 0xe9\); save it as UTF-8 \(in Excel: CSV "
         r"UTF-8\)$"),
        ("long.jsonl", b'{"text": "' + b"a" * 100_001 + b'", "label": 1}\n',
         r"long\.jsonl: line 1: text of 100,001 characters; at most 100,000"),
        ("long.csv", b"text,label\nok,ham\n" + b"a" * 200_000 + b",spam\n",
         r"long\.csv: row 3: field larger than field limit \(131072\)"),
        ("short.csv", b"text,label\nok,ham\nlonely\n", r"short\.csv: row 3: 1 column\(s\)"),
        ("blank.csv", b"", r"blank\.csv: (empty file|no labelled rows)"),
    ],
)
def test_bad_files_are_one_line_errors_in_both_readers(tmp_path, name, content, message):
    from training import streaming

    path = tmp_path / name
    path.write_bytes(content)
    for read in (datasets.load_labelled, lambda p: list(streaming.iter_rows(p))):
        with pytest.raises(DataError, match=message) as info:
            read(path)
        assert "\n" not in str(info.value)


def test_a_directory_is_named_as_one_in_both_readers(tmp_path):
    from training import streaming

    for read in (datasets.load_labelled, lambda p: list(streaming.iter_rows(p))):
        with pytest.raises(DataError, match=r": is a directory, not a file$"):
            read(tmp_path)


def test_a_pipe_is_read_once_and_its_bytes_are_what_is_hashed(tmp_path):
    """`--data <(zcat decisions.csv.gz)`: hashing the file again would read an empty pipe
    (or wait for a writer that never comes)."""
    import hashlib
    import os
    import threading

    from training import streaming

    content = b"text,label\nfree money,spam\nnice song,ham\n"
    for read in ("labelled", "streaming"):
        fifo = tmp_path / f"{read}.csv"
        os.mkfifo(fifo)
        writer = threading.Thread(target=fifo.write_bytes, args=(content,))
        writer.start()
        if read == "labelled":
            corpus = datasets.load_labelled(fifo)
            texts, digest = corpus.texts, corpus.files[str(fifo)]
        else:
            digests = {}
            texts = [text for text, _ in streaming.iter_rows(fifo, digests)]
            digest = digests[str(fifo)]
        writer.join(timeout=10)
        assert texts == ["free money", "nice song"]
        assert digest == hashlib.sha256(content).hexdigest()


def test_two_writes_of_one_file_at_once_each_use_their_own_temporary_file(tmp_path):
    """Two `export-decisions --out F` at once: both wrote through `.F.tmp`, so the second
    truncated the first's half-written file and renamed it, and the first then failed
    (its temporary file gone). Here the second export runs while the first is writing."""
    target = tmp_path / "decisions.jsonl"
    first = datasets.Corpus(texts=["first a", "first b"], labels=[1, 0],
                            sources=["decisions", "decisions"])
    second = datasets.Corpus(texts=["second"], labels=[0], sources=["decisions"])

    class Meanwhile(list):
        """The first export's extra fields: reading the first row runs the second export."""

        def __getitem__(self, index):
            if index == 0:
                datasets.write_jsonl(second, target)
            return super().__getitem__(index)

    before = os.umask(0o027)
    try:
        datasets.write_jsonl(first, target, Meanwhile([{}, {}]))
    finally:
        os.umask(before)
    assert [json.loads(line)["text"] for line in target.read_text().splitlines()] == [
        "first a", "first b"]  # the last to finish, whole
    assert [p.name for p in tmp_path.iterdir()] == ["decisions.jsonl"]
    assert oct(target.stat().st_mode & 0o777) == oct(0o640)  # the umask's, not mkstemp's 0600

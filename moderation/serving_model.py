"""The model as the service runs it: numpy arrays and plain Python, no scikit-learn.

Training saves the fitted scikit-learn objects (``model.skops``) and, beside them,
this export (``serving.npz``): for each feature block of the pipeline's
``FeatureUnion`` what scoring one document needs (how to cut the text into terms,
the term -> column lookup, idf weights, the classifier's coefficients), plus the
intercept and the Platt calibration. A worker loads only the export, so it never
imports scikit-learn or SciPy (tens of MB per worker).

:func:`from_pipeline` reads the fitted objects (it needs them loaded, hence
scikit-learn, but imports nothing itself); :func:`save` / :func:`load` write and
read the ``.npz`` (numeric arrays only, loaded with ``allow_pickle=False``; the
layout is a JSON document stored as bytes inside it). What is not listed in
:data:`SUPPORTED` raises :class:`UnsupportedModel` with the step's name: teach this
module that step rather than serving through scikit-learn.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import mmh3
import numpy as np

from . import text

FORMAT = 1


@dataclass(frozen=True)
class DenseFeatures:
    """A ``FunctionTransformer`` block of dense features: the matrix function training
    uses, its column names, and the function giving one text's row of it."""

    matrix: Callable[..., Any]
    names: tuple[str, ...]
    row: Callable[[str], list[float]]


#: The matrix functions a signal block may use, by name.
DENSE: dict[str, DenseFeatures] = {
    "moderation.text.signal_matrix": DenseFeatures(
        text.signal_matrix, text.SIGNAL_NAMES, text.signals),
    "moderation.text.promotion_matrix": DenseFeatures(
        text.promotion_matrix, text.PROMOTION_NAMES, partial(text.promotion, version=1)),
    "moderation.text.promotion_matrix_2": DenseFeatures(
        text.promotion_matrix_2, text.PROMOTION_NAMES, partial(text.promotion, version=2)),
}
#: Text functions a model may refer to by name (the same ones skops is told to trust):
#: the normalizer as a vectorizer's preprocessor, and the dense blocks' functions.
FUNCTIONS: dict[str, Callable[..., Any]] = {
    "moderation.text.normalize": text.normalize,
    **{name: dense.matrix for name, dense in DENSE.items()},
}
_TFIDF = "sklearn.feature_extraction.text.TfidfVectorizer"
_COUNT = "sklearn.feature_extraction.text.CountVectorizer"
_HASHING = "sklearn.feature_extraction.text.HashingVectorizer"
_FUNCTION = "sklearn.preprocessing._function_transformer.FunctionTransformer"
#: Feature steps this module can reproduce exactly (their fitted state is exported).
SUPPORTED = (_TFIDF, _COUNT, _HASHING, _FUNCTION)
#: Hashed terms remembered per block (n-grams repeat across comments; bounded memory).
HASH_CACHE_SIZE = 200_000
# scikit-learn's _VectorizerMixin._white_spaces: runs of whitespace become one space.
_WHITE_SPACES = re.compile(r"\s\s+")


class UnsupportedModel(ValueError):
    """A fitted pipeline this module cannot reproduce without scikit-learn."""


class FormatError(ValueError):
    """A ``serving.npz`` that is not a (this version's) serving export."""


def _qualname(obj: Any) -> str:
    kind = obj if isinstance(obj, type) else type(obj)
    return f"{kind.__module__}.{kind.__qualname__}"


def _function_name(func: Any) -> str:
    return f"{getattr(func, '__module__', '?')}.{getattr(func, '__qualname__', '?')}"


# -- cutting a text into terms (scikit-learn's analyzers, reproduced) -----------------


@dataclass(frozen=True)
class Analyzer:
    """What a fitted vectorizer's ``build_analyzer()`` does to one string.

    The same steps as scikit-learn's ``_VectorizerMixin`` for ``input="content"``: the
    preprocessor (one of :data:`FUNCTIONS`, or ``str.lower`` / nothing), then word
    tokens and n-grams or character (``char`` / ``char_wb``) n-grams. Tested equal to
    scikit-learn's analyzer on every shipped text.
    """

    analyzer: str  # "word" | "char" | "char_wb"
    ngram_range: tuple[int, int]
    preprocessor: str | None = None  # a key of FUNCTIONS
    lowercase: bool = True  # only used without a preprocessor, as in scikit-learn
    token_pattern: str | None = None
    stop_words: tuple[str, ...] | None = None
    _pre: Callable[[str], str] = field(init=False, repr=False, compare=False)
    _tokens: Callable[[str], list[str]] | None = field(init=False, repr=False, compare=False)
    _stop: frozenset[str] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.analyzer not in ("word", "char", "char_wb"):
            raise FormatError(f"unknown analyzer {self.analyzer!r}")
        if self.preprocessor is not None:
            if self.preprocessor not in FUNCTIONS:
                raise FormatError(f"unknown preprocessor {self.preprocessor!r}")
            pre = FUNCTIONS[self.preprocessor]
        else:
            pre = str.lower if self.lowercase else _identity
        object.__setattr__(self, "_pre", pre)
        tokens = None
        if self.analyzer == "word":
            pattern = re.compile(self.token_pattern or "")
            if pattern.groups > 1:
                raise FormatError("token pattern with more than one group")
            tokens = pattern.findall
        object.__setattr__(self, "_tokens", tokens)
        stop = frozenset(self.stop_words) if self.stop_words is not None else None
        object.__setattr__(self, "_stop", stop)

    @classmethod
    def of(cls, vectorizer: Any) -> Analyzer:
        """The analyzer of a fitted scikit-learn vectorizer (UnsupportedModel if odd)."""
        if callable(vectorizer.analyzer) or vectorizer.tokenizer is not None:
            raise UnsupportedModel("a custom analyzer or tokenizer")
        if vectorizer.input != "content":
            raise UnsupportedModel(f"input={vectorizer.input!r}")
        preprocessor = None
        if vectorizer.preprocessor is not None:
            preprocessor = _function_name(vectorizer.preprocessor)
            if FUNCTIONS.get(preprocessor) is not vectorizer.preprocessor:
                raise UnsupportedModel(f"preprocessor {preprocessor}")
        elif vectorizer.strip_accents:
            raise UnsupportedModel(f"strip_accents={vectorizer.strip_accents!r}")
        word = vectorizer.analyzer == "word"
        stop = vectorizer.get_stop_words() if word else None
        return cls(
            analyzer=vectorizer.analyzer,
            ngram_range=(int(vectorizer.ngram_range[0]), int(vectorizer.ngram_range[1])),
            preprocessor=preprocessor,
            lowercase=bool(vectorizer.lowercase),
            token_pattern=vectorizer.token_pattern if word else None,
            stop_words=tuple(sorted(stop)) if stop is not None else None,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "analyzer": self.analyzer, "ngram_range": list(self.ngram_range),
            "preprocessor": self.preprocessor, "lowercase": self.lowercase,
            "token_pattern": self.token_pattern,
            "stop_words": list(self.stop_words) if self.stop_words is not None else None,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Analyzer:
        stop = data.get("stop_words")
        return cls(
            analyzer=data["analyzer"],
            ngram_range=(int(data["ngram_range"][0]), int(data["ngram_range"][1])),
            preprocessor=data.get("preprocessor"),
            lowercase=bool(data.get("lowercase", True)),
            token_pattern=data.get("token_pattern"),
            stop_words=tuple(stop) if stop is not None else None,
        )

    @property
    def kind(self) -> str:
        """How explanations label this block's features."""
        return "term" if self.analyzer == "word" else "chars"

    def __call__(self, doc: str) -> list[str]:
        doc = self._pre(doc)
        if self._tokens is not None:
            return self._word_ngrams(self._tokens(doc))
        doc = _WHITE_SPACES.sub(" ", doc)
        if self.analyzer == "char_wb":
            return self._char_wb_ngrams(doc)
        return self._char_ngrams(doc)

    # The three loops below are scikit-learn's own (1.9), kept loop for loop: the
    # tests compare their output on every shipped text, and this shape is also the
    # fastest in CPython (a generator per word costs twice as much).

    def _word_ngrams(self, tokens: list[str]) -> list[str]:
        if self._stop is not None:
            tokens = [t for t in tokens if t not in self._stop]
        min_n, max_n = self.ngram_range
        if max_n == 1:
            return tokens
        original = tokens
        if min_n == 1:
            tokens = list(original)
            min_n += 1
        else:
            tokens = []
        append = tokens.append
        for n in range(min_n, min(max_n + 1, len(original) + 1)):
            for i in range(len(original) - n + 1):
                append(" ".join(original[i : i + n]))
        return tokens

    def _char_ngrams(self, doc: str) -> list[str]:
        min_n, max_n = self.ngram_range
        if min_n == 1:
            ngrams = list(doc)
            min_n += 1
        else:
            ngrams = []
        append = ngrams.append
        for n in range(min_n, min(max_n + 1, len(doc) + 1)):
            for i in range(len(doc) - n + 1):
                append(doc[i : i + n])
        return ngrams

    def _char_wb_ngrams(self, doc: str) -> list[str]:
        min_n, max_n = self.ngram_range
        ngrams: list[str] = []
        append = ngrams.append
        for word in doc.split():
            word = " " + word + " "
            length = len(word)
            for n in range(min_n, max_n + 1):
                offset = 0
                append(word[offset : offset + n])
                while offset + n < length:
                    offset += 1
                    append(word[offset : offset + n])
                if offset == 0:  # a short word counts once, not once per n
                    break
        return ngrams


def _identity(doc: str) -> str:
    return doc


# -- feature blocks ---------------------------------------------------------------------


@dataclass(frozen=True)
class VocabularyBlock:
    """A fitted CountVectorizer / TfidfVectorizer: terms -> columns, idf, tf options."""

    step: str
    analyzer: Analyzer
    terms: list[str]  # column j is terms[j]
    vocabulary: dict[str, int]
    idf: np.ndarray | None  # None: no idf weighting (CountVectorizer, use_idf=False)
    coef: np.ndarray
    sublinear: bool
    binary: bool
    norm: str | None  # "l2" or None

    @property
    def width(self) -> int:
        return len(self.terms)


@dataclass(frozen=True)
class HashBlock:
    """A HashingVectorizer (streaming models): terms -> buckets by MurmurHash3."""

    step: str
    analyzer: Analyzer
    n_features: int
    coef: np.ndarray
    cache: dict[str, int] = field(default_factory=dict, compare=False)

    @property
    def width(self) -> int:
        return self.n_features

    def index(self, term: str) -> int:
        """The column scikit-learn's ``_hashing_fast.transform`` gives ``term``."""
        bucket = self.cache.get(term)
        if bucket is None:
            # mmh3.hash is the signed 32-bit MurmurHash3 of the UTF-8 bytes, as sklearn's
            # murmurhash3_32(term, seed=0) (tested equal); abs(-2**31) overflows there.
            h = mmh3.hash(term, 0)
            if h == -2147483648:
                bucket = (2147483647 - (self.n_features - 1)) % self.n_features
            else:
                bucket = abs(h) % self.n_features
            if len(self.cache) >= HASH_CACHE_SIZE:
                self.cache.clear()
            self.cache[term] = bucket
        return bucket


@dataclass(frozen=True)
class SignalBlock:
    """``FunctionTransformer`` of one of :data:`DENSE`: raw-text signals or promotion cues."""

    step: str
    coef: np.ndarray
    function: str = "moderation.text.signal_matrix"

    @property
    def names(self) -> tuple[str, ...]:
        return DENSE[self.function].names

    @property
    def width(self) -> int:
        return len(self.names)

    def values(self, doc: str) -> list[float]:
        """The block's features of one raw text."""
        return DENSE[self.function].row(doc)


Block = VocabularyBlock | HashBlock | SignalBlock


@dataclass(frozen=True)
class ServingModel:
    """Everything scoring needs: blocks in column order, intercept, Platt calibration."""

    blocks: list[Block]
    intercept: float
    calibration_coef: float
    calibration_intercept: float


# -- from a fitted scikit-learn pipeline -----------------------------------------------


def from_pipeline(objects: dict[str, Any]) -> ServingModel:
    """The serving export of ``{"pipeline", "calibrator"}`` as training saves them.

    Generic over the ``FeatureUnion``: any number of blocks of the kinds in
    :data:`SUPPORTED`, in any order, with any names; ``"drop"`` steps are skipped and
    transformer weights folded into the coefficients.
    """
    pipeline, calibrator = objects["pipeline"], objects["calibrator"]
    try:
        features = pipeline.named_steps["features"]
        clf = pipeline.named_steps["clf"]
    except (AttributeError, KeyError) as exc:
        raise UnsupportedModel(f"expected a pipeline of 'features' and 'clf' ({exc})") from None
    if len(pipeline.steps) != 2 or not hasattr(features, "transformer_list"):
        raise UnsupportedModel("expected Pipeline([('features', FeatureUnion), ('clf', ...)])")
    coef = np.asarray(getattr(clf, "coef_", np.empty((0, 0))), dtype=np.float64)
    if coef.ndim != 2 or coef.shape[0] != 1 or list(getattr(clf, "classes_", [])) != [0, 1]:
        raise UnsupportedModel(f"classifier {_qualname(clf)} is not a binary linear model")
    coef = coef.ravel()
    weights = features.transformer_weights or {}
    blocks: list[Block] = []
    offset = 0
    for name, step in features.transformer_list:
        if step == "drop" or step is None:
            continue
        block = _block(name, step, coef, offset, float(weights.get(name, 1.0)))
        blocks.append(block)
        offset += block.width
    if offset != coef.size:
        raise UnsupportedModel(
            f"the feature blocks have {offset} columns, the classifier {coef.size}: model "
            "features do not match this version of moderation.text"
        )
    calibration = np.asarray(calibrator.coef_, dtype=np.float64).ravel()
    if calibration.size != 1:
        raise UnsupportedModel("the calibrator is not a 1-D logistic regression")
    return ServingModel(
        blocks=blocks,
        intercept=float(np.ravel(clf.intercept_)[0]),
        calibration_coef=float(calibration[0]),
        calibration_intercept=float(np.ravel(calibrator.intercept_)[0]),
    )


def _block(name: str, step: Any, coef: np.ndarray, offset: int, weight: float) -> Block:
    kind = _qualname(step)
    if kind not in SUPPORTED:
        raise UnsupportedModel(f"feature step {name!r} ({kind}) is not supported by {__name__}")

    def weighted(width: int) -> np.ndarray:
        return np.ascontiguousarray(coef[offset : offset + width] * weight)

    if kind == _FUNCTION:
        func = _function_name(step.func)
        if func not in DENSE or step.func is not DENSE[func].matrix:
            raise UnsupportedModel(f"feature step {name!r}: function {func}")
        if step.kw_args:
            raise UnsupportedModel(f"feature step {name!r}: kw_args")
        return SignalBlock(name, weighted(len(DENSE[func].names)), func)
    dtype = np.dtype(step.dtype)
    # float32 features would round differently from this module's float64 arithmetic.
    if dtype != np.float64 and not np.issubdtype(dtype, np.integer):
        raise UnsupportedModel(f"feature step {name!r}: dtype {step.dtype}")
    analyzer = Analyzer.of(step)
    if kind == _HASHING:
        if step.alternate_sign or step.binary or step.norm != "l2":
            raise UnsupportedModel(f"feature step {name!r}: hashing settings")
        return HashBlock(name, analyzer, int(step.n_features), weighted(int(step.n_features)))
    terms = [""] * len(step.vocabulary_)
    for term, column in step.vocabulary_.items():
        terms[column] = term
    tfidf = kind == _TFIDF and step.use_idf
    norm = step.norm if kind == _TFIDF else None
    if norm not in ("l2", None):
        raise UnsupportedModel(f"feature step {name!r}: norm={norm!r}")
    return VocabularyBlock(
        step=name,
        analyzer=analyzer,
        terms=terms,
        vocabulary=dict(step.vocabulary_),
        idf=np.asarray(step.idf_, dtype=np.float64) if tfidf else None,
        coef=weighted(len(terms)),
        sublinear=bool(kind == _TFIDF and step.sublinear_tf),
        binary=bool(step.binary),
        norm=norm,
    )


# -- the .npz file ------------------------------------------------------------------


def save(model: ServingModel, path: str | Path) -> None:
    """Write ``model`` as an uncompressed ``.npz`` of numeric arrays (fast to load)."""
    arrays: dict[str, np.ndarray] = {
        "head": np.array([model.intercept, model.calibration_coef, model.calibration_intercept])
    }
    layout = []
    for k, block in enumerate(model.blocks):
        arrays[f"b{k}_coef"] = block.coef
        entry: dict[str, Any] = {"step": block.step, "width": block.width}
        if isinstance(block, SignalBlock):
            entry.update(type="signals", function=block.function, names=list(block.names))
        elif isinstance(block, HashBlock):
            entry.update(type="hashing", analyzer=block.analyzer.to_json())
        else:
            entry.update(type="vocabulary", analyzer=block.analyzer.to_json(),
                         sublinear=block.sublinear, binary=block.binary, norm=block.norm)
            # One UTF-8 blob and character offsets: a 150k-term vocabulary in ~2 MB,
            # where a fixed-width unicode array would pad every term to the longest.
            joined = "".join(block.terms)
            arrays[f"b{k}_terms"] = np.frombuffer(joined.encode("utf-8"), dtype=np.uint8)
            ends = np.cumsum([len(t) for t in block.terms], dtype=np.int64)
            arrays[f"b{k}_ends"] = ends
            if block.idf is not None:
                arrays[f"b{k}_idf"] = block.idf
        layout.append(entry)
    document = {"format": FORMAT, "blocks": layout}
    arrays["layout"] = np.frombuffer(json.dumps(document).encode("utf-8"), dtype=np.uint8)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    with open(path, "wb") as handle:
        handle.write(buffer.getbuffer())


def load(path: str | Path) -> ServingModel:
    """Read a file written by :func:`save`; :class:`FormatError` if it is not one."""
    try:
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise ValueError("a single array, not an archive")
        with loaded as npz:
            arrays = {name: npz[name] for name in npz.files}
        document = json.loads(arrays["layout"].tobytes().decode("utf-8"))
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        raise FormatError(f"not a serving export ({type(exc).__name__}: {exc})") from None
    found = document.get("format") if isinstance(document, dict) else None
    if found != FORMAT:
        raise FormatError(f"serving export format {found!r}, this service reads {FORMAT}")
    try:
        head = arrays["head"].astype(np.float64)
        blocks = [_load_block(k, entry, arrays) for k, entry in enumerate(document["blocks"])]
        return ServingModel(blocks, float(head[0]), float(head[1]), float(head[2]))
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        if isinstance(exc, FormatError):
            raise
        raise FormatError(f"malformed serving export ({type(exc).__name__}: {exc})") from None


def _load_block(k: int, entry: dict[str, Any], arrays: dict[str, np.ndarray]) -> Block:
    coef = arrays[f"b{k}_coef"].astype(np.float64, copy=False)
    width = int(entry["width"])
    if coef.shape != (width,):
        raise FormatError(f"block {k}: {coef.shape} coefficients for width {width}")
    step = str(entry["step"])
    if entry["type"] == "signals":
        function = entry.get("function")
        if function not in DENSE:
            raise FormatError(f"block {k}: unknown function {function!r}")
        names = DENSE[function].names
        if tuple(entry["names"]) != names:
            raise FormatError(f"block {k}: signals {entry['names']} differ from this "
                              f"version of moderation.text {list(names)}")
        return SignalBlock(step, coef, function)
    analyzer = Analyzer.from_json(entry["analyzer"])
    if entry["type"] == "hashing":
        return HashBlock(step, analyzer, width, coef)
    if entry["type"] != "vocabulary":
        raise FormatError(f"block {k}: unknown type {entry['type']!r}")
    joined = arrays[f"b{k}_terms"].tobytes().decode("utf-8")
    ends = arrays[f"b{k}_ends"].tolist()
    if len(ends) != width or (ends and ends[-1] != len(joined)):
        raise FormatError(f"block {k}: term table does not match width {width}")
    terms = [joined[start:end] for start, end in zip([0, *ends[:-1]], ends, strict=True)]
    vocabulary = {term: column for column, term in enumerate(terms)}
    if len(vocabulary) != width:
        raise FormatError(f"block {k}: duplicate terms")
    idf = arrays.get(f"b{k}_idf")
    if idf is not None and idf.shape != (width,):
        raise FormatError(f"block {k}: {idf.shape} idf weights for width {width}")
    norm = entry.get("norm")
    if norm not in ("l2", None):
        raise FormatError(f"block {k}: norm {norm!r}")
    return VocabularyBlock(
        step=step, analyzer=analyzer, terms=terms, vocabulary=vocabulary,
        idf=None if idf is None else idf.astype(np.float64, copy=False), coef=coef,
        sublinear=bool(entry["sublinear"]), binary=bool(entry["binary"]), norm=norm,
    )

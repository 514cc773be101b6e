"""How much a protocol's verdict can be trusted on a test set of a hundred comments.

A TubeSpam video's test set holds ~100 comments, where one comment moves MCC by about
0.02: a FAIL by 0.002 and a FAIL by 0.1 are different news. The report therefore
shows, next to each MCC, its errors, a bootstrap interval and how many of its errors
would have to go for the target to pass.
"""

from __future__ import annotations

import numpy as np

#: Bootstrap resamples of the test texts; fixed seed, so a report is reproducible.
RESAMPLES = 2000
SEED = 20151209  # ICMLA 2015, where the TubeSpam numbers were published


def confusion(y: np.ndarray, proba: np.ndarray) -> tuple[int, int, int, int]:
    """True positives, true negatives, false positives, false negatives at 0.5."""
    y = np.asarray(y).astype(bool)
    predicted = np.asarray(proba) >= 0.5
    return (int((y & predicted).sum()), int((~y & ~predicted).sum()),
            int((~y & predicted).sum()), int((y & ~predicted).sum()))


def mcc_of(tp, tn, fp, fn):
    """MCC from confusion counts (scalars or arrays); 0 where it is undefined."""
    tp, tn, fp, fn = (np.asarray(v, dtype=float) for v in (tp, tn, fp, fn))
    denominator = np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    safe = np.where(denominator > 0, denominator, 1.0)
    return np.where(denominator > 0, (tp * tn - fp * fn) / safe, 0.0)


def mcc_interval(y: np.ndarray, proba: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of the MCC at 0.5, the test texts resampled."""
    y = np.asarray(y).astype(bool)
    predicted = np.asarray(proba) >= 0.5
    rng = np.random.default_rng(SEED)
    picks = rng.integers(0, len(y), size=(RESAMPLES, len(y)))
    truth, said = y[picks], predicted[picks]
    values = mcc_of((truth & said).sum(1), (~truth & ~said).sum(1),
                    (~truth & said).sum(1), (truth & ~said).sum(1))
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def errors_to_pass(y: np.ndarray, proba: np.ndarray, target: float) -> int | None:
    """The fewest errors that, put right, would lift the MCC above ``target``.

    0 when it passes; None when even no errors at all would not. Every split of the
    corrections between false positives and false negatives is tried (a few hundred
    errors at most).
    """
    tp, tn, fp, fn = confusion(y, proba)
    for fixed in range(fp + fn + 1):
        for ham_fixed in range(max(0, fixed - fn), min(fixed, fp) + 1):
            spam_fixed = fixed - ham_fixed
            if float(mcc_of(tp + spam_fixed, tn + ham_fixed, fp - ham_fixed,
                            fn - spam_fixed)) > target:
                return fixed
    return None

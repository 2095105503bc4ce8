"""The epoch record both trainers write, the file that keeps them
(`metrics.jsonl`, one JSON line per epoch, as the paper's own code logs) and
the one rule for "best".

A run never cuts `metrics.jsonl` back: an epoch trained again after a fall
back to an older checkpoint gets a second line, marked `"redone": true`, and
readers take the latest line of each epoch (`latest_per_epoch`).
"""

import dataclasses
import json
import math
import os


@dataclasses.dataclass
class EpochRecord:
    """One epoch of a run: errors are fractions, the rate is the one the
    epoch's last update used; `test_*` are None when the epoch was not
    tested, `test_top5_error` is measured for 100 classes and more."""

    epoch: int  # counted from 1
    step: int  # optimizer steps after the epoch
    learning_rate: float
    train_loss: float
    train_error: float
    epoch_seconds: float
    images_per_second: float
    test_loss: float | None = None
    test_error: float | None = None
    test_top5_error: float | None = None
    # The same for the exponential moving average of the weights (--ema).
    ema_test_loss: float | None = None
    ema_test_error: float | None = None
    ema_test_top5_error: float | None = None
    resumed_mid_epoch: bool = False
    redone: bool = False

    ORDER = ("epoch", "step", "learning_rate", "train_loss", "train_error", "test_loss", "test_error",
             "test_top5_error", "ema_test_loss", "ema_test_error", "ema_test_top5_error", "epoch_seconds",
             "images_per_second", "resumed_mid_epoch", "redone")

    def to_dict(self):
        """The JSON line's fields, in `ORDER`; unmeasured ones and a false
        `redone` are left out."""
        values = dataclasses.asdict(self)
        return {key: values[key] for key in self.ORDER
                if values[key] is not None and not (key == "redone" and not values[key])}

    def summary(self, epochs):
        tested = f", test error {100 * self.test_error:.2f}%" if self.test_error is not None else ""
        if self.ema_test_error is not None:
            tested += f" (EMA {100 * self.ema_test_error:.2f}%)"
        return (f"epoch {self.epoch}/{epochs}: train loss {self.train_loss:.4f}{tested}, "
                f"{self.epoch_seconds:.1f} s, {self.images_per_second:.0f} img/s")


def read_metrics(path, warn=None):
    """The epoch records of a `metrics.jsonl` file, as dicts (empty if
    absent). A line that is not JSON is kept as `{"unreadable": line}`, so
    that rewriting the file never drops it, and named through `warn`."""
    if not os.path.exists(path):
        return []
    records = []
    with open(path, errors="replace") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except ValueError:
                records.append({"unreadable": line.rstrip("\n")})
                if warn:
                    warn(f"WARNING: line {number} of {path} is not JSON; it is kept as it is.")
    return records


def metrics_text(records):
    """`metrics.jsonl`'s text: one JSON object per line."""
    return "".join(json.dumps(record) + "\n" for record in records)


def latest_per_epoch(records):
    """One record per epoch, the latest (an epoch redone after a fallback to
    an older checkpoint has two lines), in epoch order."""
    latest = {r["epoch"]: r for r in records if "epoch" in r}
    return [latest[epoch] for epoch in sorted(latest)]


def best_test_error(records):
    """The lowest test error of any line (inf when none was tested):
    `best.weights.h5` holds the weights that reached it."""
    return min((r["test_error"] for r in records if r.get("test_error") is not None), default=math.inf)


def improves(test_error, records):
    """The one rule for best weights: an epoch's test error is the new best
    when it is strictly below every earlier line's (the first of equals
    stays)."""
    return test_error is not None and test_error < best_test_error(records)

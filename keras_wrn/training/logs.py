"""What a run leaves for people: JSON lines of metrics, TensorBoard scalars
and the curves plot."""

import errno
import json
import os
import sys

from keras_wrn.training import run_folder


def read_metrics(path, warn=None):
    """The epoch records of a `metrics.jsonl` file (empty if absent). A line
    that is not JSON is kept as `{"unreadable": line}`, so that rewriting
    the file never drops it, and named through `warn`."""
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


def write_metrics(path, records):
    """Rewrites `metrics.jsonl` atomically (one JSON object per line)."""
    run_folder.write_text(path, "".join(json.dumps(record) + "\n" for record in records))


def latest_per_epoch(records):
    """One record per epoch, the latest (an epoch redone after a fallback to
    an older checkpoint has two lines), in epoch order."""
    latest = {r["epoch"]: r for r in records if "epoch" in r}
    return [latest[epoch] for epoch in sorted(latest)]


SCALARS = ("learning_rate", "train_loss", "train_error", "test_loss", "test_error")


class TensorBoardScalars:
    """Each epoch record's `SCALARS` as TensorBoard event files in `log_dir`
    (step = epoch), written by TensorBoard's own writer, which needs no
    TensorFlow: both trainers, on every backend, write the same tags."""

    def __init__(self, log_dir):
        from tensorboard.summary import Writer

        self.log_dir = log_dir
        self._writer = Writer(log_dir)

    def write(self, record):
        """Appends the record's scalars; a full disk is a `RunFolderWriteError`
        (events already written stay readable)."""
        try:
            for key in SCALARS:
                if key in record:
                    self._writer.add_scalar(key, record[key], step=record["epoch"])
            self._writer.flush()
        except Exception as error:
            cause = _as_os_error(error)
            if cause is None:
                raise
            raise run_folder.write_error(self.log_dir, cause) from error

    def close(self):
        self._writer.close()


def _as_os_error(error):
    """`error` as an `OSError`, or None. With TensorFlow loaded, TensorBoard
    writes through `tf.io.gfile`, whose full disk is a ResourceExhaustedError."""
    if isinstance(error, OSError):
        return error
    tf = sys.modules.get("tensorflow")
    if tf is not None and isinstance(error, tf.errors.OpError):
        code = errno.ENOSPC if isinstance(error, tf.errors.ResourceExhaustedError) else None
        return OSError(code, error.message)
    return None


def plot_curves(records, path, title=""):
    """Training loss (dashed, left axis) and test error (solid, right axis)
    against epochs, as the paper's Figure 2; epochs without a test pass
    (runs that test every few epochs) have no test point. Written
    atomically as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    epochs = [r["epoch"] for r in records]
    fig, loss_axis = plt.subplots(figsize=(7, 4.2), dpi=120)
    loss_axis.plot(epochs, [r["train_loss"] for r in records], "--", color="tab:blue", label="train loss")
    loss_axis.set_xlabel("epoch")
    loss_axis.set_ylabel("training loss")
    loss_axis.set_yscale("log")
    error_axis = loss_axis.twinx()
    tested = [r for r in records if "test_error" in r]
    error_axis.plot([r["epoch"] for r in tested], [100 * r["test_error"] for r in tested], "-", color="tab:red",
                    marker="." if len(tested) < len(records) else None, label="test error")
    error_axis.set_ylabel("test error (%)")
    lines = loss_axis.get_lines() + error_axis.get_lines()
    loss_axis.legend(lines, [line.get_label() for line in lines], loc="upper right")
    loss_axis.set_title(title)
    loss_axis.grid(alpha=0.3)
    fig.tight_layout()
    with run_folder.atomic_path(path) as tmp:
        fig.savefig(tmp)
    plt.close(fig)

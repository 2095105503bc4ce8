"""What a run leaves for people besides `metrics.jsonl` (`records`):
TensorBoard scalars and the curves plot."""

from keras_wrn import files
from keras_wrn.training import run_folder

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
            cause = files.as_os_error(error)
            if cause is None:
                raise
            raise run_folder.write_error(self.log_dir, cause) from error

    def close(self):
        self._writer.close()


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

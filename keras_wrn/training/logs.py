"""What a run leaves for people: JSON lines of metrics and the curves plot."""

import json
import os


def read_metrics(path):
    """The epoch records of a `metrics.jsonl` file (empty if absent)."""
    if not os.path.exists(path):
        return []
    with open(path) as handle:
        return [json.loads(line) for line in handle if line.strip()]


def write_metrics(path, records):
    """Rewrites `metrics.jsonl` atomically (one JSON object per epoch)."""
    tmp = f"{path}.tmp"
    with open(tmp, "w") as handle:
        for record in records:
            handle.write(json.dumps(record) + "\n")
    os.replace(tmp, path)


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
    tmp = f"{path}.tmp.png"
    fig.savefig(tmp)
    plt.close(fig)
    os.replace(tmp, path)

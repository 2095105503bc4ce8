"""Keeps TensorFlow's, absl's and XLA's log lines off the terminal.

TensorFlow 2.21 writes its start-up and runtime lines (oneDNN, cudart,
cpu_feature_guard, cuInit, XLA service, MLIR, ...) from C++ straight to file
descriptor 2, some before `TF_CPP_MIN_LOG_LEVEL` or Python's logging apply.
`quiet()` therefore filters the process's standard error itself: a pipe
replaces descriptor 2 and a small process forwards every line except the
frameworks' log lines. keras-wrn's own output, progress bars, Python
tracebacks and fatal-signal reports still arrive. The `keras-wrn` command
calls it unless asked for `--verbose` (or `KERAS_WRN_VERBOSE=1`).
"""

import atexit
import contextlib
import faulthandler
import logging
import os
import re
import subprocess
import sys
import warnings

VERBOSE_ENV = "KERAS_WRN_VERBOSE"

# absl's C++ and Python formats ("I0000 00:00:1795469317.876037    2288 port.cc:153] ...")
# at info, warning and error level, the lines absl and TensorFlow print around
# them, and Python logging's default format for the frameworks' loggers. absl's
# fatal lines ("F...") stay: they say why the process is about to abort (an
# unknown XLA_FLAGS entry, an XLA check), and nothing else would.
FRAMEWORK_LINE = re.compile(
    r"^(?:[IWE]\d{4} [\d:.]+\s+\d+ [\w./+-]+:\d+\] "
    r"|WARNING: All log messages before absl::InitializeLog\(\) is called"
    r"|To enable the following instructions: .*rebuild TensorFlow"
    r"|INFO: Created TensorFlow Lite (?:XNNPACK )?delegate"
    r"|fully_quantize: \d+, inference_type: \d+"
    r"|\[Gloo\] Rank \d+ is connected to"
    r"|Additional GRPC error information from remote target"
    r"|:\w+:Error received from peer"
    r"|/job:\w+(?:/replica:\d+)?/task:\d+$"
    r"|The tasks have crashed\. Check the task logs"
    r"|The error could be from a previous operation\. Restart your program"
    r"|(?:DEBUG|INFO|WARNING|ERROR):(?:tensorflow|absl|jax|h5py)[.:]"
    r")"
)
FRAMEWORK_LOGGERS = ("tensorflow", "absl", "jax", "jax._src.xla_bridge", "h5py")
FRAMEWORK_MODULES = r"(tensorflow|tf_keras|keras|absl|jax|tensorflow_datasets|h5py)(\..*)?"

_installed = False
_restore = None


def verbose_requested(argv=None):
    """True if the user asked for the frameworks' logs."""
    argv = sys.argv[1:] if argv is None else argv
    return "--verbose" in argv or os.environ.get(VERBOSE_ENV, "").strip().lower() in ("1", "true", "yes")


def quiet(filter_stderr=True):
    """Silences the frameworks' logs for the rest of this process (once).

    Sets `TF_CPP_MIN_LOG_LEVEL=2` (unless the user set it), raises the
    frameworks' Python loggers to ERROR, ignores their Python warnings and,
    with `filter_stderr`, filters descriptor 2 (see the module docstring).
    """
    global _installed
    if _installed:
        return
    _installed = True
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    for name in FRAMEWORK_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module=FRAMEWORK_MODULES)
    if filter_stderr:
        _filter_descriptor_2()


def _filter_descriptor_2():
    try:
        terminal = os.dup(2)
        read_end, write_end = os.pipe()
    except OSError:
        return  # no usable standard error: nothing to protect
    # The filter is a process of its own, not a thread: a process that ends
    # from C (absl's fatal log, `exit` in a framework) takes its threads with
    # it before they forward its last words; the forwarder reads on until the
    # pipe's last writer is gone. Its own session keeps Ctrl-C off it.
    try:
        forwarder = subprocess.Popen([sys.executable, "-I", os.path.abspath(__file__)], stdin=read_end,
                                     stdout=terminal, stderr=subprocess.DEVNULL, start_new_session=True)
    except OSError:
        for descriptor in (terminal, read_end, write_end):
            os.close(descriptor)
        return
    os.close(read_end)
    sys.stderr.flush()
    os.dup2(write_end, 2)
    os.close(write_end)
    # Fatal signals (segfaults) report to the real stream directly.
    report = os.fdopen(os.dup(terminal), "w")
    faulthandler.enable(file=report)

    def restore():
        try:
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        os.dup2(terminal, 2)  # closes this process's end of the pipe: the forwarder sees EOF
        with contextlib.suppress(subprocess.TimeoutExpired):
            forwarder.wait(timeout=2)  # longer only while a child process still writes to the pipe

    global _restore
    _restore = restore
    atexit.register(restore)


def flush():
    """Forwards what is still in the filter to the terminal and gives
    descriptor 2 back: for a process about to end without `atexit`
    (`os._exit`). Nothing when the filter is not installed."""
    if _restore is not None:
        _restore()


def _forward(read_end, terminal):
    """Copies lines from the pipe to the terminal, dropping framework logs.
    A carriage return ends a line too, so progress bars stay live."""
    pending = b""
    while True:
        try:
            chunk = os.read(read_end, 65536)
        except OSError:
            chunk = b""
        if not chunk:
            break
        pending += chunk
        lines = re.split(rb"(?<=[\n\r])", pending)
        pending = lines.pop()  # an unfinished line waits for its end
        _write(terminal, lines)
    _write(terminal, [pending] if pending else [])


def _write(terminal, lines):
    kept = b"".join(line for line in lines if not FRAMEWORK_LINE.match(line.decode("utf-8", "replace")))
    while kept:
        try:
            written = os.write(terminal, kept)
        except OSError:
            return
        kept = kept[written:]


if __name__ == "__main__":  # the forwarder process of `quiet()`: standard input to standard output
    _forward(0, 1)

"""The one export driver: every format goes through the same steps, and a
format only says how to write its artifact and how to check it.

    source (run folder or .keras) -> serving model -> Keras reference
    probabilities on the test images -> write into a temporary name inside
    `out` -> verify against the reference -> rename into place -> model card

A format is a writer object with:

    title                 "SavedModel", in messages
    writes_folder         whether the artifact is a folder (else one file)
    options               the `keras-wrn export` options that select it
    destination(out)      the final path; raises ExportError if it may not be written
    write(job, path)      writes the artifact at `path`
    verify(job, path)     {name: Parity} of the artifact against `job.reference`
    record(job, path, parity)  the card's record of the artifact (format-specific keys)
    finish(job, path, record)  last files inside the artifact, before the rename

Nothing is renamed into place before its verification passed; a killed
export leaves only a temporary name, which the next export into `out`
removes.
"""

import contextlib
import dataclasses
import os
import shutil
import tempfile

from keras_wrn import files
from keras_wrn.errors import FileWriteError
from keras_wrn.export.source import (
    EXPORT_FULL_DISK,
    current_umask,
    load_source,
    probabilities,
    require_tensorflow_backend,
)
from keras_wrn.export.verify import check


@dataclasses.dataclass
class ExportJob:
    """What every writer works from: the source, the serving model and the
    Keras reference probabilities on the test images."""

    source: object  # export.source.ExportSource
    out: str
    final: str
    images: object  # uint8 (N, H, W, C)
    labels: object  # (N,)
    class_names: list
    serving: object  # Keras model: float32 pixels 0-255 -> probabilities
    reference: object  # (N, classes) float32


@contextlib.contextmanager
def staged(out, final, *, folder):
    """Yields a fresh temporary path beside `final` inside `out` (a folder
    or an empty file, readable by a server's user as the umask allows) and
    renames it to `final` when the block ends without an error; removes it
    otherwise. A folder never replaces an existing one; a file does."""
    prefix = f"{files.TMP_PREFIX}{os.getpid()}-{os.path.basename(final)}-"
    if folder:
        tmp = tempfile.mkdtemp(prefix=prefix, dir=out)
        os.chmod(tmp, 0o777 & ~current_umask())  # mkdtemp's 0700 would hide it from a server's user
    else:
        handle, tmp = tempfile.mkstemp(prefix=prefix, dir=out)
        os.close(handle)
        os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp's 0600 likewise
    try:
        yield tmp
        (os.rename if folder else os.replace)(tmp, final)
    finally:
        if os.path.isdir(tmp):
            shutil.rmtree(tmp)
        elif os.path.exists(tmp):
            os.remove(tmp)


def run_export(writer, target, out, *, dataset=None, data_dir=None, weights="final", max_examples=None,
               command=None, source=None, verbose=True):
    """Exports a run folder or `.keras` classifier `target` into `out` with
    `writer`, verified on the dataset's test images (the first
    `max_examples`), and records it in the model card of `out`. Returns the
    writer's record with `path` the artifact's full path."""
    from keras_wrn.export import card

    require_tensorflow_backend(f"{writer.title} export")
    out = os.path.abspath(out)
    final = writer.destination(out)
    source = source or load_source(target, dataset=dataset, data_dir=data_dir, weights=weights)
    evaluation = card.evaluation_for(out, source)
    images, labels, class_names = source.test_arrays(max_examples)
    serving = source.serving_model()
    job = ExportJob(source, out, final, images, labels, class_names, serving, probabilities(serving, images))

    try:
        os.makedirs(out, exist_ok=True)
        files.remove_stale(out)  # what a killed export left
        with staged(out, final, folder=writer.writes_folder) as tmp:
            writer.write(job, tmp)
            parity = {name: check(result) for name, result in writer.verify(job, tmp).items()}
            first = next(iter(parity.values()))
            record = {
                **writer.record(job, tmp, parity),
                "path": os.path.basename(final),
                "parity": {name: result.to_dict() for name, result in parity.items()},
                "test_error": first.test_error,
                "num_test_examples": first.num_examples,
            }
            writer.finish(job, tmp, record)
    except Exception as error:  # a full disk: TensorFlow's SaveV2 raises an OpError, files an OSError
        cause = files.as_os_error(error)
        if cause is None or isinstance(error, FileWriteError):
            raise
        raise files.write_error(final, cause, full_disk=EXPORT_FULL_DISK) from None
    card.add_artifact(out, source, class_names, evaluation, record["path"], record,
                      command or card.export_command(source, out, *writer.options), job.reference)
    if verbose:
        for name, result in parity.items():
            print(result.summary() if len(parity) == 1 else f"{name} {result.summary()}")
        print(f"Wrote {final}")
    return {**record, "path": final}

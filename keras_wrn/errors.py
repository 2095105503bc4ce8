"""The errors keras-wrn raises for problems a user can fix.

Every such error derives from `KerasWRNError`, so a caller (the `keras-wrn`
command among them) catches one class and shows its message, which names
the problem and the fix. Each also derives from the builtin a Python user
would expect (`ValueError` for a bad argument, `FileNotFoundError` for a
missing file, `OSError` for a file that cannot be written), so `except
ValueError` keeps working.

A base module: it imports nothing, and every room, the models included,
raises these.
"""


class KerasWRNError(Exception):
    """Base of keras-wrn's errors; the message names the problem and the fix."""

    def __str__(self):
        # KeyError subclasses would otherwise print their message quoted.
        return str(self.args[0]) if len(self.args) == 1 else super().__str__()


class InvalidArgumentError(KerasWRNError, ValueError):
    """An argument, option or configuration value that cannot be used."""


class MissingFileError(KerasWRNError, FileNotFoundError):
    """A file or folder keras-wrn was asked to read does not exist."""


class FileWriteError(KerasWRNError, OSError):
    """A file could not be written (a full disk, permissions); whatever was
    there before is intact."""


__all__ = ["FileWriteError", "InvalidArgumentError", "KerasWRNError", "MissingFileError"]

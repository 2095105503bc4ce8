"""The errors keras-wrn raises for problems a user can fix: `KerasWRNError`
and its builtin-flavoured bases. Defined in `keras_wrn.models.errors` (the
bottom of the house, so the models need nothing of ours outside
themselves); this is where the other rooms and users import them from."""

from keras_wrn.models.errors import InvalidArgumentError, KerasWRNError, MissingFileError

__all__ = ["InvalidArgumentError", "KerasWRNError", "MissingFileError"]

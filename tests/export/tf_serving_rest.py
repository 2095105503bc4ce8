"""TensorFlow Serving's REST predict API, as documented at
https://www.tensorflow.org/tfx/serving/api_rest ("Predict API", "Request
format", "Encoding binary values"), applied to a loaded SavedModel.

TF Serving itself cannot be installed on these machines; this turns a JSON
request body into the signature's tensors by the documented rules (row
"instances" or columnar "inputs"; one named input takes bare values, several
take objects; `{"b64": ...}` for DT_STRING), calls the signature and writes
the documented response ({"predictions": [...]} or {"outputs": ...}; errors
as {"error": ...}).
"""

import base64
import json

import numpy as np
import tensorflow as tf


def _decode_binary(value):
    if isinstance(value, dict):
        if set(value) != {"b64"}:
            raise ValueError(f"binary values must be objects with one key 'b64', got {sorted(value)}")
        return base64.b64decode(value["b64"])
    if isinstance(value, list):
        return [_decode_binary(v) for v in value]
    return value.encode() if isinstance(value, str) else value


def _tensor(value, spec):
    if spec.dtype == tf.string:
        return tf.constant(np.array(_decode_binary(value), dtype=object), tf.string)
    array = np.array(value)
    if spec.dtype.is_integer and array.dtype.kind == "f":
        raise ValueError(f"input {spec.name!r} is {spec.dtype.name}; got non-integer JSON numbers")
    return tf.constant(array, dtype=spec.dtype)


def _jsonable(name, array):
    if array.dtype == object:  # DT_STRING: UTF-8 text, or b64 for *_bytes outputs
        if name.endswith("_bytes"):
            return np.vectorize(lambda b: {"b64": base64.b64encode(b).decode()}, otypes=[object])(array).tolist()
        return np.vectorize(lambda b: b.decode(), otypes=[object])(array).tolist()
    return array.tolist()


def predict(loaded, body):
    """POST /v1/models/NAME:predict with JSON `body` (a string) -> the
    response body as a dict."""
    try:
        request = json.loads(body)
        function = loaded.signatures[request.get("signature_name", "serving_default")]
        specs = function.structured_input_signature[1]
        if ("instances" in request) == ("inputs" in request):
            raise ValueError("the request needs exactly one of 'instances' (row) or 'inputs' (columnar)")
        if "instances" in request:
            instances = request["instances"]
            if len(specs) == 1:
                (name,) = specs
                columns = {name: instances}
            else:
                columns = {name: [row[name] for row in instances] for name in specs}
        else:
            inputs = request["inputs"]
            columns = inputs if isinstance(inputs, dict) and len(specs) > 1 else {next(iter(specs)): inputs}
        tensors = {name: _tensor(columns[name], spec) for name, spec in specs.items()}
        outputs = {name: value.numpy() for name, value in function(**tensors).items()}
    except (ValueError, KeyError, TypeError, tf.errors.InvalidArgumentError) as error:
        return {"error": str(error)}
    if "inputs" in request:
        return {"outputs": {name: _jsonable(name, value) for name, value in outputs.items()}}
    count = len(next(iter(outputs.values())))
    if len(outputs) == 1:
        ((name, value),) = outputs.items()
        return {"predictions": _jsonable(name, value)}
    rows = {name: _jsonable(name, value) for name, value in outputs.items()}
    return {"predictions": [{name: rows[name][i] for name in outputs} for i in range(count)]}

"""Importing and using deepclf.protocol never imports TensorFlow (checked in a fresh interpreter)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np
    from deepclf import protocol as P

    req = P.PredictRequest(model_spec=P.model_spec("flowers", 1))
    req.inputs["image"].CopyFrom(P.to_tensor_proto(np.zeros((1, 4, 4, 3), np.float32)))
    req.inputs["image_bytes"].CopyFrom(P.to_tensor_proto([b"\\xff\\xd8"]))
    assert P.to_ndarray(P.PredictRequest.FromString(req.SerializeToString()).inputs["image"]).shape == (1, 4, 4, 3)
    body = P.encode_predict_request({"image_bytes": [b"\\xff"]}, signature_name="predict_image_bytes")
    P.decode_predict_request(body, {"image_bytes": "DT_STRING"})
    P.decode_predict_response(P.encode_predict_response({"p": np.ones((1, 5), np.float32)}, "columnar"))
    meta = P.pack_signature_defs(P.GetModelMetadataResponse(model_spec=P.model_spec("m")), P.SignatureDefMap())
    P.model_metadata_from_json(P.model_metadata_to_json(meta))
    P.model_status_to_json(P.GetModelStatusResponse())
    P.grpc_code_for(P.from_exception(ValueError("x")))
    P.generic_handler(P.PREDICTION_SERVICE, {"Predict": lambda r, c: r})
    bad = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "tensorflow_serving", "keras", "tf_keras"))
    print("LOADED:", bad)
    sys.exit(1 if bad else 0)
    """
)


def test_protocol_never_imports_tensorflow():
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "LOADED: []" in proc.stdout

"""Our private-pool messages are wire-identical to tensorflow_serving.apis and live beside them in one process."""

from __future__ import annotations

import numpy as np
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool

from deepclf import protocol as P
from deepclf.protocol import build_protos, messages

# tensorflow-serving-api imports TensorFlow: allowed in tests only, to prove compatibility.
predict_pb2 = pytest.importorskip("tensorflow_serving.apis.predict_pb2")
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2,
    prediction_log_pb2,  # noqa: F401 - imported for its side effect: registers the official PredictionLog messages
    prediction_service_pb2,
)

OFFICIAL_POOL = descriptor_pool.Default()
# Official fields our vendored subset leaves out on purpose (field numbers), with the reason in the test below.
LEFT_OUT = {
    "tensorflow.serving.LogMetadata": (2, 3, 4, 5, 6, 7, 8),  # sampling config, tags, timestamps, origin, ...
    "tensorflow.serving.PredictionLog": (5, 7),  # session_run_log, predict_streamed_log
}

# Every message our protos define, checked field by field against the official definition.
OUR_MESSAGES = sorted(
    m.full_name
    for fd in descriptor_pb2.FileDescriptorSet.FromString((build_protos.DESCRIPTOR_SET).read_bytes()).file
    if not fd.name.startswith("google/")
    for m in messages.POOL.FindFileByName(fd.name).message_types_by_name.values()
)


def _fields(desc) -> dict[int, tuple]:
    return {
        f.number: (
            f.name,
            f.type,
            f.label if hasattr(f, "label") else None,
            f.json_name,
            f.message_type.full_name if f.message_type else None,
            f.enum_type.full_name if f.enum_type else None,
            f.containing_oneof.name if f.containing_oneof and not f.containing_oneof.name.startswith("_") else None,
        )
        for f in desc.fields
    }


@pytest.mark.parametrize("full_name", OUR_MESSAGES)
def test_every_message_matches_the_official_definition(full_name):
    ours = messages.POOL.FindMessageTypeByName(full_name)
    theirs = OFFICIAL_POOL.FindMessageTypeByName(full_name)
    mine, official = _fields(ours), _fields(theirs)
    if full_name == "tensorflow.TensorInfo":
        # composite_tensor (5) is deliberately left out: it needs struct.proto; unknown fields survive parsing.
        official.pop(5)
    # The warmup reader's subset of prediction_log.proto (see its header): the log kinds it replays, and of the
    # metadata only the model spec. Left-out fields survive parsing as unknown fields; a record whose log kind is
    # left out (session_run_log) has no log_type here, and the warmup skips it, as TF Serving skips such records.
    for number in LEFT_OUT.get(full_name, ()):
        official.pop(number)
    assert mine == official
    for nested in ours.nested_types:
        if not nested.GetOptions().map_entry:
            assert _fields(nested) == _fields(theirs.nested_types_by_name[nested.name])


@pytest.mark.parametrize(
    "enum_name", ["tensorflow.DataType", "tensorflow.error.Code", "tensorflow.serving.ModelVersionStatus.State"]
)
def test_enums_match_the_official_numbers(enum_name):
    ours = {v.name: v.number for v in messages.POOL.FindEnumTypeByName(enum_name).values}
    theirs = {v.name: v.number for v in OFFICIAL_POOL.FindEnumTypeByName(enum_name).values}
    assert ours == theirs


def test_our_pool_is_private_and_both_class_families_coexist():
    assert messages.POOL is not OFFICIAL_POOL
    assert P.PredictRequest is not predict_pb2.PredictRequest
    assert P.PredictRequest.DESCRIPTOR.full_name == predict_pb2.PredictRequest.DESCRIPTOR.full_name
    # Creating ours after the official ones (and vice versa) raises nothing and each stays in its own pool.
    assert P.PredictRequest.DESCRIPTOR.file.pool is messages.POOL


def _predict_request():
    req = P.PredictRequest(model_spec=P.model_spec("flowers", 3, signature_name="serving_default"))
    req.inputs["image"].CopyFrom(P.to_tensor_proto(np.arange(2 * 4 * 4 * 3, dtype=np.float32).reshape(2, 4, 4, 3)))
    req.inputs["image_bytes"].CopyFrom(P.to_tensor_proto([b"\xff\xd8\xff\x00", b"png\x00"]))
    req.output_filter.append("probabilities")
    return req


def test_predict_request_ours_to_official_and_back():
    ours = _predict_request()
    theirs = predict_pb2.PredictRequest.FromString(ours.SerializeToString())
    assert theirs.model_spec.name == "flowers"
    assert theirs.model_spec.version.value == 3
    assert theirs.model_spec.signature_name == "serving_default"
    assert list(theirs.output_filter) == ["probabilities"]
    assert list(theirs.inputs["image_bytes"].string_val) == [b"\xff\xd8\xff\x00", b"png\x00"]
    assert theirs.inputs["image"].dtype == 1  # DT_FLOAT
    assert [d.size for d in theirs.inputs["image"].tensor_shape.dim] == [2, 4, 4, 3]
    back = P.PredictRequest.FromString(theirs.SerializeToString())
    assert back == ours
    assert np.array_equal(P.to_ndarray(back.inputs["image"]), P.to_ndarray(ours.inputs["image"]))


def test_predict_response_official_to_ours():
    theirs = predict_pb2.PredictResponse()
    theirs.model_spec.name = "flowers"
    theirs.model_spec.version_label = "stable"
    theirs.outputs["probabilities"].dtype = 1
    theirs.outputs["probabilities"].tensor_shape.dim.add(size=1)
    theirs.outputs["probabilities"].tensor_shape.dim.add(size=3)
    theirs.outputs["probabilities"].float_val.extend([0.25, 0.5, 0.25])
    ours = P.PredictResponse.FromString(theirs.SerializeToString())
    assert ours.model_spec.WhichOneof("version_choice") == "version_label"
    assert ours.model_spec.version_label == "stable"
    np.testing.assert_array_equal(P.to_ndarray(ours.outputs["probabilities"]), [[0.25, 0.5, 0.25]])
    assert predict_pb2.PredictResponse.FromString(ours.SerializeToString()) == theirs


def _signature_defs():
    sigs = P.SignatureDefMap()
    sd = sigs.signature_def["serving_default"]
    sd.method_name = "tensorflow/serving/predict"
    sd.inputs["image"].name = "serving_default_image:0"
    sd.inputs["image"].dtype = P.DataType.DT_FLOAT
    sd.inputs["image"].tensor_shape.CopyFrom(P.shape_proto([None, 180, 180, 3]))
    sd.outputs["probabilities"].name = "StatefulPartitionedCall:0"
    sd.outputs["probabilities"].dtype = P.DataType.DT_FLOAT
    sd.outputs["probabilities"].tensor_shape.CopyFrom(P.shape_proto([-1, 5]))
    return sigs


def test_model_metadata_response_with_packed_signature_defs_is_wire_identical():
    ours = P.GetModelMetadataResponse(model_spec=P.model_spec("flowers", 1))
    P.pack_signature_defs(ours, _signature_defs())
    theirs = get_model_metadata_pb2.GetModelMetadataResponse.FromString(ours.SerializeToString())
    unpacked = get_model_metadata_pb2.SignatureDefMap()
    assert theirs.metadata["signature_def"].Unpack(unpacked)  # the official Any.Unpack accepts our packing
    info = unpacked.signature_def["serving_default"].inputs["image"]
    assert info.name == "serving_default_image:0"
    assert [d.size for d in info.tensor_shape.dim] == [-1, 180, 180, 3]
    # And an official Any.Pack is byte-identical to ours.
    official = get_model_metadata_pb2.GetModelMetadataResponse()
    official.model_spec.name = "flowers"
    official.model_spec.version.value = 1
    official.metadata["signature_def"].Pack(unpacked, deterministic=True)
    assert P.unpack_signature_defs(P.GetModelMetadataResponse.FromString(official.SerializeToString())) == (
        _signature_defs()
    )
    assert official.metadata["signature_def"].type_url == ours.metadata["signature_def"].type_url
    assert official.metadata["signature_def"].value == ours.metadata["signature_def"].value


def test_unpack_signature_defs_says_what_is_missing():
    with pytest.raises(KeyError, match="signature_def"):
        P.unpack_signature_defs(P.GetModelMetadataResponse())


def test_model_status_round_trip_with_official():
    ours = P.GetModelStatusResponse()
    st = ours.model_version_status.add(version=3, state=P.ModelVersionState.AVAILABLE)
    st.status.error_code = messages.Code.OK
    st = ours.model_version_status.add(version=2, state=P.ModelVersionState.END)
    st.status.error_code = messages.Code.NOT_FOUND
    st.status.error_message = "unloaded"
    theirs = get_model_status_pb2.GetModelStatusResponse.FromString(ours.SerializeToString())
    assert [(s.version, s.state, s.status.error_code) for s in theirs.model_version_status] == [(3, 30, 0), (2, 50, 5)]
    assert P.GetModelStatusResponse.FromString(theirs.SerializeToString()) == ours


def test_tensor_info_composite_tensor_survives_a_round_trip_as_unknown_field():
    from tensorflow.core.protobuf import meta_graph_pb2

    theirs = meta_graph_pb2.TensorInfo(dtype=1)
    theirs.composite_tensor.components.add(name="x:0", dtype=1)
    ours = P.TensorInfo.FromString(theirs.SerializeToString())
    assert meta_graph_pb2.TensorInfo.FromString(ours.SerializeToString()) == theirs


def test_services_and_methods_match_the_official_ones():
    for service, module in (
        ("tensorflow.serving.PredictionService", prediction_service_pb2),
        ("tensorflow.serving.ModelService", model_service_pb2),
    ):
        theirs = module.DESCRIPTOR.services_by_name[service.rsplit(".", 1)[1]]
        ours = messages.POOL.FindServiceByName(service)
        official = {m.name: (m.input_type.full_name, m.output_type.full_name) for m in theirs.methods}
        mine = {m.name: (m.input_type.full_name, m.output_type.full_name) for m in ours.methods}
        if service.endswith("ModelService"):
            official.pop("HandleReloadConfigRequest")  # not implemented at the edge (needs model_server_config)
        assert mine == official


def test_model_spec_rejects_version_and_label_together():
    with pytest.raises(ValueError, match="not both"):
        P.model_spec("m", 1, version_label="stable")
    assert P.model_spec("m", version_label="canary").version_label == "canary"
    assert not P.model_spec("m").HasField("version")


def test_committed_descriptor_set_is_up_to_date():
    pytest.importorskip("grpc_tools")
    rebuilt = descriptor_pb2.FileDescriptorSet.FromString(build_protos.compile_descriptor_set())
    committed = descriptor_pb2.FileDescriptorSet.FromString(build_protos.DESCRIPTOR_SET.read_bytes())
    assert {f.name: f for f in rebuilt.file} == {f.name: f for f in committed.file}, (
        "src/deepclf/protocol/tfserving.binpb is stale: run `make protos` and commit it"
    )


def test_build_protos_check_mode(tmp_path, capsys):
    pytest.importorskip("grpc_tools")
    stale = tmp_path / "stale.binpb"
    stale.write_bytes(b"")
    assert build_protos.main(["--check", "--out", str(stale)]) == 1
    fresh = tmp_path / "fresh.binpb"
    assert build_protos.main(["--out", str(fresh)]) == 0
    assert build_protos.main(["--check", "--out", str(fresh)]) == 0

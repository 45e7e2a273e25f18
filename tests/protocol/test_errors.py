"""The error table: every gRPC code mapped, TF Serving's HTTP statuses, package errors caught both ways."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from deepclf import errors as deepclf_errors
from deepclf import protocol as P
from deepclf.protocol import errors as E

# TF Serving's ToHTTPStatusCode (tensorflow_serving/model_servers/http_server.cc), restated by hand.
TF_SERVING_HTTP = {
    "OK": 200,
    "CANCELLED": 499,
    "UNKNOWN": 500,
    "INVALID_ARGUMENT": 400,
    "DEADLINE_EXCEEDED": 504,
    "NOT_FOUND": 404,
    "ALREADY_EXISTS": 409,
    "PERMISSION_DENIED": 403,
    "RESOURCE_EXHAUSTED": 429,
    "FAILED_PRECONDITION": 400,
    "ABORTED": 409,
    "OUT_OF_RANGE": 400,
    "UNIMPLEMENTED": 501,
    "INTERNAL": 500,
    "UNAVAILABLE": 503,
    "DATA_LOSS": 500,
    "UNAUTHENTICATED": 401,
}


def test_every_grpc_status_code_is_in_the_table():
    assert len(grpc.StatusCode) == 17
    for sc in grpc.StatusCode:
        code = E.code_of(sc)
        assert code.name == sc.name
        assert E.HTTP_STATUS[code] == TF_SERVING_HTTP[sc.name]
        if sc is grpc.StatusCode.OK:
            continue
        err = P.error_for_grpc(sc, f"message for {sc.name}")
        assert err.code is code
        assert err.message == f"message for {sc.name}"
        assert P.grpc_code_for(err) is sc
        assert P.http_status_for(err) == TF_SERVING_HTTP[sc.name]
        assert isinstance(err, P.ServingError) and isinstance(err, deepclf_errors.DeepclfError)


def test_one_class_per_code_and_codes_match_tf_error_codes():
    from deepclf.protocol import messages

    assert len(E.ERROR_FOR_CODE) == 16 and len(set(E.ERROR_FOR_CODE.values())) == 16
    for code in E.Code:
        assert messages.Code.Value(code.name) == int(code)


@pytest.mark.parametrize(
    ("cls", "code", "status"),
    [
        (P.InvalidInput, "INVALID_ARGUMENT", 400),
        (P.ModelNotFound, "NOT_FOUND", 404),
        (P.Unavailable, "UNAVAILABLE", 503),
        (P.DeadlineExceeded, "DEADLINE_EXCEEDED", 504),
        (P.ResourceExhausted, "RESOURCE_EXHAUSTED", 429),
        (P.FailedPrecondition, "FAILED_PRECONDITION", 400),
        (P.Internal, "INTERNAL", 500),
        (P.Unimplemented, "UNIMPLEMENTED", 501),
        (P.Unauthenticated, "UNAUTHENTICATED", 401),
        (P.PermissionDenied, "PERMISSION_DENIED", 403),
        (P.Cancelled, "CANCELLED", 499),
        (P.Aborted, "ABORTED", 409),
        (P.AlreadyExists, "ALREADY_EXISTS", 409),
        (P.OutOfRange, "OUT_OF_RANGE", 400),
        (P.DataLoss, "DATA_LOSS", 500),
        (P.Unknown, "UNKNOWN", 500),
    ],
)
def test_classes_carry_code_and_status(cls, code, status):
    err = cls("what went wrong")
    assert err.code.name == code and err.http_status == status and str(err) == "what went wrong"
    assert P.error_for_grpc(code, "x").__class__ is cls


def test_invalid_input_and_model_not_found_are_also_package_errors():
    with pytest.raises(deepclf_errors.InvalidInputError):
        raise P.InvalidInput("bad shape")
    with pytest.raises(deepclf_errors.NotFoundError):
        raise P.ModelNotFound("no model 'x'")


def test_error_for_http_reverse_map_and_unknown_statuses():
    assert type(P.error_for_http(400, "m")) is P.InvalidInput
    assert type(P.error_for_http(404, "m")) is P.ModelNotFound
    assert type(P.error_for_http(409, "m")) is P.Aborted
    assert type(P.error_for_http(429, "m")) is P.ResourceExhausted
    assert type(P.error_for_http(499, "m")) is P.Cancelled
    assert type(P.error_for_http(503, "m")) is P.Unavailable
    assert type(P.error_for_http(504, "m")) is P.DeadlineExceeded
    odd = P.error_for_http(418, "teapot")
    assert type(odd) is P.Unknown and odd.http_status == 418  # keeps the status it came with
    for status in TF_SERVING_HTTP.values():
        if status >= 400:
            assert P.error_for_http(status, "m").http_status == status
    with pytest.raises(ValueError, match="not an error"):
        P.error_for_http(200)
    with pytest.raises(ValueError, match="not an error"):
        P.error_for_grpc(grpc.StatusCode.OK)


def test_code_of_accepts_names_numbers_and_grpc_codes():
    assert E.code_of("not_found") is E.Code.NOT_FOUND
    assert E.code_of(5) is E.Code.NOT_FOUND
    assert E.code_of(grpc.StatusCode.NOT_FOUND) is E.Code.NOT_FOUND
    with pytest.raises(ValueError, match="not a status code: 99"):
        E.code_of(99)


@pytest.mark.parametrize(
    ("exc", "cls"),
    [
        (deepclf_errors.InvalidInputError("bad"), P.InvalidInput),
        (deepclf_errors.ImageError("not a JPEG"), P.InvalidInput),
        (deepclf_errors.UsageError("bad flag"), P.InvalidInput),
        (deepclf_errors.NotFoundError("no version 7"), P.ModelNotFound),
        (deepclf_errors.ModelFormatError("broken model"), P.FailedPrecondition),
        (TimeoutError("slow"), P.DeadlineExceeded),
        (TimeoutError(), P.DeadlineExceeded),
        (asyncio.CancelledError(), P.Cancelled),
        (ConnectionRefusedError("refused"), P.Unavailable),
        (MemoryError(), P.ResourceExhausted),
        (NotImplementedError("Classify"), P.Unimplemented),
        (ValueError("bug"), P.Internal),
    ],
)
def test_from_exception(exc: BaseException, cls: type[P.ServingError]) -> None:
    err = P.from_exception(exc)
    assert type(err) is cls
    assert err.__cause__ is exc
    if str(exc):
        assert str(exc) in err.message
    assert P.http_status_for(exc) == err.http_status
    assert P.grpc_code_for(exc).name == err.code.name


def test_from_exception_keeps_serving_errors_and_names_unexpected_types():
    err = P.Unavailable("loading")
    assert P.from_exception(err) is err
    assert P.from_exception(KeyError("x")).message == "KeyError: 'x'"

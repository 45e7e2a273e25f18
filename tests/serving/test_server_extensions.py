"""TLS settings (``--ssl_config_file``, ``--ssl_cert``/``--ssl_key``/``--ssl_client_ca``), gzip request bodies
and the ``deepclf_manifest`` metadata extension, against a real edge server serving the session's model.

End-to-end TLS and mutual TLS with the clients are in ``tests/clients/test_tls.py``; here: parsing, validation,
flags, and the server-side behaviour of gzip bodies and the manifest field over both APIs.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
import requests

from deepclf import protocol as P
from deepclf.errors import UsageError
from deepclf.manifest import Manifest

LIMIT = 1 << 20  # --max_body_bytes of the server here: 1 MiB
ONE_IMAGE = json.dumps({"instances": np.full((1, 64, 64, 3), 100.0, np.float32).tolist()}).encode()


@pytest.fixture(scope="module")
def srv(shared_version_dir: Path) -> Iterator[Any]:
    """flowers (the session's model, read-only: no polling), REST + gRPC, a 1 MiB body limit."""
    from deepclf.serving import EdgeServer, ModelConfig, ServerConfig

    cfg = ServerConfig(
        model_configs=[ModelConfig("flowers", str(shared_version_dir.parent))],
        port=0,
        rest_api_port=0,
        threads=1,
        poll_seconds=0,
        max_body_bytes=LIMIT,
        access_log=False,
    )
    with EdgeServer(cfg) as server:
        yield server


def _predict(srv: Any, body: bytes, encoding: str | None = "gzip") -> requests.Response:
    headers = {"Content-Type": "application/json"}
    if encoding:
        headers["Content-Encoding"] = encoding
    return requests.post(f"{srv.rest_url}/v1/models/flowers:predict", data=body, headers=headers, timeout=30)


# ---------------------------------------------------------------------------------------------- gzip bodies


def test_gzip_bodies_give_the_plain_answer(srv: Any) -> None:
    plain = _predict(srv, ONE_IMAGE, None)
    assert plain.status_code == 200
    for body, encoding in [
        (gzip.compress(ONE_IMAGE), "gzip"),
        (gzip.compress(ONE_IMAGE, compresslevel=1), "GZIP"),
        (gzip.compress(ONE_IMAGE), "x-gzip"),
        (gzip.compress(ONE_IMAGE[:1000]) + gzip.compress(ONE_IMAGE[1000:]), "gzip"),  # two gzip members
        (gzip.compress(ONE_IMAGE) + b"\x00" * 8, "identity, gzip"),  # padding after the member
    ]:
        resp = _predict(srv, body, encoding)
        assert resp.status_code == 200, (encoding, resp.text)
        assert resp.json() == plain.json()


def test_a_zip_bomb_is_cut_off_at_the_limit_with_413(srv: Any) -> None:
    bomb = zlib.compressobj(1, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    body = bomb.compress(b"[" * (64 << 20)) + bomb.flush()  # 64 MiB inflated, ~64 KiB sent
    assert len(body) < LIMIT
    resp = _predict(srv, body)
    assert resp.status_code == 413
    assert "decompressed" in resp.json()["error"] and str(LIMIT) in resp.json()["error"]
    assert _predict(srv, gzip.compress(ONE_IMAGE)).status_code == 200  # and the server is fine


@pytest.mark.parametrize(
    ("body", "encoding", "status", "words"),
    [
        (b"definitely not gzip", "gzip", 400, "not valid gzip"),
        (gzip.compress(ONE_IMAGE)[:-100], "gzip", 400, "truncated"),
        (gzip.compress(ONE_IMAGE) + b"trailing junk", "gzip", 400, "not valid gzip"),
        (b"", "gzip", 400, "empty"),
        (ONE_IMAGE, "br", 415, "not supported"),
        (gzip.compress(gzip.compress(ONE_IMAGE)), "gzip, gzip", 415, "more than once"),
    ],
)
def test_bad_gzip_bodies_say_what_is_wrong(srv: Any, body: bytes, encoding: str, status: int, words: str) -> None:
    resp = _predict(srv, body, encoding)
    assert resp.status_code == status and words in resp.json()["error"], resp.text


def test_the_inflater_never_produces_more_than_the_limit() -> None:
    from deepclf.serving.rest import BodyTooLarge, GzipInflater

    body = gzip.compress(b"\x00" * (8 << 20), compresslevel=1)
    inflater, produced = GzipInflater(1000), 0
    with pytest.raises(BodyTooLarge):
        for i in range(0, len(body), 4096):
            produced += len(inflater.feed(body[i : i + 4096]))
    assert produced <= 1000 and inflater.size <= 1001
    ok = GzipInflater(len(ONE_IMAGE))
    data = gzip.compress(ONE_IMAGE)
    assert b"".join(ok.feed(data[i : i + 7]) for i in range(0, len(data), 7)) == ONE_IMAGE
    ok.finish()


# ------------------------------------------------------------------------------------ deepclf_manifest


def test_grpc_metadata_returns_the_manifest_when_asked(srv: Any, shared_version_dir: Path) -> None:
    labels = Manifest.load(shared_version_dir).labels
    with grpc.insecure_channel(srv.grpc_target) as channel:
        call = P.rpc.unary_unary(channel, P.rpc.GET_MODEL_METADATA)
        resp = call(
            P.GetModelMetadataRequest(model_spec=P.model_spec("flowers"), metadata_field=["deepclf_manifest"]),
            timeout=10,
        )
        assert list(resp.metadata) == ["deepclf_manifest"]
        entry = resp.metadata["deepclf_manifest"]
        assert entry.type_url == "type.googleapis.com/google.protobuf.StringValue"
        text = P.messages.StringValue.FromString(entry.value).value
        assert json.loads(text)["labels"] == labels

        both = call(
            P.GetModelMetadataRequest(
                model_spec=P.model_spec("flowers"), metadata_field=["signature_def", "deepclf_manifest"]
            ),
            timeout=10,
        )
        assert sorted(both.metadata) == ["deepclf_manifest", "signature_def"]
        assert "serving_default" in P.unpack_signature_defs(both).signature_def

        with pytest.raises(grpc.RpcError) as err:
            call(P.GetModelMetadataRequest(model_spec=P.model_spec("flowers"), metadata_field=["nope"]), timeout=10)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        details = err.value.details()
        assert details and "nope is not supported" in details and "deepclf_manifest" in details


def test_rest_metadata_returns_the_manifest_when_asked(srv: Any, shared_version_dir: Path) -> None:
    labels = Manifest.load(shared_version_dir).labels
    base = f"{srv.rest_url}/v1/models/flowers/versions/1/metadata"
    plain = requests.get(base, timeout=10).json()
    assert list(plain["metadata"]) == ["signature_def"]  # TF Serving's answer when no fields are asked for

    only = requests.get(base, params={"fields": "deepclf_manifest"}, timeout=10).json()
    assert list(only["metadata"]) == ["deepclf_manifest"] and only["model_spec"] == plain["model_spec"]
    assert only["metadata"]["deepclf_manifest"]["labels"] == labels

    both = requests.get(base, params={"fields": "signature_def,deepclf_manifest"}, timeout=10).json()
    assert both["metadata"]["signature_def"] == plain["metadata"]["signature_def"]
    assert both["metadata"]["deepclf_manifest"]["labels"] == labels

    bad = requests.get(base, params={"fields": "vocabulary"}, timeout=10)
    assert bad.status_code == 400 and "vocabulary is not supported" in bad.json()["error"]


def test_a_generic_model_has_no_manifest_to_give(tmp_path: Path) -> None:
    from deepclf.serving.core import manifest_json
    from deepclf.serving.models import ServedVersion

    served = ServedVersion(model="half_plus_two", version=1, path=tmp_path, runner=object(), format="tflite-fp32")
    with pytest.raises(P.InvalidInput, match="not a deepclf model"):
        manifest_json(served)


# --------------------------------------------------------------------------------------------------- TLS


def _pem_pair(cn: str = "localhost") -> tuple[bytes, bytes]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return (
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
        cert.public_bytes(serialization.Encoding.PEM),
    )


def _quoted(pem: bytes) -> str:
    return '"' + pem.decode().replace("\n", "\\n") + '"'


def test_ssl_config_text_is_parsed_as_tf_serving_writes_it(tmp_path: Path) -> None:
    from deepclf.serving.tls import load_ssl_config_file, parse_ssl_config

    key, cert = _pem_pair()
    m = parse_ssl_config(
        f"server_key: {_quoted(key)}\nserver_cert: {_quoted(cert)}\ncustom_ca: {_quoted(cert)}\nclient_verify: true\n"
    )
    assert (m.key, m.cert, m.client_ca, m.client_verify, m.mutual) == (key, cert, cert, True, True)
    m.ssl_context()  # the key is the certificate's
    m.grpc_credentials()

    # a deepclf convenience: values that are not PEM text are file names
    (tmp_path / "k.pem").write_bytes(key)
    (tmp_path / "c.pem").write_bytes(cert)
    conf = tmp_path / "ssl.config"
    conf.write_text(f'server_key: "{tmp_path / "k.pem"}"\nserver_cert: "{tmp_path / "c.pem"}"\n')
    m = load_ssl_config_file(conf)
    assert (m.key, m.cert, m.client_ca, m.client_verify) == (key, cert, None, False)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("server_key: 1 2 3", "not a valid TF Serving SSLConfig"),
        ('server_cert: "-----BEGIN CERTIFICATE-----"', "needs both server_key and server_cert"),
        ("unknown_field: true", "not a valid TF Serving SSLConfig"),
    ],
)
def test_bad_ssl_config_text_is_one_clear_error(text: str, words: str) -> None:
    from deepclf.serving.tls import parse_ssl_config

    with pytest.raises(UsageError, match=words):
        parse_ssl_config(text, source="ssl.config")


def test_tls_settings_are_checked(tmp_path: Path, shared_version_dir: Path) -> None:
    from deepclf.serving import EdgeServer, ServerConfig
    from deepclf.serving.tls import TlsMaterial

    key, cert = _pem_pair()
    other_key, _ = _pem_pair()
    with pytest.raises(UsageError, match="client_verify needs a CA"):
        TlsMaterial(key, cert, None, client_verify=True)
    with pytest.raises(UsageError, match="not PEM"):
        TlsMaterial(b"garbage", cert)
    with pytest.raises(UsageError, match="unusable together"):
        TlsMaterial(other_key, cert).ssl_context()

    base: dict[str, Any] = {"model_base_path": str(shared_version_dir.parent), "port": 0, "rest_api_port": None}
    with pytest.raises(UsageError, match="both --ssl_cert and --ssl_key"):
        ServerConfig(**base, ssl_cert="c.pem")
    with pytest.raises(UsageError, match="needs --ssl_cert"):
        ServerConfig(**base, ssl_client_ca="ca.pem")
    with pytest.raises(UsageError, match="not both"):
        ServerConfig(**base, ssl_config_file="ssl.config", ssl_cert="c.pem", ssl_key="k.pem")
    with pytest.raises(UsageError, match="needs certificates"):
        ServerConfig(**base, rest_ssl=True)
    with pytest.raises(UsageError, match="cannot read the --ssl_cert"):
        EdgeServer(ServerConfig(**base, ssl_cert=str(tmp_path / "missing.pem"), ssl_key=key)).start()
    with pytest.raises(UsageError, match="unusable together"):  # refused before any model loads
        EdgeServer(ServerConfig(**base, ssl_cert=cert, ssl_key=other_key)).start()


def test_serve_flags_map_to_the_config() -> None:
    from deepclf.serving.cli import build_serve_args, config_from_args

    cfg = config_from_args(
        build_serve_args(
            [
                "--model_base_path",
                "m",
                "--ssl_cert",
                "c.pem",
                "--ssl_key",
                "k.pem",
                "--ssl_client_ca",
                "ca.pem",
                "--rest_api_ssl",
            ]
        )
    )
    assert (cfg.ssl_cert, cfg.ssl_key, cfg.ssl_client_ca, cfg.rest_ssl, cfg.tls) == (
        "c.pem",
        "k.pem",
        "ca.pem",
        True,
        True,
    )
    cfg = config_from_args(build_serve_args(["--model_base_path", "m", "--ssl_config_file", "ssl.config"]))
    assert (cfg.ssl_config_file, cfg.ssl_cert, cfg.rest_ssl, cfg.tls) == ("ssl.config", None, False, True)
    assert not config_from_args(build_serve_args(["--model_base_path", "m"])).tls

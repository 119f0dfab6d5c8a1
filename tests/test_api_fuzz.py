"""The REST service fuzzed from its own OpenAPI schema (schemathesis) and with generated photo uploads (hypothesis),
against a real `wanderlens serve` process on 127.0.0.1 serving a registered model.

Checks on every response: no 5xx, a status code the route declares, a body and headers valid against the declared
schema, negative (schema-violating) input refused with a 4xx, every error body carrying the request id, and the
admin routes never succeeding without the server's token. `make test` runs a bounded, derandomized profile
(`WANDERLENS_API_FUZZ_EXAMPLES`, default 20 per route and mode, no shrinking); `make fuzz` sets WANDERLENS_FUZZ=1
for the long profile (`WANDERLENS_FUZZ_EXAMPLES`, default 300 per route and mode, random seeds, shrinking). What
the fuzzing found is kept as plain tests in test_serving_hygiene.py.

schemathesis's own pytest loader (`schemathesis.pytest.from_fixture`) does not work with pytest 9 (it sets
`node._nodeid`), so the cases come from `APIOperation.as_strategy` under a plain hypothesis `@given`.
"""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from PIL import Image
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from server_process import ServerProcess

TOKEN = "fuzz-admin-token"
LONG = os.environ.get("WANDERLENS_FUZZ") == "1"
EXAMPLES = int(os.environ.get("WANDERLENS_FUZZ_EXAMPLES", "300")) if LONG else \
    int(os.environ.get("WANDERLENS_API_FUZZ_EXAMPLES", "20"))
# The bounded profile does not shrink (a failure prints the generated case as found; derandomized, it reproduces).
PROFILE = settings(max_examples=EXAMPLES, derandomize=not LONG, deadline=None, database=None,
                   suppress_health_check=list(HealthCheck),
                   phases=list(Phase) if LONG else [Phase.explicit, Phase.generate])
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance, negative_data_rejection]


@pytest.fixture(scope="module")
def fuzz_registry(serving_registry, tmp_path_factory) -> Path:
    """A copy of the test registry: the fuzzed admin routes move its alias, which other tests must not see."""
    out = tmp_path_factory.mktemp("fuzz") / "registry"
    shutil.copytree(serving_registry, out, ignore=shutil.ignore_patterns(".wanderlens.lock*", ".lock"))
    return out


@pytest.fixture(scope="module")
def fuzz_server(fuzz_registry, tmp_path_factory):
    log = tmp_path_factory.mktemp("fuzz-serve") / "server.log"
    with ServerProcess(fuzz_registry, token=TOKEN, log_path=log,
                       extra_args=["--max-mb", "2", "--max-uploads", "64"]) as proc:
        yield proc


def _schema_without_server():
    """The service's OpenAPI schema, known before any server runs (it does not depend on the registry), so each
    route is its own test. Cases are generated from it and sent to the live server."""
    from wanderlens.serving.app import create_app

    loaded = schemathesis.openapi.from_dict(create_app(Path("/nonexistent-registry")).openapi())
    loaded.config.generation.update(max_examples=EXAMPLES, deterministic=not LONG)
    return loaded


SCHEMA = _schema_without_server()
OPERATIONS = [(op.method.upper(), op.path) for op in (r.ok() for r in SCHEMA.get_all_operations())]
MODES = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]


def test_served_schema_is_the_one_fuzzed(fuzz_server):
    served = httpx.get(fuzz_server.url + "/openapi.json", timeout=60).json()
    assert sorted(served["paths"]) == sorted(SCHEMA.raw_schema["paths"])


def _header(response, name: str) -> str:
    """One response header of a schemathesis response (whose header values are lists)."""
    value = response.headers.get(name) or response.headers.get(name.lower()) or [""]
    return value[0] if isinstance(value, list) else value


def _check_error_body(response) -> None:
    """Every error answers JSON with the request id the response header carries."""
    rid = _header(response, "x-request-id")
    assert rid, "no X-Request-ID header"
    if response.status_code >= 400 and _header(response, "content-type").startswith("application/json"):
        body = response.json()
        assert body.get("request_id") == rid, body


def _fuzz(method: str, path: str, mode: GenerationMode, check) -> None:
    """Generate cases for one route in one mode (hypothesis, seeded in `make test`) and `check` each."""
    strategy = SCHEMA[path][method].as_strategy(generation_mode=mode)

    @given(case=strategy)
    @PROFILE
    def run(case) -> None:
        check(case)

    run()


def _takes_input(method: str, path: str) -> bool:
    """Whether a route has anything a client can get wrong (parameters, a body or credentials)."""
    op = SCHEMA.raw_schema["paths"][path][method.lower()]
    return bool(op.get("parameters") or op.get("requestBody") or op.get("security"))


# Negative cases only for routes with input: a route without any (GET /healthz) cannot be sent invalid input.
CASES = [(m, p, mode) for m, p in OPERATIONS for mode in MODES
         if mode is GenerationMode.POSITIVE or _takes_input(m, p)]


@pytest.mark.parametrize(("method", "path", "mode"), CASES, ids=[f"{m} {p}-{mode.value}" for m, p, mode in CASES])
def test_api_from_schema(fuzz_server, method, path, mode):
    """Every route with generated path/query parameters, headers and bodies (valid and invalid), no admin token."""

    def check(case) -> None:
        response = case.call(base_url=fuzz_server.url, timeout=120)
        case.validate_response(response, checks=CHECKS if mode is GenerationMode.NEGATIVE else CHECKS[:-1])
        _check_error_body(response)
        if path.startswith("/v1/admin"):
            sent = response.request.headers.get("authorization", "")
            assert sent != f"Bearer {TOKEN}"
            assert response.status_code in (401, 403, 413), (path, response.status_code, sent)

    _fuzz(method, path, mode, check)


ADMIN = [(m, p) for m, p in OPERATIONS if p.startswith("/v1/admin")]


@pytest.mark.parametrize("mode", MODES, ids=lambda m: m.value)
@pytest.mark.parametrize(("method", "path"), ADMIN, ids=[f"{m} {p}" for m, p in ADMIN])
def test_admin_api_with_token_from_schema(fuzz_server, method, path, mode):
    """The admin routes past the token check: generated promote bodies answer a declared code, never 5xx."""

    def check(case) -> None:
        response = case.call(base_url=fuzz_server.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=120)
        case.validate_response(response, checks=CHECKS[:-1])
        _check_error_body(response)

    _fuzz(method, path, mode, check)


# -- generated uploads ------------------------------------------------------------------------------------------------
def _image(draw, fmt: str) -> bytes:
    w, h = draw(st.integers(1, 96)), draw(st.integers(1, 96))
    mode = draw(st.sampled_from(["RGB", "L", "RGBA", "P", "1"] if fmt in ("PNG", "GIF") else ["RGB", "L"]))
    buf = io.BytesIO()
    Image.new(mode, (w, h), draw(st.integers(0, 255))).save(buf, format=fmt)
    return buf.getvalue()


@st.composite
def photos(draw) -> bytes:
    """Random bytes, real images of random size/mode/format, truncations of them, and a magic number + garbage."""
    kind = draw(st.sampled_from(["bytes", "image", "truncated", "magic"]))
    if kind == "bytes":
        return draw(st.binary(max_size=4096))
    data = _image(draw, draw(st.sampled_from(["JPEG", "PNG", "GIF", "BMP", "WEBP"])))
    if kind == "truncated":
        return data[:draw(st.integers(0, max(len(data) - 1, 0)))]
    if kind == "magic":
        return draw(st.sampled_from([b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF89a", b"BM", b"RIFF\0\0\0\0WEBP"])) \
            + draw(st.binary(max_size=512))
    return data


texts = st.one_of(st.none(), st.text(max_size=300), st.text(min_size=1900, max_size=2100),
                  st.just("é" * 2500), st.just("\U0001f30d;" * 70))
request_ids = st.one_of(st.none(), st.text(max_size=200).filter(lambda t: "\n" not in t and "\r" not in t))


@given(photo=photos(), caption=texts, tags=texts, filename=st.text(max_size=100), request_id=request_ids)
@PROFILE
def test_describe_with_generated_uploads(fuzz_server, photo, caption, tags, filename, request_id):
    """POST /v1/describe with generated photos, captions, tags, file names and X-Request-ID: 200 or a declared
    4xx with one message naming the field; never 5xx; the request id comes back."""
    data = {k: v for k, v in (("caption", caption), ("tags", tags)) if v is not None}
    headers = {}
    if request_id is not None:
        try:
            request_id.encode("ascii")  # what an HTTP client can send
            headers["X-Request-ID"] = request_id
        except UnicodeEncodeError:
            pass
    with httpx.Client(base_url=fuzz_server.url, timeout=120) as c:
        r = c.post("/v1/describe", files={"photo": (filename or "p", photo, "application/octet-stream")}, data=data,
                   headers=headers)
    assert r.status_code in (200, 413, 415, 422), (r.status_code, r.text[:300])
    rid = r.headers["x-request-id"]
    if request_id and headers and request_id == rid:
        assert len(rid) <= 128
    body = r.json()
    if r.status_code == 200:
        assert body["description"] and body["model_version"] in (1, 2)
    else:
        assert body["request_id"] == rid and body["detail"]

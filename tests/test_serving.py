"""The HTTP service: every endpoint, upload limits, error responses, worker pool and /metrics.

Requests go through FastAPI's TestClient (in process, no sockets); the model is the trained
bundle of the ``trained_models`` fixture and the audio is generated.
"""

from __future__ import annotations

import io
import threading
import time

import numpy as np
import pytest

pytest.importorskip("fastapi", reason="serving needs the 'serve' extra")
pytest.importorskip("multipart", reason="serving needs python-multipart")

from fastapi.testclient import TestClient  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from vibe_check.data import make_noise, make_tone, synthesize_utterance  # noqa: E402
from vibe_check.models._custom import CustomEmotionModel  # noqa: E402
from vibe_check.serving import ServeSettings, create_app  # noqa: E402

SR = 16000
MAX_SECONDS = 6.0
MAX_BYTES = 400_000  # > a 6 s 16-bit clip (192 kB), so only the too-long test trips the duration limit


def wav_bytes(y: np.ndarray, sr: int = SR) -> bytes:
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, y, sr, format="WAV", subtype="PCM_16")
    return buf.getvalue()


@pytest.fixture(scope="module")
def model(trained_models) -> CustomEmotionModel:
    return CustomEmotionModel(trained_models["best"])


@pytest.fixture(scope="module")
def clips() -> dict[str, bytes]:
    """Good and bad uploads, as the bytes a client would send."""
    return {
        "angry": wav_bytes(synthesize_utterance("angry", speaker=2, seed=11)),
        "sad": wav_bytes(synthesize_utterance("sad", speaker=3, seed=12)),
        "stereo_22k": wav_bytes(np.stack([synthesize_utterance("happy", sr=22050, seed=13, duration=3.0)] * 2, axis=1), sr=22050),
        "silence": wav_bytes(np.zeros(SR * 2, dtype=np.float32)),
        "too_long": wav_bytes(make_noise(duration=MAX_SECONDS + 2, amplitude=0.05)),
        "not_audio": b"this is a text file, not audio\n" * 20,
        "truncated": wav_bytes(make_tone(duration=1.0))[:30],
        "empty": b"",
    }


def make_settings(**changes) -> ServeSettings:
    base = dict(max_audio_seconds=MAX_SECONDS, max_upload_bytes=MAX_BYTES, workers=2, queue_size=4, max_batch_files=4,
                request_timeout_s=20.0)
    return ServeSettings(**{**base, **changes})


@pytest.fixture(scope="module")
def client(model):
    app = create_app(model, settings=make_settings())
    with TestClient(app) as c:
        yield c


def metric_samples(client) -> dict[tuple, float]:
    """``/metrics`` parsed: (sample name, sorted label items) -> value."""
    response = client.get("/metrics")
    assert response.status_code == 200
    out = {}
    for family in text_string_to_metric_families(response.text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def sample(samples: dict, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def total(samples: dict, name: str, **labels) -> float:
    """Sum over the samples of ``name`` whose labels include ``labels``."""
    return sum(v for (n, lab), v in samples.items() if n == name and all(dict(lab).get(k) == w for k, w in labels.items()))


def assert_error(response, status: int, error_type: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and body["error"]["type"] == error_type, body
    assert isinstance(body["error"]["message"], str) and len(body["error"]["message"]) > 10
    return body["error"]


def check_result(result: dict, model) -> None:
    assert result["emotion"] in model.classes_
    assert set(result["probabilities"]) == set(model.classes_)
    assert sum(result["probabilities"].values()) == pytest.approx(1.0, abs=1e-6)
    assert result["confidence"] == pytest.approx(max(result["probabilities"].values()))
    assert result["probabilities"][result["emotion"]] == result["confidence"]
    assert 2.0 < result["duration_s"] < MAX_SECONDS and 0 < result["speech_duration_s"] <= result["duration_s"]


class _Proxy:
    """A model that behaves like ``model`` except for the attributes given (``None`` hides one)."""

    def __init__(self, model, **overrides):
        self._model = model
        self._overrides = overrides

    def __getattr__(self, name):
        if name in self._overrides:
            if self._overrides[name] is None:
                raise AttributeError(name)
            return self._overrides[name]
        return getattr(self._model, name)


# -- endpoints ----------------------------------------------------------------------------------
def test_healthz(client):
    r = client.get("/healthz")
    assert r.status_code == 200 and r.json()["status"] == "ok"


def test_probes_and_the_page_answer_head_requests(client):
    """Uptime probes and ``curl -I`` send HEAD: the same status and headers as GET, no body."""
    from vibe_check.serving._app import STATIC_DIR

    paths = ["/healthz", "/readyz"] + (["/"] if (STATIC_DIR / "index.html").is_file() else [])
    for path in paths:
        head, get = client.head(path), client.get(path)
        assert head.status_code == get.status_code == 200, path
        assert head.headers["content-type"] == get.headers["content-type"] and head.content == b"", path


def test_readyz_before_and_after_loading(trained_models, ready_client):
    app = create_app(trained_models["best"], settings=make_settings())
    idle = TestClient(app)  # no lifespan yet: nothing has started loading the bundle
    assert_error(idle.get("/readyz"), 503, "ModelNotReadyError")
    assert_error(idle.post("/predict", content=b"x", headers={"content-type": "audio/wav"}), 503, "ModelNotReadyError")
    assert idle.get("/healthz").status_code == 200  # alive but not ready
    c = ready_client(app)
    r = c.get("/readyz")
    assert r.status_code == 200 and r.json() == {"status": "ready", "model": app.state.service.model.name}
    assert c.get("/model").status_code == 200


def test_readyz_reports_a_bundle_that_fails_to_load(tmp_path):
    app = create_app(tmp_path / "missing_model.pkl", settings=make_settings())
    with TestClient(app) as c:
        deadline = time.monotonic() + 10
        while app.state.service.load_error is None and time.monotonic() < deadline:
            time.sleep(0.02)
        error = assert_error(c.get("/readyz"), 503, "ModelNotReadyError")
        assert "failed to load" in error["message"] and "missing_model.pkl" in error["message"]
        assert c.get("/healthz").status_code == 200


def test_predict_multipart(client, clips, model):
    r = client.post("/predict", files={"file": ("angry.wav", clips["angry"], "audio/wav")})
    assert r.status_code == 200, r.text
    check_result(r.json(), model)
    assert "explanation" not in r.json()


def test_predict_raw_body_matches_multipart(client, clips, model):
    multipart = client.post("/predict", files={"file": ("sad.wav", clips["sad"], "audio/wav")}).json()
    for content_type in ("audio/wav", "application/octet-stream", "audio/x-wav; codecs=1"):
        r = client.post("/predict", content=clips["sad"], headers={"content-type": content_type})
        assert r.status_code == 200, (content_type, r.text)
        assert r.json() == multipart  # the same bytes give the same answer whatever the transport


def test_predict_resamples_and_downmixes(client, clips, model):
    r = client.post("/predict", content=clips["stereo_22k"], headers={"content-type": "audio/wav"})
    assert r.status_code == 200, r.text
    check_result(r.json(), model)


def test_model_endpoint(client, model):
    r = client.get("/model")
    assert r.status_code == 200
    info = r.json()
    meta = model.metadata
    assert info["name"] == model.name and info["task"] == meta["task"] == "emotion"
    assert info["classes"] == list(model.classes_) and info["feature_hash"] == meta["feature_hash"]
    assert info["cv"]["macro_f1"]["mean"] == pytest.approx(meta["cv"]["summary"]["macro_f1"]["mean"])
    assert info["cv"]["n_folds"] == 3
    assert info["versions"]["vibe_check"] and info["versions"]["scikit-learn"] and info["created_at"]
    assert "path" not in info  # the server's file layout is not the client's business
    assert info["speaker_normalized"] is False and "min_reference_clips" not in info  # clips are classified on their own


def test_model_endpoint_names_the_bundle_file_and_flags_generated_speech(client, model):
    """The page's "Bundle" row shows the file's name (not the server's path); a bundle trained on the
    demo's generated speech says so, so the page can warn that its predictions mean little."""
    from vibe_check.data import GENERATED_SOURCE

    info = client.get("/model").json()
    assert info["bundle"] == model.path.name == "best_emotion_model.pkl"
    assert info["trained_on_generated_speech"] is False  # the fixture's bundles record no data source
    demo = _Proxy(model, metadata={**model.metadata, "data_source": GENERATED_SOURCE})
    with TestClient(create_app(demo, settings=make_settings(drift=False))) as c:
        info = c.get("/model").json()
    assert info["trained_on_generated_speech"] is True and info["bundle"] == model.path.name


def test_metrics_export_the_class_count_and_resolve_studio_snr(client, model):
    """``vibe_check_model_classes`` lets the confidence-collapse alert compare with chance; the SNR
    histogram resolves studio clips (83-94 dB) instead of piling them into its top bucket."""
    import bisect

    from vibe_check.serving._metrics import SNR_BUCKETS

    samples = metric_samples(client)
    assert sample(samples, "vibe_check_model_classes") == len(model.classes_) == 8
    bounds = sorted(float(dict(lab)["le"]) for (n, lab), _ in samples.items() if n == "vibe_check_input_snr_db_bucket")
    assert bounds[-1] == float("inf") and bounds[-2] >= 120
    buckets = [bisect.bisect_left(SNR_BUCKETS, db) for db in (83, 88, 94)]
    assert max(buckets) < len(SNR_BUCKETS) and len(set(buckets)) == 3, "studio SNRs must land in distinct, finite buckets"


def test_metrics_endpoint_content_type(client):
    r = client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain") and "version=" in r.headers["content-type"]
    names = {f.name for f in text_string_to_metric_families(r.text)}
    for name in ("vibe_check_requests", "vibe_check_errors", "vibe_check_latency_seconds", "vibe_check_prediction_confidence",
                 "vibe_check_predictions", "vibe_check_audio_seconds", "vibe_check_in_flight_requests", "vibe_check_model_info",
                 "vibe_check_worker_slots", "vibe_check_worker_slots_used"):
        assert name in names, name


def test_root_is_left_to_the_web_page(client):
    from vibe_check.serving._app import STATIC_DIR

    r = client.get("/")
    if (STATIC_DIR / "index.html").is_file():
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    else:
        assert_error(r, 404, "NotFoundError")
    # httpx would resolve a literal "/static/../_app.py" before sending it; encoded dots reach the route.
    assert_error(client.get("/static/%2e%2e/_app.py"), 404, "NotFoundError")
    from starlette.exceptions import HTTPException

    from vibe_check.serving._app import _static_file

    for escape in ("../_app.py", "../../setup.cfg", "/etc/passwd"):
        with pytest.raises(HTTPException) as err:
            _static_file(escape)
        assert err.value.status_code == 404


# -- explanations -------------------------------------------------------------------------------
def test_explain_without_an_explainer_is_501(model, clips):
    app = create_app(_Proxy(model, explain_rows=None), settings=make_settings())
    with TestClient(app) as c:
        error = assert_error(c.post("/predict?explain=true", content=clips["angry"], headers={"content-type": "audio/wav"}),
                             501, "ExplainUnavailableError")
        assert "explain" in error["message"]
        assert_error(c.post("/predict", files={"file": ("a.wav", clips["angry"])}, data={"explain": "yes"}),
                     501, "ExplainUnavailableError")
        assert c.post("/predict?explain=false", content=clips["angry"], headers={"content-type": "audio/wav"}).status_code == 200
        assert c.get("/model").json()["explainable"] is False


def test_explain_flag_returns_reasons(client, clips, model):
    r = client.post("/predict?explain=true&top_k=3", content=clips["angry"], headers={"content-type": "audio/wav"})
    assert r.status_code == 200, r.text
    body = r.json()
    check_result(body, model)
    explanation = body["explanation"]
    assert explanation["predicted"] == body["emotion"]  # the reasons explain this prediction
    assert 0 < len(explanation["towards"]) + len(explanation["away"]) <= 6
    assert all(isinstance(item["sentence"], str) for item in explanation["towards"])
    r2 = client.post("/predict", files={"file": ("a.wav", clips["angry"])}, data={"explain": "true"})
    assert r2.status_code == 200 and "explanation" in r2.json()
    assert sample(metric_samples(client), "vibe_check_latency_seconds_count", stage="explain") >= 2


def test_a_failed_explanation_still_returns_the_prediction(model, clips):
    from vibe_check.explain._shap import ExplanationError

    def explain_rows(rows, info, top_k=5, proba=None):
        raise ExplanationError("need background rows or feature statistics")

    app = create_app(_Proxy(model, explain_rows=explain_rows), settings=make_settings())
    with TestClient(app) as c:
        r = c.post("/predict?explain=true", content=clips["angry"], headers={"content-type": "audio/wav"})
        assert r.status_code == 200, r.text  # not a 422 blaming the audio
        body = r.json()
        check_result({k: v for k, v in body.items() if not k.startswith("explanation")}, model)
        assert body["explanation"] is None and "need background rows" in body["explanation_error"]


def test_explain_gets_the_classified_rows_without_a_second_extraction(model, clips):
    calls, extractions = [], []

    def clip_rows(y):
        extractions.append(y.size)
        return model.clip_rows(y)

    def explain_rows(rows, info, top_k=5, proba=None):
        calls.append((rows, info, top_k, proba))
        return {"reasons": [{"feature": "f0_std", "shap": np.float32(0.5)}][:top_k], "odd": float("nan")}

    app = create_app(_Proxy(model, clip_rows=clip_rows, explain_rows=explain_rows), settings=make_settings())
    with TestClient(app) as c:
        r = c.post("/predict?explain=1&top_k=2", content=clips["angry"], headers={"content-type": "audio/wav"})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["explanation"] == {"reasons": [{"feature": "f0_std", "shap": 0.5}], "odd": None}
        y = model.decode(clips["angry"])
        # the clip was extracted once (the warm-up, in the background, extracts a generated second)
        assert extractions.count(y.size) == 1
        rows, info, top_k, proba = next(call for call in calls if call[1].duration_s == pytest.approx(body["duration_s"]))
        expected_rows, _ = model.clip_rows(y)
        np.testing.assert_allclose(rows, expected_rows)
        assert top_k == 2
        assert dict(zip(model.classes_, proba)) == pytest.approx(body["probabilities"])  # what the answer was made of
        assert_error(c.post("/predict?explain=true&top_k=0", content=clips["angry"], headers={"content-type": "audio/wav"}),
                     422, "RequestValidationError")


# -- batch --------------------------------------------------------------------------------------
def test_batch_with_bad_items(client, clips, model):
    before = metric_samples(client)
    files = [("files", ("angry.wav", clips["angry"], "audio/wav")), ("files", ("notes.txt", clips["not_audio"], "text/plain")),
             ("files", ("sad.wav", clips["sad"], "audio/wav")), ("files", ("silence.wav", clips["silence"], "audio/wav"))]
    r = client.post("/predict/batch", files=files)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["n_ok"], body["n_errors"]) == (2, 2)
    results = body["results"]
    assert [item["filename"] for item in results] == ["angry.wav", "notes.txt", "sad.wav", "silence.wav"]
    assert [item["index"] for item in results] == [0, 1, 2, 3]
    check_result(results[0], model)
    check_result(results[2], model)
    assert results[1]["error"]["type"] == "AudioDecodeError" and results[3]["error"]["type"] == "NoSpeechError"
    single = client.post("/predict", content=clips["sad"], headers={"content-type": "audio/wav"}).json()
    assert {k: v for k, v in results[2].items() if k not in ("index", "filename")} == single
    after = metric_samples(client)
    for error_type in ("AudioDecodeError", "NoSpeechError"):
        assert sample(after, "vibe_check_item_errors_total", endpoint="/predict/batch", error_type=error_type) == \
            sample(before, "vibe_check_item_errors_total", endpoint="/predict/batch", error_type=error_type) + 1
    # The request itself succeeded: a bad clip in a batch is not a failed request (the error-rate alert).
    assert sample(after, "vibe_check_errors_total", endpoint="/predict/batch", error_type="AudioDecodeError") == \
        sample(before, "vibe_check_errors_total", endpoint="/predict/batch", error_type="AudioDecodeError")


def test_batch_limits(client, clips):
    assert_error(client.post("/predict/batch", content=clips["angry"], headers={"content-type": "audio/wav"}),
                 415, "UnsupportedMediaTypeError")
    assert_error(client.post("/predict/batch", files=[("other", ("a.wav", clips["angry"]))]), 400, "BadRequestError")
    five = [("files", (f"{i}.wav", clips["angry"])) for i in range(5)]  # max_batch_files is 4
    assert_error(client.post("/predict/batch", files=five), 400, "BadRequestError")
    # A body over the batch limit is refused with the batch's own limit in the message.
    huge = [("files", (f"{i}.wav", b"\0" * MAX_BYTES)) for i in range(5)]
    error = assert_error(client.post("/predict/batch", files=huge), 413, "UploadTooLargeError")
    assert "for several files" in error["message"] and "at most 4 files" in error["message"]


# -- limits and bad input -----------------------------------------------------------------------
def test_oversized_upload_is_413(client):
    big = b"\0" * (MAX_BYTES + 100_000)
    error = assert_error(client.post("/predict", content=big, headers={"content-type": "audio/wav"}), 413, "UploadTooLargeError")
    assert str(MAX_BYTES) in error["message"]
    assert_error(client.post("/predict", files={"file": ("big.wav", big, "audio/wav")}), 413, "UploadTooLargeError")
    # Just over the limit: within the body's allowance for multipart overhead, still refused.
    just_over = b"\0" * (MAX_BYTES + 1000)
    assert_error(client.post("/predict", files={"file": ("big.wav", just_over, "audio/wav")}), 413, "UploadTooLargeError")


def test_oversized_upload_without_length_is_cut_while_reading(client):
    chunks = (b"\0" * 65536 for _ in range(12))  # chunked transfer: no Content-Length to check up front
    assert_error(client.post("/predict", content=chunks, headers={"content-type": "audio/wav"}), 413, "UploadTooLargeError")


def test_too_long_audio_is_422(client, clips):
    error = assert_error(client.post("/predict", content=clips["too_long"], headers={"content-type": "audio/wav"}),
                         422, "AudioTooLongError")
    assert f"{MAX_SECONDS:g} s" in error["message"]


@pytest.mark.parametrize("name, error_type", [("silence", "NoSpeechError"), ("not_audio", "AudioDecodeError"),
                                              ("truncated", "AudioDecodeError"), ("empty", "EmptyAudioError")])
def test_bad_audio_is_422(client, clips, name, error_type):
    assert_error(client.post("/predict", content=clips[name], headers={"content-type": "audio/wav"}), 422, error_type)
    assert_error(client.post("/predict", files={"file": (f"{name}.wav", clips[name], "audio/wav")}), 422, error_type)


def test_wrong_content_type_and_missing_file(client, clips):
    assert_error(client.post("/predict", content=clips["angry"], headers={"content-type": "text/plain"}), 415,
                 "UnsupportedMediaTypeError")
    assert_error(client.post("/predict", json={"file": "angry.wav"}), 415, "UnsupportedMediaTypeError")
    assert_error(client.post("/predict", files={"upload": ("a.wav", clips["angry"])}), 400, "BadRequestError")
    assert_error(client.post("/predict", data={"file": "not a file"}, files={"x": ("x", b"x")}), 400, "BadRequestError")


def test_malformed_requests_never_crash(client, clips, model):
    rng = np.random.default_rng(0)
    bad = [
        lambda: client.post("/predict", content=rng.bytes(5000), headers={"content-type": "audio/wav"}),
        lambda: client.post("/predict", content=b"RIFF\xff\xff\xff\xffWAVEfmt garbage", headers={"content-type": "audio/wav"}),
        lambda: client.post("/predict", content=b"--xx\r\nbroken", headers={"content-type": "multipart/form-data; boundary=xx"}),
        lambda: client.post("/predict", content=b"data", headers={"content-type": "multipart/form-data"}),  # no boundary
        lambda: client.post("/predict?top_k=many", content=clips["angry"], headers={"content-type": "audio/wav"}),
        lambda: client.post("/predict", content=b"\0" * 10, headers={"content-type": "audio/wav", "content-length": "abc"}),
        lambda: client.get("/predict"),
        lambda: client.put("/predict/batch", content=b"x"),
        lambda: client.get("/no/such/path/" + "x" * 200),
    ]
    for attempt in bad:
        r = attempt()
        assert 400 <= r.status_code < 500, (r.status_code, r.text)
        assert "error" in r.json()
    # The service still answers good requests, identically, after all of that.
    for _ in range(2):
        r = client.post("/predict", content=clips["angry"], headers={"content-type": "audio/wav"})
        assert r.status_code == 200
        check_result(r.json(), model)
    samples = metric_samples(client)
    assert sample(samples, "vibe_check_requests_total", endpoint="unmatched", method="GET", status="404") >= 1
    assert not any(dict(lab).get("endpoint", "").startswith("/no/") for _, lab in samples)  # bounded labels


def test_client_leaving_mid_upload_is_counted_not_answered(model):
    import asyncio

    app = create_app(model, settings=make_settings())
    incoming = [{"type": "http.request", "body": b"RIFF\x00\x01", "more_body": True}, {"type": "http.disconnect"}]
    sent = []

    async def receive():
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/predict", "raw_path": b"/predict", "query_string": b"", "root_path": "",
             "headers": [(b"content-type", b"audio/wav")], "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 80)}
    asyncio.run(app(scope, receive, send))
    assert sent == []  # nobody left to answer
    registry = app.state.metrics.registry
    assert registry.get_sample_value("vibe_check_requests_total", {"endpoint": "/predict", "method": "POST", "status": "499"}) == 1
    assert registry.get_sample_value("vibe_check_errors_total", {"endpoint": "/predict", "error_type": "ClientDisconnect"}) == 1
    assert registry.get_sample_value("vibe_check_in_flight_requests") == 0


def test_unexpected_exception_is_500_and_counted(model, clips):
    def broken(rows):
        raise RuntimeError("boom")

    app = create_app(_Proxy(model, clip_proba=broken), settings=make_settings())
    with TestClient(app, raise_server_exceptions=False) as c:
        for _ in range(2):
            error = assert_error(c.post("/predict", content=clips["angry"], headers={"content-type": "audio/wav"}),
                                 500, "InternalServerError")
            assert "RuntimeError" in error["message"] and "boom" not in error["message"]  # no internals leaked
        r = c.post("/predict/batch", files=[("files", ("a.wav", clips["angry"]))])
        assert r.status_code == 200 and r.json()["results"][0]["error"]["type"] == "RuntimeError"
        assert c.get("/healthz").status_code == 200
        samples = metric_samples(c)
        assert sample(samples, "vibe_check_errors_total", endpoint="/predict", error_type="RuntimeError") == 2
        assert sample(samples, "vibe_check_requests_total", endpoint="/predict", method="POST", status="500") == 2


def test_saturated_pool_is_503_and_recovers(model, clips):
    release = threading.Event()
    entered = threading.Event()

    def slow_features(y):
        # Only requests block: the start-up warm-up thread also extracts features, and when it got
        # here first (on a loaded machine) the test saw an empty pool.
        if threading.current_thread().name.startswith("vibe-check-worker"):
            entered.set()
            release.wait(10)
        return model.clip_rows(y)

    app = create_app(_Proxy(model, clip_rows=slow_features), settings=make_settings(workers=1, queue_size=0))
    with TestClient(app) as c:
        first = {}
        worker = threading.Thread(target=lambda: first.update(r=c.post("/predict", content=clips["angry"],
                                                                        headers={"content-type": "audio/wav"})))
        worker.start()
        try:
            assert entered.wait(10)
            assert sample(metric_samples(c), "vibe_check_worker_slots_used") == 1
            error = assert_error(c.post("/predict", content=clips["sad"], headers={"content-type": "audio/wav"}),
                                 503, "ServiceBusyError")
            assert "busy" in error["message"]
        finally:
            release.set()
            worker.join(15)
        assert first["r"].status_code == 200
        assert c.post("/predict", content=clips["sad"], headers={"content-type": "audio/wav"}).status_code == 200
        samples = metric_samples(c)
        assert sample(samples, "vibe_check_worker_slots_used") == 0 and sample(samples, "vibe_check_worker_slots") == 1
        assert sample(samples, "vibe_check_errors_total", endpoint="/predict", error_type="ServiceBusyError") == 1


def test_uploads_received_at_once_are_bounded(model, clips):
    # Bodies are read into memory before a worker takes them: at most workers + queue_size at once.
    import asyncio

    app = create_app(model, settings=make_settings(workers=1, queue_size=1))
    with TestClient(app) as c:
        assert app.state.upload_slots._value == 2
        app.state.upload_slots = asyncio.Semaphore(0)  # as if two uploads were still streaming in
        for files in ([("file", ("a.wav", clips["angry"]))], [("files", ("a.wav", clips["angry"]))]):
            endpoint = "/predict" if files[0][0] == "file" else "/predict/batch"
            error = assert_error(c.post(endpoint, files=files), 503, "ServiceBusyError")
            assert "2 uploads are being received already" in error["message"]
        app.state.upload_slots = asyncio.Semaphore(2)
        assert c.post("/predict", files=[("file", ("a.wav", clips["angry"]))]).status_code == 200


def test_slow_prediction_is_504(model, clips):
    def slow_features(y):
        time.sleep(0.6)
        return model.clip_rows(y)

    app = create_app(_Proxy(model, clip_rows=slow_features), settings=make_settings(request_timeout_s=0.2))
    with TestClient(app) as c:
        error = assert_error(c.post("/predict", content=clips["angry"], headers={"content-type": "audio/wav"}),
                             504, "RequestTimeoutError")
        assert "0.2 s" in error["message"]
        deadline = time.monotonic() + 5  # the abandoned job still holds its slot until it ends
        while sample(metric_samples(c), "vibe_check_worker_slots_used") > 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sample(metric_samples(c), "vibe_check_worker_slots_used") == 0


# -- metrics ------------------------------------------------------------------------------------
def test_metrics_count_requests_stages_and_predictions(client, clips, model):
    before = metric_samples(client)
    emotions = []
    for name in ("angry", "sad", "angry"):
        r = client.post("/predict", content=clips[name], headers={"content-type": "audio/wav"})
        emotions.append(r.json()["emotion"])
    client.post("/predict", content=clips["not_audio"], headers={"content-type": "audio/wav"})
    after = metric_samples(client)

    def delta(name, **labels):
        return total(after, name, **labels) - total(before, name, **labels)

    assert delta("vibe_check_requests_total", endpoint="/predict", method="POST", status="200") == 3
    assert delta("vibe_check_requests_total", endpoint="/predict", method="POST", status="422") == 1
    assert delta("vibe_check_errors_total", endpoint="/predict", error_type="AudioDecodeError") == 1
    for emotion in set(emotions):
        assert delta("vibe_check_predictions_total", emotion=emotion) == emotions.count(emotion)
    assert delta("vibe_check_predictions_total") == 3
    assert delta("vibe_check_prediction_confidence_count") == 3
    assert 6.0 < delta("vibe_check_audio_seconds_total") < 15.0  # three clips of about 3 s
    assert delta("vibe_check_latency_seconds_count", stage="decode") == 4  # failed decodes are timed too
    assert delta("vibe_check_latency_seconds_count", stage="features") == 3
    assert delta("vibe_check_latency_seconds_count", stage="model") == 3
    assert delta("vibe_check_latency_seconds_count", stage="end_to_end") == 4
    for stage in ("decode", "features", "model", "explain", "end_to_end"):
        for le in ("0.005", "0.1", "10.0", "+Inf"):
            assert ("vibe_check_latency_seconds_bucket", tuple(sorted({"stage": stage, "le": le}.items()))) in after
    assert sample(after, "vibe_check_latency_seconds_bucket", stage="end_to_end", le="+Inf") == \
        sample(after, "vibe_check_latency_seconds_count", stage="end_to_end")
    assert sample(after, "vibe_check_prediction_confidence_bucket", le="1.0") == sample(after, "vibe_check_prediction_confidence_count")
    for emotion in model.classes_:  # every class is exported from the start, at 0 if never predicted
        assert ("vibe_check_predictions_total", (("emotion", emotion),)) in after
    assert sample(after, "vibe_check_in_flight_requests") == 0
    info = {dict(lab)["model"]: (dict(lab), v) for (n, lab), v in after.items() if n == "vibe_check_model_info"}
    from vibe_check import __version__

    assert info == {model.name: ({"model": model.name, "task": "emotion", "feature_hash": model.metadata["feature_hash"],
                                  "version": __version__}, 1.0)}


# -- settings and command line ------------------------------------------------------------------
def test_settings_validate_and_read_the_environment():
    with pytest.raises(ValueError, match="workers"):
        ServeSettings(workers=0)
    with pytest.raises(ValueError, match="max_audio_seconds"):
        ServeSettings(max_audio_seconds=0)
    s = ServeSettings.from_env({"VIBE_CHECK_WORKERS": "3", "VIBE_CHECK_MAX_AUDIO_SECONDS": "12.5", "OTHER": "x"})
    assert (s.workers, s.max_audio_seconds, s.host) == (3, 12.5, "127.0.0.1")
    with pytest.raises(ValueError, match="VIBE_CHECK_PORT"):
        ServeSettings.from_env({"VIBE_CHECK_PORT": "eighty"})
    assert s.with_overrides(port=None, workers=1).workers == 1 and s.max_in_flight == 3 + s.queue_size


def test_serve_command(tmp_path, capsys, monkeypatch):
    from vibe_check.cli import build_parser, main

    args = build_parser().parse_args(["serve", "--model", "m.pkl", "--port", "9001", "--max-upload-mb", "2", "--timeout", "5"])
    from vibe_check.serving._cli import settings_from_args

    monkeypatch.delenv("VIBE_CHECK_WORKERS", raising=False)
    s = settings_from_args(args)
    assert (s.host, s.port, s.max_upload_bytes, s.request_timeout_s) == ("127.0.0.1", 9001, 2 * 1024 * 1024, 5.0)
    assert main(["serve", "--model", str(tmp_path / "nope.pkl")]) == 1
    assert "cannot serve" in capsys.readouterr().err

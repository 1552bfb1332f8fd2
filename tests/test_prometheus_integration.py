"""Observability end to end: a real Prometheus scrapes a real service, and every query of the
Grafana dashboard returns data. Also the static checks of the dashboard and configs, and the
training-metrics export.

The live test needs Debian's ``prometheus`` binary (``.ci/install-system-deps.sh``) and is skipped
with a reason without it. Everything listens on 127.0.0.1 only; every wait is bounded.
"""

from __future__ import annotations

import io
import json
import math
import re
import shutil
import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import numpy as np
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[1]
DASHBOARD = ROOT / "utils" / "grafana" / "vibe-check-dashboard.json"
PROVISIONING = ROOT / "utils" / "grafana" / "provisioning"
PROMETHEUS_YML = ROOT / "utils" / "prometheus" / "prometheus.yml"
#: Concrete values for Grafana's built-in variables when a query runs outside Grafana.
BUILTIN_VARIABLES = {"__rate_interval": "30s", "__interval": "5s", "__range": "5m", "__range_s": "300"}
SCRAPE_INTERVAL_S = 1


# -- helpers ------------------------------------------------------------------------------------
def load_dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def all_panels(dashboard: dict) -> list[dict]:
    """Every panel, including those nested in collapsed rows."""
    out = []
    for p in dashboard["panels"]:
        out.append(p)
        out.extend(p.get("panels", []))
    return out


def dashboard_queries(dashboard: dict) -> list[tuple[str, str]]:
    """``(panel title, expr)`` of every target of every panel."""
    return [(p["title"], t["expr"]) for p in all_panels(dashboard) for t in p.get("targets", []) if t.get("expr")]


def substitute(expr: str, dashboard: dict) -> str:
    """Replace template variables (``$model``, ``${instance}``, ``$__rate_interval``) by values that
    select everything, as Grafana does with "All"."""
    values = dict(BUILTIN_VARIABLES)
    for var in dashboard["templating"]["list"]:
        values.setdefault(var["name"], var.get("allValue") or ".*")

    def repl(m: re.Match) -> str:
        name = m.group(1) or m.group(2)
        if name not in values:
            raise AssertionError(f"unknown template variable ${name} in {expr!r}")
        return values[name]

    return re.sub(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)", repl, expr)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wav_bytes(y: np.ndarray, sr: int = 16000) -> bytes:
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, y, sr, format="WAV", subtype="PCM_16")
    return buf.getvalue()


# -- static checks: dashboard, provisioning, scrape config ----------------------------------------
def test_dashboard_is_an_importable_grafana_dashboard():
    d = load_dashboard()
    assert d["schemaVersion"] >= 36 and d["uid"] and d["title"]
    variables = {v["name"]: v for v in d["templating"]["list"]}
    assert variables["DS_PROMETHEUS"]["type"] == "datasource" and variables["DS_PROMETHEUS"]["query"] == "prometheus"
    assert variables["model"]["type"] == "query" and "vibe_check_model_info" in variables["model"]["definition"]
    assert "$model" in variables["instance"]["definition"]  # instances follow the chosen model
    ids = [p["id"] for p in all_panels(d)]
    assert len(ids) == len(set(ids))
    for p in all_panels(d):
        if p["type"] == "row":
            continue
        assert p["datasource"] == {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}, p["title"]
        assert p["targets"] and all(t["datasource"]["uid"] == "${DS_PROMETHEUS}" for t in p["targets"]), p["title"]
        assert set(p["gridPos"]) == {"x", "y", "w", "h"} and p["gridPos"]["x"] + p["gridPos"]["w"] <= 24
    titles = " | ".join(p["title"].lower() for p in all_panels(d))
    for wanted in ("request rate", "error rate", "latency p50", "latency p95", "latency p99", "confidence distribution",
                   "predictions by emotion", "audio processed", "in flight", "model in service",
                   "top features by mean |shap|"):
        assert wanted in titles, wanted
    assert any(p["type"] == "heatmap" for p in all_panels(d))


def test_dashboard_queries_use_only_exported_metrics():
    """A typo in a metric name would show as an empty panel; catch it without Prometheus."""
    from vibe_check.serving import ServiceMetrics

    metrics = ServiceMetrics()
    metrics.requests.labels(endpoint="/predict", method="POST", status="200")
    metrics.errors.labels(endpoint="/predict", error_type="AudioDecodeError")
    metrics.item_errors.labels(endpoint="/predict/batch", error_type="AudioDecodeError")
    metrics.set_model(model="m", task="emotion", feature_hash="h", version="v")
    metrics.init_labels(["angry"])  # creates the per-stage histogram series
    metrics.shap_feature_mean_abs.labels(feature="f0_mean")  # top features are known once SHAP has run
    exported = {s.name for fam in metrics.registry.collect() for s in fam.samples}
    d = load_dashboard()
    queries = dashboard_queries(d)
    assert len(queries) >= 12
    for title, expr in queries:
        used = set(re.findall(r"\bvibe_check_\w+", expr))
        assert used and used <= exported, (title, used - exported)
        assert "$" not in substitute(expr, d)
        assert 'instance=~"$instance"' in expr, (title, expr)  # every panel follows the instance picker
    histogram_panels = [e for _, e in queries if "histogram_quantile" in e]
    assert len(histogram_panels) >= 4 and all("by (le" in e for e in histogram_panels)


def test_provisioning_loads_the_dashboard_from_prometheus():
    provider = yaml.safe_load((PROVISIONING / "dashboards" / "vibe-check.yaml").read_text())
    assert provider["apiVersion"] == 1
    (p,) = provider["providers"]
    assert p["type"] == "file" and p["options"]["path"]
    source = yaml.safe_load((PROVISIONING / "datasources" / "prometheus.yaml").read_text())
    (ds,) = source["datasources"]
    assert ds["type"] == "prometheus" and ds["url"] == "http://127.0.0.1:9090" and ds["isDefault"] is True
    assert ds["jsonData"]["timeInterval"] == "5s"


def test_prometheus_config_scrapes_the_service():
    config = yaml.safe_load(PROMETHEUS_YML.read_text())
    assert config["global"]["scrape_interval"] == "5s"
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "vibe-check"]
    assert job["metrics_path"] == "/metrics"
    assert job["static_configs"][0]["targets"] == ["127.0.0.1:8000"]
    promtool = shutil.which("promtool")
    if promtool:
        check = subprocess.run([promtool, "check", "config", str(PROMETHEUS_YML)], capture_output=True, text=True, timeout=60)
        assert check.returncode == 0, check.stdout + check.stderr


# -- training metrics export ------------------------------------------------------------------
def test_training_metrics_textfile(trained_models, tmp_path):
    from vibe_check.training._export import export_training_metrics

    trainer = trained_models["trainer"]
    path = tmp_path / "textfile" / "vibe_check_training.prom"
    export_training_metrics(trainer, path=path)
    values = {}
    for family in text_string_to_metric_families(path.read_text()):
        for s in family.samples:
            values[(s.name, tuple(sorted(s.labels.items())))] = s.value
    task = trainer.task

    def get(name, **labels):
        return values[(name, tuple(sorted({"task": task, **labels}.items())))]

    for model, result in trainer.cv_results_.items():
        for metric in ("macro_f1", "accuracy", "uar", "ece"):
            mean, std = result.scalar(metric)
            assert get(f"vibe_check_training_cv_{metric}", model=model, stat="mean") == pytest.approx(mean)
            assert get(f"vibe_check_training_cv_{metric}", model=model, stat="std") == pytest.approx(std)
        assert get("vibe_check_training_fit_seconds", model=model, phase="cv") == pytest.approx(sum(result.fit_seconds))
        assert get("vibe_check_training_fit_seconds", model=model, phase="refit") > 0
        assert get("vibe_check_training_best_model", model=model) == (1.0 if model == trainer.best_model_ else 0.0)
    assert get("vibe_check_training_run_seconds") == pytest.approx(trainer.fit_seconds_)
    assert get("vibe_check_training_folds") == len(trainer.folds_)
    assert get("vibe_check_training_files") == len(trained_models["manifest"])
    assert abs(get("vibe_check_training_last_run_timestamp_seconds") - time.time()) < 600
    assert not list(path.parent.glob("*.tmp*"))  # written atomically


def test_training_metrics_push_and_refuse_unfitted(trained_models):
    from vibe_check.training import EmotionTrainer
    from vibe_check.training._export import export_training_metrics

    received = []

    class Gateway(BaseHTTPRequestHandler):
        def do_PUT(self):  # what a Pushgateway receives
            received.append((self.path, self.rfile.read(int(self.headers["Content-Length"])).decode()))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Gateway)
    thread = threading.Thread(target=server.handle_request, daemon=True)
    thread.start()
    try:
        registry = export_training_metrics(trained_models["trainer"], pushgateway=f"http://127.0.0.1:{server.server_port}",
                                           job="vibe_check_training_test")
        thread.join(10)
    finally:
        server.server_close()
    assert len(received) == 1
    path, body = received[0]
    assert path == "/metrics/job/vibe_check_training_test"
    assert "vibe_check_training_cv_macro_f1" in body and registry.get_sample_value(
        "vibe_check_training_folds", {"task": "emotion"}) == len(trained_models["trainer"].folds_)
    with pytest.raises(ValueError, match="not fitted"):
        export_training_metrics(EmotionTrainer())


# -- live: Prometheus scraping the service ------------------------------------------------------
class _PrometheusAPI:
    def __init__(self, base: str):
        import httpx

        self.http = httpx.Client(base_url=base, timeout=10)

    def query(self, expr: str) -> list[dict]:
        r = self.http.get("/api/v1/query", params={"query": expr})
        body = r.json()
        assert r.status_code == 200 and body["status"] == "success", (expr, body)
        return body["data"]["result"]

    def scalar(self, expr: str) -> float | None:
        result = self.query(expr)
        return float(result[0]["value"][1]) if result else None

    def wait_for(self, expr: str, predicate, timeout: float, what: str) -> float | None:
        deadline = time.monotonic() + timeout
        value = None
        while time.monotonic() < deadline:
            try:
                value = self.scalar(expr)
            except Exception:  # not up yet
                value = None
            if value is not None and predicate(value):
                return value
            time.sleep(0.25)
        raise AssertionError(f"timed out after {timeout} s waiting for {what} ({expr} = {value})")


@pytest.fixture
def live_service(trained_models, request):
    """The service on 127.0.0.1:<free port>, run by uvicorn in a thread (indirect parameters:
    settings overrides)."""
    import uvicorn

    from vibe_check.models._custom import CustomEmotionModel
    from vibe_check.serving import ServeSettings, create_app

    model = CustomEmotionModel(trained_models["best"])
    port = free_port()
    app = create_app(model, settings=ServeSettings(port=port, max_audio_seconds=8, **getattr(request, "param", {})))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, name="uvicorn-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "the service did not start"
    try:
        yield {"url": f"http://127.0.0.1:{port}", "port": port, "model": model}
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture
def prometheus(tmp_path, live_service):
    """A real Prometheus scraping the service every second, configured from utils/prometheus/prometheus.yml."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("the prometheus binary is not installed (apt-get install prometheus; see .ci/install-system-deps.sh)")
    config = yaml.safe_load(PROMETHEUS_YML.read_text())
    config["global"].update(scrape_interval=f"{SCRAPE_INTERVAL_S}s", evaluation_interval=f"{SCRAPE_INTERVAL_S}s",
                            scrape_timeout=f"{SCRAPE_INTERVAL_S}s")
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "vibe-check"]
    job["static_configs"][0]["targets"] = [f"127.0.0.1:{live_service['port']}"]
    config_path = tmp_path / "prometheus.yml"
    config_path.write_text(yaml.safe_dump(config))
    for name in config.get("rule_files", []):  # copies next to the config, alerts firing without a "for" wait
        rules = yaml.safe_load((PROMETHEUS_YML.parent / name).read_text())
        for rule in (r for g in rules["groups"] for r in g["rules"]):
            rule["for"] = "0s"
        (tmp_path / name).write_text(yaml.safe_dump(rules))
    port = free_port()
    log_path = tmp_path / "prometheus.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([binary, f"--config.file={config_path}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                                 f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
                                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    api = _PrometheusAPI(f"http://127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert proc.poll() is None, f"prometheus exited: {log_path.read_text()[-2000:]}"
            try:
                if api.http.get("/-/ready").status_code == 200:
                    break
            except Exception:
                pass
            time.sleep(0.2)
        else:
            raise AssertionError(f"prometheus not ready after 30 s: {log_path.read_text()[-2000:]}")
        yield api
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        api.http.close()


@pytest.mark.integration
def test_every_dashboard_query_returns_data(prometheus, live_service):
    import httpx

    from vibe_check.data import synthesize_utterance

    api = prometheus
    api.wait_for('up{job="vibe-check"}', lambda v: v == 1, 30, "the service target to be up")
    good = [wav_bytes(synthesize_utterance(e, speaker=s, seed=s)) for s, e in enumerate(("angry", "sad", "happy"), start=1)]
    bad = [b"not audio at all" * 10, b"", wav_bytes(np.zeros(16000, dtype=np.float32))]
    explainable = hasattr(live_service["model"], "explain")
    sent = {"good": 0}

    def wave(client: httpx.Client) -> None:
        for data in good:
            r = client.post("/predict", content=data, headers={"content-type": "audio/wav"})
            assert r.status_code == 200, r.text
            sent["good"] += 1
        for data in bad:
            assert client.post("/predict", content=data, headers={"content-type": "audio/wav"}).status_code == 422
        r = client.post("/predict/batch", files=[("files", ("a.wav", good[0])), ("files", ("x.txt", bad[0]))])
        assert r.status_code == 200 and r.json()["n_errors"] == 1
        sent["good"] += 1
        if explainable:
            assert client.post("/predict?explain=true", content=good[1], headers={"content-type": "audio/wav"}).status_code == 200
            sent["good"] += 1
        assert client.get("/no-such-endpoint").status_code == 404

    with httpx.Client(base_url=live_service["url"], timeout=30) as client:
        # Two waves, a scrape apart, so every counter has grown between samples and rate() is positive.
        wave(client)
        api.wait_for("sum(vibe_check_predictions_total)", lambda v: v >= sent["good"], 20, "the first wave to be scraped")
        wave(client)
        api.wait_for("sum(vibe_check_predictions_total)", lambda v: v >= sent["good"], 20, "the second wave to be scraped")
    time.sleep(2.5 * SCRAPE_INTERVAL_S)  # two more scrapes

    assert api.scalar("sum(vibe_check_predictions_total)") == sent["good"]
    assert api.scalar('sum(vibe_check_errors_total{endpoint="/predict"})') == 2 * len(bad)
    dashboard = load_dashboard()
    queries = dashboard_queries(dashboard)
    assert queries
    empty, not_finite = [], []
    for title, expr in queries:
        result = api.query(substitute(expr, dashboard))
        if not result:
            empty.append((title, expr))
            continue
        values = [float(r["value"][1]) for r in result]
        if not any(math.isfinite(v) for v in values):
            not_finite.append((title, expr, values))
    assert not empty, f"dashboard queries without data: {empty}"
    assert not not_finite, f"dashboard queries with only NaN/inf values: {not_finite}"
    info = api.query('vibe_check_model_info{job="vibe-check"}')
    assert info[0]["metric"]["model"] == live_service["model"].name


@pytest.mark.integration
@pytest.mark.parametrize("live_service", [{"drift_window": 90, "shap_fraction": 0.05}], indirect=True)
def test_drift_alert_fires_on_quieter_noisier_inputs(prometheus, live_service, trained_models):
    """Clean clips keep the drift alert quiet; the same clips 20 dB quieter in noise fire it."""
    import httpx
    from test_drift import corpus_clips, degrade

    api = prometheus
    api.wait_for('up{job="vibe-check"}', lambda v: v == 1, 30, "the service target to be up")
    rules = api.http.get("/api/v1/rules").json()["data"]["groups"]
    assert any(r["name"] == "VibeCheckFeatureDrift" for g in rules for r in g["rules"]), "alerts.yml not loaded"
    clips = corpus_clips(trained_models["corpus"])[:90]  # the training clips: the window holds all of them
    alert = 'ALERTS{alertname="VibeCheckFeatureDrift", alertstate="firing"}'

    def send(batch: list[bytes]) -> None:
        with httpx.Client(base_url=live_service["url"], timeout=30) as client:
            for data in batch:
                r = client.post("/predict", content=data, headers={"content-type": "audio/wav"})
                assert r.status_code == 200, r.text

    send([wav_bytes(y) for y in clips])
    api.wait_for("max(vibe_check_drift_window_size)", lambda v: v >= len(clips), 20, "the clean window to be scraped")
    time.sleep(3 * SCRAPE_INTERVAL_S)  # a few rule evaluations
    clean = {r["metric"]["group"]: float(r["value"][1]) for r in api.query("vibe_check_feature_drift_psi")}
    assert max(clean.values()) < 0.1, clean
    assert api.query(alert) == []
    served = api.scalar("sum(vibe_check_predictions_total)")

    send([wav_bytes(degrade(y, snr_db=(10, 15, 20)[i % 3], seed=i)) for i, y in enumerate(clips)])
    # The alert may fire on a scrape taken while the window was still filling with noisy clips:
    # read the drift only from a scrape that has seen every noisy request.
    api.wait_for("sum(vibe_check_predictions_total)", lambda v: v >= served + len(clips), 30, "the noisy window to be scraped")
    api.wait_for(f"count({alert})", lambda v: v >= 1, 30, "the drift alert to fire")
    noisy = {r["metric"]["group"]: float(r["value"][1]) for r in api.query("vibe_check_feature_drift_psi")}
    print("PSI clean", {g: round(v, 3) for g, v in clean.items()})
    print("PSI noisy", {g: round(v, 3) for g, v in noisy.items()})
    assert all(noisy[g] > 0.25 for g in ("energy", "spectral", "mel", "cepstral")), noisy
    assert api.query("histogram_quantile(0.5, sum by (le) (rate(vibe_check_input_snr_db_bucket[1m])))")

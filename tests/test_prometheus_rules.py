"""The alerting rules of utils/prometheus/alerts.yml, evaluated by ``promtool test rules`` on
made-up series, and the dashboard panels that must show what the alerts fire on.

- The error-rate alerts split the server's failures (5xx) from the clients' bad input (4xx), count
  only requests that carry audio or act on a speaker (not scrapes, probes or the page), and the
  dashboard's "Error ratio" panel computes the same two ratios.
- The confidence-collapse alert compares the median confidence with a threshold relative to chance
  (1/n_classes), so it can fire for a 3-class sentiment model as well as for an 8-class one.

Needs Debian's ``promtool`` (``.ci/install-system-deps.sh``); skipped with the reason without it.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
ALERTS = ROOT / "utils" / "prometheus" / "alerts.yml"
DASHBOARD = ROOT / "utils" / "grafana" / "vibe-check-dashboard.json"
JOB = "vibe-check"
#: Minutes of made-up series (one sample a minute) and the time the rules are evaluated at.
MINUTES = 40
EVAL_AT = "30m"


def rules() -> dict[str, dict]:
    return {r["alert"]: r for g in yaml.safe_load(ALERTS.read_text())["groups"] for r in g["rules"]}


def condition(expr: str) -> str:
    """The left-hand side of an ``... > threshold`` alert expression: the ratio it watches."""
    m = re.fullmatch(r"(?s)\s*(.*?)\s*>\s*[0-9.]+\s*", expr)
    assert m, f"not of the form '<ratio> > <threshold>': {expr}"
    return m.group(1)


def counter(rate_per_min: float) -> str:
    """promtool's expanding notation for a counter growing by ``rate_per_min`` a minute."""
    return f"0+{rate_per_min:g}x{MINUTES}"


def series(name: str, value: str, **labels) -> dict:
    inner = ", ".join(f'{k}="{v}"' for k, v in {"job": JOB, **labels}.items())
    return {"series": f"{name}{{{inner}}}", "values": value}


def promtool_test(tmp_path: Path, input_series: list[dict], expr_tests: list[dict]) -> None:
    """Run ``promtool test rules`` with alerts.yml loaded; fails with promtool's report."""
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (apt-get install prometheus; see .ci/install-system-deps.sh)")
    spec = {"rule_files": [str(ALERTS)], "evaluation_interval": "1m",
            "tests": [{"interval": "1m", "input_series": input_series, "promql_expr_test": expr_tests}]}
    path = tmp_path / "rules_test.yml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    run = subprocess.run([promtool, "test", "rules", str(path)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr


def firing(expr: str, instances: list[str]) -> dict:
    """A promtool expression test: the alert condition ``expr`` holds for exactly ``instances``."""
    return {"expr": f"count by (instance) ({expr})", "eval_time": EVAL_AT,
            "exp_samples": [{"labels": f'{{instance="{i}"}}', "value": 1} for i in instances]}


# -- error rates --------------------------------------------------------------------------------

#: Requests a minute per (endpoint, status) of each made-up instance. Every instance has every status
#: series (zeros included), as the service has once each has happened once.
TRAFFIC = {
    # One client sending silent or undecodable clips: 40 % input errors, the server is fine.
    "bad-uploads": {("/predict", "200"): 6, ("/predict", "422"): 3, ("/predict", "413"): 1, ("/metrics", "200"): 12,
                    ("/", "200"): 2, ("/healthz", "200"): 6},
    # The model fails on a fifth of the clips.
    "broken": {("/predict", "200"): 8, ("/predict", "500"): 2, ("/metrics", "200"): 12},
    # The worker pool is full for reference uploads: 503s on a speaker endpoint.
    "busy": {("/speakers/{speaker_id}/references", "200"): 5, ("/speakers/{speaker_id}/references", "503"): 1,
             ("/speakers/{speaker_id}", "200"): 2, ("/metrics", "200"): 12},
    # explain=true against a model without an explainer (501): the client's request, not a failure.
    "no-explain": {("/predict", "200"): 7, ("/predict", "501"): 3, ("/metrics", "200"): 12},
    # A little of everything, below both thresholds; mostly scrapes.
    "healthy": {("/predict", "200"): 19, ("/predict", "422"): 1, ("/predict/batch", "200"): 4, ("/predict", "504"): 0.5,
                ("/metrics", "200"): 60},
}
#: What each error status is caused by, as the vibe_check_errors_total label would say.
ERROR_TYPES = {"422": "NoSpeechError", "413": "UploadTooLargeError", "500": "RuntimeError", "503": "ServiceBusyError",
               "501": "ExplainUnavailableError", "504": "RequestTimeoutError"}
AUDIO_ENDPOINTS = ("/predict", "/predict/batch", "/speakers/{speaker_id}/references", "/speakers/{speaker_id}")


def traffic_series() -> list[dict]:
    out = []
    statuses = sorted({s for t in TRAFFIC.values() for _, s in t})
    for instance, traffic in TRAFFIC.items():
        for endpoint in sorted({e for e, _ in traffic}):
            for status in statuses:
                rate = traffic.get((endpoint, status), 0)
                out.append(series("vibe_check_requests_total", counter(rate), instance=instance, endpoint=endpoint,
                                  method="GET" if endpoint in ("/metrics", "/", "/healthz") else "POST", status=status))
                if status in ERROR_TYPES:
                    out.append(series("vibe_check_errors_total", counter(rate), instance=instance, endpoint=endpoint,
                                      error_type=ERROR_TYPES[status]))
    return out


def expected_ratio(instance: str, kind: str) -> float:
    """Share of the audio and speaker requests of ``instance`` that failed on the ``server`` side
    (5xx but 501) or as ``input`` errors (4xx and 501)."""
    traffic = {k: v for k, v in TRAFFIC[instance].items() if k[0] in AUDIO_ENDPOINTS}

    def is_kind(status: str) -> bool:
        return status.startswith("5") and status != "501" if kind == "server" else status.startswith("4") or status == "501"

    return sum(v for (_, s), v in traffic.items() if is_kind(s)) / sum(traffic.values())


def test_expected_ratios_of_the_made_up_traffic():
    """The made-up traffic covers both sides of both thresholds."""
    server = {i: expected_ratio(i, "server") for i in TRAFFIC}
    client = {i: expected_ratio(i, "input") for i in TRAFFIC}
    assert {i for i, r in server.items() if r > 0.1} == {"broken", "busy"}
    assert {i for i, r in client.items() if r > 0.25} == {"bad-uploads", "no-explain"}
    assert 0 < server["healthy"] < 0.1 and 0 < client["healthy"] < 0.25


def test_error_alerts_split_server_failures_from_bad_input(tmp_path):
    r = rules()
    server, client = r["VibeCheckHighErrorRate"], r["VibeCheckHighInputErrorRate"]
    assert server["labels"]["severity"] == "warning"
    assert client["labels"]["severity"] == "info", "bad input is not the service's failure: it must not page"
    promtool_test(tmp_path, traffic_series(), [
        firing(server["expr"], ["broken", "busy"]),  # not "bad-uploads": 40 % of its requests are its own bad clips
        firing(client["expr"], ["bad-uploads", "no-explain"]),
    ])


def dashboard_panel(title_start: str) -> dict:
    d = json.loads(DASHBOARD.read_text())
    panels = [p for top in d["panels"] for p in [top, *top.get("panels", [])]]
    (panel,) = [p for p in panels if p["title"].startswith(title_start)]
    return panel


def for_instance(expr: str, instance: str) -> str:
    """A dashboard query as Grafana runs it with one instance picked and 5 min rate windows."""
    return expr.replace('"$instance"', f'"{instance}"').replace("$__rate_interval", "5m")


def test_error_ratio_panel_shows_what_the_alerts_fire_on(tmp_path):
    """The panel's two ratios equal the alerts' for every instance (scrapes, probes and the page left out)."""
    panel = dashboard_panel("Error ratio")
    assert "prediction and speaker requests" in panel["title"]
    targets = {t["legendFormat"]: t["expr"] for t in panel["targets"]}
    panel_server = next(e for legend, e in targets.items() if "server" in legend)
    panel_input = next(e for legend, e in targets.items() if "input" in legend)
    r = rules()
    tests = []
    for kind, alert, panel_expr in (("server", "VibeCheckHighErrorRate", panel_server),
                                    ("input", "VibeCheckHighInputErrorRate", panel_input)):
        ratio = condition(r[alert]["expr"])
        tests.append({"expr": f"round(1000 * ({ratio}))", "eval_time": EVAL_AT,
                      "exp_samples": [{"labels": f'{{instance="{i}", job="{JOB}"}}', "value": round(1000 * expected_ratio(i, kind))}
                                      for i in TRAFFIC]})
        for instance in TRAFFIC:
            tests.append({"expr": f"round(1000 * ({for_instance(panel_expr, instance)}))", "eval_time": EVAL_AT,
                          "exp_samples": [{"labels": "{}", "value": round(1000 * expected_ratio(instance, kind))}]})
    promtool_test(tmp_path, traffic_series(), tests)


# -- confidence collapse ------------------------------------------------------------------------

#: (number of classes, the confidence bucket every prediction falls in) of each made-up instance.
CONFIDENCE = {
    "sentiment-unsure": (3, (0.35, 0.4)),  # barely above chance (0.33): collapsed
    "sentiment-sure": (3, (0.6, 0.7)),
    "emotion-unsure": (8, (0.2, 0.3)),  # chance is 0.125
    "emotion-ok": (8, (0.35, 0.4)),  # the same confidence as sentiment-unsure is fine for 8 classes
}


def confidence_series(predictions_per_min: float = 30) -> list[dict]:
    from vibe_check.serving._metrics import CONFIDENCE_BUCKETS

    out = []
    for instance, (n_classes, (low, high)) in CONFIDENCE.items():
        assert low in CONFIDENCE_BUCKETS and high in CONFIDENCE_BUCKETS
        for le in [*CONFIDENCE_BUCKETS, "+Inf"]:
            grows = le == "+Inf" or le >= high
            out.append(series("vibe_check_prediction_confidence_bucket", counter(predictions_per_min if grows else 0),
                              instance=instance, le=le if le == "+Inf" else f"{le:g}"))
        out.append(series("vibe_check_predictions_total", counter(predictions_per_min), instance=instance, emotion="x"))
        out.append(series("vibe_check_model_classes", f"{n_classes}x{MINUTES}", instance=instance))
    return out


def test_confidence_collapse_is_relative_to_chance(tmp_path):
    rule = rules()["VibeCheckConfidenceCollapse"]
    assert "vibe_check_model_classes" in rule["expr"]
    promtool_test(tmp_path, confidence_series(), [
        firing(rule["expr"], ["emotion-unsure", "sentiment-unsure"]),
        # The threshold itself: 0.3 for 8 classes (the rule's old fixed value), 0.47 for 3.
        {"expr": "round(1000 * (0.2 + 0.8 / vibe_check_model_classes))", "eval_time": EVAL_AT,
         "exp_samples": [{"labels": f'{{instance="{i}", job="{JOB}"}}', "value": 300 if n == 8 else 467}
                         for i, (n, _) in CONFIDENCE.items()]},
    ])


def test_confidence_collapse_stays_quiet_without_predictions(tmp_path):
    """No traffic: no median, no alert (and no division by a missing class count)."""
    rule = rules()["VibeCheckConfidenceCollapse"]
    promtool_test(tmp_path, confidence_series(0), [firing(rule["expr"], [])])


def test_the_service_exports_its_number_of_classes():
    from vibe_check.serving import ServiceMetrics

    metrics = ServiceMetrics()
    assert metrics.registry.get_sample_value("vibe_check_model_classes") != metrics.registry.get_sample_value(
        "vibe_check_model_classes")  # NaN before a model is in service
    metrics.init_labels(["negative", "neutral", "positive"])
    assert metrics.registry.get_sample_value("vibe_check_model_classes") == 3

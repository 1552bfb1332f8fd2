"""The web page served at ``/``: upload or record a clip, see the emotion, its probabilities and why.

The first test is fast and needs no browser: the page and its assets are served, with the right
content types and no external URL (the page must work offline). The others run the real service
with uvicorn on a free loopback port and drive headless Chromium with selenium; they are skipped,
with the reason, when Chromium, chromedriver or selenium are missing or Chrome does not start.
Screenshots go to the pytest tmp dir and to ``test-output/web/`` (git-ignored).
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi", reason="serving needs the 'serve' extra")
pytest.importorskip("multipart", reason="serving needs python-multipart")

from fastapi.testclient import TestClient  # noqa: E402

from vibe_check.data import make_noise, synthesize_utterance, write_audio  # noqa: E402
from vibe_check.serving import ServeSettings, create_app  # noqa: E402
from vibe_check.serving._app import STATIC_DIR  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
SR = 16000
DEFAULTS = ServeSettings()  # the limits of `vibe-check serve`, as the page shows them
MAX_SECONDS = DEFAULTS.max_audio_seconds
MAX_BYTES = DEFAULTS.max_upload_bytes
WAIT_S = 30  # upper bound of every wait for the page
OUTPUT = Path(__file__).resolve().parents[1] / "test-output" / "web"
PAGE_IDS = ("drop-zone", "file-input", "record-button", "explain-toggle", "status", "error", "result", "result-emotion",
            "result-confidence", "probabilities", "reasons", "explain-note", "model-panel", "model-classes", "model-metrics",
            "model-hash", "model-created", "speaker-panel", "speaker-id", "reference-input", "reference-button",
            "speaker-status")


# -- fast: the page and its assets, no browser ---------------------------------------------------------

def test_page_and_assets_are_served_offline_ready(tmp_path):
    # No model is needed to serve the page: the bundle path does not exist and is never loaded here.
    client = TestClient(create_app(tmp_path / "no-model.pkl"))
    page = client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    for element_id in PAGE_IDS:
        assert f'id="{element_id}"' in page.text, element_id
    assert re.search(r'<label for="explain-toggle"', page.text)
    assert 'aria-live="polite"' in page.text and 'role="alert"' in page.text

    expected = {"app.css": "text/css", "app.js": "javascript"}
    for name, mime in expected.items():
        asset = client.get(f"/static/{name}")
        assert asset.status_code == 200, name
        assert mime in asset.headers["content-type"], (name, asset.headers["content-type"])
        assert f"static/{name}" in page.text
    for text in [page.text] + [(STATIC_DIR / name).read_text(encoding="utf-8") for name in expected]:
        assert not re.search(r"https?://", text), "the page must not load or link anything outside this service"
    # The page checks speaker names with its name field's pattern: the service's own.
    from vibe_check.serving._speakers import SPEAKER_ID_PATTERN

    pattern = re.search(r'id="speaker-id"[^>]*\spattern="([^"]+)"', page.text, flags=re.S).group(1)
    assert f"^{pattern}$" == SPEAKER_ID_PATTERN
    assert client.get("/static/missing.js").status_code == 404
    assert client.get("/static/%2e%2e/_app.py").status_code == 404  # no escape from static/
    # The footer's API page (/docs) loads Swagger UI from a CDN; the schema itself is served offline.
    assert 'href="openapi.json"' in page.text and client.get("/openapi.json").status_code == 200
    # The file inputs are driven by the visible buttons: hidden from assistive technology as well.
    for input_id in ("file-input", "reference-input"):
        tag = re.search(rf'<input[^>]*id="{input_id}"[^>]*>', page.text, flags=re.S).group(0)
        assert 'aria-hidden="true"' in tag and 'tabindex="-1"' in tag, tag
    # `hidden` wins over the author rules that set a display (`.button { display: inline-flex }`).
    css = (STATIC_DIR / "app.css").read_text(encoding="utf-8")
    assert re.search(r"\[hidden\]\s*\{\s*display:\s*none\s*!important", css)


#: Every file type the page's file inputs accept, written by libsndfile: the service must decode each.
ACCEPTED_FORMATS = {".wav": ("WAV", "PCM_16"), ".flac": ("FLAC", "PCM_16"), ".ogg": ("OGG", "VORBIS"),
                    ".oga": ("OGG", "VORBIS"), ".opus": ("OGG", "OPUS"), ".mp3": ("MP3", "MPEG_LAYER_III"),
                    ".aif": ("AIFF", "PCM_16"), ".aiff": ("AIFF", "PCM_16")}


def test_the_file_inputs_accept_what_the_service_decodes(tmp_path):
    """The accept lists, the hint and the error advice name the same formats, and each decodes
    (no .m4a or .webm, which libsndfile cannot read, and no audio/* that would offer them)."""
    import soundfile as sf

    from vibe_check.audio import load_audio

    html = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
    script = (STATIC_DIR / "app.js").read_text(encoding="utf-8")
    accepts = re.findall(r'<input type="file"[^>]*\saccept="([^"]+)"', html, flags=re.S)
    assert len(accepts) == 2 and accepts[0] == accepts[1]
    entries = accepts[0].split(",")
    assert "audio/*" not in entries
    extensions = [e for e in entries if e.startswith(".")]
    assert set(extensions) <= set(ACCEPTED_FORMATS), set(extensions) - set(ACCEPTED_FORMATS)
    for ext in (".m4a", ".webm", ".mp4", ".aac"):
        assert ext not in entries
    y = synthesize_utterance("happy", speaker=1, seed=3)
    for ext in extensions:
        fmt, subtype = ACCEPTED_FORMATS[ext]
        path = tmp_path / f"clip{ext}"
        sf.write(path, y, SR, format=fmt, subtype=subtype)
        assert load_audio(path).size > SR, ext
    formats = re.search(r'var FORMATS = "([^"]+)"', script).group(1)
    hint = re.search(r'<p id="upload-hint"[^>]*>([^<]+)</p>', html).group(1)
    assert hint.startswith(formats)
    for name in ("WAV", "FLAC", "OGG", "MP3", "AIFF"):
        assert name in formats, name
        assert any(ACCEPTED_FORMATS[e][0] == name for e in extensions), name


# -- browser fixtures ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def bundle(synthetic_corpus, tmp_path_factory) -> Path:
    """A logistic-regression bundle trained on the shared generated corpus: the cheapest real model.
    It records that it was trained on generated speech, as the demo's bundles do."""
    from vibe_check.data import GENERATED_SOURCE
    from vibe_check.features import build_manifest
    from vibe_check.training import EmotionTrainer

    root = tmp_path_factory.mktemp("web_model")
    manifest = build_manifest(synthetic_corpus, root / "manifest.parquet", progress=False)
    trainer = EmotionTrainer(n_splits=3, random_state=0, models=("logreg",)).fit(manifest)
    return Path(trainer.save_bundles(root / "models", formats=("pkl",), command="pytest web page",
                                     data_source=GENERATED_SOURCE)["best"])


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    """Files a user might pick: good speech, and the kinds of bad input the page must explain."""
    root = tmp_path_factory.mktemp("web_clips")
    paths = {
        "angry": write_audio(root / "speech.wav", synthesize_utterance("angry", speaker=2, seed=11), SR),
        "sad": write_audio(root / "speech-2.wav", synthesize_utterance("sad", speaker=3, seed=12), SR),
        "silence": write_audio(root / "silence.wav", np.zeros(SR * 2, dtype=np.float32), SR),
        "too_long": write_audio(root / "too_long.wav", make_noise(duration=MAX_SECONDS + 2, amplitude=0.05), SR),
        "too_large": root / "too_large.wav",
        "not_audio": root / "notes.txt",
    }
    paths["too_large"].write_bytes(b"RIFF" + bytes(MAX_BYTES))  # refused in the page, before any upload
    paths["not_audio"].write_text("this is a text file, not audio\n" * 20)
    return paths


@contextlib.contextmanager
def serving(bundle_path: Path):
    """The service of ``bundle_path`` on 127.0.0.1 and a free port, in a background thread."""
    uvicorn = pytest.importorskip("uvicorn")
    from vibe_check.models._custom import CustomEmotionModel

    model = CustomEmotionModel(bundle_path, max_duration=MAX_SECONDS)
    app = create_app(model, settings=DEFAULTS)
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", access_log=False))
    thread = threading.Thread(target=srv.run, name="web-page-test-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            srv.should_exit = True
            pytest.fail("uvicorn did not start within 20 s")
        time.sleep(0.05)
    port = srv.servers[0].sockets[0].getsockname()[1]
    try:
        yield {"url": f"http://127.0.0.1:{port}/", "model": model}
    finally:
        srv.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def server(bundle):
    """The logistic-regression bundle in service; yields its base URL and the model."""
    with serving(bundle) as served:
        yield served


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """Headless Chromium with a fake microphone (a beeping test source that needs no permission prompt)."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="the browser tests need selenium")
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.chrome.service import Service

    for program in (CHROMIUM, CHROMEDRIVER):
        if not Path(program).exists():
            pytest.skip(f"{program} is not installed (apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                "--disable-component-update", "--no-first-run", "--disable-sync", "--window-size=1280,900",
                "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
                f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(arg)
    try:
        driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    except WebDriverException as exc:
        pytest.skip(f"Chromium did not start: {str(exc).splitlines()[0]}")
    driver.set_page_load_timeout(WAIT_S)
    driver.set_script_timeout(WAIT_S)
    yield driver
    driver.quit()


@pytest.fixture
def page(browser, server):
    """The page freshly loaded at desktop size, with the model panel filled in."""
    set_viewport(browser, 1280, 900)
    browser.get(server["url"])
    wait_for(browser, lambda d: d.find_elements("css selector", "#model-classes li"), "the model panel")
    return browser


def set_viewport(driver, width: int, height: int) -> None:
    """An exact CSS viewport (a desktop window cannot be made phone-narrow on every platform)."""
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600})


def wait_for(driver, condition, what: str, timeout: float = WAIT_S):
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.1).until(condition)
    except TimeoutException:
        text = driver.find_element("tag name", "body").text[:2000]
        pytest.fail(f"timed out after {timeout} s waiting for {what}; the page shows:\n{text}")


def upload(driver, path: Path) -> str:
    """Pick ``path`` with the file input and wait for a result or an error; returns which appeared."""
    driver.execute_script("document.getElementById('result').hidden = true; document.getElementById('error').hidden = true;")
    driver.find_element("id", "file-input").send_keys(str(path))
    return wait_for_answer(driver, f"the answer to {path.name}")


def wait_for_answer(driver, what: str) -> str:
    """``"result"`` or ``"error"``, whichever the page shows first."""
    return wait_for(driver, lambda d: ("result" if d.find_element("id", "result").is_displayed() else
                                       "error" if d.find_element("id", "error").is_displayed() else False), what)


def bars(driver) -> list[tuple[str, float]]:
    return [(row.find_element("class name", "bar-label").text.lower(), float(row.find_element("class name", "bar-value").text.rstrip("%")))
            for row in driver.find_elements("css selector", "#probabilities .bar-row")]


def screenshot(driver, tmp_path: Path, name: str, *, full_page: bool = False) -> Path:
    """Save a PNG in tmp_path and test-output/web/; ``full_page`` grows the viewport to the whole page first."""
    driver.execute_cdp_cmd("Emulation.setScrollbarsHidden", {"hidden": True})
    if full_page:
        width, height = driver.execute_script("return [window.innerWidth, window.innerHeight]")
        set_viewport(driver, width, driver.execute_script("return document.scrollingElement.scrollHeight"))
    data = driver.get_screenshot_as_png()
    if full_page:
        set_viewport(driver, width, height)
    path = tmp_path / name
    path.write_bytes(data)
    OUTPUT.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, OUTPUT / name)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return path


def shown_while_hidden(driver) -> list[str]:
    """Elements with the ``hidden`` attribute that the CSS shows anyway (a ``display`` rule wins over the UA's)."""
    return driver.execute_script("""
        return [...document.querySelectorAll('[hidden]')].filter(e => getComputedStyle(e).display !== 'none')
               .map(e => e.id || e.className || e.tagName);
    """)


def no_trace(driver) -> None:
    source = driver.page_source
    assert "Traceback" not in source and 'File "' not in source


@pytest.fixture
def explained_page(page, server, clips):
    """The page, explaining ``clips["angry"]`` even while the model in service cannot explain yet.

    Without an ``explain`` method on the model, the page's requests are rewritten in the browser:
    ``GET /model`` says the model explains, and ``?explain=true`` gets the server's own result plus
    a real SHAP explanation of that clip computed here, so the rendering of reasons is tested either way.
    """
    model = server["model"]
    if hasattr(model, "explain"):
        yield page
        return
    from vibe_check.explain import explain_audio
    from vibe_check.serving._service import to_json

    explanation = json.dumps(to_json(explain_audio(model, clips["angry"], top_k=5)))
    script = """
        const explanation = JSON.parse(arguments_explanation), original = window.fetch;
        const rewrite = (response, change) => response.json().then(body =>
            new Response(JSON.stringify(change(body)), {status: response.status, headers: {'content-type': 'application/json'}}));
        window.fetch = (url, options) => {
          url = String(url);
          if (url.includes('explain=true')) {
            return original(url.replace('explain=true', 'explain=false'), options)
              .then(r => rewrite(r, body => r.ok ? Object.assign(body, {explanation}) : body));
          }
          if (url === 'model') return original(url, options).then(r => rewrite(r, body => Object.assign(body, {explainable: true})));
          return original(url, options);
        };
    """.replace("arguments_explanation", json.dumps(explanation))
    added = page.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": script})
    try:
        page.get(server["url"])
        wait_for(page, lambda d: d.find_elements("css selector", "#model-classes li"), "the model panel")
        yield page
    finally:
        page.execute_cdp_cmd("Page.removeScriptToEvaluateOnNewDocument", {"identifier": added["identifier"]})


# -- browser tests ---------------------------------------------------------------------------------------

def browser_test(fn):
    """A test that runs the real server and Chromium: slow, and needs external programs."""
    return pytest.mark.slow(pytest.mark.integration(fn))


@browser_test
def test_model_panel_shows_the_bundle(page, server):
    info = json.loads(page.execute_script("return fetch('model').then(r => r.text())"))
    assert [li.text for li in page.find_elements("css selector", "#model-classes li")] == info["classes"]
    assert page.find_element("id", "model-name").text == info["name"]
    assert page.find_element("id", "model-bundle").text == info["bundle"] == server["model"].path.name
    assert page.find_element("id", "model-hash").text == info["feature_hash"]
    assert page.find_element("id", "model-task").text == info["task"]
    metrics = page.find_element("id", "model-metrics").text
    f1 = info["cv"]["macro_f1"]
    assert f"Macro-F1 {f1['mean']:.3f} ± {f1['std']:.3f}" in metrics
    assert "UAR" in metrics and "Accuracy" in metrics
    assert info["created_at"][:10] in page.find_element("id", "model-created").text
    hint = page.find_element("id", "upload-hint").text
    assert f"{MAX_SECONDS:g} s" in hint
    assert f"up to {MAX_BYTES / 2**20:g} MiB" in hint and " MB" not in hint, hint  # the limit is 10 MiB, not 10 MB
    # The fixture's bundle was trained on generated speech: the panel says what that means.
    assert info["trained_on_generated_speech"] is True
    caveat = page.find_element("id", "model-caveat")
    assert caveat.is_displayed() and "generated speech" in caveat.text
    assert shown_while_hidden(page) == []


@browser_test
def test_upload_shows_emotion_probabilities_and_reasons(explained_page, server, clips, tmp_path):
    page, clip = explained_page, clips["angry"]
    expected = server["model"].predict_emotion_from_file(clip)
    assert upload(page, clip) == "result"
    shown = page.find_element("id", "result-emotion").text.lower()
    assert shown == expected["emotion"]
    assert page.find_element("id", "result-confidence").text == f"{expected['confidence'] * 100:.1f}% confident"

    rows = bars(page)
    assert [name for name, _ in rows] == sorted(expected["probabilities"], key=expected["probabilities"].get, reverse=True)
    values = [v for _, v in rows]
    assert values == sorted(values, reverse=True) and rows[0][0] == shown
    assert abs(sum(values) - 100) < 0.5, values
    widths = page.execute_script("return [...document.querySelectorAll('.bar-fill')].map(e => e.style.width)")
    assert float(widths[0].rstrip("%")) == pytest.approx(values[0], abs=0.1)

    reasons = page.find_elements("css selector", "#reasons > li")
    assert reasons and all(r.text.strip() for r in reasons)
    assert "towards " + shown in reasons[0].text
    assert page.find_element("id", "explain-summary").is_displayed()
    assert page.find_element("id", "explain-note").is_displayed() is False, "no note when the reasons are shown"
    assert page.find_element("id", "result").get_attribute("aria-live") == "polite"
    no_trace(page)
    screenshot(page, tmp_path, "web-desktop.png", full_page=True)


@browser_test
def test_prediction_is_shown_when_the_model_cannot_explain(page, clips):
    page.execute_script("""
        const original = window.fetch;
        window.fetch = (url, options) => String(url).includes('explain=true')
          ? Promise.resolve(new Response(JSON.stringify({error: {type: 'ExplainUnavailableError', message: 'no explain method'}}),
                                         {status: 501, headers: {'content-type': 'application/json'}}))
          : original(url, options);
    """)
    assert upload(page, clips["sad"]) == "result"
    assert page.find_element("id", "result-emotion").text
    assert len(bars(page)) == len(page.find_elements("css selector", "#model-classes li"))
    note = page.find_element("id", "explain-note")
    assert note.is_displayed() and "cannot explain" in note.text
    assert not page.find_elements("css selector", "#reasons > li")
    assert not page.find_element("id", "error").is_displayed()


@browser_test
def test_a_server_error_with_explain_is_shown_not_retried_without(page, clips):
    """A failed explanation comes back as a 200 with ``explanation_error``; a 500 is the request's own
    failure: the page shows it and does not post the clip a second time without ``explain``."""
    page.execute_script("""
        const original = window.fetch;
        window.predictPosts = [];
        window.fetch = (url, options) => {
          if (!String(url).startsWith('predict')) return original(url, options);
          window.predictPosts.push(String(url));
          return Promise.resolve(new Response(JSON.stringify({error: {type: 'InternalServerError',
              message: 'unexpected RuntimeError while handling the request; it has been logged'}}),
            {status: 500, headers: {'content-type': 'application/json'}}));
        };
    """)
    assert page.find_element("id", "explain-toggle").is_selected()
    assert upload(page, clips["sad"]) == "error"
    assert page.execute_script("return window.predictPosts") == ["predict?explain=true"]
    assert page.find_element("id", "error-title").text == "Something went wrong"
    assert "RuntimeError" in page.find_element("id", "error-message").text
    assert not page.find_element("id", "result").is_displayed()


@browser_test
@pytest.mark.parametrize("kind, title", [
    ("not_audio", "This does not look like audio"),
    ("silence", "No speech found"),
    ("too_long", "This clip is too long"),
    ("too_large", "This file is too large"),
])
def test_bad_uploads_show_a_readable_error(page, clips, kind, title):
    assert upload(page, clips[kind]) == "error"
    assert page.find_element("id", "error-title").text == title
    message = page.find_element("id", "error-message").text
    assert len(message) > 15 and "{" not in message, message
    assert page.find_element("id", "error-advice").text.endswith("."), "every error says what to do about it"
    assert not page.find_element("id", "result").is_displayed()
    no_trace(page)
    # The page recovers: a good clip afterwards gives a result and clears the error.
    if kind == "not_audio":
        assert upload(page, clips["angry"]) == "result"
        assert not page.find_element("id", "error").is_displayed()


@browser_test
def test_keyboard_and_labels(page):
    from selenium.webdriver.common.keys import Keys

    zone = page.find_element("id", "drop-zone")
    assert zone.tag_name == "button"
    page.execute_script("""
        window.pickerOpened = 0;
        document.getElementById('file-input').click = () => { window.pickerOpened += 1; };
    """)
    body = page.find_element("tag name", "body")
    body.send_keys(Keys.TAB)  # skip link, then the drop zone
    for _ in range(5):
        if page.execute_script("return document.activeElement.id") == "drop-zone":
            break
        page.switch_to.active_element.send_keys(Keys.TAB)
    assert page.execute_script("return document.activeElement.id") == "drop-zone", "Tab must reach the drop zone"
    outline = page.execute_script("const s = getComputedStyle(document.activeElement); return [s.outlineStyle, s.outlineWidth]")
    assert outline[0] != "none" and outline[1] != "0px", "the focused control must show a visible focus ring"
    page.switch_to.active_element.send_keys(Keys.ENTER)
    page.switch_to.active_element.send_keys(Keys.SPACE)
    assert page.execute_script("return window.pickerOpened") == 2, "Enter and Space on the drop zone open the file picker"

    unnamed = page.execute_script("""
        const name = e => (e.getAttribute('aria-label') || (e.labels && [...e.labels].map(l => l.textContent).join(''))
                           || e.textContent || '').trim();
        return [...document.querySelectorAll('button, input, select, textarea')].filter(e => !name(e)).map(e => e.outerHTML);
    """)
    assert unnamed == []


@browser_test
def test_phone_width_has_no_horizontal_overflow(explained_page, clips, tmp_path):
    page = explained_page
    set_viewport(page, 390, 844)
    assert upload(page, clips["angry"]) == "result"
    width = page.execute_script("return window.innerWidth")
    assert width == 390, f"the page does not fit a phone: the mobile layout viewport grew to {width}px to show it all"
    overflow = page.execute_script("return [document.scrollingElement.scrollWidth, window.innerWidth]")
    assert overflow[0] <= overflow[1], f"horizontal overflow at phone width: {overflow}"
    wide = page.execute_script("""
        return [...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > window.innerWidth + 1
               && getComputedStyle(e).position !== 'absolute').map(e => e.id || e.className || e.tagName);
    """)
    assert wide == []
    screenshot(page, tmp_path, "web-phone-full.png", full_page=True)
    page.execute_script("document.querySelector('.result-card').scrollIntoView()")
    screenshot(page, tmp_path, "web-phone.png")
    set_viewport(page, 360, 740)
    assert page.execute_script("return document.scrollingElement.scrollWidth <= window.innerWidth")


@browser_test
def test_recording_is_converted_to_wav_and_analysed(page):
    button = page.find_element("id", "record-button")
    button.click()
    status = page.find_element("id", "record-status")
    wait_for(page, lambda d: button.get_attribute("aria-pressed") == "true" or (status.text and not status.text.startswith("Waiting")),
             "the recording to start (or a microphone error)", timeout=10)
    if button.get_attribute("aria-pressed") != "true":
        pytest.fail("recording did not start: " + status.text)
    time.sleep(2.5)
    button.click()
    answer = wait_for_answer(page, "the recording's answer")
    # The fake microphone beeps: what matters is that the browser's WAV decoded on the server.
    if answer == "error":
        title = page.find_element("id", "error-title").text
        assert title in ("No speech found",), page.find_element("id", "error-message").text
    else:
        assert "recording.wav" in page.find_element("id", "result-source").text
        duration = float(re.search(r"([\d.]+) s", page.find_element("id", "result-source").text).group(1))
        assert 1.5 < duration < 4.5
    no_trace(page)


@browser_test
@pytest.mark.parametrize("sabotage, expected", [
    ("navigator.mediaDevices.getUserMedia = () => Promise.reject(new DOMException('denied', 'NotAllowedError'));",
     "Microphone access was denied"),
    ("delete window.MediaRecorder;", "This browser cannot record audio"),
])
def test_recording_problems_are_explained(page, sabotage, expected):
    page.execute_script(sabotage)
    page.find_element("id", "record-button").click()
    status = page.find_element("id", "record-status")
    wait_for(page, lambda d: status.text.startswith(expected), f"the message {expected!r}", timeout=10)
    assert page.find_element("id", "record-button").get_attribute("aria-pressed") == "false"
    assert "upload a file instead" in status.text


@browser_test
def test_wav_encoder_output_decodes_on_the_server(page):
    """The in-browser encoder writes 16-bit PCM WAV that soundfile reads back sample for sample."""
    import io

    import soundfile as sf

    data = page.execute_async_script("""
        const done = arguments[arguments.length - 1];
        const samples = new Float32Array(1600).map((_, i) => 0.5 * Math.sin(2 * Math.PI * 440 * i / 16000));
        samples[0] = 1.5; samples[1] = -1.5;  // clipped, not wrapped
        window.vibeCheck.encodeWav(samples, 16000).arrayBuffer().then(b => done(Array.from(new Uint8Array(b))));
    """)
    y, sr = sf.read(io.BytesIO(bytes(data)), dtype="float32")
    assert sr == 16000 and y.shape == (1600,)
    assert y[0] == pytest.approx(1.0, abs=1e-4) and y[1] == pytest.approx(-1.0, abs=1e-4)
    reference = 0.5 * np.sin(2 * np.pi * 440 * np.arange(2, 1600) / 16000)
    assert np.max(np.abs(y[2:] - reference)) < 1e-4



@pytest.fixture(scope="module")
def speaker_server(trained_models, tmp_path_factory):
    """A speaker-normalised LDA bundle (trained on the shared fixture's manifest) in service."""
    from vibe_check.training import EmotionTrainer

    trainer = EmotionTrainer(models=["lda"], n_splits=3, speaker_normalization=True).fit(trained_models["manifest"])
    root = tmp_path_factory.mktemp("web_speaker_model")
    with serving(Path(trainer.save_bundles(root, formats=("pkl",), command="pytest web page speaker")["best"])) as served:
        yield served


@browser_test
def test_a_speaker_model_asks_for_reference_clips_then_classifies_relative_to_them(browser, speaker_server, clips, tmp_path):
    model = speaker_server["model"]
    need = model.min_reference_clips
    refs = [write_audio(tmp_path / f"ref-{i}.wav", synthesize_utterance(e, speaker=2, seed=40 + i), SR)
            for i, e in enumerate(["neutral", "happy", "sad", "calm", "fearful"])]
    set_viewport(browser, 1280, 900)
    browser.get(speaker_server["url"])
    wait_for(browser, lambda d: d.find_element("id", "speaker-panel").is_displayed(), "the speaker panel")
    assert f"at least {need} clips" in browser.find_element("id", "speaker-hint").text
    status = lambda: browser.find_element("id", "speaker-status").text  # noqa: E731
    forget = browser.find_element("id", "speaker-forget")
    # No speaker yet: nothing to forget, and the button is not shown (nor anything else marked hidden).
    assert not forget.is_displayed() and shown_while_hidden(browser) == []
    assert not browser.find_element("id", "model-caveat").is_displayed()  # a bundle without a generated-speech record
    # Even when clicked from a script, it sends nothing without a speaker name.
    browser.execute_script("""
        const original = window.fetch;
        window.speakerRequests = [];
        window.fetch = (url, options) => {
          if (String(url).startsWith('speakers')) window.speakerRequests.push((options && options.method || 'GET') + ' ' + url);
          return original(url, options);
        };
        document.getElementById('speaker-forget').click();
    """)
    assert status() == "Name the speaker first."
    assert browser.execute_script("return window.speakerRequests") == []

    # No speaker named yet: the page says what to do and sends nothing.
    assert upload(browser, clips["angry"]) == "error"
    assert browser.find_element("id", "error-title").text == "Reference clips of the speaker are needed"
    assert f"at least {need} reference clips" in browser.find_element("id", "error-message").text

    name = browser.find_element("id", "speaker-id")
    name.send_keys("alex\t")  # the change event looks the speaker up
    wait_for(browser, lambda d: "No reference clips of alex yet" in status(), "the unknown-speaker status")
    assert not forget.is_displayed(), "a speaker without references has nothing to forget"

    # Too few references (one of the files is not audio: reported by name, the others are kept).
    browser.find_element("id", "reference-input").send_keys("\n".join(map(str, refs[: need - 1] + [clips["not_audio"]])))
    wait_for(browser, lambda d: f"{need - 1} reference clip(s) of alex stored; {need} needed" in status(), "the reference count")
    assert forget.is_displayed(), "once references are stored they can be forgotten"
    errors = browser.find_element("id", "reference-errors").text
    assert "notes.txt" in errors and "ref-0.wav" not in errors
    assert upload(browser, clips["angry"]) == "error"  # the service refuses: 422 with the count
    assert browser.find_element("id", "error-title").text == "Reference clips of the speaker are needed"
    assert f"{need - 1} reference clip(s)" in browser.find_element("id", "error-message").text

    browser.find_element("id", "reference-input").send_keys("\n".join(map(str, refs[need - 1 :])))
    wait_for(browser, lambda d: f"Ready: {len(refs)} reference clip(s) of alex stored" in status(), "the ready status")
    assert not browser.find_element("id", "reference-errors").is_displayed()

    expected = model.for_speaker(refs).predict_emotion_from_file(clips["angry"])
    assert upload(browser, clips["angry"]) == "result"
    assert browser.find_element("id", "result-emotion").text.lower() == expected["emotion"]
    assert browser.find_element("id", "result-confidence").text == f"{expected['confidence'] * 100:.1f}% confident"
    assert "relative to alex" in browser.find_element("id", "status").text
    screenshot(browser, tmp_path, "speaker-mode.png", full_page=True)

    forget.click()
    wait_for(browser, lambda d: "Forgot the reference clips of alex" in status(), "the forget status")
    assert not forget.is_displayed() and shown_while_hidden(browser) == []
    assert browser.execute_script("return window.speakerRequests").count("DELETE speakers/alex") == 1
    assert upload(browser, clips["angry"]) == "error"
    assert browser.find_element("id", "error-title").text == "No reference clips for this speaker"
    message = browser.find_element("id", "error-message").text
    assert "alex" in message and "POST" not in message and "/speakers/" not in message, "the page's terms, not the API's"

    name.clear()
    name.send_keys("not a name\t")
    wait_for(browser, lambda d: "cannot be used as a name" in status(), "the invalid-name status")
    no_trace(browser)

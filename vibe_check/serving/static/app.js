/* vibe-check web page: upload or record a clip, show the prediction, its probabilities and reasons.
 *
 * Plain browser JavaScript, no dependencies. Every request goes to this service with a relative URL
 * (so the page also works behind a path prefix). Server text is always inserted with textContent.
 */
"use strict";

(function () {
  var TARGET_RATE = 16000;
  var DEFAULT_LIMITS = { max_upload_bytes: 10 * 1024 * 1024, max_audio_seconds: 30 };
  /** What the service decodes (libsndfile: vibe_check.audio.load_audio); the file inputs' accept lists say the same. */
  var FORMATS = "WAV, FLAC, OGG, MP3 or AIFF";
  var MIB = 1024 * 1024;
  var METRIC_LABELS = [["macro_f1", "Macro-F1"], ["uar", "UAR (balanced accuracy)"], ["accuracy", "Accuracy"]];
  var ERROR_TITLES = {
    UploadTooLargeError: "This file is too large",
    UnsupportedMediaTypeError: "This upload is not supported",
    AudioDecodeError: "This does not look like audio",
    EmptyAudioError: "This file holds no audio",
    NoSpeechError: "No speech found",
    AudioTooLongError: "This clip is too long",
    InvalidAudioError: "This audio cannot be used",
    RequestTimeoutError: "The prediction took too long",
    ModelNotReadyError: "The model is not ready",
    ServiceBusyError: "The service is busy",
    BadRequestError: "The request was not understood",
    NetworkError: "Cannot reach the service",
    RecordingError: "The recording could not be used",
    SpeakerReferenceError: "Reference clips of the speaker are needed",
    UnknownSpeakerError: "No reference clips for this speaker"
  };
  function addReferencesAdvice() { return "Add reference clips of the speaker in \u201cThe speaker\u201d panel, then try again."; }
  /** What to do about each error, in a sentence; the service's own message follows as the detail. */
  var ERROR_ADVICE = {
    UploadTooLargeError: function (l) { return "Send a shorter or compressed clip of at most " + formatMiB(l.max_upload_bytes) + "."; },
    UnsupportedMediaTypeError: function () { return "Choose an audio file: " + FORMATS + "."; },
    AudioDecodeError: function () { return "Choose an audio file: " + FORMATS + "."; },
    EmptyAudioError: function () { return "The file holds no sound: record or choose another clip."; },
    NoSpeechError: function () { return "The clip seems silent or too quiet: speak closer to the microphone, or choose another clip."; },
    AudioTooLongError: function (l) { return "Send one utterance of at most " + l.max_audio_seconds + " s."; },
    InvalidAudioError: function () { return "The samples cannot be used: export the clip again as 16-bit WAV."; },
    RequestTimeoutError: function () { return "Try a shorter clip, or retry in a moment."; },
    ModelNotReadyError: function () { return "Retry in a few seconds."; },
    ServiceBusyError: function () { return "Retry in a few seconds."; },
    SpeakerReferenceError: addReferencesAdvice,
    UnknownSpeakerError: addReferencesAdvice
  };
  var STATUS_TITLES = { 413: "This file is too large", 415: "This upload is not supported", 422: "This audio cannot be used",
                        503: "The service is busy", 504: "The prediction took too long" };

  var state = { limits: DEFAULT_LIMITS, explainable: null, busy: false, recorder: null, audioUrl: null,
                speakerMode: false, minReferences: null };

  function $(id) { return document.getElementById(id); }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function show(node, visible) { node.hidden = !visible; }

  /** Sizes in MiB (1024 x 1024 bytes), the unit of `vibe-check serve --max-upload-mb`: "10 MiB", "0.25 MiB". */
  function formatMiB(bytes) { return String(parseFloat((bytes / MIB).toFixed(bytes < MIB ? 2 : 1))) + " MiB"; }

  function formatNumber(x, digits) {
    if (typeof x !== "number" || !isFinite(x)) return "?";
    var a = Math.abs(x);
    if (a !== 0 && (a >= 10000 || a < 0.01)) return x.toPrecision(3);
    return x.toFixed(a >= 100 ? 0 : (digits === undefined ? 2 : digits));
  }

  /* ---------------------------------------------------------------- status and errors */

  /** The status line; ``done`` keeps it for screen readers only, since the verdict shows the same. */
  function setStatus(text, busy, done) {
    var node = $("status");
    node.textContent = text || "";
    node.classList.toggle("is-busy", Boolean(busy));
    node.classList.toggle("is-done", Boolean(done));
  }

  function clearError() {
    show($("error"), false);
    ["error-title", "error-advice", "error-message"].forEach(function (id) { $(id).textContent = ""; });
  }

  function showError(type, message, status) {
    setStatus("");
    $("error-title").textContent = ERROR_TITLES[type] || STATUS_TITLES[status] || "Something went wrong";
    $("error-advice").textContent = ERROR_ADVICE[type] ? ERROR_ADVICE[type](state.limits) : "";
    $("error-message").textContent = message || "No details were given.";
    show($("error"), true);
    show($("placeholder"), false);
  }

  /** An Error carrying the service's {"error": {"type", "message"}} and the HTTP status. */
  function ServiceError(type, message, status) {
    this.type = type;
    this.message = message;
    this.status = status;
  }

  /** The error of a failed response, read from its JSON body; never the raw body (it could be a trace). */
  function errorOf(response, body) {
    var err = body && body.error;
    if (err && typeof err.message === "string") {
      return new ServiceError(String(err.type || "Error"), err.message, response.status);
    }
    return new ServiceError("HTTPError", "The service answered " + response.status + " " + (response.statusText || "") +
                            " without an explanation.", response.status);
  }

  function fetchJSON(url, options) {
    return fetch(url, options).then(function (response) {
      return response.json().catch(function () { return null; }).then(function (body) {
        if (!response.ok) throw errorOf(response, body);
        if (body === null) throw new ServiceError("HTTPError", "The service answered with something other than JSON.", response.status);
        return body;
      });
    }, function () {
      throw new ServiceError("NetworkError", "The request did not reach the service: check that `vibe-check serve` is still running.", 0);
    });
  }

  /* ---------------------------------------------------------------- model panel */

  function formatDate(iso) {
    var d = new Date(iso);
    if (!iso || isNaN(d.getTime())) return iso || "unknown";
    return d.toISOString().slice(0, 16).replace("T", " ") + " UTC";
  }

  function renderModel(info) {
    $("model-bundle").textContent = info.bundle || "unknown";
    $("model-name").textContent = info.name || "unknown";
    var type = info.model_label || info.model_type || "unknown";
    if (info.model_label && info.model_type) type += " (" + info.model_type + ")";
    if (info.ensemble_members && info.ensemble_members.length) type += " of " + info.ensemble_members.join(", ");
    $("model-type").textContent = type;
    $("model-task").textContent = info.task || "unknown";

    var classes = $("model-classes");
    classes.textContent = "";
    (info.classes || []).forEach(function (c) { classes.appendChild(el("li", null, c)); });

    var cv = info.cv || {};
    var body = $("model-metrics").querySelector("tbody");
    body.textContent = "";
    METRIC_LABELS.forEach(function (pair) {
      var m = cv[pair[0]];
      if (!m || typeof m.mean !== "number") return;
      var row = el("tr");
      row.appendChild(el("th", null, pair[1])).setAttribute("scope", "row");
      row.appendChild(el("td", null, m.mean.toFixed(3) + " \u00b1 " + (typeof m.std === "number" ? m.std.toFixed(3) : "?")));
      body.appendChild(row);
    });
    if (!body.children.length) {
      var empty = el("tr");
      empty.appendChild(el("td", null, "not recorded in this bundle")).setAttribute("colspan", "2");
      body.appendChild(empty);
    }
    var protocol = cv.protocol || "";
    if (info.n_training_files) protocol += (protocol ? "; " : "") + info.n_training_files + " training clips";
    $("model-protocol").textContent = protocol;
    $("model-hash").textContent = info.feature_hash || "unknown";
    $("model-created").textContent = formatDate(info.created_at);
    var version = info.versions && info.versions.vibe_check;
    if (version) $("version").textContent = "vibe-check " + version;

    state.limits = Object.assign({}, DEFAULT_LIMITS, info.limits || {});
    state.explainable = info.explainable !== false;
    $("upload-hint").textContent = FORMATS + " of one utterance, up to " + formatMiB(state.limits.max_upload_bytes) +
      " and " + state.limits.max_audio_seconds + " s.";
    if (!state.explainable) {
      $("explain-toggle").checked = false;
      $("explain-toggle").disabled = true;
      $("explain-toggle").nextElementSibling.textContent = "Explain the prediction (not available for this model yet)";
    }
    $("model-caveat").textContent = info.trained_on_generated_speech
      ? "This model was trained by the demo on generated speech: it shows that the pipeline works, not how real voices " +
        "sound, so its predictions on real recordings mean little, however confident they look."
      : "";
    show($("model-caveat"), Boolean(info.trained_on_generated_speech));
    if (info.speaker_normalized) enableSpeakerPanel(info.min_reference_clips);
    $("model-status").textContent = "";
    show($("model-status"), false);
    show($("model-facts"), true);
    $("model-panel").setAttribute("aria-busy", "false");
  }

  function loadModel(attempt) {
    fetchJSON("model").then(renderModel, function (err) {
      if (err.status === 503 && attempt < 60) {  // still loading: retry for about a minute
        $("model-status").textContent = "The model is loading\u2026";
        setTimeout(function () { loadModel(attempt + 1); }, 1000);
        return;
      }
      $("model-status").textContent = "Model details unavailable: " + err.message;
      $("model-panel").setAttribute("aria-busy", "false");
    });
  }

  /* ---------------------------------------------------------------- results */

  function renderBars(probabilities, top) {
    var list = $("probabilities");
    list.textContent = "";
    var entries = Object.keys(probabilities || {}).map(function (k) { return [k, Number(probabilities[k]) || 0]; });
    entries.sort(function (a, b) { return b[1] - a[1]; });
    entries.forEach(function (entry) {
      var pct = entry[1] * 100;
      var row = el("li", "bar-row" + (entry[0] === top ? " is-top" : ""));
      row.dataset.emotion = entry[0];
      row.dataset.probability = String(entry[1]);
      row.appendChild(el("span", "bar-label", entry[0]));
      var track = el("span", "bar-track");
      track.setAttribute("aria-hidden", "true");
      var fill = el("span", "bar-fill");
      fill.style.width = Math.max(0, Math.min(100, pct)).toFixed(1) + "%";
      track.appendChild(fill);
      row.appendChild(track);
      row.appendChild(el("span", "bar-value", pct.toFixed(1) + "%"));
      list.appendChild(row);
    });
  }

  function pushText(contribution, space, target, towards) {
    var amount = space === "probability"
      ? Math.abs(contribution * 100).toFixed(1) + " pts"
      : Math.abs(contribution).toFixed(2) + " log-odds";
    return (towards ? "+" : "\u2212") + amount + (towards ? " towards " : " away from ") + target;
  }

  function reasonItem(item, space, target, towards) {
    var li = el("li");
    var text = el("span", "reason-text");
    var label = item.label || item.name;
    var level = item.level === "typical" ? "is typical" : "is " + (item.level || "unusual");
    var what = el("span", "reason-what", label.charAt(0).toUpperCase() + label.slice(1) + " " + level);
    if (item.description) what.title = item.description;
    text.appendChild(what);
    text.appendChild(el("span", "reason-push", pushText(Number(item.contribution) || 0, space, target, towards)));
    li.appendChild(text);
    var unit = item.unit ? " " + item.unit : "";
    var detail = item.name + " = " + formatNumber(item.value) + unit;
    if (typeof item.q25 === "number" && typeof item.q75 === "number") {
      detail += "; middle half of the training clips " + formatNumber(item.q25) + " to " + formatNumber(item.q75) + unit;
    } else if (typeof item.typical === "number") {
      detail += "; typical " + formatNumber(item.typical) + unit;
    }
    li.appendChild(el("span", "reason-detail", detail));
    return li;
  }

  function renderReasons(explanation, note) {
    var towards = $("reasons"), away = $("reasons-away");
    towards.textContent = "";
    away.textContent = "";
    show($("explain-summary"), false);
    show($("reasons-away-box"), false);
    if (!explanation) {
      $("explain-note").textContent = note;
      show($("explain-note"), Boolean(note));
      show($("reasons-heading"), Boolean(note));
      return;
    }
    var target = explanation.predicted;
    var space = explanation.space;
    (explanation.towards || []).forEach(function (item) { towards.appendChild(reasonItem(item, space, target, true)); });
    (explanation.away || []).forEach(function (item) { away.appendChild(reasonItem(item, space, target, false)); });
    show($("reasons-away-box"), away.children.length > 0);
    show($("reasons-heading"), true);
    var unit = space === "probability" ? "percentage points of probability" : "log-odds";
    $("explain-summary").textContent = "The acoustic features that pushed the model most towards " + target +
      " (SHAP contributions in " + unit + ", compared with the training clips).";
    show($("explain-summary"), true);
    if (!towards.children.length) towards.appendChild(el("li", null, "No single feature stands out: many small pushes add up."));
    $("explain-note").textContent = note || "";
    show($("explain-note"), Boolean(note));
  }

  function renderResult(result, source, note) {
    $("result-emotion").textContent = result.emotion;
    var pct = (Number(result.confidence) * 100).toFixed(1);
    $("result-confidence").textContent = pct + "% confident";
    var parts = [source.name];
    if (typeof result.duration_s === "number") parts.push(result.duration_s.toFixed(1) + " s");
    if (typeof result.speech_duration_s === "number") parts.push(result.speech_duration_s.toFixed(1) + " s of speech");
    if (typeof result.snr_db === "number") parts.push("signal-to-noise " + result.snr_db.toFixed(0) + " dB");
    $("result-source").textContent = parts.join(" \u00b7 ");

    var caveats = [];
    if (typeof result.speech_duration_s === "number" && result.speech_duration_s < 1) {
      caveats.push("Very little speech was found, so this result is less reliable.");
    }
    var sorted = Object.keys(result.probabilities || {}).map(function (k) { return result.probabilities[k]; })
      .sort(function (a, b) { return b - a; });
    if (sorted.length > 1 && sorted[0] - sorted[1] < 0.1) caveats.push("The model is unsure: the top two emotions are close.");
    $("result-caveat").textContent = caveats.join(" ");
    show($("result-caveat"), caveats.length > 0);

    var audio = $("result-audio");
    if (state.audioUrl) URL.revokeObjectURL(state.audioUrl);
    state.audioUrl = URL.createObjectURL(source.blob);
    audio.src = state.audioUrl;
    show(audio, true);

    renderBars(result.probabilities, result.emotion);
    renderReasons(result.explanation, note);
    show($("placeholder"), false);
    show($("result"), true);
  }

  /* ---------------------------------------------------------------- prediction */

  function post(blob, name, explain) {
    var form = new FormData();
    form.append("file", blob, name);
    var query = [];
    if (explain) query.push("explain=true");
    if (state.speakerMode) query.push("speaker=" + encodeURIComponent(speakerId()));
    return fetchJSON("predict" + (query.length ? "?" + query.join("&") : ""), { method: "POST", body: form });
  }

  /** Predict with reasons when asked and possible; without them (and a note) when the model cannot explain. */
  function predictWithReasons(blob, name) {
    var wanted = $("explain-toggle").checked;
    if (!wanted || state.explainable === false) {
      var why = state.explainable === false ? "This model cannot explain its predictions yet, so only the prediction is shown."
        : "Explanations are switched off: tick \u201cExplain the prediction\u201d to see the reasons.";
      return post(blob, name, false).then(function (r) { return [r, why]; });
    }
    return post(blob, name, true).then(function (r) {
      if (r.explanation) return [r, ""];
      return [r, r.explanation_error ? "The explanation failed (" + r.explanation_error + "), so only the prediction is shown."
        : "The service returned no explanation for this clip."];
    }, function (err) {
      // 501: this model has no explain method; ask again without. Any other error (a failed explanation
      // comes back as a 200 with explanation_error, handled above) is the request's own and is shown as is.
      if (err.status === 501) {
        state.explainable = false;
        return post(blob, name, false).then(function (r) {
          return [r, "This model cannot explain its predictions yet, so only the prediction is shown."];
        });
      }
      throw err;
    });
  }

  /** The service's message, or for the speaker flow one in the page's terms (the service's speaks of its API). */
  function pageMessage(err) {
    if (state.speakerMode && err.type === "UnknownSpeakerError") {
      return "No reference clips of " + speakerId() + " are stored: none were added yet, they were forgotten, or the service " +
        "has restarted since.";
    }
    return err.message;
  }

  function setBusy(busy) {
    state.busy = busy;
    $("drop-zone").disabled = busy;
    $("record-button").disabled = busy && !state.recorder;
    $("result").setAttribute("aria-busy", busy ? "true" : "false");
  }

  function analyse(blob, name) {
    if (state.busy) return;
    clearError();
    if (blob.size > state.limits.max_upload_bytes) {
      var size = formatMiB(blob.size), limit = formatMiB(state.limits.max_upload_bytes);
      if (size === limit) { size = blob.size + " bytes"; limit = state.limits.max_upload_bytes + " bytes"; }
      showError("UploadTooLargeError", name + " is " + size + "; this service accepts up to " + limit +
                " per clip. Send a shorter or compressed clip.", 413);
      show($("result"), false);
      return;
    }
    if (blob.size === 0) {
      showError("EmptyAudioError", name + " is empty (0 bytes).", 422);
      show($("result"), false);
      return;
    }
    if (state.speakerMode && !isSpeakerId(speakerId())) {
      showError("SpeakerReferenceError", "This model classifies a clip relative to its speaker: name the speaker and add at least " +
                (state.minReferences || "a few") + " reference clips of them first.", 0);
      show($("result"), false);
      $("speaker-id").focus();
      return;
    }
    setBusy(true);
    var whose = state.speakerMode ? " (relative to " + speakerId() + ")" : "";
    setStatus("Analysing " + name + whose + "\u2026", true);
    predictWithReasons(blob, name).then(function (pair) {
      setStatus("Done: the model hears " + pair[0].emotion + " in " + name + whose + ".", false, true);
      renderResult(pair[0], { name: name, blob: blob }, pair[1]);
    }, function (err) {
      show($("result"), false);
      showError(err.type, pageMessage(err), err.status);
    }).then(function () { setBusy(false); });
  }

  /* ---------------------------------------------------------------- upload */

  function setupUpload() {
    var zone = $("drop-zone"), input = $("file-input");
    zone.addEventListener("click", function () { input.click(); });
    input.addEventListener("change", function () {
      if (input.files && input.files[0]) analyse(input.files[0], input.files[0].name);
      input.value = "";  // choosing the same file again analyses it again
    });
    ["dragenter", "dragover"].forEach(function (type) {
      zone.addEventListener(type, function (e) { e.preventDefault(); zone.classList.add("is-dragging"); });
    });
    ["dragleave", "dragend"].forEach(function (type) {
      zone.addEventListener(type, function () { zone.classList.remove("is-dragging"); });
    });
    zone.addEventListener("drop", function (e) {
      e.preventDefault();
      zone.classList.remove("is-dragging");
      var files = e.dataTransfer && e.dataTransfer.files;
      if (files && files.length) analyse(files[0], files[0].name);
    });
    // A file dropped beside the zone must not make the browser navigate away from the page.
    ["dragover", "drop"].forEach(function (type) {
      window.addEventListener(type, function (e) { e.preventDefault(); });
    });
  }

  /* ---------------------------------------------------------------- recording */

  /** 16-bit PCM mono WAV of float samples in [-1, 1]. */
  function encodeWav(samples, sampleRate) {
    var n = samples.length;
    var buffer = new ArrayBuffer(44 + n * 2);
    var view = new DataView(buffer);
    function ascii(offset, text) { for (var i = 0; i < text.length; i++) view.setUint8(offset + i, text.charCodeAt(i)); }
    ascii(0, "RIFF");
    view.setUint32(4, 36 + n * 2, true);
    ascii(8, "WAVE");
    ascii(12, "fmt ");
    view.setUint32(16, 16, true);             // fmt chunk size
    view.setUint16(20, 1, true);              // PCM
    view.setUint16(22, 1, true);              // mono
    view.setUint32(24, sampleRate, true);
    view.setUint32(28, sampleRate * 2, true); // byte rate
    view.setUint16(32, 2, true);              // block align
    view.setUint16(34, 16, true);             // bits per sample
    ascii(36, "data");
    view.setUint32(40, n * 2, true);
    for (var i = 0; i < n; i++) {
      var s = Math.max(-1, Math.min(1, samples[i] || 0));
      view.setInt16(44 + i * 2, s < 0 ? s * 0x8000 : s * 0x7fff, true);
    }
    return new Blob([buffer], { type: "audio/wav" });
  }

  /** Decode a recording (webm/ogg/mp4, whatever the browser made) and re-encode it as 16 kHz mono WAV. */
  function toWav(blob) {
    var Offline = window.OfflineAudioContext || window.webkitOfflineAudioContext;
    if (!Offline) return Promise.reject(new ServiceError("RecordingError", "This browser cannot convert audio (no Web Audio API): upload a file instead.", 0));
    return blob.arrayBuffer().then(function (data) {
      return new Offline(1, 1, TARGET_RATE).decodeAudioData(data);
    }).then(function (decoded) {
      var ctx = new Offline(1, Math.max(1, Math.ceil(decoded.duration * TARGET_RATE)), TARGET_RATE);
      var source = ctx.createBufferSource();
      source.buffer = decoded;
      source.connect(ctx.destination);  // channels are mixed down to mono, and resampled, by the context
      source.start();
      return ctx.startRendering();
    }).then(function (rendered) {
      return encodeWav(rendered.getChannelData(0), TARGET_RATE);
    }, function (err) {
      throw err instanceof ServiceError ? err
        : new ServiceError("RecordingError", "The browser could not decode its own recording (" + (err && err.message || err) + ").", 0);
    });
  }

  function micErrorMessage(err) {
    var name = err && err.name;
    if (name === "NotAllowedError" || name === "SecurityError") {
      return "Microphone access was denied. Allow the microphone for this page in the browser's site settings, or upload a file instead.";
    }
    if (name === "NotFoundError" || name === "OverconstrainedError") return "No microphone was found. Connect one, or upload a file instead.";
    if (name === "NotReadableError") return "The microphone is in use by another program, or could not be started.";
    return "The microphone could not be started" + (err && err.message ? " (" + err.message + ")" : "") + ". Upload a file instead.";
  }

  function setRecordingUi(recording) {
    var button = $("record-button");
    button.setAttribute("aria-pressed", recording ? "true" : "false");
    $("record-label").textContent = recording ? "Stop recording" : "Record your voice";
    $("drop-zone").disabled = recording || state.busy;
  }

  function startRecording() {
    var status = $("record-status");
    clearError();
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      status.textContent = window.isSecureContext === false
        ? "Recording needs a secure page (HTTPS, or this machine as localhost): upload a file instead."
        : "This browser cannot record audio: upload a file instead.";
      return;
    }
    if (typeof window.MediaRecorder === "undefined") {
      status.textContent = "This browser cannot record audio (no MediaRecorder): upload a file instead.";
      return;
    }
    status.textContent = "Waiting for microphone permission\u2026";
    navigator.mediaDevices.getUserMedia({ audio: true }).then(function (stream) {
      var recorder = new MediaRecorder(stream);
      var chunks = [];
      var started = Date.now();
      var limit = Math.max(1, Number(state.limits.max_audio_seconds) - 0.5);
      var timer = setInterval(function () {
        var seconds = (Date.now() - started) / 1000;
        status.textContent = "Recording\u2026 " + seconds.toFixed(0) + " s of at most " + Math.floor(limit) + " s. Press stop when done.";
        if (seconds >= limit) stopRecording();
      }, 250);
      state.recorder = recorder;
      recorder.addEventListener("dataavailable", function (e) { if (e.data && e.data.size) chunks.push(e.data); });
      recorder.addEventListener("stop", function () {
        clearInterval(timer);
        stream.getTracks().forEach(function (t) { t.stop(); });
        state.recorder = null;
        setRecordingUi(false);
        status.textContent = "Converting the recording to WAV\u2026";
        toWav(new Blob(chunks, { type: recorder.mimeType || "audio/webm" })).then(function (wav) {
          status.textContent = "Recorded " + ((Date.now() - started) / 1000).toFixed(1) + " s.";
          analyse(wav, "recording.wav");
        }, function (err) {
          status.textContent = "";
          showError(err.type || "RecordingError", err.message, 0);
        });
      });
      recorder.start();
      setRecordingUi(true);
      status.textContent = "Recording\u2026 speak one sentence, then press stop.";
    }, function (err) {
      status.textContent = micErrorMessage(err);
    });
  }

  function stopRecording() {
    if (state.recorder && state.recorder.state !== "inactive") state.recorder.stop();
  }

  function setupRecording() {
    $("record-button").addEventListener("click", function () {
      if (state.recorder) stopRecording(); else startRecording();
    });
  }

  /* ---------------------------------------------------------------- speaker (speaker-normalised models) */

  function speakerId() { return $("speaker-id").value.trim(); }

  /** Whether the service accepts ``id``: the name field's own pattern, which is the service's. */
  function isSpeakerId(id) { return new RegExp("^(?:" + $("speaker-id").pattern + ")$", "u").test(id); }

  function speakerUrl(id) { return "speakers/" + encodeURIComponent(id); }

  function setSpeakerStatus(text) { $("speaker-status").textContent = text; }

  function renderSpeaker(status) {
    var need = status.min_reference_clips;
    state.minReferences = need;
    setSpeakerStatus(status.ready
      ? "Ready: " + status.n_references + " reference clip(s) of " + status.speaker + " stored. Try a clip of them."
      : status.n_references + " reference clip(s) of " + status.speaker + " stored; " + need + " needed. Add " +
        (need - status.n_references) + " more.");
    show($("speaker-forget"), true);
  }

  function renderReferenceErrors(items) {
    var list = $("reference-errors");
    list.textContent = "";
    items.forEach(function (item) {
      list.appendChild(el("li", null, item.filename + ": " + item.message));
    });
    show(list, items.length > 0);
  }

  /** The id typed, or null (with the reason shown) when the service would refuse it. */
  function validSpeakerId() {
    var id = speakerId();
    if (isSpeakerId(id)) return id;
    setSpeakerStatus(id ? "\u201c" + id + "\u201d cannot be used as a name: use letters, digits, \u201c_\u201d, \u201c.\u201d or \u201c-\u201d (at most 64)."
      : "Name the speaker first.");
    $("speaker-id").focus();
    return null;
  }

  function lookUpSpeaker() {
    renderReferenceErrors([]);
    show($("speaker-forget"), false);
    var id = speakerId();
    if (!id) { setSpeakerStatus(""); return; }
    if (!validSpeakerId()) return;
    fetchJSON(speakerUrl(id)).then(renderSpeaker, function (err) {
      setSpeakerStatus(err.status === 404 ? "No reference clips of " + id + " yet: add at least " + (state.minReferences || "a few") + "."
        : err.message);
    });
  }

  function uploadReferences(files) {
    var id = validSpeakerId();
    if (!id) return;
    var form = new FormData(), refused = [], count = 0;
    var limit = state.limits.max_batch_files || files.length;
    files.forEach(function (file, i) {
      if (i >= limit) {
        refused.push({ filename: file.name, message: "not sent: at most " + limit + " files at once" });
      } else if (file.size > state.limits.max_upload_bytes) {
        refused.push({ filename: file.name, message: "not sent: larger than " + formatMiB(state.limits.max_upload_bytes) });
      } else {
        form.append("files", file, file.name);
        count++;
      }
    });
    renderReferenceErrors(refused);
    if (!count) return;
    $("reference-button").disabled = true;
    setSpeakerStatus("Adding " + count + " reference clip(s) of " + id + "\u2026");
    fetchJSON(speakerUrl(id) + "/references", { method: "POST", body: form }).then(function (status) {
      renderSpeaker(status);
      renderReferenceErrors(refused.concat(status.results.filter(function (r) { return r.error; }).map(function (r) {
        return { filename: r.filename, message: r.error.message };
      })));
    }, function (err) {
      setSpeakerStatus(err.message);
    }).then(function () { $("reference-button").disabled = false; });
  }

  function forgetSpeaker() {
    var id = validSpeakerId();
    if (!id) { show($("speaker-forget"), false); return; }  // no speaker named: nothing to forget, nothing to send
    renderReferenceErrors([]);
    fetchJSON(speakerUrl(id), { method: "DELETE" }).then(function () {
      setSpeakerStatus("Forgot the reference clips of " + id + ".");
      show($("speaker-forget"), false);
    }, function (err) {
      setSpeakerStatus(err.status === 404 ? "No reference clips of " + id + " are stored: nothing to forget." : err.message);
      if (err.status === 404) show($("speaker-forget"), false);
    });
  }

  function enableSpeakerPanel(minReferences) {
    state.speakerMode = true;
    state.minReferences = minReferences || null;
    if (minReferences) {
      $("speaker-hint").textContent = "This model hears a clip relative to its speaker's usual voice: name the speaker, add at least " +
        minReferences + " clips of them (any emotion; more is better), then try clips of the same speaker.";
    }
    show($("speaker-panel"), true);
  }

  function setupSpeaker() {
    var input = $("reference-input");
    $("speaker-id").addEventListener("change", lookUpSpeaker);
    $("reference-button").addEventListener("click", function () { if (validSpeakerId()) input.click(); });
    input.addEventListener("change", function () {
      if (input.files && input.files.length) uploadReferences(Array.prototype.slice.call(input.files));
      input.value = "";
    });
    $("speaker-forget").addEventListener("click", forgetSpeaker);
  }

  /* ---------------------------------------------------------------- start */

  function start() {
    setupUpload();
    setupRecording();
    setupSpeaker();
    loadModel(0);
  }

  window.vibeCheck = { encodeWav: encodeWav, toWav: toWav, analyse: analyse };  // for tests and the console
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start); else start();
})();

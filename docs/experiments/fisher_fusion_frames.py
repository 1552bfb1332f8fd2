"""Research script behind docs/experiments.md, "Frame-level views": not part of the package.

Step 1 of 2: frame-level descriptors (MFCC 1-20, their deltas, F0 in semitones from the clip median,
voicing, level; active frames only) of every row of a training manifest (originals and augmented
copies), captured from the feature extractor's own front end. About 3 minutes on 2 cores.

    python docs/experiments/fisher_fusion_frames.py models/custom/manifest.parquet /tmp/frames.pkl
"""
import sys
import pickle, numpy as np, pandas as pd, librosa
from joblib import Parallel, delayed

def frame_feats(cap):
    mel, act, v = cap["mel_db"], cap["active"], cap["voiced"]
    T = mel.shape[1]; act = act[:T]
    mfcc = librosa.feature.mfcc(S=mel, n_mfcc=21)[1:]
    d = librosa.feature.delta(mfcc, width=5, mode="nearest") if T >= 5 else np.zeros_like(mfcc)
    f0 = cap["f0"][:T]; st = 12*np.log2(np.maximum(f0,1)/55.0); vv = v[:T]
    med = np.median(st[vv]) if vv.sum() > 2 else 0
    st = np.where(vv, st - med, 0)
    lev = cap["level"][:T] - cap["level"][:T][act].mean() if act.any() else cap["level"][:T]
    F = np.vstack([mfcc, d, st[None], vv[None].astype(float), lev[None]]).T
    return (F[act] if act.sum() > 5 else F).astype(np.float32)

def work(items):
    from vibe_check.features import FeatureExtractor, _spectral, _prosody
    cap = {}
    oc, op, ot = _spectral.cepstral_features, _prosody.prosody_features, _prosody.timing_features
    def c(*a, **k): cap["mel_db"] = k["mel_db"]; cap["active"] = k["active"]; return oc(*a, **k)
    def p(f0, voiced, **k): cap["f0"] = f0; cap["voiced"] = voiced; return op(f0, voiced, **k)
    def t(level, voiced, **k): cap["level"] = level; return ot(level, voiced, **k)
    _spectral.cepstral_features = c; _prosody.prosody_features = p; _prosody.timing_features = t
    fx = FeatureExtractor()
    out = []
    for i, src in items:
        cap.clear()
        if isinstance(src, str): fx.extract_file(src)
        else:
            y, sr = src.load(fx.config.sample_rate); fx.extract(y, sr)
        out.append((i, frame_feats(cap)))
    return out

if __name__ == "__main__":
    from vibe_check.data._augment import AugmentedClip
    m = pd.read_parquet(sys.argv[1])
    orig = m[m.augmentation == "none"]
    by_actor = {}
    for p, a in zip(orig.path, orig.actor): by_actor.setdefault(a, []).append(p)
    items = []
    for i, r in enumerate(m.itertuples()):
        if r.augmentation == "none":
            items.append((i, r.path))
        else:
            others = tuple(o for o in by_actor[r.actor] if o != r.path)
            items.append((i, AugmentedClip(r.path, r.augmentation, AugmentedClip.cache_key(r.sha256, r.augmentation), others)))
    chunks = [items[k::8] for k in range(8)]
    res = Parallel(n_jobs=2, verbose=5)(delayed(work)(ch) for ch in chunks)
    FR = [None] * len(m)
    for r in res:
        for i, F in r: FR[i] = F
    pickle.dump(FR, open(sys.argv[2], "wb"))
    print("done", len(FR), sum(f.shape[0] for f in FR))

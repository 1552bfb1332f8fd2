"""Reference clips of the speakers a speaker-normalised model serves, kept in memory.

A speaker-normalised bundle classifies a clip relative to its speaker's average (see
:meth:`~vibe_check.models.CustomEmotionModel.for_speaker`). The service collects each speaker's
references as clients send them and keeps only their feature rows, never the audio. Memory is
bounded twice: at most ``max_speakers`` speakers (the least recently used is forgotten first)
and, per speaker, the ``max_reference_clips`` most recent clips (a rolling window of how the
speaker sounds lately).
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque

import numpy as np

__all__ = ["SpeakerReferences", "SPEAKER_ID_PATTERN"]

#: Speaker ids: short, URL-safe, and never mistaken for a path.
SPEAKER_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$"


class SpeakerReferences:
    """Thread-safe, bounded store of reference feature rows per speaker id.

    Parameters
    ----------
    max_speakers : int
        Speakers kept; adding a new one beyond this forgets the least recently used.
    max_reference_clips : int
        Clips kept per speaker; older ones are dropped as new ones arrive.

    Examples
    --------
    >>> store = SpeakerReferences(max_speakers=2, max_reference_clips=3)
    >>> store.add("alice", [np.zeros((1, 4))] * 5)
    3
    >>> store.add("bob", [np.ones((1, 4))]), store.add("carol", [np.ones((1, 4))]), "alice" in store
    (1, 1, False)
    """

    def __init__(self, max_speakers: int = 1000, max_reference_clips: int = 64):
        if max_speakers < 1 or max_reference_clips < 1:
            raise ValueError("max_speakers and max_reference_clips must be at least 1")
        self.max_speakers = max_speakers
        self.max_reference_clips = max_reference_clips
        self._rows: OrderedDict[str, deque] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, speaker: str, rows: list[np.ndarray]) -> int:
        """Append the rows of new reference clips; the speaker's clip count after it."""
        with self._lock:
            kept = self._rows.get(speaker)
            if kept is None:
                kept = self._rows[speaker] = deque(maxlen=self.max_reference_clips)
                while len(self._rows) > self.max_speakers:
                    self._rows.popitem(last=False)
            self._rows.move_to_end(speaker)
            kept.extend(np.asarray(r) for r in rows)
            return len(kept)

    def rows(self, speaker: str) -> list[np.ndarray] | None:
        """The speaker's reference rows (None for an unknown speaker); counts as a use."""
        with self._lock:
            kept = self._rows.get(speaker)
            if kept is None:
                return None
            self._rows.move_to_end(speaker)
            return list(kept)

    def count(self, speaker: str) -> int | None:
        with self._lock:
            kept = self._rows.get(speaker)
            return None if kept is None else len(kept)

    def remove(self, speaker: str) -> bool:
        with self._lock:
            return self._rows.pop(speaker, None) is not None

    def __contains__(self, speaker: object) -> bool:
        with self._lock:
            return speaker in self._rows

    def __len__(self) -> int:
        with self._lock:
            return len(self._rows)

"""Where a `WhisperModel`'s time goes: its steps (features, encoder, generation, alignment) timed by wrapping them."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


class Profile:
    """Seconds spent in each of the model's steps, counted by wrapping them on one `WhisperModel`."""

    STEPS = ("feature_extractor", "encode", "generate", "add_word_timestamps", "detect_language")

    def __init__(self, model: Any) -> None:
        self.seconds = dict.fromkeys(self.STEPS, 0.0)
        self.calls = dict.fromkeys(self.STEPS, 0)
        for name in ("encode", "add_word_timestamps"):
            setattr(model, name, self._timed(name, getattr(model, name)))
        extractor = model.feature_extractor
        model.feature_extractor = _Callable(extractor, self._timed("feature_extractor", extractor))
        model.model = _Forwarding(model.model, self)

    def _timed(self, name: str, call: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return call(*args, **kwargs)
            finally:
                self.seconds[name] += time.perf_counter() - started
                self.calls[name] += 1

        return timed

    def reset(self) -> dict[str, Any]:
        taken = {k: [round(self.seconds[k], 3), self.calls[k]] for k in self.STEPS}
        self.seconds = dict.fromkeys(self.STEPS, 0.0)
        self.calls = dict.fromkeys(self.STEPS, 0)
        return taken


class _Callable:
    """A callable object (faster-whisper's feature extractor) whose calls are timed and attributes kept."""

    def __init__(self, inner: Any, timed: Callable[..., Any]) -> None:
        self._inner = inner
        self._call = timed

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._call(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class _Forwarding:
    def __init__(self, inner: Any, profile: Profile) -> None:
        self._inner = inner
        self._profile = profile

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._inner, name)
        if name in ("generate", "detect_language"):
            return self._profile._timed(name, value)
        return value

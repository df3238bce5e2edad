"""The worker's decoding code on a machine that has only numpy, CTranslate2, faster-whisper and pydantic.

A GPU machine lent for a benchmark has no package index: `processors/__init__` (which wires up the whole worker,
Kafka clients and all) must not run there, and PyAV, which faster-whisper imports to decode files, may be missing.
"""

from __future__ import annotations

import importlib
import sys
import types
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def processors_module(name: str) -> Any:
    """`processors.<name>`, importing only what it imports itself."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    if "processors" not in sys.modules:
        package = types.ModuleType("processors")
        package.__path__ = [str(REPO / "processors")]
        sys.modules["processors"] = package
    try:
        importlib.import_module("av")
    except ImportError:  # nothing here decodes a file
        sys.modules["av"] = types.ModuleType("av")
    return importlib.import_module(f"processors.{name}")

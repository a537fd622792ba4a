# CPU image for every scdeal step: docker build -t scdeal/scdeal:0.1.0 .
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PIP_NO_CACHE_DIR=1 TQDM_DISABLE=1 MPLBACKEND=Agg
RUN apt-get update && apt-get install -y --no-install-recommends procps && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/scdeal
COPY pyproject.toml README.md ./
COPY src ./src
COPY bin ./bin
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu \
 && pip install .
ENV PATH="/opt/scdeal/bin:${PATH}"

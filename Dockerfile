# The scdeal image: every step of the pipeline, CPU or CUDA build (docs/usage.md#containers).
#   docker build -t ghcr.io/scdeal/scdeal:local .
#   docker build --build-arg TORCH_VARIANT=cu128 -t ghcr.io/scdeal/scdeal-cuda:local .
# (then run the pipeline with --container_tag local). CI tags its builds with the pipeline version and
# sha-<commit> (.github/workflows/build-images.yml).
# Both install environment.yml, the pinned environment of the conda profile, less its scdeal entry: the
# image holds the scdeal of this build's own source. The CUDA build takes torch
# from the cu128 wheel index; those wheels bring their own CUDA libraries, so the host needs only the
# NVIDIA driver (docker --gpus, singularity --nv) and both builds share this base image.
FROM mambaorg/micromamba:2.0.5-debian12-slim

LABEL org.opencontainers.image.source="https://github.com/scdeal/scdeal" \
      org.opencontainers.image.description="scdeal: single-cell drug response predicted from bulk cell-line screens (every step of the pipeline)" \
      org.opencontainers.image.licenses="MIT"

ARG TORCH_VARIANT=cpu

COPY --chown=$MAMBA_USER:$MAMBA_USER environment.yml /tmp/environment.yml
RUN sed -i -e "s#download.pytorch.org/whl/cpu#download.pytorch.org/whl/${TORCH_VARIANT}#" \
        -e "/^ *- scdeal @ /d" /tmp/environment.yml \
 && micromamba install --yes --name base --file /tmp/environment.yml \
 && micromamba clean --all --yes

# Singularity/Apptainer run commands without the image's entrypoint: the environment goes on PATH here
ENV PATH="/opt/scdeal/bin:/opt/conda/bin:${PATH}" \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    MPLBACKEND=Agg \
    TQDM_DISABLE=1

# The dependencies are pinned above: scdeal alone, built with the pinned setuptools; then every step of
# scdeal.pipeline.steps.STEPS imports (the list the pipeline runs, so a new step cannot be missed here)
COPY --chown=$MAMBA_USER:$MAMBA_USER pyproject.toml README.md /tmp/scdeal/
COPY --chown=$MAMBA_USER:$MAMBA_USER src /tmp/scdeal/src
RUN pip install --no-deps --no-build-isolation /tmp/scdeal \
 && NUMBA_CACHE_DIR=/tmp/build_cache MPLCONFIGDIR=/tmp/build_cache \
    python -c "import importlib; from scdeal.pipeline.steps import STEPS; [importlib.import_module(f'scdeal.pipeline.steps.{step}').build_parser() for step in STEPS]" \
 && rm -rf /tmp/scdeal /tmp/build_cache
COPY bin /opt/scdeal/bin

# The container user (docker -u $(id -u):$(id -g)) has no home: numba and matplotlib cache in /tmp
# (under Nextflow each task gets its own cache folder instead, nextflow.config env)
ENV NUMBA_CACHE_DIR=/tmp/numba_cache \
    MPLCONFIGDIR=/tmp/matplotlib

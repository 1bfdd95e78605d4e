# The Airbyte image of source-iterable: `docker run IMAGE spec|check|discover|read ...`.
#
# Built like Airbyte's Python connectors: two stages on Airbyte's connector base image (Python
# 3.13), pinned by tag and digest; the connector is the entrypoint and runs as `airbyte`.
# Unlike Airbyte's template, the connector goes into a virtual environment that holds exactly the
# hash-checked versions of requirements.lock, so every build installs the same dependencies.
# The image holds the connector only: its own distribution (connector/pyproject.toml), not the
# repository's development install with the Iterable emulator and the PyAirbyte main job.
# `airbyte-cdk image build --dockerfile Dockerfile` passes the same BASE_IMAGE from metadata.yaml.
ARG BASE_IMAGE=docker.io/airbyte/python-connector-base:4.1.0@sha256:1d1aa21d34e851df4e8a87b391c27724c06e2597608e7161f4d167be853bd7b6

FROM ${BASE_IMAGE} AS builder
WORKDIR /airbyte/integration_code
# Dependencies first: this layer is rebuilt only when the lock changes.
COPY requirements.lock ./
RUN python -m venv /airbyte/venv \
    && /airbyte/venv/bin/pip install --no-cache-dir --require-hashes --no-deps --requirement requirements.lock
COPY connector/pyproject.toml ./connector/
COPY source_iterable ./source_iterable
# `pip check` fails the build if the lock misses a dependency on the image's Python.
RUN /airbyte/venv/bin/pip install --no-cache-dir --no-deps ./connector \
    && /airbyte/venv/bin/pip check

FROM ${BASE_IMAGE}
WORKDIR /airbyte/integration_code
COPY --from=builder /airbyte/venv /airbyte/venv
ENV PATH="/airbyte/venv/bin:${PATH}" \
    AIRBYTE_ENTRYPOINT="/airbyte/venv/bin/source-iterable"
ENTRYPOINT ["/airbyte/venv/bin/source-iterable"]
# The base image's non-root user, named as in Airbyte's connector template: its numeric id is
# the base image's to choose, so DL3066 (prefer a numeric user) does not apply.
# hadolint ignore=DL3066
USER airbyte

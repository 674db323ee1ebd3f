# The image the Helm chart runs: the job (with its shipped rules, inside the wheel) and nothing else.
# `make test` runs the same steps without Docker: build the wheel, install it into a clean
# virtualenv, run `detection-job --help`, `validate` and a `run` (tests/integration/test_installed_wheel.py).

FROM python:3.11-slim AS build
WORKDIR /src
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# Dependencies first: this layer is rebuilt only when pyproject.toml changes, not for every source edit.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /requirements.txt \
    && pip wheel --wheel-dir /deps -r /requirements.txt \
    && mv /requirements.txt /deps/
# Then the job itself; the wheel carries the shipped rules (rule_defs/ becomes job/rule_defs).
COPY README.md ./
COPY job ./job
COPY rule_defs ./rule_defs
RUN pip wheel --no-deps --wheel-dir /app-wheel .

FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HOME=/tmp
COPY --from=build /deps /deps
RUN pip install --no-index --find-links /deps -r /deps/requirements.txt && rm -rf /deps
COPY --from=build /app-wheel /app-wheel
RUN pip install --no-index --no-deps /app-wheel/*.whl && rm -rf /app-wheel \
    && groupadd --gid 10001 detection \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /tmp --shell /usr/sbin/nologin detection
# An empty working directory: no .env file is read unless one is mounted here.
WORKDIR /app
# Numeric, so Kubernetes can verify runAsNonRoot; the chart runs as the same user (securityContext).
USER 10001:10001
ENTRYPOINT ["detection-job"]
CMD ["run"]

# The image the Helm chart runs: the job, its shipped rules, and nothing else.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY job ./job
COPY rule_defs ./rule_defs
RUN pip install --no-cache-dir . && useradd --uid 10001 --no-create-home detection
ENV DETECTION_RULES_DIR=/app/rule_defs
USER 10001
ENTRYPOINT ["detection-job"]
CMD ["run"]

# The api and the worker: one image, two commands (see docker-compose.yml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN useradd --create-home --uid 1000 promptpilot
WORKDIR /app

COPY pyproject.toml README.md* worker.py ./
COPY schema ./schema
COPY definition ./definition
COPY workflows ./workflows
COPY activities ./activities
COPY api ./api
COPY promptpilot ./promptpilot
COPY devstack ./devstack
COPY payloads ./payloads
COPY reconcile ./reconcile
RUN pip install .

USER promptpilot
EXPOSE 8000
CMD ["promptpilot", "api"]

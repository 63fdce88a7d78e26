# The Raspberry worker image: the project installed, run by a Prefect process worker.
FROM python:3.11-slim

# bubblewrap isolates model-written code (docs/verification.md); unshare comes with util-linux.
RUN apt-get update && apt-get install -y --no-install-recommends bubblewrap \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PREFECT_SERVER_ANALYTICS_ENABLED=false

COPY pyproject.toml README.md prefect.yaml ./
COPY raspberry raspberry
COPY flows flows
COPY tasks tasks
COPY app app
COPY prompts prompts
COPY configs configs
# The demo config decontaminates against this benchmark sample.
COPY tests/data tests/data
RUN pip install -e .

# Builds, the request cache and Prefect's task results (under data/builds/_prefect_results).
VOLUME /app/data
CMD ["prefect", "worker", "start", "--pool", "raspberry", "--type", "process"]

# One image for every ortel Python service (ingest, dashboard, agent, simulator, migrations); compose.yaml picks
# the command. Secrets never enter the image: they come from the environment and from mounted files.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY wire ./wire
COPY runtime ./runtime
COPY edge_agent ./edge_agent
COPY ingest ./ingest
COPY dashboard ./dashboard
COPY simulators ./simulators
COPY ortel_cli ./ortel_cli
RUN pip install . \
    && useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin ortel \
    && mkdir -p /var/lib/ortel \
    && chown ortel /var/lib/ortel

# Non-root from here on: a compromised service cannot touch the installed code.
USER ortel
WORKDIR /var/lib/ortel
CMD ["ortel", "--help"]

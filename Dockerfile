# nemorouter gateway image: `docker build -t nemorouter .`
# The config is mounted at /etc/nemorouter/nemorouter.yaml (see compose.yaml); secrets come
# from the environment through the config's os.environ/NAME references.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install . \
    && rm -rf /src \
    && useradd --system --uid 10001 --home-dir /var/lib/nemorouter --create-home \
       --shell /usr/sbin/nologin nemorouter

# The working folder holds what the gateway writes locally (a SQLite store when no
# database_url is set, the spend journal): owned by the unprivileged user.
WORKDIR /var/lib/nemorouter
USER nemorouter

EXPOSE 4000
# Liveness: GET /health answers while the process serves (readiness is /health/ready).
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:4000/health', timeout=2)"]

ENTRYPOINT ["nemorouter", "serve", "--host", "0.0.0.0", "--port", "4000"]
CMD ["--config", "/etc/nemorouter/nemorouter.yaml"]

# syntax=docker/dockerfile:1
#
# Cairn server image.
#
#   docker build -t cairn .
#   docker run --rm -p 127.0.0.1:50051:50051 -v cairn-data:/var/lib/cairn cairn
#   docker run --rm -p 50051:50051 \
#       -e CAIRN_REDIS_URL=redis://redis:6379/0 \
#       -e CAIRN_POSTGRES_DSN=postgresql://cairn:secret@postgres:5432/cairn cairn
#
# Configuration is by CAIRN_* environment variables: every `cairn serve --some-flag`
# has CAIRN_SOME_FLAG (see `docker run --rm cairn serve --help`). Flags on the command
# line win over env vars, so the listen address is set by CMD below; to change it,
# override the command (and the HEALTHCHECK target with it).
# Without CAIRN_REDIS_URL/CAIRN_POSTGRES_DSN it runs the embedded default: an
# in-process cache and a SQLite file in /var/lib/cairn (mount a volume there).
#
# Extra optional dependencies: docker build --build-arg CAIRN_EXTRAS=server,encryption .

# ---- build: the cairn wheel plus wheels of all its dependencies -------------------------------
FROM python:3.11-slim AS build
ARG CAIRN_EXTRAS=server
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
# .dockerignore lets only pyproject.toml, README.md and the Python packages in.
COPY . .
RUN pip wheel --wheel-dir /wheels ".[${CAIRN_EXTRAS}]"

# ---- runtime: slim Python, the installed wheel, a non-root user ------------------------------
FROM python:3.11-slim AS runtime
ARG CAIRN_EXTRAS=server
LABEL org.opencontainers.image.title="cairn" \
      org.opencontainers.image.description="Cairn: a checkpoint store for durable agent and workflow graphs (gRPC)" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN groupadd --system --gid 10001 cairn \
 && useradd --system --uid 10001 --gid cairn --home-dir /var/lib/cairn --no-create-home \
        --shell /usr/sbin/nologin cairn \
 && install -d -o cairn -g cairn -m 0750 /var/lib/cairn \
 && install -d -o cairn -g cairn -m 0770 /var/run/cairn

# The wheels are bind-mounted from the build stage, so they never become a layer of this image.
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-index --find-links=/wheels "$(ls /wheels/cairn_checkpoint-*.whl)[${CAIRN_EXTRAS}]"

ENV CAIRN_SQLITE_PATH=/var/lib/cairn/cairn.db
WORKDIR /var/lib/cairn
USER 10001:10001

EXPOSE 50051
# grpc.health.v1 Check; exit 0 only when the server answers SERVING (NOT_SERVING while draining).
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["cairn", "health", "--target", "127.0.0.1:50051"]
# SIGTERM (docker stop) drains in-flight calls for CAIRN_GRACE_SECONDS, then exits 0.
STOPSIGNAL SIGTERM
ENTRYPOINT ["cairn"]
CMD ["serve", "--listen", "0.0.0.0:50051"]

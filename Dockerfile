# The DAGR server image: `docker build -t dagr .` (BuildKit: the default builder of Docker
# 23+, or podman/buildah), then see docs/operations.md#containers.
#
# Stage 1 builds the one binary; stage 2 is Debian slim with that binary, CA certificates and
# nothing else, running as the unprivileged user `dagr` (uid/gid 10001).
#
# What the build needs besides Rust: a C compiler (the bundled SQLite, zstd and ring are
# compiled with `cc`), which the rust image has. No protoc (the Flight protocol code comes
# generated in arrow-flight; no build script of the workspace runs one), no OpenSSL (TLS is
# rustls), no git dependencies. `.cargo/config.toml` must be in the context: it builds the
# bundled SQLite with fdatasync (docs/audit.md).
#
# Caching: BuildKit cache mounts keep the crates.io downloads and cargo's target directory
# between builds on the same builder, so a rebuild after a source change recompiles only DAGR's
# own crates (the first build compiles DataFusion, tonic, sqlx, ... from source: tens of
# minutes on 2 cores). There is no "dependencies only" layer with dummy sources: the workspace
# has six packages, nine declared benches, auto-discovered tests, askama templates and embedded
# SQL migrations, and a dummy-source layer that does not mirror all of them either fails or,
# through cargo's mtime fingerprints, ships a stale binary. A CI without a persistent builder
# cache gets no reuse from the mounts: export them (`--cache-to type=local,...`) or accept a
# full build.

ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm

FROM rust:${RUST_VERSION}-${DEBIAN_RELEASE} AS build
WORKDIR /src
COPY . .
# The target directory is a cache mount (not in any layer), so the binary is copied out of it
# in the same step.
RUN --mount=type=cache,id=dagr-cargo-registry,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,id=dagr-cargo-git,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,id=dagr-target-release,target=/src/target,sharing=locked \
    cargo build --release --locked --bin dagr \
 && install -D -m 0755 target/release/dagr /out/dagr \
 && /out/dagr --version

FROM debian:${DEBIAN_RELEASE}-slim AS runtime
# The binary needs only glibc and libgcc_s (both in the base image). ca-certificates: the
# system roots that S3 over HTTPS (--store s3://...) and `dagr load/pull/sync --server
# https://...` trust. Not pinned to a version: it must follow Debian's security updates on
# every rebuild.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 dagr \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/dagr --no-create-home \
      --shell /usr/sbin/nologin dagr \
 && install -d -o 10001 -g 10001 -m 0750 /var/lib/dagr

COPY --from=build /out/dagr /usr/local/bin/dagr

# Settings of `dagr serve` as environment variables (docs/configuration.md), so that
# `docker run -e ...` overrides each one, and so that `docker exec ... dagr admin` and
# `dagr audit verify` find the same data directory. They also win over a configuration
# file (flags > environment > file > defaults): set these four with -e, not in the file.
# - listen on every interface of the container (the defaults are 127.0.0.1);
# - the data directory is the volume;
# - a production image does not seed the demo; `-e DAGR_NO_DEMO=false` seeds it into an empty
#   volume (the value must be exactly `true` or `false`: clap refuses `1`).
ENV DAGR_DATA_DIR=/var/lib/dagr \
    DAGR_HTTP_ADDR=0.0.0.0:8080 \
    DAGR_FLIGHT_ADDR=0.0.0.0:50051 \
    DAGR_NO_DEMO=true

VOLUME ["/var/lib/dagr"]
WORKDIR /var/lib/dagr
# HTTP: REST API under /api/v1, portal, /metrics. Flight / Flight SQL (gRPC).
EXPOSE 8080 50051
USER 10001:10001
# dagr is PID 1 and handles SIGTERM and SIGINT itself (it starts no child processes, so no
# init is needed to reap them): it turns /api/v1/ready to 503, stops accepting, gives in-flight
# calls 20 s and running uploads up to 20 s more, then closes the audit log. Give it 60 s:
# `docker stop -t 60`, `docker run --stop-timeout 60`, Kubernetes
# terminationGracePeriodSeconds: 60.
STOPSIGNAL SIGTERM
# No HEALTHCHECK: the image has no HTTP client. Probe GET /api/v1/health (liveness) and
# GET /api/v1/ready (readiness) from the orchestrator (docs/operations.md).
ENTRYPOINT ["/usr/local/bin/dagr"]
CMD ["serve"]

LABEL org.opencontainers.image.title="dagr" \
      org.opencontainers.image.description="DAGR: data distribution and governance server" \
      org.opencontainers.image.licenses="EUPL-1.2"

# account-link-service image: `serve` by default; `emulator`, `migrate` and
# `health-check` are the other subcommands.
#
#   docker build -t account-link-service .
#
# Stages (cargo-chef, as zero2prod does):
#   chef     the pinned Rust toolchain plus cargo-chef
#   planner  writes recipe.json, the dependency graph without our sources
#   builder  builds the dependencies from recipe.json (a layer that stays
#            cached until Cargo.toml or Cargo.lock change), then the binary
#   runtime  debian slim, ca-certificates, a non-root user, the binary
#
# The build needs nothing beyond crates.io: build.rs compiles proto/ with
# protox (no protoc) and sqlx::migrate! embeds migrations/{postgres,sqlite} at compile time.
# .dockerignore lists what the context holds.

FROM rust:1.95.0-slim-bookworm AS chef
WORKDIR /app
RUN cargo install cargo-chef --locked --version 0.1.78

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
# Compile-checked sqlx queries, if any, read the committed .sqlx/ and never
# a database.
ENV SQLX_OFFLINE=true
COPY --from=planner /app/recipe.json recipe.json
RUN cargo chef cook --release --locked --recipe-path recipe.json
COPY . .
RUN cargo build --release --locked --bin account-link-service

FROM debian:bookworm-slim AS runtime
# ca-certificates: the AWS SDK checks AWS's TLS certificates against the
# system trust store. The pin is bookworm-security's version: bump it when
# Debian publishes a new one (the old one then leaves the archive).
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates=20250419~deb12u2 \
    && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 app \
    && useradd --system --no-log-init --uid 10001 --gid app \
        --create-home --home-dir /home/app --shell /usr/sbin/nologin app
COPY --from=builder /app/target/release/account-link-service /usr/local/bin/account-link-service
# The SQLite store's directory (see ACCOUNT_LINK_DATA_DIR below), owned by
# the service user so that a volume mounted there starts writable.
RUN install -d -o 10001 -g 10001 -m 0750 /home/app/data
VOLUME ["/home/app/data"]
USER 10001:10001
WORKDIR /home/app
# Inside a container the service must listen on every interface; the
# HEALTHCHECK below assumes the gRPC port stays 50051 (plaintext). Without
# DATABASE_URL the service keeps its SQLite store in ACCOUNT_LINK_DATA_DIR:
# mount a volume there, or set DATABASE_URL to PostgreSQL (as compose does).
ENV ACCOUNT_LINK_LISTEN=0.0.0.0:50051 \
    ACCOUNT_LINK_METRICS_LISTEN=0.0.0.0:9184 \
    ACCOUNT_LINK_DATA_DIR=/home/app/data \
    LOG_FORMAT=json
# 50051: gRPC (health, reflection, the API); 9184: Prometheus /metrics.
EXPOSE 50051 9184
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["account-link-service", "health-check", "--addr", "127.0.0.1:50051"]
ENTRYPOINT ["account-link-service"]
CMD ["serve"]

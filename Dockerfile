# A small runtime image of `cxmetrics`, running as a non-root user.
#   docker build -t cxmetrics .
#   docker run -e DATABASE_URL=postgres://... -p 50051:50051 cxmetrics
FROM rust:1.95-bookworm AS build
WORKDIR /src
# Dependencies first, so that a source change does not download them again.
COPY Cargo.toml Cargo.lock ./
RUN cargo fetch --locked
COPY build.rs ./
COPY proto proto
COPY migrations migrations
COPY src src
COPY benches benches
COPY tests tests
RUN cargo build --release --locked --bin cxmetrics \
    && strip target/release/cxmetrics

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin cxmetrics
COPY --from=build /src/target/release/cxmetrics /usr/local/bin/cxmetrics
USER 10001
ENV CXMETRICS_LISTEN=0.0.0.0:50051 \
    CXMETRICS_LOG_FORMAT=json
EXPOSE 50051
ENTRYPOINT ["cxmetrics"]
CMD ["serve"]

# One image with the three hostscope programs. Build: docker build -t hostscope .
# Stage 1: dependencies first, so a source change does not rebuild them.
FROM rust:1-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends nodejs npm && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY core/Cargo.toml core/Cargo.toml
COPY collector/Cargo.toml collector/Cargo.toml
COPY analyzer/Cargo.toml analyzer/Cargo.toml
COPY web/Cargo.toml web/Cargo.toml
COPY tests/Cargo.toml tests/Cargo.toml
RUN for c in core collector analyzer web tests; do mkdir -p $c/src && echo 'fn main() {}' > $c/src/main.rs && touch $c/src/lib.rs; done \
 && mkdir -p core/benches tests/integration && echo 'fn main() {}' > core/benches/encode.rs && echo '' > tests/integration/main.rs \
 && cargo fetch --locked
# Stage 2: the real build (the web build runs `npm ci` for ECharts).
COPY . .
RUN cargo build --release --locked -p hostscope-collector -p hostscope-analyzer -p hostscope-web

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/hostscope --create-home hostscope
COPY --from=build /src/target/release/hostscope-collector /src/target/release/hostscope-analyzer /src/target/release/hostscope-web /usr/local/bin/
COPY deploy/hostscope.toml /etc/hostscope/hostscope.toml
USER hostscope
WORKDIR /var/lib/hostscope

# Builds the `leasehold` binary and ships it in a small image.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src src
COPY lua lua
COPY crates crates
RUN cargo build --release --locked --bin leasehold

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --no-create-home leasehold
COPY --from=build /src/target/release/leasehold /usr/local/bin/leasehold
USER leasehold
ENV LEASEHOLD_LISTEN=0.0.0.0:8080
EXPOSE 8080
ENTRYPOINT ["leasehold"]
CMD ["serve"]

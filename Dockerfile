# soket in a small image: built with the Rust toolchain, run on distroless
# (glibc and libgcc only: no shell, no package manager, a non-root user).
# See docs/DEPLOY.md.
#   docker build -t soket .
#   docker run --rm -p 8888:8888 soket

FROM rust:1-bookworm AS build
WORKDIR /src
# What `cargo build --bin soket` reads (the manifest names the benches, so
# they come too); .dockerignore keeps everything else out of the context.
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY benches ./benches
RUN cargo build --release --locked --bin soket

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/soket /usr/local/bin/soket
EXPOSE 8888
# soket answers SIGTERM (docker stop) with close 1001 to every WebSocket and exits 0.
ENTRYPOINT ["/usr/local/bin/soket"]
CMD ["--listen", "0.0.0.0:8888"]

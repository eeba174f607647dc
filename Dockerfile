# wsgate in a container: a multi-stage build, run as a non-root user.
# Untested here (the project's machines have no container engine).
#
#   docker build -t wsgate .
#   docker run --rm -p 8080:8080 -v "$PWD/examples/chat:/app" wsgate
#
# The image runs HTTP and in-process handlers. Function handlers written in
# JavaScript/TypeScript or Python need Node.js 20+ or Python 3 in the image:
# add them to the final stage (apt-get install nodejs python3).

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --bin wsgate

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --create-home --home-dir /app --shell /usr/sbin/nologin wsgate
COPY --from=build /src/target/release/wsgate /usr/local/bin/wsgate
USER wsgate
WORKDIR /app
EXPOSE 8080 9091
# SIGTERM (docker stop) drains for --drain-timeout (30 s by default): stop
# with `docker stop --time 45`, since Docker kills after 10 s unless told.
STOPSIGNAL SIGTERM
ENTRYPOINT ["wsgate", "serve", "--listen", "0.0.0.0:8080"]

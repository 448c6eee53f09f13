# syntax=docker/dockerfile:1
#
# Build:  docker build -t stage-sfu .
# Run:    docker run --rm --network host \
#           -e STAGE_SFU_AUTH_SECRET="$(openssl rand -base64 48)" \
#           -e STAGE_SFU_MEDIA_ICE_ADDRESSES=<this host's IP> \
#           stage-sfu
# Token:  docker run --rm -e STAGE_SFU_AUTH_SECRET=... stage-sfu token --room r --identity i --role host

# ---- builder: wheels for the package and every dependency ------------------------------------
FROM python:3.11-slim-bookworm AS builder

# Compilers only for dependencies that ship no wheel for this platform; never in the runtime.
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src

# Dependencies first, from pyproject.toml alone, so source edits reuse this (slow) layer.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > requirements.txt \
    && pip wheel --wheel-dir /wheels -r requirements.txt

# .dockerignore keeps tests, benchmarks and caches out of this copy.
COPY . ./
RUN pip wheel --no-deps --wheel-dir /wheels .

# ---- runtime ----------------------------------------------------------------------------------
FROM python:3.11-slim-bookworm AS runtime

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

# Bind-mounted rather than copied so the wheels never become an image layer.
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-index --find-links /wheels stage-sfu

RUN useradd --system --uid 10001 --user-group --create-home --home-dir /home/sfu \
    --shell /usr/sbin/nologin sfu

# Signaling (HTTP + WebSocket) and the media UDP range (configs/default.toml media.udp_port_*).
EXPOSE 8080/tcp 40000-49999/udp

# Listen on every interface: inside a container loopback is unreachable from outside.
ENV STAGE_SFU_SERVER_HOST=0.0.0.0
# Anyone who can reach a dev-token endpoint could mint a host token; mint with `token` instead.
ENV STAGE_SFU_AUTH_DEV_TOKENS=false
# ICE needs the concrete address a browser can send UDP to, which is only known at run time
# (0.0.0.0 is not a candidate address). Set it to the host's IP with `--network host`, or to
# the container's IP and STAGE_SFU_MEDIA_ANNOUNCED_ADDRESS to the public IP when the UDP range
# is published (`-p 40000-49999:40000-49999/udp`). Loopback keeps the image bootable for the
# health check; `serve` logs a warning while media is loopback-only.
ENV STAGE_SFU_MEDIA_ICE_ADDRESSES=127.0.0.1
# Public IP or host name to put in ICE candidates (NAT, cloud VMs); empty = the bound address.
ENV STAGE_SFU_MEDIA_ANNOUNCED_ADDRESS=""
# STAGE_SFU_AUTH_SECRET is deliberately not set here: secrets never go into images, and
# `serve` refuses the built-in development secret on a non-loopback host.

USER sfu
WORKDIR /home/sfu

HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 \
    CMD python -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=3)"

ENTRYPOINT ["stage-sfu"]
CMD ["serve"]

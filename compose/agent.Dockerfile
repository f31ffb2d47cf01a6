# AgCluster agent image: one container per session, runs `python3 -m runner` under tini.
#
# Built by scripts/setup.sh (stage "image") with the classic builder and --network none from a
# context assembled in .agc/build-ctx:
#   Dockerfile                 this file
#   agent-requirements.txt     compose/agent-requirements.txt
#   wheels/                    wheelhouse (pip download --only-binary=:all: --python-version 3.11)
#   agc/{broker,runner,configs}  the repo's packages
# The base image is made by debootstrap (no registry here); see scripts/setup.sh.
# No "# syntax=" line on purpose: it would make BuildKit pull a frontend image.

ARG BASE_IMAGE=agcluster-base:bookworm

# ---- stage 1: install the wheels into /opt/venv (the wheelhouse never reaches the final image);
#      the data stack's own test suites (~120 MB) are dropped
FROM ${BASE_IMAGE} AS venv
LABEL agc.role=agent-venv
COPY agent-requirements.txt /tmp/agent-requirements.txt
COPY wheels/ /wheels/
RUN python3 -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-index --find-links /wheels --no-cache-dir \
        --disable-pip-version-check -q -r /tmp/agent-requirements.txt \
 && sp=/opt/venv/lib/python3.11/site-packages \
 && find "$sp/pandas" "$sp/numpy" "$sp/scipy" "$sp/sklearn" "$sp/matplotlib" \
        -type d -name tests -prune -exec rm -rf {} + \
 && /opt/venv/bin/python -c 'import claude_agent_sdk, msgspec, pydantic, yaml, pandas, numpy, \
        scipy.stats, sklearn.linear_model, matplotlib.pyplot'

# ---- stage 2: the runtime image
FROM ${BASE_IMAGE}
RUN groupadd --gid 1000 agent \
 && useradd --uid 1000 --gid 1000 --home-dir /home/agent --create-home --shell /bin/bash agent \
 && install -d -o agent -g agent -m 0755 /workspace
COPY --from=venv /opt/venv /opt/venv
# platform code: root-owned, read-only for the agent user
COPY agc/ /opt/agc/
RUN /opt/venv/bin/python -m compileall -q /opt/agc >/dev/null || true

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

# CPU image; the same scripts/install.sh as CI and the README quick start.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MUJOCO_GL=egl \
    WANDB_MODE=offline

# Offscreen rendering for videos (MUJOCO_GL=egl): EGL through Mesa's software renderer.
# Unpinned on purpose: Debian's security updates replace these versions in the archive.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends libegl1 libegl-mesa0 libgl1-mesa-dri libgles2 \
    && rm -rf /var/lib/apt/lists/*

RUN useradd --create-home --uid 1000 rl \
    && install -d -o rl -g rl /home/rl/app
WORKDIR /home/rl/app
COPY --chown=rl:rl . .
USER 1000:1000
RUN bash scripts/install.sh
ENV PATH=/home/rl/app/.venv/bin:$PATH

ENTRYPOINT ["python", "main.py"]
CMD ["--spec", "specs/fetch_mt.yaml"]

"""Videos of the policy: noise-free episodes rendered offscreen, labelled, written as MP4.

Rendering uses MuJoCo's offscreen context (``MUJOCO_GL=egl`` unless a display is set; on a
CPU machine EGL renders through Mesa). One frame per env step plus the reset frame, so an
episode of horizon T gives T + 1 frames.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import imageio.v3 as iio
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from common.envs import family_of
from common.policy import Policy

FRAME_SIZE = 256
"""Width and height of a rendered frame (even, as H.264 wants)."""
FPS = 25


@dataclass
class RenderedEpisode:
    frames: np.ndarray
    """``(T + 1, H, W, 3)`` uint8, the reset frame first."""
    success: bool


def render_episodes(policy: Policy, tasks: list[str], task: str, episodes: int,
                    seed: int) -> list[RenderedEpisode]:
    """``episodes`` noise-free episodes of ``task`` with ``policy``, every step rendered."""
    index = tasks.index(task)
    env = family_of(task).make_rendering(task, FRAME_SIZE)
    try:
        rendered = []
        for episode in range(episodes):
            obs, _ = env.reset(seed=seed + episode)
            frames, info = [env.render()], {}
            for _ in range(env.spec.max_episode_steps):
                action = policy.act(index, obs["observation"][None], obs["desired_goal"][None])
                obs, _, _, _, info = env.step(action[0])
                frames.append(env.render())
            rendered.append(RenderedEpisode(np.stack(frames), bool(info["is_success"] > 0.5)))
        return rendered
    finally:
        env.close()


def labelled(task: str, episodes: list[RenderedEpisode]) -> np.ndarray:
    """All frames in order, each showing the task, the episode and its outcome."""
    font = ImageFont.load_default(size=13)
    out = []
    for number, episode in enumerate(episodes, 1):
        outcome = "success" if episode.success else "failure"
        text = f"{task}\nepisode {number}/{len(episodes)}: {outcome}"
        for frame in episode.frames:
            image = Image.fromarray(frame)
            ImageDraw.Draw(image).text((6, 6), text, fill=(255, 255, 255), font=font,
                                       stroke_width=2, stroke_fill=(0, 0, 0))
            out.append(np.asarray(image))
    return np.stack(out)


def write_mp4(path: Path, frames: np.ndarray) -> Path:
    """H.264 MP4 of ``frames`` (ffmpeg from imageio-ffmpeg's wheel)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    iio.imwrite(path, frames, plugin="FFMPEG", fps=FPS, codec="libx264", macro_block_size=16)
    return path


def record_video(policy: Policy, tasks: list[str], task: str, episodes: int, seed: int,
                 path: Path) -> list[RenderedEpisode]:
    """Render, label and write one MP4 of ``episodes`` episodes of ``task``."""
    rendered = render_episodes(policy, tasks, task, episodes, seed)
    write_mp4(path, labelled(task, rendered))
    return rendered


def gif_bytes(frames: np.ndarray, every: int = 2) -> bytes:
    """An animated GIF of every ``every``-th frame, in real time (TensorBoard's video)."""
    images = [Image.fromarray(frame) for frame in frames[::every]]
    out = io.BytesIO()
    images[0].save(out, format="GIF", save_all=True, append_images=images[1:],
                   duration=round(1000 * every / FPS), loop=0)
    return out.getvalue()


def read_frames(path: Path) -> np.ndarray:
    """Decode an MP4 back into ``(N, H, W, 3)`` uint8 frames."""
    return iio.imread(path, plugin="FFMPEG")

"""Videos of the policy: noise-free episodes rendered offscreen, labelled, written as MP4.

Rendering uses MuJoCo's offscreen context (``MUJOCO_GL=egl`` unless set otherwise; on a
CPU machine EGL renders through Mesa). One frame per env step plus the reset frame, so an
episode of horizon T gives T + 1 frames. Episodes are written as they finish: memory holds
one episode's frames, however many episodes a video has.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import imageio.v2 as imageio
import imageio.v3 as iio
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from common.envs import family_of
from common.policy import Policy

FRAME_SIZE = 256
"""Width and height of a rendered frame (even, as H.264 wants)."""
FPS = 25
RENDERING_HINT = ("offscreen rendering needs MUJOCO_GL=egl and an EGL library "
                  "(Debian: libegl1 libegl-mesa0 libgl1-mesa-dri libgles2)")


class VideoError(RuntimeError):
    """A video could not be rendered or written (no EGL library, no ffmpeg, a bad path)."""


def labelled(task: str, frames: list[np.ndarray], number: int, total: int,
             success: bool) -> list[np.ndarray]:
    """``frames`` of one episode, each showing the task, the episode and its outcome."""
    font = ImageFont.load_default(size=13)
    text = f"{task}\nepisode {number}/{total}: {'success' if success else 'failure'}"
    out = []
    for frame in frames:
        image = Image.fromarray(frame)
        ImageDraw.Draw(image).text((6, 6), text, fill=(255, 255, 255), font=font,
                                   stroke_width=2, stroke_fill=(0, 0, 0))
        out.append(np.asarray(image))
    return out


def record_video(policy: Policy, tasks: list[str], task: str, seeds: list[int],
                 path: Path) -> list[bool]:
    """One MP4 of noise-free episodes of ``task``, one per reset seed, one after the other;
    returns each episode's success. Raises :class:`VideoError` naming what failed."""
    index, successes = tasks.index(task), []
    try:
        with contextlib.ExitStack() as stack:
            path.parent.mkdir(parents=True, exist_ok=True)
            env = family_of(task).make_rendering(task, FRAME_SIZE)
            stack.callback(env.close)
            writer = imageio.get_writer(path, format="FFMPEG", fps=FPS, codec="libx264",
                                        macro_block_size=16)
            stack.callback(writer.close)
            for number, seed in enumerate(seeds, 1):
                obs, _ = env.reset(seed=seed)
                frames, info = [env.render()], {}
                for _ in range(env.spec.max_episode_steps):
                    goal = obs["desired_goal"][None]
                    obs, _, _, _, info = env.step(policy.act(index, obs["observation"][None],
                                                             goal)[0])
                    frames.append(env.render())
                successes.append(bool(info["is_success"] > 0.5))
                for frame in labelled(task, frames, number, len(seeds), successes[-1]):
                    writer.append_data(frame)
    except Exception as exc:  # whatever the renderer, ffmpeg or the file system raised
        raise VideoError(f"{path}: {exc}; {RENDERING_HINT}") from exc
    return successes


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

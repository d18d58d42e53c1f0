"""Video frames: labels, MP4 round trip, the GIF TensorBoard shows, wandb's copy."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from agent.sinks import WandbSink
from agent.video import RenderedEpisode, gif_bytes, labelled, read_frames, write_mp4


def episode(success: bool, frames: int = 3) -> RenderedEpisode:
    return RenderedEpisode(np.full((frames, 64, 96, 3), 40, np.uint8), success)


def test_every_frame_is_labelled_with_its_episodes_outcome() -> None:
    frames = labelled("FetchPush-v4", [episode(True), episode(False, 2)])
    assert frames.shape == (5, 64, 96, 3)
    assert all((frame != 40).any() for frame in frames)  # text on every frame
    assert (frames[0] == frames[2]).all()  # the same label through an episode
    assert not (frames[2] == frames[3]).all()  # "1/2: success" vs "2/2: failure"
    assert (frames[:, -10:] == 40).all()  # the picture below the label is untouched


def test_mp4_decodes_to_the_frames_written(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    frames = np.repeat(rng.integers(0, 255, (7, 1, 1, 3), dtype=np.uint8), 32, 1)
    frames = np.repeat(frames, 48, 2)  # flat colours: lossy H.264 keeps them close
    back = read_frames(write_mp4(tmp_path / "a" / "v.mp4", frames))
    assert back.shape == frames.shape
    assert np.abs(back.astype(int) - frames).mean() < 8


def test_gif_for_tensorboard_holds_every_second_frame() -> None:
    shades = np.arange(9, dtype=np.uint8)[:, None, None, None] * 25  # 9 distinct frames
    gif = Image.open(io.BytesIO(gif_bytes(np.broadcast_to(shades, (9, 16, 16, 3)).copy())))
    assert gif.format == "GIF" and gif.n_frames == 5


def test_wandb_sink_logs_a_video_record_as_media(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    write_mp4(tmp_path / "videos" / "FetchReach-v4" / "000000100.mp4",
              np.zeros((4, 32, 32, 3), np.uint8))
    sink = WandbSink(tmp_path, "offline", "fetch-mt-test", None, {"seed": 1}, run_id="v1")
    sink.write({"event": "video", "task": "FetchReach-v4", "env_steps": 100, "success": False,
                "video": "videos/FetchReach-v4/000000100.mp4"})
    sink.close()
    media = list((tmp_path / "wandb").glob("offline-run-*/files/media/videos/**/*.mp4"))
    assert len(media) == 1

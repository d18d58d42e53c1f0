"""Videos: labels, episodes rendered and written as MP4, the GIF TensorBoard shows, wandb's
copy, and a failure that names what failed."""

from __future__ import annotations

import io
import re
from pathlib import Path

import imageio.v2 as imageio
import numpy as np
import pytest
from PIL import Image

from agent.report.sinks import WandbSink
from agent.report.video import VideoError, gif_bytes, labelled, read_frames, record_video
from common.policy import build_policy
from common.spec import validate_spec
from tests.conftest import NEEDS_EGL


def test_every_frame_is_labelled_with_its_episodes_outcome() -> None:
    frames = [np.full((64, 96, 3), 40, np.uint8)] * 2
    won = labelled("FetchPush-v4", frames, 1, 2, success=True)
    lost = labelled("FetchPush-v4", frames, 2, 2, success=False)
    assert len(won) == 2 and won[0].shape == (64, 96, 3)
    assert all((frame != 40).any() for frame in won + lost)  # text on every frame
    assert (won[0] == won[1]).all()  # the same label through an episode
    assert not (won[0] == lost[0]).all()  # "1/2: success" vs "2/2: failure"
    assert all((frame[-10:] == 40).all() for frame in won + lost)  # the picture below


@NEEDS_EGL
def test_episodes_are_rendered_one_after_the_other_into_one_mp4(tmp_path: Path) -> None:
    spec = validate_spec({"tasks": ["FetchReach-v4"], "budget": {"env_steps": 100}}, "test")
    path = tmp_path / "videos" / "reach.mp4"
    successes = record_video(build_policy(spec), ["FetchReach-v4"], "FetchReach-v4", [3, 4], path)
    assert len(successes) == 2 and all(isinstance(s, bool) for s in successes)
    frames = read_frames(path)
    assert frames.shape == (2 * 51, 256, 256, 3)  # reset frame + 50 steps per episode
    assert not np.array_equal(frames[1], frames[52])  # two seeds, two scenes


def test_a_video_that_cannot_be_written_names_its_path(tmp_path: Path) -> None:
    spec = validate_spec({"tasks": ["FetchReach-v4"], "budget": {"env_steps": 100}}, "test")
    (tmp_path / "taken").write_text("")
    path = tmp_path / "taken" / "reach.mp4"  # its folder is a file
    with pytest.raises(VideoError, match=re.escape(str(path))):
        record_video(build_policy(spec), ["FetchReach-v4"], "FetchReach-v4", [1], path)


def test_gif_for_tensorboard_holds_every_second_frame() -> None:
    shades = np.arange(9, dtype=np.uint8)[:, None, None, None] * 25  # 9 distinct frames
    gif = Image.open(io.BytesIO(gif_bytes(np.broadcast_to(shades, (9, 16, 16, 3)).copy())))
    assert gif.format == "GIF" and gif.n_frames == 5


def test_wandb_sink_logs_a_video_record_as_media(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    video = tmp_path / "videos" / "FetchReach-v4" / "000000100.mp4"
    video.parent.mkdir(parents=True)
    with imageio.get_writer(video, format="FFMPEG", fps=25) as writer:
        for _ in range(4):
            writer.append_data(np.zeros((32, 32, 3), np.uint8))
    sink = WandbSink(tmp_path, "offline", "fetch-mt-test", None, {"seed": 1}, run_id="v1")
    sink.write({"event": "video", "task": "FetchReach-v4", "env_steps": 100, "success": False,
                "video": "videos/FetchReach-v4/000000100.mp4"})
    sink.close()
    media = list((tmp_path / "wandb").glob("offline-run-*/files/media/videos/**/*.mp4"))
    assert len(media) == 1

"""ffmpeg, driven so that parts join without re-encoding and no process outlives its render.

Every video part (a cached static scene, a customer's personal scenes) is encoded with exactly the same
settings, :func:`encoder_args`: libx264 ultrafast (Constrained Baseline, no B-frames), level 4.0, constant
QP, one GOP per two seconds, BT.709 tags (set on the frames, no conversion), yuv420p, the same time base,
one thread (so the same input gives the same bytes, and workers scale by processes). Parts are then joined
by the concat demuxer with ``-c copy`` and muxed with the audio track, also copied, with ``+faststart`` so
browsers start playing before the end.

ffmpeg is imageio-ffmpeg's static build (it starts in ~20 ms, Debian's shared build in ~80 ms), or
``COMMS_FFMPEG``. Each process writes its log into the render's temporary folder, is waited for, and is
killed and reaped if anything goes wrong, so a thousand renders leave no process behind.
"""

from __future__ import annotations

import subprocess
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Iterator, Sequence

from ..sandbox import RenderError

TIMEOUT_SECONDS = 300
QP = 23


def encoder_args(fps: int) -> list[str]:
    """The one encoder setting every part of every video shares (part of every cache key)."""
    return ["-c:v", "libx264", "-preset", "ultrafast", "-profile:v", "baseline", "-level:v", "4.0",
            "-qp", str(QP), "-g", str(2 * fps), "-keyint_min", str(fps), "-sc_threshold", "0", "-bf", "0",
            "-threads", "1", "-pix_fmt", "yuv420p", "-vf", COLOR_TAGS, "-video_track_timescale", str(fps * 512)]


# The frames are BT.709 limited range already: say so on the frames (setparams), which the encoder and the
# muxer copy into the stream. (``-colorspace bt709`` on the output instead makes ffmpeg convert every frame
# from what it assumes the raw input is, which doubles the encoding time and shifts the colours.)
COLOR_TAGS = "setparams=colorspace=bt709:color_primaries=bt709:color_trc=bt709:range=tv"


AUDIO_ARGS = ["-c:a", "aac", "-b:a", "96k", "-ar", "48000", "-ac", "2"]


@lru_cache(maxsize=4)
def ffmpeg_binary(configured: str | None = None) -> str:
    if configured:
        return configured
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except Exception:  # no bundled binary for this platform: Debian's
        return "ffmpeg"


class FFmpeg:
    """Runs ffmpeg commands inside one render's temporary folder."""

    def __init__(self, binary: str, workdir: Path):
        self.binary = binary
        self.workdir = workdir
        self._n = 0

    @contextmanager
    def process(self, args: Sequence[str], *, stdin: bool = False, stdout: bool = False
                ) -> Iterator[subprocess.Popen]:
        """Start ffmpeg; on leaving, close its pipes and wait; on any error kill it, reap it, raise."""
        self._n += 1
        log_path = self.workdir / f"ffmpeg-{self._n}.log"
        with open(log_path, "wb") as log:
            try:
                proc = subprocess.Popen([self.binary, "-hide_banner", "-nostats", "-loglevel", "error", "-y",
                                         *args], stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                                        stdout=subprocess.PIPE if stdout else subprocess.DEVNULL, stderr=log,
                                        cwd=self.workdir, close_fds=True)
            except OSError as exc:
                raise RenderError(f"cannot start ffmpeg ({self.binary}): {exc}") from None
            try:
                yield proc
                for pipe in (proc.stdin, proc.stdout):
                    if pipe:
                        pipe.close()
                code = proc.wait(timeout=TIMEOUT_SECONDS)
            except BrokenPipeError:
                code = _reap(proc)
            except subprocess.TimeoutExpired:
                _reap(proc, kill=True)
                raise RenderError(f"ffmpeg took longer than {TIMEOUT_SECONDS} s") from None
            except BaseException:
                _reap(proc, kill=True)
                raise
        if code != 0:
            raise RenderError(f"ffmpeg failed (exit {code}): {_last_line(log_path)}")

    def run(self, args: Sequence[str]) -> None:
        with self.process(args):
            pass


def _reap(proc: subprocess.Popen, kill: bool = False) -> int:
    if kill and proc.poll() is None:
        proc.kill()
    for pipe in (proc.stdin, proc.stdout):
        if pipe:
            try:
                pipe.close()
            except OSError:
                pass
    try:
        return proc.wait(timeout=TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


def _last_line(path: Path) -> str:
    try:
        lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return "no log"
    return lines[-1][:300] if lines else "no message"


def raw_input_args(size: tuple[int, int], fps: int) -> list[str]:
    return ["-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", f"{size[0]}x{size[1]}", "-framerate", str(fps),
            "-i", "pipe:0"]


def concat_list(parts: Sequence[Path], path: Path) -> Path:
    """An ffconcat file naming ``parts`` by absolute path (quotes escaped the way the demuxer reads them)."""
    lines = ["ffconcat version 1.0"]
    for part in parts:
        quoted = str(part.resolve()).replace("'", "'\\''")
        lines.append(f"file '{quoted}'")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def mux_args(video_inputs: list[str], audio: Path | None, out: Path) -> list[str]:
    """Copy the video (and the audio) into a browser-ready MP4: no re-encoding, moov atom first."""
    args = list(video_inputs)
    if audio is not None:
        args += ["-i", str(audio), "-map", "0:v:0", "-map", "1:a:0"]
    else:
        args += ["-map", "0:v:0"]
    return args + ["-c", "copy", "-movflags", "+faststart", "-metadata", "comment=comms", str(out)]


def music_args(source: Path, seconds: float, volume: float, fade_in: float, fade_out: float, out: Path) -> list[str]:
    """The music under a whole video: looped or cut to its length, faded in and out, AAC."""
    fade_out = min(fade_out, seconds / 2)
    filt = f"volume={volume:.3f},afade=t=in:st=0:d={min(fade_in, seconds / 2):.3f}," \
           f"afade=t=out:st={seconds - fade_out:.3f}:d={fade_out:.3f}"
    return ["-stream_loop", "-1", "-i", str(source), "-t", f"{seconds:.3f}", "-af", filt, "-vn", *AUDIO_ARGS,
            str(out)]


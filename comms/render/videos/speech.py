"""The audio track: music under the whole video, and the optional spoken line of each scene.

Music alone is the same for every customer of a template and length: it is encoded to AAC once and cached.
Spoken lines are synthesized with espeak-ng (Debian package espeak-ng; voices for en, it, pl, ru, he and
Mandarin), each starting at its scene and cut at its end, mixed over the music and encoded once per video;
when every line is the same for all customers (no personal words), that mix is cached too. The text goes to
espeak-ng through a file, never through the command line, so a customer's name is only ever spoken.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ..sandbox import RenderError
from .encode import AUDIO_ARGS, TIMEOUT_SECONDS, FFmpeg, music_args
from .spec import Music

VOICES = {"en": "en-us", "it": "it", "pl": "pl", "ru": "ru", "he": "he", "zh": "cmn", "yue": "yue"}


@dataclass(frozen=True)
class Line:
    start: float
    seconds: float
    text: str


def voice_for(lang: str) -> str:
    base = lang.lower().split("-")[0]
    if lang.lower() in ("en-gb", "en-ie", "en-au"):
        return "en-gb"
    return VOICES.get(base, base)


def synthesize(text: str, lang: str, out: Path) -> Path:
    """One spoken line as a WAV file."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise RenderError("a scene has a spoken line but espeak-ng is not installed (Debian package espeak-ng)")
    source = out.with_suffix(".txt")
    source.write_text(text, encoding="utf-8")
    try:
        done = subprocess.run([exe, "-v", voice_for(lang), "-s", "155", "-w", str(out), "-f", str(source)],
                              stdin=subprocess.DEVNULL, capture_output=True, timeout=TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        raise RenderError("espeak-ng took too long") from None
    if done.returncode != 0 or not out.is_file():
        raise RenderError(f"espeak-ng failed: {done.stderr.decode(errors='replace').strip()[:200]}")
    return out


def music_track(ff: FFmpeg, media_dir: Path, music: Music, seconds: float, out: Path) -> Path:
    ff.run(music_args(media_dir / music.file, seconds, music.volume, music.fade_in, music.fade_out, out))
    return out


def mixed_track(ff: FFmpeg, media_dir: Path, music: Music | None, lines: list[Line], lang: str, seconds: float,
                volume: float, out: Path) -> Path:
    """Spoken lines at their scenes' times over the music (or silence), exactly ``seconds`` long, AAC."""
    work = out.parent
    inputs = ["-f", "lavfi", "-t", f"{seconds:.3f}", "-i", "anullsrc=r=48000:cl=stereo"]
    filters, labels = [], ["[0:a]"]
    n = 1
    if music is not None:
        fade_out = min(music.fade_out, seconds / 2)
        inputs += ["-stream_loop", "-1", "-t", f"{seconds:.3f}", "-i", str(media_dir / music.file)]
        filters.append(f"[1:a]volume={music.volume:.3f},afade=t=in:st=0:d={min(music.fade_in, seconds / 2):.3f},"
                       f"afade=t=out:st={seconds - fade_out:.3f}:d={fade_out:.3f},aresample=48000[m]")
        labels.append("[m]")
        n = 2
    for k, line in enumerate(lines):
        wav = synthesize(line.text, lang, work / f"speech-{k}.wav")
        inputs += ["-i", str(wav)]
        delay = int(round(line.start * 1000))
        filters.append(f"[{n}:a]atrim=0:{line.seconds:.3f},volume={volume:.3f},aresample=48000,"
                       f"adelay={delay}|{delay},apad[s{k}]")
        labels.append(f"[s{k}]")
        n += 1
    filters.append(f"{''.join(labels)}amix=inputs={len(labels)}:duration=first:dropout_transition=0:"
                   f"normalize=0[out]")
    ff.run([*inputs, "-filter_complex", ";".join(filters), "-map", "[out]", "-t", f"{seconds:.3f}", *AUDIO_ARGS,
            str(out)])
    return out

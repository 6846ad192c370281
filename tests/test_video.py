"""Personalized videos, checked on real outputs: ffprobe, frames read by tesseract and zbarimg, captions."""

from __future__ import annotations

import os
import subprocess

import pytest
from videotools import (CAMPAIGN, VideoEnv, ffprobe, frame_at, ocr, parse_vtt, plain, qr_codes, shared_cache,
                        top_level_boxes)

from comms.payments import extract_token


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    home = tmp_path_factory.mktemp("video-home")
    with pytest.MonkeyPatch.context() as mp:
        for key in list(os.environ):
            if key.startswith("COMMS_"):
                mp.delenv(key)
        mp.setenv("COMMS_HOME", str(home))
        mp.setenv("COMMS_VIDEO_CACHE_DIR", shared_cache(tmp_path_factory))
        yield VideoEnv(home)


def _poster_seconds(ctx, env) -> float:
    """The middle of the personal scene's hold, when every layer is in (the poster's moment)."""
    tpl = env.renderer.template(ctx["treatment"]["name"])
    start = 0.0
    for scene in tpl.scenes:
        if scene.name == "you":
            return start + 2.5
        start += scene.duration
    raise AssertionError("no personal scene")


def test_video_is_h264_yuv420p_with_aac_and_faststart_at_its_length(env):
    ctx, art = env.render("en-US")
    info = ffprobe(art.mp4)
    video = next(s for s in info["streams"] if s["codec_type"] == "video")
    audio = next(s for s in info["streams"] if s["codec_type"] == "audio")
    assert (video["codec_name"], video["pix_fmt"], video["width"], video["height"]) == ("h264", "yuv420p", 1280, 720)
    assert video["r_frame_rate"] == "30/1"
    assert audio["codec_name"] == "aac"
    tpl = env.renderer.template("final_notice")
    expected = sum(s.duration for s in tpl.scenes)
    assert 15 <= expected <= 25
    assert float(info["format"]["duration"]) == pytest.approx(expected, abs=0.05)
    assert int(video["nb_frames"]) == round(expected * 30)
    boxes = top_level_boxes(art.mp4)
    assert boxes.index("moov") < boxes.index("mdat"), boxes
    assert art.seconds == pytest.approx(expected)
    # the whole file decodes without a single error (the parts joined without re-encoding fit together)
    done = subprocess.run(["ffmpeg", "-v", "error", "-i", str(art.mp4), "-f", "null", "-"], capture_output=True,
                          text=True)
    assert done.returncode == 0 and done.stderr.strip() == ""


def test_outputs_land_in_the_customers_folder_with_poster_and_animated_preview(env):
    from PIL import Image

    ctx, art = env.render("en-US")
    assert {p.name for p in art.mp4.parent.iterdir()} == {"video.mp4", "captions.vtt", "poster.jpg", "preview.webp"}
    with Image.open(art.poster) as poster:
        assert (poster.format, poster.size) == ("JPEG", (1280, 720))
    with Image.open(art.preview) as prev:
        assert prev.format == "WEBP" and prev.n_frames > 3 and max(prev.size) <= 480
    import hashlib
    assert art.sha256 == hashlib.sha256(art.mp4.read_bytes()).hexdigest()


def test_personal_frame_shows_the_name_and_the_amount_as_the_locale_writes_it(env, tmp_path):
    ctx, art = env.render("en-US")
    text = ocr(frame_at(art.mp4, _poster_seconds(ctx, env), tmp_path / "en.png"))
    assert "Jordan" in text
    assert plain(ctx["balance"]) == "$472.50" and "$472.50" in text
    assert "Scan to pay" in text


def test_russian_frame_shows_name_and_amount_with_russian_separators_in_the_vertical_format(env, tmp_path):
    ctx, art = env.render("ru-RU", "vertical")
    assert (ffprobe(art.mp4)["streams"][0]["width"], ffprobe(art.mp4)["streams"][0]["height"]) == (720, 1280)
    text = ocr(frame_at(art.mp4, _poster_seconds(ctx, env), tmp_path / "ru.png"), "rus")
    assert "Анна" in text
    amount = plain(ctx["balance"])  # '18 900,00 ₽': space for thousands, comma for decimals
    assert amount.startswith("18 900,00") and "18 900,00" in text


def test_qr_code_in_the_frame_opens_this_customers_signed_link(env, tmp_path):
    ctx, art = env.render("en-US")
    codes = qr_codes(frame_at(art.mp4, _poster_seconds(ctx, env), tmp_path / "qr.png"))
    assert codes == [ctx["links"]["pay"]]
    claims = env.signer.verify(extract_token(codes[0]))
    assert (claims.campaign, claims.customer_id) == (CAMPAIGN, "S-EN")
    ctx_ru, art_ru = env.render("ru-RU", "vertical")
    codes = qr_codes(frame_at(art_ru.mp4, _poster_seconds(ctx_ru, env), tmp_path / "qr-ru.png"))
    assert codes == [ctx_ru["links"]["pay"]]


def test_captions_parse_and_follow_the_scenes(env):
    ctx, art = env.render("en-US")
    cues = parse_vtt(art.vtt.read_text(encoding="utf-8"))
    tpl = env.renderer.template("final_notice")
    bounds, t = [], 0.0
    for scene in tpl.scenes:
        bounds.append((t, t + scene.duration))
        t += scene.duration
    assert [x for a, b, _ in cues for x in (a, b)] == pytest.approx([x for pair in bounds for x in pair])
    assert cues[-1][1] == pytest.approx(float(ffprobe(art.mp4)["format"]["duration"]), abs=0.05)
    personal = plain(cues[1][2])
    assert "Hello Jordan" in personal and "$472.50" in personal
    assert ctx["treatment"]["title"] in cues[0][2]


def test_hebrew_frame_reads_right_to_left(env, tmp_path):
    ctx, art = env.render("he-IL")
    frame = frame_at(art.mp4, _poster_seconds(ctx, env), tmp_path / "he.png")
    # tesseract returns Hebrew in reading order: a line drawn left-to-right would come out reversed
    text = ocr(frame, "heb", crop=(640, 0, 1280, 720))
    assert "שלום שרה" in text
    assert "הרש םולש" not in text
    # the layout is mirrored: the words on the right, the QR code on the left (English: the other way round)
    assert qr_codes(frame, crop=(0, 0, 640, 720)) == [ctx["links"]["pay"]]
    assert qr_codes(frame, crop=(640, 0, 1280, 720)) == []
    ctx_en, art_en = env.render("en-US")
    frame_en = frame_at(art_en.mp4, _poster_seconds(ctx_en, env), tmp_path / "en.png")
    assert qr_codes(frame_en, crop=(640, 0, 1280, 720)) == [ctx_en["links"]["pay"]]
    assert "Jordan" in ocr(frame_en, crop=(0, 0, 640, 720))


def test_chinese_is_drawn_with_a_cjk_font_in_the_square_format(env, tmp_path):
    ctx, art = env.render("zh-CN", "square")
    info = ffprobe(art.mp4)["streams"][0]
    assert (info["width"], info["height"]) == (1080, 1080)
    text = ocr(frame_at(art.mp4, _poster_seconds(ctx, env), tmp_path / "zh.png"), "chi_sim").replace(" ", "")
    assert "扫码付款" in text and "我们将减免" in text and "3,307.50" in text  # drawn glyphs, not empty boxes
    face = env.renderer.fonts.pick(ctx["t"]["video"]["hello"], "zh-CN", "regular")
    assert "CJK" in face.path.name


def test_static_scenes_are_encoded_once_and_shared_by_customers(env, tmp_path, monkeypatch):
    ctx_a, art_a = env.render("en-US")
    encoded = []
    original = env.renderer.composer.encode
    monkeypatch.setattr(env.renderer.composer, "encode", lambda runs, *a, **k: encoded.append(
        [w.scene.name for w, _ in runs]) or original(runs, *a, **k))
    ctx_b = env.context("en-US", hostile=True)
    art_b = env.renderer.render(ctx_b, tmp_path / "b", "landscape")
    assert encoded == [["you"]]  # the second customer's video encodes only its personal scene

    def frames(path):
        out = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-map", "0:v", "-f", "framemd5", "-"],
                             capture_output=True, text=True, check=True).stdout
        return [ln.rsplit(",", 1)[1].strip() for ln in out.splitlines() if ln and not ln.startswith("#")]

    a, b = frames(art_a.mp4), frames(art_b.mp4)
    assert len(a) == len(b) == 540
    assert a[:120] == b[:120] and a[300:] == b[300:]  # intro, next steps, outro: the same pictures
    assert a[150:270] != b[150:270]  # the personal scene is not


def test_hostile_name_is_drawn_as_text_and_escaped_in_captions(env):
    ctx, art = env.render("en-US", hostile=True)
    vtt = art.vtt.read_text(encoding="utf-8")
    assert "<script>" not in vtt and "&lt;script&gt;alert(1)&lt;/script&gt; O'Brien &amp; Sons {{ 7*7 }}" in vtt
    parse_vtt(vtt)


def test_rendering_again_gives_the_same_bytes(env, tmp_path):
    ctx, art = env.render("en-US")
    again = env.renderer.render(ctx, tmp_path / "again", "landscape")
    assert again.sha256 == art.sha256


def test_preview_command_renders_one_customers_video_and_prints_where(env, tmp_path):
    from conftest import run_cli

    out = tmp_path / "preview"
    done = run_cli("preview", "--channel", "video", "--treatment", "final_notice", "--locale", "he-IL",
                   "--out", str(out), home=env.home, check=True,
                   env={"COMMS_VIDEO_CACHE_DIR": os.environ["COMMS_VIDEO_CACHE_DIR"]})
    for name in ("video.mp4", "poster.jpg", "preview.webp", "captions.vtt"):
        assert (out / name).is_file() and str(out / name) in done.stdout.replace("\n", "")
    assert ffprobe(out / "video.mp4")["streams"][0]["codec_name"] == "h264"

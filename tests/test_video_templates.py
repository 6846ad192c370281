"""The shipped video templates and their words, text layout, and what a broken template says."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from videotools import VideoEnv, shared_cache

from comms.render.samples import LOCALES
from comms.render.strings import missing_keys
from comms.render.video import artifact_dir, safe_name
from comms.render.videos.fonts import _coverage, _drawn, truetype
from comms.render.videos.layers import box_pixels, draw_text
from comms.render.videos.spec import Layer, VideoTemplateError, parse_template

TREATMENTS = ("early_reminder", "firm_notice", "final_notice", "hardship_plan")
SEGMENT_OF = {"early_reminder": "early", "firm_notice": "firm", "final_notice": "final", "hardship_plan": "hardship"}


@pytest.fixture
def env(home, monkeypatch, tmp_path_factory):
    monkeypatch.setenv("COMMS_VIDEO_CACHE_DIR", shared_cache(tmp_path_factory))  # fonts merged once per run
    return VideoEnv(home)


@pytest.mark.parametrize("treatment", TREATMENTS)
def test_shipped_video_lasts_15_to_25_seconds_and_speaks_every_language(env, treatment):
    tpl = env.renderer.template(treatment)
    assert 15 <= sum(s.duration for s in tpl.scenes) <= 25
    for locale in LOCALES:
        assert not {k for k in missing_keys(env.settings.templates_dir, treatment, locale.split("-")[0])
                    if k.startswith("video.")}
        ctx = env.context(locale, SEGMENT_OF[treatment])
        words = env.renderer.words(tpl, ctx)
        # only the scene with the customer's data is personal: the others are encoded once and shared
        assert [w.scene.name for w in words if w.personal] == ["you"], locale
        assert ctx["customer"]["greeting_name"] in words[1].caption
        for w in words:
            for layer, text in zip(w.scene.layers, w.layers):
                if layer.kind == "text":
                    assert text, f"{treatment} {locale} scene {w.scene.name}: an empty text layer"
                    face = env.renderer.fonts.pick(text, ctx["customer"]["lang"], layer.font)
                    assert _drawn(text) <= _coverage(face.path, face.index), f"{face.name} lacks glyphs of {text!r}"


@pytest.mark.parametrize("locale,text", [
    ("en-US", "Jordan Quigley, your payment: gjpqy"),
    ("pl-PL", "Łukasz Wiśniewski, prosimy o zapłatę: ąęjy"),
    ("ru-RU", "Здравствуйте, Анна! Сумма к оплате: руфщ"),
    ("he-IL", "שלום שרה, יתרה ךםןףץ 1,890.00 ₪"),
    ("zh-CN", "您好，秀英：应付金额 ¥3,307.50"),
])
def test_text_is_shrunk_to_its_box_without_clipping_descenders(env, locale, text):
    layer = Layer(text=text, box=(0.1, 0.1, 0.5, 0.06), size=80)
    box = box_pixels(layer, "landscape", (1280, 720), locale == "he-IL", True)
    sprite = draw_text(text, layer, box, 1.0, env.renderer.fonts, locale, locale == "he-IL")
    assert sprite.font_size < 80  # it had to shrink to fit 43 pixels
    alpha = sprite.rgba[..., 3]
    rows = np.nonzero(alpha.max(axis=1))[0]
    ink_top, ink_bottom = sprite.y + rows[0], sprite.y + rows[-1]
    assert box[1] <= ink_top and ink_bottom < box[1] + box[3]  # inside its box
    face = env.renderer.fonts.pick(text, locale, "regular")
    font = truetype(face.path, face.index, sprite.font_size)
    lines = 1 if sprite.w > 0 else 0
    left, top, right, bottom = font.getbbox(text, direction="rtl" if locale == "he-IL" else "ltr",
                                            language=locale.split("-")[0])
    if lines and (right - left) <= box[2]:  # on one line: the ink is exactly as tall as the font draws it
        assert rows[-1] - rows[0] + 1 >= bottom - top - 1


def test_a_long_name_wraps_instead_of_leaving_the_frame(env):
    name = "Maria-Alessandra Benedetta Castellammare di Stabia-Montefiore"
    layer = Layer(text=name, box=(0.06, 0.1, 0.3, 0.2), size=60)
    box = box_pixels(layer, "landscape", (1280, 720), False, True)
    sprite = draw_text(name, layer, box, 1.0, env.renderer.fonts, "it-IT", False)
    assert sprite.x >= box[0] and sprite.x + sprite.w <= box[0] + box[2] + 2
    assert sprite.h > 2 * sprite.font_size  # more than one line


def test_broken_templates_fail_with_one_line_naming_file_and_key(env, tmp_path):
    media = env.settings.media_dir
    cases = {
        "scenes: [": "not valid YAML",
        "scenes: []": "scenes: List should have at least 1 item",
        "scenes: [{name: a, duration: 2, background: {color: red}}]": "scenes[0].background.color: colour 'red'",
        "scenes: [{name: a, duration: 2, background: {image: nope.png}}]": "media file 'nope.png' not found",
        "scenes: [{name: a, duration: 2, background: {color: '#000000'}, layers: [{text: x, qr: y, box: [0,0,1,1]}]}]":
            "exactly one of text, image, logo, qr",
        "scenes: [{name: a, duration: 2, background: {image: ../etc/passwd}}]": "must be a path inside media/",
        "scenes: [{name: a, duration: 2, background: {color: '#000000'}, layers: [{text: x, box: [0.5,0,0.8,1]}]}]":
            "fractions inside the frame",
    }
    for source, expected in cases.items():
        with pytest.raises(VideoTemplateError) as exc:
            parse_template(source, Path("templates/x/video.yaml"), media)
        message = str(exc.value)
        assert message.startswith("templates/x/video.yaml") and expected in message and "\n" not in message
    tpl = parse_template("scenes: [{name: a, duration: 2, background: {color: '#000000'}}]", Path("v.yaml"), media)
    with pytest.raises(VideoTemplateError, match="unknown video format 'cinema'"):
        tpl.size("cinema")


def test_undefined_name_in_a_layer_is_a_render_error_naming_the_scene(env, tmp_path):
    from comms.render.sandbox import RenderError

    tpl = parse_template("scenes: [{name: hello, duration: 1, background: {color: '#000000'}, "
                         "layers: [{text: '{{ customer.nmae }}', box: [0,0,1,1]}]}]", Path("v.yaml"),
                         env.settings.media_dir)
    with pytest.raises(RenderError, match="scene hello layer 0: undefined"):
        env.renderer.render(env.context(), tmp_path, "landscape", template=tpl)


def test_artifact_folders_never_leave_the_campaign_folder(env):
    root = env.settings.artifacts_dir / "spring" / "video"
    assert artifact_dir(env.settings, "spring", "CUST-001") == root / "CUST-001"
    for hostile in ("../../etc", "a/b", ".hidden", "x" * 300, "名字"):
        folder = artifact_dir(env.settings, "spring", hostile)
        assert folder.parent == root and ".." not in folder.name and "/" not in folder.name
    assert safe_name("a/b") != safe_name("a_b")

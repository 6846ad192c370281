"""`comms serve` as a user runs it: a real process, demo links printed, pages served, Ctrl-C stops it."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from comms.store import Store
from comms.web.preview import lint
from comms.render.samples import sample_customers
from comms.segment.config import load_segments
from test_web_support import free_port, make_home, write_portfolio


def test_serve_prints_one_working_link_per_segment_and_stops_on_interrupt(tmp_path):
    port = free_port()
    settings = make_home(tmp_path, port)
    store = Store.open(settings)
    write_portfolio(store)
    store.dispose()
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMMS_")}
    env["COMMS_HOME"] = str(settings.home)
    exe = str(Path(sys.executable).with_name("comms"))
    proc = subprocess.Popen([exe, "serve", "--port", str(port), "--demo-links", "--log-level", "warning"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            lines.append(line)
            if line.startswith("serving on") or not line:
                break
        links = dict(re.findall(r"^(\w+)\s+(http://\S+)$", "".join(lines), re.M))
        assert set(links) == {"hardship", "final", "firm", "early"}
        for _ in range(100):
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        for url in links.values():
            r = httpx.get(url)
            assert r.status_code == 200 and "no-store" in r.headers["cache-control"]
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=20)
    err = proc.stderr.read()
    assert "Traceback" not in err
    assert not re.search(r"/p/[A-Za-z0-9_-]{40,}", err)  # no token in any log line


def test_page_preview_writes_the_page_and_its_sub_pages(settings, tmp_path):
    from comms.payments import LinkSigner
    from comms.render.context import ContextBuilder
    from comms.render.samples import sample_customer
    from comms.web.preview import preview

    segments = load_segments(settings.segments_file, settings.templates_dir)
    context = ContextBuilder(settings, segments, LinkSigner.from_settings(settings), "preview").build(
        sample_customer("he-IL"), "hardship")
    out = tmp_path / "preview"
    out.mkdir()
    files = preview(context, settings=settings, out_dir=out, segments=segments, options={})
    assert {f.name for f in files} >= {"page.html", "pay.html", "checkout.html"}
    html = (out / "page.html").read_text(encoding="utf-8")
    assert 'dir="rtl"' in html and "page.css" in html and (out / "page.css").exists()


def test_page_lint_passes_for_the_shipped_treatments_and_catches_a_broken_one(settings, tmp_path, monkeypatch):
    import shutil
    segments = load_segments(settings.segments_file, settings.templates_dir)
    customers = sample_customers()
    treatments = ["early_reminder", "firm_notice", "final_notice", "hardship_plan"]
    assert lint(settings, segments, treatments, customers) == []

    templates = tmp_path / "templates"
    shutil.copytree(settings.templates_dir, templates)
    page = templates / "firm_notice" / "page.html"
    page.write_text(page.read_text().replace('<p>{{ t.page.intro }}</p>',
                                             '<p style="color:red" onclick="x()">{{ t.page.intro }}</p>'
                                             '<input name="extra"><img src="/x.png">'))
    monkeypatch.setenv("COMMS_TEMPLATES_DIR", str(templates))
    broken = type(settings).load(settings.home)
    found = "\n".join(p.line() for p in lint(broken, segments, ["firm_notice"], customers[:1]))
    for message in ("inline style", "event-handler attribute", "without a label", "without alt text"):
        assert message in found
    (templates / "firm_notice" / "page.html").write_text('{% extends "base.html" %}{% block intro %}'
                                                       '{{ customer.nmae }}{% endblock %}')
    found = "\n".join(p.line() for p in lint(broken, segments, ["firm_notice"], customers[:1]))
    assert "undefined" in found

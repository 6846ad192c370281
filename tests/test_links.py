"""Payment links: signed, encrypted, expiring, revocable; they fail closed on anything else."""

from __future__ import annotations

import base64
import os
import string
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from comms.config import Settings
from comms.errors import ConfigError, InputError, LinkError
from comms.payments import (LinkKeys, LinkSigner, is_revoked, revoke_customer, revoke_token, rotate_key_file,
                            verify_link)
from comms.store.schema import link_revocations

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=timezone.utc)
CAMPAIGN = "spring-2026"
CUSTOMER = "CUST-0098765"
ALPHABET = string.ascii_letters + string.digits + "-_"


def _secret() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def _raw(token: str) -> bytes:
    return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@pytest.fixture
def signer(settings) -> LinkSigner:
    return LinkSigner.from_settings(settings)


def test_link_round_trip_gives_back_campaign_customer_and_expiry(signer):
    token = signer.sign(CAMPAIGN, CUSTOMER, ttl=timedelta(days=30), now=T0)
    claims = signer.verify(token, now=T0 + timedelta(days=29))
    assert (claims.campaign, claims.customer_id, claims.key_id) == (CAMPAIGN, CUSTOMER, "k1")
    assert claims.issued_at == T0
    assert claims.expires_at == T0 + timedelta(days=30)


def test_default_lifetime_is_link_ttl_days(settings, monkeypatch):
    monkeypatch.setenv("COMMS_LINK_TTL_DAYS", "7")
    signer = LinkSigner.from_settings(Settings.load(settings.home))
    assert signer.verify(signer.sign(CAMPAIGN, CUSTOMER, now=T0), now=T0).expires_at == T0 + timedelta(days=7)


def test_link_url_carries_the_token_under_base_url(settings, monkeypatch):
    monkeypatch.setenv("COMMS_BASE_URL", "https://pay.example.com/")
    signer = LinkSigner.from_settings(Settings.load(settings.home))
    token = signer.sign(CAMPAIGN, CUSTOMER)
    assert signer.url(token) == f"https://pay.example.com/p/{token}"


def test_token_shows_neither_customer_nor_campaign(signer):
    for customer in (CUSTOMER, "Łukasz-王-7"):
        token = signer.sign(CAMPAIGN, customer)
        raw = _raw(token)
        for clear in (customer, CAMPAIGN):
            assert clear.lower() not in token.lower()
            assert clear.encode() not in raw
            for shift in range(3):  # nor base64 of it, at any alignment
                assert _b64(b"\0" * shift + clear.encode())[4:-2] not in token


def test_two_links_for_the_same_customer_differ(signer):
    assert signer.sign(CAMPAIGN, CUSTOMER, now=T0) != signer.sign(CAMPAIGN, CUSTOMER, now=T0)


def test_typical_token_fits_a_small_qr_code(signer):
    token = signer.sign(CAMPAIGN, CUSTOMER)
    print(f"\ntoken length for campaign {CAMPAIGN!r} and customer {CUSTOMER!r}: {len(token)} chars")
    assert len(token) < 100
    assert set(token) <= set(ALPHABET)


def test_changing_any_character_of_a_token_fails(signer):
    token = signer.sign(CAMPAIGN, CUSTOMER, now=T0)
    tried = 0
    for i, original in enumerate(token):
        for c in ALPHABET:
            if c == original:
                continue
            with pytest.raises(LinkError):
                signer.verify(token[:i] + c + token[i + 1:], now=T0)
            tried += 1
    assert tried == len(token) * (len(ALPHABET) - 1)


def test_flipping_any_bit_of_a_token_fails(signer):
    raw = _raw(signer.sign(CAMPAIGN, CUSTOMER, now=T0))
    for i in range(len(raw)):
        for bit in range(8):
            tampered = bytearray(raw)
            tampered[i] ^= 1 << bit
            with pytest.raises(LinkError):
                signer.verify(_b64(bytes(tampered)), now=T0)


def test_truncated_or_extended_token_fails(signer):
    token = signer.sign(CAMPAIGN, CUSTOMER, now=T0)
    for n in range(len(token)):
        with pytest.raises(LinkError):
            signer.verify(token[:n], now=T0)
    for extra in ("A", "AA", "AAAA", token):
        with pytest.raises(LinkError):
            signer.verify(token + extra, now=T0)


def test_garbage_fails_closed_with_a_reason(signer):
    for junk in ("", " ", "%%%", "a" * 5000, "AQE=", "../../etc/passwd", None, 12345):
        with pytest.raises(LinkError) as err:
            signer.verify(junk, now=T0)
        assert err.value.reason


def test_unknown_version_fails(signer):
    raw = bytearray(_raw(signer.sign(CAMPAIGN, CUSTOMER, now=T0)))
    raw[0] = 2
    with pytest.raises(LinkError, match="unknown version"):
        signer.verify(_b64(bytes(raw)), now=T0)


def test_expired_link_fails(signer):
    token = signer.sign(CAMPAIGN, CUSTOMER, ttl=timedelta(hours=1), now=T0)
    assert signer.verify(token, now=T0 + timedelta(minutes=59, seconds=59)).customer_id == CUSTOMER
    with pytest.raises(LinkError, match="expired"):
        signer.verify(token, now=T0 + timedelta(hours=1))
    with pytest.raises(LinkError, match="expired"):
        signer.verify(token, now=T0 + timedelta(days=400))


def test_link_signed_with_another_secret_fails(signer):
    other = LinkSigner(LinkKeys.parse(f"k1:{_secret()}", source="test"))
    with pytest.raises(LinkError, match="authentication failed"):
        signer.verify(other.sign(CAMPAIGN, CUSTOMER, now=T0), now=T0)


def test_old_link_verifies_after_rotation_and_new_links_use_the_new_key(settings):
    old = LinkSigner.from_settings(settings)
    token = old.sign(CAMPAIGN, CUSTOMER, now=T0)
    rotation = rotate_key_file(settings)
    assert rotation.added.name == "k2" and [k.name for k in rotation.keys] == ["k2", "k1"]
    new = LinkSigner.from_settings(settings)
    assert new.verify(token, now=T0).key_id == "k1"
    assert new.verify(new.sign(CAMPAIGN, CUSTOMER, now=T0), now=T0).key_id == "k2"
    with pytest.raises(LinkError, match="unknown key k2"):
        old.verify(new.sign(CAMPAIGN, CUSTOMER, now=T0), now=T0)


def test_link_whose_key_was_removed_fails(monkeypatch, settings):
    k1, k2 = f"k1:{_secret()}", f"k2:{_secret()}"
    monkeypatch.setenv("COMMS_LINK_KEYS", k1)
    token = LinkSigner.from_settings(settings).sign(CAMPAIGN, CUSTOMER, now=T0)
    monkeypatch.setenv("COMMS_LINK_KEYS", f"{k2},{k1}")
    assert LinkSigner.from_settings(settings).verify(token, now=T0).customer_id == CUSTOMER
    monkeypatch.setenv("COMMS_LINK_KEYS", k2)
    with pytest.raises(LinkError, match="unknown key k1"):
        LinkSigner.from_settings(settings).verify(token, now=T0)


def test_key_file_is_created_once_private_and_reused(settings):
    first = LinkSigner.from_settings(settings).sign(CAMPAIGN, CUSTOMER, now=T0)
    path = settings.home / "link-keys"
    assert path.stat().st_mode & 0o777 == 0o600
    assert LinkSigner.from_settings(Settings.load(settings.home)).verify(first, now=T0).customer_id == CUSTOMER


def test_key_file_readable_by_others_is_refused(settings):
    LinkSigner.from_settings(settings)
    (settings.home / "link-keys").chmod(0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        LinkSigner.from_settings(settings)


@pytest.mark.parametrize("value", ["k1", "k1:", "k1:short", "x1:" + "A" * 44, "k300:" + "A" * 44,
                                   f"k1:{'A' * 44},k1:{'B' * 44}", "k1:not*base64!", ","])
def test_malformed_link_keys_setting_names_the_variable(monkeypatch, settings, value):
    monkeypatch.setenv("COMMS_LINK_KEYS", value)
    with pytest.raises(ConfigError, match="COMMS_LINK_KEYS") as err:
        LinkSigner.from_settings(settings)
    assert "A" * 20 not in str(err.value)  # never echo a secret


def test_link_keys_may_be_a_list_in_the_config_file(settings):
    (settings.home / "comms.toml").write_text(f'link_keys = ["k7:{_secret()}", "k3:{_secret()}"]\n')
    signer = LinkSigner.from_settings(settings)
    assert signer.verify(signer.sign(CAMPAIGN, CUSTOMER, now=T0), now=T0).key_id == "k7"
    assert not (settings.home / "link-keys").exists()


def test_rotate_with_keys_in_environment_changes_nothing_and_says_what_to_do(monkeypatch, settings):
    monkeypatch.setenv("COMMS_LINK_KEYS", f"k4:{_secret()}")
    with pytest.raises(ConfigError, match="COMMS_LINK_KEYS.*k5:"):
        rotate_key_file(settings)
    assert not (settings.home / "link-keys").exists()


def test_signing_refuses_ids_that_do_not_fit(signer):
    with pytest.raises(InputError, match="customer id"):
        signer.sign(CAMPAIGN, "x" * 65)
    with pytest.raises(InputError, match="customer id"):
        signer.sign(CAMPAIGN, "")
    with pytest.raises(InputError, match="campaign"):
        signer.sign("c" * 65, CUSTOMER)
    assert signer.verify(signer.sign("c" * 64, "é" * 32)).customer_id == "é" * 32


def test_sign_many_gives_each_customer_their_own_link(signer):
    ids = [f"C{i:05d}" for i in range(500)]
    tokens = signer.sign_many(CAMPAIGN, ids, now=T0)
    assert len(set(tokens)) == 500
    assert [signer.verify(t, now=T0).customer_id for t in tokens] == ids


# -- revocation, on SQLite and PostgreSQL ---------------------------------------------------------------

def test_revoked_link_fails_and_other_links_of_the_customer_still_work(store, signer):
    spring = signer.sign(CAMPAIGN, CUSTOMER, now=T0)
    summer = signer.sign("summer-2026", CUSTOMER, now=T0)
    revoke_token(store, signer.url(spring), "sent to the wrong address")
    with pytest.raises(LinkError, match="revoked"):
        verify_link(store, signer, spring, now=T0)
    assert verify_link(store, signer, summer, now=T0).campaign == "summer-2026"
    assert signer.verify(spring, now=T0).customer_id == CUSTOMER  # without a store: signature only


def test_revoking_a_customer_kills_all_its_links_and_no_one_elses(store, signer):
    mine = [signer.sign(c, CUSTOMER, now=T0 + timedelta(hours=h)) for h, c in enumerate(["a", "b", "c"])]
    theirs = signer.sign("a", "CUST-0000001", now=T0)
    revoke_customer(store, signer, CUSTOMER, "customer disputes the debt", now=T0 + timedelta(days=1))
    for token in mine:
        with pytest.raises(LinkError, match="revoked"):
            verify_link(store, signer, token, now=T0 + timedelta(days=2))
    assert verify_link(store, signer, theirs, now=T0 + timedelta(days=2)).customer_id == "CUST-0000001"


def test_link_issued_after_a_customer_revocation_opens(store, signer):
    revoke_customer(store, signer, CUSTOMER, "paid in branch", now=T0)
    later = signer.sign("autumn-2026", CUSTOMER, now=T0 + timedelta(days=90))
    assert verify_link(store, signer, later, now=T0 + timedelta(days=91)).campaign == "autumn-2026"


def test_customer_revocation_survives_key_rotation(store, settings):
    before = LinkSigner.from_settings(settings)
    old_link = before.sign(CAMPAIGN, CUSTOMER, now=T0)
    revoke_customer(store, before, CUSTOMER, "fraud", now=T0 + timedelta(hours=1))
    rotate_key_file(settings)
    after = LinkSigner.from_settings(settings)
    with pytest.raises(LinkError, match="revoked"):
        verify_link(store, after, old_link, now=T0 + timedelta(hours=2))
    assert is_revoked(store, after, after.verify(old_link, now=T0), old_link)


def test_revocation_table_holds_no_customer_id_or_token(store, signer):
    token = signer.sign(CAMPAIGN, CUSTOMER, now=T0)
    revoke_token(store, token, "test")
    revoke_customer(store, signer, CUSTOMER, "test")
    with store.begin() as conn:
        rows = conn.execute(select(link_revocations)).mappings().all()
    assert len(rows) == 2
    dump = repr([dict(r) for r in rows])
    assert CUSTOMER not in dump and token not in dump
    assert {r["customer_ref"] for r in rows} == {None, signer.customer_ref(CUSTOMER)}


# -- the command line ---------------------------------------------------------------------------------

def test_cli_signs_verifies_and_revokes_a_link(cli):
    signed = cli("links", "sign", "--campaign", CAMPAIGN, "--customer", CUSTOMER, "--ttl-days", "5", check=True)
    url = signed.stdout.strip()
    assert url.startswith("https://localhost:8000/p/") and CUSTOMER not in url
    shown = cli("links", "verify", url, check=True).stdout
    assert f"campaign  {CAMPAIGN}" in shown and f"customer  {CUSTOMER}" in shown
    cli("links", "revoke", url, "--reason", "wrong address", check=True)
    refused = cli("links", "verify", url)
    assert refused.returncode == 2
    assert refused.stderr.strip() == "error: invalid link: revoked"


def test_cli_tampered_link_prints_one_line_and_exits_2(cli):
    url = cli("links", "sign", "--campaign", CAMPAIGN, "--customer", CUSTOMER, check=True).stdout.strip()
    tampered = url[:-3] + ("A" if url[-3] != "A" else "B") + url[-2:]
    out = cli("links", "verify", tampered)
    assert out.returncode == 2
    assert out.stderr.strip().startswith("error: invalid link: ") and out.stderr.count("\n") == 1
    assert "Traceback" not in out.stderr and out.stdout == ""


def test_cli_rotate_keeps_old_links_working(cli):
    url = cli("links", "sign", "--campaign", CAMPAIGN, "--customer", CUSTOMER, check=True).stdout.strip()
    rotated = cli("links", "rotate", check=True).stdout
    assert "k2" in rotated and "k1 still verifies" in rotated
    assert cli("links", "verify", url, check=True).stdout.count("key       k1") == 1
    explained = cli("links", "rotate", env={"COMMS_LINK_KEYS": f"k1:{_secret()}"})
    assert explained.returncode == 2 and "COMMS_LINK_KEYS" in explained.stderr

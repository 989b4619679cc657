"""The privacy module's crypto: AES-GCM field sealing with key ids, rotation, keyed hashes, key files."""

from __future__ import annotations

import base64
import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.vault import Keyring, KeyringError, add_key, from_env, load_keyring, new_key_file


def ring(*ids: str) -> Keyring:
    return Keyring({kid: os.urandom(32) for kid in ids}, ids[0], os.urandom(32))


@given(st.text(max_size=300), st.text(max_size=40))
def test_a_sealed_value_opens_to_the_same_text_and_shows_nothing_of_it(text, context):
    keys = ring("k1")
    sealed = keys.encrypt(text, context)
    assert sealed.startswith("v1.k1.") and keys.decrypt(sealed, context) == text
    if len(text) >= 4:
        assert text not in sealed


@given(st.text(max_size=300), st.text(max_size=40))
def test_sealing_bytes_gives_the_same_stored_form_as_sealing_text(text, context):
    """The turn's log entries are sealed as bytes (``encrypt_bytes``): the value must be the documented
    ``v1.<key id>.<base64url, unpadded>`` that ``decrypt`` (and every reader of stored text) opens."""
    keys = ring("k1")
    sealed = keys.encrypt_bytes(text.encode(), context.encode())
    assert isinstance(sealed, bytes) and sealed.startswith(b"v1.k1.")
    body = sealed.decode("ascii").split(".", 2)[2]
    assert "=" not in body and "+" not in body and "/" not in body
    raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    assert len(raw) == 12 + len(text.encode()) + 16  # nonce, ciphertext, tag
    assert keys.decrypt(sealed.decode("ascii"), context) == text


def test_the_same_text_seals_differently_each_time():
    keys = ring("k1")
    assert keys.encrypt("13800138000") != keys.encrypt("13800138000")


def test_a_value_moved_to_another_key_or_tampered_with_does_not_open():
    keys = ring("k1")
    sealed = keys.encrypt("我的手机号是13800138000", "gw:{conv}:a")
    with pytest.raises(KeyringError, match="does not open"):
        keys.decrypt(sealed, "gw:{conv}:b")
    body = sealed.split(".", 2)[2]
    flipped = body[:-2] + ("A" if body[-2] != "A" else "B") + body[-1]
    with pytest.raises(KeyringError, match="does not open"):
        keys.decrypt(f"v1.k1.{flipped}", "gw:{conv}:a")


def test_a_clear_value_written_before_encryption_reads_as_it_is():
    assert ring("k1").decrypt("旧数据，未加密") == "旧数据，未加密"
    assert not Keyring.is_sealed("旧数据") and Keyring.key_id("x") is None


def test_rotation_keeps_old_values_readable_and_reseals_them_under_the_active_key():
    old_key, new_key, index = os.urandom(32), os.urandom(32), os.urandom(32)
    before = Keyring({"old": old_key}, "old", index)
    sealed = before.encrypt("投诉内容", "ctx")
    after = Keyring({"new": new_key, "old": old_key}, "new", index)
    assert after.decrypt(sealed, "ctx") == "投诉内容"
    again = after.rotate(sealed, "ctx")
    assert again is not None and Keyring.key_id(again) == "new" and after.decrypt(again, "ctx") == "投诉内容"
    assert after.rotate(again, "ctx") is None  # already under the active key
    assert Keyring.key_id(after.rotate("clear", "ctx") or "") == "new"  # clear values get sealed
    with pytest.raises(KeyringError, match="not in the ring"):
        Keyring({"new": new_key}, "new", index).decrypt(sealed, "ctx")


def test_index_is_stable_keyed_and_purpose_bound():
    keys = ring("k1")
    a = keys.index("13800138000", "phone")
    assert a == keys.index("13800138000", "phone") and len(a) == 32
    assert a != keys.index("13800138001", "phone") and a != keys.index("13800138000", "sender")
    assert a != ring("k1").index("13800138000", "phone")  # another index key, another name
    assert "8000" not in a


def test_environment_keys():
    key = base64.b64encode(os.urandom(32)).decode()
    keys = from_env({"GATEWAY_DATA_KEYS": f"k2:{key},k1:{base64.b64encode(os.urandom(32)).decode()}",
                     "GATEWAY_INDEX_KEY": key})  # fmt: skip
    assert keys is not None and keys.active == "k2" and keys.key_ids == ["k2", "k1"]
    assert from_env({}) is None
    with pytest.raises(KeyringError, match="both"):
        from_env({"GATEWAY_DATA_KEYS": f"k1:{key}"})
    with pytest.raises(KeyringError, match="32 bytes"):
        from_env({"GATEWAY_DATA_KEYS": "k1:c2hvcnQ=", "GATEWAY_INDEX_KEY": key})
    with pytest.raises(KeyringError, match="id:base64"):
        from_env({"GATEWAY_DATA_KEYS": key, "GATEWAY_INDEX_KEY": key})


def test_key_file_round_trip_rotation_and_refusals(tmp_path):
    path = tmp_path / "keys" / "gateway.keys"
    new_key_file(path)
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    first = load_keyring(path, data_dir=tmp_path / "var")
    sealed = first.encrypt("留言：请6点后回电", "cb")
    with pytest.raises(FileExistsError):
        new_key_file(path)
    kid = add_key(path)
    second = load_keyring(path)
    assert second.active == kid and second.decrypt(sealed, "cb") == "留言：请6点后回电"
    assert second.index("x") == first.index("x")  # the index key does not rotate
    path.chmod(0o644)
    with pytest.raises(KeyringError, match="chmod 600"):
        load_keyring(path)
    inside = tmp_path / "var" / "keys"
    new_key_file(inside)
    with pytest.raises(KeyringError, match="inside the data directory"):
        load_keyring(inside, data_dir=tmp_path / "var")
    with pytest.raises(KeyringError, match="no key file"):
        load_keyring(tmp_path / "missing")
    bad = tmp_path / "bad.keys"
    bad.write_text("data k1\n")
    bad.chmod(0o600)
    with pytest.raises(KeyringError, match="expected"):
        load_keyring(bad)

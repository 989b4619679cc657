"""Field encryption at rest and keyed hashes: the privacy module's crypto (a leaf: ``cryptography`` and the
standard library only).

* ``Keyring.encrypt(text, context)`` → ``"v1.<key id>.<base64url(nonce ‖ AES-256-GCM ciphertext ‖ tag)>"``. The key
  id travels beside the value, so a value stays readable while keys rotate; ``context`` (e.g. the key name the value
  is stored under) is authenticated as associated data, so a value copied to another key does not decrypt.
  ``Keyring.encrypt_bytes(data, context)`` is the same for UTF-8 bytes, the sealed value as ASCII bytes (the message
  path seals the JSON it has as bytes and writes the result as it is).
* ``Keyring.decrypt(value, context)`` reads any key of the ring; a value that is not ``v1.…`` is returned as it is
  (data written before encryption was switched on), and ``is_sealed`` tells the two apart.
* ``Keyring.rotate(value, context)``: the value under the active key (``None`` when it already is) — what a
  background re-encryption applies to each stored value.
* ``Keyring.index(value, purpose)``: a keyed hash (HMAC-SHA-256 under the index key, 32 hex digits) for
  identifiers in key names and indexes — the same number always gives the same name, and the name gives nothing
  back without the key. The index key is not rotated with the data keys (it would rename every index).

Keys: ``GATEWAY_DATA_KEYS`` (``id:base64,id:base64``, the first one active) and ``GATEWAY_INDEX_KEY`` (base64), or a
key file (``load_keyring(path)``, lines ``data <id> <base64>`` / ``index <base64>``, first data key active) that must
lie outside the data directory and be readable by its owner only. ``new_key_file`` writes one.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import os
import secrets
import stat
from collections.abc import Mapping
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

PREFIX = "v1."
NONCE = 12
KEY_BYTES = 32
INDEX_CACHE = 50_000  # keyed hashes remembered per process
_KEY_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")


class KeyringError(ValueError):
    """A key is missing, malformed, misplaced, or a value cannot be decrypted with the keys at hand."""


_URLSAFE = bytes.maketrans(b"+/", b"-_")


def _b64(data: bytes) -> bytes:
    """base64url without padding, as bytes (``binascii`` directly: the ``base64`` module's wrappers cost as much)."""
    return binascii.b2a_base64(data, newline=False).translate(_URLSAFE).rstrip(b"=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _key(text: str, what: str) -> bytes:
    try:
        raw = base64.b64decode(text.strip().replace("-", "+").replace("_", "/") + "=" * (-len(text.strip()) % 4))
    except (binascii.Error, ValueError):
        raise KeyringError(f"{what} is not base64") from None
    if len(raw) != KEY_BYTES:
        raise KeyringError(f"{what} must be {KEY_BYTES} bytes (base64 of 32 random bytes), got {len(raw)}")
    return raw


class Keyring:
    def __init__(self, data_keys: Mapping[str, bytes], active: str, index_key: bytes) -> None:
        if active not in data_keys:
            raise KeyringError(f"the active key {active!r} is not in the ring")
        for kid, key in data_keys.items():
            if not kid or not set(kid) <= _KEY_ID_CHARS or len(kid) > 32:
                raise KeyringError(f"key id {kid!r}: letters, digits, '_' and '-' only (at most 32)")
            if len(key) != KEY_BYTES:
                raise KeyringError(f"key {kid!r} must be {KEY_BYTES} bytes")
        if len(index_key) != KEY_BYTES:
            raise KeyringError(f"the index key must be {KEY_BYTES} bytes")
        self.active = active
        self._ciphers = {kid: AESGCM(key) for kid, key in data_keys.items()}
        self._index_key = index_key
        self._indexed: dict[tuple[str, str], str] = {}
        self._heads: dict[str, bytes] = {}  # b"v1.<key id>." per key id
        self.path: Path | None = None  # the key file it was read from (``refresh`` follows its changes)
        self._stamp: tuple[int, int] | None = None

    def refresh(self) -> bool:
        """Re-read the key file if it changed (a rotation added a key): the running process encrypts with the new
        active key and reads values sealed with it, without a restart. True when the ring changed. The index key
        must stay the same (it names every index); a file that does not load leaves the ring as it was."""
        if self.path is None:
            return False
        try:
            st = self.path.stat()
        except OSError:
            return False
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp == self._stamp:
            return False
        fresh = load_keyring(self.path)
        if fresh._index_key != self._index_key:
            raise KeyringError(f"{self.path}: the index key changed; it names every index and is never rotated")
        self._ciphers, self.active, self._stamp = fresh._ciphers, fresh.active, stamp
        return True

    @property
    def key_ids(self) -> list[str]:
        return list(self._ciphers)

    # ---- values --------------------------------------------------------------------------------
    def encrypt(self, text: str, context: str = "") -> str:
        return self.encrypt_bytes(text.encode(), context.encode()).decode("ascii")

    def encrypt_bytes(self, data: bytes, context: bytes = b"") -> bytes:
        """``encrypt`` for UTF-8 bytes, giving the same sealed value as ASCII bytes (what is written to Redis:
        a value made as bytes is not decoded to text and encoded back)."""
        nonce = os.urandom(NONCE)
        active = self.active
        sealed = self._ciphers[active].encrypt(nonce, data, context)
        return b"".join((self._heads.get(active) or self._head(active), _b64(nonce + sealed)))

    def _head(self, kid: str) -> bytes:
        head = self._heads[kid] = f"{PREFIX}{kid}.".encode()
        return head

    @staticmethod
    def is_sealed(value: str) -> bool:
        return value.startswith(PREFIX) and value.count(".") >= 2

    @staticmethod
    def key_id(value: str) -> str | None:
        """The id of the key that sealed ``value`` (``None`` for a clear value)."""
        return value.split(".", 2)[1] if Keyring.is_sealed(value) else None

    def decrypt(self, value: str, context: str = "") -> str:
        if not self.is_sealed(value):
            return value
        _, kid, body = value.split(".", 2)
        cipher = self._ciphers.get(kid)
        if cipher is None and self.refresh():  # another process of the deployment already seals with a new key
            cipher = self._ciphers.get(kid)
        if cipher is None:
            raise KeyringError(f"a value was sealed with key {kid!r}, which is not in the ring")
        try:
            raw = _unb64(body)
            return cipher.decrypt(raw[:NONCE], raw[NONCE:], context.encode()).decode()
        except (InvalidTag, binascii.Error, ValueError):
            raise KeyringError(f"a value sealed with key {kid!r} does not open (tampered, or moved)") from None

    def rotate(self, value: str, context: str = "") -> str | None:
        """``value`` sealed with the active key, or ``None`` when it already is (clear values get sealed)."""
        if self.key_id(value) == self.active:
            return None
        return self.encrypt(self.decrypt(value, context), context)

    # ---- identifiers -----------------------------------------------------------------------------
    def derive(self, purpose: str) -> bytes:
        """A secret of its own for ``purpose`` (e.g. the history's customer and search-term hashes), derived from the
        index key: kept, like it, outside Redis and the data directory."""
        return hmac.new(self._index_key, f"derive\0{purpose}".encode(), hashlib.sha256).digest()

    def index(self, value: str, purpose: str = "id") -> str:
        key = (purpose, value)
        found = self._indexed.get(key)
        if found is None:  # a turn names its sender's keys several times: hash once (bounded memory)
            if len(self._indexed) >= INDEX_CACHE:
                self._indexed.clear()
            found = self._indexed[key] = hmac.new(self._index_key, f"{purpose}\0{value}".encode(),
                                                  hashlib.sha256).hexdigest()[:32]  # fmt: skip
        return found


# ---- loading -----------------------------------------------------------------------------------------
def from_env(env: Mapping[str, str]) -> Keyring | None:
    """The ring from ``GATEWAY_DATA_KEYS`` + ``GATEWAY_INDEX_KEY``; ``None`` when neither is set."""
    data, index = env.get("GATEWAY_DATA_KEYS", "").strip(), env.get("GATEWAY_INDEX_KEY", "").strip()
    if not data and not index:
        return None
    if not data or not index:
        raise KeyringError("set both GATEWAY_DATA_KEYS (id:base64,…) and GATEWAY_INDEX_KEY (base64), or neither")
    keys: dict[str, bytes] = {}
    for item in data.split(","):
        kid, sep, text = item.strip().partition(":")
        if not sep:
            raise KeyringError("GATEWAY_DATA_KEYS: each key is id:base64")
        keys[kid] = _key(text, f"GATEWAY_DATA_KEYS key {kid!r}")
    return Keyring(keys, next(iter(keys)), _key(index, "GATEWAY_INDEX_KEY"))


def load_keyring(path: Path, data_dir: Path | None = None) -> Keyring:
    """The ring in a key file (see the module's doc). Refused when it lies inside ``data_dir`` (a copy of the
    data would carry its key) or when others may read it."""
    path = path.expanduser().resolve()
    if data_dir is not None and path.is_relative_to(data_dir.expanduser().resolve()):
        raise KeyringError(f"the key file {path} lies inside the data directory: keep keys apart from the data")
    try:
        st = path.stat()  # before the read: a change after it shows as a new stamp (``refresh`` reads again)
        mode = st.st_mode
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise KeyringError(f"no key file at {path} (write one with 'gateway keys new {path}')") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyringError(f"the key file {path} may be read by others: chmod 600 it")
    keys: dict[str, bytes] = {}
    index = b""
    for n, line in enumerate(lines, 1):
        parts = line.split()
        if not parts or parts[0].startswith("#"):
            continue
        if parts[0] == "data" and len(parts) == 3:
            keys[parts[1]] = _key(parts[2], f"{path}:{n}")
        elif parts[0] == "index" and len(parts) == 2:
            index = _key(parts[1], f"{path}:{n}")
        else:
            raise KeyringError(f"{path}:{n}: expected 'data <id> <base64>' or 'index <base64>'")
    if not keys or not index:
        raise KeyringError(f"{path}: needs at least one 'data' line and an 'index' line")
    ring = Keyring(keys, next(iter(keys)), index)
    ring.path, ring._stamp = path, (st.st_mtime_ns, st.st_size)
    return ring


def new_key_id() -> str:
    return "k" + secrets.token_hex(4)


def new_key_file(path: Path) -> None:
    """Write a new key file (mode 600): one data key and an index key. Refuses to overwrite."""
    path = path.expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        raise FileExistsError(f"{path} exists")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write("# gateway keys: the first 'data' line is the active key; keep this file out of the data dir\n")
        out.write(f"data {new_key_id()} {base64.b64encode(os.urandom(KEY_BYTES)).decode()}\n")
        out.write(f"index {base64.b64encode(os.urandom(KEY_BYTES)).decode()}\n")
    try:
        os.link(tmp, path)  # whole or not at all: a process starting beside this one never reads half a file
    finally:
        tmp.unlink()


def add_key(path: Path) -> str:
    """Put a new active data key at the head of a key file (rotation's first step); the new key's id."""
    path = path.expanduser()
    load_keyring(path)  # refuse to touch a file that does not load
    kid = new_key_id()
    lines = path.read_text(encoding="utf-8").splitlines()
    at = next(i for i, line in enumerate(lines) if line.split()[:1] == ["data"])
    lines.insert(at, f"data {kid} {base64.b64encode(os.urandom(KEY_BYTES)).decode()}")
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write("\n".join(lines) + "\n")
    os.replace(tmp, path)
    return kid


def default_key_file(env: Mapping[str, str]) -> Path:
    """``$XDG_CONFIG_HOME/gateway/keys`` (``~/.config/gateway/keys``): apart from any data directory."""
    base = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "gateway" / "keys"


def deployment_keyring(
    key_file: str, data_dir: Path, production: bool, env: Mapping[str, str] | None = None
) -> tuple[Keyring, str]:
    """The deployment's ring and where it came from: ``GATEWAY_DATA_KEYS`` + ``GATEWAY_INDEX_KEY``, else the key file
    (``GATEWAY_KEY_FILE``, else ``key_file``, else ``default_key_file``). Outside production a missing key file is
    made (the demo needs nothing set up); in production it is refused: data sealed under a lost key is lost, so a
    new one is never made silently. Raises ``KeyringError`` with what to do."""
    env = os.environ if env is None else env
    ring = from_env(env)
    if ring is not None:
        return ring, "GATEWAY_DATA_KEYS"
    path = Path(env.get("GATEWAY_KEY_FILE") or key_file or default_key_file(env)).expanduser()
    if not path.exists():
        if production:
            raise KeyringError(
                f"no key file at {path} and GATEWAY_DATA_KEYS is not set: customer data is encrypted at rest "
                f"(server.production refuses to make a key silently). Make one with 'gateway keys new {path}' "
                "and keep a copy apart from the data backups."
            )
        with contextlib.suppress(FileExistsError):  # another process of the deployment made it first
            new_key_file(path)
        return load_keyring(path, data_dir), f"{path} (made now)"
    return load_keyring(path, data_dir), str(path)

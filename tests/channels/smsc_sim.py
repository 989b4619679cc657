"""A small SMSC simulator speaking SMPP 3.4 over TCP on 127.0.0.1, for testing the SMPP channel.

Written from the specification with ``struct`` only — no smpplib — so that it checks smpplib-based
client code instead of mirroring it. One asyncio server; any number of client connections; the most
recently bound receiver/transceiver gets the mobile-originated ``deliver_sm`` PDUs.

    smsc = SMSC()
    await smsc.start()                    # smsc.port
    ...                                   # the gateway binds as a transceiver
    await smsc.wait_bound()
    await smsc.deliver("+8613800138000", "10086", "查话费")
    [sent] = await smsc.wait_submitted(1)
    assert smsc.messages_to("+8613800138000") == ["您的话费余额…"]
    await smsc.receipt(sent.message_id)
    await smsc.drop()                     # the gateway should re-bind
    await smsc.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
import struct
from collections.abc import Callable
from dataclasses import dataclass, field

# Command ids (SMPP 3.4, 5.1.2.1).
GENERIC_NACK = 0x80000000
BIND_RECEIVER = 0x00000001
BIND_TRANSMITTER = 0x00000002
QUERY_SM = 0x00000003
SUBMIT_SM = 0x00000004
DELIVER_SM = 0x00000005
UNBIND = 0x00000006
REPLACE_SM = 0x00000007
CANCEL_SM = 0x00000008
BIND_TRANSCEIVER = 0x00000009
OUTBIND = 0x0000000B
ENQUIRE_LINK = 0x00000015
SUBMIT_MULTI = 0x00000021
ALERT_NOTIFICATION = 0x00000102
DATA_SM = 0x00000103
RESP = 0x80000000

BINDS = (BIND_RECEIVER, BIND_TRANSMITTER, BIND_TRANSCEIVER)
CAN_RECEIVE = (BIND_RECEIVER, BIND_TRANSCEIVER)
CAN_TRANSMIT = (BIND_TRANSMITTER, BIND_TRANSCEIVER)

# Command status values (5.1.3).
ESME_ROK = 0x00
ESME_RINVMSGLEN = 0x01
ESME_RINVCMDLEN = 0x02
ESME_RINVCMDID = 0x03
ESME_RINVBNDSTS = 0x04
ESME_RALYBND = 0x05
ESME_RSYSERR = 0x08
ESME_RBINDFAIL = 0x0D
ESME_RINVPASWD = 0x0E
ESME_RINVSYSID = 0x0F
ESME_RTHROTTLED = 0x58

# Optional parameter tags (5.3.2).
TAG_RECEIPTED_MESSAGE_ID = 0x001E
TAG_SAR_MSG_REF_NUM = 0x020C
TAG_SAR_TOTAL_SEGMENTS = 0x020E
TAG_SAR_SEGMENT_SEQNUM = 0x020F
TAG_SC_INTERFACE_VERSION = 0x0210
TAG_MESSAGE_PAYLOAD = 0x0424
TAG_MESSAGE_STATE = 0x0427

# Data coding values this simulator understands.
DC_DEFAULT = 0x00  # GSM 03.38 default alphabet, one septet per octet
DC_IA5 = 0x01
DC_LATIN1 = 0x03
DC_UCS2 = 0x08

ESM_UDHI = 0x40
ESM_DELIVERY_RECEIPT = 0x04

MESSAGE_STATES = {
    "ENROUTE": 1,
    "DELIVRD": 2,
    "EXPIRED": 3,
    "DELETED": 4,
    "UNDELIV": 5,
    "ACCEPTD": 6,
    "UNKNOWN": 7,
    "REJECTD": 8,
}

MAX_PDU = 64 * 1024
RESP_TIMEOUT = 10.0

# --------------------------------------------------------------------------------------------------
# GSM 03.38 default alphabet (3GPP TS 23.038 6.2.1), one septet per octet as SMPP carries it.

GSM_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑ\u00dc\u00a7"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)
GSM_ESCAPE = 0x1B
GSM_EXTENSION = {0x0A: "\f", 0x14: "^", 0x28: "{", 0x29: "}", 0x2F: "\\", 0x3C: "[", 0x3D: "~", 0x3E: "]", 0x40: "|"}
GSM_EXTENSION[0x65] = "€"
_GSM_ENCODE = {ch: bytes([i]) for i, ch in enumerate(GSM_BASIC) if i != GSM_ESCAPE}
_GSM_ENCODE.update({ch: bytes([GSM_ESCAPE, code]) for code, ch in GSM_EXTENSION.items()})


def gsm_encodable(text: str) -> bool:
    return all(ch in _GSM_ENCODE for ch in text)


def gsm_encode(text: str) -> bytes:
    """Text → septets, one per octet; extension-table characters become 0x1B + code. ValueError if impossible."""
    try:
        return b"".join(_GSM_ENCODE[ch] for ch in text)
    except KeyError as e:
        raise ValueError(f"not in the GSM 03.38 default alphabet: {e.args[0]!r}") from None


def gsm_decode(data: bytes) -> str:
    """Septets (one per octet) → text. An escape with nothing after it (a part split after 0x1B) is dropped;
    an escape before an undefined code shows the basic-table character, as TS 23.038 asks of phones."""
    out: list[str] = []
    escaped = False
    for b in data:
        if b > 0x7F:
            out.append("\ufffd")
            escaped = False
        elif escaped:
            out.append(GSM_EXTENSION.get(b, GSM_BASIC[b] if b != GSM_ESCAPE else " "))
            escaped = False
        elif b == GSM_ESCAPE:
            escaped = True
        else:
            out.append(GSM_BASIC[b])
    return "".join(out)


def ucs2_decode(data: bytes) -> str:
    """UTF-16-BE; a surrogate half left alone by a part boundary is kept (as a lone surrogate), not lost."""
    try:
        return data.decode("utf-16-be", errors="surrogatepass")
    except UnicodeDecodeError:  # odd length
        return data.decode("utf-16-be", errors="replace")


def decode_text(data: bytes, data_coding: int) -> str:
    if data_coding == DC_DEFAULT:
        return gsm_decode(data)
    if data_coding == DC_UCS2:
        return ucs2_decode(data)
    if data_coding == DC_IA5:
        return data.decode("ascii", errors="replace")
    return data.decode("latin-1")  # 3 = ISO-8859-1; 2/4 (binary) shown byte for byte


def split_udh(short_message: bytes) -> tuple[bytes, bytes]:
    """(header incl. UDHL, payload) of a short message whose esm_class has UDHI set."""
    if not short_message:
        return b"", b""
    end = 1 + short_message[0]
    return short_message[:end], short_message[end:]


def concat_info(udh: bytes) -> tuple[int, int, int] | None:
    """(reference, total, seq) from a concatenation IE: 0x00 (8-bit reference) or 0x08 (16-bit reference)."""
    pos = 1
    while pos + 2 <= len(udh):
        iei, iel = udh[pos], udh[pos + 1]
        value = udh[pos + 2 : pos + 2 + iel]
        if len(value) < iel:
            return None
        if iei == 0x00 and iel == 3:
            return value[0], value[1], value[2]
        if iei == 0x08 and iel == 4:
            return (value[0] << 8) | value[1], value[2], value[3]
        pos += 2 + iel
    return None


# --------------------------------------------------------------------------------------------------
# PDU encoding and decoding.


class PduError(ValueError):
    """A PDU body that does not follow the layout; carries the status to answer with."""

    def __init__(self, message: str, status: int = ESME_RINVCMDLEN) -> None:
        super().__init__(message)
        self.status = status


def cstr(value: str | bytes) -> bytes:
    raw = value.encode("latin-1") if isinstance(value, str) else value
    if b"\0" in raw:
        raise ValueError("C-Octet String with a NUL inside")
    return raw + b"\0"


def pack_pdu(command_id: int, status: int, sequence: int, body: bytes = b"") -> bytes:
    return struct.pack(">IIII", 16 + len(body), command_id, status, sequence) + body


def pack_tlv(tag: int, value: bytes) -> bytes:
    return struct.pack(">HH", tag, len(value)) + value


class BodyReader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def u8(self) -> int:
        if self.pos >= len(self.data):
            raise PduError("body ends inside an integer field")
        self.pos += 1
        return self.data[self.pos - 1]

    def octets(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise PduError(f"body ends inside a {n}-octet field")
        self.pos += n
        return self.data[self.pos - n : self.pos]

    def cstr(self, limit: int) -> str:
        end = self.data.find(b"\0", self.pos)
        if end < 0:
            raise PduError("C-Octet String without its NUL")
        if end - self.pos + 1 > limit:
            raise PduError(f"C-Octet String longer than {limit} octets (with its NUL)", ESME_RINVMSGLEN)
        value = self.data[self.pos : end].decode("latin-1")
        self.pos = end + 1
        return value

    def tlvs(self) -> dict[int, bytes]:
        found: dict[int, bytes] = {}
        while self.pos < len(self.data):
            if self.pos + 4 > len(self.data):
                raise PduError("truncated TLV header")
            tag, length = struct.unpack_from(">HH", self.data, self.pos)
            self.pos += 4
            found[tag] = self.octets(length)
        return found


@dataclass
class ShortMessagePdu:
    """The common body of submit_sm and deliver_sm."""

    service_type: str
    source_ton: int
    source_npi: int
    source: str
    dest_ton: int
    dest_npi: int
    dest: str
    esm_class: int
    protocol_id: int
    priority_flag: int
    schedule_delivery_time: str
    validity_period: str
    registered_delivery: int
    replace_if_present_flag: int
    data_coding: int
    sm_default_msg_id: int
    short_message: bytes
    tlvs: dict[int, bytes]

    @classmethod
    def parse(cls, body: bytes) -> ShortMessagePdu:
        r = BodyReader(body)
        head = (r.cstr(6), r.u8(), r.u8(), r.cstr(21), r.u8(), r.u8(), r.cstr(21))
        flags = (r.u8(), r.u8(), r.u8(), r.cstr(17), r.cstr(17), r.u8(), r.u8(), r.u8(), r.u8())
        sm_length = r.u8()
        short_message = r.octets(sm_length)
        return cls(*head, *flags, short_message, r.tlvs())

    def encode(self) -> bytes:
        if len(self.short_message) > 254:
            raise ValueError("short_message longer than 254 octets")
        return b"".join(
            (
                cstr(self.service_type),
                bytes((self.source_ton, self.source_npi)),
                cstr(self.source),
                bytes((self.dest_ton, self.dest_npi)),
                cstr(self.dest),
                bytes((self.esm_class, self.protocol_id, self.priority_flag)),
                cstr(self.schedule_delivery_time),
                cstr(self.validity_period),
                bytes((self.registered_delivery, self.replace_if_present_flag, self.data_coding)),
                bytes((self.sm_default_msg_id, len(self.short_message))),
                self.short_message,
                *(pack_tlv(tag, value) for tag, value in self.tlvs.items()),
            )
        )


def ton_npi(address: str) -> tuple[int, int]:
    """International/ISDN for digits (with or without +), alphanumeric otherwise."""
    return (1, 1) if address.lstrip("+").isdigit() else (5, 0)


# --------------------------------------------------------------------------------------------------


@dataclass
class Submitted:
    """One submit_sm PDU as received (and accepted)."""

    source: str
    dest: str
    data_coding: int
    esm_class: int
    registered_delivery: int
    short_message: bytes  # raw, including the UDH if esm_class & 0x40 (message_payload's value when that was used)
    text: str  # this part's text, UDH stripped
    udh: tuple[int, int, int] | None  # (reference, total, seq) from the UDH or the sar_* TLVs
    message_id: str  # as given in submit_sm_resp
    sequence: int = 0
    service_type: str = ""
    source_ton: int = 0
    source_npi: int = 0
    dest_ton: int = 0
    dest_npi: int = 0
    protocol_id: int = 0
    priority_flag: int = 0
    schedule_delivery_time: str = ""
    validity_period: str = ""
    tlvs: dict[int, bytes] = field(default_factory=dict)
    payload_tlv: bool = False  # the text came in message_payload (0x0424), sm_length 0
    session: int = 0  # which connection (1, 2, … in order of connection)

    @property
    def payload(self) -> bytes:
        """The user data without the UDH."""
        return split_udh(self.short_message)[1] if self.esm_class & ESM_UDHI else self.short_message


class _Session:
    def __init__(self, number: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.number = number
        self.reader = reader
        self.writer = writer
        self.bound_as: int | None = None  # bind command id once bound
        self.system_id = ""
        self.pending: dict[int, asyncio.Future[int]] = {}
        self.closed = False
        self.write_lock = asyncio.Lock()

    async def send(self, pdu: bytes) -> None:
        if self.closed or self.writer.is_closing():
            raise ConnectionError(f"SMPP session {self.number} is closed")
        async with self.write_lock:
            self.writer.write(pdu)
            await self.writer.drain()

    def close(self, abort: bool) -> None:
        self.closed = True
        self.bound_as = None
        if abort:
            self.writer.transport.abort()
        else:
            self.writer.close()
        for fut in self.pending.values():
            if not fut.done():
                fut.set_exception(ConnectionError(f"SMPP session {self.number} closed before the response"))
        self.pending.clear()


class SMSC:
    """The simulator. All methods run on the event loop that called ``start()``."""

    def __init__(self, system_id: str = "gateway", password: str = "secret") -> None:
        self.system_id = system_id
        self.password = password
        self.port = 0
        # What a test sets.
        self.refuse_binds = False  # bind_*_resp with ESME_RBINDFAIL
        self.fail_submits = 0  # the next N submit_sm → ESME_RSYSERR, not recorded
        self.throttle_submits = 0  # the next N submit_sm → ESME_RTHROTTLED, not recorded
        # What a test asserts.
        self.submitted: list[Submitted] = []
        self.binds = 0  # successful binds
        self.bind_attempts: list[tuple[int, str, str, int]] = []  # (command_id, system_id, password, status given)
        self.enquire_links = 0  # enquire_link PDUs received
        self.unbinds = 0  # unbind PDUs received
        self.connections = 0  # TCP connections accepted
        self.rejected_submits: list[int] = []  # status of every submit_sm answered with an error
        self.received_commands: list[int] = []  # command_id of every PDU received, in order
        self.sent_commands: list[int] = []  # command_id of every request PDU the simulator originated
        self.client_responses: list[tuple[int, int, int]] = []  # (command_id, status, sequence) from clients
        self.errors: list[str] = []  # malformed PDUs and the like

        self._server: asyncio.Server | None = None
        self._sessions: dict[int, _Session] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._receiver: _Session | None = None
        self._sequence = itertools.count(1)
        self._message_ids = itertools.count(1)
        self._refs = itertools.count(1)
        self._waiters: list[asyncio.Future[None]] = []

    # ---------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for session in list(self._sessions.values()):
            session.close(abort=True)  # each connection's task then ends by itself, seeing EOF
        tasks = list(self._tasks)
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=2)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
        self._notify()

    async def __aenter__(self) -> SMSC:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ---------------------------------------------------------------- waiting

    def _notify(self) -> None:
        waiters, self._waiters = self._waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        """Until ``predicate()`` holds (checked whenever a PDU arrives or a session changes); TimeoutError."""
        async with asyncio.timeout(timeout):
            while not predicate():
                fut = asyncio.get_running_loop().create_future()
                self._waiters.append(fut)
                await fut

    @property
    def bound_sessions(self) -> int:
        return sum(1 for s in self._sessions.values() if s.bound_as is not None)

    async def wait_bound(self, timeout: float = 5.0) -> None:
        await self.wait_for(lambda: self.bound_sessions > 0, timeout)

    async def wait_submitted(self, count: int, timeout: float = 5.0) -> list[Submitted]:
        await self.wait_for(lambda: len(self.submitted) >= count, timeout)
        return list(self.submitted)

    # ---------------------------------------------------------------- what was sent

    def messages_to(self, dest: str) -> list[str]:
        """Full texts submitted to ``dest``; parts joined by (source, reference, total) in seq order, in order of
        completion. Parts are joined before decoding, so a character split across parts comes out whole."""
        done: list[str] = []
        groups: dict[tuple[str, int, int], dict[int, Submitted]] = {}
        for sub in self.submitted:
            if sub.dest != dest:
                continue
            if sub.udh is None or sub.udh[1] <= 1:
                done.append(sub.text)
                continue
            ref, total, seq = sub.udh
            key = (sub.source, ref, total)
            group = groups.setdefault(key, {})
            group[seq] = sub
            if all(n in group for n in range(1, total + 1)):
                parts = [group[n] for n in range(1, total + 1)]
                del groups[key]
                if len({p.data_coding for p in parts}) == 1:
                    done.append(decode_text(b"".join(p.payload for p in parts), parts[0].data_coding))
                else:
                    done.append("".join(p.text for p in parts))
        return done

    # ---------------------------------------------------------------- server side

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.connections += 1
        session = _Session(self.connections, reader, writer)
        self._sessions[session.number] = session
        try:
            while True:
                try:
                    raw_length = await reader.readexactly(4)
                    (length,) = struct.unpack(">I", raw_length)
                    if not 16 <= length <= MAX_PDU:
                        self.errors.append(f"session {session.number}: command_length {length}")
                        await session.send(pack_pdu(GENERIC_NACK, ESME_RINVCMDLEN, 0))
                        break
                    rest = await reader.readexactly(length - 4)
                except (asyncio.IncompleteReadError, ConnectionError):
                    break
                command_id, status, sequence = struct.unpack_from(">III", rest)
                self.received_commands.append(command_id)
                try:
                    await self._dispatch(session, command_id, status, sequence, rest[12:])
                except ConnectionError:
                    break
                self._notify()
        finally:
            if self._receiver is session:
                self._receiver = None
            session.close(abort=False)
            self._sessions.pop(session.number, None)
            self._tasks.discard(task)
            self._notify()

    async def _dispatch(self, session: _Session, command_id: int, status: int, sequence: int, body: bytes) -> None:
        if command_id & RESP:
            self.client_responses.append((command_id, status, sequence))
            fut = session.pending.pop(sequence, None)
            if fut is not None and not fut.done():
                fut.set_result(status)
            elif command_id not in (GENERIC_NACK, UNBIND | RESP):
                self.errors.append(f"session {session.number}: unexpected response 0x{command_id:08x} #{sequence}")
            return
        try:
            if command_id in BINDS:
                await self._on_bind(session, command_id, sequence, body)
            elif command_id == ENQUIRE_LINK:
                self.enquire_links += 1
                await session.send(pack_pdu(ENQUIRE_LINK | RESP, ESME_ROK, sequence))
            elif command_id == SUBMIT_SM:
                await self._on_submit(session, sequence, body)
            elif command_id == UNBIND:
                self.unbinds += 1
                session.bound_as = None
                if self._receiver is session:
                    self._receiver = None
                await session.send(pack_pdu(UNBIND | RESP, ESME_ROK, sequence))
            else:
                await session.send(pack_pdu(GENERIC_NACK, ESME_RINVCMDID, sequence))
        except PduError as e:
            self.errors.append(f"session {session.number}: command 0x{command_id:08x}: {e}")
            await session.send(pack_pdu(command_id | RESP, e.status, sequence))

    async def _on_bind(self, session: _Session, command_id: int, sequence: int, body: bytes) -> None:
        r = BodyReader(body)
        system_id, password = r.cstr(16), r.cstr(9)
        r.cstr(13), r.u8(), r.u8(), r.u8(), r.cstr(41)  # system_type, interface_version, ton, npi, address_range
        if session.bound_as is not None:
            status = ESME_RALYBND
        elif self.refuse_binds:
            status = ESME_RBINDFAIL
        elif system_id != self.system_id:
            status = ESME_RINVSYSID
        elif password != self.password:
            status = ESME_RINVPASWD
        else:
            status = ESME_ROK
        self.bind_attempts.append((command_id, system_id, password, status))
        if status != ESME_ROK:
            await session.send(pack_pdu(command_id | RESP, status, sequence))
            return
        session.bound_as = command_id
        session.system_id = system_id
        self.binds += 1
        if command_id in CAN_RECEIVE:
            self._receiver = session
        resp = cstr("SMSCSIM") + pack_tlv(TAG_SC_INTERFACE_VERSION, b"\x34")
        await session.send(pack_pdu(command_id | RESP, ESME_ROK, sequence, resp))

    async def _on_submit(self, session: _Session, sequence: int, body: bytes) -> None:
        if session.bound_as not in CAN_TRANSMIT:
            self.rejected_submits.append(ESME_RINVBNDSTS)
            await session.send(pack_pdu(SUBMIT_SM | RESP, ESME_RINVBNDSTS, sequence))
            return
        sm = ShortMessagePdu.parse(body)
        for counter, status in (("fail_submits", ESME_RSYSERR), ("throttle_submits", ESME_RTHROTTLED)):
            if getattr(self, counter) > 0:
                setattr(self, counter, getattr(self, counter) - 1)
                self.rejected_submits.append(status)
                await session.send(pack_pdu(SUBMIT_SM | RESP, status, sequence))
                return
        raw, payload_tlv = sm.short_message, False
        if not raw and TAG_MESSAGE_PAYLOAD in sm.tlvs:
            raw, payload_tlv = sm.tlvs[TAG_MESSAGE_PAYLOAD], True
        udh_info = None
        payload = raw
        if sm.esm_class & ESM_UDHI:
            udh, payload = split_udh(raw)
            udh_info = concat_info(udh)
        if udh_info is None and TAG_SAR_TOTAL_SEGMENTS in sm.tlvs:
            udh_info = (
                int.from_bytes(sm.tlvs.get(TAG_SAR_MSG_REF_NUM, b"\0"), "big"),
                int.from_bytes(sm.tlvs[TAG_SAR_TOTAL_SEGMENTS], "big"),
                int.from_bytes(sm.tlvs.get(TAG_SAR_SEGMENT_SEQNUM, b"\1"), "big"),
            )
        message_id = f"{next(self._message_ids):08x}"
        self.submitted.append(
            Submitted(
                source=sm.source,
                dest=sm.dest,
                data_coding=sm.data_coding,
                esm_class=sm.esm_class,
                registered_delivery=sm.registered_delivery,
                short_message=raw,
                text=decode_text(payload, sm.data_coding),
                udh=udh_info,
                message_id=message_id,
                sequence=sequence,
                service_type=sm.service_type,
                source_ton=sm.source_ton,
                source_npi=sm.source_npi,
                dest_ton=sm.dest_ton,
                dest_npi=sm.dest_npi,
                protocol_id=sm.protocol_id,
                priority_flag=sm.priority_flag,
                schedule_delivery_time=sm.schedule_delivery_time,
                validity_period=sm.validity_period,
                tlvs=sm.tlvs,
                payload_tlv=payload_tlv,
                session=session.number,
            )
        )
        await session.send(pack_pdu(SUBMIT_SM | RESP, ESME_ROK, sequence, cstr(message_id)))

    # ---------------------------------------------------------------- simulator-originated PDUs

    def _next_sequence(self) -> int:
        seq = next(self._sequence)
        if seq > 0x7FFFFFFF:
            self._sequence = itertools.count(2)
            seq = 1
        return seq

    async def _request(
        self, session: _Session, command_id: int, body: bytes = b"", timeout: float = RESP_TIMEOUT
    ) -> int:
        """Send a request PDU and wait for its response; the response's command_status."""
        sequence = self._next_sequence()
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        session.pending[sequence] = fut
        self.sent_commands.append(command_id)
        try:
            await session.send(pack_pdu(command_id, ESME_ROK, sequence, body))
            async with asyncio.timeout(timeout):
                return await fut
        finally:
            session.pending.pop(sequence, None)

    def _receiving_session(self) -> _Session:
        session = self._receiver
        if session is None or session.closed or session.bound_as not in CAN_RECEIVE:
            raise RuntimeError("no session bound as a receiver or transceiver")
        return session

    def _split(self, text: str, gsm: bool, parts: int | None) -> list[bytes]:
        encode = gsm_encode if gsm else (lambda s: s.encode("utf-16-be"))
        single, part = (160, 153) if gsm else (140, 134)
        whole = encode(text)
        if parts is None and len(whole) <= single:
            return [whole]
        if parts == 1:
            if len(whole) > single:
                raise ValueError(f"{len(whole)} octets do not fit one message ({single})")
            return [whole]
        chunks: list[bytes] = []
        if parts is None:  # greedy, never breaking an escape sequence or a surrogate pair
            current = b""
            for ch in text:
                enc = encode(ch)
                if len(current) + len(enc) > part:
                    chunks.append(current)
                    current = b""
                current += enc
            chunks.append(current)
        else:  # as even as the characters allow
            if not 1 < parts <= min(len(text), 255):
                raise ValueError(f"cannot split {len(text)} characters into {parts} parts")
            bounds = [round(i * len(text) / parts) for i in range(parts + 1)]
            chunks = [encode(text[a:b]) for a, b in itertools.pairwise(bounds)]
            if any(len(c) > part for c in chunks):
                raise ValueError(f"{parts} parts are too few for {len(whole)} octets ({part} a part)")
        if len(chunks) > 255:
            raise ValueError("more than 255 parts")
        return chunks

    async def deliver(
        self,
        source: str,
        dest: str,
        text: str,
        *,
        parts: int | None = None,
        ref: int | None = None,
        encoding: str | None = None,
        use_tlv: bool = False,
        order: list[int] | None = None,
    ) -> list[int]:
        """A mobile-originated message as deliver_sm PDU(s) to the receiving session; each resp's command_status
        in the order sent. ``encoding``: "gsm7", "ucs2" or None (gsm7 when every character allows it)."""
        session = self._receiving_session()
        if encoding is None:
            encoding = "gsm7" if gsm_encodable(text) else "ucs2"
        if encoding not in ("gsm7", "ucs2"):
            raise ValueError(f"unknown encoding {encoding!r}")
        gsm = encoding == "gsm7"
        chunks = self._split(text, gsm, parts)
        total = len(chunks)
        if order is None:
            order = list(range(1, total + 1))
        if sorted(order) != list(range(1, total + 1)):
            raise ValueError(f"order {order} is not a permutation of 1..{total}")
        if total > 1 and ref is None:
            ref = next(self._refs) % 256
        statuses: list[int] = []
        for seq in order:
            chunk, esm_class, tlvs = chunks[seq - 1], 0, {}
            if total > 1:
                assert ref is not None
                if use_tlv:
                    tlvs = {
                        TAG_SAR_MSG_REF_NUM: struct.pack(">H", ref & 0xFFFF),
                        TAG_SAR_TOTAL_SEGMENTS: bytes([total]),
                        TAG_SAR_SEGMENT_SEQNUM: bytes([seq]),
                    }
                elif ref > 0xFF:
                    chunk = bytes([6, 0x08, 4, (ref >> 8) & 0xFF, ref & 0xFF, total, seq]) + chunk
                    esm_class = ESM_UDHI
                else:
                    chunk = bytes([5, 0x00, 3, ref, total, seq]) + chunk
                    esm_class = ESM_UDHI
            body = self._sm(source, dest, esm_class, DC_DEFAULT if gsm else DC_UCS2, chunk, tlvs).encode()
            statuses.append(await self._request(session, DELIVER_SM, body))
        return statuses

    async def receipt(self, message_id: str, stat: str = "DELIVRD", source: str = "", dest: str = "") -> int:
        """A delivery receipt for ``message_id``; source/dest default to the submitted message's, swapped."""
        session = self._receiving_session()
        original = next((s for s in self.submitted if s.message_id == message_id), None)
        if original is not None:
            source = source or original.dest
            dest = dest or original.source
        now = dt.datetime.now().strftime("%y%m%d%H%M")
        text = f"id:{message_id} sub:001 dlvrd:001 submit date:{now} done date:{now} stat:{stat} err:000 text:"
        tlvs = {
            TAG_RECEIPTED_MESSAGE_ID: cstr(message_id),
            TAG_MESSAGE_STATE: bytes([MESSAGE_STATES.get(stat, 7)]),
        }
        body = self._sm(source, dest, ESM_DELIVERY_RECEIPT, DC_DEFAULT, text.encode("ascii"), tlvs).encode()
        return await self._request(session, DELIVER_SM, body)

    async def enquire_link(self, timeout: float = RESP_TIMEOUT) -> int:
        """An enquire_link to the receiving session (else any bound one); the resp's command_status."""
        session = self._receiver or next((s for s in self._sessions.values() if s.bound_as is not None), None)
        if session is None:
            raise RuntimeError("no bound session")
        return await self._request(session, ENQUIRE_LINK, timeout=timeout)

    @staticmethod
    def _sm(
        source: str, dest: str, esm_class: int, data_coding: int, sm: bytes, tlvs: dict[int, bytes]
    ) -> ShortMessagePdu:
        return ShortMessagePdu(
            "", *ton_npi(source), source, *ton_npi(dest), dest, esm_class, 0, 0, "", "", 0, 0, data_coding, 0, sm, tlvs
        )

    async def drop(self) -> None:
        """Close every client connection abruptly, without unbind."""
        sessions = list(self._sessions.values())
        self._receiver = None
        for session in sessions:
            session.close(abort=True)
        tasks = [t for t in self._tasks if not t.done()]
        if tasks:
            await asyncio.wait(tasks, timeout=2)
        self._notify()

    async def send_unbind(self) -> None:
        """A polite unbind to every bound session; they count as unbound at once. Does not wait for unbind_resp
        (smpplib never sends one); any that arrives is in ``client_responses``."""
        for session in [s for s in self._sessions.values() if s.bound_as is not None]:
            sequence = self._next_sequence()
            session.bound_as = None
            if self._receiver is session:
                self._receiver = None
            self.sent_commands.append(UNBIND)
            with contextlib.suppress(ConnectionError):
                await session.send(pack_pdu(UNBIND, ESME_ROK, sequence))
        self._notify()

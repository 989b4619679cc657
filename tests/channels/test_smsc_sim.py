"""The SMSC simulator against the real smpplib client: proof that both speak the same SMPP 3.4 on the wire.

smpplib's calls block, so they run in threads (``asyncio.to_thread``, or a reader thread for PDUs that the
simulator originates) while the simulator runs on the test's event loop.
"""

from __future__ import annotations

import asyncio
import struct
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
import smpplib.client
import smpplib.consts
import smpplib.exceptions
import smpplib.gsm
import smpplib.smpp

from tests.channels.smsc_sim import (
    GSM_BASIC,
    SMSC,
    UNBIND,
    concat_info,
    gsm_decode,
    gsm_encodable,
    gsm_encode,
)

CHINESE = (
    "尊敬的客户，您好！您本月的套餐内流量已使用百分之八十，剩余流量为二点五吉字节。"
    "如需加购流量包，请回复数字一；查询账单明细请回复数字二；人工服务请回复数字零。"
    "感谢您的支持，祝您生活愉快！"
)
MSISDN = "+8613800138000"


class LockedClient(smpplib.client.Client):
    """smpplib's Client with one lock around ``send_pdu``: its reader thread answers deliver_sm and enquire_link
    on the same socket other threads submit on, and smpplib itself does not serialise ``sendall``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._send_lock = threading.Lock()

    def send_pdu(self, p: Any) -> bool:
        with self._send_lock:
            return super().send_pdu(p)


class Esme:
    """One smpplib client; ``start_reader()`` runs ``read_once`` in a thread and collects what arrives."""

    def __init__(self, port: int, timeout: float = 2.0) -> None:
        # allow_unknown_opt_params must be given: left None, smpplib warns (DeprecationWarning → error here).
        self.client = LockedClient("127.0.0.1", port, timeout=timeout, allow_unknown_opt_params=True)
        self.delivered: list[Any] = []  # deliver_sm PDUs, as smpplib parsed them
        self.sent: list[Any] = []  # submit_sm_resp PDUs
        self.error_pdus: list[Any] = []
        self.reply_status: int | None = None  # what message_received_handler returns
        self.failure: BaseException | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.client.set_message_received_handler(self._on_message)
        self.client.set_message_sent_handler(lambda pdu, **kw: self.sent.append(pdu))

    def _on_message(self, pdu: Any, **kw: Any) -> int | None:
        self.delivered.append(pdu)
        return self.reply_status

    def bind(self, **kw: Any) -> Any:
        self.client.connect()
        return self.client.bind_transceiver(system_id=kw.pop("system_id", "gateway"), password="secret", **kw)

    def submit(self, dest: str, short_message: bytes, **kw: Any) -> Any:
        return self.client.send_message(
            source_addr_ton=5,
            source_addr_npi=0,
            source_addr="10086",
            dest_addr_ton=1,
            dest_addr_npi=1,
            destination_addr=dest,
            short_message=short_message,
            **kw,
        )

    def start_reader(self) -> None:
        """read_once in a loop; with a short socket timeout so that ``close()`` is prompt. An error PDU
        is recorded instead of raised (the default error_pdu_handler raises, which would end the loop)."""
        self.client._socket.settimeout(0.05)
        self.client.set_error_pdu_handler(self.error_pdus.append)
        self._thread = threading.Thread(target=self._read, name="smpp-reader", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                self.client.read_once(auto_send_enquire_link=False)
            except TimeoutError:
                continue
            except Exception as e:  # the test looks at it
                self.failure = e
                return

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        if self.client._socket is not None:
            self.client.disconnect()


@pytest.fixture
async def smsc() -> AsyncIterator[SMSC]:
    sim = SMSC()
    await sim.start()
    yield sim
    await sim.stop()


@pytest.fixture
def esme(smsc: SMSC) -> Iterator[Callable[..., Esme]]:
    made: list[Esme] = []

    def make(**kw: Any) -> Esme:
        made.append(Esme(smsc.port, **kw))
        return made[-1]

    yield make
    for e in made:
        e.close()


async def bound_esme(make: Callable[..., Esme], smsc: SMSC, reader: bool = False) -> Esme:
    e = make()
    await asyncio.to_thread(e.bind)
    await smsc.wait_bound()
    if reader:
        e.start_reader()
    return e


async def until(predicate: Callable[[], bool], timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError
        await asyncio.sleep(0.005)


def reassemble(pdus: list[Any]) -> list[str]:
    """What the gateway must do with smpplib's deliver_sm PDUs: parts by UDH (IEI 0x00/0x08) or sar_* TLVs."""
    groups: dict[tuple[int, int], dict[int, Any]] = {}
    done: list[str] = []
    for pdu in pdus:
        sm = pdu.short_message or pdu.message_payload or b""
        if pdu.esm_class & 0x40:
            ref, total, seq = concat_info(sm[: sm[0] + 1])
            payload = sm[sm[0] + 1 :]
        elif pdu.sar_total_segments:
            ref, total, seq, payload = pdu.sar_msg_ref_num, pdu.sar_total_segments, pdu.sar_segment_seqnum, sm
        else:
            ref, total, seq, payload = 0, 1, 1, sm
        group = groups.setdefault((ref, total), {})
        group[seq] = (pdu.data_coding, payload)
        if len(group) == total:
            del groups[(ref, total)]
            coding = group[1][0]
            data = b"".join(group[n][1] for n in range(1, total + 1))
            done.append(data.decode("utf-16-be") if coding == 8 else gsm_decode(data))
    return done


# ------------------------------------------------------------------------------------------ the alphabet


def test_gsm_alphabet_agrees_with_smpplib_where_smpplib_is_right():
    assert len(GSM_BASIC) == 128
    text = "Hello @home: 5€ {x} [y] ~z | ^ \\ ÆØÅ ¡¿ §"
    assert gsm_decode(gsm_encode(text)) == text
    assert gsm_encode("€{") == b"\x1be\x1b("
    assert not gsm_encodable("中") and gsm_encodable("\f")
    # smpplib's table has "`" where GSM has "§" (0x5F) and no form feed; everything else must agree.
    for ch in (c for c in GSM_BASIC + "^{}\\[~]|€" if c not in "§\x1b"):
        assert smpplib.gsm.gsm_encode(ch) == gsm_encode(ch), ch
    assert smpplib.gsm.gsm_encode("`") == b"\x5f" and gsm_decode(b"\x5f") == "§"


# ------------------------------------------------------------------------------------------ bind


async def test_bind_transceiver_and_refusals(smsc: SMSC, esme: Callable[..., Esme]):
    ok = esme()
    resp = await asyncio.to_thread(ok.bind)
    assert resp.command == "bind_transceiver_resp" and resp.status == 0
    assert resp.system_id == b"SMSCSIM" and resp.sc_interface_version == 0x34
    assert ok.client.state == smpplib.consts.SMPP_CLIENT_STATE_BOUND_TRX
    await smsc.wait_bound()
    assert smsc.binds == 1

    for system_id, password, status in (("gateway", "wrong", 0x0E), ("other", "secret", 0x0F)):
        bad = esme()
        bad.client.connect()
        with pytest.raises(smpplib.exceptions.PDUError) as err:
            await asyncio.to_thread(bad.client.bind_transceiver, system_id=system_id, password=password)
        assert err.value.args[1] == status
        assert bad.client.state == smpplib.consts.SMPP_CLIENT_STATE_OPEN  # still connected, not bound

    smsc.refuse_binds = True
    refused = esme()
    with pytest.raises(smpplib.exceptions.PDUError) as err:
        await asyncio.to_thread(refused.bind)
    assert err.value.args[1] == 0x0D
    smsc.refuse_binds = False

    tx, rx = esme(), esme()
    tx.client.connect()
    rx.client.connect()
    await asyncio.to_thread(tx.client.bind_transmitter, system_id="gateway", password="secret")
    await asyncio.to_thread(rx.client.bind_receiver, system_id="gateway", password="secret")
    assert smsc.binds == 3
    assert [a[0] for a in smsc.bind_attempts] == [9, 9, 9, 9, 2, 1]
    assert [a[3] for a in smsc.bind_attempts] == [0, 0x0E, 0x0F, 0x0D, 0, 0]

    resp = await asyncio.to_thread(ok.client.unbind)
    assert resp.command == "unbind_resp" and ok.client.state == smpplib.consts.SMPP_CLIENT_STATE_OPEN
    assert smsc.unbinds == 1


# ------------------------------------------------------------------------------------------ submit_sm


async def test_submit_short_gsm_text(smsc: SMSC, esme: Callable[..., Esme]):
    e = await bound_esme(esme, smsc)
    text = "Hi {name}, your bill is 5€ @ ~30 days. [OK]"
    ssm = await asyncio.to_thread(e.submit, MSISDN, smpplib.gsm.gsm_encode(text), data_coding=0, registered_delivery=1)
    await asyncio.to_thread(e.client.read_once)
    [resp] = e.sent
    [sub] = await smsc.wait_submitted(1)
    assert resp.sequence == ssm.sequence and resp.message_id == sub.message_id.encode()
    assert (sub.source, sub.dest, sub.source_ton, sub.dest_ton) == ("10086", MSISDN, 5, 1)
    assert (sub.data_coding, sub.esm_class, sub.registered_delivery, sub.udh) == (0, 0, 1, None)
    assert sub.text == text and sub.short_message == smpplib.gsm.gsm_encode(text)
    assert smsc.messages_to(MSISDN) == [text] and smsc.messages_to("+1") == []


@pytest.mark.parametrize(
    "text",
    [
        "中" * 66 + "😀" + CHINESE,  # UCS-2: make_parts cuts at 134 octets, between the halves of the surrogate pair
        "x" * 152 + "€" + "y" * 20,  # GSM, make_parts cuts between 0x1B and 0x65
    ],
    ids=["ucs2", "gsm7"],
)
async def test_submit_long_text_split_by_make_parts(smsc: SMSC, esme: Callable[..., Esme], text: str):
    e = await bound_esme(esme, smsc)
    parts, coding, esm_class = smpplib.gsm.make_parts(text)
    assert esm_class == 0x40 and len(parts) >= 2
    if text.startswith("x"):
        assert coding == 0 and parts[0].endswith(b"\x1b")
    else:
        assert coding == 8 and len(parts[0]) == 6 + 134
        assert parts[0][-2:] == "😀".encode("utf-16-be")[:2]
    for part in parts:
        await asyncio.to_thread(e.submit, MSISDN, part, data_coding=coding, esm_class=esm_class)
        await asyncio.to_thread(e.client.read_once)
    subs = await smsc.wait_submitted(len(parts))
    ref = parts[0][3]
    assert [s.udh for s in subs] == [(ref, len(parts), n) for n in range(1, len(parts) + 1)]
    assert [r.message_id.decode() for r in e.sent] == [s.message_id for s in subs]
    assert smsc.messages_to(MSISDN) == [text]
    if coding == 8:
        assert subs[0].text.endswith("\ud83d")  # each part decoded alone keeps its half


async def test_submit_sar_tlvs_16bit_udh_and_message_payload(smsc: SMSC, esme: Callable[..., Esme]):
    e = await bound_esme(esme, smsc)
    parts, coding, esm_class = smpplib.gsm.make_parts(CHINESE, use_udhi=False)  # plain chunks, esm_class 0
    assert esm_class == 0 and coding == 8
    for n, part in enumerate(reversed(parts)):  # out of order on purpose
        seq = len(parts) - n
        await asyncio.to_thread(
            e.submit,
            "+8613900000001",
            part,
            data_coding=8,
            sar_msg_ref_num=777,
            sar_total_segments=len(parts),
            sar_segment_seqnum=seq,
        )
    chunks = [s.encode("utf-16-be") for s in ("第一部分，", "第二部分。")]
    for seq, chunk in enumerate(chunks, 1):
        udh = bytes([6, 0x08, 4, 0x12, 0x34, 2, seq])
        await asyncio.to_thread(e.submit, "+8613900000002", udh + chunk, data_coding=8, esm_class=0x40)
    long_latin = "Ünïcödé " * 30  # 240 octets: too long for short_message, fine in message_payload
    await asyncio.to_thread(
        e.client.send_message,
        source_addr="10086",
        destination_addr="+8613900000003",
        message_payload=long_latin.encode("latin-1"),
        data_coding=3,
    )
    for _ in range(len(parts) + 3):
        await asyncio.to_thread(e.client.read_once)
    subs = await smsc.wait_submitted(len(parts) + 3)
    assert subs[0].udh == (777, len(parts), len(parts)) and subs[0].esm_class == 0
    assert smsc.messages_to("+8613900000001") == [CHINESE]
    assert [s.udh for s in subs if s.dest == "+8613900000002"] == [(0x1234, 2, 1), (0x1234, 2, 2)]
    assert smsc.messages_to("+8613900000002") == ["第一部分，第二部分。"]
    assert subs[-1].payload_tlv and subs[-1].text == long_latin
    assert smsc.messages_to("+8613900000003") == [long_latin]


async def test_failed_and_throttled_submits(smsc: SMSC, esme: Callable[..., Esme]):
    e = await bound_esme(esme, smsc)
    smsc.fail_submits, smsc.throttle_submits = 1, 1
    for status in (0x08, 0x58):
        await asyncio.to_thread(e.submit, MSISDN, b"hello")
        with pytest.raises(smpplib.exceptions.PDUError) as err:  # the default error_pdu_handler raises
            await asyncio.to_thread(e.client.read_once)
        assert err.value.args[1] == status
    assert smsc.submitted == [] and smsc.rejected_submits == [0x08, 0x58]
    await asyncio.to_thread(e.submit, MSISDN, b"hello")
    await asyncio.to_thread(e.client.read_once)
    assert [s.text for s in smsc.submitted] == ["hello"] and e.sent[0].status == 0
    # With an error_pdu_handler that does not raise, message_sent_handler gets the error response too.
    e.start_reader()
    smsc.throttle_submits = 1
    ssm = await asyncio.to_thread(e.submit, MSISDN, b"again")
    await until(lambda: len(e.sent) == 2)
    assert e.error_pdus == [e.sent[1]]
    assert (e.sent[1].status, e.sent[1].sequence, e.sent[1].message_id) == (0x58, ssm.sequence, None)


# ------------------------------------------------------------------------------------------ deliver_sm


@pytest.mark.parametrize(
    ("order", "use_tlv"),
    [(None, False), ([2, 1], False), (None, True), ([2, 1], True)],
    ids=["udh", "udh-reversed", "sar", "sar-reversed"],
)
async def test_deliver_long_chinese_in_two_parts(smsc: SMSC, esme: Callable[..., Esme], order, use_tlv):
    e = await bound_esme(esme, smsc, reader=True)
    statuses = await smsc.deliver(MSISDN, "10086", CHINESE, parts=2, ref=42, use_tlv=use_tlv, order=order)
    assert statuses == [0, 0]
    await until(lambda: len(e.delivered) == 2)
    first = e.delivered[0]
    assert first.source_addr == MSISDN.encode() and first.destination_addr == b"10086"
    assert first.data_coding == 8 and first.source_addr_ton == 1
    if use_tlv:
        assert first.esm_class == 0 and first.sar_msg_ref_num == 42 and first.sar_total_segments == 2
        assert [p.sar_segment_seqnum for p in e.delivered] == (order or [1, 2])
    else:
        assert first.esm_class == 0x40 and first.short_message[:5] == b"\x05\x00\x03\x2a\x02"
        assert [p.short_message[5] for p in e.delivered] == (order or [1, 2])
    assert reassemble(e.delivered) == [CHINESE]
    assert e.failure is None


async def test_deliver_splits_automatically(smsc: SMSC, esme: Callable[..., Esme]):
    e = await bound_esme(esme, smsc, reader=True)
    cases = [
        ("a" * 160, 1),  # 160 septets fit one message
        ("{" * 80, 1),  # 80 escaped characters = 160 septets
        ("a" * 161, 2),
        ("中" * 70, 1),  # 140 octets
        ("中" * 71, 2),  # 67 + 4 UCS-2 units
        ("x" * 152 + "€" * 5, 2),  # the escape sequence is not cut: 152 | 10
        ("中" * 66 + "😀" + "中" * 3, 2),  # nor the surrogate pair: 66 | 2 + 3
    ]
    for text, parts in cases:
        before = len(e.delivered)
        assert await smsc.deliver(MSISDN, "10086", text) == [0] * parts
        await until(lambda n=before + parts: len(e.delivered) == n)
        new = e.delivered[before:]
        assert reassemble(new) == [text], text
        if parts == 2:
            sizes = [len(p.short_message) - 6 for p in new]
            assert sizes[0] <= (153 if new[0].data_coding == 0 else 134)
            assert new[0].data_coding == (0 if gsm_encodable(text) else 8)
    assert [len(p.short_message) for p in e.delivered[2:4]] == [6 + 153, 6 + 8]
    assert [len(p.short_message) for p in e.delivered[-2:]] == [6 + 132, 6 + 10]
    assert await smsc.deliver(MSISDN, "10086", "hello", encoding="ucs2") == [0]
    await until(lambda: e.delivered[-1].short_message == "hello".encode("utf-16-be"))
    assert await smsc.deliver(MSISDN, "10086", "sixteen-bit reference", parts=2, ref=0x1234) == [0, 0]
    assert len(e.delivered) == 14  # the handler runs before smpplib sends deliver_sm_resp
    assert [p.short_message[:7] for p in e.delivered[-2:]] == [
        b"\x06\x08\x04\x12\x34\x02\x01",
        b"\x06\x08\x04\x124\x02\x02",
    ]
    assert reassemble(e.delivered[-2:]) == ["sixteen-bit reference"]
    assert await smsc.deliver(MSISDN, "10086", "hello", encoding="ucs2") == [0]
    await until(lambda: e.delivered[-1].short_message == "hello".encode("utf-16-be"))
    assert e.delivered[-1].data_coding == 8 and e.delivered[-1].esm_class == 0


async def test_handler_return_value_is_the_deliver_sm_resp_status(smsc: SMSC, esme: Callable[..., Esme]):
    e = await bound_esme(esme, smsc, reader=True)
    e.reply_status = 0x08  # e.g. "could not store it, send it again"
    assert await smsc.deliver(MSISDN, "10086", "retry me") == [0x08]
    e.reply_status = None  # None → ESME_ROK
    assert await smsc.deliver(MSISDN, "10086", "fine") == [0]
    assert [r[1] for r in smsc.client_responses] == [0x08, 0]


async def test_delivery_receipt(smsc: SMSC, esme: Callable[..., Esme]):
    e = await bound_esme(esme, smsc, reader=True)
    await asyncio.to_thread(e.submit, MSISDN, b"your code is 1234", registered_delivery=1)
    [sub] = await smsc.wait_submitted(1)
    await until(lambda: len(e.sent) == 1)
    assert await smsc.receipt(sub.message_id) == 0
    assert await smsc.receipt(sub.message_id, stat="UNDELIV") == 0
    await until(lambda: len(e.delivered) == 2)
    ok, bad = e.delivered
    assert ok.esm_class == 0x04 and ok.receipted_message_id == sub.message_id.encode() == e.sent[0].message_id
    assert ok.message_state == 2 and bad.message_state == 5
    assert ok.short_message.startswith(b"id:" + sub.message_id.encode() + b" sub:001 dlvrd:001 submit date:")
    assert b" stat:DELIVRD err:000 text:" in ok.short_message and b"stat:UNDELIV" in bad.short_message
    assert (ok.source_addr, ok.destination_addr) == (MSISDN.encode(), b"10086")  # swapped


async def test_deliver_without_a_receiver(smsc: SMSC, esme: Callable[..., Esme]):
    with pytest.raises(RuntimeError):
        await smsc.deliver(MSISDN, "10086", "hi")
    tx = esme()
    tx.client.connect()
    await asyncio.to_thread(tx.client.bind_transmitter, system_id="gateway", password="secret")
    await smsc.wait_bound()
    with pytest.raises(RuntimeError):
        await smsc.deliver(MSISDN, "10086", "hi")
    with pytest.raises(ValueError):
        smsc._split("中" * 200, gsm=False, parts=2)  # two parts of 100 characters do not fit


# ------------------------------------------------------------------------------------------ link


async def test_enquire_link(smsc: SMSC, esme: Callable[..., Esme]):
    e = await bound_esme(esme, smsc)
    await asyncio.to_thread(e.client.send_pdu, smpplib.smpp.make_pdu("enquire_link", client=e.client))
    resp = await asyncio.to_thread(e.client.read_pdu)
    assert resp.command == "enquire_link_resp" and smsc.enquire_links == 1
    # read_once on an idle socket: the socket timeout makes it send enquire_link and return.
    e.client._socket.settimeout(0.1)
    assert await asyncio.to_thread(e.client.read_once) is None
    await smsc.wait_for(lambda: smsc.enquire_links == 2)
    await asyncio.to_thread(e.client.read_once)  # its resp, ignored by smpplib
    # and smpplib answers the SMSC's own enquire_link inside read_once
    e.start_reader()
    assert await smsc.enquire_link() == 0
    assert smsc.client_responses[-1][:2] == (0x80000015, 0)


async def test_drop_then_rebind(smsc: SMSC, esme: Callable[..., Esme]):
    e = await bound_esme(esme, smsc)
    await smsc.drop()
    assert smsc.bound_sessions == 0
    with pytest.raises(smpplib.exceptions.ConnectionError):
        await asyncio.to_thread(e.client.read_once)
    assert e.client.state == smpplib.consts.SMPP_CLIENT_STATE_BOUND_TRX  # smpplib does not notice by itself
    # connect() keeps the dead socket: it "succeeds" without a new TCP connection, and the bind fails.
    await asyncio.to_thread(e.client.connect)
    assert e.client.state == smpplib.consts.SMPP_CLIENT_STATE_OPEN and smsc.connections == 1
    with pytest.raises(smpplib.exceptions.ConnectionError):
        await asyncio.to_thread(e.client.bind_transceiver, system_id="gateway", password="secret")
    e.client.disconnect()  # so disconnect() first: it drops the socket, and connect() makes a new one
    await asyncio.to_thread(e.bind)
    await smsc.wait_bound()
    assert smsc.binds == 2 and smsc.connections == 2
    e.start_reader()
    assert await smsc.deliver(MSISDN, "10086", "back again") == [0]
    await until(lambda: len(e.delivered) == 1)


async def test_unbind_from_the_smsc(smsc: SMSC, esme: Callable[..., Esme]):
    a = await bound_esme(esme, smsc)
    b = await bound_esme(esme, smsc)
    await smsc.send_unbind()
    assert smsc.bound_sessions == 0
    # read_once swallows the unbind: no unbind_resp, no handler, state unchanged.
    assert await asyncio.to_thread(a.client.read_once) is None
    assert a.client.state == smpplib.consts.SMPP_CLIENT_STATE_BOUND_TRX
    # read_pdu shows it, and the client can answer by hand.
    pdu = await asyncio.to_thread(b.client.read_pdu)
    assert pdu.command == "unbind"
    resp = smpplib.smpp.make_pdu("unbind_resp", client=b.client, sequence=pdu.sequence)
    assert resp.sequence != pdu.sequence  # make_pdu ignores sequence=…; smpplib itself assigns it afterwards
    resp.sequence = pdu.sequence
    await asyncio.to_thread(b.client.send_pdu, resp)
    for c in (a, b):  # a round trip each, so anything either sent before has arrived
        await asyncio.to_thread(c.client.send_pdu, smpplib.smpp.make_pdu("enquire_link", client=c.client))
        await asyncio.to_thread(c.client.read_pdu)
    assert [r for r in smsc.client_responses if r[0] == UNBIND | 0x80000000] == [(0x80000006, 0, pdu.sequence)]


# ------------------------------------------------------------------------------------------ raw wire


async def test_raw_generic_nack_unbound_submit_and_bad_length(smsc: SMSC):
    reader, writer = await asyncio.open_connection("127.0.0.1", smsc.port)

    async def roundtrip(pdu: bytes) -> tuple[int, int, int, int]:
        writer.write(pdu)
        header = await asyncio.wait_for(reader.readexactly(16), 2)
        length, command_id, status, seq = struct.unpack(">IIII", header)
        await reader.readexactly(length - 16)
        return length, command_id, status, seq

    assert await roundtrip(struct.pack(">IIII", 16, 0x03, 0, 7)) == (16, 0x80000000, 0x03, 7)  # query_sm
    body = b"\0\1\1123\0\1\1456\0\0\0\0\0\0\0\0\0\0\2hi"
    submit = struct.pack(">IIII", 16 + len(body), 0x04, 0, 8) + body
    assert await roundtrip(submit) == (16, 0x80000004, 0x04, 8)  # not bound
    assert await roundtrip(struct.pack(">IIII", 16, 0x15, 0, 9)) == (16, 0x80000015, 0, 9)
    assert await roundtrip(struct.pack(">I", 8)) == (16, 0x80000000, 0x02, 0)  # command_length 8
    assert await asyncio.wait_for(reader.read(), 2) == b""  # and the connection is closed
    writer.close()
    await writer.wait_closed()
    assert smsc.received_commands == [0x03, 0x04, 0x15] and smsc.submitted == []
    with pytest.raises(TimeoutError):
        await smsc.wait_submitted(1, timeout=0.05)
    with pytest.raises(TimeoutError):
        await smsc.wait_bound(timeout=0.05)

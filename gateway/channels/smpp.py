"""SMPP 3.4 for operators that connect the gateway straight to their SMSC.

One thread per process holds a **transceiver** bind (``smpplib``, which is blocking) and does all
socket I/O: it sends ``submit_sm`` for queued texts, answers ``deliver_sm`` and ``enquire_link``,
sends its own ``enquire_link`` after ``smpp_enquire_interval`` seconds of silence, and on any drop
re-binds with jittered exponential back-off up to ``smpp_rebind_max`` seconds. The asyncio side
talks to it through futures:

* **Outbound** (``SmppProvider.send``, called by the SMS outbox): the text is split here — GSM-7
  (160 septets, 153 per part) or UCS-2 (70 units, 67 per part) with a concatenation UDH — and the
  call returns when every part's ``submit_sm_resp`` arrives. Not bound, a throttling or temporary
  error status, or no response → ``RetryLater``: the text stays in the outbox (nothing lost while
  the link is down). An invalid destination → ``PermanentFailure``.
* **Inbound:** ``deliver_sm`` (texts and delivery receipts) is handed, on the thread, to ``on_deliver`` /
  ``on_receipt``, whose command status it answers with: ``gateway/channels/smpp_inbox.py`` stores the text in
  Redis before it is acknowledged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import queue
import random
import re
import select
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import smpplib.client
import smpplib.consts as C
import smpplib.exceptions
import smpplib.smpp

from gateway import sms_units as sms_sizes
from gateway.outbox import PermanentFailure, RetryLater
from gateway.settings import SmsSettings
from gateway.sms_units import gsm_decode, gsm_encode

log = logging.getLogger(__name__)

TEMPORARY = {C.SMPP_ESME_RTHROTTLED, C.SMPP_ESME_RMSGQFUL, C.SMPP_ESME_RSYSERR, C.SMPP_ESME_RX_T_APPN,
             C.SMPP_ESME_RINVBNDSTS}  # fmt: skip
LINK_ERRORS = (smpplib.exceptions.ConnectionError, smpplib.exceptions.PDUError, OSError, ConnectionError)
# what a submit_sm can address: digits, a leading '+' (international), at most 20 (destination_addr is C-Octet 21)
_DESTINATION = re.compile(r"\+?[0-9]{1,20}")
RECEIPT_STATES = {1: "enroute", 2: "delivered", 3: "expired", 4: "deleted", 5: "undeliverable", 6: "accepted",
                  7: "unknown", 8: "rejected"}  # fmt: skip


def decode(data: bytes, data_coding: int) -> str:
    if data_coding == 8:
        return data.decode("utf-16-be", errors="replace")
    if data_coding == 3:
        return data.decode("latin-1")
    if data_coding == 1:
        return data.decode("ascii", errors="replace")
    return gsm_decode(data)


def split_text(text: str, ref: int) -> tuple[int, list[bytes]]:
    """(data_coding, short_messages): one part, or parts with a concatenation UDH (8-bit reference),
    never splitting a GSM escape or a UTF-16 surrogate pair."""
    if sms_sizes.encoding(text) == "gsm7":
        coding, units = 0, [gsm_encode(ch) for ch in text]
        single, per_part = 160, 153
    else:
        coding = 8
        units = [ch.encode("utf-16-be") for ch in text]  # one or two code units per character
        single, per_part = 140, 134  # bytes: 70 / 67 UCS-2 units
    whole = b"".join(units)
    if len(whole) <= single:
        return coding, [whole]
    chunks, current = [], b""
    for unit in units:
        if len(current) + len(unit) > per_part:
            chunks.append(current)
            current = b""
        current += unit
    chunks.append(current)
    if len(chunks) > 255:
        raise PermanentFailure("text too long for SMS concatenation")
    total = len(chunks)
    return coding, [bytes([5, 0, 3, ref & 0xFF, total, i]) + c for i, c in enumerate(chunks, 1)]


def parse_udh(short_message: bytes) -> tuple[tuple[int, int, int] | None, bytes]:
    """((reference, total, seq) or None, the text bytes) of a short_message with a UDH."""
    if not short_message:
        return None, short_message
    length = short_message[0]
    header, body = short_message[1 : 1 + length], short_message[1 + length :]
    i = 0
    while i + 2 <= len(header):
        iei, ie_len = header[i], header[i + 1]
        value = header[i + 2 : i + 2 + ie_len]
        if iei == 0x00 and ie_len == 3:
            return (value[0], value[1], value[2]), body
        if iei == 0x08 and ie_len == 4:
            return ((value[0] << 8) | value[1], value[2], value[3]), body
        i += 2 + ie_len
    return None, body


def _text_field(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("latin-1")
    return str(value or "")


@dataclass(slots=True)
class _Submit:
    dest: str
    coding: int
    parts: list[bytes]
    esm_class: int
    future: asyncio.Future[list[str]]
    loop: asyncio.AbstractEventLoop
    ids: dict[int, str] = field(default_factory=dict)  # part index → message id
    pending: dict[int, int] = field(default_factory=dict)  # sequence → part index
    sent_at: float = 0.0


@dataclass(frozen=True, slots=True)
class MobileOriginated:
    source: str
    dest: str
    data_coding: int
    body: bytes  # text bytes, UDH removed
    concat: tuple[int, int, int] | None  # (reference, total, seq)


class SmppLink:
    """The bind and its thread."""

    def __init__(self, settings: SmsSettings) -> None:
        self.s = settings
        self.bound = threading.Event()
        self.binds = 0
        self._stop = threading.Event()
        self._out: queue.Queue[_Submit] = queue.Queue()
        self._inflight: dict[int, _Submit] = {}
        self._wake_r, self._wake_w = os.pipe()
        self._thread: threading.Thread | None = None
        self.on_deliver: Callable[[MobileOriginated], int] | None = None  # called on the thread → command status
        self.on_receipt: Callable[[str, str, str], int] | None = None
        self._ref = random.randrange(256)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="smpp-link", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake()
        if self._thread:
            self._thread.join(timeout=10)
        os.close(self._wake_r)
        os.close(self._wake_w)

    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")

    async def submit(self, dest: str, text: str) -> list[str]:
        if not _DESTINATION.fullmatch(dest):  # never the number itself in the reason: it is kept and shown
            raise PermanentFailure("SMPP cannot address this number (digits and a leading '+' only, 20 at most)")
        if not self.bound.is_set():
            raise RetryLater("SMPP not bound")
        loop = asyncio.get_running_loop()
        self._ref = (self._ref + 1) % 256
        coding, parts = split_text(text, self._ref)
        job = _Submit(dest, coding, parts, 0x40 if len(parts) > 1 else 0, loop.create_future(), loop)
        self._out.put(job)
        self._wake()
        try:
            return await asyncio.wait_for(asyncio.shield(job.future), self.s.smpp_submit_timeout)
        except TimeoutError:
            raise RetryLater("no submit_sm_resp in time") from None

    # ---- the thread ------------------------------------------------------------------------------
    def _run(self) -> None:
        delay = 0.5
        while not self._stop.is_set():
            client = None
            try:
                client = smpplib.client.Client(self.s.smpp_host, self.s.smpp_port, timeout=10,
                                               allow_unknown_opt_params=True)  # fmt: skip
                client.set_message_received_handler(self._handle_deliver)
                client.connect()
                client.bind_transceiver(system_id=self.s.smpp_system_id, password=self.s.smpp_password,
                                        system_type=self.s.smpp_system_type)  # fmt: skip
                self.binds += 1
                self.bound.set()
                log.info("SMPP bound as a transceiver to %s:%s", self.s.smpp_host, self.s.smpp_port)
                delay = 0.5
                self._serve(client)
            except LINK_ERRORS as exc:
                if not self._stop.is_set():
                    log.warning("SMPP link down (%s: %s); re-binding in %.1f s", type(exc).__name__, exc, delay)
            except Exception:
                log.exception("SMPP link failed")
            finally:
                self.bound.clear()
                self._fail_inflight("SMPP link dropped")
                if client is not None:
                    with contextlib.suppress(Exception):
                        client.disconnect()
            if self._stop.wait(delay * (0.75 + random.random() / 2)):
                break
            delay = min(delay * 2, self.s.smpp_rebind_max)

    def _serve(self, client: smpplib.client.Client) -> None:
        last_heard = time.monotonic()
        enquiry_at: float | None = None
        sock = client._socket
        while not self._stop.is_set():
            self._send_queued(client)
            readable, _, _ = select.select([sock, self._wake_r], [], [], 0.5)
            if self._wake_r in readable:
                os.read(self._wake_r, 4096)
            if sock in readable:
                self._read(client)
                last_heard, enquiry_at = time.monotonic(), None
            now = time.monotonic()
            if enquiry_at is None and now - last_heard > self.s.smpp_enquire_interval:
                client.send_pdu(smpplib.smpp.make_pdu("enquire_link", client=client))
                enquiry_at = now
            elif enquiry_at is not None and now - enquiry_at > 10:
                raise ConnectionError("no answer to enquire_link")
            self._expire(now)
        with contextlib.suppress(Exception):
            client.send_pdu(smpplib.smpp.make_pdu("unbind", client=client))

    def _send_queued(self, client: smpplib.client.Client) -> None:
        while True:
            try:
                job = self._out.get_nowait()
            except queue.Empty:
                return
            if job.future.done():
                continue
            job.sent_at = time.monotonic()
            for index, part in enumerate(job.parts):
                try:
                    pdu = client.send_message(
                        source_addr_ton=C.SMPP_TON_ALNUM if not self.s.source.isdigit() else C.SMPP_TON_UNK,
                        source_addr_npi=C.SMPP_NPI_UNK, source_addr=self.s.source,
                        dest_addr_ton=C.SMPP_TON_INTL if job.dest.startswith("+") else C.SMPP_TON_UNK,
                        dest_addr_npi=C.SMPP_NPI_ISDN, destination_addr=job.dest.lstrip("+"),
                        short_message=part, data_coding=job.coding, esm_class=job.esm_class,
                        registered_delivery=C.SMPP_SMSC_DELIVERY_RECEIPT_BOTH,
                    )  # fmt: skip
                except LINK_ERRORS:
                    self._resolve(job, RetryLater("SMPP link dropped"))  # its parts already sent: _fail_inflight
                    raise
                except Exception as exc:  # this job's PDU cannot be made (a value smpplib cannot encode): it alone
                    self._drop(job, PermanentFailure(f"SMPP could not encode the submit_sm ({type(exc).__name__})"))
                    log.warning("SMPP: a text could not be encoded (%s); not sent", type(exc).__name__)
                    break
                job.pending[pdu.sequence] = index
                self._inflight[pdu.sequence] = job

    def _read(self, client: smpplib.client.Client) -> None:
        pdu = client.read_pdu()
        command = pdu.command
        if command == "submit_sm_resp":
            self._submitted(pdu)
        elif command == "deliver_sm":
            client._message_received(pdu)  # calls _handle_deliver, then answers deliver_sm_resp with its status
        elif command == "enquire_link":
            client._enquire_link_received(pdu)
        elif command == "unbind":
            resp = smpplib.smpp.make_pdu("unbind_resp", client=client)
            resp.sequence = pdu.sequence
            client.send_pdu(resp)
            raise ConnectionError("the SMSC unbound")
        elif command == "generic_nack":
            job = self._inflight.pop(pdu.sequence, None)
            if job:
                self._resolve(job, RetryLater(f"generic_nack {pdu.status:#x}"))

    def _submitted(self, pdu: Any) -> None:
        job = self._inflight.pop(pdu.sequence, None)
        if job is None:
            return
        index = job.pending.pop(pdu.sequence, 0)
        status = int(pdu.status)
        if status != C.SMPP_ESME_ROK:
            reason = f"submit_sm_resp status {status:#x} ({C.DESCRIPTIONS.get(status, 'unknown')})"
            self._drop(job, RetryLater(reason) if status in TEMPORARY else PermanentFailure(reason))
            return
        job.ids[index] = _text_field(pdu.message_id)
        if not job.pending:
            self._resolve(job, [job.ids[i] for i in sorted(job.ids)])

    def _expire(self, now: float) -> None:
        stale = {id(j): j for j in self._inflight.values() if now - j.sent_at > self.s.smpp_submit_timeout}
        for job in stale.values():
            self._drop(job, RetryLater("no submit_sm_resp"))

    def _drop(self, job: _Submit, failure: Exception) -> None:
        """``job`` fails: the answers to its parts still out are not waited for."""
        for seq in job.pending:
            self._inflight.pop(seq, None)
        self._resolve(job, failure)

    def _fail_inflight(self, reason: str) -> None:
        for job in {id(j): j for j in self._inflight.values()}.values():
            self._resolve(job, RetryLater(reason))
        self._inflight.clear()

    @staticmethod
    def _resolve(job: _Submit, outcome: list[str] | Exception) -> None:
        def settle() -> None:
            if job.future.done():
                return
            if isinstance(outcome, Exception):
                job.future.set_exception(outcome)
            else:
                job.future.set_result(outcome)

        with contextlib.suppress(RuntimeError):  # the loop has closed (shutdown)
            job.loop.call_soon_threadsafe(settle)

    def _handle_deliver(self, pdu: Any, **_: Any) -> int:
        try:
            if int(pdu.esm_class) & 0x04:  # a delivery receipt
                return self._handle_receipt(pdu)
            raw = pdu.short_message or b""
            payload = getattr(pdu, "message_payload", None)
            if not raw and payload:
                raw = payload if isinstance(payload, bytes) else str(payload).encode("latin-1")
            concat = None
            if int(pdu.esm_class) & 0x40:
                concat, raw = parse_udh(raw)
            elif getattr(pdu, "sar_msg_ref_num", None) is not None:
                concat = (int(pdu.sar_msg_ref_num), int(pdu.sar_total_segments), int(pdu.sar_segment_seqnum))
            mo = MobileOriginated(_text_field(pdu.source_addr), _text_field(pdu.destination_addr),
                                  int(pdu.data_coding), raw, concat)  # fmt: skip
            return self.on_deliver(mo) if self.on_deliver else C.SMPP_ESME_RX_T_APPN
        except Exception:
            log.exception("SMPP: a deliver_sm could not be read")
            return C.SMPP_ESME_RX_T_APPN

    def _handle_receipt(self, pdu: Any) -> int:
        text = _text_field(pdu.short_message)
        fields = dict(part.split(":", 1) for part in text.split() if ":" in part)
        message_id = _text_field(getattr(pdu, "receipted_message_id", None)) or fields.get("id", "")
        state = getattr(pdu, "message_state", None)
        status = fields.get("stat") or RECEIPT_STATES.get(int(state) if state is not None else 0, "unknown")
        return self.on_receipt(message_id, status, fields.get("err", "")) if self.on_receipt else C.SMPP_ESME_ROK


class SmppProvider:
    """The SMS outbox's provider over the SMPP link."""

    name = "smpp"

    def __init__(self, settings: SmsSettings) -> None:
        self.link = SmppLink(settings)

    async def send(self, to: str, text: str, reference: str) -> str | None:
        ids = await self.link.submit(to, text)
        return ids[0] if ids else None

    async def close(self) -> None:
        await asyncio.to_thread(self.link.stop)

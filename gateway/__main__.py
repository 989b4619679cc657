"""``python -m gateway`` (also the ``gateway`` console script): run the gateway."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import resource
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from aiohttp import web

from gateway import slow_clients
from gateway.settings import Settings, SettingsError, load_settings
from gateway.vault import KeyringError, deployment_keyring
from gateway.workers import SHARED_REDIS_ENV, WORKER_ENV, signal_ready

log = logging.getLogger("gateway")
CLOSE_WAIT = 1.0  # seconds the consoles get to answer the close at shutdown
SLOW_STOP = 5.0  # seconds into a shutdown after which the log says what the process still waits for


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gateway", description="Omnichannel customer-service gateway")
    parser.add_argument("--host", help="listen address (default from config: 127.0.0.1)")
    parser.add_argument("--port", type=int, help="listen port (default from config: 8080)")
    parser.add_argument("--config", type=Path,
                        help="a gateway.yml, or the folder holding it with routing.yml, sla.yml, canned.yml "
                             "(default config/gateway.yml)")  # fmt: skip
    parser.add_argument("--data-dir", help="runtime data: embedded Redis, NLU model cache (default ./var)")
    parser.add_argument("--redis-url", help="external Redis (default: $REDIS_URL, else embedded Redis)")
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="gateway processes on the port (SO_REUSEPORT), kept running by a supervisor (default 1)",
    )
    return parser


def _raise_fd_limit() -> None:
    """Each WebSocket holds a file descriptor: allow as many as the system lets us."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _channels(settings: Settings, base: str) -> list[str]:
    """Where each provider must be pointed, and what is off."""
    out = []
    sms, tg = settings.sms, settings.telegram
    if not sms.enabled:
        out.append("SMS off")
    else:
        hooks = []
        if sms.webhook_secret:
            hooks.append(f"{base}/channels/sms/webhook")
        if sms.twilio_auth_token:
            hooks.append(f"{base}/channels/sms/twilio")
        if sms.provider == "smpp":
            hooks.append(f"SMPP {sms.smpp_host}:{sms.smpp_port}")
        where = ", ".join(hooks) or "no inbound webhook (set SMS_WEBHOOK_SECRET or TWILIO_AUTH_TOKEN)"
        out.append(f"SMS via {sms.provider}: {where}")
    if tg.enabled and tg.token:
        out.append(f"Telegram webhook {base}/channels/telegram/webhook")
    else:
        out.append("Telegram off (set TELEGRAM_BOT_TOKEN)")
    wx, wb, fo = settings.wechat, settings.weibo, settings.forum
    out.append(f"WeChat {base}/channels/wechat" if wx.enabled and wx.token else "WeChat off (set WECHAT_TOKEN)")
    out.append(f"Weibo {base}/channels/weibo" if wb.enabled and wb.app_secret else "Weibo off (set WEIBO_APP_SECRET)")
    if fo.enabled and (fo.webhook_secret or fo.feed_url):
        forum = [f"Discourse webhook {base}/channels/forum/discourse"] if fo.webhook_secret else []
        forum += [f"feed {fo.feed_url} every {fo.feed_interval:g} s"] if fo.feed_url else []
        out.append("forum: " + ", ".join(forum))
    else:
        out.append("forum off (set DISCOURSE_WEBHOOK_SECRET or forum.feed_url)")
    return out


async def _close_consoles(app: web.Application) -> None:
    """On SIGINT/SIGTERM, before in-flight requests are waited for: the agents' console sockets close (1001, the
    consoles reconnect to another process or after the restart) instead of holding the shutdown for its timeout."""
    from handoff.hub import HUB

    hub = app.get(HUB)
    sockets = [ws for held in list(hub.sockets.values()) for ws in list(held)] if hub else []
    closing = [asyncio.ensure_future(ws.close(code=1001, message=b"server shutting down")) for ws in sockets]
    if closing:
        _, late = await asyncio.wait(closing, timeout=CLOSE_WAIT)
        for task in late:  # a console that does not answer the close: dropped
            task.cancel()


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["agents"]:  # gateway agents add|list …
        from handoff.cli import main as agents_main

        return agents_main(argv[1:])
    if argv[:2] == ["demo", "incident"]:  # gateway demo incident --scenario config/drills/typhoon.yml [--url …]
        from handoff.incidents.drill import main as drill_main

        return drill_main(argv[2:])
    if argv[:1] == ["report"] or argv[:1] == ["demo"]:  # gateway report … | gateway demo seed …
        from handoff.reports.cli import main as reports_main

        return reports_main(argv)
    if argv[:1] == ["keys"]:  # gateway keys new|status|rotate|reencrypt (encryption at rest)
        from gateway.keyring_cli import main as keys_main

        return keys_main(argv[1:])
    if argv[:1] == ["audit"]:  # gateway audit [--since] [--who] [--what] [--customer PHONE] [--json]
        from gateway.audit_cli import main as audit_main

        return audit_main(argv[1:])
    if argv[:1] == ["privacy"]:  # gateway privacy export|delete|purge|consent (data-subject requests, retention)
        from gateway.privacy_cli import main as privacy_main

        return privacy_main(argv[1:])
    if argv[:1] == ["nlu"]:  # gateway nlu retrain|status (the NLU learning loop)
        from gateway.nlu_review_cli import main as nlu_main

        return nlu_main(argv[1:])
    args = _parser().parse_args(argv)
    if args.workers < 1:
        print("gateway: --workers must be at least 1", file=sys.stderr)
        return 2
    _raise_fd_limit()
    worker = os.environ.get(WORKER_ENV)  # set in the processes a supervisor runs
    tag = f"[worker {worker}] " if worker else ""
    logging.basicConfig(level=args.log_level.upper(), format=f"%(asctime)s %(levelname)s {tag}%(name)s: %(message)s")
    server: dict[str, object] = {k: v for k, v in {"host": args.host, "port": args.port,
                                                   "data_dir": args.data_dir}.items() if v is not None}  # fmt: skip
    try:
        settings = load_settings(
            args.config, server=server, **({"redis": {"url": args.redis_url}} if args.redis_url else {})
        )
    except SettingsError as exc:
        print(f"gateway: configuration error: {exc}", file=sys.stderr)
        return 2
    if args.workers > 1 and not worker:
        from gateway.workers import supervise

        return supervise(settings, argv, args.workers)
    try:  # no usable data key, no start — before the NLU's first training, so the refusal comes at once
        deployment_keyring(settings.privacy.key_file, settings.data_dir, settings.server.production)
    except KeyringError as exc:
        print(f"gateway: data keys: {exc}", file=sys.stderr)
        return 2
    from nlu.boot import prepare  # a first start trains the NLU model in a child process beside the imports below

    prepare(settings.nlu.config or None, settings.nlu.data, settings.data_dir / "nlu")
    from gateway.app import create_app

    try:
        app = create_app(settings)
    except SettingsError as exc:  # a configuration file beside gateway.yml (greeting, cases, …) is wrong
        print(f"gateway: configuration error: {exc}", file=sys.stderr)
        return 2
    except KeyringError as exc:  # customer data is sealed at rest: no usable key, no start
        print(f"gateway: data keys: {exc}", file=sys.stderr)
        return 2
    app.on_shutdown.append(_close_consoles)

    def announce() -> None:  # once the socket is listening
        from gateway.app import DEMO_AGENTS, KEYS_SOURCE

        shared = os.environ.get(SHARED_REDIS_ENV)
        redis = f"embedded Redis in {settings.data_dir / 'redis'}"
        if shared:
            redis = f"embedded Redis in {shared} (run by the supervisor)"
        elif settings.redis.url:
            redis = "external Redis"
        base = settings.public_url.rstrip("/")
        log.info("gateway ready: web chat widget %s/ · agent console %s/agent · REST %s/webhooks/rest/webhook · "
                 "metrics %s/metrics · %s", base, base, base, base, redis)  # fmt: skip
        log.info("channels: %s", " · ".join(_channels(settings, base)))
        log.info("data keys: %s (customer data is encrypted at rest; back the key file up apart from the data)",
                 app[KEYS_SOURCE])  # fmt: skip
        demo = app.get(DEMO_AGENTS, [])
        created = [f"{role} {name} / {password}" for name, password, role, new in demo if new]
        kept = [f"{role} {name} / {password}" for name, password, role, new in demo if not new]
        if created:
            log.info("demo agents: created %s (refused when server.production is set)", ", ".join(created))
        if kept:
            log.info("demo agents: available %s (refused when server.production is set)", ", ".join(kept))
        signal_ready()

    try:
        if os.environ.get("GW_NO_UVLOOP"):
            raise ImportError
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:  # optional: the standard loop works, only slower
        pass
    asyncio.run(_serve(app, settings, reuse_port=bool(worker), ready=announce))
    return 0


async def _serve(app: web.Application, settings: Settings, reuse_port: bool, ready: Callable[[], None]) -> None:
    """aiohttp's ``run_app``, except that a stop asked for during the start-up still runs the shutdown: ``run_app``
    cancels its task on SIGTERM, and a start-up that is cancelled (or loses the cancellation, gateway/tasks.py) left
    the background workers it had started to one unbounded cancel-and-wait at exit — a worker of ``--workers 2``
    stopped while it started hung until the supervisor killed it, 10 s later."""
    from gateway import tasks

    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    runner = slow_clients.Runner(app, access_log=None, shutdown_timeout=settings.server.shutdown_timeout,
                                 header_timeout=settings.server.header_timeout)  # fmt: skip
    starting = asyncio.ensure_future(runner.setup())
    stop = asyncio.ensure_future(stopping.wait())
    try:
        await asyncio.wait({starting, stop}, return_when=asyncio.FIRST_COMPLETED)
        if not starting.done():
            log.info("stopping during start-up")
            await tasks.stop(starting, wait=settings.server.shutdown_timeout)
            return
        starting.result()  # a start-up that failed: its error, after the clean-up below
        site = web.TCPSite(runner, settings.server.host, settings.server.port, reuse_port=reuse_port,
                           shutdown_timeout=settings.server.shutdown_timeout)  # fmt: skip
        await site.start()
        ready()
        await stop
    finally:
        stop.cancel()
        slow = loop.call_later(SLOW_STOP, _report_slow_stop)  # once, if still stopping then: what it waits for
        await runner.cleanup()  # the app's clean-up (the contexts that started) even when the start-up did not finish
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        await asyncio.gather(*(tasks.stop(t) for t in others))  # asyncio.run's own cancel-and-wait is unbounded
        slow.cancel()


def _report_slow_stop() -> None:
    """A stop still running ``SLOW_STOP`` seconds on: each pending task and the line it waits at, at WARNING — a
    worker the supervisor would otherwise kill without a word."""
    from gateway import tasks

    pending = tasks.waiting()
    log.warning("still stopping after %.0f s; %d task(s) pending: %s", SLOW_STOP, len(pending), "; ".join(pending))


if __name__ == "__main__":
    sys.exit(main())

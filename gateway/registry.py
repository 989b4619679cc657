"""Every channel adapter, mounted and run the same way.

``ADAPTERS`` lists each channel module's ``Adapter``; ``mount`` adds the enabled ones' routes (as a
sub-application under their prefix, else at their own paths) and one start-up/shutdown context for all:
its commands and pusher handed to the pipeline, its state on ``/healthz``, its outbox run and listed for
operators, started after the core and closed before it.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from aiohttp import web

from gateway.channels import forum, sms, socketio, telegram, webchat, wechat, weibo
from gateway.channels.base import CHANNEL_COMMANDS, Adapter, Channel, Draining, Host
from gateway.keys import CHANNELS, OUTBOXES, PIPELINE
from gateway.settings import Settings

log = logging.getLogger(__name__)

ADAPTERS: tuple[Adapter, ...] = (webchat.ADAPTER, sms.ADAPTER, telegram.ADAPTER, wechat.ADAPTER, weibo.ADAPTER,
                                 forum.ADAPTER, socketio.ADAPTER)  # fmt: skip


def mount(app: web.Application, settings: Settings, host: Host) -> list[Adapter]:
    """Routes of every enabled adapter now; the channels themselves are built at start-up."""
    enabled = [a for a in ADAPTERS if a.enabled(settings)]
    for adapter in enabled:
        routes = adapter.routes(settings)
        if adapter.prefix:
            sub = web.Application()
            sub.add_routes(routes)
            app.add_subapp(adapter.prefix, sub)
        else:
            app.add_routes(routes)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        pipeline = app[PIPELINE]
        running: list[Channel] = []
        try:
            for adapter in enabled:
                channel = adapter.build(host, settings)
                app[adapter.key] = channel
                pipeline.commands.update({**CHANNEL_COMMANDS, **channel.commands})
                pipeline.pushers[channel.name] = channel.push
                app[CHANNELS][channel.name] = channel.state
                if channel.outbox is not None:
                    app[OUTBOXES][channel.name] = channel.outbox
                await channel.start()
                running.append(channel)
            yield
        finally:
            for channel in reversed(running):
                try:
                    await channel.close()
                except Exception:
                    log.exception("channel %s did not close cleanly", channel.name)

    async def shutdown(app: web.Application) -> None:
        """Before in-flight requests are waited for: channels holding connections let them go."""
        for adapter in enabled:
            channel = app.get(adapter.key)
            if isinstance(channel, Draining):
                await channel.shutdown()

    app.cleanup_ctx.append(lifecycle)
    app.on_shutdown.append(shutdown)
    return enabled

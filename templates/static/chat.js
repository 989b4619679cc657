// Customer chat page (served at "/"): plain JavaScript, no build step, no dependencies.
// WebSocket protocol: README "Web chat". All message text goes in with textContent, never innerHTML.
(() => {
  "use strict";

  const UI = {
    zh: {
      title: "在线客服", placeholder: "请输入您的问题…", send: "发送", close: "关闭", input: "消息",
      connecting: "连接中…", open: "在线", closed: "已断开，正在重连…", typing: "对方正在输入…",
      // n is the customer's place (1 = next), s the estimated wait in seconds: as the bot says it (request_human)
      queued: (n, s) => `您现在排在第${n}位` + (s > 0 ? `，预计等待约${Math.ceil(s / 60)}分钟` : "") + "，请稍候。",
      joined: (a) => `客服 ${a} 为您服务`, left: "客服已离开", agent: "客服",
      cut: (n, max) => `内容超过 ${max} 字的上限，末尾 ${n} 字没有放进输入框；发送这一条后会自动放回。`,
      discard: "不要剩余部分",
    },
    en: {
      title: "Online support", placeholder: "Type your question…", send: "Send", close: "Close", input: "Message",
      connecting: "Connecting…", open: "Online", closed: "Reconnecting…", typing: "typing…",
      queued: (n, s) => `You're number ${n} in the queue` + (s > 0 ? `; the wait is about ${Math.ceil(s / 60)} min` : "") + ".",
      joined: (a) => `Agent ${a} has joined`, left: "The agent has left", agent: "Agent",
      cut: (n, max) => `Over the ${max}-character limit: the last ${n} characters were kept out of the box. ` +
        "They come back after you send this part.",
      discard: "Discard the rest",
    },
  };
  // The server's limit (pipeline.max_message_chars, in Unicode code points as Python counts them; a textarea's
  // maxlength counts UTF-16 units and cuts a paste silently, so the page enforces it here instead).
  const MAX_CHARS = Math.max(1, Number(document.body.dataset.maxChars) || 1000);
  const MAX_SENDS = 4;          // a frame the server never echoes (e.g. rejected) is retried at most this often
  const TYPING_EVERY = 2000;    // ms between our "typing" frames
  const TYPING_SHOW = 3000;     // ms the "typing…" indicator stays up

  // sessionStorage can throw (third-party iframe with storage blocked): degrade to memory only.
  const store = {
    get(key) { try { return sessionStorage.getItem("gw_chat." + key); } catch { return null; } },
    set(key, value) { try { sessionStorage.setItem("gw_chat." + key, value); } catch { /* memory only */ } },
  };

  const $ = (id) => document.getElementById(id);
  const body = document.body;
  const log = $("chat-log"), input = $("chat-input"), form = $("chat-form"), status = $("chat-status");
  const sendButton = $("chat-send"), langSwitch = $("lang-switch"), closeButton = $("chat-close");
  const typingLine = $("chat-typing"), typingText = typingLine.querySelector(".typing-text");
  const limitLine = $("chat-limit"), limitText = limitLine.querySelector(".limit-text");
  const limitDismiss = $("chat-limit-dismiss"), counter = $("chat-count");

  const token = body.dataset.token || "";
  let lang = store.get("lang") || body.dataset.lang;
  if (lang !== "en") lang = "zh";

  // Highest seq seen in this tab before this page load: frames up to it are history being replayed
  // (no typing indicator, no "new message" ping to the host page).
  const historySeq = Number(store.get("last_seq")) || 0;
  // A fresh page has an empty log, so the first connection asks for everything the server kept
  // (last_seq=0); from then on reconnects pass the highest seq rendered here.
  let lastSeq = 0;

  let ws = null, connId = 0, everOpen = false, backoff = 500, retryTimer = null;
  let typingTimer = null, lastTypingSent = 0;
  let hostOrigin = null;                          // set when widget.js embeds us and says hello
  const rendered = new Map();                     // client_id -> customer bubble shown by this tab
  const notices = [];                             // [element, (ui) => text]: re-translated on switch
  let queuedItem = null;                          // the latest queue notice (dropped if an agent joins next)
  let greeting = null, greetingItem = null;       // the greeting frame ({zh, en}) and its bubble, if shown
  let heldBack = "";                              // text cut at the limit: put back in the box after a send
  let composing = false;                          // an IME composition (pinyin) is under way

  // Outbox: frames not yet echoed by the server, in order. Sent ones are re-sent after a reconnect
  // (the server handles each client_id once). Kept in sessionStorage so a reload loses nothing.
  let outbox = [];
  try {
    outbox = JSON.parse(store.get("outbox") || "[]").filter((e) => e && e.frame && e.frame.client_id);
    for (const entry of outbox) entry.conn = 0;  // connection ids restart with the page
  }
  catch { outbox = []; }
  const saveOutbox = () => store.set("outbox", JSON.stringify(outbox));

  const uuid = () => {
    if (crypto.randomUUID) return crypto.randomUUID();
    const b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40; b[8] = (b[8] & 0x3f) | 0x80;
    const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  };
  const str = (v) => (v === undefined || v === null ? "" : String(v));
  // lengths and cuts in code points (an emoji is one character, never split in half)
  const charCount = (s) => { let n = 0; for (const _ of s) n += 1; return n; };
  const headChars = (s, n) => {
    if (s.length <= n) return s;
    let i = 0, end = 0;
    for (const ch of s) { if (i === n) break; i += 1; end += ch.length; }
    return s.slice(0, end);
  };

  // ---- UI --------------------------------------------------------------------------------------
  function setStatus(state) {
    status.dataset.state = state;
    status.textContent = UI[lang][state];
  }

  function applyLang() {
    const t = UI[lang];
    document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
    body.dataset.lang = lang;
    document.title = t.title;
    $("chat-title").textContent = t.title;
    input.placeholder = t.placeholder;
    input.setAttribute("aria-label", t.input);
    sendButton.textContent = t.send;
    closeButton.setAttribute("aria-label", t.close);
    langSwitch.setAttribute("aria-pressed", String(lang === "en"));
    setStatus(status.dataset.state || "connecting");
    if (!typingLine.hidden) typingText.textContent = t.typing;
    for (const [el, render] of notices) el.firstChild.textContent = render(t);
    limitDismiss.setAttribute("aria-label", t.discard);
    limitDismiss.title = t.discard;
    showLimit();
    if (greetingItem) showGreeting();
  }

  const nearBottom = () => log.scrollHeight - log.scrollTop - log.clientHeight < 120;
  let stuck = true;  // the reader is at the bottom: keep it there when the log grows or shrinks
  log.addEventListener("scroll", () => { stuck = nearBottom(); }, { passive: true });
  const toBottom = () => { log.scrollTop = log.scrollHeight; stuck = true; };
  // the composer growing, the typing line or a phone keyboard resize the log: stay at the bottom
  if (window.ResizeObserver) new ResizeObserver(() => { if (stuck) toBottom(); }).observe(log);
  function append(item, force) {
    const stick = force || stuck || nearBottom();
    log.appendChild(item);
    if (stick) toBottom();
  }

  function bubble(kind, text, extra = {}) {
    const item = document.createElement("div");
    item.className = `msg msg-${kind}`;
    if (kind === "agent") {
      const who = document.createElement("div");
      who.className = "msg-name";
      who.textContent = extra.agent || UI[lang].agent;
      item.appendChild(who);
    }
    const text_ = document.createElement("div");
    text_.className = "bubble";
    text_.textContent = text;
    item.appendChild(text_);
    const buttons = Array.isArray(extra.buttons) ? extra.buttons.filter((b) => b && (b.title || b.payload)) : [];
    if (buttons.length) {
      const chips = document.createElement("div");
      chips.className = "chips";
      for (const b of buttons) {
        const chip = document.createElement("button");
        chip.type = "button";
        chip.className = "quick-reply";
        const title = str(b.title || b.payload);
        chip.textContent = title;
        chip.addEventListener("click", () => {
          if (chip.disabled || chips.classList.contains("stale")) return;  // the conversation moved on
          retireChips(null);
          chip.classList.add("chosen");
          send(str(b.payload || b.title), title);
        });
        chips.appendChild(chip);
      }
      item.appendChild(chips);
    }
    if (extra.replace) {
      extra.replace.replaceWith(item);
      return item;
    }
    append(item, extra.force);
    // the conversation moved on: quick replies above this message no longer apply
    retireChips(item, kind === "customer" ? text : null);
    return item;
  }

  // Disable every quick reply outside `keep`; `picked` (the customer's text) marks the chip it matches as chosen,
  // so a replayed history shows which one was clicked.
  function retireChips(keep, picked) {
    for (const chips of log.querySelectorAll(".chips:not(.stale)")) {
      if (keep && keep.contains(chips)) continue;
      chips.classList.add("stale");
      for (const chip of chips.querySelectorAll(".quick-reply")) {
        chip.disabled = true;
        chip.setAttribute("aria-disabled", "true");
        if (picked !== null && picked !== undefined && chip.textContent === picked) chip.classList.add("chosen");
      }
    }
  }

  // The greeting on an empty conversation (a frame of its own, in both languages: it follows the zh/EN switch).
  function showGreeting() {
    const g = greeting[lang] || greeting.zh || greeting.en;
    if (!g) return;
    const old = greetingItem;
    const item = bubble("bot", str(g.text), { buttons: g.buttons, replace: old || undefined, force: true });
    item.classList.add("greeting");
    const oldChips = old && old.querySelector(".chips"), newChips = item.querySelector(".chips");
    if (oldChips && newChips && oldChips.classList.contains("stale")) {  // keep it inert, the chosen one marked
      const was = [...oldChips.querySelectorAll(".quick-reply")].map((c) => c.classList.contains("chosen"));
      newChips.classList.add("stale");
      newChips.querySelectorAll(".quick-reply").forEach((chip, i) => {
        chip.disabled = true;
        chip.setAttribute("aria-disabled", "true");
        if (was[i]) chip.classList.add("chosen");
      });
    }
    greetingItem = item;
  }

  function notice(render, isError) {
    const item = document.createElement("div");
    item.className = "msg msg-system" + (isError ? " msg-error" : "");
    if (isError) item.setAttribute("role", "alert");
    const text = document.createElement("div");
    text.className = "bubble";
    item.appendChild(text);
    if (typeof render === "function") {
      text.textContent = render(UI[lang]);
      notices.push([item, render]);
    } else {
      text.textContent = render;
    }
    append(item, true);
    return item;
  }

  function showTyping(on) {
    clearTimeout(typingTimer);
    typingLine.hidden = !on;
    typingText.textContent = on ? UI[lang].typing : "";
    if (on) typingTimer = setTimeout(() => showTyping(false), TYPING_SHOW);
  }

  // ---- talking to the host page (widget.js), when embedded -------------------------------------
  function toHost(type) {
    if (hostOrigin && window.parent !== window) window.parent.postMessage({ type }, hostOrigin);
  }
  window.addEventListener("message", (event) => {
    if (event.source !== window.parent || window.parent === window) return;
    const type = event.data && event.data.type;
    if (type === "gw-chat:host") {
      hostOrigin = event.origin;
      closeButton.hidden = false;
      body.classList.add("embedded");
      toHost("gw-chat:ready");
    } else if (type === "gw-chat:open" && window.innerWidth >= 480) {
      input.focus();
    }
  });
  closeButton.addEventListener("click", () => toHost("gw-chat:close"));
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && hostOrigin) toHost("gw-chat:close");
  });

  // ---- frames from the server ------------------------------------------------------------------
  function onFrame(frame) {
    if (!frame || typeof frame !== "object") return;
    if (frame.type === "hello") {
      backoff = 500;  // a server that says hello is healthy: the next drop starts the back-off anew
      // an empty conversation: the greeting and its starters, unless a message is already on screen (typed
      // before the connection) — or the one shown is refreshed
      if (frame.greeting && typeof frame.greeting === "object" && (greetingItem || !log.querySelector(".msg"))) {
        greeting = frame.greeting;
        showGreeting();
      }
      // The server's sequence restarted (its store was reset): follow it, or every new frame looks old.
      if (typeof frame.last_seq === "number" && frame.last_seq < lastSeq) lastSeq = frame.last_seq;
      return;
    }
    let live = true;
    if (typeof frame.seq === "number") {
      if (frame.seq <= lastSeq) return;  // already rendered (replay overlap)
      lastSeq = frame.seq;
      live = frame.seq > historySeq;
      if (frame.seq > (Number(store.get("last_seq")) || 0)) store.set("last_seq", String(frame.seq));
    }
    switch (frame.type) {
      case "message": {
        const text = str(frame.text);
        if (frame.from === "customer") {
          const id = frame.client_id ? String(frame.client_id) : "";
          if (id) dropFromOutbox(id);
          if (id && rendered.has(id)) {         // our own message coming back: already on screen
            rendered.get(id).classList.remove("pending");
            return;
          }
          const item = bubble("customer", text);
          if (id) rendered.set(id, item);
          return;
        }
        showTyping(false);
        const kind = frame.from === "agent" ? "agent" : "bot";
        bubble(kind, text, { buttons: frame.buttons, agent: frame.agent ? str(frame.agent) : "" });
        if (live) toHost("gw-chat:new");
        return;
      }
      case "typing":
        if (live && frame.from !== "customer") showTyping(true);
        return;
      case "queued": {
        const n = frame.position ?? "?", s = Number(frame.eta_seconds) || 0;
        queuedItem = notice((t) => t.queued(n, s));
        return;
      }
      case "agent_joined": {
        const name = str(frame.agent);
        // picked up straight away: "number 1, about 3 min" next to "agent … has joined" would contradict it
        if (queuedItem && queuedItem === log.lastElementChild) queuedItem.remove();
        queuedItem = null;
        notice((t) => t.joined(name || t.agent));
        if (live) toHost("gw-chat:new");
        return;
      }
      case "agent_left":
        showTyping(false);
        notice((t) => t.left);
        return;
      case "error":
        notice(() => str(lang === "zh" ? frame.error_zh || frame.error : frame.error || frame.error_zh) || "error", true);
        return;
      default:
        return;  // unknown frame types are ignored (forward compatible)
    }
  }

  // ---- connection ------------------------------------------------------------------------------
  function connect() {
    clearTimeout(retryTimer);
    retryTimer = null;
    setStatus(everOpen ? "closed" : "connecting");  // a reconnect keeps saying "Reconnecting…"
    const params = new URLSearchParams({ lang, last_seq: String(lastSeq) });
    if (token) params.set("token", token);
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    let sock;
    try {
      sock = new WebSocket(`${proto}//${location.host}/ws/chat?${params}`);
    } catch (err) {
      console.error(err);
      scheduleReconnect();
      return;
    }
    ws = sock;
    connId += 1;
    sock.onopen = () => {
      if (ws !== sock) return;
      everOpen = true;
      setStatus("open");
      flush();
    };
    sock.onmessage = (event) => {
      if (ws !== sock) return;
      let frame;
      try { frame = JSON.parse(event.data); } catch { return; }
      try { onFrame(frame); } catch (err) { console.error(err); }
    };
    sock.onclose = () => {
      if (ws !== sock) return;
      ws = null;
      setStatus("closed");
      scheduleReconnect();
    };
  }

  function scheduleReconnect() {
    if (retryTimer) return;
    retryTimer = setTimeout(connect, backoff);
    backoff = Math.min(backoff * 2, 10000);
  }

  const isOpen = () => ws && ws.readyState === WebSocket.OPEN;

  function flush() {
    if (!isOpen()) return;
    outbox = outbox.filter((entry) => (entry.tries || 0) < MAX_SENDS);
    for (const entry of outbox) {
      if (entry.conn === connId) continue;  // already sent on this connection
      entry.conn = connId;
      entry.tries = (entry.tries || 0) + 1;
      ws.send(JSON.stringify(entry.frame));
      const item = rendered.get(entry.frame.client_id);
      if (item) item.classList.remove("pending");
    }
    saveOutbox();
  }

  function dropFromOutbox(clientId) {
    const before = outbox.length;
    outbox = outbox.filter((entry) => entry.frame.client_id !== clientId);
    if (outbox.length !== before) saveOutbox();
  }

  function send(text, display) {
    text = headChars(text, MAX_CHARS);
    const frame = { type: "message", text, client_id: uuid(), lang };
    if (display !== undefined) frame.display = display;
    const item = bubble("customer", display !== undefined ? display : text, { force: true });
    rendered.set(frame.client_id, item);
    outbox.push({ frame, tries: 0, conn: 0 });
    saveOutbox();
    if (isOpen()) {
      flush();
    } else {
      item.classList.add("pending");  // shown faded until the connection is back and it is sent
      if (!ws) { backoff = 500; connect(); }  // the customer is here now: do not wait out a long back-off
    }
  }

  // ---- input -----------------------------------------------------------------------------------
  function autosize() {
    const keep = stuck;  // measuring at height:auto briefly grows the log, which can lose its scroll position
    input.style.height = "auto";
    input.style.height = Math.min(input.scrollHeight + 2, 120) + "px";
    if (keep) toBottom();
  }

  // The limit notice above the composer: how much was kept out of the box (it comes back after a send).
  function showLimit() {
    const n = charCount(heldBack);
    limitLine.hidden = n === 0;
    limitText.textContent = n ? UI[lang].cut(n, MAX_CHARS) : "";
  }
  function holdBack(rest) {
    heldBack = rest + heldBack;
    showLimit();
  }
  function updateCounter() {
    const n = charCount(input.value);
    counter.hidden = n < MAX_CHARS * 0.8;
    counter.textContent = `${n}/${MAX_CHARS}`;
    counter.classList.toggle("full", n >= MAX_CHARS);
  }
  // Whatever got into the box beyond the limit (typed, dropped, an IME's text) is held back, never dropped.
  function enforceLimit() {
    if (composing || input.value.length <= MAX_CHARS && charCount(input.value) <= MAX_CHARS) return;
    const kept = headChars(input.value, MAX_CHARS);
    holdBack(input.value.slice(kept.length));
    input.value = kept;
  }

  function submit() {
    const text = input.value.replace(/^\s+|\s+$/g, "");
    if (!text) return;
    input.value = "";
    send(text);
    if (heldBack) {  // the part cut at the limit: next in the box
      const next = headChars(heldBack, MAX_CHARS);
      heldBack = heldBack.slice(next.length);
      input.value = next;
      showLimit();
    }
    autosize();
    updateCounter();
    input.focus();
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    submit();
  });
  input.addEventListener("compositionstart", () => { composing = true; });
  input.addEventListener("compositionend", () => {
    composing = false;
    enforceLimit();
    updateCounter();
  });
  input.addEventListener("keydown", (event) => {
    // Enter that confirms an IME composition (pinyin → 汉字) is the IME's, not a send: isComposing, or
    // keyCode 229 where the browser ends the composition just before the keydown (Safari)
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing && !composing && event.keyCode !== 229) {
      event.preventDefault();
      submit();
    }
  });
  input.addEventListener("paste", (event) => {
    const data = event.clipboardData ? event.clipboardData.getData("text/plain") : "";
    if (!data) return;
    const start = input.selectionStart, end = input.selectionEnd;
    const room = MAX_CHARS - charCount(input.value.slice(0, start)) - charCount(input.value.slice(end));
    if (data.length <= room || charCount(data) <= room) return;  // fits: the browser pastes it
    event.preventDefault();
    const kept = headChars(data, Math.max(0, room));
    input.focus();
    // insertText keeps the browser's undo; setRangeText where it is not supported
    if (!kept || !document.execCommand || !document.execCommand("insertText", false, kept)) {
      input.setRangeText(kept, start, end, "end");
    }
    holdBack(data.slice(kept.length));
    autosize();
    updateCounter();
  });
  limitDismiss.addEventListener("click", () => {
    heldBack = "";
    showLimit();
    input.focus();
  });
  input.addEventListener("input", () => {
    enforceLimit();
    autosize();
    updateCounter();
    const now = Date.now();
    if (input.value.trim() && isOpen() && now - lastTypingSent >= TYPING_EVERY) {
      lastTypingSent = now;
      ws.send(JSON.stringify({ type: "typing" }));
    }
  });
  langSwitch.addEventListener("click", () => {
    lang = lang === "zh" ? "en" : "zh";
    store.set("lang", lang);
    applyLang();
    if (isOpen()) ws.send(JSON.stringify({ type: "lang", lang }));  // otherwise the reconnect URL carries it
  });
  window.addEventListener("online", () => {
    if (!ws) { backoff = 500; connect(); }
  });
  // a phone brought back from the lock screen: reconnect now rather than when a throttled timer fires
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible" && !ws) { backoff = 500; connect(); }
  });

  applyLang();
  connect();
})();

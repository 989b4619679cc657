// Customer chat page: plain JavaScript, no build step. Protocol: README "Web chat".
(() => {
  "use strict";
  const UI = {
    zh: { title: "在线客服", placeholder: "请输入您的问题…", send: "发送", connecting: "连接中…", open: "在线",
          closed: "已断开，正在重连…", typing: "对方正在输入…", other: "EN",
          queued: (n, s) => `您前面还有 ${n} 位，预计等待 ${s} 秒`,
          joined: (a) => `客服 ${a} 为您服务`, left: "客服已离开" },
    en: { title: "Online support", placeholder: "Type your question…", send: "Send", connecting: "Connecting…",
          open: "Online", closed: "Reconnecting…", typing: "typing…", other: "中文",
          queued: (n, s) => `${n} ahead of you, about ${s} s wait`,
          joined: (a) => `Agent ${a} has joined`, left: "The agent has left" },
  };
  const $ = (id) => document.getElementById(id);
  const log = $("chat-log"), input = $("chat-input"), form = $("chat-form"), status = $("chat-status");
  const typingLine = $("chat-typing");
  let lang = document.body.dataset.lang === "en" ? "en" : "zh";
  const token = document.body.dataset.token || "";
  let ws = null, lastSeq = 0, backoff = 500, typingTimer = null, lastTypingSent = 0;
  const unsent = [];              // typed while disconnected
  const unacked = new Map();      // client_id -> frame, until the server echoes it (resent after a reconnect)
  const rendered = new Set();     // client_ids already shown by this tab

  const uuid = () => (crypto.randomUUID ? crypto.randomUUID()
    : Date.now().toString(36) + Math.random().toString(36).slice(2));

  function setStatus(state) {
    status.dataset.state = state;
    status.textContent = UI[lang][state];
  }

  function applyLang() {
    const t = UI[lang];
    document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
    $("chat-title").textContent = t.title;
    document.title = t.title;
    input.placeholder = t.placeholder;
    $("chat-send").textContent = t.send;
    $("lang-switch").textContent = t.other;
    setStatus(status.dataset.state || "connecting");
  }

  function bubble(kind, text, extra = {}) {
    const item = document.createElement("div");
    item.className = `msg msg-${kind}` + (extra.error ? " error" : "");
    if (kind === "agent" && extra.agent) {
      const who = document.createElement("span");
      who.className = "who";
      who.textContent = extra.agent;
      item.appendChild(who);
    }
    const body = document.createElement("div");
    body.className = "bubble";
    body.textContent = text;
    item.appendChild(body);
    if (extra.buttons && extra.buttons.length) {
      const chips = document.createElement("div");
      chips.className = "chips";
      for (const b of extra.buttons) {
        const chip = document.createElement("button");
        chip.type = "button";
        chip.className = "quick-reply";
        chip.textContent = b.title;
        chip.addEventListener("click", () => {
          chips.querySelectorAll("button").forEach((c) => { c.disabled = true; });
          send(b.payload || b.title, b.title);
        });
        chips.appendChild(chip);
      }
      item.appendChild(chips);
    }
    log.appendChild(item);
    log.scrollTop = log.scrollHeight;
    return item;
  }

  function showTyping(on) {
    clearTimeout(typingTimer);
    typingLine.hidden = !on;
    typingLine.textContent = on ? UI[lang].typing : "";
    if (on) typingTimer = setTimeout(() => showTyping(false), 3000);
  }

  function onFrame(frame) {
    if (typeof frame.seq === "number") {
      if (frame.seq <= lastSeq) return;   // already shown (replay overlap)
      lastSeq = frame.seq;
    }
    switch (frame.type) {
      case "hello": return;
      case "message":
        if (frame.from === "customer") {
          if (frame.client_id) unacked.delete(frame.client_id);
          if (frame.client_id && rendered.has(frame.client_id)) return;
          bubble("customer", frame.text);
          return;
        }
        showTyping(false);
        bubble(frame.from === "agent" ? "agent" : "bot", frame.text, { buttons: frame.buttons, agent: frame.agent });
        return;
      case "typing": showTyping(true); return;
      case "queued": bubble("system", UI[lang].queued(frame.position, frame.eta_seconds)); return;
      case "agent_joined": bubble("system", UI[lang].joined(frame.agent || "")); return;
      case "agent_left": bubble("system", UI[lang].left); return;
      case "error": bubble("system", frame.error, { error: true }); return;
      default: return;
    }
  }

  function connect() {
    setStatus("connecting");
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    const params = new URLSearchParams({ lang, last_seq: String(lastSeq) });
    if (token) params.set("token", token);
    ws = new WebSocket(`${proto}//${location.host}/ws/chat?${params}`);
    ws.onopen = () => {
      backoff = 500;
      setStatus("open");
      for (const frame of unacked.values()) ws.send(JSON.stringify(frame));   // the server dedupes by client_id
      while (unsent.length) transmit(unsent.shift());
    };
    ws.onmessage = (event) => {
      try { onFrame(JSON.parse(event.data)); } catch (err) { console.error(err); }
    };
    ws.onclose = () => {
      setStatus("closed");
      setTimeout(connect, backoff);
      backoff = Math.min(backoff * 2, 10000);
    };
  }

  function transmit(frame) {
    unacked.set(frame.client_id, frame);
    ws.send(JSON.stringify(frame));
  }

  function send(text, display) {
    const frame = { type: "message", text, client_id: uuid(), lang };
    if (display && display !== text) frame.display = display;
    rendered.add(frame.client_id);
    bubble("customer", display || text);
    if (ws && ws.readyState === WebSocket.OPEN) transmit(frame);
    else unsent.push(frame);
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    input.value = "";
    send(text);
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  input.addEventListener("input", () => {
    const now = Date.now();
    if (ws && ws.readyState === WebSocket.OPEN && now - lastTypingSent > 2000) {
      lastTypingSent = now;
      ws.send(JSON.stringify({ type: "typing" }));
    }
  });
  $("lang-switch").addEventListener("click", () => {
    lang = lang === "zh" ? "en" : "zh";
    applyLang();
    if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: "lang", lang }));
  });

  applyLang();
  connect();
})();

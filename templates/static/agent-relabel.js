// Agent console add-on (the NLU learning loop): "the bot misunderstood — it was …". A button beside the chat's
// actions opens the customer's messages of the open chat with what the bot understood; the agent picks the right
// intent and the message goes to the supervisors' review (/nlu/review). Self-contained: it reads the open chat
// from the composer (#reply-form[data-chat]) and the language from <body data-lang>. Text only via textContent.
(() => {
  "use strict";
  const STRINGS = {
    zh: { button: "机器人理解有误", title: "机器人把客户的哪句话理解错了？", bot: (x) => `机器人理解为：${x}`,
          pick: "应为…", send: "提交审核", sent: "已提交，等待主管审核", none: "这个会话里没有客户消息", close: "关闭",
          human: "（坐席接待中）", fallback: "未识别" },
    en: { button: "Bot misunderstood", title: "Which of the customer's messages did the bot get wrong?",
          bot: (x) => `Bot understood: ${x}`, pick: "It was…", send: "Send for review",
          sent: "Sent for the supervisors' review", none: "No customer messages in this chat", close: "Close",
          human: "(with an agent)", fallback: "not understood" },
  };
  const $ = (id) => document.getElementById(id);
  const t = () => STRINGS[document.body.dataset.lang === "en" ? "en" : "zh"];
  const lang = () => (document.body.dataset.lang === "en" ? "en" : "zh");
  let csrf = "";

  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  async function call(method, path, body, retried) {
    if (method !== "GET" && !csrf) csrf = (await call("GET", "/api/agent/me")).csrf || "";
    const headers = { Accept: "application/json" };
    if (body) headers["Content-Type"] = "application/json";
    if (method !== "GET") headers["X-CSRF-Token"] = csrf;
    const res = await fetch(path, { method, headers, credentials: "same-origin", body: body ? JSON.stringify(body) : undefined });
    const data = await res.json().catch(() => null);
    if (res.status === 403 && method !== "GET" && !retried && data && data.field === "X-CSRF-Token") {
      csrf = "";  // signed in again since: a new session, a new token
      return call(method, path, body, true);
    }
    if (!res.ok) throw new Error((data && (lang() === "zh" ? data.error_zh || data.error : data.error)) || `HTTP ${res.status}`);
    return data;
  }

  function panel() {
    let box = $("relabel-panel");
    if (!box) {
      box = el("div", "transfer-form relabel-panel");
      box.id = "relabel-panel";
      box.hidden = true;
      $("chat-pane").insertBefore(box, $("transcript"));
    }
    return box;
  }

  function hide() { panel().hidden = true; }

  async function open() {
    const chat = $("reply-form").dataset.chat;
    if (!chat) return;
    const box = panel();
    box.hidden = false;
    box.replaceChildren(el("span", "", "…"));
    let data;
    try {
      data = await call("GET", `/api/chats/${encodeURIComponent(chat)}/nlu`);
    } catch (err) {
      box.replaceChildren(el("span", "", err.message));
      return;
    }
    const name = (label) => (data.names[label] ? data.names[label][lang()] : label);
    const title = el("strong", "", t().title);
    const close = el("button", "btn btn-ghost", t().close);
    close.type = "button";
    close.addEventListener("click", hide);
    box.replaceChildren(title, close);
    if (!data.messages.length) box.append(el("span", "", t().none));
    for (const m of data.messages.slice(-8)) {
      const text = el("label", "relabel-text", m.text);
      const row = el("div", "relabel-row transfer-buttons");
      const select = el("select", "relabel-select");
      select.append(new Option(t().pick, ""));
      for (const label of data.labels) select.append(new Option(name(label), label));
      text.htmlFor = select.id = `relabel-${m.ref}`;
      const send = el("button", "btn btn-primary relabel-send", t().send);
      send.type = "button";
      const understood = m.intent === "nlu_fallback" ? t().fallback : name(m.intent);
      const note = el("span", "relabel-note", m.intent ? t().bot(understood) : t().human);
      send.addEventListener("click", async () => {
        if (!select.value) return select.focus();
        send.disabled = true;
        try {
          await call("POST", `/api/chats/${encodeURIComponent(chat)}/relabel`, { ref: m.ref, intent: select.value });
          note.textContent = t().sent;
        } catch (err) {
          note.textContent = err.message;
          send.disabled = false;
        }
      });
      row.append(select, send, note);
      box.append(text, row);
    }
  }

  function install() {
    const actions = document.querySelector("#chat-pane .chat-actions");
    if (!actions || $("relabel-btn")) return;
    const button = el("button", "btn", t().button);
    button.id = "relabel-btn";
    button.type = "button";
    button.addEventListener("click", () => (panel().hidden ? open() : hide()));
    actions.prepend(button);
    // another chat opened, or the language switched: the panel closes, the button speaks the language
    new MutationObserver(hide).observe($("reply-form"), { attributes: true, attributeFilter: ["data-chat"] });
    new MutationObserver(() => { button.textContent = t().button; hide(); })
      .observe(document.body, { attributes: true, attributeFilter: ["data-lang"] });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", install);
  else install();
})();

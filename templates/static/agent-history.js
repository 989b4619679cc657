// Agent console, part two (loaded after agent.js): the customer's history, the read-only viewer of an ended chat
// with its export, search over ended chats, and supervisors' tools (live chats to watch, whisper, take over; the
// queue by skill; system outages). Uses what agent.js exposes as window.GwConsole. Text only via textContent.
(() => {
  "use strict";
  const C = window.GwConsole;
  if (!C) return;
  const { el, str, api } = C;
  const $ = (id) => document.getElementById(id);

  const UI = {
    zh: {
      historyTitle: "客户历史", historyNone: "该客户没有更早的人工会话", conversations: "以往会话", tickets: "投诉工单",
      surveys: "满意度", avgScore: (n, c) => `平均 ${n} 分（${c} 次评价）`, noTickets: "无投诉工单",
      searchOpen: "搜索记录", searchTitle: "搜索会话记录", searchGo: "搜索", searchMine: "我结束的会话", close: "关闭", fPhone: "手机号（完整）",
      fTicket: "工单号", fText: "内容", fAgent: "坐席账号", fFrom: "开始日期", fTo: "结束日期",
      searchEmpty: "请至少填写一个搜索条件", searching: "搜索中…", found: (n, more) => `找到 ${n} 条${more ? "（仅显示最近的）" : ""}`,
      noResults: "没有符合条件的会话记录", exportTxt: "导出文本", exportJson: "导出 JSON",
      readOnly: "只读 · 已结束的会话", watching: "实时监听中 · 坐席看不到您在监听，悄悄话仅坐席可见",
      whisperLabel: "悄悄话（仅坐席可见）", whisperPh: "给坐席的悄悄话，客户看不到…", whisperSend: "发送悄悄话",
      whisperSent: "悄悄话已发送给坐席", takeOver: "接管会话", takenOk: (w) => `已接管会话：${w}`,
      confirmTake: (a, w) => `从 ${a} 手中接管与 ${w} 的会话？`,
      liveTitle: "进行中会话", liveNone: "暂无进行中的会话", watch: "监听", bySkillTitle: "排队（按技能）",
      colSkill: "技能", colWaiting: "排队数", colLongest: "最长等待", queueNone: "无人排队",
      outagesTitle: "系统中断", outagesNone: "无系统中断记录",
      outage: (s, n) => `停机 ${s} 秒，暂停 ${n} 个计时`, chatWith: (w) => `与 ${w} 的会话`, heldBy: (a) => `坐席 ${a}`,
      score: (n) => `${n} 分`, closedAt: "结束于",
    },
    en: {
      historyTitle: "Customer history", historyNone: "No earlier chats with an agent", conversations: "Earlier chats",
      tickets: "Complaint tickets", surveys: "Satisfaction", avgScore: (n, c) => `average ${n} (${c} ratings)`,
      noTickets: "No complaint tickets",
      searchOpen: "Search history", searchTitle: "Search chat history", searchGo: "Search", close: "Close",
      searchMine: "Chats I closed",
      fPhone: "Number (in full)", fTicket: "Ticket", fText: "Text", fAgent: "Agent (sign-in)", fFrom: "From", fTo: "To",
      searchEmpty: "Fill in at least one field", searching: "Searching…",
      found: (n, more) => `${n} found${more ? " (the newest shown)" : ""}`, noResults: "No chats match",
      exportTxt: "Export text", exportJson: "Export JSON", readOnly: "Read-only · this chat has ended",
      watching: "Watching live · the agent alone sees whispers, the customer never",
      whisperLabel: "Whisper (the agent only)", whisperPh: "A whisper to the agent; the customer never sees it…",
      whisperSend: "Whisper", whisperSent: "Whisper sent to the agent", takeOver: "Take over",
      takenOk: (w) => `You took over the chat: ${w}`, confirmTake: (a, w) => `Take the chat with ${w} over from ${a}?`,
      liveTitle: "Live chats", liveNone: "No live chats", watch: "Watch", bySkillTitle: "Queue by skill",
      colSkill: "Skill", colWaiting: "Waiting", colLongest: "Longest wait", queueNone: "Nobody waiting",
      outagesTitle: "System outages", outagesNone: "No outages recorded",
      outage: (s, n) => `down ${s} s, ${n} clocks paused`, chatWith: (w) => `Chat with ${w}`, heldBy: (a) => `agent ${a}`,
      score: (n) => `score ${n}`, closedAt: "closed",
    },
  };
  const h = () => UI[C.lang()];
  const supervises = () => Boolean(C.me() && ["supervisor", "admin"].includes(C.me().role));
  const fmtDate = (epoch) => {
    const d = new Date(epoch * 1000), p = (n) => String(n).padStart(2, "0");
    return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}`;
  };
  const who = (item) => C.customerLabel({ id: item.chat || item.id, customer: item.customer });

  function applyLang() {
    const s = h();
    for (const node of document.querySelectorAll("[data-h]")) {
      if (typeof s[node.dataset.h] === "string") node.textContent = s[node.dataset.h];
    }
    for (const node of document.querySelectorAll("[data-h-placeholder]")) node.placeholder = s[node.dataset.hPlaceholder];
    $("search-btn").hidden = !C.me();
  }

  // ---- the customer's history (side panel) -------------------------------------------------------
  let historyFor = null, historySeq = 0, lastHistory = null;
  function episodeLine(item) {
    const li = el("li", "history-item");
    const button = el("button", "history-open");
    button.type = "button";
    button.dataset.episode = str(item.id);
    const top = el("span", "history-top", `${fmtDate(item.closed_at)} · ${C.label("channels", item.channel)}`);
    const parts = [item.agent_name, C.label("disps", item.disposition)];
    if (item.ticket) parts.push(item.ticket);
    if (item.score !== null && item.score !== undefined) parts.push(h().score(item.score));
    button.append(top, el("span", "history-sub", parts.join(" · ")));
    button.addEventListener("click", () => openEpisode(item.id));
    li.append(button);
    return li;
  }
  function renderHistory() {
    const box = $("history-box");
    box.replaceChildren();
    const data = lastHistory;
    $("history-card").hidden = !historyFor;
    if (!data) return;
    const list = Array.isArray(data.conversations) ? data.conversations : [];
    box.append(el("h3", "sub-title", h().conversations));
    if (!list.length) box.append(el("p", "empty", h().historyNone));
    const ul = el("ul", "history-list");
    for (const item of list) ul.append(episodeLine(item));
    box.append(ul);
    const scores = (data.surveys || []).map((s) => Number(s.score)).filter((n) => Number.isFinite(n));
    if (scores.length) {
      const avg = Math.round(scores.reduce((a, b) => a + b, 0) / scores.length);
      box.append(el("h3", "sub-title", h().surveys), el("p", "history-score", h().avgScore(avg, scores.length)));
    }
    box.append(el("h3", "sub-title", h().tickets));
    const tickets = Array.isArray(data.tickets) ? data.tickets : [];
    if (!tickets.length) box.append(el("p", "empty", h().noTickets));
    const tl = el("ul", "history-list");
    for (const tk of tickets) {
      tl.append(el("li", "history-ticket", `${tk.ticket} · ${C.label("complaints", tk.complaint_type)} · ${fmtDate(tk.created_at)}`));
    }
    box.append(tl);
  }
  async function loadHistory(chat) {
    const id = chat ? chat.id : null;
    if (id !== historyFor) { historyFor = id; lastHistory = null; renderHistory(); }
    if (!id) return;
    const seq = ++historySeq;
    try {
      const data = await api("GET", `/api/chats/${encodeURIComponent(chat.rawId ?? id)}/history`);
      if (seq !== historySeq || historyFor !== id) return;
      lastHistory = data;
      renderHistory();
    } catch (err) { if (err.status !== 403 && err.status !== 404) C.fail(err); }
  }
  C.hooks.chat.push((chat) => {
    if ((chat ? chat.id : null) !== historyFor) loadHistory(chat);
  });

  // The queue by skill and the live chats are read from the server (GET /api/live) when they change: a chat queued,
  // taken or closed, loads changed; several changes make one read.
  const LIVE_CHANGES = new Set(["queue_add", "queue_remove", "queue", "assigned", "chat_closed", "chat_removed"]);
  let liveDue = null;
  function liveSoon(ms) {
    if (!liveDue) liveDue = setTimeout(() => { liveDue = null; refreshLive(); }, ms);
  }

  // ---- the viewer: an ended chat (read-only, export) or a live chat a supervisor watches --------------
  let viewing = null;  // { kind: "episode" | "live", id, summary, keys: entries shown (a frame may repeat one) }
  const entryKey = (e) => `${e.kind}|${e.at}|${e.text}`;
  function viewerAdd(entry) {
    if (!viewing || !entry || viewing.keys.has(entryKey(entry))) return;
    viewing.keys.add(entryKey(entry));
    const box = $("viewer-transcript");
    box.append(C.entryNode(entry));
    box.scrollTop = box.scrollHeight;
  }
  function showViewer(kind, id, summary, transcript) {
    viewing = { kind, id: str(id), summary, keys: new Set() };
    const name = who(summary);
    $("viewer-title").textContent = h().chatWith(name);
    const meta = [C.label("channels", summary.channel), h().heldBy(summary.agent_name || summary.agent || "")];
    if (kind === "episode") meta.push(`${h().closedAt} ${fmtDate(summary.closed_at)}`, C.label("disps", summary.disposition));
    if (summary.ticket) meta.push(summary.ticket);
    $("viewer-meta").textContent = meta.join(" · ");
    $("viewer-mode").textContent = kind === "episode" ? h().readOnly : h().watching;
    $("viewer").dataset.kind = kind;
    $("viewer-transcript").replaceChildren();
    for (const entry of transcript || []) viewerAdd(entry);
    $("viewer-export").hidden = kind !== "episode";
    $("whisper-form").hidden = kind !== "live";
    if (kind === "episode") {
      const base = `/api/history/${encodeURIComponent(id)}/export?lang=${C.lang()}`;
      $("export-txt").href = `${base}&format=txt`;
      $("export-json").href = `${base}&format=json`;
    }
    $("viewer").hidden = false;
    $("viewer-close").focus();
  }
  function hideViewer() {
    if (viewing && viewing.kind === "live") C.wsSend({ type: "unwatch" });
    viewing = null;
    $("viewer").hidden = true;
  }
  async function openEpisode(id) {
    try {
      const data = await api("GET", `/api/history/${encodeURIComponent(id)}`);
      showViewer("episode", id, data, data.transcript);
    } catch (err) { C.fail(err); }
  }
  async function watch(chat) {
    try {
      const data = await api("GET", `/api/chats/${encodeURIComponent(chat.id)}`);
      C.wsSend({ type: "watch", chat: chat.id });
      showViewer("live", chat.id, { ...chat, ...data }, data.transcript);
      $("whisper-input").focus();
    } catch (err) { C.fail(err); }
  }
  // A watched chat's frames (the agent hub marks them "watched"): shown in the viewer, not as my chat.
  C.hooks.frame.push((frame) => {
    if (frame && !frame.watched && LIVE_CHANGES.has(frame.type) && supervises()) liveSoon(1000);
    if (!frame || !frame.watched) return false;
    if (viewing && viewing.kind === "live" && str(frame.chat) === viewing.id) {
      if (frame.type === "message" && frame.entry) viewerAdd(frame.entry);
      else if (frame.type === "chat_closed" || frame.type === "chat_removed") {
        $("viewer-mode").textContent = C.t().chatRemoved(who(viewing.summary));
        $("whisper-form").hidden = true;
        refreshLive();
      }
    }
    return true;
  });
  $("viewer-close").addEventListener("click", hideViewer);
  $("whisper-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const input = $("whisper-input"), text = input.value.trim();
    if (!viewing || viewing.kind !== "live" || !text) return;
    const target = viewing;
    try {
      const data = await api("POST", `/api/chats/${encodeURIComponent(target.id)}/notes`, { text });
      input.value = "";
      if (viewing === target && data && data.entry) viewerAdd(data.entry);
      C.toast(h().whisperSent, "info", 3000);
    } catch (err) { C.fail(err); }
  });
  $("takeover-btn").addEventListener("click", async () => {
    if (!viewing || viewing.kind !== "live") return;
    const target = viewing, name = who(target.summary);
    if (!window.confirm(h().confirmTake(target.summary.agent_name || target.summary.agent, name))) return;
    try {
      await api("POST", `/api/chats/${encodeURIComponent(target.id)}/takeover`);
      hideViewer();
      C.toast(h().takenOk(name), "info");
      refreshLive();
    } catch (err) { C.fail(err); }
  });

  // ---- search ------------------------------------------------------------------------------------------
  function resultLine(item) {
    const li = el("li", "search-result");
    const button = el("button", "history-open");
    button.type = "button";
    button.dataset.episode = str(item.id);
    const parts = [who(item), C.label("channels", item.channel), item.agent_name, fmtDate(item.closed_at)];
    if (item.ticket) parts.push(item.ticket);
    button.append(el("span", "history-top", parts.join(" · ")), el("span", "history-sub", str(item.snippet)));
    button.addEventListener("click", () => openEpisode(item.id));
    li.append(button);
    return li;
  }
  async function runSearch() {
    const fields = { phone: "s-phone", ticket: "s-ticket", text: "s-text", agent: "s-agent", from: "s-from", to: "s-to" };
    const query = new URLSearchParams();
    for (const [name, id] of Object.entries(fields)) if ($(id).value.trim()) query.set(name, $(id).value.trim());
    const note = $("search-note"), list = $("search-results");
    if (![...query.keys()].length) { note.textContent = h().searchEmpty; return; }
    note.textContent = h().searching;
    try {
      const data = await api("GET", `/api/search?${query}`);
      const results = Array.isArray(data.results) ? data.results : [];
      note.textContent = results.length ? h().found(results.length, data.more) : h().noResults;
      list.replaceChildren(...results.map(resultLine));
    } catch (err) {
      note.textContent = err.message;
      list.replaceChildren();
    }
  }
  $("search-btn").addEventListener("click", () => { $("search-panel").hidden = false; $("s-phone").focus(); });
  $("search-close").addEventListener("click", () => { $("search-panel").hidden = true; });
  $("search-form").addEventListener("submit", (event) => { event.preventDefault(); runSearch(); });
  $("search-mine").addEventListener("click", () => {  // an agent's own ended chats, newest first (read-only)
    for (const id of ["s-phone", "s-ticket", "s-text", "s-from", "s-to"]) $(id).value = "";
    $("s-agent").value = str(C.me() && C.me().name);
    runSearch();
  });
  document.addEventListener("keydown", (event) => {
    if (event.key !== "Escape") return;
    if (!$("viewer").hidden) hideViewer();
    else if (!$("search-panel").hidden) $("search-panel").hidden = true;
  });

  // ---- supervisors: live chats, the queue by skill, outages ---------------------------------------------
  let live = [], bySkill = [], outages = [], liveSeq = 0;
  function renderSupervision() {
    if (!supervises()) return;
    const ul = $("live-chats");
    ul.replaceChildren();
    if (!live.length) ul.append(el("li", "empty", h().liveNone));
    for (const chat of live) {
      const li = el("li", "live-chat");
      li.dataset.chat = str(chat.id);
      li.append(el("span", "live-who", who(chat)), el("span", "live-agent", str(chat.agent_name || chat.agent)));
      const button = el("button", "btn watch-btn", h().watch);
      button.type = "button";
      button.addEventListener("click", () => watch(chat));
      li.append(button);
      ul.append(li);
    }
    const body = $("by-skill").tBodies[0];
    body.replaceChildren();
    for (const row of bySkill) {
      const tr = el("tr");
      tr.dataset.skill = str(row.skill);
      tr.append(el("td", "", C.skillLabel(row.skill)), el("td", "", str(row.waiting)),
        el("td", "wait-longest", C.fmtDur(Math.round(Number(row.longest) || 0))));
      body.append(tr);
    }
    if (!bySkill.length) {
      const tr = el("tr"), td = el("td", "empty", h().queueNone);
      td.colSpan = 3;
      tr.append(td);
      body.append(tr);
    }
    const ol = $("outages");
    ol.replaceChildren();
    if (!outages.length) ol.append(el("li", "empty", h().outagesNone));
    for (const o of outages.slice(0, 10)) {
      const li = el("li", "breach outage");
      li.append(el("span", "breach-chat", fmtDate(o.from)), el("span", "breach-clock", h().outage(o.seconds, o.timers_paused)));
      ol.append(li);
    }
  }
  async function refreshLive() {
    if (!supervises()) return;
    const seq = ++liveSeq;
    try {
      const data = await api("GET", "/api/live");
      if (seq !== liveSeq) return;
      live = Array.isArray(data.chats) ? data.chats : [];
      if (Array.isArray(data.by_skill)) bySkill = data.by_skill;
      if (Array.isArray(data.outages)) outages = data.outages;
      renderSupervision();
    } catch (err) { if (err.status !== 401 && err.status !== 403) console.warn(err); }
  }
  C.hooks.overview.push((data) => {
    if (!supervises() || !data) return;
    if (Array.isArray(data.by_skill)) bySkill = data.by_skill;
    if (Array.isArray(data.outages)) outages = data.outages;
    renderSupervision();
    liveSoon(300);  // loads changed: who holds what
  });
  C.hooks.render.push(() => {
    applyLang();
    if (!C.me()) { historyFor = null; lastHistory = null; live = []; $("history-card").hidden = true; hideViewer(); return; }
    renderHistory();
    renderSupervision();
  });
  setInterval(() => { if (!$("live-chats").closest("[hidden]")) refreshLive(); }, 10000);
  applyLang();
})();

/* Complaint cases page (/cases): the list with filters and counting clocks, one case with its history, notes,
   customer (masked), linked chats and the transitions allowed now. Agents see their cases, supervisors all.
   Signs in with the agent console's session (GET /api/agent/me); every POST carries its CSRF token. */
(() => {
  "use strict";
  const T = {
    zh: {
      title: "投诉工单", console: "坐席工作台", signIn: "请先在坐席工作台登录。", list: "投诉单", fStatus: "阶段",
      fType: "类型", fSeverity: "严重程度", fAssignee: "处理人", cTicket: "单号", cType: "类型", cStage: "阶段",
      cAssignee: "处理人", cFirst: "首次响应", cSolution: "解决方案", empty: "没有符合条件的投诉单", move: "处理",
      note: "备注（内部）", reply: "告知客户的内容（答复、解决时发送）", history: "处理记录", notes: "备注",
      addNote: "添加备注", chats: "关联会话与反映", all: "全部", met: "已达成", left: "剩余", over: "已超时",
      customer: "客户", channel: "渠道", department: "部门", severity: "严重程度", region: "地区", tier: "客户等级",
      plan: "套餐", name: "姓名", source: "来源", created: "登记时间", escalated: "已升级至", none: "无",
      followup: "回访", solved: "已解决", unsolved: "未解决", score: "满意度", by: "操作",
      alerts: (warn, over) => [warn ? `${warn} 张即将超时` : "", over ? `${over} 张已超时` : ""].filter(Boolean).join("，"),
      tiers: {normal: "普通", gold: "金卡", vip: "VIP"},
      stages: {registered: "已登记", analysed: "已分析", dispatched: "已派单", in_progress: "处理中", replied: "已答复",
               resolved: "已解决", followed_up: "已回访", closed: "已结案", reopened: "已重新打开"},
      types: {service: "服务类", business: "业务类", network: "网络类", other: "其他类"},
      severities: {high: "高", medium: "中", low: "低"},
      clocks: {first_response: "首次响应", solution: "解决方案"},
      kinds: {bot: "机器人", agent: "坐席", system: "系统"},
      events: {sla_warning: "即将超时", sla_breach: "已超时", escalated: "升级", linked: "关联新的反映",
               followup_asked: "发起回访", followup: "回访结果", reopen_refused: "无法重新打开"},
    },
    en: {
      title: "Complaint cases", console: "Agent console", signIn: "Please sign in on the agent console first.",
      list: "Cases", fStatus: "Stage", fType: "Type", fSeverity: "Severity", fAssignee: "Assignee", cTicket: "Ticket",
      cType: "Type", cStage: "Stage", cAssignee: "Assignee", cFirst: "First response", cSolution: "Solution",
      empty: "No cases match", move: "Move", note: "Note (internal)",
      reply: "Text for the customer (sent at replied and resolved)", history: "History", notes: "Notes",
      addNote: "Add note", chats: "Linked chats and complaints", all: "All", met: "met", left: "left", over: "overdue",
      customer: "Customer", channel: "Channel", department: "Department", severity: "Severity", region: "Region",
      tier: "Tier", plan: "Plan", name: "Name", source: "Source", created: "Registered", escalated: "Escalated to",
      none: "none", followup: "Follow-up", solved: "solved", unsolved: "not solved", score: "satisfaction", by: "by",
      alerts: (warn, over) => [warn ? `${warn} due soon` : "", over ? `${over} overdue` : ""].filter(Boolean).join(", "),
      tiers: {normal: "normal", gold: "gold", vip: "VIP"},
      stages: {registered: "registered", analysed: "analysed", dispatched: "dispatched", in_progress: "in progress",
               replied: "replied", resolved: "resolved", followed_up: "followed up", closed: "closed",
               reopened: "reopened"},
      types: {service: "Service", business: "Business", network: "Network", other: "Other"},
      severities: {high: "high", medium: "medium", low: "low"},
      clocks: {first_response: "First response", solution: "Solution"},
      kinds: {bot: "bot", agent: "agent", system: "system"},
      events: {sla_warning: "due soon", sla_breach: "overdue", escalated: "escalated", linked: "complaint linked",
               followup_asked: "follow-up asked", followup: "follow-up result", reopen_refused: "reopen refused"},
    },
  };
  const STAGES = ["registered", "analysed", "dispatched", "in_progress", "replied", "resolved", "followed_up",
                  "closed", "reopened"];
  const $ = (id) => document.getElementById(id);
  const saved = (() => { try { return localStorage.getItem("gw_agent.lang"); } catch { return null; } })();
  let lang = (saved || document.body.dataset.lang) === "en" ? "en" : "zh";  // the console's choice, shared
  let csrf = "", me = null, skew = 0, rows = [], current = null, timer = null;
  const t = (k) => T[lang][k] ?? k;
  const el = (tag, cls, text) => {
    const n = document.createElement(tag);
    if (cls) n.className = cls;
    if (text !== undefined && text !== null) n.textContent = String(text);
    return n;
  };

  async function api(method, path, body) {
    const headers = {"Accept": "application/json"};
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (method !== "GET") headers["X-CSRF-Token"] = csrf;
    const resp = await fetch(path, {method, headers, credentials: "same-origin",
                                    body: body === undefined ? undefined : JSON.stringify(body)});
    const data = await resp.json().catch(() => ({}));
    if (!resp.ok) {
      const err = new Error((lang === "zh" && data.error_zh) || data.error || String(resp.status));
      err.status = resp.status;
      throw err;
    }
    return data;
  }

  const now = () => Date.now() / 1000 + skew;
  function when(at) {
    if (!at) return "";
    const d = new Date(at * 1000);
    return d.toLocaleString(lang === "zh" ? "zh-CN" : "en-GB", {month: "2-digit", day: "2-digit", hour: "2-digit",
                                                               minute: "2-digit"});
  }
  function span(seconds) {
    const s = Math.max(0, Math.round(Math.abs(seconds)));
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
    return (h ? `${h}:${String(m).padStart(2, "0")}` : String(m)) + `:${String(sec).padStart(2, "0")}`;
  }
  function clockText(c) {
    if (c.met_at) return `${t("met")} ${when(c.met_at)}`;
    const left = c.due_at - now();
    return left >= 0 ? `${t("left")} ${span(left)}` : `${t("over")} ${span(left)}`;
  }
  function clockState(c) {
    if (c.met_at) return c.met_at > c.due_at ? "late" : "met";
    const n = now();
    return n > c.due_at ? "over" : n > c.warn_at ? "warn" : "ok";
  }
  function clockCell(c) {
    const cell = el("span", `clock clock-${clockState(c)}`, clockText(c));
    cell.dataset.clock = c.clock;
    return cell;
  }

  function applyI18n() {
    document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
    document.title = t("title");
    document.querySelectorAll("[data-i18n]").forEach((n) => { n.textContent = t(n.dataset.i18n); });
    $("lang-switch").setAttribute("aria-pressed", String(lang === "en"));
    fillSelect($("f-status"), STAGES, T[lang].stages);
    fillSelect($("f-type"), Object.keys(T.zh.types), T[lang].types);
    fillSelect($("f-severity"), Object.keys(T.zh.severities), T[lang].severities);
  }
  function fillSelect(select, values, labels) {
    const keep = select.value;
    select.replaceChildren(new Option(t("all"), ""));
    values.forEach((v) => select.append(new Option(labels[v] || v, v)));
    select.value = keep;
  }

  async function loadList() {
    const q = new URLSearchParams();
    for (const id of ["status", "type", "severity", "assignee"]) {
      const v = $(`f-${id}`).value.trim();
      if (v) q.set(id, v);
    }
    const data = await api("GET", `/api/cases?${q}`);
    skew = data.now - Date.now() / 1000;
    rows = data.cases;
    renderList();
  }
  function renderList() {
    const body = $("case-rows");
    body.replaceChildren(...rows.map((c) => {
      const tr = el("tr", current && current.ticket === c.ticket ? "row selected" : "row");
      tr.dataset.ticket = c.ticket;
      tr.tabIndex = 0;
      const stage = el("td"); stage.append(el("span", `stage stage-${c.status}`, T[lang].stages[c.status]));
      if (c.escalation) stage.append(el("span", "esc", `↑${c.escalation}`));
      const [fr, sol] = [el("td"), el("td")];
      fr.append(clockCell(c.clocks[0])); sol.append(clockCell(c.clocks[1]));
      tr.append(el("td", "mono", c.ticket), el("td", "", `${T[lang].types[c.type]} · ${T[lang].severities[c.severity] || ""}`),
                stage, el("td", "", c.assignee || ""), fr, sol);
      tr.addEventListener("click", () => openCase(c.ticket));
      tr.addEventListener("keydown", (e) => { if (e.key === "Enter") openCase(c.ticket); });
      return tr;
    }));
    $("count").textContent = String(rows.length);
    $("empty").hidden = rows.length > 0;
    renderAlerts();
  }
  function renderAlerts() {  // open clocks near or past their breach, across the list
    const states = rows.flatMap((r) => r.clocks.filter((c) => !c.met_at).map(clockState));
    const warn = states.filter((s) => s === "warn").length, over = states.filter((s) => s === "over").length;
    $("alerts").hidden = !(warn || over);
    $("alerts").textContent = T[lang].alerts(warn, over);
    $("alerts").className = over ? "alerts alerts-over" : "alerts";
  }

  async function openCase(ticket) {
    current = await api("GET", `/api/cases/${encodeURIComponent(ticket)}`);
    skew = current.now - Date.now() / 1000;
    if (location.hash !== `#${ticket}`) history.replaceState(null, "", `#${ticket}`);
    renderCase();
    renderList();
  }
  function renderCase() {
    const c = current;
    $("case").hidden = false;
    $("case-ticket").textContent = c.ticket;
    $("case-stage").textContent = T[lang].stages[c.status];
    $("case-stage").className = `stage stage-${c.status}`;
    $("case-escalation").hidden = !c.escalation;
    $("case-escalation").textContent = c.escalation ? `${t("escalated")} ${c.escalated_to || ""}` : "";
    $("case-summary").textContent = c.summary || "";
    const facts = [["customer", c.customer], ["channel", c.channel], ["source", c.source],
                   ["severity", T[lang].severities[c.severity]], ["department", c.department_name ? c.department_name[lang] : c.department],
                   ["cAssignee", c.assignee], ["region", c.region], ["tier", (T[lang].tiers[c.facts.tier] || c.facts.tier)], ["plan", c.facts.plan],
                   ["name", c.facts.name], ["created", when(c.created_at)]];
    if (c.followup && c.followup.solved !== undefined) {
      const f = c.followup;
      facts.push(["followup", `${f.solved ? t("solved") : t("unsolved")}${f.score ? ` · ${t("score")} ${f.score}` : ""}` +
                              `${f.comment ? ` · ${f.comment}` : ""}`]);
    }
    $("case-facts").replaceChildren(...facts.filter(([, v]) => v).flatMap(([k, v]) => [el("dt", "", t(k)), el("dd", "", v)]));
    $("case-clocks").replaceChildren(...c.clocks.map((k) => {
      const box = el("div", "clock-box");
      box.append(el("span", "clock-name", T[lang].clocks[k.clock]), clockCell(k), el("span", "due", when(k.due_at)));
      return box;
    }));
    $("move-buttons").replaceChildren(...c.allowed.map((to) => {
      const b = el("button", "btn move-btn", T[lang].stages[to]);
      b.type = "button";
      b.dataset.to = to;
      b.addEventListener("click", () => move(to));
      return b;
    }));
    $("move-error").hidden = true;
    $("case-history").replaceChildren(...c.history.map((h) => {
      const what = h.kind === "transition" ? `${T[lang].stages[h.from] || "—"} → ${T[lang].stages[h.to]}`
        : `${T[lang].events[h.event] || h.event}${h.clock ? ` · ${T[lang].clocks[h.clock]}` : ""}${h.to ? ` → ${h.to}` : ""}`;
      const li = el("li", `h h-${h.kind}`);
      li.append(el("time", "", when(h.at)), el("span", "what", what),
                el("span", "by", `${T[lang].kinds[h.by_kind] || h.by_kind} ${h.by || ""}`));
      if (h.note) li.append(el("span", "h-note", h.note));
      if (h.reply) li.append(el("span", "h-reply", h.reply));
      if (h.text) li.append(el("span", "h-note", h.text));
      return li;
    }));
    $("case-notes").replaceChildren(...c.notes.map((n) => {
      const li = el("li");
      li.append(el("time", "", when(n.at)), el("b", "", n.display_name || n.agent), el("span", "", n.text));
      return li;
    }));
    const links = [...c.chats.map((ch) => el("li", "", `${ch.channel} · ${ch.id.slice(0, 8)} · ${ch.state}${ch.agent ? ` · ${ch.agent}` : ""}`)),
                   ...c.linked.map((l) => el("li", "", `${when(l.at)} · ${l.channel} · ${l.text}`))];
    $("case-links").replaceChildren(...(links.length ? links : [el("li", "none", t("none"))]));
  }

  async function move(to) {
    try {
      current = await api("POST", `/api/cases/${encodeURIComponent(current.ticket)}/transition`,
                          {to, note: $("move-note").value.trim(), reply: $("move-reply").value.trim()});
      $("move-note").value = "";
      $("move-reply").value = "";
      renderCase();
      await loadList();
    } catch (err) {
      $("move-error").textContent = err.message;
      $("move-error").hidden = false;
    }
  }

  function tick() {
    document.querySelectorAll(".clock").forEach((n) => {
      const source = n.closest("#case") ? current : rows.find((r) => r.ticket === n.closest("tr")?.dataset.ticket);
      const c = source && source.clocks.find((k) => k.clock === n.dataset.clock);
      if (c) { n.textContent = clockText(c); n.className = `clock clock-${clockState(c)}`; }
    });
    if (rows.length) renderAlerts();
  }

  async function start() {
    document.body.dataset.lang = lang;
    applyI18n();
    try {
      const data = await api("GET", "/api/agent/me");
      me = data.agent;
      csrf = data.csrf;
    } catch (err) {
      $("signed-out").hidden = false;
      return;
    }
    $("who").textContent = `${me.display_name} (${me.name})`;
    $("f-assignee-box").hidden = !["supervisor", "admin"].includes(me.role);
    $("cases-view").hidden = false;
    await loadList();
    if (location.hash.length > 1) await openCase(decodeURIComponent(location.hash.slice(1))).catch(() => {});
    timer = setInterval(tick, 1000);
    setInterval(() => loadList().catch(() => {}), 10000);
  }

  $("filters").addEventListener("change", () => loadList());
  $("filters").addEventListener("submit", (e) => { e.preventDefault(); loadList(); });
  $("note-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const text = $("note-text").value.trim();
    if (!text || !current) return;
    await api("POST", `/api/cases/${encodeURIComponent(current.ticket)}/notes`, {text});
    $("note-text").value = "";
    await openCase(current.ticket);
  });
  $("lang-switch").addEventListener("click", () => {
    lang = lang === "zh" ? "en" : "zh";
    document.body.dataset.lang = lang;
    try { localStorage.setItem("gw_agent.lang", lang); } catch { /* memory only */ }
    applyI18n();
    renderList();
    if (current) renderCase();
  });
  window.addEventListener("beforeunload", () => clearInterval(timer));
  start();
})();

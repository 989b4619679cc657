/* Audit trail page (/audit): supervisors and admins read the append-only trail (GET /api/audit), filtered by who,
   event, customer (the full number, hashed by the server: the trail holds no number) and dates, newest first, a page
   at a time; admins export CSV or JSON (GET /api/audit/export, itself audited). Signs in with the agent console's
   session (GET /api/agent/me). Text only via textContent. */
(() => {
  "use strict";
  const T = {
    zh: {
      title: "审计日志", console: "坐席工作台", signIn: "请先在坐席工作台登录。",
      refused: "仅主管和管理员可查看审计日志。", list: "审计记录", appendOnly: "只追加，不可修改或删除",
      fWho: "操作人", fWhat: "事件", fCustomer: "客户手机号（完整）", fSince: "开始日期", fUntil: "结束日期",
      search: "查询", exportCsv: "导出 CSV", exportJson: "导出 JSON", cTime: "时间", cWho: "操作人", cWhat: "事件",
      cCustomer: "客户（哈希）", cWhere: "来源地址", cReason: "原因", cDetails: "详情", empty: "没有符合条件的记录",
      more: "加载更早的记录", all: "全部", network: "网络错误，请稍后重试",
      kinds: {sign_in: "登录", sign_in_failed: "登录失败", sign_out: "退出登录", reveal: "查看完整号码",
              export: "导出客户数据", deletion: "删除客户数据", consent_change: "营销授权变更",
              retention_purge: "过期数据清理", agent_created: "新建坐席账号",
              agent_changed: "修改坐席账号", role_change: "角色变更", config_change: "配置变更",
              key_rotation: "密钥轮换", audit_export: "导出审计日志"},
    },
    en: {
      title: "Audit trail", console: "Agent console", signIn: "Please sign in on the agent console first.",
      refused: "Only supervisors and admins may read the audit trail.", list: "Entries",
      appendOnly: "append-only: never edited or deleted", fWho: "Who", fWhat: "Event",
      fCustomer: "Customer number (in full)", fSince: "From", fUntil: "To", search: "Search", exportCsv: "Export CSV",
      exportJson: "Export JSON", cTime: "Time", cWho: "Who", cWhat: "Event", cCustomer: "Customer (hash)",
      cWhere: "From", cReason: "Reason", cDetails: "Details", empty: "No entries match", more: "Load older entries",
      all: "All", network: "Network error, please retry",
      kinds: {sign_in: "signed in", sign_in_failed: "sign-in failed", sign_out: "signed out",
              reveal: "number revealed", export: "customer data exported", deletion: "customer data deleted",
              consent_change: "consent changed", retention_purge: "expired data purged",
              agent_created: "agent account created", agent_changed: "agent account changed",
              role_change: "role changed", config_change: "configuration changed", key_rotation: "keys rotated",
              audit_export: "audit trail exported"},
    },
  };
  const $ = (id) => document.getElementById(id);
  const saved = (() => { try { return localStorage.getItem("gw_agent.lang"); } catch { return null; } })();
  let lang = (saved || document.body.dataset.lang) === "en" ? "en" : "zh";  // the console's choice, shared
  let me = null, entries = [], next = "", kinds = Object.keys(T.zh.kinds);
  const t = (k) => T[lang][k] ?? k;
  const kindLabel = (k) => T[lang].kinds[k] || k;
  const el = (tag, cls, text) => {
    const n = document.createElement(tag);
    if (cls) n.className = cls;
    if (text !== undefined && text !== null) n.textContent = String(text);
    return n;
  };

  async function api(path) {
    let resp;
    try { resp = await fetch(path, {headers: {"Accept": "application/json"}, credentials: "same-origin"}); }
    catch { throw Object.assign(new Error(t("network")), {status: 0}); }
    const data = await resp.json().catch(() => ({}));
    if (!resp.ok) {
      throw Object.assign(new Error((lang === "zh" && data.error_zh) || data.error || String(resp.status)),
                          {status: resp.status});
    }
    return data;
  }

  function filters() {
    const q = new URLSearchParams();
    for (const name of ["who", "what", "customer", "since", "until"]) {
      const v = $(`f-${name}`).value.trim();
      if (v) q.set(name, v);
    }
    return q;
  }

  function when(at) {
    return new Date(at * 1000).toLocaleString(lang === "zh" ? "zh-CN" : "en-GB", {
      year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit"});
  }

  function row(e) {
    const tr = el("tr");
    tr.dataset.id = e.id;
    const what = el("span", `what what-${e.what}`, kindLabel(e.what));
    what.dataset.kind = e.what;
    const details = e.details && Object.keys(e.details).length
      ? Object.entries(e.details).map(([k, v]) => `${k}: ${typeof v === "object" ? JSON.stringify(v) : v}`).join(" · ")
      : "";
    const customer = el("td", "mono", e.customer ? e.customer.slice(0, 12) : "—");
    if (e.customer) customer.title = e.customer;
    const whatCell = el("td");
    whatCell.append(what);
    tr.append(el("td", "", when(e.at)), el("td", "", e.who), whatCell, customer, el("td", "mono", e.where || "—"),
              el("td", "reason", e.reason || ""), el("td", "details", details));
    return tr;
  }

  function render() {
    $("rows").replaceChildren(...entries.map(row));
    $("empty").hidden = entries.length > 0;
    $("more").hidden = !next;
  }

  async function load(more) {
    const q = filters();
    if (more && next) q.set("cursor", next);
    $("error").hidden = true;
    try {
      const data = await api(`/api/audit?${q}`);
      entries = more ? entries.concat(data.entries) : data.entries;
      next = data.next || "";
      if (Array.isArray(data.kinds)) kinds = [...new Set([...data.kinds, ...kinds])];
    } catch (err) {
      $("error").textContent = err.message;
      $("error").hidden = false;
      if (!more) { entries = []; next = ""; }
    }
    render();
    exportLinks();
  }

  function exportLinks() {
    const q = filters();
    for (const fmt of ["csv", "json"]) {
      q.set("format", fmt);
      $(`export-${fmt}`).href = `/api/audit/export?${q}`;
    }
  }

  function fillKinds() {
    const select = $("f-what"), keep = select.value;
    select.replaceChildren(new Option(t("all"), ""));
    kinds.forEach((k) => select.append(new Option(kindLabel(k), k)));
    select.value = keep;
  }

  function applyI18n() {
    document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
    document.body.dataset.lang = lang;
    document.title = t("title");
    document.querySelectorAll("[data-i18n]").forEach((n) => { n.textContent = t(n.dataset.i18n); });
    $("console-link").href = `/agent?lang=${lang}`;
    fillKinds();
  }

  async function start() {
    applyI18n();
    try {
      me = (await api("/api/agent/me")).agent;
    } catch {
      $("signed-out").hidden = false;
      return;
    }
    $("who").textContent = `${me.display_name} (${me.name})`;
    if (!["supervisor", "admin"].includes(me.role)) { $("refused").hidden = false; return; }
    $("export").hidden = me.role !== "admin";
    $("audit-view").hidden = false;
    await load(false);
    fillKinds();
  }

  $("filters").addEventListener("submit", (e) => { e.preventDefault(); load(false); });
  $("filters").addEventListener("change", exportLinks);
  $("more").addEventListener("click", () => load(true));
  $("lang-switch").addEventListener("click", () => {
    lang = lang === "zh" ? "en" : "zh";
    try { localStorage.setItem("gw_agent.lang", lang); } catch { /* memory only */ }
    applyI18n();
    render();
  });
  start();
})();

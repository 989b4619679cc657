// Agent console (served at "/agent"): plain JavaScript, no build step, no dependencies.
// HTTP: /api/agent/*, /api/queue, /api/chats/{id}/*; live updates over the /ws/agent WebSocket.
// Customer text (transcripts, names, canned replies) only ever goes in with textContent, never innerHTML.
(() => {
  "use strict";

  const UI = {
    zh: {
      title: "坐席工作台", status: "状态", st_online: "在线", st_away: "离开", st_offline: "离线", logout: "退出登录",
      loginTitle: "坐席登录", loginName: "账号", loginPassword: "密码", loginSubmit: "登录", loginBusy: "登录中…",
      loginMissing: "请输入账号和密码", loginFailed: "账号或密码错误", expired: "登录已过期，请重新登录",
      connecting: "连接中…", open: "实时连接正常", closed: "连接断开，正在重连…", network: "网络错误，请稍后重试",
      callbacks: "回电/留言", cbEmpty: "暂无待处理的留言", cbReplyPh: "回复客户（通过客户原渠道发送）…", cbReply: "回复并完成",
      cbDone: "已电话联系，完成", cbHandled: "已处理",
      queue: "排队队列", queueEmpty: "暂无排队会话", myChats: "我的会话", pickChat: "从左侧队列接起会话，或选择上方的会话",
      accept: "接起", waiting: "等待", overdue: "超时", transfer: "转接", transferTo: "转给",
      transferNote: "转接备注", transferSubmit: "确认转接", cancel: "取消",
      closeReason: "结束原因", closeChat: "结束会话", disp_resolved: "已解决", disp_follow_up: "需跟进",
      disp_complaint_registered: "已登记投诉", typing: "客户正在输入…", cannedLabel: "快捷回复", canned: "快捷回复…",
      cannedNone: "无快捷回复", note: "内部备注", hint: "Enter 发送 · Shift+Enter 换行", reply: "回复",
      replyPh: "输入回复…", notePh: "输入内部备注（客户不可见）…", send: "发送", addNote: "添加备注", loading: "加载中…",
      profile: "客户信息", noProfile: "未选择会话", phone: "手机号", name: "姓名", tier: "客户等级", plan: "套餐",
      district: "区域", channel: "渠道", language: "语言", reason: "转人工原因", skills: "技能", chatId: "会话编号",
      supervisor: "班组监控", agentsLoad: "坐席负载", breachesTitle: "SLA 超时记录", colAgent: "坐席", colStatus: "状态",
      colLoad: "负载", colSkills: "技能", noAgents: "暂无坐席数据", noBreaches: "暂无超时", unassigned: "未分配",
      unread: (n) => `${n} 条未读`, me: "我", dismiss: "关闭",
      taken: "该会话已被其他坐席接起", transferred: (w) => `已转接：${w}`, closedOk: (w) => `会话已结束：${w}`,
      chatClosed: (w) => `会话已结束：${w}`, chatRemoved: (w) => `会话已转出或重新排队：${w}`,
      assigned: (w) => `新会话已分配给您：${w}`, newReply: (w) => `${w} 发来新消息`, slaWarn: (w, c, left) => `${w}：${c}即将超时（剩余 ${left}）`,
      slaBreach: (w, c) => `${w}：${c}已超时`, targetMissing: "请选择转接对象",
      casesLink: "投诉工单", caseClocks: { first_response: "首次响应", solution: "解决时限" },
      caseAlert: (k, c, stage, left) => stage === "warn" ? `投诉工单 ${k}：${c}即将超时（剩余 ${left}）`
        : stage === "breach" ? `投诉工单 ${k}：${c}已超时，已升级给主管` : `投诉工单 ${k}：${c}超时已久，已升级给部门负责人`,
      kinds: { customer: "客户", bot: "机器人", agent: "坐席", system: "系统", note: "内部备注", event: "事件" },
      reasons: { request_human: "客户要求转人工", complaint: "投诉", fallback: "机器人无法处理", urgent: "紧急", vip: "VIP 客户" },
      complaints: { service: "服务投诉", business: "业务投诉", network: "网络投诉", other: "其他投诉" },
      tiers: { normal: "普通", gold: "金卡", vip: "VIP" },
      channels: { webchat: "网页", socketio: "网页(Rasa)", rest: "API", sms: "短信", telegram: "Telegram", wechat: "微信", weibo: "微博", forum: "论坛" },
      clocks: { pickup: "接起", first_reply: "首次回复", complaint_first_response: "投诉首响" },
      roles: { agent: "坐席", supervisor: "班长", admin: "管理员" },
      langs: { zh: "中文", en: "英文" },
      atCapacity: "您已达到接待上限，请先结束或转出会话", visitor: "访客", chatRef: "会话", ticket: "工单",
      events: { queued: "排队", assigned: "已接入", transferred: "转接", closed: "结束", sla_breach: "超时",
                escalated: "扩大技能组", agent_lost: "坐席掉线，重新排队", survey: "满意度评价", deadline: "机器人超时",
                late_failed: "回复失败", handoff: "转人工", backend_error: "后台出错", backend_unavailable: "后台不可用",
                bound: "已绑定手机号", unbound: "已解绑手机号", callback_message: "留言", complaint: "登记投诉",
                confirmation: "待客户确认", forum_private: "论坛私信", needs_account: "需验证身份", nlu_fallback: "机器人未理解",
                otp_sent: "已发验证码", sms_opt_in: "短信退订已恢复", sms_opt_out: "短信已退订", write: "业务办理",
                taken_over: "主管接管" },
      disps: { resolved: "已解决", follow_up: "需跟进", complaint_registered: "已登记投诉" },
      skillNames: { zh: "中文", en: "英文", general: "综合", network: "网络", business: "业务", service: "服务" },
      score: (n) => `评分 ${n}`, toWhom: (w) => `转给 ${w}`,
      confirmClose: (w, d) => `结束与 ${w} 的会话（${d}）？`, confirmYes: "确认结束",
      transferPick: "请选择坐席或技能组…", groupAgents: "在线坐席", groupSkills: "技能组", full: "已满",
      noTargets: "暂无在线坐席", skillGroup: (s) => `技能组 · ${s}`,
      alerts: "提醒", alertsTitle: "页面不在前台时，新会话和客户消息响铃并弹出通知",
      quickReply: "快捷按钮", cannedSearch: "输入 / 搜索快捷回复", keys: "Alt+↓/↑ 切换会话 · Alt+A 接起 · Alt+W 结束",
      whisper: "主管悄悄话", takenOver: (by, w) => `${by} 已接管会话：${w}`,
      intents: { affirm: "肯定", broadband_repair: "宽带报修", change_package: "变更套餐", "complaint/business": "业务投诉",
                 "complaint/network": "网络投诉", "complaint/other": "其他投诉", "complaint/service": "服务投诉",
                 complaint_status: "投诉进度", deny: "否定", goodbye: "再见", greet: "问候", network_status: "网络状态",
                 number_porting: "携号转网", out_of_scope: "无关问题", query_balance: "查询余额", query_bill: "查询账单",
                 query_data_usage: "查询流量", query_package: "查询套餐", recharge: "充值", request_human: "转人工",
                 roaming: "国际漫游", sim_service: "SIM 卡业务", store_hours: "营业厅时间", thanks: "感谢",
                 unsubscribe: "退订业务", nlu_fallback: "未识别" },
    },
    en: {
      title: "Agent console", status: "Status", st_online: "Online", st_away: "Away", st_offline: "Offline", logout: "Log out",
      loginTitle: "Agent sign-in", loginName: "Username", loginPassword: "Password", loginSubmit: "Sign in",
      loginBusy: "Signing in…", loginMissing: "Enter your username and password", loginFailed: "Wrong username or password",
      expired: "Your session has expired, please sign in again", connecting: "Connecting…", open: "Live",
      closed: "Disconnected, reconnecting…", network: "Network error, please try again",
      callbacks: "Callbacks", cbEmpty: "No messages waiting for a callback", cbReplyPh: "Reply on the customer's channel…",
      cbReply: "Reply and close", cbDone: "Called back, close", cbHandled: "Handled",
      queue: "Queue", queueEmpty: "Nobody is waiting", myChats: "My chats",
      pickChat: "Accept a chat from the queue, or pick one of your chats above",
      accept: "Accept", waiting: "Waiting", overdue: "overdue", transfer: "Transfer", transferTo: "Transfer to",
      transferNote: "Note", transferSubmit: "Transfer", cancel: "Cancel",
      closeReason: "Disposition", closeChat: "Close chat", disp_resolved: "Resolved", disp_follow_up: "Follow-up needed",
      disp_complaint_registered: "Complaint registered", typing: "Customer is typing…", cannedLabel: "Canned replies",
      canned: "Canned reply…", cannedNone: "No canned replies", note: "Internal note",
      hint: "Enter to send · Shift+Enter for a new line", reply: "Reply", replyPh: "Type a reply…",
      notePh: "Internal note (never shown to the customer)…", send: "Send", addNote: "Add note", loading: "Loading…",
      profile: "Customer", noProfile: "No chat selected", phone: "Phone", name: "Name", tier: "Tier", plan: "Plan",
      district: "District", channel: "Channel", language: "Language", reason: "Reason", skills: "Skills", chatId: "Chat",
      supervisor: "Team overview", agentsLoad: "Agent load", breachesTitle: "SLA breaches", colAgent: "Agent",
      colStatus: "Status", colLoad: "Load", colSkills: "Skills", noAgents: "No agents", noBreaches: "No breaches",
      unassigned: "unassigned", unread: (n) => `${n} unread`, me: "Me", dismiss: "Dismiss",
      taken: "Another agent already took this chat", transferred: (w) => `Transferred: ${w}`,
      closedOk: (w) => `Chat closed: ${w}`, chatClosed: (w) => `Chat ended: ${w}`,
      chatRemoved: (w) => `Chat transferred away or re-queued: ${w}`, assigned: (w) => `New chat assigned to you: ${w}`,
      newReply: (w) => `New message from ${w}`,
      slaWarn: (w, c, left) => `${w}: ${c} SLA due in ${left}`, slaBreach: (w, c) => `${w}: ${c} SLA breached`,
      casesLink: "Cases", caseClocks: { first_response: "first response", solution: "solution" },
      caseAlert: (k, c, stage, left) => stage === "warn" ? `Case ${k}: ${c} due in ${left}`
        : stage === "breach" ? `Case ${k}: ${c} overdue, escalated to the supervisor`
        : `Case ${k}: ${c} long overdue, escalated to the department head`,
      targetMissing: "Pick whom to transfer to",
      kinds: { customer: "Customer", bot: "Bot", agent: "Agent", system: "System", note: "Internal note", event: "Event" },
      reasons: { request_human: "Asked for an agent", complaint: "Complaint", fallback: "Bot fallback", urgent: "Urgent", vip: "VIP" },
      complaints: { service: "Service complaint", business: "Business complaint", network: "Network complaint", other: "Other complaint" },
      tiers: { normal: "Normal", gold: "Gold", vip: "VIP" },
      channels: { webchat: "Web", socketio: "Web (Rasa)", rest: "API", sms: "SMS", telegram: "Telegram", wechat: "WeChat", weibo: "Weibo", forum: "Forum" },
      clocks: { pickup: "Pickup", first_reply: "First reply", complaint_first_response: "Complaint response" },
      roles: { agent: "Agent", supervisor: "Supervisor", admin: "Admin" },
      langs: { zh: "Chinese", en: "English" },
      atCapacity: "You are at capacity: close or transfer a chat first", visitor: "Visitor", chatRef: "Chat",
      ticket: "Ticket",
      events: { queued: "Queued", assigned: "Assigned", transferred: "Transferred", closed: "Closed",
                sla_breach: "SLA breached", escalated: "Widened to more skills", agent_lost: "Agent lost, re-queued",
                survey: "Survey", deadline: "Bot timed out", late_failed: "Reply failed", handoff: "To a human",
                backend_error: "Back-end error", backend_unavailable: "Back end unavailable", bound: "Number bound",
                unbound: "Number unbound", callback_message: "Message left", complaint: "Complaint registered",
                confirmation: "Awaiting confirmation", forum_private: "Forum private message",
                needs_account: "Verification needed", nlu_fallback: "Bot did not understand", otp_sent: "Code sent",
                sms_opt_in: "SMS opted in", sms_opt_out: "SMS opted out", write: "Account change",
                taken_over: "Taken over by a supervisor" },
      disps: { resolved: "Resolved", follow_up: "Follow-up needed", complaint_registered: "Complaint registered" },
      skillNames: { zh: "Chinese", en: "English", general: "General", network: "Network", business: "Business",
                    service: "Service" },
      score: (n) => `score ${n}`, toWhom: (w) => `to ${w}`,
      confirmClose: (w, d) => `Close the chat with ${w} (${d})?`, confirmYes: "Close it",
      transferPick: "Pick an agent or a skill group…", groupAgents: "Agents online", groupSkills: "Skill groups",
      full: "full", noTargets: "No agent online", skillGroup: (s) => `Skill group · ${s}`,
      alerts: "Alerts", alertsTitle: "Sound and a notification for a new chat or a customer's message while this tab is hidden",
      quickReply: "quick reply", cannedSearch: "Type / to search canned replies", keys: "Alt+↓/↑ next chat · Alt+A accept · Alt+W close",
      whisper: "Supervisor whisper", takenOver: (by, w) => `${by} took over the chat: ${w}`,
      intents: { affirm: "yes", broadband_repair: "broadband repair", change_package: "change plan",
                 "complaint/business": "business complaint", "complaint/network": "network complaint",
                 "complaint/other": "other complaint", "complaint/service": "service complaint",
                 complaint_status: "complaint status", deny: "no", goodbye: "goodbye", greet: "greeting",
                 network_status: "network status", number_porting: "number porting", out_of_scope: "out of scope",
                 query_balance: "balance", query_bill: "bill", query_data_usage: "data usage", query_package: "plan",
                 recharge: "top-up", request_human: "ask for an agent", roaming: "roaming", sim_service: "SIM service",
                 store_hours: "store hours", thanks: "thanks", unsubscribe: "unsubscribe", nlu_fallback: "not understood" },
    },
  };
  const TYPING_EVERY = 2000;     // ms between our "typing" frames
  const TYPING_SHOW = 4000;      // ms the customer's "typing…" line stays up
  const HEARTBEAT_EVERY = 10000;
  const RESYNC_EVERY = 10000;    // ms between re-reads of the queue and my chats (clocks, loads)
  const PIN_MS = 5000;           // a chat just accepted/assigned survives a (possibly stale) queue snapshot this long
  const SUPERVISORS = new Set(["supervisor", "admin"]);
  const KINDS = new Set(["customer", "bot", "agent", "system", "note", "event"]);

  const $ = (id) => document.getElementById(id);
  const hooks = { frame: [], overview: [], chat: [], render: [] };  // filled by agent-history.js
  const store = {
    get(key) { try { return localStorage.getItem("gw_agent." + key); } catch { return null; } },
    set(key, value) { try { localStorage.setItem("gw_agent." + key, value); } catch { /* memory only */ } },
  };
  const str = (v) => (v === undefined || v === null ? "" : String(v));
  const safe = (v) => str(v).replace(/[^a-z0-9_-]/gi, "");
  const pad = (n) => String(n).padStart(2, "0");
  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  let lang = store.get("lang") || document.body.dataset.lang;
  if (lang !== "en") lang = "zh";
  const t = () => UI[lang];
  const label = (group, key) => (key && t()[group][key]) || str(key);

  // ---- state -----------------------------------------------------------------------------------
  let me = null, csrf = "", myStatus = "online";
  let queue = [];                 // ChatSummary[] waiting for an agent
  const chats = new Map();        // my chats: String(id) -> chat record (see ensureChat)
  let order = [];                 // tab order (String ids)
  let selected = null;            // String id of the open chat
  let composerFor = null;         // String id of the chat whose draft the composer holds (sending goes there)
  let agents = [], breaches = [];
  let clockOffset = 0;            // ms to add to Date.now() to get the server's clock
  let ws = null, everOpen = false, backoff = 500, retryTimer = null, failures = 0;
  let lastTypingSent = 0, typingTimer = null;
  const gone = new Set();         // chats we closed/transferred ourselves: no toast for the server's echo
  const sigs = new WeakMap();     // DOM node -> signature of the data it was built from

  const now = () => (Date.now() + clockOffset) / 1000;
  const shortRef = (id) => str(id).slice(0, 8).toUpperCase();  // the reference the customer was told
  const ANONYMOUS = new Set(["", "访客", "Visitor"]);
  // The customer as the console names them: the masked number, else "访客 3F2A" (4 characters of the chat id).
  function customerLabel(summary) {
    const name = str(summary && summary.customer);
    return ANONYMOUS.has(name) ? `${t().visitor} ${shortRef(summary && summary.id).slice(0, 4)}` : name;
  }
  const chatLabel = (id) => {
    const key = str(id), chat = chats.get(key);
    const summary = chat ? chat.summary : queue.find((c) => str(c.id) === key);
    return summary ? customerLabel(summary) : `${t().chatRef} ${shortRef(key)}`;
  };
  const skillLabel = (s) => label("skillNames", s);
  const agentName = (name) => {  // a sign-in name as people know it
    if (me && name === me.name) return me.display_name || me.name;
    const found = agents.find((a) => a.name === name) || targets.agents.find((a) => a.name === name);
    return found ? found.display_name || str(name) : str(name);
  };
  let targets = { agents: [], skills: [] };  // whom a chat may be transferred to (GET /api/transfer-targets)
  const atCapacity = () => Boolean(me && Number(me.capacity) > 0 && chats.size >= Number(me.capacity));

  // ---- HTTP ------------------------------------------------------------------------------------
  let preciseClock = false;       // set once the server said its time (``now``, seconds) in a response
  function noteClock(res) {
    if (preciseClock) return;
    const date = Date.parse(res.headers.get("Date") || "");
    if (!Number.isFinite(date)) return;
    const diff = date + 500 - Date.now();          // the header has whole seconds
    clockOffset = Math.abs(diff) > 1500 ? diff : 0;  // ignore sub-second noise
  }

  async function api(method, path, body) {
    const headers = { Accept: "application/json" };
    const opts = { method, headers, credentials: "same-origin" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
    if (method !== "GET" && csrf) headers["X-CSRF-Token"] = csrf;
    let res;
    try { res = await fetch(path, opts); }
    catch { throw Object.assign(new Error(t().network), { status: 0 }); }
    noteClock(res);
    let data = null;
    try { data = await res.json(); } catch { data = null; }
    if (!res.ok) {
      // errors come in both languages: {"error": English, "error_zh": 中文}
      const text = data && (lang === "zh" && data.error_zh ? data.error_zh : data.error);
      const message = text ? str(text) : `HTTP ${res.status}`;
      if (res.status === 401 && me && path !== "/api/agent/login") loggedOut(true);
      throw Object.assign(new Error(message), { status: res.status });
    }
    return data;
  }
  const chatPath = (chat, tail) => `/api/chats/${encodeURIComponent(chat.id)}${tail}`;
  const fail = (err) => { if (err.status !== 401) toast(err.message, "error"); };

  // ---- formatting ------------------------------------------------------------------------------
  function fmtDur(sec) {
    sec = Math.max(0, Math.floor(sec || 0));
    const h = Math.floor(sec / 3600), m = Math.floor((sec % 3600) / 60), s = sec % 60;
    return h ? `${h}:${pad(m)}:${pad(s)}` : `${pad(m)}:${pad(s)}`;
  }
  function fmtClock(epoch, seconds) {
    const d = new Date(epoch * 1000);
    return `${pad(d.getHours())}:${pad(d.getMinutes())}` + (seconds ? `:${pad(d.getSeconds())}` : "");
  }
  function reasonText(c) {
    const parts = [label("reasons", c.reason)];
    if (c.complaint_type) parts.push(label("complaints", c.complaint_type));
    return parts.filter(Boolean).join(" · ");
  }

  // The nearest clock still running; when every clock has breached, the latest one (shown red).
  function nearestSla(summary) {
    const clocks = (Array.isArray(summary.sla) ? summary.sla : []).filter((c) => c && typeof c.due_at === "number");
    const open = clocks.filter((c) => !c.breached).sort((a, b) => a.due_at - b.due_at);
    return open[0] || clocks.sort((a, b) => b.due_at - a.due_at)[0] || null;
  }
  // style "queue": .sla-countdown/.sla-warn/.sla-breached (queue items); "tab": .tab-sla/.is-warn/.is-breached
  function slaNode(summary, style) {
    const clock = nearestSla(style === "tab" ? { sla: (summary.sla || []).filter((c) => c && c.clock !== "pickup") } : summary);
    if (!clock) return null;
    const node = el("span", style === "queue" ? "sla-countdown" : "tab-sla");
    node.dataset.due = clock.due_at;
    node.dataset.warn = typeof clock.warn_at === "number" ? clock.warn_at : "";
    node.dataset.clock = str(clock.clock);
    node.dataset.style = style;
    if (clock.breached) node.dataset.breached = "1";
    updateSla(node);
    return node;
  }
  function updateSla(node) {
    const n = now(), due = Number(node.dataset.due), warn = node.dataset.warn === "" ? NaN : Number(node.dataset.warn);
    const late = node.dataset.breached === "1" || n >= due;
    const warned = !late && Number.isFinite(warn) && n >= warn;
    const queueStyle = node.dataset.style === "queue";
    node.classList.toggle(queueStyle ? "sla-breached" : "is-breached", late);
    node.classList.toggle(queueStyle ? "sla-warn" : "is-warn", warned);
    const clock = label("clocks", node.dataset.clock), left = fmtDur(Math.abs(due - n));
    const value = late ? `${t().overdue} ${left}` : left;
    node.textContent = queueStyle ? `SLA ${clock} ${value}` : (late ? `-${left}` : left);
    node.title = `SLA ${clock}: ${value}`;
  }

  function tick() {
    const n = now();
    for (const node of document.querySelectorAll("[data-since]")) node.textContent = fmtDur(n - Number(node.dataset.since));
    for (const node of document.querySelectorAll("[data-due]")) updateSla(node);
  }

  // Keep DOM nodes whose data did not change (a focused/disabled button survives a snapshot).
  function reconcile(container, items, keyOf, sigOf, build) {
    const existing = new Map([...container.children].filter((n) => n.dataset.key).map((n) => [n.dataset.key, n]));
    items.forEach((item, i) => {
      const key = keyOf(item), sig = sigOf(item);
      let node = existing.get(key);
      existing.delete(key);
      if (!node || sigs.get(node) !== sig) {
        const fresh = build(item);
        fresh.dataset.key = key;
        sigs.set(fresh, sig);
        if (node) node.replaceWith(fresh);
        node = fresh;
      }
      if (container.children[i] !== node) container.insertBefore(node, container.children[i] || null);
    });
    for (const node of existing.values()) node.remove();
  }

  // ---- queue -----------------------------------------------------------------------------------
  function queueItem(c) {
    const li = el("li", "queue-item");
    li.dataset.chat = str(c.id);
    if (c.tier && c.tier !== "normal") li.classList.add("tier-" + safe(c.tier));
    if ((c.urgency || 0) >= 2 || c.reason === "urgent") li.classList.add("urgent");
    const top = el("div", "qi-top");
    top.append(el("span", "qi-customer", customerLabel(c)), el("span", "tag", label("channels", c.channel)));
    if (c.tier && c.tier !== "normal") top.append(el("span", "tag tag-tier", label("tiers", c.tier)));
    if (c.lang) top.append(el("span", "tag", c.lang === "en" ? "EN" : "中"));
    const reason = el("div", "qi-reason", reasonText(c));
    if (c.urgency) reason.append(el("span", "urgency", " " + "!".repeat(Math.min(3, c.urgency))));
    const meta = el("div", "qi-meta");
    const wait = el("span", "qi-wait", t().waiting + " ");
    if (typeof c.enqueued_at === "number") {
      const since = el("span", "wait-time");
      since.dataset.since = c.enqueued_at;
      since.textContent = fmtDur(now() - c.enqueued_at);
      wait.append(since);
    }
    meta.append(wait);
    const sla = slaNode(c, "queue");
    if (sla) meta.append(sla);
    const button = el("button", "accept-btn", t().accept);
    button.type = "button";
    button.setAttribute("aria-label", `${t().accept}: ${customerLabel(c)}`);
    button.addEventListener("click", () => accept(c, button));
    meta.append(button);
    li.append(top, reason, meta);
    if (Array.isArray(c.skills) && c.skills.length) li.append(el("div", "qi-skills", c.skills.map(skillLabel).join(" · ")));
    return li;
  }

  // ---- callback tasks: messages customers left when no one could answer -------------------------------
  let callbacks = [];
  function callbackItem(c) {
    const li = el("li", "queue-item cb-item");
    li.dataset.callback = str(c.id);
    const top = el("div", "qi-top");
    top.append(el("span", "qi-customer", c.customer || "—"), el("span", "tag", label("channels", c.channel)),
      el("span", "tag", str(c.id)));
    const reason = el("div", "qi-reason", reasonText(c));
    const texts = el("div", "cb-texts");
    if (c.text) texts.append(el("p", "cb-text", c.text));
    for (const m of c.messages || []) texts.append(el("p", "cb-message", m.text));
    const meta = el("div", "qi-meta");
    if (typeof c.at === "number") meta.append(el("span", "qi-wait", fmtClock(c.at)));
    const box = el("textarea", "cb-reply");
    box.rows = 2;
    box.placeholder = t().cbReplyPh;
    const replyBtn = el("button", "accept-btn cb-reply-btn", t().cbReply);
    replyBtn.type = "button";
    replyBtn.addEventListener("click", () => handleCallback(c, "reply", box.value, replyBtn));
    const doneBtn = el("button", "btn btn-ghost cb-done-btn", t().cbDone);
    doneBtn.type = "button";
    doneBtn.addEventListener("click", () => handleCallback(c, "done", "", doneBtn));
    meta.append(replyBtn, doneBtn);
    li.append(top, reason, texts, box, meta);
    return li;
  }

  function renderCallbacks() {
    reconcile($("cb-list"), callbacks, (c) => str(c.id), (c) => lang + JSON.stringify(c), callbackItem);
    $("cb-count").textContent = String(callbacks.length);
    $("cb-empty").hidden = callbacks.length > 0;
  }

  async function refreshCallbacks() {
    if (!me) return;
    try { callbacks = (await api("GET", "/api/callbacks")).callbacks || []; renderCallbacks(); }
    catch (err) { fail(err); }
  }

  async function handleCallback(c, action, text, button) {
    if (action === "reply" && !text.trim()) return;
    button.disabled = true;
    try {
      await api("POST", `/api/callbacks/${encodeURIComponent(c.id)}/${action}`, action === "reply" ? { text } : {});
      toast(t().cbHandled, "ok");
    } catch (err) { fail(err); }
    finally { button.disabled = false; refreshCallbacks(); }
  }

  function renderQueue() {
    reconcile($("queue-list"), queue, (c) => str(c.id), (c) => lang + JSON.stringify(c), queueItem);
    $("queue-count").textContent = String(queue.length);
    $("queue-empty").hidden = queue.length > 0;
    renderCapacity();
  }
  // At capacity: no accept button works (the server would refuse), and the console says why.
  function renderCapacity() {
    const full = atCapacity();
    $("capacity-note").hidden = !full;
    for (const button of $("queue-list").querySelectorAll(".accept-btn")) {
      if (full) { button.disabled = true; button.title = t().atCapacity; button.dataset.full = "1"; }
      else if (button.dataset.full) { button.disabled = false; button.title = ""; delete button.dataset.full; }
    }
  }

  function applyQueue(data) {
    if (!data || typeof data !== "object") return;
    if (Array.isArray(data.mine)) {
      const ids = [];
      for (const s of data.mine) {
        if (!s || s.id == null || s.state === "closed" || gone.has(str(s.id))) continue;
        ensureChat(s);
        ids.push(str(s.id));
      }
      const pinned = order.filter((id) => !ids.includes(id) && chats.get(id).pinnedUntil > Date.now());
      for (const id of order) if (!ids.includes(id) && !pinned.includes(id)) dropChat(id);
      // tabs keep their places (the server's list has no stable order): new chats go to the end
      order = [...order.filter((id) => chats.has(id)), ...ids.filter((id) => !order.includes(id))];
    }
    if (Array.isArray(data.chats)) {
      queue = data.chats.filter((c) => c && c.id != null && (c.state || "queued") === "queued" && !chats.has(str(c.id)));
    }
    if (Array.isArray(data.agents)) agents = data.agents;
    if (Array.isArray(data.breaches)) breaches = data.breaches;
    renderQueue();
    renderCallbacks();
    renderTabs();
    if (selected) renderHead(chats.get(selected));
    renderSupervisor();
    for (const hook of hooks.overview) hook(data);
  }

  // The server's time (``now``) against the middle of the round trip: the clocks count as the server's do.
  function serverTime(sent, data) {
    if (!data || typeof data.now !== "number") return;
    clockOffset = data.now * 1000 - (sent + Date.now()) / 2;
    preciseClock = true;
  }

  async function refreshQueue() {
    if (!me) return;
    const sent = Date.now();
    try {
      const data = await api("GET", "/api/queue");
      serverTime(sent, data);
      applyQueue(data);
    } catch (err) { if (err.status !== 401) console.warn(err); }
  }
  let refreshDue = null;  // a re-read soon after a change (several changes make one)
  function refreshSoon(ms) {
    if (refreshDue) return;
    refreshDue = setTimeout(() => { refreshDue = null; refreshQueue(); }, ms || 700);
  }

  async function accept(c, button) {
    button.disabled = true;
    try {
      const data = await api("POST", `/api/chats/${encodeURIComponent(c.id)}/accept`);
      gone.delete(str(c.id));
      const chat = ensureChat((data && data.chat) || c);
      chat.pinnedUntil = Date.now() + PIN_MS;
      if (data && data.chat) setDetail(chat, data.chat);
      queue = queue.filter((q) => str(q.id) !== chat.id);
      renderQueue();
      select(chat.id, true);
    } catch (err) {
      button.disabled = false;
      if (err.status === 409) {  // the server says which: taken, closed, or our capacity
        toast(atCapacity() || /capacity|上限|已满/.test(err.message) ? t().atCapacity : err.message || t().taken, "warn");
        refreshQueue();
      } else fail(err);
    }
  }

  // ---- my chats --------------------------------------------------------------------------------
  function ensureChat(summary) {
    const { transcript, profile, ...rest } = summary;
    const id = str(rest.id);
    let chat = chats.get(id);
    if (!chat) {
      chat = { id, rawId: rest.id, summary: rest, transcript: null, early: [], keys: new Set(), profile: null,
               unread: 0, canned: null, draft: "", pinnedUntil: 0, typingUntil: 0, loading: null };
      chats.set(id, chat);
      order.push(id);
    } else {
      chat.summary = { ...chat.summary, ...rest };
    }
    return chat;
  }

  function dropChat(id) {
    id = str(id);
    chats.delete(id);
    order = order.filter((x) => x !== id);
    if (composerFor === id) {
      composerFor = null;
      $("reply-input").value = "";
      delete $("reply-form").dataset.chat;
    }
    if (selected === id) {
      selected = null;
      hideClose();
      renderChat();
    }
  }

  function chatTab(chat) {
    const s = chat.summary, active = chat.id === selected;
    const tab = el("button", "chat-tab" + (active ? " active" : "") + (chat.unread ? " has-unread" : ""));
    tab.type = "button";
    tab.dataset.chat = chat.id;
    tab.setAttribute("role", "tab");
    tab.setAttribute("aria-selected", String(active));
    tab.setAttribute("aria-controls", "chat-pane");
    tab.append(el("span", "tab-customer", customerLabel(s)), el("span", "tab-channel", label("channels", s.channel)));
    const sla = slaNode(s, "tab");
    if (sla) tab.append(sla);
    const badge = el("span", "badge", chat.unread ? String(chat.unread) : "");
    badge.hidden = !chat.unread;
    if (chat.unread) badge.setAttribute("aria-label", t().unread(chat.unread));
    tab.append(badge);
    tab.addEventListener("click", () => select(chat.id, true));
    return tab;
  }

  function renderTabs() {
    const list = order.map((id) => chats.get(id)).filter(Boolean);
    reconcile($("my-chats"), list, (c) => c.id,
      (c) => [lang, JSON.stringify(c.summary), c.id === selected, c.unread].join("|"), chatTab);
    const unread = list.reduce((sum, c) => sum + c.unread, 0);
    document.title = (unread ? `(${unread}) ` : "") + t().title;
    renderCapacity();
  }

  function select(id, focus) {
    const chat = chats.get(str(id));
    if (!chat) return;
    const input = $("reply-input");
    const previous = chats.get(composerFor);
    if (previous) { previous.draft = input.value; previous.noteMode = $("note-toggle").checked; }
    if (composerFor !== chat.id) {
      input.value = chat.draft;
      $("note-toggle").checked = Boolean(chat.noteMode);
      $("close-select").value = chat.disposition || "resolved";  // the close reason is per chat too
      hideTransfer();
      hideClose();
      hideCannedPop();
    }
    composerFor = chat.id;
    $("reply-form").dataset.chat = chat.id;  // the composer names its chat: sending goes there
    selected = chat.id;
    chat.unread = 0;
    renderTabs();
    renderChat();
    loadDetail(chat);
    loadCanned(chat);
    if (focus) input.focus();
  }

  // ---- transcript ------------------------------------------------------------------------------
  const entryKey = (e) => `${e.kind}|${e.at}|${e.text}`;
  const isMine = (e) => (e.kind === "agent" || e.kind === "note") && me && (e.agent === me.name ||
    e.agent === me.display_name || Object.values(me.names || {}).includes(e.agent));  // entries carry display names

  // Returns true when the entry is new. Entries that arrive before the transcript is loaded wait in `early`.
  function addEntry(chat, entry) {
    if (!entry || typeof entry !== "object") return false;
    const key = entryKey(entry);
    if (chat.keys.has(key)) return false;
    chat.keys.add(key);
    if (!chat.transcript) { chat.early.push(entry); return true; }
    chat.transcript.push(entry);
    if (chat.id === selected) appendEntry(entry, isMine(entry));
    return true;
  }

  function setDetail(chat, detail) {
    const { transcript, profile, ...summary } = detail || {};
    chat.summary = { ...chat.summary, ...summary };
    if (profile && typeof profile === "object") chat.profile = profile;
    // merge: what the server sent, plus anything that arrived meanwhile (frames, POST replies)
    const all = [...(Array.isArray(transcript) ? transcript : []), ...(chat.transcript || []), ...chat.early];
    chat.transcript = [];
    chat.early = [];
    chat.keys = new Set();
    for (const entry of all) {
      if (!entry || typeof entry !== "object" || chat.keys.has(entryKey(entry))) continue;
      chat.keys.add(entryKey(entry));
      chat.transcript.push(entry);
    }
    chat.transcript.sort((a, b) => (Number(a.at) || 0) - (Number(b.at) || 0));  // stable
    if (chat.id === selected) renderChat();
  }

  async function loadDetail(chat, force) {
    if ((chat.transcript && !force) || chat.loading) return;
    chat.loading = api("GET", chatPath(chat, ""));
    try {
      const detail = await chat.loading;
      if (chats.get(chat.id) === chat) setDetail(chat, detail);
    } catch (err) {
      if (err.status === 403 || err.status === 404) { dropChat(chat.id); renderTabs(); }
      fail(err);
    } finally {
      chat.loading = null;
    }
  }

  // An event in the agent's language ("排队 · 投诉", "超时 · 首次回复"); a button the customer clicked by its title.
  function entryText(e) {
    if (e.kind === "customer") return str(e.display) || (/^\/[a-z_]+(\{.*\})?$/is.test(str(e.text)) ? `[${t().quickReply}]` : str(e.text));
    if (e.kind !== "event" || !e.event || !t().events[e.event]) return str(e.text);
    const parts = [t().events[e.event]];
    if (e.reason) parts.push(label("reasons", e.reason));
    if (e.complaint_type) parts.push(label("complaints", e.complaint_type));
    if (e.clock) parts.push(label("clocks", e.clock));
    if (e.disposition) parts.push(label("disps", e.disposition));
    if (e.to) parts.push(t().toWhom(agentName(e.to)));
    else if (e.agent) parts.push(agentName(e.agent));
    if (Array.isArray(e.skills) && e.skills.length) parts.push(e.skills.map(skillLabel).join("、"));
    if (e.score !== undefined && e.score !== null) parts.push(t().score(e.score));
    return parts.join(" · ");
  }

  function entryNode(e) {
    const kind = KINDS.has(e.kind) ? e.kind : "event";
    const item = el("div", `entry entry-${kind}` + (e.whisper ? " entry-whisper" : ""));
    const meta = el("div", "entry-meta");
    let who = e.whisper ? t().whisper : t().kinds[kind];
    if ((kind === "agent" || kind === "note") && e.agent) who += " · " + agentName(e.agent);
    meta.append(el("span", "entry-who", who));
    if (typeof e.at === "number") {
      const time = el("time", "entry-time", fmtClock(e.at));
      time.dateTime = new Date(e.at * 1000).toISOString();
      meta.append(time);
    }
    item.append(meta, el("div", "entry-text", entryText(e)));
    if (e.nlu && typeof e.nlu === "object" && e.nlu.intent) {
      const conf = typeof e.nlu.confidence === "number" ? " " + e.nlu.confidence.toFixed(2) : "";
      const ct = e.nlu.complaint_type ? ` · ${label("complaints", e.nlu.complaint_type)}` : "";
      item.append(el("div", "entry-nlu", `NLU ${label("intents", e.nlu.intent)}${conf}${ct}`));
    }
    return item;
  }

  const transcriptBox = $("transcript");
  const nearBottom = () => transcriptBox.scrollHeight - transcriptBox.scrollTop - transcriptBox.clientHeight < 80;
  const toBottom = () => { transcriptBox.scrollTop = transcriptBox.scrollHeight; };
  function appendEntry(entry, force) {
    const stick = force || nearBottom();
    transcriptBox.append(entryNode(entry));
    if (stick) toBottom();
  }

  function updateTyping() {
    clearTimeout(typingTimer);
    const chat = chats.get(selected);
    const left = chat ? chat.typingUntil - Date.now() : 0;
    $("typing-indicator").hidden = left <= 0;
    if (left > 0) typingTimer = setTimeout(updateTyping, left + 50);
  }

  // ---- selected chat ---------------------------------------------------------------------------
  function renderHead(chat) {
    if (!chat) return;
    const s = chat.summary;
    $("chat-title").textContent = customerLabel(s);
    const meta = [label("channels", s.channel), reasonText(s), label("tiers", s.tier), label("langs", s.lang)];
    $("chat-meta").textContent = meta.filter(Boolean).join(" · ");
  }

  function renderProfile(chat) {
    const box = $("profile");
    box.replaceChildren();
    if (!chat) { box.append(el("p", "empty", t().noProfile)); return; }
    const p = chat.profile || {}, s = chat.summary;
    const rows = [
      [t().phone, p.phone], [t().name, p.name], [t().tier, label("tiers", p.tier || s.tier)], [t().plan, p.plan],
      [t().district, p.district], [t().channel, label("channels", s.channel)], [t().language, label("langs", s.lang)],
      [t().reason, reasonText(s)], [t().skills, Array.isArray(s.skills) ? s.skills.map(skillLabel).join("、") : ""],
      [t().ticket, s.ticket], [t().chatId, shortRef(chat.id)],
    ];
    const dl = el("dl", "profile-list");
    for (const [name, value] of rows) dl.append(el("dt", "", name), el("dd", "", str(value) || "—"));
    box.append(dl);
  }

  function renderCanned(chat) {
    const select = $("canned-select");
    const list = chat && Array.isArray(chat.canned) ? chat.canned : [];
    const first = el("option", "", chat && chat.canned && !list.length ? t().cannedNone : t().canned);
    first.value = "";
    select.replaceChildren(first);
    list.forEach((item, i) => {
      const option = el("option", "", str(item && (item.title || item.id)));
      option.value = String(i);
      option.title = str(item && item.text);
      select.append(option);
    });
    select.disabled = !list.length;
  }

  async function loadCanned(chat) {
    if (!chat.canned) {
      try {
        const list = await api("GET", chatPath(chat, "/canned"));
        chat.canned = Array.isArray(list) ? list : [];
      } catch (err) {
        if (err.status !== 401) console.warn(err);
      }
    }
    if (chat.id === selected) renderCanned(chat);
  }

  // "/" at the start of the composer searches the canned replies (title or text); ↑/↓ choose, Enter/Tab insert.
  let cannedHits = [], cannedAt = 0;
  function hideCannedPop() { cannedHits = []; $("canned-pop").hidden = true; }
  function renderCannedPop() {
    const chat = chats.get(composerFor), value = $("reply-input").value;
    if (!chat || !value.startsWith("/") || value.includes("\n") || !Array.isArray(chat.canned)) { hideCannedPop(); return; }
    const query = value.slice(1).trim().toLowerCase();
    cannedHits = chat.canned.filter((c) => !query || [c.id, c.title, c.text].some((v) => str(v).toLowerCase().includes(query)));
    cannedAt = Math.min(cannedAt, Math.max(0, cannedHits.length - 1));
    const pop = $("canned-pop");
    pop.replaceChildren();
    cannedHits.slice(0, 8).forEach((item, i) => {
      const li = el("li", "canned-hit" + (i === cannedAt ? " active" : ""));
      li.setAttribute("role", "option");
      li.setAttribute("aria-selected", String(i === cannedAt));
      li.append(el("strong", "", str(item.title || item.id)), el("span", "", str(item.text)));
      li.addEventListener("mousedown", (event) => { event.preventDefault(); pickCanned(i); });
      pop.append(li);
    });
    if (!cannedHits.length) pop.append(el("li", "empty", t().cannedNone));
    pop.hidden = false;
  }
  function pickCanned(i) {
    const item = cannedHits[i], input = $("reply-input"), chat = chats.get(composerFor);
    if (!item) return;
    input.value = str(item.text);
    if (chat) chat.draft = input.value;
    hideCannedPop();
    input.focus();
  }
  function cannedPopKey(event) {
    if ($("canned-pop").hidden || event.isComposing) return false;
    const count = Math.min(cannedHits.length, 8);
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      if (!count) return false;
      event.preventDefault();
      cannedAt = (cannedAt + (event.key === "ArrowDown" ? 1 : count - 1)) % count;
      renderCannedPop();
      return true;
    }
    if ((event.key === "Enter" || event.key === "Tab") && !event.shiftKey && count) {
      event.preventDefault();
      pickCanned(cannedAt);
      return true;
    }
    if (event.key === "Escape") { hideCannedPop(); return true; }
    return false;
  }

  function renderReplyMode() {
    const note = $("note-toggle").checked;
    $("reply-form").classList.toggle("note-mode", note);
    $("reply-input").placeholder = note ? t().notePh : t().replyPh;
    $("reply-send").textContent = note ? t().addNote : t().send;
  }

  function renderChat() {
    const chat = chats.get(selected);
    $("chat-pane").hidden = !chat;
    $("chat-empty").hidden = Boolean(chat);
    renderProfile(chat);
    for (const hook of hooks.chat) hook(chat || null);  // agent-history.js: the customer's history
    renderCanned(chat);
    renderReplyMode();
    updateTyping();
    transcriptBox.replaceChildren();
    if (!chat) return;
    renderHead(chat);
    if (!chat.transcript) transcriptBox.append(el("p", "empty", t().loading));
    else for (const entry of chat.transcript) transcriptBox.append(entryNode(entry));
    toBottom();
  }

  // ---- actions on the selected chat ------------------------------------------------------------
  // The text goes to the chat the composer belongs to (its draft), whatever has been pushed meanwhile.
  async function sendReply() {
    const form = $("reply-form"), input = $("reply-input");
    const target = form.dataset.chat;
    const chat = target ? chats.get(target) : null;
    const text = input.value.trim();
    if (!chat || !text || target !== composerFor) return;
    const note = $("note-toggle").checked;
    input.value = "";
    chat.draft = "";
    try {
      const data = await api("POST", chatPath(chat, note ? "/notes" : "/messages"), { text });
      if (data && Array.isArray(data.sla) && chats.get(chat.id) === chat) {  // the clocks as the server has them now
        chat.summary = { ...chat.summary, sla: data.sla };
        renderTabs();
      }
      if (data && data.entry && chats.get(chat.id) === chat && addEntry(chat, data.entry) && chat.id === selected) toBottom();
    } catch (err) {
      if (composerFor !== chat.id) { if (!chat.draft) chat.draft = text; }  // switched away meanwhile
      else if (!input.value) { input.value = text; chat.draft = text; }      // give the text back to retry
      fail(err);
    }
  }

  function hideTransfer() {
    $("transfer-form").hidden = true;
    $("transfer-btn").setAttribute("aria-expanded", "false");
  }

  // Whom to transfer to, as the server has it now: agents online (never away or offline) and skill groups.
  function fillTransferOptions() {
    const select = $("transfer-target"), previous = select.value;
    const first = el("option", "", t().transferPick);
    first.value = "";
    const people = el("optgroup");
    people.label = targets.agents.length ? t().groupAgents : `${t().groupAgents}（${t().noTargets}）`;
    for (const a of targets.agents) {
      const option = el("option", "", `${a.display_name || a.name}（${str(a.load)}/${str(a.capacity)}${a.full ? " " + t().full : ""}）`);
      option.value = "agent:" + str(a.name);
      option.disabled = Boolean(a.full);
      people.append(option);
    }
    const groups = el("optgroup");
    groups.label = t().groupSkills;
    for (const skill of targets.skills) {
      const option = el("option", "", t().skillGroup(skillLabel(skill)));
      option.value = "skill:" + str(skill);
      groups.append(option);
    }
    select.replaceChildren(first, people, groups);
    select.value = [...select.options].some((o) => o.value === previous && !o.disabled) ? previous : "";
  }
  async function loadTargets() {
    try {
      const data = await api("GET", "/api/transfer-targets");
      targets = { agents: Array.isArray(data && data.agents) ? data.agents : [],
                  skills: Array.isArray(data && data.skills) ? data.skills : [] };
    } catch (err) { fail(err); }
    fillTransferOptions();
  }

  // Transfer and close both end the chat for us: on success the tab goes away.
  async function leaveChat(chat, tail, body, button, done) {
    if (!chat || !chats.has(chat.id)) return false;
    button.disabled = true;
    try {
      await api("POST", chatPath(chat, tail), body);
      gone.add(chat.id);
      toast(done(chatLabel(chat.id)), "info");
      dropChat(chat.id);
      renderTabs();
      return true;
    } catch (err) {
      fail(err);
      return false;
    } finally {
      button.disabled = false;
    }
  }

  async function transfer() {
    const target = $("transfer-target").value;
    if (!target) { toast(t().targetMissing, "warn"); $("transfer-target").focus(); return; }
    const body = target.startsWith("skill:") ? { to_skill: target.slice(6) } : { to_agent: target.slice(6) };
    body.note = $("transfer-note").value.trim();
    if (await leaveChat(chats.get(selected), "/transfer", body, $("transfer-submit"), t().transferred)) {
      $("transfer-target").value = $("transfer-note").value = "";
      hideTransfer();
    }
  }

  // ---- supervisors -----------------------------------------------------------------------------
  function renderSupervisor() {
    const show = Boolean(me && SUPERVISORS.has(me.role));
    $("supervisor-panel").hidden = !show;
    if (!show) return;
    const body = $("agents-load").tBodies[0];
    body.replaceChildren();
    for (const a of agents) {
      const row = el("tr");
      row.dataset.agent = str(a.name);
      const name = el("td", "", a.display_name || a.name);
      const status = el("td");
      status.append(el("span", "dot dot-" + safe(a.status)), document.createTextNode(t()["st_" + safe(a.status)] || str(a.status)));
      const full = Number(a.load) >= Number(a.capacity);
      const load = el("td", full ? "load full" : "load", `${str(a.load)}/${str(a.capacity)}`);
      row.append(name, status, load, el("td", "skills", (a.skills || []).map(skillLabel).join("、")));
      body.append(row);
    }
    if (!agents.length) {
      const row = el("tr"), cell = el("td", "empty", t().noAgents);
      cell.colSpan = 4;
      row.append(cell);
      body.append(row);
    }
    const list = $("breaches");
    list.replaceChildren();
    const recent = [...breaches].sort((a, b) => (b.at || 0) - (a.at || 0)).slice(0, 50);
    for (const b of recent) {
      const item = el("li", "breach");
      item.dataset.chat = str(b.chat);
      item.append(el("span", "breach-chat", chatLabel(b.chat)), el("span", "breach-clock", label("clocks", b.clock)),
        el("time", "breach-time", typeof b.at === "number" ? fmtClock(b.at, true) : ""),
        el("span", "breach-agent", b.agent ? agentName(b.agent) : t().unassigned));
      list.append(item);
    }
    if (!recent.length) list.append(el("li", "empty", t().noBreaches));
  }

  // ---- toasts ----------------------------------------------------------------------------------
  // ---- notifications: a new chat or a customer's reply while the console is hidden (a setting) -----
  let alerts = store.get("alerts") === "1", audio = null;
  function beep() {
    try {
      audio = audio || new AudioContext();
      const osc = audio.createOscillator(), gain = audio.createGain();
      osc.frequency.value = 880;
      gain.gain.value = 0.05;
      osc.connect(gain).connect(audio.destination);
      osc.start();
      osc.stop(audio.currentTime + 0.15);
    } catch { /* no sound here */ }
  }
  function notify(kind, id) {
    if (!alerts || !document.hidden) return;
    beep();
    if (!("Notification" in window) || Notification.permission !== "granted") return;
    try {
      const body = (kind === "newChat" ? t().assigned : t().newReply)(chatLabel(id));
      const note = new Notification(t().title, { body, tag: `chat-${id}` });
      note.onclick = () => { window.focus(); select(id, true); note.close(); };
    } catch { /* notifications refused */ }
  }

  function toast(text, kind, ms) {
    const box = $("toasts");
    const item = el("div", `toast toast-${kind || "info"}`);
    if (kind === "breach" || kind === "error") item.setAttribute("role", "alert");
    item.append(el("span", "toast-text", text));
    const close = el("button", "toast-close", "×");
    close.type = "button";
    close.setAttribute("aria-label", t().dismiss);
    close.addEventListener("click", () => item.remove());
    item.append(close);
    box.append(item);
    while (box.children.length > 5) box.firstElementChild.remove();
    setTimeout(() => item.remove(), ms || (kind === "breach" ? 15000 : 7000));
  }

  // Mark a clock breached locally until the next snapshot says so too.
  function markBreached(id, clockName) {
    const key = str(id);
    for (const s of [...queue, ...[...chats.values()].map((c) => c.summary)]) {
      if (str(s.id) !== key || !Array.isArray(s.sla)) continue;
      s.sla = s.sla.map((c) => (c.clock === clockName ? { ...c, breached: true } : c));
    }
  }

  // ---- WebSocket -------------------------------------------------------------------------------
  function onFrame(frame) {
    for (const hook of hooks.frame) if (hook(frame)) return;  // agent-history.js: a watched chat's frames
    if (!frame || typeof frame !== "object") return;
    const chat = frame.chat != null && typeof frame.chat !== "object" ? chats.get(str(frame.chat)) : null;
    switch (frame.type) {
      case "hello":
        backoff = 500;  // a server that says hello is healthy: the next drop starts the back-off anew
        if (frame.agent && typeof frame.agent === "object") { me = { ...me, ...frame.agent }; }
        if (typeof frame.status === "string") myStatus = frame.status;
        renderHeader();
        refreshMe();  // presence as the server has it now (after a restart it may differ from what we showed)
        return;
      case "queue":
        applyQueue(frame);
        return;
      case "queue_add": {  // one chat entered the queue (the full snapshot follows a little later)
        const c = frame.chat;
        if (!c || typeof c !== "object" || c.id == null || chats.has(str(c.id))) return;
        if (!queue.some((q) => str(q.id) === str(c.id))) {
          queue = [...queue, c].sort((a, b) => (a.enqueued_at - a.priority) - (b.enqueued_at - b.priority));
          renderQueue();
        }
        return;
      }
      case "queue_remove":  // a chat left the queue (taken by someone, or closed)
        if (queue.some((q) => str(q.id) === str(frame.chat))) {
          queue = queue.filter((q) => str(q.id) !== str(frame.chat));
          renderQueue();
        }
        return;
      case "assigned": {
        if (!frame.chat || typeof frame.chat !== "object") return;
        gone.delete(str(frame.chat.id));
        const mine = ensureChat(frame.chat);
        mine.pinnedUntil = Date.now() + PIN_MS;
        refreshSoon();  // its clocks as they stand once the assignment is through
        queue = queue.filter((q) => str(q.id) !== mine.id);
        renderQueue();
        toast(t().assigned(chatLabel(mine.id)), "info");
        if (!selected) select(mine.id, false);  // an open chat (and its draft) is never taken away
        else { mine.unread = Math.max(mine.unread, 1); renderTabs(); }
        notify("newChat", mine.id);
        return;
      }
      case "message": {
        if (!chat || !frame.entry) { if (!chat) refreshQueue(); return; }
        const entry = frame.entry;
        if (entry.kind === "customer") { chat.typingUntil = 0; updateTyping(); }
        const fresh = addEntry(chat, entry);
        if (fresh && chat.id !== selected && !isMine(entry)) {
          chat.unread += 1;
          renderTabs();
        }
        if (fresh && entry.kind === "customer") notify("reply", chat.id);
        if (fresh && entry.kind === "agent") refreshSoon();  // a first reply stops clocks: re-read them
        return;
      }
      case "typing":
        if (chat && frame.from === "customer") {
          chat.typingUntil = Date.now() + TYPING_SHOW;
          updateTyping();
        }
        return;
      case "chat_closed":
      case "chat_removed": {
        const id = str(frame.chat);
        if (!chats.has(id)) return;
        if (frame.reason === "taken_over") toast(t().takenOver(str(frame.by), chatLabel(id)), "warn");
        else if (!gone.has(id)) toast((frame.type === "chat_closed" ? t().chatClosed : t().chatRemoved)(chatLabel(id)), "info");
        dropChat(id);
        renderTabs();
        return;
      }
      case "sla_warning": {
        const left = typeof frame.due_at === "number" ? fmtDur(frame.due_at - now()) : "";
        toast(t().slaWarn(chatLabel(frame.chat), label("clocks", frame.clock), left), "warn");
        return;
      }
      case "sla_breach":
        markBreached(frame.chat, frame.clock);
        renderQueue();
        renderTabs();
        toast(t().slaBreach(chatLabel(frame.chat), label("clocks", frame.clock)), "breach");
        return;
      case "case_alert": {  // a complaint case's clock (handoff/cases): warned, breached, escalated
        const left = typeof frame.due_at === "number" ? fmtDur(frame.due_at - now()) : "";
        const clock = t().caseClocks[frame.clock] || String(frame.clock || "");
        toast(t().caseAlert(String(frame.ticket || ""), clock, frame.stage, left), frame.stage === "warn" ? "warn" : "breach");
        return;
      }
      case "callbacks_changed":
        refreshCallbacks();
        break;
      case "agents":
        if (Array.isArray(frame.agents)) agents = frame.agents;
        if (Array.isArray(frame.breaches)) breaches = frame.breaches;
        renderSupervisor();
        for (const hook of hooks.overview) hook(frame);
        return;
      default:
        return;  // unknown frame types are ignored (forward compatible)
    }
  }

  function setConn(state) {
    const node = $("conn-status");
    node.hidden = state === "idle";
    node.dataset.state = state;
    node.textContent = state === "idle" ? "" : t()[state];
  }

  function connect() {
    clearTimeout(retryTimer);
    retryTimer = null;
    if (!me) return;
    setConn(everOpen ? "closed" : "connecting");
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    let sock;
    try {
      sock = new WebSocket(`${proto}//${location.host}/ws/agent`);
    } catch (err) {
      console.error(err);
      scheduleReconnect();
      return;
    }
    ws = sock;
    sock.onopen = () => {
      if (ws !== sock) return;
      failures = 0;
      setConn("open");
      resync(everOpen);
      everOpen = true;
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
      if (!me) return;
      failures += 1;
      setConn("closed");
      scheduleReconnect();
    };
  }

  function scheduleReconnect() {
    if (retryTimer || !me) return;
    const delay = backoff + Math.random() * 250;
    backoff = Math.min(backoff * 2, 15000);
    retryTimer = setTimeout(async () => {
      retryTimer = null;
      if (failures >= 2) {  // keeps failing: is the session still valid? (a 401 shows the login form)
        try {
          const data = await api("GET", "/api/agent/me");
          if (data && data.csrf) csrf = str(data.csrf);
        } catch (err) {
          if (err.status === 401) return;
        }
      }
      connect();
    }, delay);
  }

  // After a reconnect frames may have been missed: re-read the queue and the open transcript.
  function resync(reconnected) {
    refreshQueue();
    refreshCallbacks();
    if (!reconnected) return;
    for (const chat of chats.values()) {
      chat.canned = null;
      if (chat.id === selected) loadDetail(chat, true);
      else { chat.transcript = null; chat.early = []; chat.keys = new Set(); }
    }
  }

  const wsSend = (frame) => {
    if (!ws || ws.readyState !== WebSocket.OPEN) return false;
    ws.send(JSON.stringify(frame));
    return true;
  };

  // ---- session ---------------------------------------------------------------------------------
  function renderHeader() {
    if (!me) return;
    $("agent-name").textContent = me.display_name || me.name || "";
    $("agent-role").textContent = label("roles", me.role);
    $("status-select").value = ["online", "away", "offline"].includes(myStatus) ? myStatus : "online";
    document.body.dataset.status = safe(myStatus);
  }

  async function refreshMe() {
    try {
      const data = await api("GET", "/api/agent/me");
      if (!data || !me) return;
      if (data.csrf) csrf = str(data.csrf);
      if (data.agent && typeof data.agent === "object") me = { ...me, ...data.agent };
      if (typeof data.status === "string") myStatus = data.status;
      renderHeader();
      renderQueue();
    } catch (err) { if (err.status !== 401) console.warn(err); }
  }

  function loggedIn(data) {
    if (!data || !data.agent) { loggedOut(false); return; }
    me = data.agent;
    csrf = str(data.csrf);
    myStatus = data.status || "online";
    $("login-error").hidden = true;
    $("login-form").hidden = true;
    $("login-view").hidden = true;
    $("console").hidden = false;
    $("agent-box").hidden = false;
    renderAll();
    refreshQueue();
    refreshCallbacks();
    connect();
  }

  function loggedOut(expired) {
    const sock = ws;
    ws = null;  // first, so its onclose does not schedule a reconnect
    if (sock) { try { sock.close(1000); } catch { /* already closed */ } }
    clearTimeout(retryTimer);
    [me, csrf, retryTimer, everOpen, backoff, failures] = [null, "", null, false, 500, 0];
    [order, queue, selected, composerFor, agents, breaches, callbacks] = [[], [], null, null, [], [], []];
    $("reply-input").value = "";
    chats.clear();
    $("console").hidden = true;
    $("agent-box").hidden = true;
    $("login-view").hidden = false;
    $("login-form").hidden = false;
    setConn("idle");
    showLoginError(expired ? t().expired : "");
    renderAll();
    $("login-name").focus();
  }

  function showLoginError(text) {
    const node = $("login-error");
    node.textContent = text;
    node.hidden = !text;
  }

  // ---- language --------------------------------------------------------------------------------
  function applyLang() {
    const strings = t();
    document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
    document.body.dataset.lang = lang;
    for (const node of document.querySelectorAll("[data-i18n]")) node.textContent = strings[node.dataset.i18n];
    for (const node of document.querySelectorAll("[data-i18n-placeholder]")) node.placeholder = strings[node.dataset.i18nPlaceholder];
    for (const node of document.querySelectorAll("[data-i18n-aria]")) node.setAttribute("aria-label", strings[node.dataset.i18nAria]);
    for (const node of document.querySelectorAll("[data-i18n-title]")) node.title = strings[node.dataset.i18nTitle];
    if (!$("transfer-form").hidden) fillTransferOptions();
    $("lang-switch").setAttribute("aria-pressed", String(lang === "en"));
    const conn = $("conn-status");
    if (conn.dataset.state !== "idle") conn.textContent = strings[conn.dataset.state];
    if ($("login-submit").disabled) $("login-submit").textContent = strings.loginBusy;
  }

  function renderAll() {
    applyLang();
    renderHeader();
    renderQueue();
    renderCallbacks();
    renderTabs();
    renderChat();
    renderSupervisor();
    for (const hook of hooks.render) hook();
  }

  // ---- events ----------------------------------------------------------------------------------
  $("login-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const name = $("login-name").value.trim(), password = $("login-password").value;
    if (!name || !password) { showLoginError(t().loginMissing); return; }
    const button = $("login-submit");
    button.disabled = true;
    button.textContent = t().loginBusy;
    try {
      const data = await api("POST", "/api/agent/login", { name, password });
      $("login-password").value = "";
      loggedIn(data);
    } catch (err) {
      showLoginError(err.message && !/^HTTP \d+$/.test(err.message) ? err.message : t().loginFailed);
    } finally {
      button.disabled = false;
      button.textContent = t().loginSubmit;
    }
  });

  $("logout-btn").addEventListener("click", async () => {
    try { await api("POST", "/api/agent/logout"); } catch { /* signed out either way */ }
    loggedOut(false);
  });

  $("status-select").addEventListener("change", async (event) => {
    const wanted = event.target.value;
    try {
      const data = await api("POST", "/api/agent/status", { status: wanted });
      myStatus = (data && data.status) || wanted;
    } catch (err) {
      fail(err);
    }
    renderHeader();
  });

  $("lang-switch").addEventListener("click", () => {
    lang = lang === "zh" ? "en" : "zh";
    store.set("lang", lang);
    renderAll();
  });

  $("reply-form").addEventListener("submit", (event) => {
    event.preventDefault();
    sendReply();
  });
  $("reply-input").addEventListener("keydown", (event) => {
    if (cannedPopKey(event)) return;
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing && event.keyCode !== 229) {
      event.preventDefault();
      sendReply();
    }
  });
  $("reply-input").addEventListener("input", () => {
    const chat = chats.get(composerFor), stamp = Date.now();
    if (chat) chat.draft = $("reply-input").value;
    renderCannedPop();
    if (!chat || $("note-toggle").checked || !$("reply-input").value.trim()) return;  // notes are not "typing"
    if (stamp - lastTypingSent >= TYPING_EVERY && wsSend({ type: "typing", chat: chat.rawId })) lastTypingSent = stamp;
  });
  $("note-toggle").addEventListener("change", () => {
    const chat = chats.get(composerFor);
    if (chat) chat.noteMode = $("note-toggle").checked;
    renderReplyMode();
  });
  $("close-select").addEventListener("change", () => {
    const chat = chats.get(composerFor);
    if (chat) chat.disposition = $("close-select").value;
  });

  $("canned-select").addEventListener("change", (event) => {
    const chat = chats.get(selected), input = $("reply-input");
    const value = event.target.value;
    const item = chat && Array.isArray(chat.canned) && value !== "" ? chat.canned[Number(value)] : null;
    event.target.value = "";  // back to the "Canned reply…" prompt, so the same reply can be chosen again
    if (!item) return;
    const start = input.selectionStart ?? input.value.length, end = input.selectionEnd ?? start;
    input.setRangeText(str(item.text), start, end, "end");
    input.focus();
  });

  $("transfer-btn").addEventListener("click", () => {
    const form = $("transfer-form");
    form.hidden = !form.hidden;
    $("transfer-btn").setAttribute("aria-expanded", String(!form.hidden));
    if (!form.hidden) { fillTransferOptions(); loadTargets(); $("transfer-target").focus(); }
  });
  $("transfer-cancel").addEventListener("click", hideTransfer);
  $("transfer-form").addEventListener("submit", (event) => {
    event.preventDefault();
    transfer();
  });
  // Closing asks first (which chat, which reason); the confirmation belongs to the chat it was asked for.
  let closing = null;
  function askClose() {
    const chat = chats.get(selected);
    if (!chat) return;
    closing = chat.id;
    const select = $("close-select");
    $("close-confirm-text").textContent = t().confirmClose(chatLabel(chat.id), select.options[select.selectedIndex].text);
    $("close-confirm").hidden = false;
    $("close-yes").focus();
  }
  function hideClose() { closing = null; $("close-confirm").hidden = true; }
  $("close-btn").addEventListener("click", askClose);
  $("close-no").addEventListener("click", hideClose);
  $("close-yes").addEventListener("click", async () => {
    const chat = chats.get(closing);
    if (!chat || chat.id !== selected) { hideClose(); return; }
    const disposition = chat.disposition || $("close-select").value;
    if (await leaveChat(chat, "/close", { disposition }, $("close-yes"), t().closedOk)) hideClose();
  });

  $("alerts-toggle").checked = alerts;
  $("alerts-toggle").addEventListener("change", (event) => {
    alerts = event.target.checked;
    store.set("alerts", alerts ? "1" : "0");
    if (alerts && "Notification" in window && Notification.permission === "default") {
      Notification.requestPermission().catch(() => { /* refused: sound only */ });
    }
  });

  // Keyboard: Alt+↓/↑ next/previous chat, Alt+A accept the first chat waiting, Alt+W close (asks first).
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape") { if (!$("transfer-form").hidden) hideTransfer(); hideClose(); hideCannedPop(); return; }
    if (!me || !event.altKey || event.ctrlKey || event.metaKey) return;
    const key = event.key.toLowerCase();
    if (key === "arrowdown" || key === "arrowup") {
      if (!order.length) return;
      event.preventDefault();
      const at = order.indexOf(selected), step = key === "arrowdown" ? 1 : -1;
      select(order[(at + step + order.length) % order.length] || order[0], true);
    } else if (key === "a" || event.code === "KeyA") {
      event.preventDefault();
      const button = [...$("queue-list").querySelectorAll(".accept-btn")].find((b) => !b.disabled);
      if (button) button.click();
      else if (atCapacity()) toast(t().atCapacity, "warn");
    } else if (key === "w" || event.code === "KeyW") {
      event.preventDefault();
      if (selected) askClose();
    }
  });
  window.addEventListener("online", () => {
    if (me && !ws) { backoff = 500; connect(); }
  });

  // What agent-history.js (history, search, supervisors' tools) uses of this console.
  window.GwConsole = {
    hooks, api, el, str, toast, fail, fmtClock, fmtDur, entryNode, label, wsSend, customerLabel, skillLabel,
    lang: () => lang, t, me: () => me, now, chatOf: (id) => chats.get(str(id)) || null,
  };

  setInterval(tick, 1000);
  setInterval(() => { if (me && ws) refreshQueue(); }, RESYNC_EVERY);  // clocks and loads never drift for long
  setInterval(() => wsSend({ type: "heartbeat" }), HEARTBEAT_EVERY);

  renderAll();
  api("GET", "/api/agent/me").then(loggedIn, (err) => {
    loggedOut(false);
    if (err.status !== 401) showLoginError(err.message);
  });
})();

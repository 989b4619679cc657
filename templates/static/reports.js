/* Reports page (/reports): signs in with the console's session, reads /api/reports/*, draws Apache ECharts charts
   (canvas; tooltips rendered as rich text, so the page's CSP needs no inline styles), tables with CSV links, and the
   quality review (override). Every visible string in zh and en. */
(function () {
  "use strict";

  var T = {
    zh: {
      title: "服务质量报表", from: "开始", to: "结束", trend: "趋势", day: "按日", week: "按周", month: "按月",
      quarter: "按季度", refresh: "刷新", loginTitle: "主管登录", loginName: "账号", loginPassword: "密码",
      loginSubmit: "登录", slTitle: "服务水平", byPeriod: "分时段明细", byChannel: "分渠道", csv: "导出 CSV",
      satTitle: "客户满意度", groupBy: "分组", channel: "渠道", agent: "坐席", skill: "技能组",
      complaintType: "投诉类型", district: "区县", qTitle: "质检", qAgents: "坐席质检得分",
      qList: "质检记录（得分从低到高）", qDetail: "扣分明细", newScore: "复核分数", reason: "原因",
      override: "保存复核", stTitle: "排班建议（Erlang C）", byHour: "按小时",
      notSupervisor: "仅主管和管理员可查看报表", loginFailed: "登录失败：", loadFailed: "报表加载失败：",
      saved: "已保存复核分数", none: "暂无数据", signedIn: "已登录：",
      k_bot: "5 秒内自动应答", k_pickup: "15 秒内接起", k_first: "30 分钟内首次响应", k_solution: "24 小时内解决",
      k_containment: "机器人独立解决率", k_complaints: "每千会话投诉量", k_reopen: "投诉重开率",
      k_wait: "等待时长 P50 / P90", k_handle: "处理时长 P50 / P90", k_sat: "满意度（百分制）",
      c_period: "时段", c_conversations: "会话", c_bot: "自动应答", c_bot_ok: "5 秒内", c_handoffs: "转人工",
      c_containment: "独立解决", c_pickup_ok: "15 秒接起", c_wait: "等待 P50/P90 秒", c_handle: "处理 P50/P90 秒",
      c_complaints: "投诉", c_per1000: "每千会话", c_first_ok: "30 分钟响应", c_solution_ok: "24 小时解决",
      c_reopen: "重开率", c_channel: "渠道", c_group: "分组", c_surveys: "评价数", c_average: "平均分",
      c_satisfied: "满意率", c_agent: "坐席", c_inspected: "质检数", c_score: "得分", c_auto: "系统评分",
      c_chat: "会话", c_when: "结束时间", c_deductions: "扣分项", c_survey: "客户评价", c_hour: "时段",
      c_arrivals: "每小时转人工", c_aht: "平均处理秒", c_erlangs: "话务量 Erl", c_needed: "建议坐席",
      c_today: "今日在岗", c_sl_today: "今日预计服务水平", c_gap: "缺口",
      levels: ["非常满意", "满意", "一般", "不满意", "非常不满意"], s_rate: "达标率",
      stNote: "目标：{sl} 的会话在 {t} 秒内接起；每位坐席同时接待 {c} 个会话；依据 {d} 天的实测数据。",
      overridden: "（主管复核）", reviewedBy: "复核人：", qOnly: "仅显示 {a} 的记录（再次点击该坐席显示全部）"
    },
    en: {
      title: "Service quality reports", from: "From", to: "To", trend: "Trend", day: "Daily", week: "Weekly",
      month: "Monthly", quarter: "Quarterly", refresh: "Refresh", loginTitle: "Supervisor sign-in",
      loginName: "Username", loginPassword: "Password", loginSubmit: "Sign in", slTitle: "Service levels",
      byPeriod: "By period", byChannel: "By channel", csv: "Export CSV", satTitle: "Customer satisfaction",
      groupBy: "Group by", channel: "Channel", agent: "Agent", skill: "Skill group", complaintType: "Complaint type",
      district: "District", qTitle: "Quality inspection", qAgents: "Scores per agent",
      qList: "Inspections (lowest first)", qDetail: "Lines that cost points", newScore: "Reviewed score",
      reason: "Reason", override: "Save review", stTitle: "Staffing advice (Erlang C)", byHour: "By hour of day",
      notSupervisor: "Only supervisors and admins can see the reports", loginFailed: "Sign-in failed: ",
      loadFailed: "The reports could not be loaded: ", saved: "Reviewed score saved", none: "No data",
      signedIn: "Signed in: ",
      k_bot: "Automated answers within 5 s", k_pickup: "Picked up within 15 s", k_first: "First response within 30 min",
      k_solution: "Solved within 24 h", k_containment: "Bot containment", k_complaints: "Complaints per 1,000",
      k_reopen: "Reopen rate", k_wait: "Waiting P50 / P90", k_handle: "Handling P50 / P90",
      k_sat: "Satisfaction (of 100)",
      c_period: "Period", c_conversations: "Conversations", c_bot: "Automated", c_bot_ok: "Within 5 s",
      c_handoffs: "Handoffs", c_containment: "Containment", c_pickup_ok: "Picked up ≤15 s",
      c_wait: "Wait P50/P90 s", c_handle: "Handle P50/P90 s", c_complaints: "Complaints", c_per1000: "Per 1,000",
      c_first_ok: "Response ≤30 min", c_solution_ok: "Solved ≤24 h", c_reopen: "Reopened", c_channel: "Channel",
      c_group: "Group", c_surveys: "Surveys", c_average: "Average", c_satisfied: "Satisfied", c_agent: "Agent",
      c_inspected: "Inspected", c_score: "Score", c_auto: "Automatic", c_chat: "Chat", c_when: "Closed",
      c_deductions: "Deductions", c_survey: "Survey", c_hour: "Hour", c_arrivals: "Handoffs / hour",
      c_aht: "Handling s", c_erlangs: "Traffic (Erl)", c_needed: "Agents needed", c_today: "Agents today",
      c_sl_today: "Expected service level today", c_gap: "Gap",
      levels: ["Very satisfied", "Satisfied", "Neutral", "Dissatisfied", "Very dissatisfied"], s_rate: "Share",
      stNote: "Target: {sl} of chats picked up within {t} s; an agent holds {c} chats at once; from {d} days measured.",
      overridden: " (reviewed)", reviewedBy: "Reviewed by ", qOnly: "{a}'s only (click the agent again for everyone's)"
    }
  };
  var lang = document.body.dataset.lang === "en" ? "en" : "zh";
  var csrf = "";
  var charts = {};
  var data = {};
  var current = null; // the inspection shown in the detail panel
  var me = null; // the signed-in supervisor
  var qAgent = ""; // the agent whose inspections are listed ("" = everyone's)

  var CHANNELS = {
    zh: { webchat: "网页聊天", socketio: "网页聊天（rasa-webchat）", wechat: "微信", weibo: "微博", sms: "短信",
      telegram: "Telegram", rest: "REST 接口", forum: "论坛", unknown: "未知" },
    en: { webchat: "Web chat", socketio: "Web chat (rasa-webchat)", wechat: "WeChat", weibo: "Weibo", sms: "SMS",
      telegram: "Telegram", rest: "REST", forum: "Forum", unknown: "Unknown" }
  };
  function channelName(c) { return CHANNELS[lang][c] || c; }
  var KINDS = {  // complaint types and skill groups
    zh: { network: "网络", business: "业务", service: "服务", other: "其他", none: "非投诉", general: "综合" },
    en: { network: "Network", business: "Business", service: "Service", other: "Other", none: "Not a complaint",
      general: "General" }
  };
  function agentName(name) {  // "王小明 (agent1)": the name the console shows, and the sign-in name
    var names = (data.quality && data.quality.agent_names) || {};
    var shown = names[name] && names[name][lang];
    return shown && shown !== name ? shown + " (" + name + ")" : name;
  }
  function groupName(dim, value) {
    if (dim === "channel") return channelName(value);
    if (dim === "agent") return agentName(value);
    if (dim === "complaint_type" || dim === "skill") return KINDS[lang][value] || value;
    if (value === "unknown") return CHANNELS[lang].unknown;
    return value;
  }
  function $(id) { return document.getElementById(id); }
  function agentParam() { return qAgent ? "&agent=" + encodeURIComponent(qAgent) : ""; }
  function tr(key) { return T[lang][key] !== undefined ? T[lang][key] : key; }
  function pct(v) { return v === null || v === undefined ? "–" : (v * 100).toFixed(1) + "%"; }
  function num(v, d) { return v === null || v === undefined ? "–" : Number(v).toFixed(d === undefined ? 1 : d); }
  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }

  function applyLang() {
    document.documentElement.lang = lang === "en" ? "en" : "zh-CN";
    document.body.dataset.lang = lang;
    document.title = tr("title");
    document.querySelectorAll("[data-i18n]").forEach(function (e) { e.textContent = tr(e.dataset.i18n); });
    if (me) {
      var names = me.agent.names || {};
      $("who").textContent = tr("signedIn") + (names[lang] || me.agent.display_name || me.agent.name);
    }
  }

  async function api(method, path, body) {
    var headers = { "Accept": "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (method === "POST") headers["X-CSRF-Token"] = csrf;
    var resp = await fetch(path, { method: method, headers: headers, credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body) });
    var payload = await resp.json().catch(function () { return {}; });
    if (!resp.ok) {
      var err = new Error(lang === "zh" ? (payload.error_zh || payload.error) : (payload.error || payload.error_zh));
      err.status = resp.status;
      throw err;
    }
    return payload;
  }

  function query(extra) {
    var q = "from=" + encodeURIComponent($("from").value) + "&to=" + encodeURIComponent($("to").value);
    return q + (extra ? "&" + extra : "");
  }

  function table(id, columns, rows, onClick) {
    var t = $(id);
    t.textContent = "";
    var head = el("tr");
    columns.forEach(function (c) { head.appendChild(el("th", tr(c[0]))); });
    var thead = el("thead");
    thead.appendChild(head);
    t.appendChild(thead);
    var body = el("tbody");
    if (!rows.length) {
      var empty = el("tr");
      var cell = el("td", tr("none"), "empty");
      cell.colSpan = columns.length;
      empty.appendChild(cell);
      body.appendChild(empty);
    }
    rows.forEach(function (row) {
      var r = el("tr");
      columns.forEach(function (c) { r.appendChild(el("td", c[1](row))); });
      if (onClick) {
        r.tabIndex = 0;
        r.className = "clickable";
        r.addEventListener("click", function () { onClick(row); });
        r.addEventListener("keydown", function (e) { if (e.key === "Enter") onClick(row); });
      }
      body.appendChild(r);
    });
    t.appendChild(body);
  }

  function chart(id) {
    if (!charts[id]) charts[id] = window.echarts.init($(id), null, { renderer: "canvas" });
    var c = charts[id];
    return { setOption: function (option, replace) { option.animation = false; c.setOption(option, replace); } };
  }
  var TOOLTIP = { trigger: "axis", renderMode: "richText" };

  // ---- service levels -------------------------------------------------------------------------------------
  function drawLevels(body) {
    var t = body.total;
    var sat = data.satisfaction ? data.satisfaction.total.average : null;
    var kpis = [["k_bot", pct(t.bot_within_target)], ["k_pickup", pct(t.pickup_within_target)],
      ["k_first", pct(t.first_response_within_target)], ["k_solution", pct(t.solution_within_target)],
      ["k_containment", pct(t.containment)], ["k_complaints", num(t.complaints_per_1000)],
      ["k_reopen", pct(t.reopen_rate)], ["k_wait", num(t.wait_p50, 0) + " / " + num(t.wait_p90, 0) + " s"],
      ["k_handle", num(t.handle_p50, 0) + " / " + num(t.handle_p90, 0) + " s"], ["k_sat", num(sat)]];
    var box = $("kpis");
    box.textContent = "";
    kpis.forEach(function (k) {
      var card = el("div", null, "kpi");
      card.appendChild(el("div", k[1], "kpi-value"));
      card.appendChild(el("div", tr(k[0]), "kpi-label"));
      box.appendChild(card);
    });
    var periods = body.periods.map(function (p) { return p.period; });
    function series(key, name) {
      return { name: tr(name), type: "line", showSymbol: false, connectNulls: true,
        data: body.periods.map(function (p) { return p[key] === null ? null : +(p[key] * 100).toFixed(1); }) };
    }
    chart("sl-chart").setOption({
      tooltip: TOOLTIP, legend: { top: 0 }, grid: { left: 48, right: 24, top: 40, bottom: 30 },
      xAxis: { type: "category", data: periods }, yAxis: { type: "value", max: 100, name: "%" },
      series: [series("bot_within_target", "k_bot"), series("pickup_within_target", "k_pickup"),
        series("first_response_within_target", "k_first"), series("solution_within_target", "k_solution"),
        series("containment", "k_containment")]
    }, true);
    table("sl-table", [["c_period", function (p) { return p.period; }],
      ["c_conversations", function (p) { return p.conversations; }],
      ["c_bot_ok", function (p) { return pct(p.bot_within_target); }],
      ["c_handoffs", function (p) { return p.handoffs; }],
      ["c_containment", function (p) { return pct(p.containment); }],
      ["c_pickup_ok", function (p) { return pct(p.pickup_within_target); }],
      ["c_wait", function (p) { return num(p.wait_p50, 0) + " / " + num(p.wait_p90, 0); }],
      ["c_handle", function (p) { return num(p.handle_p50, 0) + " / " + num(p.handle_p90, 0); }],
      ["c_complaints", function (p) { return p.complaints; }],
      ["c_per1000", function (p) { return num(p.complaints_per_1000); }],
      ["c_first_ok", function (p) { return pct(p.first_response_within_target); }],
      ["c_solution_ok", function (p) { return pct(p.solution_within_target); }],
      ["c_reopen", function (p) { return pct(p.reopen_rate); }]], body.periods.slice().reverse());
    table("ch-table", [["c_channel", function (c) { return channelName(c.channel); }],
      ["c_conversations", function (c) { return c.conversations; }],
      ["c_handoffs", function (c) { return c.handoffs; }],
      ["c_containment", function (c) { return pct(c.containment); }]], body.channels);
  }

  // ---- satisfaction ---------------------------------------------------------------------------------------
  function drawSatisfaction(trend, groups) {
    var label = function (v) { return groupName(groups.group_by, v); };
    var levels = trend.total.levels;
    chart("sat-pie").setOption({
      tooltip: { trigger: "item", renderMode: "richText" }, legend: { bottom: 0 },
      title: { text: num(trend.total.average) + " / 100", left: "center", top: "42%",
        textStyle: { fontSize: 18 } },
      series: [{ type: "pie", radius: ["45%", "70%"], center: ["50%", "48%"], label: { show: false },
        data: ["5", "4", "3", "2", "1"].map(function (k, i) { return { name: tr("levels")[i], value: levels[k] }; }) }]
    }, true);
    var answered = trend.groups;
    chart("sat-trend").setOption({
      tooltip: TOOLTIP, grid: { left: 40, right: 16, top: 30, bottom: 30 },
      xAxis: { type: "category", data: answered.map(function (g) { return g.group; }) },
      yAxis: { type: "value", min: 0, max: 100 },
      series: [{ name: tr("c_average"), type: "line", smooth: true, connectNulls: true,
        data: answered.map(function (g) { return g.average; }) }]
    }, true);
    chart("sat-bar").setOption({
      tooltip: TOOLTIP, grid: { left: 40, right: 16, top: 20, bottom: 50 },
      xAxis: { type: "category", data: groups.groups.map(function (g) { return label(g.group); }),
        axisLabel: { interval: 0, rotate: groups.groups.length > 8 ? 30 : 0 } },
      yAxis: { type: "value", min: 0, max: 100 },
      series: [{ name: tr("c_average"), type: "bar", barMaxWidth: 36,
        data: groups.groups.map(function (g) { return g.average; }) }]
    }, true);
    table("sat-table", [["c_group", function (g) { return label(g.group); }],
      ["c_surveys", function (g) { return g.surveys; }], ["c_average", function (g) { return num(g.average); }],
      ["c_satisfied", function (g) { return pct(g.satisfied); }]].concat(["5", "4", "3", "2", "1"].map(
      function (k, i) { return [tr("levels")[i], function (g) { return g.levels[k]; }]; })), groups.groups);
  }

  // ---- quality ----------------------------------------------------------------------------------------------
  function drawQuality(body) {
    chart("q-chart").setOption({
      tooltip: TOOLTIP, grid: { left: 40, right: 16, top: 20, bottom: 40 },
      xAxis: { type: "category", data: body.agents.map(function (a) { return agentName(a.agent); }),
        axisLabel: { interval: 0, rotate: body.agents.length > 6 ? 30 : 0 } },
      yAxis: { type: "value", min: 0, max: 100 },
      series: [{ name: tr("c_score"), type: "bar", barMaxWidth: 36,
        data: body.agents.map(function (a) { return a.average; }) }]
    }, true);
    table("q-agents", [["c_agent", function (a) { return agentName(a.agent) + (a.agent === qAgent ? " ✓" : ""); }],
      ["c_inspected", function (a) { return a.inspected; }], ["c_score", function (a) { return num(a.average); }]],
      body.agents, function (a) { qAgent = qAgent === a.agent ? "" : a.agent; load(); });
    $("q-filter").textContent = qAgent ? tr("qOnly").replace("{a}", agentName(qAgent)) : "";
    table("q-list", [["c_chat", function (i) { return i.chat.slice(0, 12); }],
      ["c_agent", function (i) { return agentName(i.agent); }],
      ["c_channel", function (i) { return channelName(i.channel); }],
      ["c_score", function (i) { return i.score + (i.override !== null ? tr("overridden") : ""); }],
      ["c_auto", function (i) { return i.auto; }],
      ["c_survey", function (i) { return i.survey === null ? "–" : i.survey; }],
      ["c_when", function (i) { return new Date(i.at * 1000).toLocaleString(lang === "en" ? "en-GB" : "zh-CN"); }],
      ["c_deductions", function (i) {
        return i.deductions.map(function (d) {
          return "−" + d.points + " " + (lang === "zh" ? d.reason_zh : d.reason);
        }).join("；");
      }]], body.inspections, showInspection);
  }

  function showInspection(item) {
    current = item;
    $("q-detail").hidden = false;
    $("q-chat").textContent = item.chat + " · " + agentName(item.agent) + " · " + item.score;
    var list = $("q-deductions");
    list.textContent = "";
    if (!item.deductions.length) list.appendChild(el("li", tr("none")));
    item.deductions.forEach(function (d) {
      var li = el("li");
      li.appendChild(el("strong", "−" + d.points + " "));
      li.appendChild(el("span", lang === "zh" ? d.reason_zh : d.reason));
      if (d.line) li.appendChild(el("q", d.line, "line"));
      list.appendChild(li);
    });
    $("override-score").value = item.score;
    $("override-reason").value = item.override_reason || "";
    $("override-note").textContent = item.override_by ? tr("reviewedBy") + item.override_by : "";
  }

  // ---- staffing ----------------------------------------------------------------------------------------------
  function drawStaffing(body) {
    var hours = body.hours.map(function (h) { return String(h.hour).padStart(2, "0") + ":00"; });
    $("st-note").textContent = tr("stNote").replace("{sl}", pct(body.target.service_level))
      .replace("{t}", body.target.answer_within).replace("{c}", body.target.concurrency).replace("{d}", body.days);
    chart("st-chart").setOption({
      tooltip: TOOLTIP, legend: { top: 0 }, grid: { left: 40, right: 40, top: 40, bottom: 30 },
      xAxis: { type: "category", data: hours },
      yAxis: [{ type: "value", name: tr("c_arrivals") }, { type: "value", name: tr("c_needed") }],
      series: [
        { name: tr("c_arrivals"), type: "bar", data: body.hours.map(function (h) { return h.arrivals_per_hour; }) },
        { name: tr("c_needed"), type: "line", step: "middle", yAxisIndex: 1,
          data: body.hours.map(function (h) { return h.agents_needed; }) },
        { name: tr("c_today"), type: "line", step: "middle", yAxisIndex: 1, lineStyle: { type: "dashed" },
          data: body.hours.map(function (h) { return h.agents_today; }) }]
    }, true);
    table("st-table", [["c_hour", function (h) { return String(h.hour).padStart(2, "0") + ":00"; }],
      ["c_arrivals", function (h) { return num(h.arrivals_per_hour, 2); }],
      ["c_aht", function (h) { return num(h.handle_seconds, 0); }],
      ["c_erlangs", function (h) { return num(h.traffic_erlangs, 2); }],
      ["c_needed", function (h) { return h.agents_needed === null ? "–" : h.agents_needed; }],
      ["c_today", function (h) { return h.agents_today === null ? "–" : h.agents_today; }],
      ["c_sl_today", function (h) { return pct(h.service_level_today); }],
      ["c_gap", function (h) { return h.gap === null ? "–" : h.gap; }]], body.hours);
  }

  // ---- loading -----------------------------------------------------------------------------------------------
  async function load() {
    $("load-error").hidden = true;
    var period = $("period").value;
    var group = $("sat-group").value;
    try {
      var got = await Promise.all([
        api("GET", "/api/reports/service_levels?" + query("group_by=" + period)),
        api("GET", "/api/reports/satisfaction?" + query("group_by=" + period)),
        api("GET", "/api/reports/satisfaction?" + query("group_by=" + group)),
        api("GET", "/api/reports/quality?" + query("limit=100" + agentParam())),
        api("GET", "/api/reports/staffing?" + query())]);
      data = { service_levels: got[0], satisfaction: got[1], groups: got[2], quality: got[3], staffing: got[4] };
    } catch (err) {
      $("load-error").textContent = tr("loadFailed") + err.message;
      $("load-error").hidden = false;
      return;
    }
    draw();
  }

  function draw() {
    if (!data.service_levels) return;
    drawLevels(data.service_levels);
    drawSatisfaction(data.satisfaction, data.groups);
    drawQuality(data.quality);
    drawStaffing(data.staffing);
    var group = { "service_levels": "group_by=" + $("period").value,
      "satisfaction": "group_by=" + $("sat-group").value, "quality": "limit=100" + agentParam() };
    document.querySelectorAll("a.csv").forEach(function (a) {
      var parts = a.dataset.csv.split(":");
      var extra = (group[parts[0]] ? group[parts[0]] + "&" : "") + "format=csv&table=" + parts[1];
      a.href = "/api/reports/" + parts[0] + "?" + query(extra);
      a.setAttribute("download", parts[0] + "-" + parts[1] + ".csv");
    });
    document.body.dataset.ready = "1";
  }

  async function start() {
    try {
      me = await api("GET", "/api/agent/me");
    } catch (err) {
      $("login-view").hidden = false;
      $("reports").hidden = true;
      return;
    }
    csrf = me.csrf;
    if (["supervisor", "admin"].indexOf(me.agent.role) < 0) {
      $("login-view").hidden = false;
      $("login-error").textContent = tr("notSupervisor");
      $("login-error").hidden = false;
      return;
    }
    applyLang();
    $("login-view").hidden = true;
    $("reports").hidden = false;
    $("range-form").hidden = false;
    await load();
  }

  function init() {
    applyLang();
    var today = new Date();
    var start30 = new Date(today.getTime() - 29 * 86400000);
    function iso(d) { return d.getFullYear() + "-" + String(d.getMonth() + 1).padStart(2, "0") + "-" +
      String(d.getDate()).padStart(2, "0"); }
    $("from").value = iso(start30);
    $("to").value = iso(today);
    $("range-form").addEventListener("submit", function (e) { e.preventDefault(); load(); });
    $("period").addEventListener("change", load);
    $("sat-group").addEventListener("change", load);
    $("lang-switch").addEventListener("click", function () {
      lang = lang === "zh" ? "en" : "zh";
      applyLang();
      draw();
      if (current) showInspection(current);
    });
    $("login-form").addEventListener("submit", async function (e) {
      e.preventDefault();
      try {
        await api("POST", "/api/agent/login", { name: $("login-name").value, password: $("login-password").value });
        $("login-error").hidden = true;
        await start();
      } catch (err) {
        $("login-error").textContent = tr("loginFailed") + err.message;
        $("login-error").hidden = false;
      }
    });
    $("override-form").addEventListener("submit", async function (e) {
      e.preventDefault();
      if (!current) return;
      try {
        var saved = await api("POST", "/api/reports/quality/" + encodeURIComponent(current.chat) + "/override",
          { score: Number($("override-score").value), reason: $("override-reason").value });
        await load();
        showInspection(saved);
        $("override-note").textContent = tr("saved");
      } catch (err) {
        $("override-note").textContent = err.message;
      }
    });
    window.addEventListener("resize", function () { Object.values(charts).forEach(function (c) { c.resize(); }); });
    start();
  }

  init();
})();

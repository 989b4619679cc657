/* Incident room (/incidents): signs in with the console's session, lists incidents and the detector's proposals
   (polled every few seconds), opens an incident's record — stage buttons (only the moves allowed now), counters,
   the customer notice editor (estimated recovery, zh/en text), the timeline and notes. Every string in zh and en. */
(function () {
  "use strict";

  var T = {
    zh: {
      title: "重大事件指挥室", loginTitle: "主管登录", loginName: "账号", loginPassword: "密码", loginSubmit: "登录",
      loginFailed: "登录失败：", notSupervisor: "仅主管和管理员可进入事件指挥室", signedIn: "已登录：",
      proposals: "预警（待确认）", incidents: "事件列表", newIncident: "上报新事件", fTitle: "标题",
      fCategory: "类别", fSeverity: "级别", fDistricts: "影响区域（逗号分隔）", fServices: "影响业务", create: "上报",
      noticeEditor: "客户通知", eta: "预计恢复时间", noticeZh: "中文通知（留空使用模板）",
      noticeEn: "英文通知（留空使用模板）", save: "保存并推送", saved: "已保存，客户将看到新的通知",
      timeline: "时间线", addNote: "添加备注", notePlaceholder: "备注（仅内部可见）", pick: "选择左侧的事件查看详情",
      noProposals: "暂无预警", noIncidents: "暂无事件", accept: "确认为事件", dismiss: "忽略",
      c_id: "编号", c_title: "标题", c_stage: "阶段", c_severity: "级别", c_districts: "区域", c_notices: "已通知",
      f_category: "类别", f_severity: "级别", f_districts: "影响区域", f_services: "影响业务", f_owner: "负责人",
      f_eta: "预计恢复", f_source: "来源", f_created: "上报时间", none: "—", toStage: "进入：",
      k_notices: "已发送通知", k_deflected: "劝阻转人工", k_insisted: "坚持转人工", k_linked: "关联投诉客户",
      k_complaints: "投诉条数", k_inbound: "近1小时网络咨询", k_queue: "人工排队", by: "操作人",
      proposalText: "{d}{c}：{n} 条网络咨询/投诉（{w} 分钟），基线 {b}，{f} 倍",
      allChannels: "", src_console: "坐席台", src_monitoring: "监控系统", src_detector: "预警",
      ev_stage: "阶段", ev_update: "更新", ev_note: "备注", ev_lessons: "经验教训", ev_task: "新任务",
      ev_task_done: "任务完成", ev_compensation: "补偿", broadcast: "主动群发通知",
      numbers: "或指定手机号（每行一个，仅短信）", bChannels: "受影响区域的客户（后端名单），渠道：",
      ch_sms: "短信", ch_wechat: "微信模板消息", ch_telegram: "Telegram", byDistrict: "区域情况",
      d_district: "区域", d_inbound: "近1小时网络咨询", d_notices: "已通知", d_linked: "关联投诉",
      sentimentLine: "客户情绪（收到通知的 {t} 条消息）：平静 {c}，不满 {a}，愤怒 {g}，升级 {e}；负面 {n}%",
      k_negative: "负面情绪占比", compensation: "补偿（事件关闭时发放）", compData: "流量（MB）",
      compCredit: "话费（元）", scopeLinked: "关联投诉的客户", scopeDistrict: "受影响区域的全部客户",
      setOffer: "设置补偿", noOffer: "未设置补偿", reviewHtml: "HTML", anyone: "（不指定负责人）",
      offerLine: "{w}，{s}：{st}；共 {t} 位，已发放 {g}，此前已发放 {a}，不符合条件 {r}，待重试 {f}",
      offerStates: { planned: "待事件关闭后发放", granting: "发放中", done: "已发放完毕" },
      c_line: "{c}：共 {t}，已排队 {q}，已发送 {s}，失败 {f}，已退订 {o}",
      reminders: "提醒（近1小时）", noReminders: "暂无提醒",
      r_overdue: "{i}：{d}的任务“{t}”已逾期", r_status: "{i}：已 {m} 分钟没有进展更新，请负责人 {o} 更新状态",
      r_mine: "（您负责）",
      bLang: "语言", send: "发送", review: "总结", lessons: "经验教训", saveLessons: "保存",
      reviewMd: "下载总结报告（Markdown）", reviewJson: "JSON", tasks: "部门任务", addTask: "添加任务",
      taskPlaceholder: "任务内容", internal: "仅内部备注", publishZh: "并推送为中文通知", publishEn: "并推送为英文通知", overdue: "逾期", markDone: "完成", doneBy: "已完成", due: "截止",
      noTasks: "暂无任务", approve: "审批通过", cancel: "取消", noBroadcasts: "尚未群发",
      b_line: "{s}：共 {t} 位，已排队 {q}，已发送 {d}，失败 {f}，已退订 {o}，无效 {i}",
      quietWait: "（免打扰时段，稍后发送）",
      b_states: { awaiting_approval: "待另一位主管审批", sending: "发送中", done: "已完成", cancelled: "已取消" },
      categories: { natural_disaster: "自然灾害", accident: "事故灾难", public_health: "公共卫生事件",
        social_security: "社会安全事件（含网络攻击）", network_fault: "网络故障" },
      services: { mobile: "移动网络", broadband: "宽带", voice: "语音", sms: "短信", data: "上网", iptv: "电视" },
      severities: { 1: "1 特别重大", 2: "2 重大", 3: "3 较大", 4: "4 一般" },
      stages: { reported: "已上报", assessed: "已评估", plan: "已制定方案", acting: "处置中", monitoring: "观察中",
        closed: "已关闭", reviewed: "已总结" }
    },
    en: {
      title: "Incident room", loginTitle: "Supervisor sign-in", loginName: "Username", loginPassword: "Password",
      loginSubmit: "Sign in", loginFailed: "Sign-in failed: ", notSupervisor: "Only supervisors and admins may enter",
      signedIn: "Signed in: ", proposals: "Early warnings", incidents: "Incidents", newIncident: "Report an incident",
      fTitle: "Title", fCategory: "Category", fSeverity: "Severity", fDistricts: "Districts (comma-separated)",
      fServices: "Services", create: "Report", noticeEditor: "Customer notice", eta: "Estimated recovery",
      noticeZh: "Chinese notice (empty: the template)", noticeEn: "English notice (empty: the template)",
      save: "Save and publish", saved: "Saved; customers now get the new notice", timeline: "Timeline",
      addNote: "Add note", notePlaceholder: "Note (internal)", pick: "Pick an incident on the left",
      noProposals: "No warnings", noIncidents: "No incidents", accept: "Open an incident", dismiss: "Dismiss",
      c_id: "ID", c_title: "Title", c_stage: "Stage", c_severity: "Severity", c_districts: "Districts",
      c_notices: "Told", f_category: "Category", f_severity: "Severity", f_districts: "Districts",
      f_services: "Services", f_owner: "Owner", f_eta: "Recovery", f_source: "Source", f_created: "Reported",
      none: "—", toStage: "Move to: ", k_notices: "Notices given", k_deflected: "Handoffs deflected",
      k_insisted: "Insisted on a person", k_linked: "Customers' complaints linked", k_complaints: "Complaints",
      k_inbound: "Network messages, last hour", k_queue: "Human queue",
      by: "by", proposalText: "{d}{c}: {n} network questions/complaints in {w} min, baseline {b}, {f}×",
      allChannels: "", src_console: "console", src_monitoring: "monitoring", src_detector: "early warning",
      ev_stage: "Stage", ev_update: "Update", ev_note: "Note", ev_lessons: "Lessons", ev_task: "New task",
      ev_task_done: "Task done", ev_compensation: "Goodwill offer", broadcast: "Broadcast of the notice",
      numbers: "Or these numbers (one a line, SMS only)", bChannels: "The districts' customers (the back end's list), on:",
      ch_sms: "SMS", ch_wechat: "WeChat template message", ch_telegram: "Telegram", byDistrict: "By district",
      d_district: "District", d_inbound: "Network messages, last hour", d_notices: "Told", d_linked: "Linked complaints",
      sentimentLine: "Sentiment ({t} messages told): {c} calm, {a} annoyed, {g} angry, {e} escalating; {n}% negative",
      k_negative: "Negative sentiment", compensation: "Goodwill offer (granted at close)", compData: "Data (MB)",
      compCredit: "Credit (yuan)", scopeLinked: "Customers with linked complaints",
      scopeDistrict: "Every customer in the districts", setOffer: "Set the offer", noOffer: "No goodwill offer",
      reviewHtml: "HTML", anyone: "(no assignee)",
      offerLine: "{w}, {s}: {st}; {t} customers, {g} granted, {a} before, {r} refused, {f} to retry",
      offerStates: { planned: "granted when the incident closes", granting: "being granted", done: "granted" },
      c_line: "{c}: {t} recipients, {q} queued, {s} sent, {f} failed, {o} opted out",
      reminders: "Reminders (last hour)", noReminders: "No reminders",
      r_overdue: "{i}: {d}'s task \u201c{t}\u201d is overdue",
      r_status: "{i}: no update for {m} min; owner {o}, please post the status", r_mine: " (yours)", bLang: "Language", review: "Review", lessons: "Lessons",
      saveLessons: "Save", reviewMd: "Download the review (Markdown)", reviewJson: "JSON", tasks: "Department tasks",
      addTask: "Add task", taskPlaceholder: "What is to be done", internal: "Internal note",
      publishZh: "Also the Chinese notice", publishEn: "Also the English notice", overdue: "overdue", markDone: "Done",
      doneBy: "done", due: "due", noTasks: "No tasks", send: "Send", approve: "Approve", cancel: "Cancel",
      noBroadcasts: "No broadcast yet",
      b_line: "{s}: {t} recipients, {q} queued, {d} sent, {f} failed, {o} opted out, {i} invalid",
      quietWait: " (quiet hours: later)",
      b_states: { awaiting_approval: "Awaiting a second supervisor", sending: "Sending", done: "Done",
        cancelled: "Cancelled" },
      categories: { natural_disaster: "Natural disaster", accident: "Accident / disaster",
        public_health: "Public health", social_security: "Social security (incl. network attack)",
        network_fault: "Network fault" },
      services: { mobile: "Mobile", broadband: "Broadband", voice: "Voice", sms: "SMS", data: "Data", iptv: "IPTV" },
      severities: { 1: "1 critical", 2: "2 major", 3: "3 serious", 4: "4 minor" },
      stages: { reported: "Reported", assessed: "Assessed", plan: "Plan", acting: "Acting", monitoring: "Monitoring",
        closed: "Closed", reviewed: "Reviewed" }
    }
  };
  var lang = document.body.dataset.lang === "en" ? "en" : "zh";
  var csrf = "";
  var incidents = [];
  var proposals = [];
  var selected = null;   // the open record: {incident, timeline, links, linked}
  var poller = null;
  var departments = {};
  var reminders = [];
  var myName = "";

  function $(id) { return document.getElementById(id); }
  function tr(key) { return T[lang][key] !== undefined ? T[lang][key] : key; }
  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = text;
    if (cls) e.className = cls;
    return e;
  }
  function when(epoch) {
    if (!epoch) return tr("none");
    var d = new Date(epoch * 1000);
    return d.toLocaleString(lang === "zh" ? "zh-CN" : "en-GB", { hour12: false });
  }
  function localInput(epoch) {
    if (!epoch) return "";
    var d = new Date(epoch * 1000);
    function p(n) { return String(n).padStart(2, "0"); }
    return d.getFullYear() + "-" + p(d.getMonth() + 1) + "-" + p(d.getDate()) + "T" + p(d.getHours()) + ":" +
      p(d.getMinutes());
  }
  function sum(o) { return Object.keys(o || {}).reduce(function (a, k) { return a + o[k]; }, 0); }
  function fill(s, args) { return s.replace(/\{(\w+)\}/g, function (_, k) { return args[k]; }); }

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

  function applyLang() {
    document.documentElement.lang = lang === "en" ? "en" : "zh-CN";
    document.title = tr("title");
    document.querySelectorAll("[data-i18n]").forEach(function (e) { e.textContent = tr(e.dataset.i18n); });
    document.querySelectorAll("[data-i18n-placeholder]").forEach(function (e) {
      e.placeholder = tr(e.dataset.i18nPlaceholder);
    });
    var cat = $("new-category"), sev = $("new-severity"), keepCat = cat.value, keepSev = sev.value;
    cat.textContent = "";
    Object.keys(T[lang].categories).forEach(function (k) {
      var o = el("option", T[lang].categories[k]); o.value = k; cat.appendChild(o);
    });
    sev.textContent = "";
    [1, 2, 3, 4].forEach(function (k) { var o = el("option", T[lang].severities[k]); o.value = k; sev.appendChild(o); });
    cat.value = keepCat || "network_fault";
    sev.value = keepSev || "3";
    var box = $("new-services"), checked = {};
    box.querySelectorAll("input:checked").forEach(function (i) { checked[i.value] = true; });
    box.querySelectorAll("label").forEach(function (l) { l.remove(); });
    Object.keys(T[lang].services).forEach(function (k) {
      var l = el("label"), i = el("input");
      i.type = "checkbox"; i.value = k; i.checked = !!checked[k];
      l.appendChild(i); l.appendChild(document.createTextNode(T[lang].services[k]));
      box.appendChild(l);
    });
    drawList();
    drawProposals();
    drawReminders();
    if (selected) drawRecord();
  }

  function drawProposals() {
    var ul = $("proposals");
    ul.textContent = "";
    if (!proposals.length) { ul.appendChild(el("li", tr("noProposals"), "muted")); return; }
    proposals.forEach(function (p) {
      var li = el("li", null, "proposal");
      li.dataset.id = p.id;
      li.appendChild(el("div", fill(tr("proposalText"), { d: p.district, c: p.channel ? " · " + p.channel : "",
        n: Math.round(p.count), w: p.window_minutes, b: p.baseline, f: p.factor })));
      if (p.samples && p.samples.length) {
        var s = el("ul", null, "samples");
        p.samples.slice(0, 3).forEach(function (t) { s.appendChild(el("li", t)); });
        li.appendChild(s);
      }
      var actions = el("div", null, "actions");
      var yes = el("button", tr("accept"), "btn btn-primary accept"), no = el("button", tr("dismiss"), "btn dismiss");
      yes.type = no.type = "button";
      yes.addEventListener("click", function () { decide(p.id, "accept"); });
      no.addEventListener("click", function () { decide(p.id, "dismiss"); });
      actions.appendChild(yes); actions.appendChild(no);
      li.appendChild(actions);
      ul.appendChild(li);
    });
  }

  function drawReminders() {
    var ul = $("reminders");
    ul.textContent = "";
    if (!reminders.length) { ul.appendChild(el("li", tr("noReminders"), "muted")); return; }
    reminders.forEach(function (r) {
      var text = r.type === "incident_task_overdue"
        ? fill(tr("r_overdue"), { i: r.incident, d: departmentName(r.task.department), t: r.task.title })
        : fill(tr("r_status"), { i: r.incident, m: Math.round((r.silent_seconds || 0) / 60),
          o: r.owner || tr("none") });
      var mine = r.owner && r.owner === myName;
      var li = el("li", text + (mine ? tr("r_mine") : ""), "reminder" + (mine ? " mine" : ""));
      li.dataset.type = r.type;
      li.dataset.incident = r.incident;
      li.addEventListener("click", function () { open(r.incident); });
      ul.appendChild(li);
    });
  }

  function drawList() {
    var t = $("list");
    t.textContent = "";
    var head = el("tr");
    ["c_id", "c_title", "c_stage", "c_severity", "c_districts", "c_notices"].forEach(function (k) {
      head.appendChild(el("th", tr(k)));
    });
    var thead = el("thead"); thead.appendChild(head); t.appendChild(thead);
    var body = el("tbody");
    if (!incidents.length) {
      var r = el("tr"), c = el("td", tr("noIncidents"), "muted"); c.colSpan = 6; r.appendChild(c); body.appendChild(r);
    }
    incidents.forEach(function (i) {
      var row = el("tr", null, "clickable" + (selected && selected.incident.id === i.id ? " selected" : ""));
      row.dataset.id = i.id;
      row.tabIndex = 0;
      row.appendChild(el("td", i.id));
      row.appendChild(el("td", i.title));
      row.appendChild(el("td", T[lang].stages[i.stage], "stage"));
      var sev = el("td"); sev.appendChild(el("span", T[lang].severities[i.severity], "sev sev-" + i.severity));
      row.appendChild(sev);
      row.appendChild(el("td", i.districts.join(lang === "zh" ? "、" : ", ")));
      row.appendChild(el("td", String((i.stats && i.stats.notices) || 0)));
      row.addEventListener("click", function () { open(i.id); });
      row.addEventListener("keydown", function (e) { if (e.key === "Enter") open(i.id); });
      body.appendChild(row);
    });
    t.appendChild(body);
  }

  function drawRecord() {
    var i = selected.incident;
    $("record").hidden = false;
    $("empty").hidden = true;
    $("r-title").textContent = i.id + " · " + i.title;
    var facts = $("facts");
    facts.textContent = "";
    [["c_stage", T[lang].stages[i.stage]], ["f_category", T[lang].categories[i.category]],
     ["f_severity", T[lang].severities[i.severity]], ["f_districts", i.districts.join(", ")],
     ["f_services", i.services.map(function (s) { return T[lang].services[s] || s; }).join(", ") || tr("none")],
     ["f_owner", i.owner || tr("none")], ["f_eta", when(i.eta)], ["f_source", tr("src_" + i.source)],
     ["f_created", when(i.created_at)]].forEach(function (f) {
      facts.appendChild(el("dt", tr(f[0])));
      var dd = el("dd", f[1]);
      dd.dataset.fact = f[0];
      facts.appendChild(dd);
    });
    var stages = $("stages");
    stages.textContent = "";
    i.allowed.forEach(function (to) {
      var b = el("button", tr("toStage") + T[lang].stages[to], "btn" + (to === "closed" ? " btn-danger" : ""));
      b.type = "button";
      b.dataset.to = to;
      b.addEventListener("click", function () { move(to); });
      stages.appendChild(b);
    });
    var stats = $("stats");
    stats.textContent = "";
    var s = i.stats || {};
    [["k_notices", s.notices], ["k_deflected", s.deflected], ["k_insisted", s.insisted], ["k_linked", s.linked],
     ["k_complaints", s.complaints], ["k_inbound", sum((selected.metrics || {}).inbound_last_hour)],
     ["k_queue", (selected.metrics || {}).queue],
     ["k_negative", Math.round((((selected.metrics || {}).sentiment || {}).negative_share || 0) * 100) + "%"]
    ].forEach(function (k) {
      var box = el("div", null, "kpi");
      box.dataset.kpi = k[0];
      box.appendChild(el("div", String(k[1] || 0), "kpi-value"));
      box.appendChild(el("div", tr(k[0]), "kpi-label"));
      stats.appendChild(box);
    });
    var base = "/api/incidents/" + encodeURIComponent(i.id) + "/review";
    $("review-md").href = base + "?format=md&lang=" + lang;
    $("review-md").setAttribute("download", i.id + "-review-" + lang + ".md");
    $("review-json").href = base;
    $("review-html").href = base + "?format=html&lang=" + lang;
    $("review-html").setAttribute("download", i.id + "-review-" + lang + ".html");
    drawDistricts();
    drawOffer();
    var tl = $("tasks");
    tl.textContent = "";
    if (!(selected.tasks || []).length) tl.appendChild(el("li", tr("noTasks"), "muted"));
    (selected.tasks || []).forEach(function (task) {
      var li = el("li");
      li.dataset.id = task.id;
      li.dataset.state = task.state;
      li.appendChild(el("strong", departmentName(task.department) + (task.assignee ? " · " + task.assignee : "")));
      li.appendChild(el("span", task.title));
      li.appendChild(el("span", tr("due") + " " + when(task.deadline), "muted"));
      if (task.late) li.appendChild(el("span", tr("overdue"), "late"));
      if (task.state === "done") {
        li.appendChild(el("span", "✓ " + tr("doneBy") + " " + task.done_by, "done"));
      } else {
        var b = el("button", tr("markDone"), "btn done-btn");
        b.type = "button";
        b.addEventListener("click", async function () {
          await api("POST", "/api/incidents/" + encodeURIComponent(i.id) + "/tasks/" + encodeURIComponent(task.id) +
            "/done");
          await open(i.id);
        });
        li.appendChild(b);
      }
      tl.appendChild(li);
    });
    var bl = $("broadcasts");
    bl.textContent = "";
    if (!(selected.broadcasts || []).length) bl.appendChild(el("li", tr("noBroadcasts"), "muted"));
    (selected.broadcasts || []).forEach(function (b) {
      var li = el("li");
      li.dataset.id = b.id;
      li.dataset.state = b.state;
      var bar = el("progress"); bar.max = 1; bar.value = b.progress;
      li.appendChild(bar);
      li.appendChild(el("span", fill(tr("b_line"), { s: T[lang].b_states[b.state] || b.state, t: b.total,
        q: b.queued, d: b.sent, f: b.failed, o: b.opted_out, i: b.invalid }) +
        (b.quiet_wait && b.state === "sending" ? tr("quietWait") : "")));
      var per = el("ul", null, "channels");
      Object.keys(b.channels || {}).forEach(function (c) {
        var p = b.channels[c], row = el("li", fill(tr("c_line"), { c: tr("ch_" + c), t: p.total, q: p.queued,
          s: p.sent, f: p.failed, o: p.opted_out }));
        row.dataset.channel = c;
        per.appendChild(row);
      });
      li.appendChild(per);
      [["awaiting_approval", "approve"], ["awaiting_approval", "cancel"], ["sending", "cancel"]].forEach(function (a) {
        if (b.state !== a[0]) return;
        var btn = el("button", tr(a[1]), "btn " + a[1]);
        btn.type = "button";
        btn.addEventListener("click", async function () {
          try {
            await api("POST", "/api/incidents/broadcasts/" + encodeURIComponent(b.id) + "/" + a[1]);
            $("broadcast-error").hidden = true;
          } catch (err) {
            $("broadcast-error").textContent = err.message;
            $("broadcast-error").hidden = false;
          }
          await open(selected.incident.id);
        });
        li.appendChild(btn);
      });
      bl.appendChild(li);
    });
    var ol = $("timeline");
    ol.textContent = "";
    selected.timeline.forEach(function (e) {
      var li = el("li");
      li.appendChild(el("time", when(e.at)));
      var what = tr("ev_" + e.event) + "：";
      if (lang === "en") what = tr("ev_" + e.event) + ": ";
      if (e.event === "stage") what += (e.from ? T[lang].stages[e.from] + " → " : "") + T[lang].stages[e.to];
      if (e.event === "update") what += Object.keys(e.changes || {}).join(", ");
      var bare = ["note", "task", "task_done", "lessons", "compensation"].indexOf(e.event) >= 0;
      if (e.note) what += (bare ? "" : " — ") + e.note;
      li.appendChild(document.createTextNode(what + " (" + tr("by") + " " + e.by + ")"));
      ol.appendChild(li);
    });
  }

  function drawDistricts() {
    var m = selected.metrics || {}, t = $("districts");
    t.textContent = "";
    var head = el("tr");
    ["d_district", "d_inbound", "d_notices", "d_linked"].forEach(function (k) { head.appendChild(el("th", tr(k))); });
    var thead = el("thead"); thead.appendChild(head); t.appendChild(thead);
    var body = el("tbody");
    (m.districts || []).forEach(function (d) {
      var row = el("tr", null, d.affected ? "affected" : "");
      row.dataset.district = d.district;
      [d.district, d.inbound_last_hour, d.notices, d.linked].forEach(function (v) { row.appendChild(el("td", String(v))); });
      body.appendChild(row);
    });
    t.appendChild(body);
    var s = m.sentiment || {};
    $("sentiment").textContent = fill(tr("sentimentLine"), { t: s.total || 0, c: s.calm || 0, a: s.annoyed || 0,
      g: s.angry || 0, e: s.escalating || 0, n: Math.round((s.negative_share || 0) * 100) });
  }

  function drawOffer() {
    var o = selected.compensation, p = $("compensation");
    $("compensation-form").hidden = !!o || selected.incident.stage === "reviewed";
    if (!o) { p.textContent = tr("noOffer"); p.dataset.state = ""; return; }
    var what = o.kind === "data" ? o.amount + " MB" : (lang === "zh" ? o.amount + " 元" : "¥" + o.amount);
    p.dataset.state = o.state;
    p.textContent = fill(tr("offerLine"), { w: what, s: tr(o.scope === "linked" ? "scopeLinked" : "scopeDistrict"),
      st: T[lang].offerStates[o.state] || o.state, t: o.total, g: o.granted, a: o.already, r: o.refused,
      f: o.failed });
  }

  function fillAssignees() {
    var sel = $("task-assignee"), dep = $("task-department").value, members = (selected && selected.members) || {};
    sel.textContent = "";
    var none = el("option", tr("anyone")); none.value = ""; sel.appendChild(none);
    (members[dep] || []).forEach(function (m) { var o = el("option", m); o.value = m; sel.appendChild(o); });
  }

  function fillEditor() {
    var i = selected.incident;
    $("eta").value = localInput(i.eta);
    $("notice-zh").value = (i.notice && i.notice.zh) || "";
    $("notice-en").value = (i.notice && i.notice.en) || "";
    $("lessons").value = i.lessons || "";
    var open = ["closed", "reviewed"].indexOf(i.stage) < 0;
    $("notice-form").querySelectorAll("input, textarea, button").forEach(function (e) { e.disabled = !open; });
  }

  function fillDepartments() {
    var sel = $("task-department"), keep = sel.value;
    sel.textContent = "";
    Object.keys(departments).forEach(function (k) {
      var o = el("option", departments[k][lang] || k); o.value = k; sel.appendChild(o);
    });
    if (keep) sel.value = keep;
  }

  function departmentName(k) { return departments[k] ? departments[k][lang] : k; }

  async function refresh() {
    var data = await api("GET", "/api/incidents");
    incidents = data.incidents;
    proposals = data.proposals;
    reminders = data.reminders || [];
    if (data.departments && Object.keys(departments).length === 0) { departments = data.departments; fillDepartments(); }
    drawList();
    drawProposals();
    drawReminders();
    document.body.dataset.ready = "1";
  }

  async function poll() {
    await refresh();
    if (selected) {  // the record's counters and broadcasts, live; the editor keeps what is being typed
      selected = await api("GET", "/api/incidents/" + encodeURIComponent(selected.incident.id));
      drawRecord();
    }
  }

  async function open(id) {
    selected = await api("GET", "/api/incidents/" + encodeURIComponent(id));
    $("stage-error").hidden = true;
    $("notice-note").textContent = "";
    drawRecord();
    fillEditor();
    fillAssignees();
    drawList();
  }

  async function move(to) {
    var problem = "";
    try {
      await api("POST", "/api/incidents/" + encodeURIComponent(selected.incident.id) + "/transition", { to: to });
    } catch (err) {
      problem = err.message;
    }
    await open(selected.incident.id);
    await refresh();
    $("stage-error").textContent = problem;
    $("stage-error").hidden = !problem;
  }

  async function decide(id, action) {
    var made = await api("POST", "/api/incidents/proposals/" + encodeURIComponent(id) + "/" + action);
    await refresh();
    if (made.incident) await open(made.incident.id);
  }

  function init() {
    applyLang();
    $("lang-switch").addEventListener("click", function () {
      lang = lang === "zh" ? "en" : "zh";
      fillDepartments();
      applyLang();
      fillAssignees();
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
    $("new-form").addEventListener("submit", async function (e) {
      e.preventDefault();
      var services = [];
      $("new-services").querySelectorAll("input:checked").forEach(function (i) { services.push(i.value); });
      try {
        var made = await api("POST", "/api/incidents", { title: $("new-title").value,
          category: $("new-category").value, severity: Number($("new-severity").value), services: services,
          districts: $("new-districts").value.split(/[,，、\s]+/).filter(Boolean) });
        $("new-error").hidden = true;
        $("new-form").reset();
        await refresh();
        await open(made.id);
      } catch (err) {
        $("new-error").textContent = err.message;
        $("new-error").hidden = false;
      }
    });
    $("notice-form").addEventListener("submit", async function (e) {
      e.preventDefault();
      var eta = $("eta").value ? new Date($("eta").value).getTime() / 1000 : null;
      try {
        await api("POST", "/api/incidents/" + encodeURIComponent(selected.incident.id) + "/update",
          { eta: eta, notice_zh: $("notice-zh").value, notice_en: $("notice-en").value });
        await open(selected.incident.id);
        $("notice-note").textContent = tr("saved");
      } catch (err) {
        $("notice-note").textContent = err.message;
      }
    });
    $("task-department").addEventListener("change", fillAssignees);
    $("compensation-form").addEventListener("submit", async function (e) {
      e.preventDefault();
      try {
        await api("POST", "/api/incidents/" + encodeURIComponent(selected.incident.id) + "/compensation",
          { kind: $("comp-kind").value, amount: Number($("comp-amount").value), scope: $("comp-scope").value });
        $("compensation-error").hidden = true;
      } catch (err) {
        $("compensation-error").textContent = err.message;
        $("compensation-error").hidden = false;
      }
      await open(selected.incident.id);
    });
    $("broadcast-form").addEventListener("submit", async function (e) {
      e.preventDefault();
      var numbers = $("broadcast-numbers").value.split(/[\s,，;；]+/).filter(Boolean), channels = [];
      $("broadcast-channels").querySelectorAll("input:checked").forEach(function (i) { channels.push(i.value); });
      var body = numbers.length ? { numbers: numbers } : { channels: channels };
      body.lang = $("broadcast-lang").value;
      try {
        await api("POST", "/api/incidents/" + encodeURIComponent(selected.incident.id) + "/broadcasts", body);
        $("broadcast-error").hidden = true;
        $("broadcast-numbers").value = "";
      } catch (err) {
        $("broadcast-error").textContent = err.message;
        $("broadcast-error").hidden = false;
      }
      await open(selected.incident.id);
    });
    $("task-form").addEventListener("submit", async function (e) {
      e.preventDefault();
      await api("POST", "/api/incidents/" + encodeURIComponent(selected.incident.id) + "/tasks", {
        department: $("task-department").value, title: $("task-title").value, assignee: $("task-assignee").value,
        deadline: new Date($("task-deadline").value).getTime() / 1000 });
      $("task-title").value = "";
      await open(selected.incident.id);
    });
    $("lessons-form").addEventListener("submit", async function (e) {
      e.preventDefault();
      await api("POST", "/api/incidents/" + encodeURIComponent(selected.incident.id) + "/lessons",
        { text: $("lessons").value });
      await open(selected.incident.id);
    });
    $("note-form").addEventListener("submit", async function (e) {
      e.preventDefault();
      var text = $("note-text").value.trim();
      if (!text) return;
      var body = { text: text };
      if ($("note-publish").value) body.publish = $("note-publish").value;
      await api("POST", "/api/incidents/" + encodeURIComponent(selected.incident.id) + "/notes", body);
      $("note-text").value = "";
      $("note-publish").value = "";
      await open(selected.incident.id);
    });
    start();
  }

  async function start() {
    var me;
    try {
      me = await api("GET", "/api/agent/me");
    } catch (err) {
      $("login-view").hidden = false;
      $("room").hidden = true;
      return;
    }
    csrf = me.csrf;
    myName = me.agent.name;
    if (["supervisor", "admin"].indexOf(me.agent.role) < 0) {
      $("login-view").hidden = false;
      $("login-error").textContent = tr("notSupervisor");
      $("login-error").hidden = false;
      return;
    }
    $("who").textContent = tr("signedIn") + (me.agent.display_name || me.agent.name);
    $("login-view").hidden = true;
    $("room").hidden = false;
    await refresh();
    if (!poller) poller = setInterval(function () { poll().catch(function () {}); }, 4000);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();

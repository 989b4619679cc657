// NLU review (/nlu/review): supervisors decide on what the bot was unsure of and what agents re-labelled,
// retrain, and switch every gateway process to the new model. Customer text only ever goes in with textContent.
(() => {
  "use strict";
  const STRINGS = {
    zh: {
      title: "NLU 样本审核", console: "坐席工作台", login: "主管登录", name: "账号", password: "密码", signIn: "登录",
      denied: "仅主管和管理员可审核NLU样本", model: "模型", retrain: "重新训练", switch: "切换到新模型",
      samples: "待审核样本", filter: "语言", all: "全部", empty: "暂无待审核样本",
      colText: "客户原话（已脱敏）", colGuess: "模型判断", colAgent: "坐席标注", colCount: "次数", colAction: "处理",
      accept: (l) => `采纳：${l}`, relabel: "改为", oos: "无关问题", discard: "忽略", pick: "选择意图…",
      serving: (id, acc) => `当前模型 ${id}（交叉验证准确率 ${acc}）`, startModel: "当前模型：网关启动时的模型（尚未切换过）",
      file: (n, p) => `审核文件 ${p}：${n} 条样本`, running: (p) => `训练中… ${p}`, failed: (e) => `训练失败：${e}`,
      result: (n, c, k) => `新模型交叉验证准确率 ${n}（当前 ${c}；${k} 折，基础数据）`,
      reviewed: (n, c, k, t) => `审核样本上：${c} → ${n}（${k} 条新样本，共 ${t} 条）`,
      refused: "已拒绝：新模型比当前模型差，未切换。请检查审核文件中的标注。", switched: (id) => `已切换：所有网关进程正在加载模型 ${id}`,
      done: (a, l) => (a === "discard" ? "已忽略" : `已加入审核文件：${l}`), agentSaid: (n) => `坐席：${n}`,
      network: "网络错误，请重试", source: { fallback: "未识别", low_confidence: "低置信度", agent: "坐席标注" },
    },
    en: {
      title: "NLU review", console: "Agent console", login: "Supervisor sign-in", name: "Username", password: "Password",
      signIn: "Sign in", denied: "Only supervisors and admins may review NLU samples", model: "Model", retrain: "Retrain",
      switch: "Switch to the new model", samples: "Samples to review", filter: "Language", all: "All",
      empty: "Nothing to review", colText: "Customer’s words (masked)", colGuess: "Model’s guess",
      colAgent: "Agent’s label", colCount: "Seen", colAction: "Decision",
      accept: (l) => `Accept: ${l}`, relabel: "Label as", oos: "Out of scope", discard: "Discard", pick: "Pick an intent…",
      serving: (id, acc) => `Model in use ${id} (cross-validated accuracy ${acc})`,
      startModel: "Model in use: the one the gateway started with (no switch yet)",
      file: (n, p) => `Review file ${p}: ${n} examples`, running: (p) => `Training… ${p}`, failed: (e) => `Training failed: ${e}`,
      result: (n, c, k) => `New model: cross-validated accuracy ${n} (current ${c}; ${k} folds, base data)`,
      reviewed: (n, c, k, t) => `On the reviewed examples: ${c} → ${n} (${k} new of ${t})`,
      refused: "Refused: the new model is worse than the current one; nothing switched. Check the labels in the review file.",
      switched: (id) => `Switched: every gateway process is loading model ${id}`,
      done: (a, l) => (a === "discard" ? "Discarded" : `Added to the review file: ${l}`), agentSaid: (n) => `agent: ${n}`,
      network: "Network error, please retry", source: { fallback: "not understood", low_confidence: "unsure", agent: "agent" },
    },
  };
  const $ = (id) => document.getElementById(id);
  let lang = new URLSearchParams(location.search).get("lang") || document.body.dataset.lang || "zh";
  if (!STRINGS[lang]) lang = "zh";
  let csrf = "", state = null, polling = null;
  const t = () => STRINGS[lang];
  const pct = (v) => (typeof v === "number" ? v.toFixed(3) : "—");
  const name = (label) => (state && state.names[label] ? state.names[label][lang] : label) || "—";

  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function toast(text, kind) {
    const item = el("div", `toast toast-${kind || "info"}`, text);
    if (kind === "error") item.setAttribute("role", "alert");
    $("toasts").append(item);
    setTimeout(() => item.remove(), 6000);
  }

  async function api(method, path, body) {
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (method !== "GET" && csrf) headers["X-CSRF-Token"] = csrf;
    let res;
    try {
      res = await fetch(path, { method, headers, credentials: "same-origin", body: body === undefined ? undefined : JSON.stringify(body) });
    } catch {
      throw Object.assign(new Error(t().network), { status: 0 });
    }
    let data = null;
    try { data = await res.json(); } catch { data = null; }
    if (!res.ok) {
      const message = (data && (lang === "zh" ? data.error_zh || data.error : data.error)) || `HTTP ${res.status}`;
      throw Object.assign(new Error(message), { status: res.status, data });
    }
    return data;
  }

  function show(view) {
    for (const id of ["login-view", "denied", "review"]) $(id).hidden = id !== view;
  }

  function applyLang() {
    document.documentElement.lang = lang === "en" ? "en" : "zh-CN";
    document.body.dataset.lang = lang;
    for (const node of document.querySelectorAll("[data-i18n]")) {
      const value = t()[node.dataset.i18n];
      if (typeof value === "string") node.textContent = value;
    }
    document.title = t().title;
    if (state) render();
  }

  // ---- the model card ----------------------------------------------------------------------------------
  function renderModel() {
    const model = state.model || {};
    const active = model.active;
    $("model-line").textContent = model.serving && active ? t().serving(active.id, pct(active.accuracy)) : t().startModel;
    $("file-line").textContent = t().file(state.review_file.examples, state.review_file.path);
    renderJob(state.job || {});
  }

  function renderJob(job) {
    const running = job.state === "running";
    $("retrain-btn").disabled = running;
    $("job-status").textContent = running ? t().running(job.progress || "") : job.state === "failed" ? t().failed(job.error || "") : "";
    const result = job.state === "done" ? job.result : null;
    $("result").hidden = !result;
    if (!result) return;
    $("result-line").textContent = t().result(pct(result.accuracy), pct(result.current_accuracy), result.folds);
    $("result-reviewed").textContent = t().reviewed(pct(result.reviewed_accuracy), pct(result.reviewed_current_accuracy),
      result.new, result.reviewed);
    const active = state.model && state.model.active;
    const live = active && active.id === result.id;
    $("refusal").hidden = !result.refused;
    $("refusal").textContent = t().refused;
    $("switch-btn").hidden = Boolean(result.refused) || live;
    $("switch-btn").dataset.model = result.id;
  }

  async function pollJob() {
    clearTimeout(polling);
    const body = await api("GET", "/api/nlu/retrain");
    state.job = body.job;
    state.model = body.model;
    renderModel();
    if (body.job.state === "running") polling = setTimeout(() => pollJob().catch((e) => toast(e.message, "error")), 1000);
  }

  // ---- the samples -------------------------------------------------------------------------------------
  function row(sample) {
    const tr = el("tr");
    tr.dataset.id = sample.id;
    const text = el("td", "text", sample.text);
    text.lang = sample.lang === "en" ? "en" : "zh-CN";
    const guess = el("td");
    guess.append(el("div", "", name(sample.guess)));
    if (typeof sample.confidence === "number") {
      guess.append(el("div", "conf", `${pct(sample.confidence)} · ${t().source[sample.source] || sample.source}`));
    }
    const agent = el("td", "", sample.agent_label ? name(sample.agent_label) : "—");
    const count = el("td", "", String(sample.count || 1));
    const actions = el("td");
    const box = el("div", "actions");
    const suggestion = sample.agent_label || sample.guess;
    const accept = el("button", "btn btn-primary btn-small act-accept", t().accept(name(suggestion)));
    accept.type = "button";
    accept.addEventListener("click", () => decide(tr, sample, "accept"));
    const select = el("select", "label-select");
    select.setAttribute("aria-label", t().relabel);
    select.append(new Option(t().pick, ""));
    for (const label of state.labels) select.append(new Option(name(label), label));
    const relabel = el("button", "btn btn-small act-label", t().relabel);
    relabel.type = "button";
    relabel.addEventListener("click", () => {
      if (select.value) decide(tr, sample, "label", select.value);
      else select.focus();
    });
    const oos = el("button", "btn btn-small act-oos", t().oos);
    oos.type = "button";
    oos.addEventListener("click", () => decide(tr, sample, "out_of_scope"));
    const discard = el("button", "btn btn-small act-discard", t().discard);
    discard.type = "button";
    discard.addEventListener("click", () => decide(tr, sample, "discard"));
    box.append(accept, select, relabel, oos, discard);
    actions.append(box);
    tr.append(text, guess, agent, count, actions);
    return tr;
  }

  function renderSamples() {
    const body = $("samples").tBodies[0];
    body.replaceChildren(...state.samples.map(row));
    $("count").textContent = String(state.samples.length);
    $("empty").hidden = state.samples.length > 0;
  }

  function render() {
    renderModel();
    renderSamples();
  }

  async function decide(tr, sample, action, intent) {
    for (const b of tr.querySelectorAll("button")) b.disabled = true;
    try {
      const body = await api("POST", `/api/nlu/review/${sample.id}`, intent ? { action, intent } : { action });
      state.samples = state.samples.filter((s) => s.id !== sample.id);
      state.review_file.examples = body.review_examples ?? state.review_file.examples;
      render();
      toast(t().done(action, name(body.label)));
    } catch (err) {
      toast(err.message, "error");
      if (err.status === 409) await load();
      else for (const b of tr.querySelectorAll("button")) b.disabled = false;
    }
  }

  async function load() {
    const filter = $("lang-filter").value;
    state = await api("GET", `/api/nlu/review${filter ? `?lang=${filter}` : ""}`);
    render();
    if (state.job && state.job.state === "running") pollJob();
  }

  // ---- sign-in and start -------------------------------------------------------------------------------
  async function start() {
    applyLang();
    try {
      const me = await api("GET", "/api/agent/me");
      csrf = me.csrf;
      $("who").textContent = me.agent.display_name || me.agent.name;
      $("who").hidden = false;
      if (!["supervisor", "admin"].includes(me.agent.role)) return show("denied");
      show("review");
      await load();
    } catch (err) {
      if (err.status === 401) return show("login-view");
      toast(err.message, "error");
    }
  }

  $("login-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    $("login-error").hidden = true;
    try {
      await api("POST", "/api/agent/login", { name: $("login-name").value.trim(), password: $("login-password").value });
      await start();
    } catch (err) {
      $("login-error").textContent = err.message;
      $("login-error").hidden = false;
    }
  });

  $("retrain-btn").addEventListener("click", async () => {
    try {
      const body = await api("POST", "/api/nlu/retrain");
      state.job = body.job;
      renderJob(body.job);
      await pollJob();
    } catch (err) { toast(err.message, "error"); }
  });

  $("switch-btn").addEventListener("click", async () => {
    try {
      const body = await api("POST", "/api/nlu/switch", { model: $("switch-btn").dataset.model });
      state.model = { active: body.active, serving: body.serving };
      renderModel();
      toast(t().switched(body.active.id));
    } catch (err) {
      toast(err.message, "error");
      pollJob().catch(() => {});
    }
  });

  $("lang-filter").addEventListener("change", () => load().catch((e) => toast(e.message, "error")));
  $("lang-switch").addEventListener("click", () => {
    lang = lang === "zh" ? "en" : "zh";
    applyLang();
  });
  start();
})();

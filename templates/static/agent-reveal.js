// Agent console add-on (privacy): the customer's number is masked everywhere; the agent holding the chat (or a
// supervisor, on any chat) may reveal it with a reason — POST /api/chats/{id}/reveal, recorded in the audit trail —
// and it is shown for 60 seconds, then masked again. Supervisors and admins also get a link to the audit trail (/audit).
// Uses window.GwConsole (agent.js). Text only via textContent.
(() => {
  "use strict";
  const C = window.GwConsole;
  if (!C) return;
  const STRINGS = {
    zh: { reveal: "查看完整号码", reason: "查看原因（必填，4–200 字）", confirm: "确认查看", cancel: "取消",
          short: "请填写查看原因（至少 4 个字）", left: (s) => `${s} 秒后隐藏`, audited: "此操作将记入审计日志",
          audit: "审计日志" },
    en: { reveal: "Reveal number", reason: "Why you need it (required, 4–200 characters)", confirm: "Reveal",
          cancel: "Cancel", short: "Give a reason (at least 4 characters)", left: (s) => `hidden in ${s} s`,
          audited: "This is recorded in the audit trail", audit: "Audit trail" },
  };
  const s = () => STRINGS[C.lang() === "en" ? "en" : "zh"];
  let shown = null;  // {chat, phone, until}
  let timer = null;

  function allowed(chat) {
    const me = C.me();
    if (!me || !chat || !chat.profile || !chat.profile.phone) return false;
    if (me.role === "supervisor" || me.role === "admin") return true;
    return chat.summary && chat.summary.state === "assigned" && chat.summary.agent === me.name;
  }

  function phoneCell() {
    const dd = document.querySelector("#profile .profile-list dd");  // the first row is the number
    return dd || null;
  }

  function render(chat) {
    clearTimeout(timer);
    const dd = phoneCell();
    if (!dd || !chat) return;
    if (shown && shown.chat === chat.id && shown.until > Date.now()) {
      const left = Math.ceil((shown.until - Date.now()) / 1000);
      dd.replaceChildren(C.el("span", "revealed-number", shown.phone), C.el("small", "reveal-left", ` ${s().left(left)}`));
      timer = setTimeout(() => render(C.chatOf(chat.id) || chat), 1000);
      return;
    }
    if (shown && shown.chat === chat.id) {  // the minute is over: masked again
      shown = null;
      dd.textContent = C.str(chat.profile && chat.profile.phone) || "—";
    }
    if (!allowed(chat) || dd.querySelector(".reveal-btn, .reveal-form")) return;
    const button = C.el("button", "reveal-btn", s().reveal);
    button.type = "button";
    button.title = s().audited;
    button.addEventListener("click", () => ask(chat, dd));
    dd.append(" ", button);
  }

  function ask(chat, dd) {
    const form = C.el("form", "reveal-form");
    const input = C.el("input", "reveal-reason");
    input.maxLength = 200;
    input.placeholder = s().reason;
    input.setAttribute("aria-label", s().reason);
    const ok = C.el("button", "reveal-ok", s().confirm);
    ok.type = "submit";
    const cancel = C.el("button", "reveal-cancel", s().cancel);
    cancel.type = "button";
    cancel.addEventListener("click", () => { form.remove(); render(chat); });
    form.append(input, ok, cancel);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const reason = input.value.trim();
      if (reason.length < 4) { C.toast(s().short, "error"); input.focus(); return; }
      ok.disabled = true;
      try {
        const body = await C.api("POST", `/api/chats/${encodeURIComponent(chat.id)}/reveal`, { reason });
        shown = { chat: chat.id, phone: C.str(body.phone), until: Date.now() + (Number(body.shown_for) || 60) * 1000 };
      } catch (err) {
        C.fail(err);
        ok.disabled = false;
        return;
      }
      form.remove();
      render(C.chatOf(chat.id) || chat);
    });
    dd.querySelector(".reveal-btn")?.remove();
    dd.append(form);
    input.focus();
  }

  // supervisors and admins: a link to the audit trail (/audit) beside the Cases link
  function auditLink() {
    const me = C.me();
    let link = document.getElementById("audit-link");
    if (!me || (me.role !== "supervisor" && me.role !== "admin")) { if (link) link.remove(); return; }
    const cases = document.getElementById("cases-link");
    if (!link && cases) {
      link = C.el("a", "btn btn-ghost");
      link.id = "audit-link";
      cases.after(link);
    }
    if (!link) return;
    link.textContent = s().audit;
    link.href = `/audit?lang=${C.lang() === "en" ? "en" : "zh"}`;
  }

  C.hooks.chat.push((chat) => render(chat));
  C.hooks.render.push(auditLink);
})();

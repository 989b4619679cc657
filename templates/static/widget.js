// Embed loader for an operator's own site:
//   <script src="https://<gateway>/widget.js" data-lang="zh" data-token="…" async></script>
// Adds a round chat button (bottom right); clicking it opens the gateway's chat page "/" in an iframe
// panel (about 370x560; full screen on phones under 480px wide). Plain JavaScript, no dependencies.
(() => {
  "use strict";
  if (window.__gwChatWidget) return;  // included twice: one button is enough
  const script = document.currentScript ||
    Array.from(document.scripts).reverse().find((s) => /\/widget\.js(?:[?#]|$)/.test(s.src));
  if (!script || !script.src) return;
  window.__gwChatWidget = true;

  const origin = new URL(script.src, location.href).origin;
  const given = script.dataset.lang;
  const lang = given === "en" || given === "zh" ? given
    : /^en\b/i.test(navigator.language || "") ? "en" : "zh";
  const params = new URLSearchParams({ lang });
  if (script.dataset.token) params.set("token", script.dataset.token);
  const label = lang === "en" ? "Online support" : "在线客服";
  const closeLabel = lang === "en" ? "Close chat" : "关闭在线客服";
  const Z = 2147483000;
  const SVG = "http://www.w3.org/2000/svg";

  function icon(d, stroke) {
    const svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("width", "26");
    svg.setAttribute("height", "26");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    svg.style.cssText = "display:block;pointer-events:none";
    const path = document.createElementNS(SVG, "path");
    path.setAttribute("d", d);
    if (stroke) {
      path.setAttribute("fill", "none");
      path.setAttribute("stroke", "currentColor");
      path.setAttribute("stroke-width", "2.2");
      path.setAttribute("stroke-linecap", "round");
    } else {
      path.setAttribute("fill", "currentColor");
    }
    svg.appendChild(path);
    return svg;
  }
  const chatIcon = icon("M4 5.5A2.5 2.5 0 0 1 6.5 3h11A2.5 2.5 0 0 1 20 5.5v9a2.5 2.5 0 0 1-2.5 2.5H10l-4.2 3.6A.5.5 0 0 1 5 20.2V17h-.5A2.5 2.5 0 0 1 2 14.5v-9Zm4 4.25a1.25 1.25 0 1 0 0 2.5 1.25 1.25 0 0 0 0-2.5Zm4 0a1.25 1.25 0 1 0 0 2.5 1.25 1.25 0 0 0 0-2.5Zm4 0a1.25 1.25 0 1 0 0 2.5 1.25 1.25 0 0 0 0-2.5Z");
  const closeIcon = icon("M6 6l12 12M18 6 6 18", true);

  function start() {
    const button = document.createElement("button");
    button.type = "button";
    button.setAttribute("aria-label", label);
    button.setAttribute("aria-expanded", "false");
    button.title = label;
    // all:initial keeps the host page's button styles out
    button.style.cssText = "all:initial;position:fixed;right:20px;bottom:20px;width:56px;height:56px;" +
      "border-radius:50%;background:#1a5fd0;color:#fff;cursor:pointer;display:flex;align-items:center;" +
      "justify-content:center;box-shadow:0 4px 16px rgba(0,0,0,.25);transition:transform .15s;" +
      `z-index:${Z + 1};-webkit-tap-highlight-color:transparent;`;
    button.appendChild(chatIcon);
    const badge = document.createElement("span");
    badge.style.cssText = "all:initial;position:absolute;top:3px;right:3px;width:12px;height:12px;" +
      "border-radius:50%;background:#e5484d;border:2px solid #fff;display:none;pointer-events:none;";
    button.appendChild(badge);
    button.addEventListener("mouseenter", () => { button.style.transform = "scale(1.06)"; });
    button.addEventListener("mouseleave", () => { button.style.transform = ""; });

    let frame = null, open = false, ready = false, savedOverflow = null;
    const phone = () => window.innerWidth < 480;

    function layout() {
      const full = open && phone();
      // On a phone the panel covers the screen and the chat page's own header has the close button;
      // until the page has said it is ready (e.g. the gateway is unreachable) our button stays as ×.
      button.style.display = full && ready ? "none" : "flex";
      button.style.top = full ? "10px" : "auto";
      button.style.bottom = full ? "auto" : "20px";
      button.style.right = full ? "10px" : "20px";
      button.replaceChild(open ? closeIcon : chatIcon, button.firstChild);
      button.setAttribute("aria-label", open ? closeLabel : label);
      button.title = open ? closeLabel : label;
      button.setAttribute("aria-expanded", String(open));
      if (full && savedOverflow === null) {
        savedOverflow = document.documentElement.style.overflow;
        document.documentElement.style.overflow = "hidden";  // no page scrolling behind the panel
      } else if (!full && savedOverflow !== null) {
        document.documentElement.style.overflow = savedOverflow;
        savedOverflow = null;
      }
      if (!frame) return;
      frame.style.display = open ? "block" : "none";
      Object.assign(frame.style, full
        ? { top: "0", left: "0", right: "0", bottom: "0", width: "100%", height: "100%", maxHeight: "none",
            borderRadius: "0", boxShadow: "none" }
        : { top: "auto", left: "auto", right: "20px", bottom: "88px", width: "370px", height: "560px",
            maxWidth: "calc(100vw - 40px)", maxHeight: "calc(100vh - 108px)", borderRadius: "14px",
            boxShadow: "0 12px 40px rgba(0,0,0,.22)" });
    }

    function setOpen(value) {
      open = value;
      if (open) badge.style.display = "none";
      if (open && !frame) {
        frame = document.createElement("iframe");
        frame.src = `${origin}/?${params}`;
        frame.title = label;
        frame.setAttribute("allow", "clipboard-write");
        frame.style.cssText = `all:initial;position:fixed;border:0;background:#f4f6f9;z-index:${Z};` +
          "color-scheme:normal;";
        frame.addEventListener("load", () => {
          ready = false;
          frame.contentWindow.postMessage({ type: "gw-chat:host" }, origin);
        });
        document.body.appendChild(frame);
      } else if (open && ready) {
        frame.contentWindow.postMessage({ type: "gw-chat:open" }, origin);
      }
      layout();
      if (!open) button.focus({ preventScroll: true });
    }

    button.addEventListener("click", () => setOpen(!open));
    window.addEventListener("resize", layout);
    window.addEventListener("message", (event) => {
      if (!frame || event.source !== frame.contentWindow || event.origin !== origin) return;
      const type = event.data && event.data.type;
      if (type === "gw-chat:ready") {
        ready = true;
        layout();
        if (open) frame.contentWindow.postMessage({ type: "gw-chat:open" }, origin);
      } else if (type === "gw-chat:close") {
        setOpen(false);
      } else if (type === "gw-chat:new" && !open) {
        badge.style.display = "block";
      }
    });
    document.body.appendChild(button);
  }

  if (document.body) start();
  else document.addEventListener("DOMContentLoaded", start);
})();

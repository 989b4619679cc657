// Embed: <script src="https://<gateway>/widget.js" data-lang="zh" data-token="…" async></script>
// Adds a round chat button; clicking it opens the gateway's chat page in a panel (full screen on phones).
(() => {
  "use strict";
  const script = document.currentScript || document.querySelector('script[src*="widget.js"]');
  if (!script || window.__gwWidget) return;
  window.__gwWidget = true;
  const origin = new URL(script.src, location.href).origin;
  const lang = script.dataset.lang === "en" ? "en" : "zh";
  const params = new URLSearchParams({ lang });
  if (script.dataset.token) params.set("token", script.dataset.token);

  const button = document.createElement("button");
  button.type = "button";
  button.setAttribute("aria-label", lang === "zh" ? "在线客服" : "Online support");
  button.textContent = lang === "zh" ? "客服" : "Chat";
  Object.assign(button.style, {
    position: "fixed", right: "20px", bottom: "20px", width: "56px", height: "56px", borderRadius: "50%",
    border: "0", background: "#1663c7", color: "#fff", fontSize: "15px", cursor: "pointer", zIndex: "2147483000",
    boxShadow: "0 4px 14px rgba(0,0,0,.25)",
  });

  let frame = null;
  function layout() {
    if (!frame) return;
    const phone = window.innerWidth < 480;
    const open = !frame.hidden;
    // on a phone the panel is full screen: the button becomes a small close button on top of it
    Object.assign(button.style, phone && open
      ? { top: "8px", bottom: "auto", right: "8px", width: "36px", height: "36px", zIndex: "2147483001" }
      : { top: "auto", bottom: "20px", right: "20px", width: "56px", height: "56px", zIndex: "2147483000" });
    button.textContent = open ? "×" : (lang === "zh" ? "客服" : "Chat");
    Object.assign(frame.style, phone
      ? { right: "0", bottom: "0", width: "100vw", height: "100vh", borderRadius: "0" }
      : { right: "20px", bottom: "88px", width: "370px", height: "560px", borderRadius: "12px" });
  }
  button.addEventListener("click", () => {
    if (!frame) {
      frame = document.createElement("iframe");
      frame.src = `${origin}/?${params}`;
      frame.title = button.getAttribute("aria-label");
      Object.assign(frame.style, {
        position: "fixed", border: "0", zIndex: "2147483000", background: "#fff",
        boxShadow: "0 8px 30px rgba(0,0,0,.25)",
      });
      document.body.appendChild(frame);
      layout();
      return;
    }
    frame.hidden = !frame.hidden;
    layout();
  });
  window.addEventListener("resize", layout);
  document.body.appendChild(button);
})();

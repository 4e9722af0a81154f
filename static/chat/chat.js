// Chat: stream each answer (server-sent events) into its placeholder; cards arrive ready for htmx.
(function () {
  "use strict";
  function process(el) { if (window.htmx) { window.htmx.process(el); } }

  function start(el) {
    if (el.dataset.started) { return; }
    el.dataset.started = "1";
    var source = new EventSource(el.dataset.streamUrl);
    var intro = el.querySelector(".intro");
    var cards = el.querySelector(".cards");
    var notice = el.querySelector(".notice");
    var finished = false;
    source.addEventListener("intro", function (e) { intro.textContent += JSON.parse(e.data).text; });
    source.addEventListener("notice", function (e) { notice.textContent = JSON.parse(e.data).text; });
    source.addEventListener("card", function (e) {
      cards.insertAdjacentHTML("beforeend", JSON.parse(e.data).html);
      process(cards.lastElementChild);
    });
    source.addEventListener("done", function (e) {
      finished = true;
      source.close();
      var wrap = document.createElement("div");
      wrap.innerHTML = JSON.parse(e.data).html;
      var fresh = wrap.firstElementChild;
      el.replaceWith(fresh);
      process(fresh);
    });
    source.addEventListener("error", function () {
      if (!finished && source.readyState === EventSource.CLOSED) {
        notice.textContent = "The connection was lost; reload to see the saved answer.";
      }
    });
  }

  function scan(root) {
    (root || document).querySelectorAll("[data-stream-url]").forEach(start);
  }
  document.addEventListener("DOMContentLoaded", function () { scan(document); });
  document.addEventListener("htmx:afterSwap", function () { scan(document); });
  document.addEventListener("htmx:afterRequest", function (e) {
    if (e.target && e.target.id === "chat-form" && e.detail.successful) {
      e.target.querySelector("#chat-text").value = "";
      var empty = document.querySelector(".chat-empty");
      if (empty) { empty.remove(); }
    }
  });
})();

// Chat: stream each answer (server-sent events) into its placeholder; cards arrive ready for htmx.
// The page follows the conversation: a new question scrolls to the top of the screen, so its
// answer fills in below it; opening a conversation shows its latest exchange.
(function () {
  "use strict";
  function process(el) { if (window.htmx) { window.htmx.process(el); } }
  function reduced() { return window.matchMedia("(prefers-reduced-motion: reduce)").matches; }
  function reveal(el) {
    if (el) { el.scrollIntoView({ block: "start", behavior: reduced() ? "auto" : "smooth" }); }
  }

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
      var question = el.previousElementSibling;
      el.replaceWith(fresh);
      process(fresh);
      // the question and the start of its answer in view, wherever the reader was
      reveal(question && question.classList.contains("user") ? question : fresh);
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
  function lastQuestion() {
    var turns = document.querySelectorAll("#thread .turn.user");
    return turns.length ? turns[turns.length - 1] : null;
  }
  document.addEventListener("DOMContentLoaded", function () {
    scan(document);
    reveal(lastQuestion());
  });
  document.addEventListener("htmx:afterSwap", function () { scan(document); });
  document.addEventListener("htmx:afterRequest", function (e) {
    // a 4xx is swapped into #flash, not an error to htmx (responseHandling): only a message the
    // server took clears the box, so a refused one is still there to fix
    if (e.target && e.target.id === "chat-form" && e.detail.successful && e.detail.xhr.status < 400) {
      e.target.querySelector("#chat-text").value = "";
      var empty = document.querySelector(".chat-empty");
      if (empty) { empty.remove(); }
      reveal(lastQuestion());
    }
  });
})();

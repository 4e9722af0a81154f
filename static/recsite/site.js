// Keyboard focus survives the "For you" list refreshing itself after a rating, like or
// dismissal: the control keeps focus if its item is still listed, else the card now in that
// place takes it (htmx alone would drop focus to <body> with the old list).
(function () {
  "use strict";
  var saved = null;
  function cardsOf(list) { return Array.prototype.slice.call(list.querySelectorAll("[data-item-id]")); }
  document.addEventListener("htmx:beforeSwap", function (e) {
    var target = e.detail.target;
    var active = document.activeElement;
    if (!target || target.id !== "for-you" || !active || !target.contains(active)) { return; }
    var card = active.closest("[data-item-id]");
    saved = { id: active.id, index: card ? cardsOf(target).indexOf(card) : -1 };
  });
  document.addEventListener("htmx:afterSettle", function () {
    if (!saved) { return; }
    var list = document.getElementById("for-you");
    var el = saved.id ? document.getElementById(saved.id) : null;
    if (list && (!el || !list.contains(el))) {
      var cards = cardsOf(list);
      var card = cards[Math.max(0, Math.min(saved.index, cards.length - 1))];
      el = card ? card.querySelector(".card-link") : null;
    }
    saved = null;
    if (el && document.activeElement !== el) { el.focus(); }
  });
})();

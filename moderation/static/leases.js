// Claims that run out while the page is open (the queue, a comment's page). Each
// claim on the page says who holds it, until when, and the seconds its lease had
// left when the server wrote the page (templates/moderate/_claim.html). Without
// this script the page kept saying "claimed" after the lease ran out, until a
// reload: a moderator thought a free comment was being handled, or that they still
// held a claim they had lost.
//
// The seconds are counted down from when the page's answer arrived, never compared
// with a server time on the browser's clock, which may be minutes off. Two clocks
// count: performance.now() does not jump when the wall clock is set, but stands
// still while the computer sleeps (Chromium on Linux and macOS); Date.now() keeps
// running through a sleep. A lease has run out when either says so.
//
// Only what the page shows changes: the server still decides whether a claim
// holds, and refuses a decision on a comment someone else claimed meanwhile.
(function () {
  "use strict";

  var pending = Array.prototype.slice.call(document.querySelectorAll(".holder[data-lease-left]"));
  if (!pending.length) { return; }

  var navigation = performance.getEntriesByType
    ? performance.getEntriesByType("navigation")[0] : null;
  // The server read the leases just before the page's first byte arrived: counted
  // from there, a lapse shows a few milliseconds late, never early.
  var arrived = navigation && navigation.responseStart > 0
    ? navigation.responseStart : performance.now();
  var arrivedWall = Date.now() - (performance.now() - arrived);

  function secondsSinceArrival() {
    return Math.max(performance.now() - arrived, Date.now() - arrivedWall) / 1000;
  }

  // Screen readers hear of a lapse in the page's one polite status region
  // (templates/moderate/_claim.html): the row changes where the moderator may not
  // be, and focus stays where it is.
  var news = document.getElementById("lease-news");

  function share(holder) {
    var of = holder.getAttribute("data-share");
    return of ? " (" + of + ")" : "";
  }

  // The comment's first words, so a sentence heard away from the row says which one.
  function opening(holder) {
    var scope = holder.closest(".group") || document;
    var body = scope.querySelector(".body");
    var words = body ? body.textContent.trim().split(/\s+/) : [];
    var text = words.slice(0, 6).join(" ");
    if (text.length > 40) { text = text.slice(0, 40).trim(); }
    return text + (text.length < words.join(" ").length ? "\u2026" : "");
  }

  function lapse(holder) {
    var who = holder.getAttribute("data-holder");
    var until = holder.querySelector("time");
    holder.textContent = "claim by " + who + share(holder) + " lapsed at ";
    if (until) { holder.appendChild(until); }
    holder.appendChild(document.createTextNode(": free again"));
    holder.classList.add("lapsed");
    var row = holder.closest(".group");
    if (row) {
      // Greyed while anyone else still holds a comment of it.
      if (!row.querySelector(".holder.by-other:not(.lapsed)")) { row.classList.remove("claimed"); }
      row.classList.add("lapsed");
    }
    return "Claim by " + who + share(holder) + " on \u2018" + opening(holder) +
      "\u2019 lapsed: free again.";
  }

  var timer = null;

  function check() {
    var spent = secondsSinceArrival();
    var said = [];
    pending = pending.filter(function (holder) {
      if (parseFloat(holder.getAttribute("data-lease-left")) > spent) { return true; }
      said.push(lapse(holder));
      return false;
    });
    // Claims that lapse together are said in one go: each new text replaces the last.
    if (said.length && news) { news.textContent = said.join(" "); }
    if (!pending.length && timer !== null) {
      clearInterval(timer);
      timer = null;
    }
  }

  check();
  if (pending.length) {
    // Every second rather than one timer per lease: a timer runs late after a sleep,
    // and a background tab's timers are slowed, so the page is checked again the
    // moment it is shown.
    timer = setInterval(check, 1000);
    document.addEventListener("visibilitychange", check);
    window.addEventListener("pageshow", check);
  }
})();

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

  function lapse(holder) {
    var until = holder.querySelector("time");
    holder.textContent = "claim by " + holder.getAttribute("data-holder") + " lapsed at ";
    if (until) { holder.appendChild(until); }
    holder.appendChild(document.createTextNode(": free again"));
    holder.classList.add("lapsed");
    var row = holder.closest(".group");
    if (row) {
      row.classList.remove("claimed");
      row.classList.add("lapsed");
    }
  }

  var timer = null;

  function check() {
    var spent = secondsSinceArrival();
    pending = pending.filter(function (holder) {
      if (parseFloat(holder.getAttribute("data-lease-left")) > spent) { return true; }
      lapse(holder);
      return false;
    });
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

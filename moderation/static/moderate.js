// Hotkeys for the review queue (/moderate). No inline script anywhere: this file
// is loaded with <script src defer> so a strict CSP (script-src 'self') works.
//
//   j / k  next / previous comment       a  approve      r  reject (toolbar reason)
//   x      select / unselect             s  spam         h  ham
//   c      claim (renews a claim held)
//   ?      show / hide the key list      Esc closes it
//   Esc    in the reject reasons: back to the current comment (then r)
(function () {
  "use strict";

  var form = document.getElementById("queue-form");
  if (!form) { return; }
  var rows = Array.prototype.slice.call(form.querySelectorAll("li.group"));
  var cursorInput = document.getElementById("cursor");
  var help = document.getElementById("help");
  var selectedCount = document.getElementById("selected-count");
  var current = -1;
  var toolbar = form.querySelector(".toolbar");

  // The height the sticky toolbar covers, for the rows' scroll-margin-top (moderate.css).
  function measureToolbar() {
    var covers = toolbar && getComputedStyle(toolbar).position === "sticky"
      ? toolbar.getBoundingClientRect().height : 0;
    document.documentElement.style.setProperty("--toolbar-height", covers + "px");
  }
  measureToolbar();
  window.addEventListener("resize", measureToolbar);

  // The current row is the one the keys act on. j/k also move focus to it, so a
  // screen reader reads it and Tab goes on to its own buttons; focus moving into a
  // row (Tab, a click) makes it the current one, so "a" never acts on another row.
  function move(index, focus) {
    if (!rows.length) { return; }
    index = Math.max(0, Math.min(rows.length - 1, index));
    if (current >= 0 && rows[current]) {
      rows[current].classList.remove("current");
      rows[current].removeAttribute("aria-current");
    }
    current = index;
    var row = rows[current];
    row.classList.add("current");
    row.setAttribute("aria-current", "true");
    cursorInput.value = String(current);
    if (focus) {
      row.focus({ preventScroll: true });
    }
    row.scrollIntoView({ block: "nearest" });
  }

  function updateSelected() {
    var boxes = form.querySelectorAll("input[name=ids]:checked");
    selectedCount.textContent = String(boxes.length);
    rows.forEach(function (row) {
      var box = row.querySelector("input[name=ids]");
      row.classList.toggle("selected", !!(box && box.checked));
    });
  }

  function press(action) {
    var row = rows[current];
    if (!row) { return; }
    var button = row.querySelector("button.act-" + action);
    if (button) {
      // requestSubmit keeps the button's name/value, like a click.
      if (form.requestSubmit) { form.requestSubmit(button); } else { button.click(); }
    }
  }

  // The key list is a modal dialog: focus goes into it when it opens (or a screen
  // reader would stay on the page behind it) and back where it was when it closes.
  var focusBeforeHelp = null;
  var closeHelp = help.querySelector(".help-close");

  function toggleHelp(show) {
    var open = (show === undefined) ? help.hidden : show;
    if (open === !help.hidden) { return; }
    help.hidden = !open;
    if (open) {
      focusBeforeHelp = document.activeElement;
      closeHelp.focus();
    } else if (focusBeforeHelp && document.contains(focusBeforeHelp)) {
      focusBeforeHelp.focus();
      focusBeforeHelp = null;
    }
  }

  function typing(target) {
    var tag = target && target.tagName;
    return tag === "INPUT" && target.type !== "checkbox" || tag === "SELECT" || tag === "TEXTAREA"
      || (target && target.isContentEditable);
  }

  var reasons = document.getElementById("reject-reason");

  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && event.target === reasons && rows[current]) {
      // The keys do nothing in a list (typing): without this a keyboard user who
      // chose a reason had to Tab through the toolbar and every row before it.
      move(current, true);
      event.preventDefault();
      return;
    }
    if (event.key === "Enter" && event.target.name === "ids") {
      // Enter in a checkbox would send the form with its default button (which changes
      // nothing, but costs a round trip and the scroll position): nothing to send.
      event.preventDefault();
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) { return; }
    var key = event.key;
    if (key === "Escape") { toggleHelp(false); return; }
    if (key === "?") { toggleHelp(); event.preventDefault(); return; }
    if (!help.hidden) { return; }
    switch (key) {
      case "j": move(current + 1, true); break;
      case "k": move(current - 1, true); break;
      case "a": press("approve"); break;
      case "r": press("reject"); break;
      case "s": press("spam"); break;
      case "h": press("ham"); break;
      case "c": press("claim"); break;
      case "x":
        if (rows[current]) {
          var box = rows[current].querySelector("input[name=ids]");
          box.checked = !box.checked;
          updateSelected();
        }
        break;
      default: return;
    }
    event.preventDefault();
  });

  form.addEventListener("change", updateSelected);
  rows.forEach(function (row, index) {
    row.addEventListener("click", function () { move(index, false); });
    row.addEventListener("focusin", function () { move(index, false); });
  });
  closeHelp.addEventListener("click", function () { toggleHelp(false); });
  help.addEventListener("keydown", function (event) {
    // Tab stays in the dialog (its one control) while it is open.
    if (event.key === "Tab") { event.preventDefault(); }
  });

  // After a decision the server sends us back to #pos-N: the next comment is now at N.
  var match = /^#pos-(\d+)$/.exec(window.location.hash);
  move(match ? parseInt(match[1], 10) : 0, false);
  updateSelected();
  // Reject without a reason came back here: the list to choose from gets focus. Only
  // once the page has loaded: the browser focuses the #pos-N row after this script.
  if (reasons && reasons.getAttribute("aria-invalid") === "true") {
    window.addEventListener("load", function () { reasons.focus(); });
  }
})();

// Keyboard shortcuts of the review queue and focus after an htmx swap. No inline script anywhere (CSP).
// Shortcuts are single keys (WCAG 2.1.4): they act only while focus is inside the review panel and not in a
// text field, and a checkbox turns them off, so they never fight a screen reader's own keys.
(function () {
  "use strict";
  var OFF_KEY = "avvik.snarveier.av";

  function shortcutsOff() {
    try { return window.localStorage.getItem(OFF_KEY) === "1"; } catch (e) { return false; }
  }

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || shortcutsOff()) { return; }
    var target = event.target;
    if (!(target instanceof Element)) { return; }
    var panel = target.closest("[data-snarveier]");
    if (!panel || target.closest("input, textarea, select, [contenteditable]")) { return; }
    var control = panel.querySelector('[data-snarvei="' + event.key + '"]');
    if (!control) { return; }
    event.preventDefault();
    // A key pressed right after a swap may come before htmx has processed the new panel: do it now, or
    // the click would load a whole page instead of the next report.
    if (window.htmx) { window.htmx.process(panel); }
    if (control.tagName === "SUMMARY") {
      var details = control.parentElement;
      details.open = true;
      var first = details.querySelector("select, input");
      if (first) { first.focus(); }
      return;
    }
    control.click();
  });

  document.addEventListener("change", function (event) {
    var box = event.target;
    if (box instanceof HTMLInputElement && box.hasAttribute("data-snarveier-av")) {
      try { window.localStorage.setItem(OFF_KEY, box.checked ? "1" : "0"); } catch (e) { /* private mode */ }
    }
  });

  document.addEventListener("DOMContentLoaded", function () {
    var box = document.querySelector("[data-snarveier-av]");
    if (box) { box.checked = shortcutsOff(); }
  });

  // After htmx swaps in the next report, put focus on its heading so the keyboard flow goes on from there.
  document.addEventListener("htmx:afterSettle", function (event) {
    var detail = event.detail || {};
    var swapped = detail.target || detail.elt;
    if (!swapped || swapped.id !== "panel") { return; }  // the session status poll must never move focus
    var heading = document.querySelector("#panel [data-fokus]");
    if (heading) { heading.focus(); }
  });
})();

/* Small progressive help for the public pages; every page works without it. */
(function () {
  "use strict";

  // Quick exit: replace this page (the back button does not return) and blank it at once.
  var exit = document.getElementById("quick-exit");
  function leave() {
    document.title = "";
    if (document.body) { document.body.hidden = true; }
    window.location.replace(exit.href);
  }
  if (exit) {
    exit.addEventListener("click", function (event) {
      event.preventDefault();
      leave();
    });
    // The same from the keyboard: Escape three times within 1.5 s (the hint beside the
    // button says so). Escape rather than GOV.UK's Shift: the key people reach for to get
    // away, and it closes nothing on these pages.
    var presses = [];
    document.addEventListener("keydown", function (event) {
      if (event.key !== "Escape" && event.key !== "Esc") { return; }
      var at = Date.now();
      presses = presses.filter(function (t) { return at - t < 1500; });
      presses.push(at);
      if (presses.length >= 3) { presses = []; leave(); }
    });
  }

  // Time zone: the browser's own, unless the person chose one already.
  var zone = document.querySelector("select[data-detect-timezone]");
  if (zone && !zone.value) {
    try {
      var detected = Intl.DateTimeFormat().resolvedOptions().timeZone;
      for (var i = 0; i < zone.options.length; i++) {
        if (zone.options[i].value === detected) { zone.value = detected; break; }
      }
    } catch (e) { /* the person chooses */ }
  }

  // Errors: move focus to the summary so screen readers announce it.
  var summary = document.getElementById("error-summary");
  if (summary) { summary.focus(); }

  // The e-mail's link: /r/<ref>#token=rl_... The fragment never reaches the server; post it
  // once, and take it out of the address bar and history first.
  var open = document.querySelector("form[data-auto-open]");
  if (open) {
    var match = /(?:^#|&)token=([^&]+)/.exec(window.location.hash);
    if (match) {
      open.elements.namedItem("token").value = decodeURIComponent(match[1]);
      window.history.replaceState(null, "", window.location.pathname + window.location.search);
      open.submit();
    }
  }
})();

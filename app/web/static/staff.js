/* Staff and expert pages: small progressive helpers. Without JavaScript everything works; the
   minutes left are rendered by the server, filters are plain GET forms (bookmarkable URLs). */
(function () {
  "use strict";
  var offset = 0; // server clock minus this browser's clock, in ms

  function syncClock(root) {
    var el = root.querySelector("[data-server-now]");
    if (!el) return;
    var server = Date.parse(el.getAttribute("data-server-now"));
    if (!isNaN(server)) offset = server - Date.now();
  }

  // Words in the page's language: the sentences come from the server's catalogs (data-t-* on
  // <body>), the minutes with their plural from the browser's CLDR (Intl), digits as the
  // server writes them (Latin).
  function text(name, fallback) {
    var value = document.body && document.body.getAttribute("data-t-" + name);
    return value || fallback;
  }
  function fill(template, values) {
    return template.replace(/\{(\w+)\}/g, function (whole, key) {
      return Object.prototype.hasOwnProperty.call(values, key) ? values[key] : whole;
    });
  }
  function pageLocale() {
    var lang = document.documentElement.getAttribute("lang") || "en";
    return (lang === "en" ? "en-GB" : lang) + "-u-nu-latn"; // the server's English is British
  }
  var minuteFormat = null;
  function minutesInWords(n) {
    try {
      if (!minuteFormat) {
        minuteFormat = new Intl.NumberFormat(pageLocale(), {
          style: "unit", unit: "minute", unitDisplay: "long"
        });
      }
      return minuteFormat.format(n);
    } catch (e) {
      return n + " min"; // a browser without Intl units
    }
  }
  var STATES = { awaiting: ["awaiting", "On track"], due_soon: ["due-soon", "Due soon"],
                 breached: ["breached", "Breached"] };

  function tick() {
    var now = Date.now() + offset;
    var cells = document.querySelectorAll("[data-due]");
    var dueSoonEl = document.querySelector("[data-due-soon-minutes]");
    var dueSoon = dueSoonEl ? parseInt(dueSoonEl.getAttribute("data-due-soon-minutes"), 10) : 15;
    for (var i = 0; i < cells.length; i++) {
      var cell = cells[i];
      var due = Date.parse(cell.getAttribute("data-due"));
      if (isNaN(due)) continue;
      var ms = due - now;
      var minutes = Math.floor(ms / 60000);
      var countdown = cell.querySelector(".countdown");
      var label = cell.querySelector(".sla-label");
      var state;
      if (ms <= 0) {
        state = "breached";
        if (countdown) {
          countdown.textContent = fill(text("overdue", "{time} overdue"), {
            time: minutesInWords(Math.max(1, Math.ceil(-ms / 60000)))
          });
        }
      } else {
        state = ms < dueSoon * 60000 ? "due_soon" : "awaiting";
        var secs = Math.floor((ms % 60000) / 1000);
        if (countdown) {
          countdown.textContent = fill(text("left", "{time} left"), {
            time: minutes < 60
              ? minutes + ":" + (secs < 10 ? "0" : "") + secs
              : minutesInWords(minutes)
          });
        }
      }
      if (label) label.textContent = text(STATES[state][0], STATES[state][1]);
      cell.classList.remove("sla-awaiting", "sla-due_soon", "sla-breached");
      cell.classList.add("sla-" + state);
    }
  }

  function refreshQueue(box) {
    var url = box.getAttribute("data-live-url");
    var status = document.getElementById("queue-refreshed");
    fetch(url, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } })
      .then(function (resp) {
        if (resp.status === 401) { window.location.reload(); return null; }
        if (!resp.ok) throw new Error(String(resp.status));
        return resp.text();
      })
      .then(function (html) {
        if (html === null) return;
        box.innerHTML = html;
        syncClock(box);
        tick();
        if (status) {
          var at;
          try { at = new Date().toLocaleTimeString(pageLocale()); } catch (e) { at = new Date().toLocaleTimeString(); }
          status.textContent = fill(text("updated", "Updated at {time}"), { time: at });
        }
      })
      .catch(function () {
        if (status) status.textContent = text("refresh-failed", "The list could not be refreshed; trying again.");
      });
  }

  // Saved filters: kept in this browser's localStorage (a bookmark of the URL works too).
  var STORE = "intake.savedQueueViews";
  function loadViews() {
    try { return JSON.parse(window.localStorage.getItem(STORE) || "[]"); } catch (e) { return []; }
  }
  function storeViews(views) {
    try { window.localStorage.setItem(STORE, JSON.stringify(views)); } catch (e) { /* private mode */ }
  }
  function drawViews() {
    var list = document.getElementById("saved-list");
    if (!list) return;
    list.textContent = "";
    loadViews().forEach(function (v, index) {
      var li = document.createElement("li");
      var a = document.createElement("a");
      a.href = "/staff/queue" + (v.query ? "?" + v.query : "");
      a.textContent = v.name;
      var remove = document.createElement("button");
      remove.type = "button";
      remove.className = "remove-view";
      remove.textContent = "×";
      remove.setAttribute("aria-label", fill(text("remove", "Remove {name}"), { name: v.name }));
      remove.addEventListener("click", function () {
        var views = loadViews();
        views.splice(index, 1);
        storeViews(views);
        drawViews();
      });
      li.appendChild(a);
      li.appendChild(remove);
      list.appendChild(li);
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    syncClock(document);
    tick();
    if (document.querySelector("[data-due]") || document.getElementById("queue-live")) {
      window.setInterval(tick, 1000);
    }
    var box = document.getElementById("queue-live");
    if (box) {
      var every = parseInt(box.getAttribute("data-refresh-seconds"), 10) || 30;
      window.setInterval(function () {
        if (!document.hidden) refreshQueue(box);
      }, every * 1000);
      var note = document.getElementById("queue-live-note");
      if (note) note.hidden = false;
      var now = document.getElementById("queue-refresh-now");
      if (now) now.addEventListener("click", function () { refreshQueue(box); });
    }
    var saved = document.getElementById("saved-views");
    var form = document.getElementById("save-view-form");
    if (saved && form) {
      saved.hidden = false;
      drawViews();
      form.addEventListener("submit", function (event) {
        event.preventDefault();
        var input = document.getElementById("save-view-name");
        var name = input.value.trim().slice(0, 40);
        if (!name) return;
        var views = loadViews().filter(function (v) { return v.name !== name; });
        views.push({ name: name, query: window.location.search.replace(/^\?/, "").replace(/(^|&)cursor=[^&]*/g, "") });
        storeViews(views.slice(-20));
        input.value = "";
        drawViews();
      });
    }
    var presence = document.getElementById("presence");
    if (presence) {
      var beat = function () {
        if (document.hidden) return;
        var reply = document.getElementById("reply_body");
        var replying = reply && (document.activeElement === reply || reply.value.trim() !== "");
        var body = new URLSearchParams();
        body.set("csrf_token", presence.getAttribute("data-csrf"));
        body.set("activity", replying ? "replying" : "viewing");
        fetch(presence.getAttribute("data-presence-url"), {
          method: "POST",
          credentials: "same-origin",
          headers: { "X-Requested-With": "fetch" },
          body: body
        }).then(function (resp) {
          return resp.ok ? resp.text() : null;
        }).then(function (html) {
          if (html !== null) presence.innerHTML = html;
        }).catch(function () { /* next beat */ });
      };
      var seconds = parseInt(presence.getAttribute("data-presence-seconds"), 10) || 15;
      window.setInterval(beat, seconds * 1000);
      var replyBox = document.getElementById("reply_body");
      if (replyBox) replyBox.addEventListener("focus", beat);
    }
    // Insert a saved reply where the cursor is (without JavaScript the form reloads the page
    // with the box filled); staff then adapt it.
    var savedForm = document.getElementById("saved-form");
    var replyText = document.getElementById("reply_body");
    if (savedForm && replyText) {
      savedForm.addEventListener("submit", function (event) {
        var select = document.getElementById("saved");
        var option = select && select.options[select.selectedIndex];
        var text = option && option.getAttribute("data-body");
        if (text === null || text === undefined) return;
        event.preventDefault();
        var start = replyText.selectionStart || 0;
        var end = replyText.selectionEnd || 0;
        var value = replyText.value;
        if (!value.trim()) {
          replyText.value = text;
        } else {
          replyText.value = value.slice(0, start) + text + value.slice(end);
        }
        replyText.focus();
        var at = (value.trim() ? start : 0) + text.length;
        replyText.setSelectionRange(at, at);
      });
    }
    var summary = document.getElementById("error-summary");
    if (summary) summary.focus();
    var confirmForms = document.querySelectorAll("form[data-confirm]");
    for (var i = 0; i < confirmForms.length; i++) {
      confirmForms[i].addEventListener("submit", function (event) {
        if (!window.confirm(this.getAttribute("data-confirm"))) event.preventDefault();
      });
    }
  });
})();

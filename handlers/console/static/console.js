// Progress of the index rebuild: poll the status and update the page (no external script).
(function () {
  var box = document.getElementById("rebuild");
  if (!box) return;
  var url = box.getAttribute("data-status-url");
  var text = document.getElementById("rebuild-text");
  var bar = document.getElementById("rebuild-progress");
  var wasRunning = box.getAttribute("data-state") === "running";
  function poll() {
    fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (s) {
        if (!s) return;
        bar.value = s.percent;
        bar.textContent = s.percent + "%";
        if (s.state === "running") {
          text.textContent = "Đang dựng: " + s.stage_label + " " + s.done + "/" + s.total +
            " (" + s.percent + "%, " + (s.seconds || 0) + " giây)";
          wasRunning = true;
          setTimeout(poll, 700);
        } else if (wasRunning) {
          window.location.reload();
        }
      })
      .catch(function () { setTimeout(poll, 3000); });
  }
  if (wasRunning) poll();
})();

// A form is sent once: its buttons are disabled right after the submit (a double click makes one request).
document.addEventListener("submit", function (ev) {
  var f = ev.target;
  if (!f || (f.method || "").toLowerCase() !== "post" || ev.defaultPrevented) return;
  if (f.getAttribute("data-sent")) { ev.preventDefault(); return; }
  f.setAttribute("data-sent", "1");
  setTimeout(function () {
    var bs = document.querySelectorAll("button[type=submit], button:not([type])");
    for (var i = 0; i < bs.length; i++) {
      if (bs[i].form === f) { bs[i].disabled = true; bs[i].setAttribute("aria-disabled", "true"); }
    }
  }, 0);
});

// Unread counts in the menu, refreshed quietly every minute; a page is never reloaded under the officer's
// hands: when new items arrive, a notice offers to reload.
(function () {
  var url = document.body.getAttribute("data-unread-url");
  if (!url) return;
  var names = { unanswered: "câu hỏi chưa trả lời", followups: "yêu cầu gặp cán bộ" };
  function refresh() {
    if (document.hidden) return;
    fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (counts) {
        if (!counts) return;
        var news = [];
        Object.keys(names).forEach(function (k) {
          var el = document.getElementById("unread-" + k);
          if (!el || typeof counts[k] !== "number") return;
          var before = parseInt(el.getAttribute("data-n"), 10) || 0;
          if (counts[k] > before) news.push((counts[k] - before) + " " + names[k] + " mới");
          el.setAttribute("data-n", String(counts[k]));
          el.firstChild.nodeValue = String(counts[k]);
          el.hidden = counts[k] === 0;
        });
        if (news.length) {
          var box = document.getElementById("fresh");
          box.textContent = "Có " + news.join(", ") + ". ";
          var a = document.createElement("a");
          a.href = window.location.href;
          a.textContent = "Tải lại trang";
          box.appendChild(a);
          box.hidden = false;
        }
      })
      .catch(function () { /* quiet: try again next time */ });
  }
  var period = parseInt(document.body.getAttribute("data-unread-seconds"), 10) || 60;
  setInterval(refresh, period * 1000);
})();

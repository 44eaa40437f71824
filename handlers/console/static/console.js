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

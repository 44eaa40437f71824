/* Web chat (plain ES5 for old phones: no fetch, no arrow functions, no build step). */
(function () {
  "use strict";
  var POLL_MS = 20000;
  var FOLD_CHARS = 480;   /* a reply longer than this shows its beginning, the rest behind "Xem thêm" */
  var FOLD_LINES = 8;
  /* the feedback buttons' payload prefix, from bot/protocol.py through the page */
  var FEEDBACK = document.body.getAttribute("data-feedback-prefix");
  var log = document.getElementById("log");
  var form = document.getElementById("ask");
  var input = document.getElementById("q");
  var send = document.getElementById("send");
  var status = document.getElementById("status");
  var busy = false;
  var typing = null;

  function hex(bytes) {
    var s = "", i;
    for (i = 0; i < bytes.length; i++) { s += (bytes[i] + 256).toString(16).slice(1); }
    return s;
  }

  function randomBytes(n) {
    var c = window.crypto || window.msCrypto, bytes = new Uint8Array(n), i;
    if (c && c.getRandomValues) { c.getRandomValues(bytes); return bytes; }
    for (i = 0; i < n; i++) { bytes[i] = Math.floor(Math.random() * 256); }
    return bytes;
  }

  /* 128 random bits: the server keeps the conversation of such ids only */
  function randomId() { return "w" + hex(randomBytes(16)); }

  function uuid() {
    var b = randomBytes(16);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    var h = hex(b);
    return h.slice(0, 8) + "-" + h.slice(8, 12) + "-" + h.slice(12, 16) + "-" + h.slice(16, 20) + "-" + h.slice(20);
  }

  var chatId = null;
  try { chatId = window.localStorage.getItem("ldtbxh_chat_id"); } catch (e) { chatId = null; }
  if (!chatId || !/^[A-Za-z0-9_-]{22,64}$/.test(chatId)) {
    chatId = randomId();
    try { window.localStorage.setItem("ldtbxh_chat_id", chatId); } catch (e2) { /* private mode */ }
  }
  var base = "api/chat/" + encodeURIComponent(chatId);

  function request(method, url, body, done) {
    var xhr = new XMLHttpRequest();
    var finished = false;
    function finish(code, data) { if (!finished) { finished = true; done(code, data); } }
    xhr.open(method, url, true);
    xhr.timeout = 30000;
    if (body !== null) { xhr.setRequestHeader("Content-Type", "application/json"); }
    xhr.onreadystatechange = function () {
      if (xhr.readyState !== 4) { return; }
      var data = null;
      try { data = JSON.parse(xhr.responseText); } catch (e) { data = null; }
      finish(xhr.status, data);
    };
    xhr.ontimeout = function () { finish(0, null); };
    xhr.onerror = function () { finish(0, null); };
    xhr.send(body === null ? null : JSON.stringify(body));
  }

  /* Text with its web addresses as links; never innerHTML with server text. */
  function appendText(p, text) {
    var re = /(https?:\/\/[^\s<>()"]+[^\s<>()".,;:!?])/g, last = 0, m, a;
    while ((m = re.exec(text)) !== null) {
      if (m.index > last) { p.appendChild(document.createTextNode(text.slice(last, m.index))); }
      a = document.createElement("a");
      a.href = m[1]; a.target = "_blank"; a.rel = "noopener noreferrer";
      a.appendChild(document.createTextNode(m[1]));
      p.appendChild(a);
      last = m.index + m[1].length;
    }
    if (last < text.length) { p.appendChild(document.createTextNode(text.slice(last))); }
  }

  /* Where a long text is cut: after a whole line (or sentence) near FOLD_CHARS characters / FOLD_LINES lines. */
  function foldAt(text) {
    var lines = text.split("\n");
    if (text.length <= FOLD_CHARS + 120 && lines.length <= FOLD_LINES + 2) { return -1; }
    var pos = 0, i;
    for (i = 0; i < lines.length && i < FOLD_LINES; i++) {
      if (pos + lines[i].length > FOLD_CHARS && pos > 0) { break; }
      pos += lines[i].length + 1;
    }
    if (pos === 0 || pos > FOLD_CHARS + 120) {
      var dot = text.lastIndexOf(". ", FOLD_CHARS);
      pos = dot > 80 ? dot + 2 : FOLD_CHARS;
    }
    return pos < text.length - 40 ? pos : -1;
  }

  var folds = 0;
  function addText(div, text) {
    var p = document.createElement("p");
    var cut = foldAt(text);
    if (cut < 0) {
      appendText(p, text);
      div.appendChild(p);
      return;
    }
    appendText(p, text.slice(0, cut).replace(/\s+$/, ""));
    div.appendChild(p);
    var rest = document.createElement("p");
    rest.id = "more-" + (++folds);
    rest.className = "more-text";
    rest.hidden = true;
    appendText(rest, text.slice(cut));
    div.appendChild(rest);
    var more = document.createElement("button");
    more.type = "button";
    more.className = "more";
    more.setAttribute("aria-expanded", "false");
    more.setAttribute("aria-controls", rest.id);
    more.appendChild(document.createTextNode("Xem thêm"));
    more.onclick = function () {
      var open = rest.hidden;
      rest.hidden = !open;
      more.setAttribute("aria-expanded", open ? "true" : "false");
      more.firstChild.nodeValue = open ? "Thu gọn" : "Xem thêm";
      if (!open) { scrollToStart(div); }
    };
    div.appendChild(more);
  }

  function addMessage(cls, who, text, buttons, kind) {
    var div = document.createElement("div");
    div.className = "msg " + cls;
    var label = document.createElement("span");
    label.className = "who";
    label.appendChild(document.createTextNode(who));
    div.appendChild(label);
    addText(div, text || "");
    if (buttons && buttons.length) {
      var group = document.createElement("div");
      group.className = "buttons";
      group.setAttribute("role", "group");
      group.setAttribute("aria-label", "Lựa chọn");
      group.setAttribute("data-kind", kind || "");
      for (var i = 0; i < buttons.length; i++) { group.appendChild(makeButton(buttons[i], group)); }
      div.appendChild(group);
    }
    log.insertBefore(div, typing && typing.parentNode === log ? typing : null);
    return div;
  }

  /* The top of a new reply at the top of the conversation box: the citizen reads it from its beginning. */
  function scrollToStart(div) {
    log.scrollTop = Math.max(0, div.offsetTop - 6);
  }

  function isFeedback(payload) { return payload.indexOf(FEEDBACK) === 0; }

  /* A pressed button is used: it (and what it excludes) is disabled. In a list of choices or a form's
     "Xác nhận" / "Hủy", one answer is enough; feedback buttons go together. */
  function markUsed(group, el) {
    var kind = group.getAttribute("data-kind");
    var payload = el.getAttribute("data-payload") || "";
    var all = group.getElementsByTagName("button");
    for (var j = 0; j < all.length; j++) {
      var p = all[j].getAttribute("data-payload") || "";
      if (all[j] === el || kind === "choices" || kind === "followup" ||
          (isFeedback(payload) && isFeedback(p))) {
        all[j].disabled = true;
      }
    }
  }

  function makeButton(b, group) {
    var el = document.createElement("button");
    el.type = "button";
    el.appendChild(document.createTextNode(b.label));
    el.setAttribute("data-payload", b.payload);
    el.onclick = function () {
      if (busy) { return; }
      markUsed(group, el);
      /* a disabled button loses the keyboard focus: hand it to the question box */
      if (el.disabled && document.activeElement === el) { input.focus(); }
      ask({ payload: b.payload, label: b.label }, b.label);
    };
    return el;
  }

  function showReplies(replies) {
    var first = null;
    for (var i = 0; i < replies.length; i++) {
      var r = replies[i];
      var div = addMessage(r.kind === "error" ? "bot error" : "bot", "Trợ lý", r.text, r.buttons, r.kind);
      if (!first) { first = div; }
    }
    return first;
  }

  function setBusy(on) {
    busy = on;
    send.disabled = on;
    status.innerHTML = "";
    if (on) {
      status.appendChild(document.createTextNode("Trợ lý đang trả lời..."));
      typing = document.createElement("div");
      typing.className = "msg typing";
      typing.setAttribute("aria-hidden", "true");
      for (var i = 0; i < 3; i++) { typing.appendChild(document.createElement("span")); }
      log.appendChild(typing);
      log.scrollTop = log.scrollHeight;
    } else if (typing) {
      if (typing.parentNode) { typing.parentNode.removeChild(typing); }
      typing = null;
    }
  }

  function failed(body, bubble, code, data) {
    bubble.className += " failed";
    if (body.text && !input.value) { input.value = body.text; }  /* the question is not lost */
    var text = code === 0
      ? "Không gửi được tin nhắn (mất kết nối). Câu hỏi của bạn vẫn còn, bấm “Thử lại” khi có mạng."
      : "Xin lỗi, hệ thống đang gặp sự cố nên chưa trả lời được. Bấm “Thử lại” sau ít phút.";
    if (data && data.replies && data.replies.length && code >= 500) { text = data.replies[0].text; }
    var err = addMessage("bot error", "Trợ lý", text, null);
    var retry = document.createElement("button");
    retry.type = "button";
    retry.className = "retry";
    retry.appendChild(document.createTextNode("Thử lại"));
    retry.onclick = function () {
      if (busy) { return; }
      err.parentNode.removeChild(err);
      bubble.className = bubble.className.replace(/ failed/g, "");
      deliver(body, bubble);
    };
    var row = document.createElement("div");
    row.className = "buttons";
    row.appendChild(retry);
    err.appendChild(row);
    scrollToStart(err);
    retry.focus();
  }

  function deliver(body, bubble) {
    setBusy(true);
    request("POST", "api/chat", body, function (code, data) {
      setBusy(false);
      if (code === 200 && data && data.replies) {
        if (body.text && input.value === body.text) { input.value = ""; }
        var first = showReplies(data.replies);
        if (first) { scrollToStart(first); }
      } else if (code >= 400 && code < 500 && data && data.replies) {
        /* refused (too long, too fast...): said as the server says it; the text stays in the box */
        if (body.text && !input.value) { input.value = body.text; }
        scrollToStart(showReplies(data.replies));
      } else {
        failed(body, bubble, code, data);
      }
    });
  }

  function ask(body, shown) {
    if (busy) { return; }
    body.chat_id = chatId;
    body.message_id = uuid();  /* the server's idempotency key: "Thử lại" re-sends it, answered once */
    var bubble = addMessage("user", "Bạn", shown, null);
    deliver(body, bubble);
  }

  function submit() {
    var text = input.value.replace(/^\s+|\s+$/g, "");
    if (!text) { input.focus(); return; }
    if (busy) { return; }
    input.value = "";
    ask({ text: text }, text);
    input.focus();
  }

  form.onsubmit = function (ev) {
    if (ev && ev.preventDefault) { ev.preventDefault(); }
    submit();
    return false;
  };
  input.onkeydown = function (ev) {
    ev = ev || window.event;
    if ((ev.key === "Enter" || ev.keyCode === 13) && !ev.shiftKey) {
      if (ev.preventDefault) { ev.preventDefault(); }
      submit();
      return false;
    }
    return true;
  };

  /* The quick replies of the first screen */
  var chips = log.querySelectorAll(".chips button");
  for (var c = 0; c < chips.length; c++) {
    (function (el) {
      el.onclick = function () {
        if (busy) { return; }
        var label = el.firstChild.nodeValue;
        el.disabled = true;
        if (document.activeElement === el) { input.focus(); }
        if (el.getAttribute("data-payload")) {
          ask({ payload: el.getAttribute("data-payload"), label: label }, label);
        } else {
          ask({ text: el.getAttribute("data-text") }, el.getAttribute("data-text"));
        }
      };
    })(chips[c]);
  }

  /* A reload restores the conversation kept on the server (with the buttons already used disabled). */
  function restore(messages) {
    var last = null, i, j;
    for (i = 0; i < messages.length; i++) {
      var m = messages[i];
      if (m.role === "user") {
        addMessage("user", "Bạn", m.text, null);
        if (m.payload) {
          var groups = log.querySelectorAll(".msg .buttons");
          for (j = groups.length - 1; j >= 0; j--) {
            var hit = null, btns = groups[j].getElementsByTagName("button"), k;
            for (k = 0; k < btns.length; k++) {
              if (btns[k].getAttribute("data-payload") === m.payload && !btns[k].disabled) { hit = btns[k]; }
            }
            if (hit) { markUsed(groups[j], hit); break; }
          }
        }
      } else if (m.role === "officer") {
        last = addMessage("officer", "Cán bộ", m.text, m.buttons, "officer");
      } else {
        last = addMessage(m.kind === "error" ? "bot error" : "bot", "Trợ lý", m.text, m.buttons, m.kind);
      }
    }
    if (last) { scrollToStart(last); }
  }

  /* Officers' messages: shown once (by id), then acknowledged so the server marks them delivered. */
  var shown = {};
  function poll() {
    if (document.hidden) { return; }
    request("GET", base + "/messages", null, function (code, data) {
      if (code !== 200 || !data || !data.messages || !data.messages.length) { return; }
      var ids = [], first = null;
      for (var i = 0; i < data.messages.length; i++) {
        var m = data.messages[i];
        if (!shown[m.id]) {
          shown[m.id] = true;
          var div = addMessage("officer", "Cán bộ", m.text, m.buttons, "officer");
          if (!first) { first = div; }
        }
        ids.push(m.id);
      }
      if (first) { scrollToStart(first); }
      request("POST", base + "/messages/ack", {ids: ids}, function () { /* unacknowledged ones come back, shown once */ });
    });
  }

  request("GET", base + "/history", null, function (code, data) {
    if (code === 200 && data && data.messages) { restore(data.messages); }
    window.setInterval(poll, POLL_MS);
    poll();
  });
})();

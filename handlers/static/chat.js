/* Web chat (plain ES5 for old phones: no fetch, no arrow functions, no build step). */
(function () {
  "use strict";
  var POLL_MS = 20000;
  var log = document.getElementById("log");
  var form = document.getElementById("ask");
  var input = document.getElementById("q");
  var send = document.getElementById("send");
  var status = document.getElementById("status");
  var busy = false;

  function randomId() {
    var s = "w", i, bytes;
    var c = window.crypto || window.msCrypto;
    if (c && c.getRandomValues) {
      bytes = new Uint8Array(16);
      c.getRandomValues(bytes);
      for (i = 0; i < bytes.length; i++) { s += (bytes[i] + 256).toString(16).slice(1); }
      return s;
    }
    for (i = 0; i < 32; i++) { s += Math.floor(Math.random() * 16).toString(16); }
    return s;
  }

  var chatId = null;
  try { chatId = window.localStorage.getItem("ldtbxh_chat_id"); } catch (e) { chatId = null; }
  if (!chatId || !/^[A-Za-z0-9_-]{8,64}$/.test(chatId)) {
    chatId = randomId();
    try { window.localStorage.setItem("ldtbxh_chat_id", chatId); } catch (e2) { /* private mode */ }
  }

  function request(method, url, body, done) {
    var xhr = new XMLHttpRequest();
    xhr.open(method, url, true);
    xhr.timeout = 30000;
    if (body !== null) { xhr.setRequestHeader("Content-Type", "application/json"); }
    xhr.onreadystatechange = function () {
      if (xhr.readyState !== 4) { return; }
      var data = null;
      try { data = JSON.parse(xhr.responseText); } catch (e) { data = null; }
      done(xhr.status, data);
    };
    xhr.ontimeout = function () { done(0, null); };
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

  function addMessage(cls, who, text, buttons) {
    var div = document.createElement("div");
    div.className = "msg " + cls;
    var label = document.createElement("span");
    label.className = "who";
    label.appendChild(document.createTextNode(who));
    div.appendChild(label);
    var p = document.createElement("p");
    appendText(p, text || "");
    div.appendChild(p);
    if (buttons && buttons.length) {
      var group = document.createElement("div");
      group.className = "buttons";
      group.setAttribute("role", "group");
      group.setAttribute("aria-label", "Lựa chọn");
      for (var i = 0; i < buttons.length; i++) { group.appendChild(makeButton(buttons[i], group)); }
      div.appendChild(group);
    }
    log.appendChild(div);
    log.scrollTop = log.scrollHeight;
    return div;
  }

  function makeButton(b, group) {
    var el = document.createElement("button");
    el.type = "button";
    el.appendChild(document.createTextNode(b.label));
    el.setAttribute("data-payload", b.payload);
    el.onclick = function () {
      if (busy) { return; }
      var isFeedback = b.payload.indexOf("fb:") === 0;
      var all = group.getElementsByTagName("button");
      for (var j = 0; j < all.length; j++) {
        if (all[j] === el || (isFeedback && all[j].getAttribute("data-payload").indexOf("fb:") === 0)) {
          all[j].disabled = true;
        }
      }
      /* a disabled button loses the keyboard focus: hand it to the question box */
      if (el.disabled && document.activeElement === el) { input.focus(); }
      ask({ payload: b.payload }, b.label);
    };
    return el;
  }

  function showReplies(replies) {
    for (var i = 0; i < replies.length; i++) {
      var r = replies[i];
      addMessage(r.kind === "error" ? "bot error" : "bot", "Trợ lý", r.text, r.buttons);
    }
  }

  function setBusy(on) {
    busy = on;
    send.disabled = on;
    status.innerHTML = "";
    if (on) { status.appendChild(document.createTextNode("Đang trả lời...")); }
  }

  function ask(body, shown) {
    if (busy) { return; }
    body.chat_id = chatId;
    addMessage("user", "Bạn", shown, null);
    setBusy(true);
    request("POST", "api/chat", body, function (code, data) {
      setBusy(false);
      if (data && data.replies) {
        showReplies(data.replies);
      } else {
        addMessage("bot error", "Trợ lý", code === 0
          ? "Không kết nối được máy chủ. Bạn kiểm tra mạng rồi thử lại nhé."
          : "Xin lỗi, hệ thống đang gặp sự cố. Bạn vui lòng thử lại sau ít phút.", null);
      }
    });
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

  function poll() {
    if (document.hidden) { return; }
    request("GET", "api/chat/" + encodeURIComponent(chatId) + "/messages", null, function (code, data) {
      if (code === 200 && data && data.messages) {
        for (var i = 0; i < data.messages.length; i++) {
          var m = data.messages[i];
          addMessage("officer", "Cán bộ", m.text, m.buttons);
        }
      }
    });
  }
  window.setInterval(poll, POLL_MS);
  poll();
})();

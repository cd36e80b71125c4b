// The officials' console: dialogs, confirmation, drafts kept across an expired session, date
// pickers that refuse past dates. Plain JavaScript, served by the platform.
(function () {
  "use strict";
  var DRAFT = "console-draft:";

  function cookie(name) {
    var m = document.cookie.match(new RegExp("(?:^|; )" + name + "=([^;]*)"));
    return m ? decodeURIComponent(m[1]) : null;
  }

  // A decision that went through clears its draft (the server names it once, in a cookie).
  var cleared = cookie("console_clear_draft");
  if (cleared) {
    try { sessionStorage.removeItem(DRAFT + cleared); } catch (e) { /* storage disabled */ }
    document.cookie = "console_clear_draft=; Max-Age=0; Path=/console";
  }

  function fields(form) {
    return Array.prototype.filter.call(form.elements, function (el) {
      return el.name && el.type !== "hidden" && el.type !== "submit" && el.type !== "button";
    });
  }

  // A group of checkboxes shares one name (the experts of a panel): each box is kept by name and value.
  function keyOf(el) { return el.type === "checkbox" ? el.name + "=" + el.value : el.name; }

  function save(form) {
    var data = {};
    fields(form).forEach(function (el) { data[keyOf(el)] = el.type === "checkbox" ? el.checked : el.value; });
    try { sessionStorage.setItem(DRAFT + form.dataset.draft, JSON.stringify(data)); } catch (e) { /* ignore */ }
  }

  function restore(form) {
    var raw = null;
    try { raw = sessionStorage.getItem(DRAFT + form.dataset.draft); } catch (e) { return false; }
    if (!raw) { return false; }
    var data = JSON.parse(raw), any = false;
    fields(form).forEach(function (el) {
      var k = keyOf(el);
      if (!(k in data)) { return; }
      if (el.type === "checkbox") { el.checked = !!data[k]; } else { el.value = data[k]; }
      if (data[k]) { any = true; }
    });
    return any;
  }

  document.querySelectorAll("form[data-draft]").forEach(function (form) {
    var restored = restore(form);
    form.addEventListener("input", function () { save(form); });
    form.addEventListener("change", function () { save(form); });
    var dialog = form.closest("dialog");
    if (restored && dialog && dialog.showModal) { dialog.showModal(); }  // back from login: the dialog as it was
  });

  document.querySelectorAll("[data-open]").forEach(function (button) {
    button.addEventListener("click", function () {
      var dialog = document.getElementById(button.dataset.open);
      if (dialog) { dialog.showModal(); }
    });
  });
  document.querySelectorAll("dialog [data-close]").forEach(function (button) {
    button.addEventListener("click", function () { button.closest("dialog").close(); });
  });

  // Dates: not before today (Asia/Shanghai, as the server rendered it).
  var today = document.body.dataset.today;
  document.querySelectorAll("input[data-not-past]").forEach(function (input) {
    if (today) { input.min = today; }
    input.addEventListener("input", function () {
      input.setCustomValidity(input.value && today && input.value < today ? "日期不能早于今天" : "");
    });
  });

  // The score sheet: the expert's weighted score as they type (the platform computes the one it keeps).
  document.querySelectorAll("form[data-score-sheet]").forEach(function (form) {
    var total = form.querySelector("[data-weighted-total]");
    function update() {
      var sum = 0, complete = true;
      form.querySelectorAll("input[data-weight]").forEach(function (input) {
        if (input.value === "") { complete = false; return; }
        sum += Number(input.value) * Number(input.dataset.weight) / 100;
      });
      total.textContent = complete ? sum.toFixed(2) : "—";
    }
    form.addEventListener("input", update);
    update();
  });

  // A confirm dialog (Element's MessageBox) for forms whose button asks first.
  function confirmBox(text, onOk) {
    var dialog = document.createElement("dialog");
    dialog.className = "dialog";
    dialog.setAttribute("data-confirm-box", "");
    dialog.innerHTML = '<form method="dialog"><h2>请确认</h2><p></p><div class="dialog-footer">' +
      '<button type="button" class="btn" data-close>取消</button>' +
      '<button type="button" class="btn btn-primary" data-ok>确定</button></div></form>';
    dialog.querySelector("p").textContent = text;
    dialog.querySelector("[data-close]").addEventListener("click", function () { dialog.close(); dialog.remove(); });
    dialog.querySelector("[data-ok]").addEventListener("click", function () { dialog.close(); dialog.remove(); onOk(); });
    document.body.appendChild(dialog);
    dialog.showModal();
  }

  // Fields that matter only for one choice (data-show-when="decision=uphold remedy=amount"): hidden
  // and not sent otherwise.
  document.querySelectorAll("[data-show-when]").forEach(function (block) {
    var form = block.closest("form");
    var rules = block.dataset.showWhen.split(" ").map(function (r) { return r.split("="); });
    function update() {
      var shown = rules.every(function (r) { var f = form.elements[r[0]]; return f && f.value === r[1]; });
      block.hidden = !shown;
      block.querySelectorAll("input, select, textarea").forEach(function (el) { el.disabled = !shown; });
    }
    rules.forEach(function (r) { var f = form.elements[r[0]]; if (f) { f.addEventListener("change", update); } });
    update();
  });

  document.querySelectorAll("form").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      var submit = form.querySelector("[data-confirm-text]");
      if (submit && !form.dataset.confirmed) {
        event.preventDefault();
        // "{assignee}" in the text: the value chosen in the form's field of that name
        var text = submit.dataset.confirmText.replace(/\{([a-z_]+)\}/g, function (all, name) {
          var field = form.elements[name];
          return field && field.value ? field.value : all;
        });
        confirmBox(text, function () {
          form.dataset.confirmed = "1";
          if (form.requestSubmit) { form.requestSubmit(); } else { form.submit(); }
        });
        return;
      }
      if (form.dataset.draft) { save(form); }
      // One click, one decision (the Idempotency-Key makes a second one harmless anyway).
      form.querySelectorAll("button[type=submit]").forEach(function (b) {
        setTimeout(function () { b.disabled = true; }, 0);
      });
    });
  });
})();

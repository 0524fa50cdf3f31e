// flaskstack sample app: a live character counter for the note form.
// Loaded with `defer` from /static/ (the site's CSP allows no inline script).
(function () {
  "use strict";
  var text = document.getElementById("note-text");
  var count = document.getElementById("note-count");
  if (!text || !count) {
    return;
  }
  var max = parseInt(text.getAttribute("maxlength"), 10) || 500;
  function update() {
    var used = text.value.length;
    count.textContent = used + " / " + max;
    count.classList.toggle("near-limit", used > max * 0.9);
  }
  text.addEventListener("input", update);
  update();
})();

// Gatehouse console: copy a one-time secret to the clipboard. Nothing else
// runs here; htmx does the partial updates.
document.addEventListener("click", function (event) {
  var button = event.target.closest("[data-copy]");
  if (!button) return;
  var source = document.getElementById(button.getAttribute("data-copy"));
  if (!source || !navigator.clipboard) return;
  navigator.clipboard.writeText(source.textContent.trim()).then(function () {
    // The button is a live region already: the change is announced.
    button.textContent = "Copied";
  });
});

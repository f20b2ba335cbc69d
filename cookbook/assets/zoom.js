// Lesson figures open full size on a click (or Enter), over the page; a click or Escape closes them.
// Our own few lines instead of a lightbox plugin: nothing to download, and the data-URI images of the
// notebook outputs are not copied a second time into the page.
(function () {
  function close() {
    var open = document.querySelector(".zoom-overlay");
    if (open) open.remove();
  }
  function show(img) {
    close();
    var overlay = document.createElement("div");
    overlay.className = "zoom-overlay";
    overlay.setAttribute("role", "dialog");
    overlay.setAttribute("aria-label", img.alt || "figure");
    var big = img.cloneNode();
    big.removeAttribute("width");
    big.removeAttribute("height");
    big.className = "";
    overlay.appendChild(big);
    overlay.addEventListener("click", close);
    document.body.appendChild(overlay);
  }
  document.addEventListener("click", function (event) {
    var img = event.target.closest && event.target.closest("img.zoomable");
    if (img) show(img);
  });
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape") close();
    if (event.key === "Enter" && document.activeElement && document.activeElement.matches("img.zoomable"))
      show(document.activeElement);
  });
})();

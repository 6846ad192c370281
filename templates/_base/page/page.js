/* Enhancement only: everything on the page works without this script.
   Reports how far the customer watched their video (0, 25, 50, 75, 100 %), once per quartile per page
   view; the server keeps only the first time each quartile is reached. No personal data is sent: the
   beacon goes to the page's own URL with the form's CSRF token. */
(function () {
  "use strict";
  var videos = document.querySelectorAll("video[data-beacon]");
  Array.prototype.forEach.call(videos, function (video) {
    var sent = {};
    function send(quartile) {
      if (sent[quartile]) { return; }
      sent[quartile] = true;
      var body = new FormData();
      body.append("csrf", video.getAttribute("data-csrf"));
      body.append("kind", "video_played");
      body.append("quartile", String(quartile));
      var url = video.getAttribute("data-beacon");
      if (navigator.sendBeacon && navigator.sendBeacon(url, body)) { return; }
      if (window.fetch) {
        fetch(url, { method: "POST", body: body, credentials: "same-origin", keepalive: true });
      }
    }
    video.addEventListener("play", function () { send(0); });
    video.addEventListener("timeupdate", function () {
      if (!video.duration || !isFinite(video.duration)) { return; }
      var done = video.currentTime / video.duration;
      [25, 50, 75].forEach(function (q) { if (done >= q / 100) { send(q); } });
    });
    video.addEventListener("ended", function () { send(25); send(50); send(75); send(100); });
  });
}());
